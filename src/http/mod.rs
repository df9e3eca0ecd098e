//! The HTTP surface: routes, the middleware every request passes through, and the server that
//! accepts connections. GraphQL over HTTP, WebSocket and SSE, EventBridge intake, probes and
//! metrics.
//!
//! May import: `graphql`, `service`, `auth`, `request`, `model`, `config`, `error`, `metrics`,
//! `telemetry`.

mod auth;
mod connection;
mod errors;
mod eventbridge;
mod events;
mod graphiql;
mod graphql;
mod head_deadline;
mod health;
mod multipart;
mod request_span;
pub mod server;
mod stream_slots;
mod watchdog;
mod websocket;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Method, Request};
use axum::routing::{get, post};
use axum::Router;
use hyper::body::Incoming;
use tower::ServiceExt;
use tower_http::cors::CorsLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::config::{LimitsConfig, LiveConfig};
use crate::graphql::{Schemas, Streaming, StreamingExecutor};
use crate::metrics::Metrics;
use crate::service::live::Live;

/// What the handlers share: one allocation, so that handing it to a request (axum clones the
/// state for each) is a reference count, not a copy of every cache handle in it.
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

impl From<SharedState> for AppState {
    fn from(shared: SharedState) -> Self {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

pub struct SharedState {
    pub schemas: Schemas,
    pub gate: crate::graphql::Gate,
    pub limits: LimitsConfig,
    pub index: Option<crate::service::index::IndexService>,
    /// Whether `/readyz` stays 200 while the configured database cannot be reached.
    pub ready_without_database: bool,
    pub discovery: Option<crate::service::discovery::Discovery>,
    /// The GraphiQL page, rendered once at start-up.
    pub graphiql_page: Arc<str>,
    pub live: Live,
    pub live_config: LiveConfig,
    pub rate_limits: crate::request::rate_limit::RateLimits,
    pub auth: crate::auth::Authenticator,
    /// What WebSockets and event streams run operations with.
    pub streaming: Streaming,
    /// One place per open WebSocket or event stream.
    pub streaming_slots: StreamSlots,
    pub metrics: Metrics,
    /// For the levels `/metrics` reports.
    pub executions: crate::service::executions::ExecutionService,
    pub tasks: crate::service::tasks::TaskService,
    pub accounts: crate::service::accounts::AccountService,
    /// Responses replayed to repeated queries.
    pub responses: crate::graphql::response_cache::ResponseCache,
    /// Turns true when the gateway begins shutting down (long-lived connections close).
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

impl SharedState {
    /// WebSockets and event streams open now.
    fn open_streams(&self) -> usize {
        self.streaming_slots.open()
    }

    fn streaming_executor(&self, peer: SocketAddr, transport: &'static str) -> StreamingExecutor {
        StreamingExecutor::new(self.streaming.clone(), peer.ip(), transport)
    }

    /// A fresh caller (and DataSync call budget) for one request of `identity`'s.
    fn caller(&self, identity: &crate::request::Identity, peer: SocketAddr) -> crate::request::Caller {
        crate::request::Caller::identified(identity, peer.ip(), self.limits.max_upstream_calls)
    }
}

pub use graphiql::page as graphiql_page;
pub use stream_slots::StreamSlots;

/// Where a connection's requests go: a GraphQL POST is answered directly
/// ([`graphql::post_directly`]) when it can be; everything else goes to the router.
#[derive(Clone)]
pub struct Entry {
    router: Router,
    /// None on the admin address, which serves the probes alone.
    graphql: Option<AppState>,
}

impl Entry {
    pub fn new(state: AppState) -> anyhow::Result<Entry> {
        Ok(Entry { router: router(state.clone())?, graphql: Some(state) })
    }

    /// The probes alone, for the admin address.
    pub fn admin(state: AppState) -> Entry {
        Entry { router: admin_router(state), graphql: None }
    }

    pub async fn call(&self, request: Request<Incoming>, peer: SocketAddr) -> axum::response::Response {
        let mut request = match &self.graphql {
            Some(state) => match graphql::post_directly(state, request, peer).await {
                Ok(answered) => return answered,
                Err(request) => request,
            },
            None => request.map(Body::new),
        };
        request.extensions_mut().insert(ConnectInfo(peer));
        match self.router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(infallible) => match infallible {},
        }
    }
}

fn router(state: AppState) -> anyhow::Result<Router> {
    let limits = state.limits.clone();
    let mut router = Router::new()
        .route("/graphql", get(graphql::get).post(graphql::post))
        .route("/graphql/ws", get(websocket::upgrade))
        .route("/events/eventbridge", post(eventbridge::receive))
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
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span::make)
                .on_response(request_span::finished)
                .on_failure(request_span::failed),
        );
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
                .allow_headers([axum::http::header::CONTENT_TYPE, axum::http::header::AUTHORIZATION]),
        );
    }
    Ok(router)
}

fn admin_router(state: AppState) -> Router {
    probes().with_state(state).layer(axum::middleware::map_response(errors::as_json))
}

fn probes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
}
