//! `POST /events/eventbridge`: EventBridge's DataSync events, from an API destination (or a
//! bridge posting the same JSON).
//!
//! - "DataSync Task Execution State Change": a hint to the watcher: the execution is polled at
//!   once, so a finish reaches subscribers in well under a second instead of at the next poll.
//! - "DataSync Task State Change": the task's cached description is dropped (read again on next
//!   use) and its status in the cached task list updated at once.
//!
//! Events are only hints: a duplicate, a late one, or one that never comes changes nothing the
//! polls and the caches' lifetimes would not.
//!
//! Authenticated by a shared secret in `X-EventBridge-Secret` (the API destination's connection
//! sends it as an API key header), compared in constant time.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::errors::error_response;
use super::AppState;
use crate::error::ErrorCode;
use crate::model::{ExecutionArn, TaskArn};

pub const SECRET_HEADER: &str = "x-eventbridge-secret";
const SOURCE: &str = "aws.datasync";
const EXECUTION_CHANGED: &str = "DataSync Task Execution State Change";
const TASK_CHANGED: &str = "DataSync Task State Change";

/// The parts of an EventBridge event the gateway reads.
#[derive(Deserialize)]
struct Event {
    source: String,
    #[serde(rename = "detail-type")]
    detail_type: String,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    detail: Detail,
}

#[derive(Deserialize, Default)]
struct Detail {
    #[serde(rename = "State")]
    state: Option<String>,
}

pub async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let Some(secret) = &state.live_config.eventbridge_secret else {
        let message = "EventBridge intake is off: start the gateway with --eventbridge-secret";
        return error_response(StatusCode::NOT_FOUND, message, ErrorCode::BadRequest);
    };
    let given = headers.get(SECRET_HEADER).map(|value| value.as_bytes()).unwrap_or_default();
    if !same_secret(given, secret.as_bytes()) {
        let message = "missing or wrong X-EventBridge-Secret header";
        return error_response(StatusCode::UNAUTHORIZED, message, ErrorCode::Unauthenticated);
    }
    let event: Event = match serde_json::from_slice(&body) {
        Ok(event) => event,
        Err(error) => return refuse(&format!("not an EventBridge event: {error}")),
    };
    if event.source == SOURCE && event.detail_type == TASK_CHANGED {
        return task_changed(&state, &event).await;
    }
    if event.source != SOURCE || event.detail_type != EXECUTION_CHANGED {
        return refuse(&format!(
            "unsupported event (source {:?}, detail-type {:?}): only {SOURCE:?} events of detail-type \
             {EXECUTION_CHANGED:?} or {TASK_CHANGED:?} are taken",
            event.source, event.detail_type
        ));
    }
    let Some(arn) = event.resources.iter().find_map(|resource| ExecutionArn::parse(resource).ok()) else {
        return refuse("the event's resources name no task execution ARN");
    };
    let polling = match state.live.hint(&arn, event.detail.state.as_deref()) {
        Ok(polling) => polling,
        Err(error) => return refuse(&error.to_string()),
    };
    let body = serde_json::json!({ "accepted": true, "executionArn": arn.as_str(), "polling": polling });
    (StatusCode::ACCEPTED, axum::Json(body)).into_response()
}

async fn task_changed(state: &AppState, event: &Event) -> axum::response::Response {
    let Some(arn) = event.resources.iter().find_map(|resource| TaskArn::parse(resource).ok()) else {
        return refuse("the event's resources name no task ARN");
    };
    if let Err(error) = state.tasks.changed(&arn, event.detail.state.as_deref()).await {
        return refuse(&error.to_string());
    }
    let body = serde_json::json!({ "accepted": true, "taskArn": arn.as_str() });
    (StatusCode::ACCEPTED, axum::Json(body)).into_response()
}

fn refuse(reason: &str) -> axum::response::Response {
    error_response(StatusCode::BAD_REQUEST, reason, ErrorCode::BadRequest)
}

/// Compares digests, so that neither the content nor the length of the secret shows in timing.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    Sha256::digest(given).ct_eq(&Sha256::digest(expected)).into()
}
