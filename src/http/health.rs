//! Liveness and readiness probes. Neither calls DataSync: probes run every few seconds, and a
//! DataSync outage should show as errors on queries, not as the gateway being restarted.

use axum::Json;
use serde_json::{json, Value};

/// The process is up and serving HTTP.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready to take traffic.
pub async fn readyz() -> Json<Value> {
    Json(json!({ "status": "ready" }))
}
