//! The one shape of every error the HTTP layer answers itself: GraphQL's, with a code, so a
//! client parses a 404 or a 413 the way it parses a validation error.

use async_graphql::Response;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::response::IntoResponse;

use crate::error::ErrorCode;
use crate::error::GatewayError;

/// `{"errors":[{"message":…,"extensions":{"code":…}}]}`
pub fn error_body(message: &str, code: ErrorCode) -> Vec<u8> {
    let error = code.error(message);
    super::wire::to_vec(&Response::from_errors(vec![error]))
}

pub fn error_response(status: StatusCode, message: &str, code: ErrorCode) -> axum::response::Response {
    (status, [(CONTENT_TYPE, "application/json")], error_body(message, code)).into_response()
}

/// HTTP 429 for a caller over its rate, with `retryable`, `retryAfter` and `Retry-After`.
pub fn too_many_requests(error: &GatewayError) -> axum::response::Response {
    let seconds = error.retry_after().unwrap_or(1);
    let body = super::wire::to_vec(&Response::from_errors(vec![error.to_server_error()]));
    let headers = [
        (CONTENT_TYPE, HeaderValue::from_static("application/json")),
        (RETRY_AFTER, HeaderValue::from(seconds)),
    ];
    (StatusCode::TOO_MANY_REQUESTS, headers, body).into_response()
}

/// Errors answered before any handler of ours ran (no route, wrong method, body limit, time
/// limit) come as plain text or empty; this gives them the JSON shape, keeping their status and
/// headers (`Allow` on a 405). Our own bodies (either JSON media type) pass unchanged.
pub async fn as_json(response: axum::response::Response) -> axum::response::Response {
    let status = response.status();
    let is_json =
        response.headers().get(CONTENT_TYPE).and_then(|value| value.to_str().ok()).is_some_and(|value| {
            value.starts_with("application/json") || value.starts_with(super::graphql::GRAPHQL_RESPONSE_JSON)
        });
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (message, code) = describe(status);
    let (mut parts, _) = response.into_parts();
    let body = error_body(message, code);
    parts.headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    axum::response::Response::from_parts(parts, body.into())
}

/// What a status means to a client of this gateway, and its code.
pub fn describe(status: StatusCode) -> (&'static str, ErrorCode) {
    match status {
        StatusCode::NOT_FOUND => {
            ("no such route: GraphQL is served at /graphql, GraphiQL at /graphiql", ErrorCode::BadRequest)
        }
        StatusCode::METHOD_NOT_ALLOWED => {
            ("method not allowed here (see the Allow header)", ErrorCode::BadRequest)
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            ("the request body is larger than this gateway takes (--max-body-bytes)", ErrorCode::BadRequest)
        }
        StatusCode::URI_TOO_LONG => {
            ("the request URL is too long; send large queries with POST", ErrorCode::BadRequest)
        }
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => (
            "the request line and headers are too large (64 KiB at most); send large queries with POST",
            ErrorCode::BadRequest,
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ("POST bodies must be JSON (content-type: application/json)", ErrorCode::BadRequest)
        }
        StatusCode::GATEWAY_TIMEOUT => ("the request took too long", ErrorCode::RequestTimeout),
        status if status.is_client_error() => {
            ("the request is not valid HTTP for this endpoint", ErrorCode::BadRequest)
        }
        _ => ("internal error", crate::error::GatewayError::Internal.code()),
    }
}
