//! Webhook endpoints (`webhooks`), their leases and cursors, and the delivery log
//! (`webhook_deliveries`). The outbox they read is [`outbox`].
//!
//! An endpoint is sent to by the one replica holding its lease. That replica takes the outbox's
//! events past the endpoint's cursor, queues those the endpoint wants as PENDING deliveries and
//! moves the cursor past them in one transaction (only while it still holds the lease), then
//! sends the PENDING deliveries one at a time, oldest first. So each endpoint hears of events in
//! order, and a replica that dies mid-send leaves the delivery PENDING for the next holder.

pub mod outbox;

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::PgPool;

use super::index::filter::SnapshotFilter;
use super::StoreError;
pub use outbox::StoredEvent;

#[derive(Clone)]
pub struct WebhookStore {
    pub(super) pool: PgPool,
}

/// An endpoint as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    pub description: String,
    pub filter: Json<SnapshotFilter>,
    pub events: Vec<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<DateTime<Utc>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub failing_since: Option<DateTime<Utc>>,
    pub cursor_seq: i64,
}

/// A new endpoint.
pub struct NewWebhook<'a> {
    pub id: &'a str,
    pub url: &'a str,
    pub description: &'a str,
    pub filter: &'a SnapshotFilter,
    pub events: &'a [String],
    pub secret: &'a str,
    pub created_by: &'a str,
}

/// What an update changes (`None`: kept).
#[derive(Default)]
pub struct WebhookChanges {
    pub url: Option<String>,
    pub description: Option<String>,
    pub filter: Option<SnapshotFilter>,
    pub events: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// A delivery: one event for one endpoint, and every attempt at it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Delivery {
    pub id: i64,
    pub webhook_id: String,
    pub state: String,
    pub attempts: Json<Vec<Attempt>>,
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    #[sqlx(flatten)]
    pub event: StoredEvent,
}

/// One attempt: when, what the endpoint answered (no status: no answer), how long it took.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub at: DateTime<Utc>,
    pub status: Option<u16>,
    pub duration_ms: u64,
    pub error: Option<String>,
}

/// Where an attempt leaves its delivery.
pub enum AttemptOutcome {
    Delivered,
    RetryAt(DateTime<Utc>),
    Failed,
}

/// The deliveries still to make, over every endpoint.
#[derive(Clone, Copy, Debug, Default)]
pub struct Backlog {
    pub pending: i64,
    pub oldest: Option<DateTime<Utc>>,
}

/// A [`Webhook`]'s columns.
const WEBHOOK: &str =
    "id, url, description, filter, events, enabled, disabled_reason, secret, previous_secret, \
     previous_secret_until, created_by, created_at, updated_at, failing_since, cursor_seq";
/// A [`Delivery`] with its event, from `webhook_deliveries d JOIN webhook_events e`.
const DELIVERY: &str =
    "SELECT d.id, d.webhook_id, d.state, d.attempts, d.next_attempt_at, d.created_at, e.seq, \
     e.event_id, e.type AS event_type, e.execution_arn, e.occurred_at, e.data, e.recorded_at \
     FROM webhook_deliveries d JOIN webhook_events e ON e.seq = d.event_seq";

impl WebhookStore {
    /// Stores a new endpoint; it hears of events recorded from now on.
    pub async fn create(&self, new: NewWebhook<'_>) -> Result<Webhook, StoreError> {
        let sql = format!(
            "INSERT INTO webhooks (id, url, description, filter, events, secret, created_by, cursor_seq) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, (SELECT COALESCE(max(seq), 0) FROM webhook_events)) \
             RETURNING {WEBHOOK}"
        );
        let webhook = sqlx::query_as(&sql)
            .bind(new.id)
            .bind(new.url)
            .bind(new.description)
            .bind(Json(new.filter))
            .bind(new.events)
            .bind(new.secret)
            .bind(new.created_by)
            .fetch_one(&self.pool)
            .await?;
        Ok(webhook)
    }

    /// Every endpoint, oldest first.
    pub async fn list(&self) -> Result<Vec<Webhook>, StoreError> {
        let sql = format!("SELECT {WEBHOOK} FROM webhooks ORDER BY created_at, id");
        Ok(sqlx::query_as(&sql).fetch_all(&self.pool).await?)
    }

    pub async fn get(&self, id: &str) -> Result<Option<Webhook>, StoreError> {
        let sql = format!("SELECT {WEBHOOK} FROM webhooks WHERE id = $1");
        Ok(sqlx::query_as(&sql).bind(id).fetch_optional(&self.pool).await?)
    }

    /// Applies `changes`; enabling an endpoint clears why it was disabled and its failures.
    pub async fn update(&self, id: &str, changes: WebhookChanges) -> Result<Option<Webhook>, StoreError> {
        let sql = format!(
            "UPDATE webhooks SET url = COALESCE($2, url), description = COALESCE($3, description), \
                 filter = COALESCE($4, filter), events = COALESCE($5, events), \
                 enabled = COALESCE($6, enabled), \
                 disabled_reason = CASE WHEN $6 THEN NULL ELSE disabled_reason END, \
                 failing_since = CASE WHEN $6 THEN NULL ELSE failing_since END, \
                 updated_at = now() \
             WHERE id = $1 RETURNING {WEBHOOK}"
        );
        let webhook = sqlx::query_as(&sql)
            .bind(id)
            .bind(changes.url)
            .bind(changes.description)
            .bind(changes.filter.map(Json))
            .bind(changes.events)
            .bind(changes.enabled)
            .fetch_optional(&self.pool)
            .await?;
        Ok(webhook)
    }

    /// Makes `secret` the signing secret; the current one also signs for `overlap`.
    pub async fn rotate(
        &self,
        id: &str,
        secret: &str,
        overlap: Duration,
    ) -> Result<Option<Webhook>, StoreError> {
        let sql = format!(
            "UPDATE webhooks SET previous_secret = secret, secret = $2, \
                 previous_secret_until = now() + make_interval(secs => $3), updated_at = now() \
             WHERE id = $1 RETURNING {WEBHOOK}"
        );
        let webhook = sqlx::query_as(&sql)
            .bind(id)
            .bind(secret)
            .bind(overlap.as_secs_f64())
            .fetch_optional(&self.pool)
            .await?;
        Ok(webhook)
    }

    /// Deletes an endpoint and its delivery log; whether it existed.
    pub async fn delete(&self, id: &str) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM webhooks WHERE id = $1").bind(id).execute(&self.pool).await?;
        Ok(deleted.rows_affected() > 0)
    }

    /// Stops deliveries to an endpoint, saying why.
    pub async fn disable(&self, id: &str, reason: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE webhooks SET enabled = false, disabled_reason = $2, lease_holder = NULL, \
                 lease_expires = NULL, updated_at = now() WHERE id = $1",
        )
        .bind(id)
        .bind(reason)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Takes the enabled endpoints nobody holds (or whose holder's lease ran out); their ids.
    pub async fn claim(&self, replica: &str, lease: Duration) -> Result<Vec<String>, StoreError> {
        let taken = sqlx::query_scalar(
            "UPDATE webhooks SET lease_holder = $1, lease_expires = now() + make_interval(secs => $2) \
             WHERE id IN (SELECT id FROM webhooks WHERE enabled \
                 AND (lease_holder IS NULL OR lease_expires < now()) \
                 FOR NO KEY UPDATE SKIP LOCKED) \
             RETURNING id",
        )
        .bind(replica)
        .bind(lease.as_secs_f64())
        .fetch_all(&self.pool)
        .await?;
        Ok(taken)
    }

    /// Renews `replica`'s leases on the endpoints it holds that are still enabled; their ids.
    /// Not `SKIP LOCKED`: a row this replica's own delivery is updating must still be counted.
    pub async fn renew(&self, replica: &str, lease: Duration) -> Result<Vec<String>, StoreError> {
        let held = sqlx::query_scalar(
            "UPDATE webhooks SET lease_expires = now() + make_interval(secs => $2) \
             WHERE lease_holder = $1 AND enabled RETURNING id",
        )
        .bind(replica)
        .bind(lease.as_secs_f64())
        .fetch_all(&self.pool)
        .await?;
        Ok(held)
    }

    /// Gives `replica`'s leases back (at shutdown), for another replica to take at once.
    pub async fn release(&self, replica: &str) -> Result<u64, StoreError> {
        let released = sqlx::query(
            "UPDATE webhooks SET lease_holder = NULL, lease_expires = NULL WHERE lease_holder = $1",
        )
        .bind(replica)
        .execute(&self.pool)
        .await?;
        Ok(released.rows_affected())
    }

    /// Queues deliveries of `wanted` (outbox seqs, in order) and moves the endpoint's cursor to
    /// `through`, in one transaction, if `replica` still holds it; whether it did.
    pub async fn take_events(
        &self,
        id: &str,
        replica: &str,
        through: i64,
        wanted: &[i64],
    ) -> Result<bool, StoreError> {
        let mut transaction = self.pool.begin().await?;
        let moved = sqlx::query(
            "UPDATE webhooks SET cursor_seq = $3 \
             WHERE id = $1 AND lease_holder = $2 AND lease_expires > now() AND cursor_seq < $3",
        )
        .bind(id)
        .bind(replica)
        .bind(through)
        .execute(&mut *transaction)
        .await?;
        if moved.rows_affected() == 0 {
            return Ok(false);
        }
        if !wanted.is_empty() {
            sqlx::query(
                "INSERT INTO webhook_deliveries (webhook_id, event_seq) \
                 SELECT $1, seq FROM unnest($2::bigint[]) WITH ORDINALITY AS wanted (seq, position) \
                 ORDER BY position",
            )
            .bind(id)
            .bind(wanted)
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(true)
    }

    /// The endpoint's oldest PENDING delivery: the next to send.
    pub async fn head(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        let sql = format!("{DELIVERY} WHERE d.webhook_id = $1 AND d.state = 'PENDING' ORDER BY d.id LIMIT 1");
        Ok(sqlx::query_as(&sql).bind(id).fetch_optional(&self.pool).await?)
    }

    /// Records an attempt at delivery `id` and where it leaves it, and the endpoint's failing
    /// streak: cleared by a success, begun by a failure. Since when the endpoint has failed.
    pub async fn record_attempt(
        &self,
        delivery: &Delivery,
        attempt: &Attempt,
        outcome: AttemptOutcome,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let (state, next) = match outcome {
            AttemptOutcome::Delivered => ("DELIVERED", None),
            AttemptOutcome::RetryAt(at) => ("PENDING", Some(at)),
            AttemptOutcome::Failed => ("FAILED", None),
        };
        let mut transaction = self.pool.begin().await?;
        sqlx::query(
            "UPDATE webhook_deliveries SET attempts = attempts || $2, state = $3, \
                 next_attempt_at = COALESCE($4, next_attempt_at) WHERE id = $1",
        )
        .bind(delivery.id)
        .bind(Json([attempt]))
        .bind(state)
        .bind(next)
        .execute(&mut *transaction)
        .await?;
        let failing_since: Option<DateTime<Utc>> = sqlx::query_scalar(
            "UPDATE webhooks SET failing_since = CASE WHEN $2 THEN NULL ELSE COALESCE(failing_since, $3) END \
             WHERE id = $1 RETURNING failing_since",
        )
        .bind(&delivery.webhook_id)
        .bind(state == "DELIVERED")
        .bind(attempt.at)
        .fetch_optional(&mut *transaction)
        .await?
        .flatten();
        transaction.commit().await?;
        Ok(failing_since)
    }

    /// An endpoint's deliveries, newest first, before delivery `before` (a cursor), in
    /// `state` if given.
    pub async fn deliveries(
        &self,
        id: &str,
        state: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        let sql = format!(
            "{DELIVERY} WHERE d.webhook_id = $1 AND ($2::text IS NULL OR d.state = $2) \
             AND ($3::bigint IS NULL OR d.id < $3) ORDER BY d.id DESC LIMIT $4"
        );
        Ok(sqlx::query_as(&sql).bind(id).bind(state).bind(before).bind(limit).fetch_all(&self.pool).await?)
    }

    pub async fn delivery(&self, id: i64) -> Result<Option<Delivery>, StoreError> {
        let sql = format!("{DELIVERY} WHERE d.id = $1");
        Ok(sqlx::query_as(&sql).bind(id).fetch_optional(&self.pool).await?)
    }

    /// Queues delivery `id`'s event again for its endpoint, after what is queued already.
    pub async fn redeliver(&self, id: i64) -> Result<Option<Delivery>, StoreError> {
        let created: Option<i64> = sqlx::query_scalar(
            "INSERT INTO webhook_deliveries (webhook_id, event_seq) \
             SELECT webhook_id, event_seq FROM webhook_deliveries WHERE id = $1 RETURNING id",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        match created {
            Some(created) => self.delivery(created).await,
            None => Ok(None),
        }
    }

    /// The deliveries still to make, over every enabled endpoint.
    pub async fn backlog(&self) -> Result<Backlog, StoreError> {
        let (pending, oldest): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
            "SELECT count(*), min(e.recorded_at) FROM webhook_deliveries d \
             JOIN webhooks w ON w.id = d.webhook_id AND w.enabled \
             JOIN webhook_events e ON e.seq = d.event_seq WHERE d.state = 'PENDING'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(Backlog { pending, oldest })
    }

    /// The newest outbox event, what endpoints wait on.
    pub async fn newest_event(&self) -> Result<i64, StoreError> {
        outbox::newest(&self.pool).await
    }

    /// Outbox events after `seq`, oldest first.
    pub async fn events_after(&self, seq: i64, limit: i64) -> Result<Vec<StoredEvent>, StoreError> {
        outbox::after(&self.pool, seq, limit).await
    }

    /// Deletes events (and their deliveries) recorded before `cutoff`.
    pub async fn prune(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        outbox::prune(&self.pool, cutoff).await
    }
}
