//! The DataSync client: aws-sdk-datasync with explicit retries, timeouts and a cap on calls in
//! flight shared fairly between callers, and the translation of SDK failures into
//! [`GatewayError`]s.
//!
//! It is a concrete type, not a trait: tests drive it over real HTTP against the simulator and
//! moto, which exercises the SDK's serialisation, retries and error parsing that a mock would skip.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::budget::CallBudget;
use super::fair::FairSemaphore;
use super::mapping;
use crate::config::{default_region, DataSyncConfig};
use crate::error::GatewayError;
use crate::metrics::Metrics;
use crate::model::{ExecutionArn, Location, StartOverrides, Task, TaskArn, TaskExecution, TaskSummary};
use crate::request::Caller;
use crate::telemetry::Occasionally;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_datasync::error::{ProvideErrorMetadata, SdkError};
use chrono::Utc;
use tracing::Instrument;

/// Error codes AWS services use when throttling; the SDK retries these, so seeing one here
/// means the retries ran out.
const THROTTLING_CODES: [&str; 6] = [
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "SlowDown",
];

/// Error codes meaning AWS rejected the gateway's own credentials or permissions.
const CREDENTIAL_CODES: [&str; 6] = [
    "AccessDeniedException",
    "UnrecognizedClientException",
    "ExpiredTokenException",
    "InvalidSignatureException",
    "InvalidClientTokenId",
    "MissingAuthenticationTokenException",
];

#[derive(Clone)]
pub struct DataSyncClient {
    inner: Arc<Inner>,
}

struct Inner {
    /// DataSync is regional and an ARN names its region: one client per region served, built
    /// at start-up; a region outside the list is refused before any call.
    by_region: HashMap<String, (aws_sdk_datasync::Client, CallBudget)>,
    in_flight: FairSemaphore,
    /// Longest a call may take, waiting for a slot included.
    call_timeout: Duration,
    /// The SDK's retries, for the calls that must not be retried by it (starts).
    max_attempts: u32,
    initial_backoff: Duration,
    metrics: Metrics,
}

impl DataSyncClient {
    /// Clients for `regions`. `endpoint_url` overrides the configured endpoint (the in-process
    /// simulator uses it).
    pub async fn new(
        config: &DataSyncConfig,
        endpoint_url: Option<String>,
        regions: &[crate::model::Region],
        metrics: Metrics,
    ) -> Self {
        // Every call names its region, so the default only matters to credential providers;
        // setting it skips the instance-metadata lookup, which stalls off EC2.
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(default_region()))
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(config.max_attempts)
                    .with_initial_backoff(config.initial_backoff),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(config.call_timeout)
                    .operation_attempt_timeout(config.attempt_timeout)
                    .connect_timeout(config.attempt_timeout)
                    .build(),
            );
        if let Some(url) = endpoint_url.or_else(|| config.datasync_endpoint.clone()) {
            loader = loader.endpoint_url(url);
        }
        if config.fake_credentials || config.simulator {
            loader = loader.credentials_provider(aws_credential_types::Credentials::from_keys(
                "AKIDGATEWAYTEST",
                "gateway-test-secret",
                None,
            ));
        }
        let sdk_config = loader.load().await;
        let config_calls_per_second = config.calls_per_second;
        let by_region = regions
            .iter()
            .map(|region| {
                let config = aws_sdk_datasync::config::Builder::from(&sdk_config)
                    .region(Region::new(region.as_str().to_owned()))
                    .build();
                let budget = CallBudget::new(config_calls_per_second);
                (region.as_str().to_owned(), (aws_sdk_datasync::Client::from_conf(config), budget))
            })
            .collect();
        DataSyncClient {
            inner: Arc::new(Inner {
                by_region,
                in_flight: FairSemaphore::new(config.max_concurrency as usize),
                call_timeout: config.call_timeout,
                max_attempts: config.max_attempts,
                initial_backoff: config.initial_backoff,
                metrics,
            }),
        }
    }

    /// One `DescribeTaskExecution` call, made in the ARN's own region, on `caller`'s turn.
    pub async fn describe_task_execution(
        &self,
        arn: &ExecutionArn,
        caller: &Caller,
    ) -> Result<TaskExecution, GatewayError> {
        let client = self.client_for(arn.region())?;
        let call = client.describe_task_execution().task_execution_arn(arn.as_str()).send();
        let output = self
            .on_turn(caller, arn.region(), "DescribeTaskExecution", async {
                call.await.map_err(|error| upstream_error(Concerning::Execution(arn), error))
            })
            .await?;
        Ok(mapping::task_execution(arn, &output, Utc::now()))
    }

    /// `StartTaskExecution` in the task's region; the new execution's ARN.
    pub async fn start_task_execution(
        &self,
        task_arn: &TaskArn,
        overrides: &StartOverrides,
        caller: &Caller,
    ) -> Result<ExecutionArn, GatewayError> {
        let region = task_arn.region();
        let client = self.client_for(region)?;
        let mut call = client.start_task_execution().task_arn(task_arn.as_str());
        if overrides.bytes_per_second.is_some() || overrides.verify_mode.is_some() {
            let mut options = aws_sdk_datasync::types::Options::builder();
            if let Some(bytes_per_second) = overrides.bytes_per_second {
                options = options.bytes_per_second(bytes_per_second);
            }
            if let Some(verify_mode) = &overrides.verify_mode {
                options = options.verify_mode(verify_mode.as_str().into());
            }
            call = call.override_options(options.build());
        }
        for (pattern, include) in [(&overrides.includes, true), (&overrides.excludes, false)] {
            if let Some(pattern) = pattern {
                let rule = aws_sdk_datasync::types::FilterRule::builder()
                    .filter_type(aws_sdk_datasync::types::FilterType::SimplePattern)
                    .value(pattern)
                    .build();
                call = if include { call.includes(rule) } else { call.excludes(rule) };
            }
        }
        let send = |no_retries| call.clone().customize().config_override(no_retries).send();
        let output = self
            .change(
                caller,
                region,
                "StartTaskExecution",
                Concerning::Task(task_arn),
                "start an execution of",
                send,
            )
            .await?;
        mapping::identifier("TaskExecutionArn", output.task_execution_arn()).ok_or_else(|| {
            GatewayError::UpstreamOutcomeUnknown(format!(
                "DataSync started an execution of {task_arn} but did not say which"
            ))
        })
    }

    /// `CancelTaskExecution`.
    pub async fn cancel_task_execution(
        &self,
        arn: &ExecutionArn,
        caller: &Caller,
    ) -> Result<(), GatewayError> {
        let client = self.client_for(arn.region())?;
        let call = client.cancel_task_execution().task_execution_arn(arn.as_str());
        let send = |no_retries| call.clone().customize().config_override(no_retries).send();
        self.change(caller, arn.region(), "CancelTaskExecution", Concerning::Execution(arn), "cancel", send)
            .await
            .map(|_| ())
    }

    /// `UpdateTaskExecution`: a running execution's bandwidth limit (Basic mode only).
    pub async fn update_task_execution(
        &self,
        arn: &ExecutionArn,
        bytes_per_second: i64,
        caller: &Caller,
    ) -> Result<(), GatewayError> {
        let client = self.client_for(arn.region())?;
        let options = aws_sdk_datasync::types::Options::builder().bytes_per_second(bytes_per_second).build();
        let call = client.update_task_execution().task_execution_arn(arn.as_str()).options(options);
        let send = |no_retries| call.clone().customize().config_override(no_retries).send();
        self.change(
            caller,
            arn.region(),
            "UpdateTaskExecution",
            Concerning::Execution(arn),
            "change the bandwidth of",
            send,
        )
        .await
        .map(|_| ())
    }

    /// A call that changes something, made without the SDK's retries: one that timed out or lost
    /// its answer may have taken effect (a start done twice; a cancel retried is refused as if
    /// the execution had finished). Throttling is retried here, with backoff: DataSync refused
    /// that call before doing anything. A lost answer is [`GatewayError::UpstreamOutcomeUnknown`].
    /// `send` makes the call with the configuration override it is given.
    async fn change<T, E, F, Fut>(
        &self,
        caller: &Caller,
        region: &str,
        operation: &'static str,
        concerning: Concerning<'_>,
        doing: &str,
        send: F,
    ) -> Result<T, GatewayError>
    where
        F: Fn(aws_sdk_datasync::config::Builder) -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, aws_smithy_runtime_api::http::Response>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let no_retries = aws_sdk_datasync::config::Builder::default().retry_config(RetryConfig::disabled());
        let (mut backoff, mut attempt) = (self.inner.initial_backoff, 1);
        loop {
            let sent = send(no_retries.clone());
            let sent = self
                .on_turn(caller, region, operation, async {
                    sent.await.map_err(|error| change_error(concerning, doing, error))
                })
                .await;
            match sent {
                Err(GatewayError::UpstreamThrottled) if attempt < self.inner.max_attempts => {
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    attempt += 1;
                }
                sent => return sent,
            }
        }
    }

    /// One `DescribeTask` call, in the task's region.
    pub async fn describe_task(&self, arn: &TaskArn, caller: &Caller) -> Result<Task, GatewayError> {
        let client = self.client_for(arn.region())?;
        let call = client.describe_task().task_arn(arn.as_str()).send();
        let output = self
            .on_turn(caller, arn.region(), "DescribeTask", async {
                call.await.map_err(|error| upstream_error(Concerning::Task(arn), error))
            })
            .await?;
        Ok(mapping::task(arn, &output, Utc::now()))
    }

    /// Every task DataSync lists in `region` (all pages; each page is one call).
    pub async fn list_tasks(&self, region: &str, caller: &Caller) -> Result<Vec<TaskSummary>, GatewayError> {
        let client = self.client_for(region)?;
        let mut pages = client.list_tasks().max_results(100).into_paginator().send();
        let mut tasks = Vec::new();
        while let Some(page) = self.page(caller, region, "ListTasks", &mut pages).await? {
            tasks.extend(page.tasks().iter().filter_map(mapping::task_summary));
        }
        Ok(tasks)
    }

    /// Every location DataSync lists in `region`.
    pub async fn list_locations(&self, region: &str, caller: &Caller) -> Result<Vec<Location>, GatewayError> {
        let client = self.client_for(region)?;
        let mut pages = client.list_locations().max_results(100).into_paginator().send();
        let mut locations = Vec::new();
        while let Some(page) = self.page(caller, region, "ListLocations", &mut pages).await? {
            locations.extend(page.locations().iter().filter_map(mapping::location));
        }
        Ok(locations)
    }

    /// Every execution DataSync still lists in `region` (about 30 days), of `task` alone when
    /// given, with its status.
    pub async fn list_executions(
        &self,
        region: &str,
        task: Option<&TaskArn>,
        caller: &Caller,
    ) -> Result<Vec<(ExecutionArn, String)>, GatewayError> {
        let client = self.client_for(region)?;
        let mut pages = client
            .list_task_executions()
            .set_task_arn(task.map(|task| task.as_str().to_owned()))
            .max_results(100)
            .into_paginator()
            .send();
        let mut executions = Vec::new();
        while let Some(page) = self.page(caller, region, "ListTaskExecutions", &mut pages).await? {
            executions.extend(page.task_executions().iter().filter_map(|entry| {
                let status = entry.status().map(|status| status.as_str().to_owned()).unwrap_or_default();
                Some((mapping::identifier("TaskExecutionArn", entry.task_execution_arn())?, status))
            }));
        }
        Ok(executions)
    }

    /// Runs `call`, charged to `caller`'s allowance, once the region's budget allows it and
    /// `caller` gets a slot. For a client,
    /// all of it within the call timeout: time spent waiting counts, so neither a crowd nor the
    /// budget can hold a caller past its deadline. Background work waits for the budget as long
    /// as it takes; only its slot and call are timed.
    async fn on_turn<T>(
        &self,
        caller: &Caller,
        region: &str,
        operation: &'static str,
        call: impl Future<Output = Result<T, GatewayError>>,
    ) -> Result<T, GatewayError> {
        // The one place a request's allowance is charged: every call, each page of a listing too.
        caller.spend_upstream_call()?;
        let (_, budget) = self.inner.by_region.get(region).expect("the region was checked by client_for");
        let metrics = &self.inner.metrics;
        let spend = |background: bool| async move {
            let started = Instant::now();
            budget.spend(caller.key(), background).await;
            metrics.budget_wait(region, started.elapsed());
        };
        if caller.is_background() {
            spend(true).await;
        }
        let queued_and_called = async {
            if !caller.is_background() {
                spend(false).await;
            }
            let _slot = self.inner.in_flight.acquire(caller.key()).await;
            let started = Instant::now();
            let result = call.await;
            let outcome = match &result {
                Ok(_) => "ok",
                Err(GatewayError::NotFound(_)) => "not_found",
                Err(GatewayError::UpstreamThrottled) => "throttled",
                Err(_) => "error",
            };
            metrics.datasync_call(operation, region, outcome, started.elapsed());
            result
        };
        let span = tracing::debug_span!(
            "DataSync call",
            otel.name = %format_args!("DataSync/{operation}"),
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            rpc.system = "aws-api",
            rpc.service = "DataSync",
            rpc.method = operation,
            cloud.region = region,
        );
        let call = tokio::time::timeout(self.inner.call_timeout, queued_and_called).instrument(span.clone());
        let result = call.await.unwrap_or_else(|_| {
            static TIMEOUTS: Occasionally = Occasionally::every(Duration::from_secs(60));
            TIMEOUTS.log(|unwritten| {
                tracing::warn!(caller = %caller.key(), unwritten, "DataSync call timed out (waiting for the budget and a slot included); `unwritten` more since the last such line");
            });
            metrics.datasync_call(operation, region, "timeout", self.inner.call_timeout);
            Err(GatewayError::UpstreamUnavailable("the call to DataSync timed out"))
        });
        if result.is_err() {
            span.record("otel.status_code", "ERROR");
        }
        result
    }

    /// The next page of a listing: one call, through the budget and the slots.
    async fn page<O, E>(
        &self,
        caller: &Caller,
        region: &str,
        operation: &'static str,
        pages: &mut aws_smithy_async::future::pagination_stream::PaginationStream<
            Result<O, SdkError<E, aws_smithy_runtime_api::http::Response>>,
        >,
    ) -> Result<Option<O>, GatewayError>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        self.on_turn(caller, region, operation, async {
            pages.next().await.transpose().map_err(|error| upstream_error(Concerning::Region(region), error))
        })
        .await
    }

    /// The regions served, sorted.
    pub fn regions(&self) -> Vec<&str> {
        let mut regions: Vec<&str> = self.inner.by_region.keys().map(String::as_str).collect();
        regions.sort_unstable();
        regions
    }

    /// The client for `region`, if it is served; otherwise the error a client is told.
    pub fn client_for(&self, region: &str) -> Result<&aws_sdk_datasync::Client, GatewayError> {
        self.inner.by_region.get(region).map(|(client, _)| client).ok_or_else(|| {
            GatewayError::BadUserInput(format!(
                "region {region} is not served by this gateway; it serves {}",
                self.regions().join(", ")
            ))
        })
    }
}

/// As [`upstream_error`], for a call that changes something (`doing`, e.g. "start an execution
/// of", concerning `arn`): where the call may have reached DataSync and its answer was lost, the
/// outcome is unknown, not a failure a retry may cure.
fn change_error<E>(
    arn: Concerning<'_>,
    doing: &str,
    error: SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> GatewayError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let maybe_done = match &error {
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
        SdkError::DispatchFailure(failure) => !never_sent(failure),
        SdkError::ServiceError(context) => context.raw().status().is_server_error(),
        _ => false,
    };
    if !maybe_done {
        return upstream_error(arn, error);
    }
    tracing::warn!(%arn, error = ?error, "the answer to a change was lost; its outcome is unknown");
    GatewayError::UpstreamOutcomeUnknown(format!(
        "the request to {doing} {arn} may have reached DataSync, but its answer was lost; look before \
         trying again (a retry with the same idempotencyKey starts nothing)"
    ))
}

/// Whether a dispatch failed before any byte of the request could reach DataSync: the
/// connection itself was not made.
fn never_sent(failure: &aws_smithy_runtime_api::client::result::DispatchFailure) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = failure.as_connector_error().map(|e| e as _);
    while let Some(error) = source {
        if error.downcast_ref::<hyper_util::client::legacy::Error>().is_some_and(|error| error.is_connect()) {
            return true;
        }
        source = error.source();
    }
    false
}

/// What a DataSync call was about: what its errors name.
#[derive(Clone, Copy)]
enum Concerning<'a> {
    Execution(&'a ExecutionArn),
    Task(&'a TaskArn),
    /// A listing of the region's tasks, locations or executions.
    Region(&'a str),
}

impl std::fmt::Display for Concerning<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Concerning::Execution(arn) => write!(f, "{arn}"),
            Concerning::Task(arn) => write!(f, "{arn}"),
            Concerning::Region(region) => write!(f, "region {region}"),
        }
    }
}

impl Concerning<'_> {
    /// DataSync's InvalidRequestException: for an execution or task, that it has none such (or
    /// none these credentials see); for a listing, that it refused the request.
    fn invalid_request(self) -> GatewayError {
        match self {
            Concerning::Execution(arn) => {
                GatewayError::NotFound(format!("DataSync has no task execution {arn}"))
            }
            Concerning::Task(arn) => GatewayError::NotFound(format!("DataSync has no task {arn}")),
            Concerning::Region(region) => {
                tracing::error!(region, "DataSync refused a listing as invalid");
                GatewayError::Internal
            }
        }
    }
}

/// What the client may be told about a failed call. Upstream messages go to the log, not to the
/// client: they can name accounts and roles.
fn upstream_error<E>(
    arn: Concerning<'_>,
    error: SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> GatewayError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match &error {
        SdkError::ServiceError(context) => {
            let service_error = context.err();
            let status = context.raw().status().as_u16();
            let code = service_error.code().unwrap_or_default();
            if code == "InvalidRequestException" {
                // DataSync's answer for an execution it does not have (or that is not visible
                // to these credentials): the ARN itself was already validated.
                tracing::debug!(%arn, message = service_error.message(), "DataSync: invalid request");
                arn.invalid_request()
            } else if CREDENTIAL_CODES.contains(&code) {
                tracing::error!(%arn, code, message = service_error.message(), "DataSync rejected the gateway's credentials");
                GatewayError::UpstreamUnavailable("DataSync rejected the gateway's credentials")
            } else if THROTTLING_CODES.contains(&code) || status == 429 {
                tracing::warn!(%arn, code, "DataSync throttled the gateway after all retries");
                GatewayError::UpstreamThrottled
            } else if code == "InternalException" || status >= 500 {
                tracing::warn!(%arn, code, status, message = service_error.message(), "DataSync server error");
                GatewayError::UpstreamUnavailable("DataSync returned a server error")
            } else {
                tracing::error!(%arn, code, status, message = service_error.message(), "unexpected DataSync error");
                GatewayError::Internal
            }
        }
        SdkError::TimeoutError(_) => {
            tracing::warn!(%arn, "DataSync call timed out");
            GatewayError::UpstreamUnavailable("the call to DataSync timed out")
        }
        SdkError::DispatchFailure(failure) => {
            tracing::warn!(%arn, error = ?failure, "could not reach DataSync");
            GatewayError::UpstreamUnavailable("could not reach DataSync")
        }
        SdkError::ResponseError(failure) => {
            tracing::warn!(%arn, error = ?failure, "unreadable response from DataSync");
            GatewayError::UpstreamUnavailable("DataSync sent an unreadable response")
        }
        _ => {
            tracing::error!(%arn, error = ?error, "DataSync call failed");
            GatewayError::Internal
        }
    }
}
