//! The mutation root: control of executions, for callers with the operator role (the gate
//! refuses a reader's mutation before it runs). Thin over [`crate::service::control`].

use async_graphql::{Context, InputObject, Object, Result, ID};
use tracing::Instrument;

use super::context::{caller, execution_arn, resolver_span, Coded};
use super::webhook::{
    self, CreateWebhookInput, UpdateWebhookInput, WebhookDeliveryNode, WebhookNode, WebhookWithSecret,
};
use super::TaskExecutionNode;
use crate::error::GatewayError;
use crate::model::{
    DataSyncEnum, Long, ObjectVersionIds, ReportLevel, ReportOutputType, StartOverrides, StartTaskReport,
};
use crate::service::control::ControlService;

pub struct Mutation;

/// What a start may change for this one execution.
#[derive(InputObject, Default)]
pub struct StartOverridesInput {
    /// Bandwidth cap in bytes per second; -1 for none.
    bytes_per_second: Option<i64>,
    /// POINT_IN_TIME_CONSISTENT, ONLY_FILES_TRANSFERRED or NONE.
    verify_mode: Option<String>,
    /// A DataSync filter pattern of what to transfer, e.g. `/photos*|/docs`.
    includes: Option<String>,
    /// A DataSync filter pattern of what not to transfer.
    excludes: Option<String>,
    /// A task report for this execution instead of the task's (StartTaskExecution's
    /// `TaskReportConfig`).
    task_report: Option<TaskReportInput>,
}

/// A task report: where DataSync writes it and what it holds.
#[derive(InputObject)]
pub struct TaskReportInput {
    /// The bucket receiving the report, e.g. `arn:aws:s3:::example-reports`.
    s3_bucket_arn: String,
    /// The IAM role DataSync assumes to write to it.
    bucket_access_role_arn: String,
    /// The prefix the report goes under.
    subdirectory: Option<String>,
    /// Summary only, or the full list of items (default: DataSync's).
    output_type: Option<ReportOutputType>,
    /// Errors only, or successes and errors.
    report_level: Option<ReportLevel>,
    /// Whether new S3 object version ids are included.
    object_version_ids: Option<ObjectVersionIds>,
    /// Levels for particular kinds of item.
    overrides: Option<TaskReportOverridesInput>,
}

/// Report levels per kind of item, overriding the report's own.
#[derive(InputObject, Default)]
pub struct TaskReportOverridesInput {
    transferred: Option<ReportLevel>,
    verified: Option<ReportLevel>,
    deleted: Option<ReportLevel>,
    skipped: Option<ReportLevel>,
}

impl TryFrom<TaskReportInput> for StartTaskReport {
    type Error = GatewayError;

    /// The wire strings; `UNKNOWN` is no value to ask for.
    fn try_from(input: TaskReportInput) -> Result<Self, GatewayError> {
        fn wire<E: DataSyncEnum>(value: Option<E>, field: &str) -> Result<Option<String>, GatewayError> {
            value
                .map(|value| {
                    value.wire().map(str::to_owned).ok_or_else(|| {
                        GatewayError::BadUserInput(format!(
                            "overrides.taskReport.{field}: UNKNOWN is not a value to ask for"
                        ))
                    })
                })
                .transpose()
        }
        let overrides = input.overrides.unwrap_or_default();
        let mut levels = Vec::new();
        for (kind, level) in [
            ("Transferred", overrides.transferred),
            ("Verified", overrides.verified),
            ("Deleted", overrides.deleted),
            ("Skipped", overrides.skipped),
        ] {
            if let Some(level) = wire(level, "overrides")? {
                levels.push((kind.to_owned(), level));
            }
        }
        Ok(StartTaskReport {
            s3_bucket_arn: input.s3_bucket_arn,
            bucket_access_role_arn: input.bucket_access_role_arn,
            subdirectory: input.subdirectory,
            output_type: wire(input.output_type, "outputType")?,
            report_level: wire(input.report_level, "reportLevel")?,
            object_version_ids: wire(input.object_version_ids, "objectVersionIds")?,
            overrides: levels,
        })
    }
}

#[Object]
impl Mutation {
    /// Starts an execution of the task (StartTaskExecution) and returns it as DataSync now
    /// describes it; the gateway follows it from there (subscriptions, index, history). With an
    /// `idempotencyKey`, a retry of the same request returns the execution the first one started
    /// instead of starting another.
    async fn start_task_execution(
        &self,
        ctx: &Context<'_>,
        task_arn: ID,
        idempotency_key: Option<String>,
        overrides: Option<StartOverridesInput>,
    ) -> Result<TaskExecutionNode> {
        let overrides = overrides.unwrap_or_default();
        let overrides = StartOverrides {
            bytes_per_second: overrides.bytes_per_second,
            verify_mode: overrides.verify_mode,
            includes: overrides.includes,
            excludes: overrides.excludes,
            task_report: overrides.task_report.map(StartTaskReport::try_from).transpose().coded()?,
        };
        let task_arn = super::context::task_arn(&task_arn).coded()?;
        let control = ctx.data_unchecked::<ControlService>();
        let started = control.start(&task_arn, idempotency_key.as_deref(), overrides, caller(ctx)?);
        Ok(started.instrument(resolver_span(ctx)).await.coded()?.into())
    }

    /// Changes a running execution's bandwidth limit (UpdateTaskExecution's
    /// `Options.BytesPerSecond`; -1 for no limit) and returns it as DataSync then describes it.
    /// Basic mode only: `BAD_USER_INPUT` for an Enhanced-mode or finished execution, or a value
    /// that is neither -1 nor positive. The limit it has already is answered without a call.
    async fn update_task_execution(
        &self,
        ctx: &Context<'_>,
        arn: ID,
        bytes_per_second: Long,
    ) -> Result<TaskExecutionNode> {
        let arn = execution_arn(&arn).coded()?;
        let control = ctx.data_unchecked::<ControlService>();
        let updated =
            control.update(&arn, bytes_per_second.0, caller(ctx)?).instrument(resolver_span(ctx)).await;
        Ok(updated.coded()?.into())
    }

    /// Cancels a running execution (CancelTaskExecution) and returns it as DataSync now
    /// describes it (usually CANCELLING, then ERROR with DataSync's cancellation code).
    async fn cancel_task_execution(&self, ctx: &Context<'_>, arn: ID) -> Result<TaskExecutionNode> {
        let arn = execution_arn(&arn).coded()?;
        let control = ctx.data_unchecked::<ControlService>();
        let cancelled = control.cancel(&arn, caller(ctx)?).instrument(resolver_span(ctx)).await;
        Ok(cancelled.coded()?.into())
    }

    /// Registers a webhook endpoint: the execution events its filter selects are POSTed to
    /// `url` as they happen, signed per Standard Webhooks with the secret in this answer (and
    /// only here), at least once and in order. It hears of events from now on.
    async fn create_webhook(
        &self,
        ctx: &Context<'_>,
        input: CreateWebhookInput,
    ) -> Result<WebhookWithSecret> {
        webhook::create(ctx, input).await
    }

    /// Changes an endpoint; what `input` leaves out stays.
    async fn update_webhook(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateWebhookInput,
    ) -> Result<WebhookNode> {
        webhook::update(ctx, id, input).await
    }

    /// A new signing secret, in this answer only. Deliveries are signed with both the new and
    /// the old secret for `overlapSeconds` (default `--webhook-secret-overlap`), so receivers can
    /// switch without missing one.
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        id: ID,
        overlap_seconds: Option<i32>,
    ) -> Result<WebhookWithSecret> {
        webhook::rotate(ctx, id, overlap_seconds).await
    }

    /// Deletes an endpoint and its delivery log; its id.
    async fn delete_webhook(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        webhook::delete(ctx, id).await
    }

    /// Sends a delivery's event to its endpoint again (as a new delivery, after those already
    /// queued), with the same `webhook-id`.
    async fn redeliver_webhook_event(&self, ctx: &Context<'_>, id: ID) -> Result<WebhookDeliveryNode> {
        webhook::redeliver(ctx, id).await
    }
}
