//! The DataSync client: aws-sdk-datasync with explicit retries, timeouts and a cap on calls in
//! flight shared fairly between callers, and the translation of SDK failures into
//! [`GatewayError`]s.
//!
//! It is a concrete type, not a trait: tests drive it over real HTTP against the simulator and
//! moto, which exercises the SDK's serialisation, retries and error parsing that a mock would skip.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::arn::ExecutionArn;
use super::fair::{CallerKey, FairSemaphore};
use super::mapping;
use crate::config::DataSyncConfig;
use crate::error::GatewayError;
use crate::model::TaskExecution;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_datasync::error::{ProvideErrorMetadata, SdkError};
use chrono::Utc;

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

const MAX_CACHED_REGIONS: usize = 64;

#[derive(Clone)]
pub struct DataSyncClient {
    inner: Arc<Inner>,
}

struct Inner {
    sdk_config: SdkConfig,
    /// DataSync is regional and an ARN names its region, so each region gets a client of its own.
    by_region: Mutex<HashMap<String, aws_sdk_datasync::Client>>,
    in_flight: FairSemaphore,
    /// Longest a call may take, waiting for a slot included.
    call_timeout: Duration,
}

impl DataSyncClient {
    /// `endpoint_url` overrides the configured endpoint (the in-process simulator uses it).
    pub async fn new(config: &DataSyncConfig, endpoint_url: Option<String>) -> Self {
        // Every call names its region (the ARN's), so the default only matters to credential
        // providers; setting it skips the instance-metadata lookup, which stalls off EC2.
        let default_region = std::env::var("AWS_REGION")
            .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|_| "us-east-1".to_owned());
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(default_region))
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
        DataSyncClient {
            inner: Arc::new(Inner {
                sdk_config,
                by_region: Mutex::new(HashMap::new()),
                in_flight: FairSemaphore::new(config.max_concurrency as usize),
                call_timeout: config.call_timeout,
            }),
        }
    }

    /// One `DescribeTaskExecution` call, made in the ARN's own region, on `caller`'s turn.
    pub async fn describe_task_execution(
        &self,
        arn: &ExecutionArn,
        caller: &CallerKey,
    ) -> Result<TaskExecution, GatewayError> {
        let client = self.client_for(arn.region());
        let output = self
            .on_turn(caller, client.describe_task_execution().task_execution_arn(arn.as_str()).send())
            .await?
            .map_err(|error| upstream_error(arn.as_str(), error))?;
        Ok(mapping::task_execution(arn, &output, Utc::now()))
    }

    /// The ARNs of the finished (SUCCESS or ERROR) executions DataSync still lists in `region`.
    pub async fn list_finished_executions(
        &self,
        region: &str,
        caller: &CallerKey,
    ) -> Result<Vec<String>, GatewayError> {
        let client = self.client_for(region);
        let list = async {
            let mut entries = client.list_task_executions().into_paginator().items().send();
            let mut finished = Vec::new();
            while let Some(entry) = entries.next().await {
                let entry = entry.map_err(|error| upstream_error(region, error))?;
                if entry.status().is_some_and(|status| matches!(status.as_str(), "SUCCESS" | "ERROR")) {
                    finished.extend(entry.task_execution_arn().map(str::to_owned));
                }
            }
            Ok(finished)
        };
        self.on_turn(caller, list).await?
    }

    /// Runs `call` once `caller` gets a slot, all within the call timeout: time spent queueing
    /// behind other calls counts, so a crowd cannot hold a caller past its deadline.
    async fn on_turn<T>(&self, caller: &CallerKey, call: impl Future<Output = T>) -> Result<T, GatewayError> {
        let queued_and_called = async {
            let _slot = self.inner.in_flight.acquire(caller).await;
            call.await
        };
        tokio::time::timeout(self.inner.call_timeout, queued_and_called).await.map_err(|_| {
            tracing::warn!(%caller, "DataSync call timed out (waiting for a slot included)");
            GatewayError::UpstreamUnavailable("the call to DataSync timed out")
        })
    }

    /// The client for `region`. Clients are kept for up to [`MAX_CACHED_REGIONS`] regions (AWS
    /// has fewer), so ARNs naming made-up regions cannot grow memory without bound.
    fn client_for(&self, region: &str) -> aws_sdk_datasync::Client {
        let build = || {
            let config = aws_sdk_datasync::config::Builder::from(&self.inner.sdk_config)
                .region(Region::new(region.to_owned()))
                .build();
            aws_sdk_datasync::Client::from_conf(config)
        };
        let mut clients = self.inner.by_region.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(client) = clients.get(region) {
            return client.clone();
        }
        let client = build();
        if clients.len() < MAX_CACHED_REGIONS {
            clients.insert(region.to_owned(), client.clone());
        }
        client
    }
}

/// What the client may be told about a failed call concerning `arn` (an execution ARN, or a
/// region). Upstream messages go to the log, not to the client: they can name accounts and roles.
fn upstream_error<E>(arn: &str, error: SdkError<E, aws_smithy_runtime_api::http::Response>) -> GatewayError
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
                GatewayError::NotFound(format!("DataSync has no task execution {arn}"))
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
