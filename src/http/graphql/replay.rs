//! Replay: a query's answer kept in the response cache and sent again, byte for byte, to the
//! next identical request while what it read is unchanged (see
//! [`crate::graphql::response_cache`]).

use std::sync::Arc;
use std::time::Instant;

use async_graphql::BatchResponse;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;

use super::encoding::{accepts_graphql_response_json, finish_encoded};
use crate::graphql::cache_hint::CacheHint;
use crate::graphql::response_cache::{ResponseKey, StoredResponse};
use crate::http::AppState;

/// As [`finish`](super::encoding::finish), and the response kept for replay under `key` when it may be (with the
/// execution cache's generation from before it ran).
pub(super) fn finish_and_offer(
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
        if let Some(answer) = encoded.replayable().filter(|_| replayable) {
            state.responses.offer(key, generation, hint, answer.clone());
        }
    }
    encoded.into_response()
}

/// The response-cache key `key` makes (told whether graphql-response+json is accepted), when
/// there is a response cache.
pub(super) fn stored_key(
    state: &AppState,
    headers: &HeaderMap,
    key: impl FnOnce(bool) -> Option<ResponseKey>,
) -> Option<ResponseKey> {
    state.responses.enabled().then(|| key(accepts_graphql_response_json(headers))).flatten()
}

/// The stored response to `key`, for a request that came `now`.
pub(super) async fn lookup(
    state: &AppState,
    key: Option<&ResponseKey>,
    now: Instant,
) -> Option<Arc<StoredResponse>> {
    state.responses.get(key?, now).await
}

/// A stored response, sent again: counted as the query it answers.
pub(super) fn resend(
    state: &AppState,
    stored: &StoredResponse,
    started: Instant,
) -> axum::response::Response {
    let name = stored.operation_name.as_deref();
    crate::http::request_span::record_operation(name, "query");
    stored.count_replay(&state.metrics, started.elapsed());
    stored.answer.clone().into_http(StatusCode::OK)
}
