//! Webhooks in GraphQL: the endpoint type, its delivery log, and what the roots' webhook fields
//! call (`webhooks`, `webhook`, and the mutations). Thin over [`WebhookService`], which checks
//! the operator role, the URL and the filter, and audits every change.

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{ComplexObject, Context, Enum, InputObject, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};

use super::context::{cache_hint, caller, sized_complexity, Coded};
use super::index::{snapshot_filter, ExecutionFilter};
use crate::error::GatewayError;
use crate::model::WebhookEventKind;
use crate::service::webhooks::{
    Attempt, Delivery, EndpointChanges, NewEndpoint, StoredEvent, Webhook, WebhookService, MAX_DELIVERY_PAGE,
};

/// A new endpoint.
#[derive(InputObject)]
pub struct CreateWebhookInput {
    /// Where events are POSTed: `https://` (`http://` only with `--webhooks-allow-http`), never
    /// a loopback, private or link-local address unless `--webhooks-allow-private`.
    url: String,
    /// Which executions' events it hears of, as `executions` filters them (no times). Default:
    /// every execution the creator may see.
    filter: Option<ExecutionFilter>,
    /// Which events it hears of. Default: all.
    events: Option<Vec<WebhookEventKind>>,
    description: Option<String>,
}

/// What changes of an endpoint; what is left out stays.
#[derive(InputObject)]
pub struct UpdateWebhookInput {
    url: Option<String>,
    filter: Option<ExecutionFilter>,
    events: Option<Vec<WebhookEventKind>>,
    /// `true` also clears why it was disabled; deliveries go on from where they stopped.
    enabled: Option<bool>,
    description: Option<String>,
}

/// Where a delivery stands.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum WebhookDeliveryState {
    /// Not sent yet, or failed and to be tried again at `nextAttemptAt`.
    Pending,
    /// An attempt was answered 2xx.
    Delivered,
    /// Every attempt on the retry schedule failed, or the endpoint answered 410 Gone.
    Failed,
}

impl WebhookDeliveryState {
    fn as_str(self) -> &'static str {
        match self {
            WebhookDeliveryState::Pending => "PENDING",
            WebhookDeliveryState::Delivered => "DELIVERED",
            WebhookDeliveryState::Failed => "FAILED",
        }
    }

    fn parse(state: &str) -> Self {
        match state {
            "DELIVERED" => WebhookDeliveryState::Delivered,
            "FAILED" => WebhookDeliveryState::Failed,
            _ => WebhookDeliveryState::Pending,
        }
    }
}

/// An endpoint with its signing secret: the one answer that carries the secret.
#[derive(SimpleObject)]
pub struct WebhookWithSecret {
    webhook: WebhookNode,
    /// The Standard Webhooks secret (`whsec_…`) its deliveries are signed with. Keep it: it is
    /// never shown again (`rotateWebhookSecret` makes a new one).
    secret: String,
}

impl From<Webhook> for WebhookWithSecret {
    fn from(webhook: Webhook) -> Self {
        WebhookWithSecret { secret: webhook.secret.clone(), webhook: WebhookNode(webhook) }
    }
}

/// An endpoint that execution events are POSTed to, signed per Standard Webhooks.
pub struct WebhookNode(Webhook);

/// Which executions an endpoint hears of.
#[derive(SimpleObject)]
pub struct WebhookFilter {
    task_arns: Vec<String>,
    statuses: Vec<String>,
    region: Option<String>,
    account_ids: Vec<String>,
    task_mode: Option<String>,
    error_code: Option<String>,
    running: Option<bool>,
}

#[Object(name = "Webhook")]
impl WebhookNode {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    async fn url(&self) -> &str {
        &self.0.url
    }

    async fn description(&self) -> &str {
        &self.0.description
    }

    async fn filter(&self) -> WebhookFilter {
        let filter = &self.0.filter.0;
        WebhookFilter {
            task_arns: filter.task_arns.iter().map(ToString::to_string).collect(),
            statuses: filter.statuses.clone(),
            region: filter.region.as_ref().map(ToString::to_string),
            account_ids: filter.account_ids.iter().map(ToString::to_string).collect(),
            task_mode: filter.task_mode.clone(),
            error_code: filter.error_code.clone(),
            running: filter.running,
        }
    }

    async fn events(&self) -> Vec<WebhookEventKind> {
        self.0.events.iter().filter_map(|name| WebhookEventKind::parse(name)).collect()
    }

    /// Whether deliveries are made. An endpoint is disabled by `updateWebhook`, by answering
    /// 410 Gone, or by failing every delivery for `--webhook-disable-after`.
    async fn enabled(&self) -> bool {
        self.0.enabled
    }

    async fn disabled_reason(&self) -> Option<&str> {
        self.0.disabled_reason.as_deref()
    }

    /// Since when every delivery attempt has failed; null when the last one succeeded.
    async fn failing_since(&self) -> Option<DateTime<Utc>> {
        self.0.failing_since
    }

    /// Until when the secret replaced by the last rotation still signs too; null outside an
    /// overlap.
    async fn previous_secret_expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.previous_secret_until.filter(|until| *until > Utc::now())
    }

    /// The API key (or JWT subject) that created it.
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// Its deliveries, newest first (at most 100 a page, 20 by default), in one state if
    /// `status` is given.
    #[graphql(complexity = "sized_complexity(first, 20, MAX_DELIVERY_PAGE as usize, child_complexity)")]
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        status: Option<WebhookDeliveryState>,
    ) -> Result<Connection<String, WebhookDeliveryNode, EmptyFields, EmptyFields>> {
        cache_hint(ctx).served_other();
        let before = after
            .map(|cursor| {
                cursor.parse::<i64>().map_err(|_| {
                    GatewayError::BadUserInput(
                        "deliveries: after must be a cursor this field returned".into(),
                    )
                })
            })
            .transpose()
            .coded()?;
        let first = first.unwrap_or(20);
        let service = ctx.data_unchecked::<WebhookService>();
        let state = status.map(WebhookDeliveryState::as_str);
        let (page, more) =
            service.deliveries(caller(ctx)?, &self.0.id, state, before, first).await.coded()?;
        let mut connection = Connection::new(false, more);
        connection.edges.extend(
            page.into_iter()
                .map(|delivery| Edge::new(delivery.id.to_string(), WebhookDeliveryNode(delivery))),
        );
        Ok(connection)
    }
}

/// One event for one endpoint, and every attempt at sending it.
pub struct WebhookDeliveryNode(Delivery);

#[Object(name = "WebhookDelivery")]
impl WebhookDeliveryNode {
    /// What `redeliverWebhookEvent` takes.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn status(&self) -> WebhookDeliveryState {
        WebhookDeliveryState::parse(&self.0.state)
    }

    async fn event(&self) -> WebhookEventNode<'_> {
        WebhookEventNode(&self.0.event)
    }

    /// Oldest first.
    async fn attempts(&self) -> Vec<WebhookAttempt> {
        self.0.attempts.0.iter().map(WebhookAttempt::from).collect()
    }

    /// When it is tried next, while PENDING.
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        (self.0.state == "PENDING").then_some(self.0.next_attempt_at)
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// An event as sent.
pub struct WebhookEventNode<'a>(&'a StoredEvent);

#[Object(name = "WebhookEvent")]
impl WebhookEventNode<'_> {
    /// The `webhook-id` header and the body's `id`: the same for every attempt and replica,
    /// for receivers to deduplicate on.
    async fn id(&self) -> &str {
        &self.0.event_id
    }

    /// `execution.started`, `execution.status_changed`, `execution.finished` or `report.ready`.
    #[graphql(name = "type")]
    async fn event_type(&self) -> &str {
        &self.0.event_type
    }

    async fn execution_arn(&self) -> ID {
        ID(self.0.execution_arn.clone())
    }

    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.occurred_at
    }

    /// The JSON body POSTed.
    async fn body(&self) -> String {
        self.0.envelope().to_string()
    }
}

/// One attempt at a delivery.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct WebhookAttempt {
    at: DateTime<Utc>,
    /// The HTTP status the endpoint answered; null when it did not answer.
    status: Option<i32>,
    #[graphql(skip)]
    duration_ms: u64,
    /// Why there was no answer (a timeout, a refused connection, a refused address).
    error: Option<String>,
}

#[ComplexObject]
impl WebhookAttempt {
    async fn duration_ms(&self) -> i32 {
        i32::try_from(self.duration_ms).unwrap_or(i32::MAX)
    }
}

impl From<&Attempt> for WebhookAttempt {
    fn from(attempt: &Attempt) -> Self {
        WebhookAttempt {
            at: attempt.at,
            status: attempt.status.map(i32::from),
            duration_ms: attempt.duration_ms,
            error: attempt.error.clone(),
        }
    }
}

fn service<'a>(ctx: &Context<'a>) -> &'a WebhookService {
    ctx.data_unchecked::<WebhookService>()
}

pub async fn webhooks(ctx: &Context<'_>) -> Result<Vec<WebhookNode>> {
    cache_hint(ctx).served_other();
    Ok(service(ctx).list(caller(ctx)?).await.coded()?.into_iter().map(WebhookNode).collect())
}

pub async fn webhook(ctx: &Context<'_>, id: ID) -> Result<Option<WebhookNode>> {
    cache_hint(ctx).served_other();
    Ok(service(ctx).get(caller(ctx)?, &id).await.coded()?.map(WebhookNode))
}

pub async fn create(ctx: &Context<'_>, input: CreateWebhookInput) -> Result<WebhookWithSecret> {
    let caller = caller(ctx)?;
    let filter = snapshot_filter(input.filter, caller).coded()?;
    let new = NewEndpoint { url: input.url, description: input.description, filter, events: input.events };
    Ok(service(ctx).create(caller, new).await.coded()?.into())
}

pub async fn update(ctx: &Context<'_>, id: ID, input: UpdateWebhookInput) -> Result<WebhookNode> {
    let caller = caller(ctx)?;
    let filter = input.filter.map(|filter| snapshot_filter(Some(filter), caller)).transpose().coded()?;
    let changes = EndpointChanges {
        url: input.url,
        description: input.description,
        filter,
        events: input.events,
        enabled: input.enabled,
    };
    Ok(WebhookNode(service(ctx).update(caller, &id, changes).await.coded()?))
}

pub async fn rotate(ctx: &Context<'_>, id: ID, overlap_seconds: Option<i32>) -> Result<WebhookWithSecret> {
    let overlap = overlap_seconds
        .map(|seconds| {
            u64::try_from(seconds)
                .map(std::time::Duration::from_secs)
                .map_err(|_| GatewayError::BadUserInput("overlapSeconds must be 0 or more".into()))
        })
        .transpose()
        .coded()?;
    Ok(service(ctx).rotate(caller(ctx)?, &id, overlap).await.coded()?.into())
}

pub async fn delete(ctx: &Context<'_>, id: ID) -> Result<ID> {
    service(ctx).delete(caller(ctx)?, &id).await.coded()?;
    Ok(id)
}

pub async fn redeliver(ctx: &Context<'_>, id: ID) -> Result<WebhookDeliveryNode> {
    let delivery = id
        .parse::<i64>()
        .map_err(|_| GatewayError::NotFound(format!("no webhook delivery {}", id.as_str())))
        .coded()?;
    Ok(WebhookDeliveryNode(service(ctx).redeliver(caller(ctx)?, delivery).await.coded()?))
}
