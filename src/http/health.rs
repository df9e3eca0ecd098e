//! Liveness and readiness probes. Neither calls DataSync: probes run every few seconds, and a
//! DataSync outage should show as errors on queries, not as the gateway being restarted. A
//! history database that is down does not make the gateway unready either (live queries still
//! work); `/readyz` reports it.

use std::time::Duration;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::AppState;

/// The process is up and serving HTTP.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready to take traffic, and the state of the history store.
pub async fn readyz(State(state): State<AppState>) -> Json<Value> {
    let history = match &state.history {
        None => json!({ "configured": false }),
        Some(history) => {
            let reachable =
                tokio::time::timeout(Duration::from_secs(1), history.store.ping()).await.unwrap_or(false);
            json!({ "configured": true, "reachable": reachable, "writer": history.writer.status() })
        }
    };
    let discovery = match &state.discovery {
        None => json!({ "enabled": false }),
        Some(discovery) => {
            json!({ "enabled": true, "standby": discovery.standby(), "regions": discovery.status() })
        }
    };
    let streaming = state.live_config.max_streaming_connections - state.streaming.available_permits();
    let live = json!({ "watcher": state.live.status(), "streamingConnections": streaming });
    Json(json!({ "status": "ready", "history": history, "discovery": discovery, "live": live }))
}
