//! The task service: tasks and locations, read live from DataSync through caches.
//!
//! DataSync allows on the order of a hundred tasks per region and account, so the lists of
//! tasks and locations are small: each region's list is fetched whole (ListTasks,
//! ListLocations), cached, and filtered and paged in memory. A task's full description
//! (DescribeTask) is cached per ARN; concurrent misses for one ARN share one call, so a page of
//! 50 executions of 3 tasks costs at most 3 DescribeTask calls, whatever asks.

use std::sync::Arc;

use crate::cache::{Cached, TaskCaches};
use crate::caller::Caller;
use crate::datasync::arn::{region_of, validate_task_arn};
use crate::datasync::DataSyncClient;
use crate::error::GatewayError;
use crate::model::{Location, Task, TaskSummary};

#[derive(Clone)]
pub struct TaskService {
    caches: TaskCaches,
    datasync: DataSyncClient,
}

impl TaskService {
    pub fn new(caches: TaskCaches, datasync: DataSyncClient) -> Self {
        TaskService { caches, datasync }
    }

    /// Entries in each of its caches, for `/metrics`.
    pub async fn cache_entries(&self) -> [(&'static str, u64); 3] {
        let caches = &self.caches;
        [
            ("tasks", caches.tasks.entries().await),
            ("task_lists", caches.task_lists.entries().await),
            ("locations", caches.locations.entries().await),
        ]
    }

    pub fn regions(&self) -> Vec<&str> {
        self.datasync.regions()
    }

    /// One task by ARN (BAD_USER_INPUT for a malformed ARN or a region not served, NOT_FOUND).
    pub async fn get(&self, arn: &str, caller: &Caller) -> Result<Arc<Task>, GatewayError> {
        let region =
            validate_task_arn(arn).map_err(|invalid| GatewayError::BadUserInput(invalid.to_string()))?;
        self.datasync.client_for(region)?;
        let fetch = async {
            caller.spend_upstream_call()?;
            match self.datasync.describe_task(arn, region, caller).await {
                Ok(task) => Ok(Cached::Found(Arc::new(task))),
                Err(GatewayError::NotFound(_)) => {
                    Ok(Cached::NotFound(format!("DataSync has no task {arn}").into()))
                }
                Err(error) => Err(error),
            }
        };
        self.caches.tasks.get_or_fetch(arn, fetch).await?.value.into_result()
    }

    /// Every task DataSync lists in `region`.
    pub async fn list(&self, region: &str, caller: &Caller) -> Result<Arc<Vec<TaskSummary>>, GatewayError> {
        self.datasync.client_for(region)?;
        let fetch = async {
            caller.spend_upstream_call()?;
            Ok(Cached::Found(Arc::new(self.datasync.list_tasks(region, caller).await?)))
        };
        self.caches.task_lists.get_or_fetch(region, fetch).await?.value.into_result()
    }

    /// The task's entry in its region's cached task list, if that list is cached (the discovery
    /// sync keeps it so): a name and status at no AWS cost.
    pub async fn cached_summary(&self, arn: &str) -> Option<TaskSummary> {
        let region = region_of(arn)?;
        let Cached::Found(tasks) = self.caches.task_lists.peek(region).await? else { return None };
        tasks.iter().find(|task| task.task_arn == arn).cloned()
    }

    /// Replaces a region's cached task list with one just listed (by the discovery sync).
    pub async fn listed(&self, region: &str, tasks: Vec<TaskSummary>) {
        self.caches.task_lists.put(region, Cached::Found(Arc::new(tasks))).await;
    }

    /// The location with this ARN, from its region's list; `None` when DataSync lists none such.
    pub async fn location(&self, arn: &str, caller: &Caller) -> Result<Option<Location>, GatewayError> {
        let Some(region) = region_of(arn) else { return Ok(None) };
        if self.datasync.client_for(region).is_err() {
            return Ok(None);
        }
        let fetch = async {
            caller.spend_upstream_call()?;
            Ok(Cached::Found(Arc::new(self.datasync.list_locations(region, caller).await?)))
        };
        let locations = self.caches.locations.get_or_fetch(region, fetch).await?.value.into_result()?;
        Ok(locations.iter().find(|location| location.location_arn == arn).cloned())
    }
}
