//! The simulator's data: tasks and their executions, and how an execution's description
//! unfolds over time.
//!
//! The seeded fleet is the same on every start (fixed ARNs, fixed shapes), so tests, demos and
//! the README can name its executions. Each covers one corner of DataSync's response.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};

pub const ACCOUNT: &str = "111122223333";
/// The regions the seeded tasks are in.
pub const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];

/// GraphiQL's first query in simulator mode: a seeded execution that is transferring.
pub const EXAMPLE_QUERY: &str = "# A seeded execution of the built-in simulator; try the others printed at start-up.
query Transferring {
  taskExecution(
    arn: \"arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60001/execution/exec-0a1b2c3d4e5f60103\"
  ) {
    id
    status
    bytesWritten
    estimatedBytesToTransfer
    progress { bytesPercent bytesPerSecond estimatedRemainingMs }
    servedFrom
  }
}
";

/// Seeded executions, by what they show.
pub mod seeded {
    /// Every seeded execution, for listing at start-up.
    pub const ALL: [(&str, &str); 12] = [
        ("SUCCESS, Basic mode, report written", SUCCEEDED_BASIC),
        ("SUCCESS, Enhanced mode, manifest", SUCCEEDED_ENHANCED),
        ("SUCCESS, task report still PENDING", REPORT_PENDING),
        ("ERROR, failed while transferring", FAILED),
        ("ERROR, cancelled", CANCELLED),
        ("QUEUED", QUEUED),
        ("LAUNCHING", LAUNCHING),
        ("PREPARING", PREPARING),
        ("TRANSFERRING", TRANSFERRING),
        ("VERIFYING", VERIFYING),
        ("a status unknown to the SDK", UNKNOWN_STATUS),
        ("start new executions of this task (StartTaskExecution)", QUICK_TASK),
    ];

    /// Basic mode, finished successfully: every option, filters, a report with overrides.
    pub const SUCCEEDED_BASIC: &str =
        "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60001/execution/exec-0a1b2c3d4e5f60101";
    /// Basic mode, failed while transferring, with DataSync's error code and detail.
    pub const FAILED: &str =
        "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60001/execution/exec-0a1b2c3d4e5f60102";
    /// Basic mode, an hour into a six-hour transfer: counters move on every call.
    pub const TRANSFERRING: &str =
        "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60001/execution/exec-0a1b2c3d4e5f60103";
    /// Queued behind the transferring execution of the same task.
    pub const QUEUED: &str =
        "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60001/execution/exec-0a1b2c3d4e5f60104";
    /// Enhanced mode with a manifest, finished successfully: filesListed, filesFailed, filesPrepared.
    pub const SUCCEEDED_ENHANCED: &str =
        "arn:aws:datasync:eu-west-1:111122223333:task/task-0a1b2c3d4e5f60002/execution/exec-0a1b2c3d4e5f60201";
    /// Enhanced mode, finished, but its task report is still being written.
    pub const REPORT_PENDING: &str =
        "arn:aws:datasync:eu-west-1:111122223333:task/task-0a1b2c3d4e5f60002/execution/exec-0a1b2c3d4e5f60202";
    /// Enhanced mode, still starting up.
    pub const LAUNCHING: &str =
        "arn:aws:datasync:eu-west-1:111122223333:task/task-0a1b2c3d4e5f60002/execution/exec-0a1b2c3d4e5f60203";
    /// Basic mode, comparing source and destination.
    pub const PREPARING: &str =
        "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60004/execution/exec-0a1b2c3d4e5f60401";
    /// Basic mode, transfer done, checking integrity.
    pub const VERIFYING: &str =
        "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60004/execution/exec-0a1b2c3d4e5f60402";
    /// Basic mode, cancelled while transferring: ERROR with DataSync's cancellation code.
    pub const CANCELLED: &str =
        "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60004/execution/exec-0a1b2c3d4e5f60403";
    /// Reports a status DataSync's published model does not have.
    pub const UNKNOWN_STATUS: &str =
        "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60003/execution/exec-0a1b2c3d4e5f60301";
    /// A task whose new executions run through every phase in about a minute (at the default tick).
    pub const QUICK_TASK: &str = "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60003";
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Basic,
    Enhanced,
}

impl Mode {
    fn wire(self) -> &'static str {
        match self {
            Mode::Basic => "BASIC",
            Mode::Enhanced => "ENHANCED",
        }
    }
}

/// How an execution of a task behaves, with phase lengths in ticks.
#[derive(Clone, Debug)]
struct Profile {
    mode: Mode,
    files: i64,
    bytes: i64,
    queued: i64,
    launching: i64,
    preparing: i64,
    transferring: i64,
    verifying: i64,
    /// DataSync's error code and detail, when the transfer fails halfway.
    failure: Option<(&'static str, &'static str)>,
    /// Ticks the task report stays PENDING after the execution ends; `None` means no report.
    report_pending: Option<i64>,
    manifest: bool,
    filters: bool,
    /// A status string DataSync's model does not have, reported whatever the phase.
    odd_status: Option<&'static str>,
}

const QUICK: Profile = Profile {
    mode: Mode::Basic,
    files: 1_200,
    bytes: 3_000_000_000,
    queued: 0,
    launching: 2,
    preparing: 4,
    transferring: 20,
    verifying: 4,
    failure: None,
    report_pending: None,
    manifest: false,
    filters: false,
    odd_status: None,
};

#[derive(Clone)]
pub struct Task {
    pub arn: String,
    pub name: String,
    profile: Profile,
}

#[derive(Clone)]
pub struct Execution {
    pub arn: String,
    pub task_arn: String,
    profile: Profile,
    started_at: DateTime<Utc>,
    cancelled_at: Option<DateTime<Utc>>,
    /// The bandwidth limit an UpdateTaskExecution set, if any (Basic mode).
    bytes_per_second: Option<i64>,
}

pub struct Fleet {
    pub tasks: Vec<Task>,
    pub executions: Vec<Execution>,
    tick: Duration,
    started: u64,
    /// The quick task starts on its own every this many ticks, from the fleet's creation.
    schedule: Option<(i32, DateTime<Utc>)>,
}

impl Fleet {
    /// The seeded fleet, with execution times relative to `now`, plus `extra` finished
    /// executions. `tick` is the unit of phase lengths.
    pub fn seeded(now: DateTime<Utc>, tick: std::time::Duration, extra: usize) -> Fleet {
        let tick = Duration::from_std(tick).unwrap_or(Duration::seconds(1));
        let basic = Profile { files: 48_210, bytes: 912_384_000_000, transferring: 3_600, ..QUICK };
        let enhanced = Profile {
            mode: Mode::Enhanced,
            files: 2_500_000,
            bytes: 5_400_000_000_000,
            preparing: 0,
            transferring: 7_200,
            verifying: 0,
            report_pending: Some(10),
            manifest: true,
            ..QUICK
        };
        let tasks = vec![
            Task {
                arn: "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60001".into(),
                name: "nightly-nfs-to-s3".into(),
                profile: Profile { filters: true, report_pending: Some(5), ..basic.clone() },
            },
            Task {
                arn: "arn:aws:datasync:eu-west-1:111122223333:task/task-0a1b2c3d4e5f60002".into(),
                name: "archive-s3-to-s3-enhanced".into(),
                profile: enhanced.clone(),
            },
            // Queued for a tick, as DataSync queues a new execution before launching it.
            Task {
                arn: seeded::QUICK_TASK.into(),
                name: "demo-quick-copy".into(),
                profile: Profile { queued: 1, ..QUICK },
            },
            Task {
                arn: "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60004".into(),
                name: "weekly-smb-to-fsx".into(),
                profile: Profile { files: 310_000, bytes: 75_000_000_000, ..QUICK },
            },
        ];
        let ago = |ticks: i64| now - tick * (ticks as i32);
        let hours = |h: i64| h * 3_600_000 / tick.num_milliseconds().max(1);
        let executions = vec![
            (seeded::SUCCEEDED_BASIC, &tasks[0], tasks[0].profile.clone(), ago(hours(48))),
            (
                seeded::FAILED,
                &tasks[0],
                Profile {
                    failure: Some((
                        "ErrorCodeS3AccessDenied",
                        "DataSync could not write to the destination bucket: access denied",
                    )),
                    ..tasks[0].profile.clone()
                },
                ago(hours(24)),
            ),
            (
                seeded::TRANSFERRING,
                &tasks[0],
                Profile { transferring: hours(6), ..tasks[0].profile.clone() },
                ago(hours(1)),
            ),
            (seeded::QUEUED, &tasks[0], Profile { queued: hours(24 * 365), ..tasks[0].profile.clone() }, now),
            (
                seeded::SUCCEEDED_ENHANCED,
                &tasks[1],
                Profile { report_pending: None, ..enhanced.clone() },
                ago(hours(72)),
            ),
            (
                seeded::REPORT_PENDING,
                &tasks[1],
                Profile { transferring: 10, report_pending: Some(hours(24 * 365)), ..enhanced.clone() },
                ago(20),
            ),
            (seeded::UNKNOWN_STATUS, &tasks[2], Profile { odd_status: Some("RECONCILING"), ..QUICK }, now),
            (seeded::LAUNCHING, &tasks[1], Profile { launching: hours(24 * 365), ..enhanced.clone() }, now),
            (
                seeded::PREPARING,
                &tasks[3],
                Profile { preparing: hours(24 * 365), ..tasks[3].profile.clone() },
                ago(3),
            ),
            (
                seeded::VERIFYING,
                &tasks[3],
                Profile { verifying: hours(24 * 365), ..tasks[3].profile.clone() },
                ago(QUICK.launching + QUICK.preparing + QUICK.transferring + 1),
            ),
            (seeded::CANCELLED, &tasks[3], tasks[3].profile.clone(), ago(hours(30))),
        ];
        let mut executions: Vec<Execution> = executions
            .into_iter()
            .map(|(arn, task, profile, started_at)| Execution {
                arn: arn.into(),
                task_arn: task.arn.clone(),
                profile,
                started_at,
                cancelled_at: None,
                bytes_per_second: None,
            })
            .collect();
        executions.extend((0..extra).map(|i| {
            let task = &tasks[i % tasks.len()];
            let failure =
                (i % 10 == 9).then_some(("ErrorCodeNetworkTimeout", "the agent lost its connection"));
            Execution {
                arn: format!("{}/execution/exec-{:017x}", task.arn, 0xe000_0000_0000_0000_u64 + i as u64),
                task_arn: task.arn.clone(),
                profile: Profile { failure, report_pending: None, ..QUICK },
                started_at: now - Duration::hours(i as i64 + 1),
                cancelled_at: None,
                bytes_per_second: None,
            }
        }));
        let mut fleet = Fleet { tasks, executions, tick, started: 0, schedule: None };
        let cancelled_at = ago(hours(30) - QUICK.launching - QUICK.preparing - QUICK.transferring / 2);
        fleet.cancel(seeded::CANCELLED, cancelled_at);
        fleet
    }

    /// From now on, the quick task starts an execution every `ticks` ticks, as a scheduled
    /// DataSync task does.
    pub fn schedule_every(&mut self, ticks: u32, now: DateTime<Utc>) {
        let ticks = i32::try_from(ticks.max(1)).unwrap_or(i32::MAX);
        self.schedule = Some((ticks, now + self.tick * ticks));
    }

    /// Starts the scheduled executions due by `now` (at the times they were due).
    pub fn run_schedule(&mut self, now: DateTime<Utc>) {
        while let Some((ticks, due)) = self.schedule.filter(|(_, due)| *due <= now) {
            self.start(seeded::QUICK_TASK, due);
            self.schedule = Some((ticks, due + self.tick * ticks));
        }
    }

    /// Gives `account` a copy of the seeded account's tasks and executions, under its own ARNs.
    pub fn add_account(&mut self, account: &str) {
        let seeded = format!(":{ACCOUNT}:");
        let moved = format!(":{account}:");
        let tasks: Vec<Task> = (self.tasks.iter())
            .filter(|task| task.arn.contains(&seeded))
            .map(|task| Task { arn: task.arn.replacen(&seeded, &moved, 1), ..task.clone() })
            .collect();
        let executions: Vec<Execution> = (self.executions.iter())
            .filter(|execution| execution.arn.contains(&seeded))
            .map(|execution| Execution {
                arn: execution.arn.replacen(&seeded, &moved, 1),
                task_arn: execution.task_arn.replacen(&seeded, &moved, 1),
                ..execution.clone()
            })
            .collect();
        self.tasks.extend(tasks);
        self.executions.extend(executions);
    }

    pub fn task(&self, arn: &str) -> Option<&Task> {
        self.tasks.iter().find(|task| task.arn == arn)
    }

    pub fn execution(&self, arn: &str) -> Option<&Execution> {
        self.executions.iter().find(|execution| execution.arn == arn)
    }

    /// A new execution of `task_arn` starting at `now`; its ARN.
    pub fn start(&mut self, task_arn: &str, now: DateTime<Utc>) -> Option<String> {
        self.started += 1;
        let task = self.task(task_arn)?;
        let arn = format!("{}/execution/exec-{:017x}", task.arn, 0xf000_0000_0000_0000_u64 + self.started);
        let execution = Execution {
            arn: arn.clone(),
            task_arn: task.arn.clone(),
            profile: task.profile.clone(),
            started_at: now,
            cancelled_at: None,
            bytes_per_second: None,
        };
        self.executions.push(execution);
        Some(arn)
    }

    /// Cancels a running execution; `false` if it already finished.
    pub fn cancel(&mut self, arn: &str, now: DateTime<Utc>) -> Option<bool> {
        let tick = self.tick;
        let execution = self.executions.iter_mut().find(|execution| execution.arn == arn)?;
        if execution.cancelled_at.is_some() || execution.snapshot(now, tick).terminal {
            return Some(false);
        }
        execution.cancelled_at = Some(now);
        Some(true)
    }

    /// UpdateTaskExecution's bandwidth limit: `None` when there is no such execution, `Some(Err)`
    /// with DataSync's reason when it cannot be changed (finished, or Enhanced mode).
    pub fn update(
        &mut self,
        arn: &str,
        bytes_per_second: i64,
        now: DateTime<Utc>,
    ) -> Option<Result<(), &'static str>> {
        let tick = self.tick;
        let execution = self.executions.iter_mut().find(|execution| execution.arn == arn)?;
        if execution.profile.mode == Mode::Enhanced {
            return Some(Err("BytesPerSecond is not applicable to Enhanced mode tasks"));
        }
        if execution.cancelled_at.is_some() || execution.snapshot(now, tick).terminal {
            return Some(Err("the task execution is not running"));
        }
        execution.bytes_per_second = Some(bytes_per_second);
        Some(Ok(()))
    }

    /// The `DescribeTaskExecution` response body for `execution` at `now`.
    pub fn describe(&self, execution: &Execution, now: DateTime<Utc>) -> Value {
        execution.describe(now, self.tick)
    }

    /// The status `ListTaskExecutions` shows.
    pub fn status(&self, execution: &Execution, now: DateTime<Utc>) -> &'static str {
        execution.snapshot(now, self.tick).status
    }
}

/// Which side of a task a location is.
#[derive(Clone, Copy)]
pub enum End {
    Source,
    Destination,
}

/// Each task reads from a location and writes to another of its own, named after the task:
/// `loc-` and the task's 17 hex digits with the first one set to `a` (source) or `b`.
pub fn location_arn(task: &Task, end: End) -> String {
    let (prefix, id) = task.arn.split_once(":task/task-").expect("a task ARN");
    let first = match end {
        End::Source => 'a',
        End::Destination => 'b',
    };
    format!("{prefix}:location/loc-{first}{}", &id[1..])
}

/// The network interface DataSync uses at `end` of the task, named after its location.
pub fn network_interface_arn(task: &Task, end: End) -> String {
    let location = location_arn(task, end);
    let (prefix, id) = location.split_once(":location/loc-").expect("a location ARN");
    format!("{}:network-interface/eni-{id}", prefix.replacen(":datasync:", ":ec2:", 1))
}

pub fn location_uri(task: &Task, end: End) -> String {
    match end {
        End::Source => format!("nfs://nas.example.internal/exports/{}/", task.name),
        End::Destination => format!("s3://datasync-gateway-demo/{}/", task.name),
    }
}

pub fn task_mode(task: &Task) -> &'static str {
    task.profile.mode.wire()
}

pub fn execution_mode(execution: &Execution) -> &'static str {
    execution.profile.mode.wire()
}

/// Where an execution is at one moment.
struct Snapshot {
    status: &'static str,
    terminal: bool,
    /// Fractions done of each phase, 0.0–1.0.
    prepared: f64,
    transferred: f64,
    verified: f64,
    /// When it left the queue, if it has.
    launched_at: Option<DateTime<Utc>>,
    /// When it ended, if it has.
    ended_at: Option<DateTime<Utc>>,
    error: Option<(&'static str, &'static str)>,
}

impl Execution {
    fn snapshot(&self, now: DateTime<Utc>, tick: Duration) -> Snapshot {
        let p = &self.profile;
        let at = |ticks: i64| self.started_at + tick * (ticks.min(i32::MAX as i64) as i32);
        let clock = self.cancelled_at.map_or(now, |cancelled| cancelled.min(now));
        let elapsed_ticks =
            (clock - self.started_at).num_milliseconds() as f64 / tick.num_milliseconds().max(1) as f64;
        let fraction = |start: i64, length: i64| {
            if length == 0 {
                if elapsed_ticks >= start as f64 {
                    1.0
                } else {
                    0.0
                }
            } else {
                ((elapsed_ticks - start as f64) / length as f64).clamp(0.0, 1.0)
            }
        };
        let prepare_start = p.queued + p.launching;
        let transfer_start = prepare_start + p.preparing;
        let verify_start = transfer_start + p.transferring;
        let end = verify_start + p.verifying;
        let mut snapshot = Snapshot {
            status: "QUEUED",
            terminal: false,
            prepared: fraction(prepare_start, p.preparing),
            transferred: fraction(transfer_start, p.transferring),
            verified: fraction(verify_start, p.verifying),
            launched_at: (elapsed_ticks >= p.queued as f64).then(|| at(p.queued)),
            ended_at: None,
            error: None,
        };
        let elapsed = elapsed_ticks;
        snapshot.status = if elapsed < p.queued as f64 {
            "QUEUED"
        } else if elapsed < prepare_start as f64 {
            "LAUNCHING"
        } else if elapsed < transfer_start as f64 {
            "PREPARING"
        } else if elapsed < verify_start as f64 {
            "TRANSFERRING"
        } else if elapsed < end as f64 {
            "VERIFYING"
        } else {
            "SUCCESS"
        };
        if let Some(failure) = p.failure {
            let fails_at = transfer_start + p.transferring / 2;
            if elapsed >= fails_at as f64 {
                snapshot = Snapshot {
                    status: "ERROR",
                    transferred: 0.5,
                    verified: 0.0,
                    ended_at: Some(at(fails_at)),
                    error: Some(failure),
                    ..snapshot
                };
            }
        }
        if snapshot.status == "SUCCESS" {
            snapshot.ended_at = Some(at(end));
        }
        if let Some(cancelled) = self.cancelled_at {
            if snapshot.ended_at.is_none() {
                let stopped = cancelled + tick;
                snapshot.status = if now < stopped { "CANCELLING" } else { "ERROR" };
                snapshot.ended_at = (now >= stopped).then_some(stopped);
                snapshot.error = Some(("OpCancelled", "The task execution was cancelled."));
            }
        }
        snapshot.terminal = matches!(snapshot.status, "SUCCESS" | "ERROR");
        if let Some(odd) = p.odd_status {
            snapshot.status = odd;
            snapshot.terminal = false;
        }
        snapshot
    }

    fn describe(&self, now: DateTime<Utc>, tick: Duration) -> Value {
        let p = &self.profile;
        let s = self.snapshot(now, tick);
        let ms = |ticks: i64| ticks * tick.num_milliseconds();
        let estimated = s.prepared >= 1.0;
        let share = |total: i64, fraction: f64| (total as f64 * fraction).round() as i64;
        let files_done = share(p.files, s.transferred);
        let bytes_done = share(p.bytes, s.transferred);
        let phase_status = |fraction: f64, failed: bool| match (failed, fraction) {
            (true, _) => "ERROR",
            (_, f) if f >= 1.0 => "SUCCESS",
            _ => "PENDING",
        };
        let transfer_failed = s.error.is_some() && s.transferred < 1.0;

        let mut result = Map::new();
        if p.mode == Mode::Basic {
            result.insert("PrepareDuration".into(), json!((ms(p.preparing) as f64 * s.prepared) as i64));
            result
                .insert("TransferDuration".into(), json!((ms(p.transferring) as f64 * s.transferred) as i64));
            result.insert("VerifyDuration".into(), json!((ms(p.verifying) as f64 * s.verified) as i64));
        } else {
            result.insert("PrepareDuration".into(), json!(0));
            result.insert("TransferDuration".into(), json!(0));
            result.insert("VerifyDuration".into(), json!(0));
        }
        result.insert("PrepareStatus".into(), json!(phase_status(s.prepared, false)));
        result.insert("TransferStatus".into(), json!(phase_status(s.transferred, transfer_failed)));
        result.insert("VerifyStatus".into(), json!(phase_status(s.verified, false)));
        let total_end = s.ended_at.unwrap_or(now);
        result.insert("TotalDuration".into(), json!((total_end - self.started_at).num_milliseconds().max(0)));
        if let Some((code, detail)) = s.error {
            result.insert("ErrorCode".into(), json!(code));
            result.insert("ErrorDetail".into(), json!(detail));
        }

        let mut body = json!({
            "TaskExecutionArn": self.arn,
            "Status": s.status,
            "Options": options(p.mode, self.bytes_per_second),
            "StartTime": epoch_seconds(self.started_at),
            "EstimatedFilesToTransfer": if estimated { p.files } else { 0 },
            "EstimatedBytesToTransfer": if estimated { p.bytes } else { 0 },
            "FilesTransferred": files_done,
            "BytesWritten": bytes_done,
            "BytesTransferred": bytes_done,
            "BytesCompressed": if p.mode == Mode::Basic { bytes_done * 3 / 5 } else { 0 },
            "Result": result,
            "FilesDeleted": 0,
            "FilesSkipped": if estimated { p.files / 100 } else { 0 },
            "FilesVerified": share(p.files, s.verified),
            "EstimatedFilesToDelete": 0,
            "TaskMode": p.mode.wire(),
        });
        let body = body.as_object_mut().expect("a JSON object");
        for (member, time) in [("LaunchTime", s.launched_at), ("EndTime", s.ended_at)] {
            if let Some(time) = time {
                body.insert(member.into(), json!(epoch_seconds(time)));
            }
        }
        if p.filters {
            body.insert(
                "Excludes".into(),
                json!([{ "FilterType": "SIMPLE_PATTERN", "Value": "*/.snapshot|*.tmp" }]),
            );
            body.insert(
                "Includes".into(),
                json!([{ "FilterType": "SIMPLE_PATTERN", "Value": "/projects|/home" }]),
            );
        }
        if p.manifest {
            body.insert(
                "ManifestConfig".into(),
                json!({
                    "Action": "TRANSFER",
                    "Format": "CSV",
                    "Source": { "S3": {
                        "ManifestObjectPath": "manifests/archive-2026-11.csv",
                        "BucketAccessRoleArn": format!("arn:aws:iam::{ACCOUNT}:role/datasync-manifest-reader"),
                        "S3BucketArn": "arn:aws:s3:::example-manifests",
                        "ManifestObjectVersionId": "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY",
                    }},
                }),
            );
        }
        if p.mode == Mode::Enhanced {
            body.insert(
                "FilesPrepared".into(),
                json!(share(p.files, s.prepared.min(s.transferred.max(0.5)))),
            );
            body.insert(
                "FilesListed".into(),
                json!({ "AtSource": if estimated { p.files + p.files / 100 } else { 0 }, "AtDestinationForDelete": 0 }),
            );
            body.insert(
                "FilesFailed".into(),
                json!({ "Prepare": 0, "Transfer": if s.error.is_some() { 17 } else { 0 }, "Verify": 0, "Delete": 0 }),
            );
            // Enhanced mode counts directories apart from files: one for every 50 files here.
            let folders = p.files / 50;
            let folders_done = share(folders, s.transferred);
            for (member, value) in [
                ("EstimatedFoldersToTransfer", if estimated { folders } else { 0 }),
                ("EstimatedFoldersToDelete", 0),
                ("FoldersSkipped", if estimated { folders / 100 } else { 0 }),
                ("FoldersPrepared", share(folders, s.prepared.min(s.transferred.max(0.5)))),
                ("FoldersTransferred", folders_done),
                ("FoldersVerified", share(folders, s.verified)),
                ("FoldersDeleted", 0),
            ] {
                body.insert(member.into(), json!(value));
            }
            body.insert(
                "FoldersListed".into(),
                json!({ "AtSource": if estimated { folders + folders / 100 } else { 0 }, "AtDestinationForDelete": 0 }),
            );
            body.insert(
                "FoldersFailed".into(),
                json!({ "List": 0, "Prepare": 0, "Transfer": if s.error.is_some() { 1 } else { 0 }, "Verify": 0, "Delete": 0 }),
            );
        }
        if let Some(pending_ticks) = p.report_pending {
            body.insert("TaskReportConfig".into(), report_config());
            let written = s
                .ended_at
                .is_some_and(|ended| now >= ended + tick * (pending_ticks.min(i32::MAX as i64) as i32));
            body.insert(
                "ReportResult".into(),
                json!({ "Status": if written { "SUCCESS" } else { "PENDING" } }),
            );
        }
        Value::Object(std::mem::take(body))
    }
}

fn options(mode: Mode, bytes_per_second: Option<i64>) -> Value {
    let mut options = json!({
        "VerifyMode": "ONLY_FILES_TRANSFERRED",
        "OverwriteMode": "ALWAYS",
        "Atime": "BEST_EFFORT",
        "Mtime": "PRESERVE",
        "Uid": "INT_VALUE",
        "Gid": "INT_VALUE",
        "PreserveDeletedFiles": "PRESERVE",
        "PreserveDevices": "NONE",
        "PosixPermissions": "PRESERVE",
        "TaskQueueing": "ENABLED",
        "LogLevel": "TRANSFER",
        "TransferMode": "CHANGED",
        "SecurityDescriptorCopyFlags": "NONE",
        "ObjectTags": "PRESERVE",
    });
    if mode == Mode::Basic {
        options["BytesPerSecond"] = json!(bytes_per_second.unwrap_or(-1));
    }
    options
}

fn report_config() -> Value {
    json!({
        "Destination": { "S3": {
            "Subdirectory": "reports/",
            "S3BucketArn": "arn:aws:s3:::example-datasync-reports",
            "BucketAccessRoleArn": format!("arn:aws:iam::{ACCOUNT}:role/datasync-report-writer"),
        }},
        "OutputType": "STANDARD",
        "ReportLevel": "ERRORS_ONLY",
        "ObjectVersionIds": "INCLUDE",
        "Overrides": {
            "Transferred": { "ReportLevel": "SUCCESSES_AND_ERRORS" },
            "Verified": { "ReportLevel": "ERRORS_ONLY" },
            "Deleted": { "ReportLevel": "SUCCESSES_AND_ERRORS" },
            "Skipped": { "ReportLevel": "ERRORS_ONLY" },
        },
    })
}

/// awsJson 1.1 sends timestamps as epoch seconds.
pub fn epoch_seconds(time: DateTime<Utc>) -> f64 {
    time.timestamp_millis() as f64 / 1000.0
}
