//! The span each HTTP request runs in: what its log lines carry, and the root of its trace
//! (or a child of the caller's, from `traceparent`).

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response};
use tower_http::classify::ServerErrorsFailureClass;
use tracing::field::Empty;

use crate::telemetry::Occasionally;
use tracing::Span;

pub fn make<B>(request: &Request<B>) -> Span {
    let (method, path) = (request.method(), request.uri().path());
    let span = tracing::info_span!(
        "request",
        otel.name = %format_args!("{method} {path}"),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = %method,
        url.path = path,
        http.response.status_code = Empty,
        graphql.operation.name = Empty,
        graphql.operation.type = Empty,
    );
    crate::telemetry::continue_trace(&span, request.headers());
    span
}

/// A request answered with a server error, in the log at most once a minute with how many were
/// not written: refused upgrades (503) under a flood would otherwise write a line each. The
/// span records every one.
pub fn failed(class: ServerErrorsFailureClass, latency: Duration, _: &Span) {
    static FAILED: Occasionally = Occasionally::every(Duration::from_secs(60));
    FAILED.log(|unwritten| {
        tracing::warn!(%class, ?latency, unwritten, "request failed; `unwritten` more since the last such line");
    });
}

pub fn finished(response: &Response<Body>, _: Duration, span: &Span) {
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
}

/// Names the GraphQL operation on the request's span.
pub fn record_operation(name: Option<&str>, kind: &str) {
    let span = Span::current();
    if let Some(name) = name {
        span.record("graphql.operation.name", name);
    }
    span.record("graphql.operation.type", kind);
}
