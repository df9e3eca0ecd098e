//! `/graphql` over HTTP: POST with a JSON body (one operation or a batch), or GET with the
//! query in the URL (queries only), following the GraphQL-over-HTTP spec.
//!
//! The body is read here, not by async-graphql-axum's extractor, so that the media type is
//! enforced (a `text/plain` POST is what a browser sends cross-site without a preflight: CSRF)
//! and every refusal has the gateway's JSON error shape. Every error async-graphql raises
//! itself (syntax, validation, limits) gets a code, so each error a client sees has one.

use std::net::SocketAddr;
use std::time::Instant;

use async_graphql::parser::types::OperationType;
use async_graphql::{BatchRequest, BatchResponse, Request, Response};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::header::{ALLOW, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};

mod direct;
mod document_id;
mod encoding;
mod replay;

pub(super) use direct::post as post_directly;
use encoding::finish;
use replay::{finish_and_offer, lookup, resend, stored_key};

use super::auth::identify;
use super::errors::{error_response, too_many_requests};
use super::AppState;
use super::{events, multipart};
use crate::error::ErrorCode;
use crate::graphql::cache_hint::CacheHint;
use crate::graphql::federation::with_entity_loader;
use crate::graphql::response_cache::ResponseKey;
use crate::graphql::{authorize, chosen_operation, operation_label, Parsed, RequestText};
use crate::request::Caller;
use crate::request::Identity;

/// The GraphQL-over-HTTP media type; a client that accepts it gets 4xx statuses for requests
/// that could not run at all.
pub(super) const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// Runs an operation and streams its results to one HTTP response.
type Stream = fn(&AppState, SocketAddr, Identity, async_graphql::Request) -> axum::response::Response;

/// The streaming transport the client asked for by its `Accept` header, if any: server-sent
/// events, or Apollo's multipart subscriptions.
fn streaming(headers: &HeaderMap) -> Option<Stream> {
    if events::wanted(headers) {
        Some(events::stream)
    } else if multipart::wanted(headers) {
        Some(multipart::stream)
    } else {
        None
    }
}

pub async fn post(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    answer_post(&state, peer, &headers, body, Instant::now()).await
}

/// A POST's answer, whether it came through the router or [directly](direct), `started` when
/// its handling did.
async fn answer_post(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: Bytes,
    started: Instant,
) -> axum::response::Response {
    let (caller, identity) = match admit_caller(state, peer, headers).await {
        Ok(admitted) => admitted,
        Err(refusal) => return *refusal,
    };
    if !is_json(headers.get(CONTENT_TYPE)) {
        let (message, code) = super::errors::describe(StatusCode::UNSUPPORTED_MEDIA_TYPE);
        return error_response(StatusCode::UNSUPPORTED_MEDIA_TYPE, message, code);
    }
    let streamed = streaming(headers);
    let key = if streamed.is_some() {
        None
    } else {
        stored_key(state, headers, |json| {
            ResponseKey::post(&body, json, caller.accounts(), state.gate.replay_scope(&caller))
        })
    };
    if let Some(stored) = lookup(state, key.as_ref(), started).await {
        return resend(state, &stored, started);
    }
    // Decided by the first byte, not by serde's untagged guess: a struct also deserialises from
    // a JSON array, so `[]` would pass for an empty single request.
    let request = if body.trim_ascii_start().starts_with(b"[") {
        serde_json::from_slice(&body).map(BatchRequest::Batch)
    } else {
        serde_json::from_slice(&body).map(BatchRequest::Single)
    };
    let mut request = match request {
        Ok(request) => request,
        Err(error) => return bad_request(&format!("not a valid GraphQL request: {error}")),
    };
    document_id::from_body(&body, &mut request);
    if let Some(stream) = streamed {
        return match request {
            BatchRequest::Single(request) => stream(state, peer, identity, request),
            BatchRequest::Batch(_) => bad_request("a stream runs one operation, not a batch"),
        };
    }
    // Boxed: executing is a future of kilobytes, which would otherwise size (and be copied
    // with) every request's future, a replay's too.
    Box::pin(execute(state, caller, request, headers, key)).await
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
    document_id::from_query_string(query, &mut request);
    let streamed = streaming(&headers);
    let key = if streamed.is_some() {
        None
    } else {
        stored_key(&state, &headers, |json| {
            ResponseKey::get(query, json, caller.accounts(), state.gate.replay_scope(&caller))
        })
    };
    if let Some(stored) = lookup(&state, key.as_ref(), started).await {
        return resend(&state, &stored, started);
    }
    let generation = state.responses.generation();
    // Admitted here rather than in `run`, so that a mutation is refused (405) before anything
    // runs, also one that a persisted query's hash stands for.
    let parsed = match state.gate.admit(&mut request, &caller) {
        Ok(parsed) => parsed,
        Err(refusal) => {
            return finish(
                &state,
                BatchResponse::Single(Response::from_errors(vec![refusal])),
                &headers,
                None,
            )
        }
    };
    if runs(&mut request, OperationType::Mutation) {
        let mut response = error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "mutations must be sent with POST",
            ErrorCode::BadRequest,
        );
        response.headers_mut().insert(ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    if let Some(stream) = streamed {
        return stream(&state, peer, identity, request);
    }
    if let Err(refusal) = authorize(&mut request, &caller) {
        return finish(&state, BatchResponse::Single(Response::from_errors(vec![refusal])), &headers, None);
    }
    let hint = CacheHint::default();
    let response = run_admitted(&state, request, &parsed, &caller, &hint).await;
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
    let admitted = state.gate.admit(&mut request, caller);
    match admitted.and_then(|parsed| authorize(&mut request, caller).map(|()| parsed)) {
        Ok(parsed) => run_admitted(state, request, &parsed, caller, hint).await,
        Err(refusal) => Response::from_errors(vec![refusal]),
    }
}

async fn run_admitted(
    state: &AppState,
    mut request: Request,
    parsed: &Parsed,
    caller: &Caller,
    hint: &CacheHint,
) -> Response {
    if runs(&mut request, OperationType::Subscription) {
        let message = "subscriptions are served over WebSocket at /graphql/ws, or from /graphql as \
                       server-sent events (`Accept: text/event-stream`) or Apollo's multipart \
                       subscriptions (`Accept: multipart/mixed;boundary=\"graphql\";subscriptionSpec=1.0`)";
        return Response::from_errors(vec![ErrorCode::BadRequest.error(message)]);
    }
    let ((name, kind), started) = (operation_label(&mut request), Instant::now());
    super::request_span::record_operation(name.as_deref(), kind);
    if kind == "query" {
        hint.ran_query(name.as_deref());
    }
    let mut request = with_entity_loader(request, &state.executions, caller);
    let text = RequestText::take_from(&mut request);
    let mut response = state.schemas.execute(parsed, request.data(caller.clone()).data(hint.clone())).await;
    state.gate.mend(&mut response, &text);
    state.metrics.operation(name.as_deref(), kind, "http", started.elapsed());
    response
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
