//! The HTTP surface: routes and the middleware every request passes through.

mod graphql;
mod health;

use axum::http::{HeaderValue, Method};
use axum::routing::get;
use axum::Router;
use tower_http::cors::CorsLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::config::LimitsConfig;
use crate::graphql::GatewaySchema;
use crate::service::History;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub schema: GatewaySchema,
    pub max_batch_operations: usize,
    pub history: Option<History>,
}

pub fn router(state: AppState, limits: &LimitsConfig) -> anyhow::Result<Router> {
    let mut router = Router::new()
        .route("/graphql", get(graphql::execute).post(graphql::execute))
        .route("/graphiql", get(graphql::graphiql))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(limits.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::GATEWAY_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(axum::middleware::map_response(graphql::limit_errors_as_json))
        .layer(TraceLayer::new_for_http());
    if !limits.cors_allow_origins.is_empty() {
        let origins = limits
            .cors_allow_origins
            .iter()
            .map(|origin| {
                HeaderValue::from_str(origin).map_err(|_| anyhow::anyhow!("invalid CORS origin {origin:?}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        router = router.layer(
            CorsLayer::new()
                .allow_origin(origins)
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([axum::http::header::CONTENT_TYPE]),
        );
    }
    Ok(router)
}
