//! Control: starting and cancelling task executions (the operator role's mutations).
//!
//! A start may carry an idempotency key: the first request with it starts the execution, and
//! any retry with the same key answers that execution instead of starting another (recorded in
//! PostgreSQL, `control_starts`, or in memory for a day without a database). The answer is read
//! from DataSync at once (so the cache holds the new state) and handed to the index and the
//! watcher, which follows it from there. Every mutation is audited: who, what, when, outcome,
//! in `audit_log` and in the log (target `audit`).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::datasync::DataSyncClient;
use crate::error::GatewayError;
use crate::model::{ExecutionArn, TaskArn, TaskExecutionStatus, TaskMode};
use crate::model::{StartOverrides, StartTaskReport};
use crate::request::Caller;
use crate::service::audit;
use crate::service::executions::{Consistency, ExecutionService, Fetched};
use crate::service::live::Live;
use crate::store::control::ControlStore;
use crate::store::within;

const VERIFY_MODES: [&str; 3] = ["POINT_IN_TIME_CONSISTENT", "ONLY_FILES_TRANSFERRED", "NONE"];

#[derive(Clone)]
pub struct ControlService {
    datasync: DataSyncClient,
    executions: ExecutionService,
    live: Live,
    /// With a database: the idempotency keys and the audit log, and each call's time limit.
    store: Option<(ControlStore, Duration)>,
    /// Idempotency without a database: key → (task, execution once started).
    started: moka::sync::Cache<String, Arc<(TaskArn, Option<ExecutionArn>)>>,
}

impl ControlService {
    pub fn new(
        datasync: DataSyncClient,
        executions: ExecutionService,
        live: Live,
        store: Option<(ControlStore, Duration)>,
    ) -> Self {
        let started = moka::sync::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(Duration::from_secs(86_400))
            .build();
        ControlService { datasync, executions, live, store, started }
    }

    /// Starts an execution of `task_arn` (or answers the one a request with the same
    /// `idempotency_key` started).
    pub async fn start(
        &self,
        task_arn: &TaskArn,
        idempotency_key: Option<&str>,
        overrides: StartOverrides,
        caller: &Caller,
    ) -> Result<Fetched, GatewayError> {
        let arguments = json!({ "idempotencyKey": idempotency_key, "overrides": overrides });
        let result = self.start_once(task_arn, idempotency_key, &overrides, caller).await;
        let (outcome, target) = match &result {
            Ok((fetched, true)) => ("replayed", fetched.arn().as_str()),
            Ok((fetched, false)) => ("ok", fetched.arn().as_str()),
            Err(_) => ("error", task_arn.as_str()),
        };
        audit::record(
            self.store.as_ref(),
            caller,
            "startTaskExecution",
            target,
            arguments,
            outcome,
            result.as_ref().err(),
        )
        .await;
        result.map(|(fetched, _)| fetched)
    }

    /// The execution, and whether it was an earlier request's (a replay).
    async fn start_once(
        &self,
        task_arn: &TaskArn,
        idempotency_key: Option<&str>,
        overrides: &StartOverrides,
        caller: &Caller,
    ) -> Result<(Fetched, bool), GatewayError> {
        caller.may_see(task_arn.account_id(), &format_args!("task {task_arn}"))?;
        let bad = |message: String| GatewayError::BadUserInput(message);
        if let Some(mode) = &overrides.verify_mode {
            if !VERIFY_MODES.contains(&mode.as_str()) {
                return Err(bad(format!("overrides.verifyMode must be one of {}", VERIFY_MODES.join(", "))));
            }
        }
        if overrides.bytes_per_second.is_some_and(|rate| rate < -1 || rate == 0) {
            return Err(bad("overrides.bytesPerSecond is -1 (no limit) or a positive number".into()));
        }
        if let Some(report) = &overrides.task_report {
            check_task_report(report)?;
        }
        for pattern in [&overrides.includes, &overrides.excludes].into_iter().flatten() {
            if pattern.is_empty() || pattern.len() > 102_400 {
                return Err(bad("overrides.includes and excludes are 1 to 102,400 characters".into()));
            }
        }
        if let Some(key) = idempotency_key {
            if key.is_empty() || key.len() > 128 {
                return Err(bad("idempotencyKey is 1 to 128 characters".into()));
            }
            if let Some(arn) = self.claim(key, task_arn, caller).await? {
                return Ok((self.executions.get(&arn, Default::default(), caller).await?, true));
            }
        }
        let sent_at = Utc::now();
        let started = match self.datasync.start_task_execution(task_arn, overrides, caller).await {
            Err(GatewayError::UpstreamOutcomeUnknown(message)) => {
                let found = self.reconcile(task_arn, sent_at, caller).await;
                found.ok_or(GatewayError::UpstreamOutcomeUnknown(message))
            }
            started => started,
        };
        match (idempotency_key, &started) {
            // Whether it started is not known: the key stays taken, so that a retry with it
            // cannot start a second execution.
            (Some(_), Err(GatewayError::UpstreamOutcomeUnknown(_))) | (None, _) => {}
            (Some(key), started) => self.settle(key, started.as_ref().ok()).await,
        }
        Ok((self.follow(&started?, caller).await?, false))
    }

    /// After a start whose answer was lost: the execution it started, when DataSync lists
    /// exactly one of the task's in a first phase (queued, launching, preparing: where an
    /// execution is moments after its start) that started since `sent_at`, less a little clock
    /// skew. `None` when that cannot be told (another start at the same moment, DataSync
    /// unreachable): the outcome stays unknown.
    async fn reconcile(
        &self,
        task_arn: &TaskArn,
        sent_at: DateTime<Utc>,
        caller: &Caller,
    ) -> Option<ExecutionArn> {
        let since = sent_at - chrono::Duration::seconds(2);
        let site = self.datasync.site_of(task_arn.account_id(), task_arn.region()).ok()?;
        let listed = self.datasync.list_executions(&site, Some(task_arn), caller).await.ok()?;
        let mut found = Vec::new();
        for (arn, status) in listed {
            if !matches!(status.as_str(), "QUEUED" | "LAUNCHING" | "PREPARING") {
                continue;
            }
            let execution = self.datasync.describe_task_execution(&arn, caller).await.ok()?;
            if execution.start_time.is_some_and(|started| started >= since) {
                found.push(arn);
            }
        }
        tracing::info!(
            task = %task_arn,
            candidates = found.len(),
            "reconciling a start whose answer was lost"
        );
        (found.len() == 1).then(|| found.pop()).flatten()
    }

    /// Cancels a running execution.
    pub async fn cancel(&self, arn: &ExecutionArn, caller: &Caller) -> Result<Fetched, GatewayError> {
        let result = async {
            caller.may_see(arn.account_id(), &format_args!("task execution {arn}"))?;
            self.executions.check_served(arn)?;
            match self.datasync.cancel_task_execution(arn, caller).await {
                Ok(()) => self.follow(arn, caller).await,
                // DataSync's InvalidRequestException: finished already, or unknown.
                Err(GatewayError::NotFound(_)) => Err(GatewayError::BadUserInput(format!(
                    "DataSync would not cancel {arn}: it has finished, or does not exist"
                ))),
                // The answer was lost: what DataSync says of the execution now tells whether
                // the cancel took (CANCELLING, or finished since).
                Err(GatewayError::UpstreamOutcomeUnknown(message)) => {
                    let now = self.follow(arn, caller).await?;
                    let status = now.execution.status.get();
                    if status == TaskExecutionStatus::Cancelling || status.is_terminal() {
                        Ok(now)
                    } else {
                        Err(GatewayError::UpstreamOutcomeUnknown(message))
                    }
                }
                Err(other) => Err(other),
            }
        }
        .await;
        let outcome = if result.is_ok() { "ok" } else { "error" };
        audit::record(
            self.store.as_ref(),
            caller,
            "cancelTaskExecution",
            arn.as_str(),
            json!({}),
            outcome,
            result.as_ref().err(),
        )
        .await;
        result
    }

    /// Changes a running execution's bandwidth limit (Basic mode: DataSync does not limit
    /// Enhanced mode's), answering the execution as DataSync then describes it. The limit it has
    /// already is answered without a call.
    pub async fn update(
        &self,
        arn: &ExecutionArn,
        bytes_per_second: i64,
        caller: &Caller,
    ) -> Result<Fetched, GatewayError> {
        let result = self.update_once(arn, bytes_per_second, caller).await;
        let outcome = match &result {
            Ok((_, true)) => "ok",
            Ok((_, false)) => "unchanged",
            Err(_) => "error",
        };
        let arguments = json!({ "bytesPerSecond": bytes_per_second });
        audit::record(
            self.store.as_ref(),
            caller,
            "updateTaskExecution",
            arn.as_str(),
            arguments,
            outcome,
            result.as_ref().err(),
        )
        .await;
        result.map(|(fetched, _)| fetched)
    }

    /// The execution, and whether DataSync was asked to change it.
    async fn update_once(
        &self,
        arn: &ExecutionArn,
        bytes_per_second: i64,
        caller: &Caller,
    ) -> Result<(Fetched, bool), GatewayError> {
        let bad = |message: String| GatewayError::BadUserInput(message);
        if bytes_per_second < -1 || bytes_per_second == 0 {
            return Err(bad("bytesPerSecond is -1 (no limit) or a positive number".into()));
        }
        let current = self.executions.get(arn, Consistency::Cached, caller).await?;
        let execution = &current.execution;
        if execution.task_mode.as_ref().is_some_and(|mode| mode.get() == TaskMode::Enhanced) {
            return Err(bad(format!(
                "{arn} runs in Enhanced mode, whose bandwidth DataSync does not limit (BytesPerSecond applies to \
                 Basic mode only)"
            )));
        }
        if execution.is_terminal() {
            return Err(bad(format!("{arn} has finished; only a running execution's bandwidth can change")));
        }
        let limit_now = |fetched: &Fetched| {
            fetched.execution.options.as_ref().and_then(|options| options.bytes_per_second).map(|rate| rate.0)
        };
        if limit_now(&current) == Some(bytes_per_second) {
            return Ok((current, false));
        }
        match self.datasync.update_task_execution(arn, bytes_per_second, caller).await {
            Ok(()) => Ok((self.follow(arn, caller).await?, true)),
            // DataSync's InvalidRequestException: finished since, or unknown.
            Err(GatewayError::NotFound(_)) => {
                Err(bad(format!("DataSync would not change {arn}: it has finished, or does not exist")))
            }
            // The answer was lost: the execution's limit now tells whether the change took.
            Err(GatewayError::UpstreamOutcomeUnknown(message)) => {
                let now = self.follow(arn, caller).await?;
                if limit_now(&now) == Some(bytes_per_second) {
                    Ok((now, true))
                } else {
                    Err(GatewayError::UpstreamOutcomeUnknown(message))
                }
            }
            Err(other) => Err(other),
        }
    }

    /// Reads the execution from DataSync now (the cache gets the new state), and hands it to
    /// the index and the watcher.
    async fn follow(&self, arn: &ExecutionArn, caller: &Caller) -> Result<Fetched, GatewayError> {
        let fetched = self.executions.get(arn, Consistency::Strong, caller).await?;
        if let Err(error) = self.live.observed(std::slice::from_ref(&fetched.execution)).await {
            tracing::warn!(%arn, %error, "could not index a controlled execution; this replica's watcher still sees it");
        }
        Ok(fetched)
    }

    /// Takes `key` for this start; the execution an earlier request with it started, if any.
    async fn claim(
        &self,
        key: &str,
        task_arn: &TaskArn,
        caller: &Caller,
    ) -> Result<Option<ExecutionArn>, GatewayError> {
        let existing = match &self.store {
            Some((store, limit)) => {
                within(*limit, store.claim_start(key, caller.key(), task_arn)).await.map_err(|error| {
                    tracing::warn!(%error, "idempotency keys cannot be checked");
                    GatewayError::HistoryUnavailable("idempotency keys cannot be checked")
                })?
            }
            None => {
                let entry =
                    self.started.entry(key.to_owned()).or_insert_with(|| Arc::new((task_arn.clone(), None)));
                (!entry.is_fresh()).then(|| entry.into_value().as_ref().clone())
            }
        };
        match existing {
            None => Ok(None),
            Some((task, _)) if &task != task_arn => Err(GatewayError::BadUserInput(
                "this idempotencyKey was used to start another task; use a new key".into(),
            )),
            Some((_, Some(arn))) => Ok(Some(arn)),
            Some((_, None)) => Err(GatewayError::UpstreamOutcomeUnknown(format!(
                "a start of {task_arn} with this idempotencyKey has not answered yet, or its answer \
                 was lost: look at the task's executions before starting it with another key"
            ))),
        }
    }

    /// Records what the start under `key` produced; a failed start frees the key for a retry.
    async fn settle(&self, key: &str, started: Option<&ExecutionArn>) {
        match &self.store {
            Some((store, limit)) => {
                if let Err(error) = within(*limit, store.settle_start(key, started)).await {
                    tracing::error!(%error, "could not record an idempotent start");
                }
            }
            None => match started {
                Some(arn) => {
                    if let Some(entry) = self.started.get(key) {
                        self.started.insert(key.to_owned(), Arc::new((entry.0.clone(), Some(arn.clone()))));
                    }
                }
                None => self.started.invalidate(key),
            },
        }
    }
}

/// DataSync's own limits on a report's destination, checked before the call so that the caller
/// hears which field is wrong rather than DataSync's InvalidRequestException.
fn check_task_report(report: &StartTaskReport) -> Result<(), GatewayError> {
    let bad = |message: &str| Err(GatewayError::BadUserInput(format!("overrides.taskReport.{message}")));
    let bucket = report.s3_bucket_arn.split(":s3:::").nth(1).unwrap_or_default();
    if !report.s3_bucket_arn.starts_with("arn:aws") || bucket.is_empty() || report.s3_bucket_arn.len() > 268 {
        return bad("s3BucketArn must be an S3 bucket ARN, e.g. arn:aws:s3:::example-reports");
    }
    let role = &report.bucket_access_role_arn;
    if !role.starts_with("arn:aws")
        || !role.contains(":iam::")
        || !role.contains(":role/")
        || role.len() > 2048
    {
        return bad("bucketAccessRoleArn must be an IAM role ARN, e.g. arn:aws:iam::111122223333:role/datasync-reports");
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_-+./() ".contains(c);
    if report.subdirectory.as_ref().is_some_and(|sub| sub.len() > 4096 || !sub.chars().all(allowed)) {
        return bad("subdirectory is at most 4,096 letters, digits, spaces and _-+./()");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::testing::simulated_datasync;
    use crate::simulator::fleet::seeded;
    use crate::simulator::Simulator;

    /// A control service without a database, over the SDK to a simulator of its own.
    async fn control() -> (ControlService, Simulator) {
        let (datasync, config, metrics, simulator) = simulated_datasync().await;
        let executions = ExecutionService::new(&config.cache, datasync.clone(), None, metrics);
        let settings = crate::service::live::LiveSettings {
            poll_interval: Duration::from_secs(3600),
            lease: Duration::from_secs(60),
        };
        let (live, _tasks) = Live::start(executions.clone(), None, settings);
        (ControlService::new(datasync, executions, live, None), simulator)
    }

    fn caller() -> Caller {
        Caller::internal("control-test")
    }

    fn task_a() -> TaskArn {
        TaskArn::parse(seeded::QUICK_TASK).unwrap()
    }

    fn task_b() -> TaskArn {
        TaskArn::parse(&seeded::QUICK_TASK.replace("0003", "0001")).unwrap()
    }

    #[tokio::test]
    async fn an_idempotency_key_is_taken_by_one_task_and_answers_its_execution_once_settled() {
        let (control, _simulator) = control().await;
        let (task, caller) = (&task_a(), caller());
        assert_eq!(control.claim("k", task, &caller).await, Ok(None), "first use: taken");
        assert!(
            matches!(control.claim("k", task, &caller).await, Err(GatewayError::UpstreamOutcomeUnknown(_))),
            "in flight: neither a second start nor an answer"
        );
        assert!(matches!(control.claim("k", &task_b(), &caller).await, Err(GatewayError::BadUserInput(_))));

        let arn = ExecutionArn::parse(&format!("{task}/execution/exec-0f000000000000001")).unwrap();
        control.settle("k", Some(&arn)).await;
        assert_eq!(control.claim("k", task, &caller).await, Ok(Some(arn)), "a retry answers the execution");
        assert!(
            matches!(control.claim("k", &task_b(), &caller).await, Err(GatewayError::BadUserInput(_))),
            "still one task's key"
        );

        assert_eq!(control.claim("failed", task, &caller).await, Ok(None));
        control.settle("failed", None).await;
        assert_eq!(control.claim("failed", task, &caller).await, Ok(None), "a failed start frees its key");
    }

    #[tokio::test]
    async fn bad_starts_are_refused_before_datasync_is_asked_and_take_no_key() {
        let (control, simulator) = control().await;
        let caller = caller();
        let overrides = |edit: fn(&mut StartOverrides)| {
            let mut overrides = StartOverrides::default();
            edit(&mut overrides);
            overrides
        };
        let task = &task_a();
        let long_key = "k".repeat(129);
        // (Text that is not a task ARN never gets here: it is refused where it enters.)
        let refused: [(&TaskArn, Option<&str>, StartOverrides); 7] = [
            (task, None, overrides(|o| o.verify_mode = Some("SOMETIMES".into()))),
            (task, None, overrides(|o| o.bytes_per_second = Some(0))),
            (task, None, overrides(|o| o.bytes_per_second = Some(-2))),
            (task, None, overrides(|o| o.includes = Some(String::new()))),
            (task, None, overrides(|o| o.excludes = Some("x".repeat(102_401)))),
            (task, Some(""), StartOverrides::default()),
            (task, Some(long_key.as_str()), StartOverrides::default()),
        ];
        for (task, key, overrides) in refused {
            let result = control.start_once(task, key, &overrides, &caller).await;
            assert!(matches!(result, Err(GatewayError::BadUserInput(_))), "{task} {key:?} {overrides:?}");
        }
        let key_of_a_refused_start = Some("refused-then-valid");
        let bad = overrides(|o| o.verify_mode = Some("SOMETIMES".into()));
        assert!(control.start_once(task, key_of_a_refused_start, &bad, &caller).await.is_err());
        assert_eq!(simulator.calls("StartTaskExecution"), 0, "nothing reached DataSync");

        // The limits' other side is accepted, and the key of the refused start is free.
        let valid = overrides(|o| {
            o.bytes_per_second = Some(-1);
            o.verify_mode = Some("NONE".into());
            o.includes = Some("/photos*".into());
        });
        let (started, replayed) =
            control.start_once(task, key_of_a_refused_start, &valid, &caller).await.unwrap();
        assert!(!replayed);
        assert!(started.arn().belongs_to(task), "{}", started.arn());
        let (again, replayed) =
            control.start_once(task, key_of_a_refused_start, &valid, &caller).await.unwrap();
        assert!(replayed, "the same key again is a replay");
        assert_eq!(again.arn(), started.arn());
        assert_eq!(simulator.calls("StartTaskExecution"), 1, "started once");
    }

    #[tokio::test]
    async fn a_lost_start_is_reconciled_only_to_a_single_execution_started_since_it_was_sent() {
        let (control, _simulator) = control().await;
        let (task, caller) = (&task_a(), caller());
        let sent_at = Utc::now();
        assert_eq!(control.reconcile(task, sent_at, &caller).await, None, "nothing started since");

        let first = control.datasync.start_task_execution(task, &Default::default(), &caller).await.unwrap();
        assert_eq!(
            control.reconcile(task, sent_at, &caller).await,
            Some(first.clone()),
            "the one it started"
        );
        let later = Utc::now() + chrono::Duration::minutes(10);
        assert_eq!(control.reconcile(task, later, &caller).await, None, "started before the request");

        control.datasync.start_task_execution(task, &Default::default(), &caller).await.unwrap();
        assert_eq!(
            control.reconcile(task, sent_at, &caller).await,
            None,
            "two candidates: which one was this request's cannot be told"
        );
    }
}
