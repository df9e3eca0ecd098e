//! The HTTP surface: routes, the middleware every request passes through, and the server that
//! accepts connections.

mod connection;
mod errors;
mod graphiql;
mod graphql;
mod health;
pub mod server;

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
    pub gate: crate::graphql::Gate,
    pub limits: LimitsConfig,
    pub history: Option<History>,
    pub discovery: Option<crate::discovery::Discovery>,
    /// The GraphiQL page, rendered once at start-up.
    pub graphiql_page: std::sync::Arc<str>,
}

pub use graphiql::page as graphiql_page;

pub fn router(state: AppState) -> anyhow::Result<Router> {
    let limits = state.limits.clone();
    let mut router = Router::new()
        .route("/graphql", get(graphql::get).post(graphql::post))
        .route("/", get(graphiql::root))
        .route("/graphiql", get(graphiql::show))
        .route("/graphiql/assets/{name}", get(graphiql::asset))
        .merge(probes())
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(limits.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::GATEWAY_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(axum::middleware::map_response(errors::as_json))
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

/// The probes alone, for the admin address.
pub fn admin_router(state: AppState) -> Router {
    probes().with_state(state).layer(axum::middleware::map_response(errors::as_json))
}

fn probes() -> Router<AppState> {
    Router::new().route("/healthz", get(health::healthz)).route("/readyz", get(health::readyz))
}
