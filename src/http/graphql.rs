//! `/graphql` over HTTP: POST with a JSON body (one operation or a batch), or GET with the
//! query in the URL (queries only), following the GraphQL-over-HTTP spec.
//!
//! The body is read here, not by async-graphql-axum's extractor, so that the media type is
//! enforced (a `text/plain` POST is what a browser sends cross-site without a preflight: CSRF)
//! and every refusal has the gateway's JSON error shape. Every error async-graphql raises
//! itself (syntax, validation, limits) gets a code, so each error a client sees has one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use async_graphql::parser::types::OperationType;
use async_graphql::{BatchRequest, BatchResponse, Request, Response};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::header::{ACCEPT, ALLOW, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::IntoResponse;

use super::auth::identify;
use super::errors::{error_response, too_many_requests};
use super::events;
use super::wire::{is_request_error, WireBatch};
use super::AppState;
use crate::error::ErrorCode;
use crate::graphql::cache_hint::CacheHint;
use crate::graphql::federation::with_entity_loader;
use crate::graphql::response_cache::{Answer, ResponseKey, StoredResponse};
use crate::graphql::{authorize, chosen_operation, finish_response, operation_label, RequestText};
use crate::request::Caller;
use crate::request::Identity;

/// The GraphQL-over-HTTP media type; a client that accepts it gets 4xx statuses for requests
/// that could not run at all.
pub(super) const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

pub async fn post(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let started = Instant::now();
    let (caller, identity) = match admit_caller(&state, peer, &headers).await {
        Ok(admitted) => admitted,
        Err(refusal) => return *refusal,
    };
    if !is_json(headers.get(CONTENT_TYPE)) {
        let (message, code) = super::errors::describe(StatusCode::UNSUPPORTED_MEDIA_TYPE);
        return error_response(StatusCode::UNSUPPORTED_MEDIA_TYPE, message, code);
    }
    let events = events::wanted(&headers);
    let key = if events { None } else { stored_key(&state, &headers, |json| ResponseKey::post(&body, json)) };
    if let Some(stored) = lookup(&state, key.as_ref()).await {
        return replay(&state, &stored, started);
    }
    // Decided by the first byte, not by serde's untagged guess: a struct also deserialises from
    // a JSON array, so `[]` would pass for an empty single request.
    let request = if body.trim_ascii_start().starts_with(b"[") {
        serde_json::from_slice(&body).map(BatchRequest::Batch)
    } else {
        serde_json::from_slice(&body).map(BatchRequest::Single)
    };
    let request = match request {
        Ok(request) => request,
        Err(error) => return bad_request(&format!("not a valid GraphQL request: {error}")),
    };
    if events {
        return match request {
            BatchRequest::Single(request) => events::stream(&state, peer, identity, request),
            BatchRequest::Batch(_) => bad_request("an event stream runs one operation, not a batch"),
        };
    }
    execute(&state, caller, request, &headers, key).await
}

pub async fn get(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
) -> axum::response::Response {
    let started = Instant::now();
    let (caller, identity) = match admit_caller(&state, peer, &headers).await {
        Ok(admitted) => admitted,
        Err(refusal) => return *refusal,
    };
    let query = uri.query().unwrap_or_default();
    if query.len() > state.limits.max_body_bytes {
        let (message, code) = super::errors::describe(StatusCode::URI_TOO_LONG);
        return error_response(StatusCode::URI_TOO_LONG, message, code);
    }
    let mut request = match async_graphql::http::parse_query_string(query) {
        Ok(request) => request,
        Err(error) => return bad_request(&format!("not a valid GraphQL request: {error}")),
    };
    let events = events::wanted(&headers);
    let key = if events { None } else { stored_key(&state, &headers, |json| ResponseKey::get(query, json)) };
    if let Some(stored) = lookup(&state, key.as_ref()).await {
        return replay(&state, &stored, started);
    }
    let generation = state.responses.generation();
    // Admitted here rather than in `run`, so that a mutation is refused (405) before anything
    // runs, also one that a persisted query's hash stands for.
    if let Err(refusal) = state.gate.admit(&mut request) {
        return finish(&state, BatchResponse::Single(Response::from_errors(vec![refusal])), &headers, None);
    }
    if runs(&mut request, OperationType::Mutation) {
        let mut response = error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "mutations must be sent with POST",
            ErrorCode::BadRequest,
        );
        response.headers_mut().insert(ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    if events {
        return events::stream(&state, peer, identity, request);
    }
    if let Err(refusal) = authorize(&mut request, &caller) {
        return finish(&state, BatchResponse::Single(Response::from_errors(vec![refusal])), &headers, None);
    }
    let hint = CacheHint::default();
    let response = run_admitted(&state, request, &caller, &hint).await;
    finish_and_offer(
        &state,
        BatchResponse::Single(response),
        &headers,
        &hint,
        key.map(|key| (key, generation)),
    )
}

async fn execute(
    state: &AppState,
    caller: Caller,
    request: BatchRequest,
    headers: &HeaderMap,
    key: Option<ResponseKey>,
) -> axum::response::Response {
    if let BatchRequest::Batch(operations) = &request {
        let max = state.limits.max_batch_operations;
        if operations.is_empty() || operations.len() > max {
            let got = operations.len();
            return bad_request(&format!(
                "a batch holds 1 to {max} operations (--max-batch-operations); got {got}"
            ));
        }
    }
    // One caller (and so one DataSync call budget) for every operation of the request.
    let hint = CacheHint::default();
    let response = match request {
        BatchRequest::Single(request) => {
            let generation = state.responses.generation();
            let response = run(state, request, &caller, &hint).await;
            let key = key.map(|key| (key, generation));
            return finish_and_offer(state, BatchResponse::Single(response), headers, &hint, key);
        }
        BatchRequest::Batch(requests) => {
            let mut responses = Vec::with_capacity(requests.len());
            for request in requests {
                responses.push(run(state, request, &caller, &hint).await);
            }
            BatchResponse::Batch(responses)
        }
    };
    finish(state, response, headers, Some(&hint))
}

/// One operation: admitted by the gate (persisted query, limits), then executed.
async fn run(state: &AppState, mut request: Request, caller: &Caller, hint: &CacheHint) -> Response {
    if let Err(refusal) = state.gate.admit(&mut request).and_then(|()| authorize(&mut request, caller)) {
        return Response::from_errors(vec![refusal]);
    }
    run_admitted(state, request, caller, hint).await
}

async fn run_admitted(state: &AppState, mut request: Request, caller: &Caller, hint: &CacheHint) -> Response {
    if runs(&mut request, OperationType::Subscription) {
        let message = "subscriptions are served over WebSocket at /graphql/ws, or as server-sent events \
                       from /graphql with `Accept: text/event-stream`";
        return Response::from_errors(vec![ErrorCode::BadRequest.error(message)]);
    }
    let ((name, kind), started) = (operation_label(&mut request), Instant::now());
    super::request_span::record_operation(name.as_deref(), kind);
    if kind == "query" {
        hint.ran_query(name.as_deref());
    }
    let mut request = with_entity_loader(request, &state.executions, caller);
    let text = RequestText::take_from(&mut request);
    let mut response = state.schema.execute(request.data(caller.clone()).data(hint.clone())).await;
    state.gate.mend(&mut response, &text);
    state.metrics.operation(name.as_deref(), kind, "http", started.elapsed());
    response
}

/// Codes on every error, the body within the size limit, and `Cache-Control` from what was served
/// (`no-store` without a hint).
fn finish(
    state: &AppState,
    response: BatchResponse,
    headers: &HeaderMap,
    hint: Option<&CacheHint>,
) -> axum::response::Response {
    finish_encoded(state, response, headers, hint).into_response()
}

/// As [`finish`], and the response kept for replay under `key` when it may be (with the
/// execution cache's generation from before it ran).
fn finish_and_offer(
    state: &AppState,
    response: BatchResponse,
    headers: &HeaderMap,
    hint: &CacheHint,
    key: Option<(ResponseKey, u64)>,
) -> axum::response::Response {
    let replayable = match &response {
        BatchResponse::Single(single) => single.errors.is_empty(),
        BatchResponse::Batch(_) => false,
    };
    let encoded = finish_encoded(state, response, headers, Some(hint));
    if let Some((key, generation)) = key {
        if replayable && encoded.status == StatusCode::OK && encoded.without_extensions && !encoded.too_large
        {
            state.responses.offer(key, generation, hint, encoded.answer.clone());
        }
    }
    encoded.into_response()
}

fn finish_encoded(
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
struct Encoded {
    status: StatusCode,
    answer: Answer,
    retry_after: Option<u64>,
    /// No `extensions` (warnings) in the body.
    without_extensions: bool,
    /// The body is the ErrorCode::ResponseTooLarge error in place of the response.
    too_large: bool,
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
    fn into_http(self, status: StatusCode) -> axum::response::Response {
        let headers = [
            (CONTENT_TYPE, HeaderValue::from_static(self.content_type)),
            (CACHE_CONTROL, self.cache_control),
        ];
        (status, headers, self.body).into_response()
    }
}

/// The response-cache key `key` makes (told whether graphql-response+json is accepted), when
/// there is a response cache.
fn stored_key(
    state: &AppState,
    headers: &HeaderMap,
    key: impl FnOnce(bool) -> Option<ResponseKey>,
) -> Option<ResponseKey> {
    state.responses.enabled().then(|| key(accepts_graphql_response_json(headers))).flatten()
}

async fn lookup(state: &AppState, key: Option<&ResponseKey>) -> Option<Arc<StoredResponse>> {
    let stored = state.responses.get(key?).await;
    state.metrics.cache_lookup("responses", if stored.is_some() { "hit" } else { "miss" });
    stored
}

/// A stored response, sent again: counted as the query it answers.
fn replay(state: &AppState, stored: &StoredResponse, started: Instant) -> axum::response::Response {
    let name = stored.operation_name.as_deref();
    super::request_span::record_operation(name, "query");
    state.metrics.operation(name, "query", "http", started.elapsed());
    stored.answer.clone().into_http(StatusCode::OK)
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
                body: super::errors::error_body(&message, ErrorCode::ResponseTooLarge).into(),
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

fn accepts_graphql_response_json(headers: &HeaderMap) -> bool {
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

/// `application/json`, with or without parameters such as `charset`.
fn is_json(content_type: Option<&HeaderValue>) -> bool {
    content_type
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media_type| media_type.trim().eq_ignore_ascii_case("application/json"))
}

/// Whether the operation the request would run is of type `ty`.
fn runs(request: &mut Request, ty: OperationType) -> bool {
    chosen_operation(request).is_some_and(|(_, operation)| operation.node.ty == ty)
}

/// Who sent the request (401 without acceptable credentials), within its rate (429 beyond),
/// with a fresh DataSync call budget for the whole request.
async fn admit_caller(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> Result<(Caller, Identity), Box<axum::response::Response>> {
    let identity = identify(state, headers, peer.ip()).await?;
    let caller = state.caller(&identity, peer);
    state.rate_limits.check(&caller).map_err(|limited| Box::new(too_many_requests(&limited)))?;
    Ok((caller, identity))
}

fn bad_request(message: &str) -> axum::response::Response {
    error_response(StatusCode::BAD_REQUEST, message, ErrorCode::BadRequest)
}
