//! The execution service: what the GraphQL resolvers call. It owns the read path
//! (cache, then DataSync) and the rules for batches.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::join_all;

use crate::cache::{Cached, ExecutionCache};
use crate::datasync::{DataSyncClient, ExecutionArn};
use crate::error::GatewayError;
use crate::model::TaskExecution;

/// Most ARNs one `taskExecutions` query may ask for.
pub const MAX_BATCH_ARNS: usize = 100;

/// How fresh an answer must be.
#[derive(async_graphql::Enum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Consistency {
    /// A cached description is fine (finished executions: up to an hour; running ones: seconds).
    #[default]
    Cached,
    /// Ask DataSync now, and refresh the cache with the answer.
    Strong,
}

/// Where an answer came from.
#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServedFrom {
    /// The gateway's cache: no DataSync call was made for this request.
    Cache,
    /// DataSync, called for this request.
    Upstream,
}

/// One execution, and where it came from.
#[derive(Clone, Debug)]
pub struct Fetched {
    pub arn: ExecutionArn,
    pub execution: Arc<TaskExecution>,
    pub served_from: ServedFrom,
}

#[derive(Clone)]
pub struct ExecutionService {
    cache: ExecutionCache,
    datasync: DataSyncClient,
}

impl ExecutionService {
    pub fn new(cache: ExecutionCache, datasync: DataSyncClient) -> Self {
        ExecutionService { cache, datasync }
    }

    /// One execution by ARN.
    pub async fn get(&self, arn: &str, consistency: Consistency) -> Result<Fetched, GatewayError> {
        let arn =
            ExecutionArn::parse(arn).map_err(|invalid| GatewayError::BadUserInput(invalid.to_string()))?;
        self.get_parsed(arn, consistency).await
    }

    /// Many executions by ARN, in the order asked, each with its own result. Each distinct ARN
    /// is looked up once; DataSync calls run concurrently, bounded by the client.
    pub async fn get_many(
        &self,
        arns: &[String],
        consistency: Consistency,
    ) -> Result<Vec<Result<Fetched, GatewayError>>, GatewayError> {
        if arns.len() > MAX_BATCH_ARNS {
            return Err(GatewayError::BadUserInput(format!(
                "at most {MAX_BATCH_ARNS} ARNs per query; got {}",
                arns.len()
            )));
        }
        let mut distinct: Vec<&str> = arns.iter().map(String::as_str).collect();
        distinct.sort_unstable();
        distinct.dedup();
        let results = join_all(distinct.iter().map(|arn| self.get(arn, consistency))).await;
        let by_arn: HashMap<&str, Result<Fetched, GatewayError>> =
            distinct.into_iter().zip(results).collect();
        Ok(arns.iter().map(|arn| by_arn[arn.as_str()].clone()).collect())
    }

    async fn get_parsed(&self, arn: ExecutionArn, consistency: Consistency) -> Result<Fetched, GatewayError> {
        match consistency {
            Consistency::Cached => {
                let lookup = self.cache.get_or_fetch(arn.as_str(), self.fetch(&arn)).await?;
                let served_from = if lookup.fetched { ServedFrom::Upstream } else { ServedFrom::Cache };
                Ok(Fetched { execution: lookup.value.into_result()?, arn, served_from })
            }
            Consistency::Strong => {
                let cached = self.fetch(&arn).await?;
                self.cache.put(arn.as_str(), cached.clone()).await;
                Ok(Fetched { execution: cached.into_result()?, arn, served_from: ServedFrom::Upstream })
            }
        }
    }

    /// A DataSync call, as a cacheable answer; NOT_FOUND is an answer, other errors are not.
    async fn fetch(&self, arn: &ExecutionArn) -> Result<Cached, GatewayError> {
        match self.datasync.describe_task_execution(arn).await {
            Err(error) if !matches!(error, GatewayError::NotFound(_)) => Err(error),
            result => Ok(Cached::from(result)),
        }
    }
}
