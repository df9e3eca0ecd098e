//! Task reports' S3 buckets: listing a report's parts and opening one as a stream, with the
//! credentials of the execution's account (its assumed role, as for DataSync), in its region,
//! under a call budget per site of its own, apart from DataSync's: reading a report of thousands
//! of parts must not take the budget client reads of DataSync need.

use std::sync::Arc;

use aws_config::SdkConfig;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::error::display::DisplayErrorContext;

use super::accounts::{is_role_refused, Accounts};
use super::budget::CallBudget;
use super::per_site::PerSite;
use crate::metrics::Metrics;
use crate::model::{ExecutionArn, Site};
use crate::request::Caller;

/// Why S3 did not answer as hoped. The text is for the ingestion's record and the log: it names
/// the bucket and S3's code, never credentials.
#[derive(Clone, Debug, thiserror::Error)]
pub enum BucketError {
    /// S3 or the account refused (access denied, no such bucket, the role refused): trying again
    /// will not help until someone changes a policy.
    #[error("{0}")]
    Refused(String),
    /// The object is gone (deleted between the listing and the read).
    #[error("{0}")]
    Missing(String),
    /// S3 did not answer well (throttling, a server error, a timeout): worth trying again later.
    #[error("{0}")]
    Unavailable(String),
}

/// A report part being read: its bytes as they arrive.
pub type PartStream = Box<dyn tokio::io::AsyncBufRead + Send + Unpin>;

#[derive(Clone)]
pub struct ReportBuckets {
    inner: Arc<Inner>,
}

struct Inner {
    accounts: Accounts,
    sdk: SdkConfig,
    /// Where S3 calls go instead of AWS (the simulator, moto, a VPC endpoint), path-style.
    endpoint_url: Option<String>,
    calls_per_second: f64,
    sites: PerSite<SiteBucket>,
    metrics: Metrics,
}

struct SiteBucket {
    site: Site,
    client: aws_sdk_s3::Client,
    budget: CallBudget,
}

impl ReportBuckets {
    pub fn new(
        accounts: Accounts,
        sdk: SdkConfig,
        endpoint_url: Option<String>,
        calls_per_second: f64,
        metrics: Metrics,
    ) -> Self {
        ReportBuckets {
            inner: Arc::new(Inner {
                accounts,
                sdk,
                endpoint_url,
                calls_per_second,
                sites: PerSite::default(),
                metrics,
            }),
        }
    }

    /// The keys under `prefix` in `bucket`, the report of `execution` (every page).
    pub async fn list(
        &self,
        execution: &ExecutionArn,
        bucket: &str,
        prefix: &str,
        caller: &Caller,
    ) -> Result<Vec<String>, BucketError> {
        let site = self.site_of(execution)?;
        let mut pages = site
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .into_paginator()
            .page_size(1000)
            .send();
        let mut keys = Vec::new();
        loop {
            let page =
                self.call(&site, caller, "ListObjectsV2", async { pages.next().await.transpose() }).await;
            match page.map_err(|error| classify(bucket, prefix, error))? {
                None => return Ok(keys),
                Some(page) => {
                    keys.extend(page.contents().iter().filter_map(|object| object.key()).map(str::to_owned))
                }
            }
        }
    }

    /// Opens object `key` of `bucket` (a part of `execution`'s report) for reading as it
    /// arrives.
    pub async fn open(
        &self,
        execution: &ExecutionArn,
        bucket: &str,
        key: &str,
        caller: &Caller,
    ) -> Result<PartStream, BucketError> {
        let site = self.site_of(execution)?;
        let get = site.client.get_object().bucket(bucket).key(key).send();
        let object =
            self.call(&site, caller, "GetObject", get).await.map_err(|error| classify(bucket, key, error))?;
        Ok(Box::new(object.body.into_async_read()))
    }

    /// One S3 call, once the site's report budget allows it, counted.
    async fn call<T, E>(
        &self,
        site: &SiteBucket,
        caller: &Caller,
        operation: &'static str,
        call: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        site.budget.spend(caller.key(), true).await;
        let result = call.await;
        let outcome = if result.is_ok() { "ok" } else { "error" };
        self.inner.metrics.report_bucket_call(operation, site.site.region.as_str(), outcome);
        result
    }

    /// The S3 client and budget of `execution`'s account and region, built on first use.
    fn site_of(&self, execution: &ExecutionArn) -> Result<Arc<SiteBucket>, BucketError> {
        let (site, credentials) = self
            .inner
            .accounts
            .reach(Some(execution.account_id()), execution.region())
            .map_err(|refused| BucketError::Refused(refused.to_string()))?;
        Ok(self.inner.sites.get_or_build(&site, || {
            let mut config = aws_sdk_s3::config::Builder::from(&self.inner.sdk)
                .region(aws_config::Region::new(site.region.as_str().to_owned()));
            if let Some(url) = &self.inner.endpoint_url {
                // Path-style: a simulator or moto on `localhost` has no bucket subdomains.
                config = config.endpoint_url(url).force_path_style(true);
            }
            if credentials.is_some() {
                // As for DataSync's clients: the account's one provider, not a new cache partition.
                config.set_credentials_provider(credentials);
            }
            let client = aws_sdk_s3::Client::from_conf(config.build());
            SiteBucket { site: site.clone(), client, budget: CallBudget::new(self.inner.calls_per_second) }
        }))
    }
}

/// Whether a failed S3 call is worth trying again, and what to record of it.
fn classify<E>(
    bucket: &str,
    key: &str,
    error: SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> BucketError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if let SdkError::ServiceError(context) = &error {
        let status = context.raw().status().as_u16();
        let code = context.err().code().unwrap_or("").to_owned();
        tracing::warn!(bucket, key, code, status, "S3 refused a task report read");
        return match code.as_str() {
            "NoSuchKey" => BucketError::Missing(format!("s3://{bucket}/{key} no longer exists (NoSuchKey)")),
            "SlowDown" | "ServiceUnavailable" | "InternalError" | "RequestTimeout" => {
                BucketError::Unavailable(format!("S3 answered {code} for s3://{bucket}/{key}"))
            }
            _ if status >= 500 || status == 429 => {
                BucketError::Unavailable(format!("S3 answered HTTP {status} for s3://{bucket}/{key}"))
            }
            "" => BucketError::Refused(format!("S3 refused s3://{bucket}/{key} (HTTP {status})")),
            _ => BucketError::Refused(format!("S3 refused s3://{bucket}/{key}: {code}")),
        };
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(cause) = source {
        if cause.downcast_ref::<aws_credential_types::provider::error::CredentialsError>().is_some() {
            return if is_role_refused(cause) {
                BucketError::Refused(format!(
                    "the account's role was refused, so s3://{bucket} cannot be read"
                ))
            } else {
                BucketError::Unavailable("STS could not be reached to assume the account's role".into())
            };
        }
        source = cause.source();
    }
    tracing::warn!(bucket, key, error = %DisplayErrorContext(&error), "S3 could not be reached");
    BucketError::Unavailable(format!("S3 could not be reached for s3://{bucket}/{key}"))
}
