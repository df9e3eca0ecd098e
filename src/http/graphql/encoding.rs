//! A GraphQL response as HTTP: codes on every error, the body serialised within
//! `--max-response-bytes`, the status GraphQL-over-HTTP asks for under each media type,
//! `Cache-Control` from what was served, and `Retry-After` when only a retry can help.

use async_graphql::{BatchResponse, Response};
use axum::body::Bytes;
use axum::http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, VARY};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;

use super::GRAPHQL_RESPONSE_JSON;
use crate::error::ErrorCode;
use crate::graphql::cache_hint::CacheHint;
use crate::graphql::finish_response;
use crate::graphql::response_cache::Answer;
use crate::http::wire::{is_request_error, WireBatch};
use crate::http::AppState;

/// Codes on every error, the body within the size limit, and `Cache-Control` from what was served
/// (`no-store` without a hint).
pub(super) fn finish(
    state: &AppState,
    response: BatchResponse,
    headers: &HeaderMap,
    hint: Option<&CacheHint>,
) -> axum::response::Response {
    finish_encoded(state, response, headers, hint).into_response()
}

pub(super) fn finish_encoded(
    state: &AppState,
    mut response: BatchResponse,
    headers: &HeaderMap,
    hint: Option<&CacheHint>,
) -> Encoded {
    let no_hint = CacheHint::default();
    let finish_one =
        |response: &mut Response| finish_response(response, hint.unwrap_or(&no_hint), &state.metrics);
    match &mut response {
        BatchResponse::Single(response) => finish_one(response),
        BatchResponse::Batch(responses) => responses.iter_mut().for_each(finish_one),
    }
    let mut answer = encode(&response, headers, state.limits.max_response_bytes);
    answer.answer.cache_control = match hint.and_then(CacheHint::max_age) {
        Some(seconds) if response.is_ok() && answer.status == StatusCode::OK && !answer.too_large => {
            HeaderValue::from_str(&format!("public, max-age={seconds}")).unwrap_or(NO_STORE)
        }
        _ => NO_STORE,
    };
    answer.retry_after = retry_after(&response);
    answer
}

const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

/// A response serialised, before it becomes HTTP.
pub(super) struct Encoded {
    status: StatusCode,
    answer: Answer,
    retry_after: Option<u64>,
    /// No `extensions` (warnings) in the body.
    without_extensions: bool,
    /// The body is the ErrorCode::ResponseTooLarge error in place of the response.
    too_large: bool,
}

impl Encoded {
    /// The answer, if it may be sent again to an identical request: a 200 with no warnings,
    /// not the too-large refusal.
    pub(super) fn replayable(&self) -> Option<&Answer> {
        (self.status == StatusCode::OK && self.without_extensions && !self.too_large).then_some(&self.answer)
    }
}

impl IntoResponse for Encoded {
    fn into_response(self) -> axum::response::Response {
        let mut answer = self.answer.into_http(self.status);
        if let Some(seconds) = self.retry_after {
            answer.headers_mut().insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        answer
    }
}

impl Answer {
    /// Built by hand, not from a tuple: a replay is little more than this, and the tuple's
    /// path first sets a content type of its own, then replaces it.
    pub(super) fn into_http(self, status: StatusCode) -> axum::response::Response {
        let mut response = axum::response::Response::new(axum::body::Body::from(self.body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.reserve(4);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        headers.insert(CACHE_CONTROL, self.cache_control);
        // What a query answers depends on the accounts its credentials may see: a shared cache
        // (a CDN, a proxy) must keep one answer per credential.
        headers.insert(VARY, HeaderValue::from_static("Authorization, X-API-Key"));
        response
    }
}

/// When the whole request failed (every operation answered no data) and only with errors a
/// retry may cure: the longest `retryAfter` among them, for the `Retry-After` header.
fn retry_after(response: &BatchResponse) -> Option<u64> {
    let operations: Vec<&Response> = match response {
        BatchResponse::Single(single) => vec![single],
        BatchResponse::Batch(batch) => batch.iter().collect(),
    };
    let mut longest = None;
    for operation in operations {
        let no_data = match &operation.data {
            async_graphql::Value::Null => true,
            async_graphql::Value::Object(fields) => {
                fields.values().all(|value| *value == async_graphql::Value::Null)
            }
            _ => false,
        };
        if !no_data || operation.errors.is_empty() {
            return None;
        }
        for error in &operation.errors {
            let seconds =
                error.extensions.as_ref().and_then(|extensions| match extensions.get("retryAfter") {
                    Some(async_graphql::Value::Number(seconds)) => seconds.as_u64(),
                    _ => None,
                })?;
            longest = longest.max(Some(seconds));
        }
    }
    longest
}

/// The response as JSON, unless it would be larger than `limit` bytes: serialisation stops
/// there, so a huge answer never sits in memory twice.
fn encode(response: &BatchResponse, headers: &HeaderMap, limit: usize) -> Encoded {
    let mut body = LimitedWriter { bytes: Vec::with_capacity(1024), limit };
    if serde_json::to_writer(&mut body, &WireBatch(response)).is_err() {
        let message = format!(
            "the response would be larger than {limit} bytes (--max-response-bytes); select fewer fields \
             or ask for fewer executions"
        );
        return Encoded {
            status: StatusCode::OK,
            answer: Answer {
                content_type: "application/json",
                body: crate::http::errors::error_body(&message, ErrorCode::ResponseTooLarge).into(),
                cache_control: NO_STORE,
            },
            retry_after: None,
            without_extensions: false,
            too_large: true,
        };
    }
    let graphql_response_json = accepts_graphql_response_json(headers);
    // Under graphql-response+json a request that did not run at all (no `data`) is a 400.
    let status = match response {
        BatchResponse::Single(single) if graphql_response_json && is_request_error(single) => {
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::OK,
    };
    let without_extensions = match response {
        BatchResponse::Single(single) => single.extensions.is_empty(),
        BatchResponse::Batch(_) => false,
    };
    Encoded {
        status,
        answer: Answer {
            content_type: if graphql_response_json { GRAPHQL_RESPONSE_JSON } else { "application/json" },
            body: Bytes::from(body.bytes),
            cache_control: NO_STORE,
        },
        retry_after: None,
        without_extensions,
        too_large: false,
    }
}

pub(super) fn accepts_graphql_response_json(headers: &HeaderMap) -> bool {
    headers
        .get(ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains(GRAPHQL_RESPONSE_JSON))
}

struct LimitedWriter {
    bytes: Vec<u8>,
    limit: usize,
}

impl std::io::Write for LimitedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > self.limit {
            return Err(std::io::ErrorKind::FileTooLarge.into());
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
