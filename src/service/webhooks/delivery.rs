//! Delivery: each replica takes leases on enabled endpoints and, per endpoint it holds, one
//! task that sends its events in order, one at a time.
//!
//! An endpoint's task moves the events it wants from the outbox into its PENDING deliveries
//! (and its cursor past them) in one transaction, then sends the oldest PENDING delivery until
//! it is DELIVERED or FAILED: a 2xx within `--webhook-timeout` is delivered; anything else is
//! tried again on `--webhook-retry-schedule` (with ±10 % jitter, or later if the receiver's
//! `Retry-After` says so), and after the last attempt the delivery is FAILED and the next one
//! goes. 410 Gone disables the endpoint; so does failing without a break for
//! `--webhook-disable-after`. The tasks share a cap on requests in flight, so a slow endpoint
//! holds one of them, never another endpoint's turn.
//!
//! At least once: a replica that dies between a send and its record leaves the delivery
//! PENDING, and the next holder of the lease sends it again, with the same `webhook-id`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Deserialize as _;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use super::destination::Policy;
use super::signature::sign;
use crate::metrics::Metrics;
use crate::model::TaskExecution;
use crate::store::webhooks::{Attempt, AttemptOutcome, Delivery, StoredEvent, Webhook, WebhookStore};
use crate::store::StoreError;

/// Events read from the outbox at once.
const EVENTS_AT_ONCE: i64 = 500;
/// How often an idle endpoint task looks again at its endpoint (settings, redeliveries).
const IDLE_RECHECK: Duration = Duration::from_secs(1);
/// How often the backlog gauges are read.
const BACKLOG_EVERY: Duration = Duration::from_secs(5);
/// The longest wait a `Retry-After` can ask for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);
/// After a database error, the wait before an endpoint task tries again.
const STORE_BACKOFF: Duration = Duration::from_secs(1);

#[derive(Clone, Debug)]
pub struct DeliverySettings {
    pub schedule: Vec<Duration>,
    pub timeout: Duration,
    pub disable_after: Duration,
    pub max_in_flight: usize,
    pub poll_interval: Duration,
    pub lease: Duration,
    pub policy: Policy,
}

/// What sends this replica's webhooks.
#[derive(Clone)]
pub struct Dispatcher {
    shared: Arc<Shared>,
}

struct Shared {
    store: WebhookStore,
    replica: String,
    settings: DeliverySettings,
    client: reqwest::Client,
    in_flight: Semaphore,
    metrics: Metrics,
    /// The outbox's newest event, for idle endpoint tasks to wait on.
    newest: watch::Sender<i64>,
}

impl Dispatcher {
    pub fn new(store: WebhookStore, replica: String, settings: DeliverySettings, metrics: Metrics) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(settings.policy.resolver())
            .timeout(settings.timeout)
            .user_agent(concat!("datasync-gateway/", env!("CARGO_PKG_VERSION"), " (webhooks)"))
            .build()
            .expect("the webhook HTTP client builds");
        let shared = Shared {
            store,
            replica,
            in_flight: Semaphore::new(settings.max_in_flight),
            settings,
            client,
            metrics,
            newest: watch::channel(0).0,
        };
        Dispatcher { shared: Arc::new(shared) }
    }

    /// The task that holds leases and runs an endpoint task per endpoint held.
    pub fn start(self) -> tokio::task::AbortHandle {
        tokio::spawn(async move { self.run().await }).abort_handle()
    }

    async fn run(self) {
        let shared = &self.shared;
        let mut endpoints: HashMap<String, JoinHandle<()>> = HashMap::new();
        let mut ticks = tokio::time::interval(shared.settings.poll_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let renew_every = shared.settings.lease / 3;
        let (mut renewed, mut measured) = (None::<Instant>, None::<Instant>);
        loop {
            ticks.tick().await;
            match shared.store.newest_event().await {
                Ok(newest) => {
                    shared.newest.send_if_modified(|known| std::mem::replace(known, newest) != newest);
                }
                Err(error) => tracing::warn!(%error, "webhooks: the outbox could not be read"),
            }
            // This replica's leases are renewed a few times a lease (and the senders of those it
            // no longer holds stopped); free endpoints (new ones, a dead replica's) are taken at
            // every tick.
            if renewed.is_none_or(|at| at.elapsed() >= renew_every) {
                renewed = Some(Instant::now());
                match shared.store.renew(&shared.replica, shared.settings.lease).await {
                    Ok(held) => endpoints.retain(|id, task| {
                        let keep = held.contains(id) && !task.is_finished();
                        if !keep {
                            task.abort();
                        }
                        keep
                    }),
                    // Without renewal the leases run out and other replicas take over; the
                    // senders' writes check the lease, so none goes on alongside them.
                    Err(error) => tracing::warn!(%error, "webhooks: endpoint leases could not be renewed"),
                }
            }
            match shared.store.claim(&shared.replica, shared.settings.lease).await {
                Ok(taken) => {
                    for id in taken {
                        let task = tokio::spawn(self.clone().endpoint(id.clone()));
                        if let Some(previous) = endpoints.insert(id, task) {
                            previous.abort();
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "webhooks: free endpoints could not be taken"),
            }
            if measured.is_none_or(|at| at.elapsed() >= BACKLOG_EVERY) {
                measured = Some(Instant::now());
                if let Ok(backlog) = shared.store.backlog().await {
                    let levels = shared.metrics.levels();
                    levels.webhook_backlog.set(backlog.pending);
                    let age = backlog.oldest.map_or(0.0, seconds_since);
                    levels.webhook_oldest_pending_seconds.set(age);
                }
            }
        }
    }

    /// Gives this replica's endpoints back at shutdown, to be taken by another at once.
    pub async fn release(&self) {
        match self.shared.store.release(&self.shared.replica).await {
            Ok(released) => tracing::info!(released, "webhook leases released"),
            Err(error) => tracing::warn!(%error, "could not release webhook leases; they run out instead"),
        }
    }

    /// Sends endpoint `id`'s events while this replica holds it.
    async fn endpoint(self, id: String) {
        let mut newest = self.shared.newest.subscribe();
        loop {
            match self.step(&id, &mut newest).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(error) => {
                    tracing::warn!(%error, webhook = %id, "webhooks: the endpoint's deliveries could not be read or recorded");
                    tokio::time::sleep(STORE_BACKOFF).await;
                }
            }
        }
    }

    /// One step: a due delivery sent, events taken from the outbox, or a wait. Whether to go
    /// on (no: the endpoint is gone, disabled, or held by another replica now).
    async fn step(&self, id: &str, newest: &mut watch::Receiver<i64>) -> Result<bool, StoreError> {
        let store = &self.shared.store;
        let Some(webhook) = store.get(id).await? else { return Ok(false) };
        if !webhook.enabled {
            return Ok(false);
        }
        if let Some(delivery) = store.head(id).await? {
            let wait = (delivery.next_attempt_at - Utc::now()).to_std().unwrap_or_default();
            if wait.is_zero() {
                self.attempt(&webhook, delivery).await?;
            } else {
                tokio::time::sleep(wait.min(IDLE_RECHECK)).await;
            }
            return Ok(true);
        }
        let events = store.events_after(webhook.cursor_seq, EVENTS_AT_ONCE).await?;
        let Some(last) = events.last() else {
            let _ =
                tokio::time::timeout(IDLE_RECHECK, newest.wait_for(|newest| *newest > webhook.cursor_seq))
                    .await;
            return Ok(true);
        };
        let wanted: Vec<i64> =
            events.iter().filter(|event| wants(&webhook, event)).map(|event| event.seq).collect();
        store.take_events(id, &self.shared.replica, last.seq, &wanted).await
    }

    /// Sends `delivery` once and records how it went.
    async fn attempt(&self, webhook: &Webhook, delivery: Delivery) -> Result<(), StoreError> {
        let shared = &self.shared;
        let _permit = shared.in_flight.acquire().await.expect("the semaphore is never closed");
        let at = Utc::now();
        let started = Instant::now();
        let sent = self.send(webhook, &delivery.event, at).await;
        let duration_ms = started.elapsed().as_millis() as u64;
        let (status, error, retry_after) = match &sent {
            Ok((status, retry_after)) => (Some(*status), None, *retry_after),
            Err(error) => (None, Some(error.clone()), None),
        };
        let attempt = Attempt { at, status, duration_ms, error };
        let attempts = delivery.attempts.0.len() + 1;
        let delivered = status.is_some_and(|status| (200..300).contains(&status));
        let gone = status == Some(410);
        let outcome = if delivered {
            AttemptOutcome::Delivered
        } else if gone {
            AttemptOutcome::Failed
        } else {
            match shared.settings.schedule.get(attempts) {
                Some(wait) => {
                    let wait = jittered(*wait).max(retry_after.unwrap_or_default().min(MAX_RETRY_AFTER));
                    AttemptOutcome::RetryAt(Utc::now() + wait)
                }
                None => AttemptOutcome::Failed,
            }
        };
        let (label, latency) = match outcome {
            AttemptOutcome::Delivered => ("delivered", Some(seconds_since(delivery.event.recorded_at))),
            AttemptOutcome::RetryAt(_) => ("retry", None),
            AttemptOutcome::Failed => ("failed", None),
        };
        shared.metrics.webhook_delivery(label, latency.map(Duration::from_secs_f64));
        let failing_since = shared.store.record_attempt(&delivery, &attempt, outcome).await?;
        if gone {
            let reason = format!("the endpoint answered 410 Gone at {}", at.to_rfc3339());
            tracing::warn!(webhook = %webhook.id, %reason, "webhook disabled");
            shared.store.disable(&webhook.id, &reason).await?;
        } else if let Some(since) = failing_since {
            if seconds_since(since) >= shared.settings.disable_after.as_secs_f64() {
                let reason = format!(
                    "every delivery failed since {} (--webhook-disable-after {})",
                    since.to_rfc3339(),
                    humantime::format_duration(shared.settings.disable_after)
                );
                tracing::warn!(webhook = %webhook.id, %reason, "webhook disabled");
                shared.store.disable(&webhook.id, &reason).await?;
            }
        }
        Ok(())
    }

    /// One POST of `event`, signed: the status and `Retry-After`, or why there was no answer.
    async fn send(
        &self,
        webhook: &Webhook,
        event: &StoredEvent,
        at: DateTime<Utc>,
    ) -> Result<(u16, Option<Duration>), String> {
        let url = self.shared.settings.policy.check_url(&webhook.url)?;
        let body = serde_json::to_vec(&event.envelope()).map_err(|error| error.to_string())?;
        let timestamp = at.timestamp();
        let mut secrets = vec![webhook.secret.as_str()];
        if let (Some(previous), Some(until)) = (&webhook.previous_secret, webhook.previous_secret_until) {
            if until > at {
                secrets.push(previous);
            }
        }
        let response = self
            .shared
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &event.event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", sign(&secrets, &event.event_id, timestamp, &body))
            .body(body)
            .send()
            .await
            .map_err(|error| describe(&error))?;
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| retry_after(value, Utc::now()));
        Ok((response.status().as_u16(), retry_after))
    }
}

/// Whether `webhook` wants `event`: one of its kinds, about an execution its filter matches.
fn wants(webhook: &Webhook, event: &StoredEvent) -> bool {
    let kind = event.data.get("kind").and_then(|kind| kind.as_str()).unwrap_or_default();
    if !webhook.events.iter().any(|wanted| wanted == kind) {
        return false;
    }
    match event.data.get("execution").map(TaskExecution::deserialize) {
        Some(Ok(execution)) => webhook.filter.0.matches(&execution),
        _ => {
            tracing::warn!(event = %event.event_id, "webhooks: an outbox event without a readable execution is skipped");
            false
        }
    }
}

/// A client error in words, without the chain's noise: what an operator reads in the log.
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "no answer in time".to_owned()
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "the request failed".to_owned()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

/// The wait a `Retry-After` value asks for at `now`: its seconds, or the time left until its
/// HTTP date (RFC 9110 allows both; a date already past asks for none). None when it is neither.
fn retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    // An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`) is an RFC 2822 date in GMT.
    let until = DateTime::parse_from_rfc2822(value).ok()?;
    Some((until.with_timezone(&Utc) - now).to_std().unwrap_or_default())
}

/// `wait` give or take 10 %, so that endpoints failing together are not retried together.
fn jittered(wait: Duration) -> Duration {
    let mut random = [0u8; 2];
    let _ = getrandom::fill(&mut random);
    let factor = 0.9 + 0.2 * f64::from(u16::from_le_bytes(random)) / f64::from(u16::MAX);
    wait.mul_f64(factor)
}

fn seconds_since(at: DateTime<Utc>) -> f64 {
    (Utc::now() - at).to_std().unwrap_or_default().as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_as_seconds_or_as_an_http_date() {
        let now = DateTime::parse_from_rfc3339("2026-11-29T12:00:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(retry_after("Sun, 29 Nov 2026 12:01:30 GMT", now), Some(Duration::from_secs(90)));
        assert_eq!(retry_after("Sun, 29 Nov 2026 11:00:00 GMT", now), Some(Duration::ZERO), "a date past");
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-5", now), None);
    }
}
