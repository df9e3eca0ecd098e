//! The DataSync client: aws-sdk-datasync with explicit retries, timeouts and a cap on calls in
//! flight shared fairly between callers, and the translation of SDK failures into
//! [`GatewayError`]s.
//!
//! It is a concrete type, not a trait: tests drive it over real HTTP against the simulator and
//! moto, which exercises the SDK's serialisation, retries and error parsing that a mock would skip.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::accounts::Accounts;
use super::budget::CallBudget;
use super::fair::FairSemaphore;
use super::mapping;
use super::per_site::PerSite;
use crate::config::{default_region, AccountsConfig, DataSyncConfig};
use crate::error::GatewayError;
use crate::metrics::Metrics;
use crate::model::{
    AccountId, ExecutionArn, Location, Region, Site, StartOverrides, Task, TaskArn, TaskExecution,
    TaskSummary,
};
use crate::request::Caller;
use crate::telemetry::Occasionally;
use aws_config::identity::IdentityCache;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_datasync::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::error::display::DisplayErrorContext;
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
    /// Which accounts and regions are served, and the credentials of each account.
    accounts: Accounts,
    /// The gateway's SDK configuration, which every client is built from: one identity cache
    /// for all of them, retries, timeouts.
    sdk: SdkConfig,
    /// Where DataSync calls go instead of AWS (moto, a VPC endpoint); not STS's.
    endpoint_url: Option<String>,
    /// One client and call budget per site, built on first use: DataSync is regional and
    /// throttles per account and region. Bounded by the sites served; ARNs of any other
    /// account or region are refused before one is built.
    sites: PerSite<Regional>,
    calls_per_second: f64,
    in_flight: FairSemaphore,
    /// Longest a call may take, waiting for a slot included.
    call_timeout: Duration,
    /// The SDK's retries, for the calls that must not be retried by it (starts).
    max_attempts: u32,
    initial_backoff: Duration,
    metrics: Metrics,
}

/// The client and call budget of one site.
struct Regional {
    site: Site,
    client: aws_sdk_datasync::Client,
    budget: CallBudget,
}

/// Identities the SDK's cache keeps at once: one per account served (its assumed role) and the
/// gateway's own; past this it drops some and assumes their roles again.
const IDENTITY_CACHE_PARTITIONS: usize = 4_096;

/// The gateway's SDK configuration: the credentials chain (or placeholder keys for moto and the
/// simulator), retries, timeouts, one identity cache. Endpoints are each service's own.
pub async fn sdk_config(config: &DataSyncConfig) -> SdkConfig {
    // Every call names its region, so the default only matters to credential providers;
    // setting it skips the instance-metadata lookup, which stalls off EC2.
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new(default_region()))
        .http_client(shared_https_client())
        .identity_cache(IdentityCache::lazy().max_partitions(IDENTITY_CACHE_PARTITIONS).build())
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
    if config.fake_credentials || config.simulator {
        loader = loader.credentials_provider(aws_credential_types::Credentials::from_keys(
            "AKIDGATEWAYTEST",
            "gateway-test-secret",
            None,
        ));
    }
    loader.load().await
}

/// The SDK's default HTTPS client (rustls with aws-lc, the proxy from the environment), made
/// once for every client. Left to itself, each SDK client makes its own, and each of those
/// loads the system's trusted certificates: measured at 196 KB a client, 78 MB for 400 sites
/// (`scripts/bench accounts`).
fn shared_https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    aws_smithy_http_client::Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector = aws_smithy_http_client::ConnectorBuilder::default()
            .tls_provider(Provider::Rustls(CryptoMode::AwsLc));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

impl DataSyncClient {
    /// Clients for the sites of `accounts`, built from `sdk` (see [`sdk_config`]) as they are
    /// first used.
    pub fn new(config: &DataSyncConfig, sdk: SdkConfig, accounts: Accounts, metrics: Metrics) -> Self {
        DataSyncClient {
            inner: Arc::new(Inner {
                accounts,
                sdk,
                endpoint_url: config.datasync_endpoint.clone(),
                sites: PerSite::default(),
                calls_per_second: config.calls_per_second,
                in_flight: FairSemaphore::new(config.max_concurrency as usize),
                call_timeout: config.call_timeout,
                max_attempts: config.max_attempts,
                initial_backoff: config.initial_backoff,
                metrics,
            }),
        }
    }

    /// The SDK configuration, the accounts served and their clients, as configured.
    pub async fn connect(
        config: &DataSyncConfig,
        accounts: &AccountsConfig,
        regions: Vec<crate::model::Region>,
        metrics: Metrics,
    ) -> anyhow::Result<Self> {
        let sdk = sdk_config(config).await;
        let accounts = Accounts::new(accounts, sdk.clone(), regions).await?;
        Ok(Self::new(config, sdk, accounts, metrics))
    }

    pub fn accounts(&self) -> &Accounts {
        &self.inner.accounts
    }

    /// The SDK configuration every client of the gateway is built from.
    pub fn sdk_config(&self) -> &SdkConfig {
        &self.inner.sdk
    }

    /// One `DescribeTaskExecution` call, made in the ARN's own region, on `caller`'s turn.
    pub async fn describe_task_execution(
        &self,
        arn: &ExecutionArn,
        caller: &Caller,
    ) -> Result<TaskExecution, GatewayError> {
        let regional = self.regional(Some(arn.account_id()), arn.region())?;
        let call = regional.client.describe_task_execution().task_execution_arn(arn.as_str()).send();
        let output = self
            .on_turn(caller, &regional, "DescribeTaskExecution", async {
                call.await.map_err(|error| upstream_error(&regional.site, Concerning::Execution(arn), error))
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
        let regional = self.regional(Some(task_arn.account_id()), task_arn.region())?;
        let mut call = regional.client.start_task_execution().task_arn(task_arn.as_str());
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
        if let Some(report) = &overrides.task_report {
            call = call.task_report_config(mapping::start_task_report(report));
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
                &regional,
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
        let regional = self.regional(Some(arn.account_id()), arn.region())?;
        let call = regional.client.cancel_task_execution().task_execution_arn(arn.as_str());
        let send = |no_retries| call.clone().customize().config_override(no_retries).send();
        self.change(caller, &regional, "CancelTaskExecution", Concerning::Execution(arn), "cancel", send)
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
        let regional = self.regional(Some(arn.account_id()), arn.region())?;
        let options = aws_sdk_datasync::types::Options::builder().bytes_per_second(bytes_per_second).build();
        let call = regional.client.update_task_execution().task_execution_arn(arn.as_str()).options(options);
        let send = |no_retries| call.clone().customize().config_override(no_retries).send();
        self.change(
            caller,
            &regional,
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
        regional: &Regional,
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
                .on_turn(caller, regional, operation, async {
                    sent.await.map_err(|error| change_error(&regional.site, concerning, doing, error))
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
        let regional = self.regional(Some(arn.account_id()), arn.region())?;
        let call = regional.client.describe_task().task_arn(arn.as_str()).send();
        let output = self
            .on_turn(caller, &regional, "DescribeTask", async {
                call.await.map_err(|error| upstream_error(&regional.site, Concerning::Task(arn), error))
            })
            .await?;
        Ok(mapping::task(arn, &output, Utc::now()))
    }

    /// Every task DataSync lists at `site` (all pages; each page is one call).
    pub async fn list_tasks(&self, site: &Site, caller: &Caller) -> Result<Vec<TaskSummary>, GatewayError> {
        let regional = self.at(site)?;
        let mut pages = regional.client.list_tasks().max_results(100).into_paginator().send();
        let mut tasks = Vec::new();
        while let Some(page) = self.page(caller, &regional, "ListTasks", &mut pages).await? {
            tasks.extend(page.tasks().iter().filter_map(mapping::task_summary));
        }
        Ok(tasks)
    }

    /// Every location DataSync lists at `site`.
    pub async fn list_locations(&self, site: &Site, caller: &Caller) -> Result<Vec<Location>, GatewayError> {
        let regional = self.at(site)?;
        let mut pages = regional.client.list_locations().max_results(100).into_paginator().send();
        let mut locations = Vec::new();
        while let Some(page) = self.page(caller, &regional, "ListLocations", &mut pages).await? {
            locations.extend(page.locations().iter().filter_map(mapping::location));
        }
        Ok(locations)
    }

    /// Every execution DataSync still lists at `site` (about 30 days), of `task` alone when
    /// given, with its status.
    pub async fn list_executions(
        &self,
        site: &Site,
        task: Option<&TaskArn>,
        caller: &Caller,
    ) -> Result<Vec<(ExecutionArn, String)>, GatewayError> {
        let regional = self.at(site)?;
        let mut pages = regional
            .client
            .list_task_executions()
            .set_task_arn(task.map(|task| task.as_str().to_owned()))
            .max_results(100)
            .into_paginator()
            .send();
        let mut executions = Vec::new();
        while let Some(page) = self.page(caller, &regional, "ListTaskExecutions", &mut pages).await? {
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
        regional: &Regional,
        operation: &'static str,
        call: impl Future<Output = Result<T, GatewayError>>,
    ) -> Result<T, GatewayError> {
        // The one place a request's allowance is charged: every call, each page of a listing too.
        caller.spend_upstream_call()?;
        let (budget, region) = (&regional.budget, regional.site.region.as_str());
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
        regional: &Regional,
        operation: &'static str,
        pages: &mut aws_smithy_async::future::pagination_stream::PaginationStream<
            Result<O, SdkError<E, aws_smithy_runtime_api::http::Response>>,
        >,
    ) -> Result<Option<O>, GatewayError>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        self.on_turn(caller, regional, operation, async {
            let site = &regional.site;
            pages
                .next()
                .await
                .transpose()
                .map_err(|error| upstream_error(site, Concerning::Site(site), error))
        })
        .await
    }

    /// Every region served, in any account, sorted.
    pub fn regions(&self) -> Vec<Region> {
        let mut regions: Vec<Region> = self.sites().into_iter().map(|site| site.region).collect();
        regions.sort();
        regions.dedup();
        regions
    }

    /// Every site served (each active account's regions), sorted.
    pub fn sites(&self) -> Vec<Site> {
        self.inner.accounts.sites()
    }

    /// Where calls about resources of `account` in `region` go, if they are served; otherwise
    /// the error a client is told (`BAD_USER_INPUT`, before any call).
    pub fn site_of(&self, account: AccountId, region: &str) -> Result<Site, GatewayError> {
        self.inner.accounts.reach(Some(account), region).map(|(site, _)| site)
    }

    /// The client of a site that [`DataSyncClient::sites`] listed.
    fn at(&self, site: &Site) -> Result<Arc<Regional>, GatewayError> {
        self.regional(site.account, site.region.as_str())
    }

    /// The client and budget for resources of `account` (none: the gateway's own) in `region`,
    /// built on first use; `BAD_USER_INPUT` for an account or region not served.
    fn regional(&self, account: Option<AccountId>, region: &str) -> Result<Arc<Regional>, GatewayError> {
        let (site, credentials) = self.inner.accounts.reach(account, region)?;
        Ok(self.inner.sites.get_or_build(&site, || {
            let mut config = aws_sdk_datasync::config::Builder::from(&self.inner.sdk)
                .region(aws_config::Region::new(site.region.as_str().to_owned()));
            if let Some(url) = &self.inner.endpoint_url {
                config = config.endpoint_url(url);
            }
            if credentials.is_some() {
                // `set_`, not `credentials_provider`: that one wraps the provider anew, in a
                // cache partition of its own, and each region would assume the role again.
                config.set_credentials_provider(credentials);
            }
            let client = aws_sdk_datasync::Client::from_conf(config.build());
            Regional { site: site.clone(), client, budget: CallBudget::new(self.inner.calls_per_second) }
        }))
    }
}

/// As [`upstream_error`], for a call that changes something (`doing`, e.g. "start an execution
/// of", concerning `arn`): where the call may have reached DataSync and its answer was lost, the
/// outcome is unknown, not a failure a retry may cure.
fn change_error<E>(
    site: &Site,
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
        return upstream_error(site, arn, error);
    }
    tracing::warn!(%arn, error = ?error, "the answer to a change was lost; its outcome is unknown");
    GatewayError::UpstreamOutcomeUnknown(format!(
        "the request to {doing} {arn} may have reached DataSync, but its answer was lost; look before \
         trying again (a retry with the same idempotencyKey starts nothing)"
    ))
}

/// For a call in a listed `account`, what the client is told when the account refused the
/// gateway: its role refused by STS (the account cannot be reached at all), DataSync refusing
/// the role's credentials, or the role lacking this call's permission. STS not answering is
/// unavailability, retryable, not a refusal. `None` for every other failure.
fn account_refusal<E>(
    account: AccountId,
    error: &SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> Option<GatewayError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if let SdkError::ServiceError(context) = error {
        let code = context.err().code().unwrap_or_default();
        return match code {
            "AccessDeniedException" => Some(GatewayError::UpstreamForbidden(format!(
                "account {account} denied this call: the gateway's role there lacks its permission"
            ))),
            code if CREDENTIAL_CODES.contains(&code) => Some(GatewayError::UpstreamForbidden(format!(
                "account {account} refused the credentials of the gateway's role there"
            ))),
            _ => None,
        };
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if cause.downcast_ref::<aws_credential_types::provider::error::CredentialsError>().is_some() {
            return Some(if super::accounts::is_role_refused(cause) {
                GatewayError::UpstreamForbidden(format!(
                    "account {account} could not be reached: the gateway's role there was refused; other \
                     accounts are unaffected (see `accounts {{ credentialsError }}`)"
                ))
            } else {
                GatewayError::UpstreamUnavailable("STS could not be reached to assume the account's role")
            });
        }
        source = cause.source();
    }
    None
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
    /// A listing of the site's tasks, locations or executions.
    Site(&'a Site),
}

impl std::fmt::Display for Concerning<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Concerning::Execution(arn) => write!(f, "{arn}"),
            Concerning::Task(arn) => write!(f, "{arn}"),
            Concerning::Site(site) => write!(f, "site {site}"),
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
            Concerning::Site(site) => {
                tracing::error!(%site, "DataSync refused a listing as invalid");
                GatewayError::Internal
            }
        }
    }
}

/// What the client may be told about a failed call. Upstream messages go to the log, not to the
/// client: they can name accounts and roles.
fn upstream_error<E>(
    site: &Site,
    arn: Concerning<'_>,
    error: SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> GatewayError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if let Some(account) = site.account {
        if let Some(refused) = account_refusal(account, &error) {
            tracing::warn!(%arn, %account, error = %DisplayErrorContext(&error), "an account refused the gateway");
            return refused;
        }
    }
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
