//! The audit of every change an operator makes (executions started or cancelled, webhooks):
//! who, what, on what, with which arguments, and how it ended, in `audit_log` and in the log
//! (target `audit`). The log line is written first, so a change is on record even when the
//! database is not.

use std::time::Duration;

use crate::error::GatewayError;
use crate::request::Caller;
use crate::store::control::ControlStore;
use crate::store::within;

/// Records one mutation (`outcome`: ok, error, or what else the action tells apart); `store` is the audit table and its time limit, when there is a database.
pub async fn record(
    store: Option<&(ControlStore, Duration)>,
    caller: &Caller,
    action: &str,
    target: &str,
    arguments: serde_json::Value,
    outcome: &str,
    error: Option<&GatewayError>,
) {
    let code = error.map(|error| error.code().as_str());
    tracing::info!(target: "audit", caller = %caller.key(), action, target, outcome, error = code, "mutation");
    if let Some((store, limit)) = store {
        let written =
            within(*limit, store.audit(caller.key(), action, target, &arguments, outcome, code)).await;
        if let Err(error) = written {
            tracing::error!(%error, action, target, "could not write the audit row (the log line above stands)");
        }
    }
}
