//! The outbox: execution events appended by the index writer in the transaction that records
//! the change (and task reports' REPORT_READY by the ingestion that finishes one), read by each
//! endpoint from its cursor. Appends hold one advisory lock until they commit, so events commit
//! in `seq` order: a reader past `seq` N never meets a smaller one later.

use std::collections::HashMap;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};

use crate::model::{EnumValue, ExecutionEventKind, TaskExecution};
use crate::store::StoreError;

/// The advisory lock that orders appends (any constant unused elsewhere: "whevents").
const APPEND_LOCK: i64 = 0x7768_6576_656e_7473;
/// An execution first seen already finished longer ago than this is history being filled in
/// (a discovery sync's first run), not news: no event.
const NEWS_HORIZON: Duration = Duration::from_secs(24 * 3600);

/// An event to append.
#[derive(Debug)]
pub struct OutboxEvent {
    /// The Standard Webhooks message id: the same for the same change, whoever records it.
    pub event_id: String,
    /// `execution.finished` and so on.
    pub event_type: &'static str,
    pub execution_arn: String,
    pub occurred_at: DateTime<Utc>,
    /// The envelope's `data`.
    pub data: serde_json::Value,
}

/// An event as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StoredEvent {
    pub seq: i64,
    pub event_id: String,
    pub event_type: String,
    pub execution_arn: String,
    pub occurred_at: DateTime<Utc>,
    pub data: serde_json::Value,
    /// When it entered the outbox.
    pub recorded_at: DateTime<Utc>,
}

impl StoredEvent {
    /// The body sent: Standard Webhooks' envelope.
    pub fn envelope(&self) -> serde_json::Value {
        json!({
            "type": self.event_type,
            "id": self.event_id,
            "timestamp": self.occurred_at,
            "data": self.data,
        })
    }
}

/// An id that is the same wherever the same change of `arn` is recorded.
pub fn event_id(arn: &str, what: &str) -> String {
    let hash = Sha256::new().chain_update(arn).chain_update([0]).chain_update(what).finalize();
    format!("evt_{}", URL_SAFE_NO_PAD.encode(&hash[..18]))
}

/// The events a batch of upserted rows makes: `rows` and their serialised `documents` side by
/// side, `changes` the rows that changed with the status each had before (`None`: new).
pub fn execution_events(
    rows: &[&TaskExecution],
    documents: &[serde_json::Value],
    changes: &[(String, Option<String>)],
) -> Vec<OutboxEvent> {
    if changes.is_empty() {
        return Vec::new();
    }
    let changed: HashMap<&str, Option<&str>> =
        changes.iter().map(|(arn, previous)| (arn.as_str(), previous.as_deref())).collect();
    let mut events = Vec::new();
    for (execution, document) in rows.iter().zip(documents) {
        let Some(previous) = changed.get(execution.task_execution_arn.as_str()) else { continue };
        let previous = previous.map(EnumValue::from_wire);
        let Some(kind) = ExecutionEventKind::of(previous.as_ref(), execution) else { continue };
        if previous.is_none() && kind == ExecutionEventKind::Finished && !recent(execution) {
            continue;
        }
        let arn = execution.task_execution_arn.as_str();
        events.push(OutboxEvent {
            event_id: event_id(arn, execution.status.raw()),
            event_type: kind.webhook_type(),
            execution_arn: arn.to_owned(),
            occurred_at: execution.fetched_at,
            data: json!({
                "kind": kind,
                "previousStatus": previous.as_ref().map(EnumValue::raw),
                "execution": document,
            }),
        });
    }
    events
}

/// Whether a finished execution ended (or started, lacking an end) within the horizon.
fn recent(execution: &TaskExecution) -> bool {
    let ended = execution.end_time.or(execution.start_time).unwrap_or(execution.fetched_at);
    execution.fetched_at.signed_duration_since(ended).to_std().map_or(true, |ago| ago <= NEWS_HORIZON)
}

/// Appends `events` in `connection`'s transaction, unless no endpoint is enabled (nobody would
/// read them; an endpoint created later starts after them anyway). An event recorded already
/// (another replica saw the same change) is not appended twice.
pub async fn append(connection: &mut PgConnection, events: &[OutboxEvent]) -> Result<(), StoreError> {
    let wanted = sqlx::query_scalar!(r#"SELECT EXISTS (SELECT 1 FROM webhooks WHERE enabled) AS "wanted!""#)
        .fetch_one(&mut *connection)
        .await?;
    if !wanted || events.is_empty() {
        return Ok(());
    }
    sqlx::query!("SELECT pg_advisory_xact_lock($1)", APPEND_LOCK).execute(&mut *connection).await?;
    let ids: Vec<&str> = events.iter().map(|event| event.event_id.as_str()).collect();
    let types: Vec<&str> = events.iter().map(|event| event.event_type).collect();
    let arns: Vec<&str> = events.iter().map(|event| event.execution_arn.as_str()).collect();
    let times: Vec<DateTime<Utc>> = events.iter().map(|event| event.occurred_at).collect();
    let data: Vec<serde_json::Value> = events.iter().map(|event| event.data.clone()).collect();
    sqlx::query!(
        "INSERT INTO webhook_events (event_id, type, execution_arn, occurred_at, data) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::jsonb[]) \
         ON CONFLICT (event_id) DO NOTHING",
        &ids as &[&str],
        &types as &[&str],
        &arns as &[&str],
        &times,
        &data,
    )
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// The outbox's events after `seq`, oldest first, at most `limit`.
pub(super) async fn after(pool: &PgPool, seq: i64, limit: i64) -> Result<Vec<StoredEvent>, StoreError> {
    let events = sqlx::query_as!(
        StoredEvent,
        r#"SELECT seq, event_id, type AS event_type, execution_arn, occurred_at, data, recorded_at
           FROM webhook_events WHERE seq > $1 ORDER BY seq LIMIT $2"#,
        seq,
        limit,
    )
    .fetch_all(pool)
    .await?;
    Ok(events)
}

/// The newest event's `seq` (0 when there is none): what endpoints wait on.
pub(super) async fn newest(pool: &PgPool) -> Result<i64, StoreError> {
    let newest = sqlx::query_scalar!(r#"SELECT COALESCE(max(seq), 0) AS "newest!" FROM webhook_events"#)
        .fetch_one(pool)
        .await?;
    Ok(newest)
}

/// Deletes events recorded before `cutoff` (their deliveries go with them); how many.
pub(super) async fn prune(pool: &PgPool, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
    let deleted =
        sqlx::query!("DELETE FROM webhook_events WHERE recorded_at < $1", cutoff).execute(pool).await?;
    Ok(deleted.rows_affected())
}
