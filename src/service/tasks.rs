//! The task service: tasks and locations, read live from DataSync through caches.
//!
//! DataSync allows on the order of a hundred tasks per region and account, so the lists of
//! tasks and locations are small: each region's list is fetched whole (ListTasks,
//! ListLocations), cached, and filtered and paged in memory. A task's full description
//! (DescribeTask) is cached per ARN; concurrent misses for one ARN share one call, so a page of
//! 50 executions of 3 tasks costs at most 3 DescribeTask calls, whatever asks.

use std::sync::Arc;

use base64::Engine;
use futures::StreamExt;

use crate::cache::{Cached, TaskCaches};
use crate::datasync::DataSyncClient;
use crate::error::GatewayError;
use crate::model::{
    AccountId, EnumValue, Location, LocationArn, Region, Site, Task, TaskArn, TaskStatus, TaskSummary,
};
use crate::request::Caller;

/// Most tasks on one page of a listing.
pub const MAX_TASK_PAGE: usize = 100;

/// Which tasks a listing includes; conditions combine with AND.
#[derive(Clone, Debug, Default)]
pub struct TaskListing {
    /// Tasks in any of these regions (default: every region served).
    pub regions: Option<Vec<String>>,
    /// Tasks with any of these statuses.
    pub statuses: Option<Vec<TaskStatus>>,
    /// Tasks whose name contains this text (case-insensitive).
    pub name_contains: Option<String>,
    /// Tasks of any of these accounts.
    pub accounts: Option<Vec<AccountId>>,
}

/// Sites listed at once by a `tasks` page (each list is one call, or none when cached).
const SITES_AT_ONCE: usize = 8;

/// One page of a listing, ordered by ARN.
pub struct TaskPage {
    /// Each task with its cursor.
    pub tasks: Vec<(String, TaskSummary)>,
    pub has_previous_page: bool,
    pub has_next_page: bool,
}

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

    /// One task by ARN (BAD_USER_INPUT for an account or region not served, NOT_FOUND).
    pub async fn get(&self, arn: &TaskArn, caller: &Caller) -> Result<Arc<Task>, GatewayError> {
        caller.may_see(arn.account_id(), &format_args!("task {arn}"))?;
        self.datasync.site_of(arn.account_id(), arn.region())?;
        let fetch = async {
            match self.datasync.describe_task(arn, caller).await {
                Ok(task) => Ok(Cached::Found(Arc::new(task))),
                Err(GatewayError::NotFound(message)) => Ok(Cached::NotFound(message.into())),
                Err(error) => Err(error),
            }
        };
        self.caches.tasks.get_or_fetch(arn.as_str(), fetch).await?.value.into_result()
    }

    /// Every task DataSync lists at `site`.
    pub async fn list(&self, site: &Site, caller: &Caller) -> Result<Arc<Vec<TaskSummary>>, GatewayError> {
        let fetch = async { Ok(Cached::Found(Arc::new(self.datasync.list_tasks(site, caller).await?))) };
        self.caches.task_lists.get_or_fetch(site.to_string().as_str(), fetch).await?.value.into_result()
    }

    /// The task's entry in its site's cached task list, if that list is cached (the discovery
    /// sync keeps it so): a name and status at no AWS cost.
    pub async fn cached_summary(&self, arn: &TaskArn) -> Option<TaskSummary> {
        let site = self.datasync.site_of(arn.account_id(), arn.region()).ok()?.to_string();
        let Cached::Found(tasks) = self.caches.task_lists.peek(site.as_str()).await? else { return None };
        tasks.iter().find(|task| &task.task_arn == arn).cloned()
    }

    /// DataSync said the task changed (EventBridge's "DataSync Task State Change"): its cached
    /// description is dropped, so the next read describes it again, and its entry in the
    /// region's cached list takes `status` at once (no AWS call either way).
    pub async fn changed(&self, arn: &TaskArn, status: Option<&str>) -> Result<(), GatewayError> {
        let site = self.datasync.site_of(arn.account_id(), arn.region())?.to_string();
        self.caches.tasks.forget(arn.as_str()).await;
        let Some(status) = status else { return Ok(()) };
        if let Some(Cached::Found(listed)) = self.caches.task_lists.peek(site.as_str()).await {
            if listed.iter().any(|task| &task.task_arn == arn) {
                let updated = listed
                    .iter()
                    .map(|task| {
                        if &task.task_arn == arn {
                            TaskSummary { status: EnumValue::from_wire(status), ..task.clone() }
                        } else {
                            task.clone()
                        }
                    })
                    .collect();
                self.caches.task_lists.put(site.as_str(), Cached::Found(Arc::new(updated))).await;
            }
        }
        Ok(())
    }

    /// Replaces a site's cached task list with one just listed (by the discovery sync).
    pub async fn listed(&self, site: &Site, tasks: Vec<TaskSummary>) {
        self.caches.task_lists.put(site.to_string().as_str(), Cached::Found(Arc::new(tasks))).await;
    }

    /// The location with this ARN, from its site's list; `None` when DataSync lists none such.
    pub async fn location(
        &self,
        arn: &LocationArn,
        caller: &Caller,
    ) -> Result<Option<Location>, GatewayError> {
        if !caller.accounts().allows(arn.account_id()) {
            return Ok(None);
        }
        let Ok(site) = self.datasync.site_of(arn.account_id(), arn.region()) else { return Ok(None) };
        let fetch = async { Ok(Cached::Found(Arc::new(self.datasync.list_locations(&site, caller).await?))) };
        let locations = self
            .caches
            .locations
            .get_or_fetch(site.to_string().as_str(), fetch)
            .await?
            .value
            .into_result()?;
        Ok(locations.iter().find(|location| &location.location_arn == arn).cloned())
    }

    /// The matching tasks, ordered by ARN, `first` (default and at most [`MAX_TASK_PAGE`]) after
    /// the cursor `after`. Each region's list is read whole (cached), then filtered here.
    pub async fn page(
        &self,
        listing: TaskListing,
        first: Option<i32>,
        after: Option<&str>,
        caller: &Caller,
    ) -> Result<TaskPage, GatewayError> {
        let bad = |message: String| GatewayError::BadUserInput(message);
        let first = match first.map(usize::try_from) {
            None => MAX_TASK_PAGE,
            Some(Ok(first @ 1..=MAX_TASK_PAGE)) => first,
            Some(_) => return Err(bad(format!("`first` must be between 1 and {MAX_TASK_PAGE}"))),
        };
        let after = after
            .map(|cursor| {
                decode_cursor(cursor).ok_or_else(|| bad("`after` is not a cursor from `tasks`".into()))
            })
            .transpose()?;
        if let Some(regions) = &listing.regions {
            let served = self.datasync.regions();
            if let Some(unserved) =
                regions.iter().find(|region| !served.iter().any(|s| s.as_str() == *region))
            {
                let served: Vec<&str> = served.iter().map(Region::as_str).collect();
                return Err(bad(format!(
                    "region {unserved} is not served by this gateway; it serves {}",
                    served.join(", ")
                )));
            }
        }
        let visible = caller.accounts();
        let wanted = |account: AccountId| {
            visible.allows(account)
                && listing.accounts.as_ref().is_none_or(|accounts| accounts.contains(&account))
        };
        let sites = self.datasync.sites().into_iter().filter(|site| {
            listing.regions.as_ref().is_none_or(|regions| regions.iter().any(|r| r == site.region.as_str()))
                && site.account.is_none_or(wanted)
        });
        type Listed = Result<Arc<Vec<TaskSummary>>, GatewayError>;
        let lists: Vec<(Site, Listed)> = futures::stream::iter(sites)
            .map(|site| async move {
                let listed = self.list(&site, caller).await;
                (site, listed)
            })
            .buffered(SITES_AT_ONCE)
            .collect()
            .await;
        let name = listing.name_contains.map(|name| name.to_lowercase());
        let mut matching = Vec::new();
        for (site, listed) in lists {
            let listed = match listed {
                Ok(listed) => listed,
                // An account whose role is refused fails alone: its tasks are left out (and
                // `accounts` says why); any other failure fails the page.
                Err(GatewayError::UpstreamForbidden(why)) => {
                    tracing::debug!(%site, %why, "tasks: a site left out of the listing");
                    continue;
                }
                Err(error) => return Err(error),
            };
            matching.extend(
                listed
                    .iter()
                    .filter(|task| {
                        wanted(task.task_arn.account_id())
                            && listing
                                .statuses
                                .as_ref()
                                .is_none_or(|statuses| statuses.contains(&task.status.get()))
                            && name.as_ref().is_none_or(|name| {
                                task.name
                                    .as_ref()
                                    .is_some_and(|task_name| task_name.to_lowercase().contains(name))
                            })
                            && after.as_ref().is_none_or(|after| &task.task_arn > after)
                    })
                    .cloned(),
            );
        }
        matching.sort_by(|a, b| a.task_arn.cmp(&b.task_arn));
        let has_next_page = matching.len() > first;
        matching.truncate(first);
        let tasks = matching.into_iter().map(|task| (encode_cursor(&task.task_arn), task)).collect();
        Ok(TaskPage { tasks, has_previous_page: after.is_some(), has_next_page })
    }
}

fn encode_cursor(arn: &TaskArn) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(arn.as_str())
}

fn decode_cursor(cursor: &str) -> Option<TaskArn> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).ok()?;
    TaskArn::parse(std::str::from_utf8(&bytes).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::testing::simulated_datasync;
    use crate::simulator::Simulator;

    /// A task service over the SDK to a simulator of its own (four tasks: three in us-east-1,
    /// one in eu-west-1).
    async fn service() -> (TaskService, Simulator) {
        let (datasync, config, metrics, simulator) = simulated_datasync().await;
        (TaskService::new(TaskCaches::new(&config.cache, &metrics), datasync), simulator)
    }

    fn names(page: &TaskPage) -> Vec<&str> {
        page.tasks.iter().map(|(_, task)| task.name.as_deref().unwrap_or_default()).collect()
    }

    #[tokio::test]
    async fn a_listing_is_filtered_ordered_by_arn_and_paged_by_cursor() {
        let (service, simulator) = service().await;
        let caller = Caller::internal("tasks-test");

        let first = service.page(TaskListing::default(), Some(3), None, &caller).await.unwrap();
        assert_eq!(
            names(&first),
            ["archive-s3-to-s3-enhanced", "nightly-nfs-to-s3", "demo-quick-copy"],
            "eu-west-1 < us-east-1"
        );
        assert!(first.has_next_page && !first.has_previous_page);
        let (cursor, _) = first.tasks.last().unwrap();
        let rest = service.page(TaskListing::default(), Some(3), Some(cursor), &caller).await.unwrap();
        assert_eq!(names(&rest), ["weekly-smb-to-fsx"]);
        assert!(!rest.has_next_page && rest.has_previous_page);

        let named = TaskListing { name_contains: Some("S3".into()), ..Default::default() };
        let named = service.page(named, None, None, &caller).await.unwrap();
        assert_eq!(names(&named), ["archive-s3-to-s3-enhanced", "nightly-nfs-to-s3"], "case-insensitive");
        let ireland = TaskListing { regions: Some(vec!["eu-west-1".into()]), ..Default::default() };
        assert_eq!(
            names(&service.page(ireland, None, None, &caller).await.unwrap()),
            ["archive-s3-to-s3-enhanced"]
        );
        assert_eq!(simulator.calls("ListTasks"), 2, "each region's list read once, then from the cache");

        for (first, after) in [(Some(0), None), (Some(101), None), (None, Some("not a cursor"))] {
            let refused = service.page(TaskListing::default(), first, after, &caller).await;
            assert!(matches!(refused, Err(GatewayError::BadUserInput(_))), "{first:?} {after:?}");
        }
        let elsewhere = TaskListing { regions: Some(vec!["ap-south-1".into()]), ..Default::default() };
        let refused = service.page(elsewhere, None, None, &caller).await;
        assert!(
            matches!(refused, Err(GatewayError::BadUserInput(message)) if message.contains("not served"))
        );
    }
}
