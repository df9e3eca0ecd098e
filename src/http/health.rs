//! Liveness and readiness probes. Neither calls DataSync: probes run every few seconds, and a
//! DataSync outage should show as errors on queries, not as the gateway being restarted. A
//! history database that is down does not make the gateway unready either (live queries still
//! work); `/readyz` reports it.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use super::AppState;

/// The process is up and serving HTTP.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready to take traffic, and the state of the index (its database and writer), the sync and live following.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let (history, database_down) = match &state.index {
        Some(index) => {
            let reachable = index.reachable().await;
            (
                json!({ "configured": true, "reachable": reachable, "writer": index.writer().status() }),
                !reachable,
            )
        }
        None => (json!({ "configured": false }), false),
    };
    let discovery = match &state.discovery {
        None => json!({ "enabled": false }),
        Some(discovery) => {
            // Keyed `account/region`, or by the region alone for the gateway's own account.
            let sites: serde_json::Map<String, Value> = (discovery.status().into_iter())
                .map(|(site, sync)| (site.to_string(), json!(sync)))
                .collect();
            json!({ "enabled": true, "standby": discovery.standby(), "regions": sites })
        }
    };
    let live = json!({
        "watcher": state.live.status(),
        "hints": state.live.hint_status(),
        "streamingConnections": state.open_streams(),
    });
    // A replica without its database serves no history, statistics or index pages: a load
    // balancer should send clients elsewhere, unless the deployment prefers live-only service.
    let accounts = state.accounts.summary();
    let mut report = json!({
        "status": "ready",
        "history": history,
        "discovery": discovery,
        "live": live,
        "accounts": accounts,
    });
    if database_down && !state.ready_without_database {
        report["status"] = json!("unready");
        report["reason"] = json!(
            "the history database cannot be reached (--ready-without-database keeps this replica ready)"
        );
        return (StatusCode::SERVICE_UNAVAILABLE, Json(report));
    }
    (StatusCode::OK, Json(report))
}

/// Prometheus metrics (OpenMetrics text): what was counted, and the levels read now.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let metrics = &state.metrics;
    metrics.set_weighed_cache("executions", state.executions.cache_size().await);
    metrics.set_weighed_cache("responses", state.responses.size());
    metrics.set_weighed_cache("documents", state.gate.persisted_size());
    metrics.set_weighed_cache("parsed_documents", state.gate.parsed_size());
    for (cache, entries) in state.tasks.cache_entries().await {
        metrics.set_cache_entries(cache, entries);
    }
    let levels = metrics.levels();
    if let Some(index) = &state.index {
        let writer = index.writer().status();
        levels.writer_backlog.set(writer.backlog as i64);
        levels.writer_written.set(writer.written as i64);
        levels.writer_dropped.set(writer.dropped as i64);
    }
    if let Some(discovery) = &state.discovery {
        levels.sync_standby.set(i64::from(discovery.standby()));
        for (site, sync) in discovery.status() {
            let last_run = sync.last_run_at.map_or(0.0, |at| at.timestamp_millis() as f64 / 1000.0);
            let account = site.account.map(|account| account.to_string()).unwrap_or_default();
            metrics.set_sync(&account, site.region.as_str(), last_run, sync.error.is_some());
        }
    }
    let accounts = state.accounts.summary();
    metrics.set_accounts(
        accounts.served - accounts.unreachable.len(),
        accounts.unreachable.len(),
        accounts.left,
    );
    let watcher = state.live.status();
    levels.watcher_following.set(watcher.following as i64);
    levels.watcher_leased.set(watcher.leased as i64);
    levels.watcher_polls.set(watcher.polls as i64);
    levels.watcher_failed_polls.set(watcher.failed_polls as i64);
    levels.watcher_leases_ok.set(i64::from(watcher.leases_ok.unwrap_or(false)));
    let hints = state.live.hint_status();
    levels.hints_queued.set(hints.queued as i64);
    levels.hints_dropped.set(hints.dropped as i64);
    levels.subscriptions.set(state.streaming.operations_open() as i64);
    levels.subscribed_executions.set(watcher.subscribers as i64);
    levels.streaming_connections.set(state.open_streams() as i64);
    ([(CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], metrics.render())
}
