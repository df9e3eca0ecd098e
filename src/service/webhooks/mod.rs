//! Webhooks: endpoints operators register for execution events, and their delivery.
//!
//! Endpoints are data (`webhooks`), managed here by operators and audited. Events reach the
//! outbox through the index writer, in the transaction that records the change
//! (`store::webhooks::outbox`); [`delivery`] sends them, signed per Standard Webhooks
//! ([`signature`]), to URLs the [`destination`] policy allows.

pub mod delivery;
pub mod destination;
pub mod signature;

use std::time::Duration;

use serde_json::json;

use crate::error::GatewayError;
use crate::model::WebhookEventKind;
use crate::request::{Caller, Role};
use crate::service::audit;
use crate::service::index::{checked, SnapshotFilter};
use crate::store::control::ControlStore;
pub use crate::store::webhooks::{Attempt, Delivery, StoredEvent, Webhook};
use crate::store::webhooks::{NewWebhook, WebhookChanges, WebhookStore};
use crate::store::within;
use destination::Policy;

const MAX_URL: usize = 2048;
const MAX_DESCRIPTION: usize = 1000;
/// Deliveries listed at once.
pub const MAX_DELIVERY_PAGE: i32 = 100;

/// What an operator gives for a new endpoint.
pub struct NewEndpoint {
    pub url: String,
    pub description: Option<String>,
    pub filter: SnapshotFilter,
    pub events: Option<Vec<WebhookEventKind>>,
}

/// What an operator changes of an endpoint (`None`: kept).
#[derive(Default)]
pub struct EndpointChanges {
    pub url: Option<String>,
    pub description: Option<String>,
    pub filter: Option<SnapshotFilter>,
    pub events: Option<Vec<WebhookEventKind>>,
    pub enabled: Option<bool>,
}

/// The delivery states the log can be read by.
pub const DELIVERY_STATES: [&str; 3] = ["PENDING", "DELIVERED", "FAILED"];

#[derive(Clone)]
pub struct WebhookService {
    /// The endpoints, and each call's time limit; none without a database.
    store: Option<(WebhookStore, Duration)>,
    audit: Option<(ControlStore, Duration)>,
    policy: Policy,
    /// How long an old secret signs after a rotation, unless the call says.
    overlap: Duration,
}

impl WebhookService {
    pub fn new(
        store: Option<(WebhookStore, Duration)>,
        audit: Option<(ControlStore, Duration)>,
        policy: Policy,
        overlap: Duration,
    ) -> Self {
        WebhookService { store, audit, policy, overlap }
    }

    /// The store, for an operator; every call goes through here.
    fn store(&self, caller: &Caller) -> Result<(&WebhookStore, Duration), GatewayError> {
        if caller.role() < Role::Operator {
            return Err(GatewayError::Forbidden(format!(
                "webhooks are for the operator role; this caller is a {}",
                caller.role().as_str()
            )));
        }
        match &self.store {
            Some((store, limit)) => Ok((store, *limit)),
            None => Err(GatewayError::HistoryNotConfigured),
        }
    }

    /// Registers an endpoint; its secret is in the answer, and only there.
    pub async fn create(&self, caller: &Caller, new: NewEndpoint) -> Result<Webhook, GatewayError> {
        let arguments = json!({ "url": new.url, "description": new.description, "events": new.events });
        let result = async {
            let (store, limit) = self.store(caller)?;
            let url = self.checked_url(&new.url).await?;
            let description = checked_description(new.description.unwrap_or_default())?;
            let events = event_names(new.events.unwrap_or_else(|| WebhookEventKind::ALL.to_vec()))?;
            let filter = webhook_filter(new.filter)?;
            let id = new_id();
            let secret = signature::new_secret();
            let new = NewWebhook {
                id: &id,
                url: &url,
                description: &description,
                filter: &filter,
                events: &events,
                secret: &secret,
                created_by: caller.key(),
            };
            Ok(within(limit, store.create(new)).await?)
        }
        .await;
        let target = result.as_ref().map_or("-", |webhook| webhook.id.as_str()).to_owned();
        self.audit(caller, "createWebhook", &target, arguments, &result).await;
        result
    }

    pub async fn list(&self, caller: &Caller) -> Result<Vec<Webhook>, GatewayError> {
        let (store, limit) = self.store(caller)?;
        Ok(within(limit, store.list()).await?)
    }

    pub async fn get(&self, caller: &Caller, id: &str) -> Result<Option<Webhook>, GatewayError> {
        let (store, limit) = self.store(caller)?;
        Ok(within(limit, store.get(id)).await?)
    }

    pub async fn update(
        &self,
        caller: &Caller,
        id: &str,
        changes: EndpointChanges,
    ) -> Result<Webhook, GatewayError> {
        let arguments = json!({
            "url": changes.url, "description": changes.description, "events": changes.events,
            "enabled": changes.enabled, "filter": changes.filter.is_some(),
        });
        let result = async {
            let (store, limit) = self.store(caller)?;
            let url = match changes.url {
                Some(url) => Some(self.checked_url(&url).await?),
                None => None,
            };
            let changes = WebhookChanges {
                url,
                description: changes.description.map(checked_description).transpose()?,
                filter: changes.filter.map(webhook_filter).transpose()?,
                events: changes.events.map(event_names).transpose()?,
                enabled: changes.enabled,
            };
            within(limit, store.update(id, changes)).await?.ok_or_else(|| not_found(id))
        }
        .await;
        self.audit(caller, "updateWebhook", id, arguments, &result).await;
        result
    }

    /// A new secret; the old one still signs for `overlap` (default `--webhook-secret-overlap`).
    pub async fn rotate(
        &self,
        caller: &Caller,
        id: &str,
        overlap: Option<Duration>,
    ) -> Result<Webhook, GatewayError> {
        let overlap = overlap.unwrap_or(self.overlap);
        let arguments = json!({ "overlapSeconds": overlap.as_secs() });
        let result = async {
            let (store, limit) = self.store(caller)?;
            let secret = signature::new_secret();
            within(limit, store.rotate(id, &secret, overlap)).await?.ok_or_else(|| not_found(id))
        }
        .await;
        self.audit(caller, "rotateWebhookSecret", id, arguments, &result).await;
        result
    }

    pub async fn delete(&self, caller: &Caller, id: &str) -> Result<(), GatewayError> {
        let result = async {
            let (store, limit) = self.store(caller)?;
            match within(limit, store.delete(id)).await? {
                true => Ok(()),
                false => Err(not_found(id)),
            }
        }
        .await;
        self.audit(caller, "deleteWebhook", id, json!({}), &result).await;
        result
    }

    /// Endpoint `id`'s deliveries, newest first: at most `first` before delivery `before`,
    /// in `state` if given; and whether there are more.
    pub async fn deliveries(
        &self,
        caller: &Caller,
        id: &str,
        state: Option<&str>,
        before: Option<i64>,
        first: i32,
    ) -> Result<(Vec<Delivery>, bool), GatewayError> {
        if !(0..=MAX_DELIVERY_PAGE).contains(&first) {
            return Err(GatewayError::BadUserInput(format!(
                "deliveries: first must be between 0 and {MAX_DELIVERY_PAGE}"
            )));
        }
        let (store, limit) = self.store(caller)?;
        let mut page = within(limit, store.deliveries(id, state, before, i64::from(first) + 1)).await?;
        let more = page.len() > first as usize;
        page.truncate(first as usize);
        Ok((page, more))
    }

    /// Sends delivery `id`'s event to its endpoint again, after what is queued already.
    pub async fn redeliver(&self, caller: &Caller, id: i64) -> Result<Delivery, GatewayError> {
        let result = async {
            let (store, limit) = self.store(caller)?;
            within(limit, store.redeliver(id))
                .await?
                .ok_or_else(|| GatewayError::NotFound(format!("no webhook delivery {id}")))
        }
        .await;
        self.audit(caller, "redeliverWebhookEvent", &id.to_string(), json!({}), &result).await;
        result
    }

    /// `url` as the policy allows it, and its name resolved now to addresses it allows.
    async fn checked_url(&self, url: &str) -> Result<String, GatewayError> {
        let bad = GatewayError::BadUserInput;
        if url.len() > MAX_URL {
            return Err(bad(format!("url is longer than {MAX_URL} characters")));
        }
        let parsed = self.policy.check_url(url).map_err(bad)?;
        if let Some(url::Host::Domain(domain)) = parsed.host() {
            let port = parsed.port_or_known_default().unwrap_or(443);
            self.policy.resolve(domain, port).await.map_err(|error| bad(format!("url: {error}")))?;
        }
        Ok(parsed.to_string())
    }

    async fn audit<T>(
        &self,
        caller: &Caller,
        action: &str,
        target: &str,
        arguments: serde_json::Value,
        result: &Result<T, GatewayError>,
    ) {
        let outcome = if result.is_ok() { "ok" } else { "error" };
        audit::record(self.audit.as_ref(), caller, action, target, arguments, outcome, result.as_ref().err())
            .await;
    }
}

fn not_found(id: &str) -> GatewayError {
    GatewayError::NotFound(format!("no webhook {id}"))
}

fn new_id() -> String {
    let mut random = [0u8; 12];
    getrandom::fill(&mut random).expect("the operating system's random source");
    format!("wh_{}", random.iter().map(|byte| format!("{byte:02x}")).collect::<String>())
}

fn checked_description(description: String) -> Result<String, GatewayError> {
    if description.chars().count() > MAX_DESCRIPTION || description.contains('\0') {
        return Err(GatewayError::BadUserInput(format!(
            "description takes at most {MAX_DESCRIPTION} characters, without NUL"
        )));
    }
    Ok(description)
}

fn event_names(events: Vec<WebhookEventKind>) -> Result<Vec<String>, GatewayError> {
    if events.is_empty() {
        return Err(GatewayError::BadUserInput("events: name at least one kind of event".into()));
    }
    let mut names: Vec<String> = Vec::new();
    for event in events {
        if !names.iter().any(|name| name == event.as_str()) {
            names.push(event.as_str().to_owned());
        }
    }
    Ok(names)
}

/// The filter an endpoint keeps (narrowed already to the accounts its creator may see): what
/// it names, bounds checked, and no times (events are news, now).
fn webhook_filter(filter: SnapshotFilter) -> Result<SnapshotFilter, GatewayError> {
    let timed = filter.started_after.is_some()
        || filter.started_before.is_some()
        || filter.ended_after.is_some()
        || filter.ended_before.is_some()
        || filter.updated_after.is_some();
    if timed {
        return Err(GatewayError::BadUserInput(
            "filter: a webhook's filter takes no times (startedAfter, endedBefore, updatedAfter, …); \
             it applies to each event as it happens"
                .into(),
        ));
    }
    checked(filter)
}
