//! The simulator's data: tasks and their executions, and how an execution's description
//! unfolds over time.
//!
//! The seeded fleet is the same on every start (fixed ARNs, fixed shapes), so tests, demos and
//! the README can name its executions. Each covers one corner of DataSync's response.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};

use super::reports;

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
        ("ERROR, failed while transferring; its task report lists the failed files", FAILED),
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
    /// At the natural rate; a lower bandwidth limit makes TRANSFERRING last longer.
    transferring: i64,
    verifying: i64,
    /// DataSync's error code and detail, when the transfer fails with half the bytes moved.
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
    /// Every bandwidth limit an UpdateTaskExecution set (Basic mode), oldest first, with when it
    /// was set: the transfer's rate follows each in turn. -1 lifts the limit.
    limits: Vec<(DateTime<Utc>, i64)>,
    /// The task report StartTaskExecution asked for, instead of the task's.
    report: Option<Value>,
}

pub struct Fleet {
    pub tasks: Vec<Task>,
    pub executions: Vec<Execution>,
    tick: Duration,
    started: u64,
    /// The quick task starts on its own every this many ticks, from the fleet's creation.
    schedule: Option<(i32, DateTime<Utc>)>,
    /// Files a task report covers at most.
    pub report_files: i64,
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
                limits: Vec::new(),
                report: None,
            })
            .collect();
        executions.extend((0..extra).map(|i| {
            let task = &tasks[i % tasks.len()];
            let failure =
                (i % 10 == 9).then_some(("ErrorCodeNetworkTimeout", "the agent lost its connection"));
            Execution {
                arn: format!("{}/execution/exec-{:017x}", task.arn, 0xe000_0000_0000_0000_u64 + i as u64),
                task_arn: task.arn.clone(),
                // Executions of a task with a report config write reports, as in DataSync.
                profile: Profile { failure, report_pending: task.profile.report_pending.map(|_| 1), ..QUICK },
                started_at: now - Duration::hours(i as i64 + 1),
                cancelled_at: None,
                limits: Vec::new(),
                report: None,
            }
        }));
        let mut fleet =
            Fleet { tasks, executions, tick, started: 0, schedule: None, report_files: reports::MAX_FILES };
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
            limits: Vec::new(),
            report: None,
        };
        self.executions.push(execution);
        Some(arn)
    }

    /// Gives a new execution the task report StartTaskExecution asked for: written a few ticks
    /// after it ends.
    pub fn set_report(&mut self, arn: &str, config: Value) {
        if let Some(execution) = self.executions.iter_mut().find(|execution| execution.arn == arn) {
            execution.profile.report_pending = Some(execution.profile.report_pending.unwrap_or(2));
            execution.report = Some(config);
        }
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
        execution.limits.push((now, bytes_per_second));
        Some(Ok(()))
    }

    /// The `DescribeTaskExecution` response body for `execution` at `now`.
    pub fn describe(&self, execution: &Execution, now: DateTime<Utc>) -> Value {
        execution.describe(now, self.tick)
    }

    /// The task report `execution` has written by `now`: `None` without a report config, or
    /// while its `ReportResult` is PENDING.
    pub fn written_report(&self, execution: &Execution, now: DateTime<Utc>) -> Option<reports::Report> {
        let s = execution.snapshot(now, self.tick);
        let written_at = execution.report_written_at(&s, self.tick).filter(|written| now >= *written)?;
        let task = self.task(&execution.task_arn)?;
        Some(reports::Report {
            execution_arn: execution.arn.clone(),
            task_arn: execution.task_arn.clone(),
            source_location_arn: location_arn(task, End::Source),
            destination_location_arn: location_arn(task, End::Destination),
            enhanced: execution.profile.mode == Mode::Enhanced,
            files: execution.profile.files,
            bytes: execution.profile.bytes,
            started_at: execution.started_at,
            ended_at: s.ended_at?,
            written_at,
            error: s.error,
            max_files: self.report_files,
        })
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
    /// Milliseconds spent in each phase so far; TRANSFERRING's follows the bandwidth limit.
    prepare_ms: i64,
    transfer_ms: i64,
    verify_ms: i64,
    /// When it left the queue, if it has.
    launched_at: Option<DateTime<Utc>>,
    /// When it ended, if it has.
    ended_at: Option<DateTime<Utc>>,
    error: Option<(&'static str, &'static str)>,
}

/// How TRANSFERRING moves the profile's bytes: at its natural rate (the bytes over its ticks),
/// or at the bandwidth limit in force when that is lower, so it lasts as long as the bytes take.
struct Transfer {
    start: DateTime<Utc>,
    /// When every byte has moved.
    end: DateTime<Utc>,
    bytes: f64,
    /// From each leg's start until the next one's, bytes move at its rate. Empty when there is
    /// nothing to move or no time to move it in: the transfer ends as it starts.
    legs: Vec<Leg>,
}

struct Leg {
    from: DateTime<Utc>,
    /// Bytes moved before `from`.
    moved: f64,
    bytes_per_second: f64,
}

impl Transfer {
    fn new(start: DateTime<Utc>, profile: &Profile, limits: &[(DateTime<Utc>, i64)], tick: Duration) -> Self {
        let bytes = profile.bytes.max(0) as f64;
        let mut transfer = Transfer { start, end: start, bytes, legs: Vec::new() };
        let natural_seconds = tick.as_seconds_f64() * profile.transferring as f64;
        if bytes == 0.0 || natural_seconds <= 0.0 {
            return transfer;
        }
        let natural = bytes / natural_seconds;
        let rate = |limit: i64| if limit < 0 { natural } else { natural.min(limit as f64) };
        // A limit set before the transfer starts is the one it starts with.
        let initial = limits.iter().rev().find(|(set, _)| *set <= start).map_or(-1, |(_, limit)| *limit);
        transfer.legs.push(Leg { from: start, moved: 0.0, bytes_per_second: rate(initial) });
        for &(set, limit) in limits.iter().filter(|(set, _)| *set > start) {
            let moved = transfer.moved_by(set);
            // Set while verifying: too late to change anything.
            if moved >= bytes {
                break;
            }
            transfer.legs.push(Leg { from: set, moved, bytes_per_second: rate(limit) });
        }
        transfer.end = transfer.time_moved(bytes);
        transfer
    }

    /// Bytes moved by `time` (all of them once the legs are done, or when there are none).
    fn moved_by(&self, time: DateTime<Utc>) -> f64 {
        if time < self.start {
            return 0.0;
        }
        match self.legs.iter().rev().find(|leg| leg.from <= time) {
            Some(leg) => {
                (leg.moved + leg.bytes_per_second * (time - leg.from).as_seconds_f64()).min(self.bytes)
            }
            None => self.bytes,
        }
    }

    /// When `bytes` have moved.
    fn time_moved(&self, bytes: f64) -> DateTime<Utc> {
        match self.legs.iter().rev().find(|leg| leg.moved <= bytes) {
            Some(leg) => after(leg.from, (bytes - leg.moved) / leg.bytes_per_second),
            None => self.start,
        }
    }

    /// The fraction of the bytes moved by `time`. Exactly 1.0 from the end on, which `end`'s
    /// rounding to the microsecond could otherwise leave a few bytes short of.
    fn done_by(&self, time: DateTime<Utc>) -> f64 {
        if time >= self.end {
            1.0
        } else if time <= self.start {
            0.0
        } else {
            self.moved_by(time) / self.bytes
        }
    }
}

/// `seconds` after `time`, to the microsecond.
fn after(time: DateTime<Utc>, seconds: f64) -> DateTime<Utc> {
    later(time, Duration::microseconds((seconds * 1e6).round() as i64))
}

/// A low limit on a large transfer can put its end past what chrono represents: the times after
/// it saturate there instead of overflowing.
fn later(time: DateTime<Utc>, duration: Duration) -> DateTime<Utc> {
    time.checked_add_signed(duration).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl Execution {
    fn snapshot(&self, now: DateTime<Utc>, tick: Duration) -> Snapshot {
        let p = &self.profile;
        // Not `tick * i32`: a seeded phase of a year is more ticks than that at a short tick.
        let ticks =
            |n: i64| Duration::nanoseconds(tick.num_nanoseconds().unwrap_or(i64::MAX).saturating_mul(n));
        let launched = later(self.started_at, ticks(p.queued));
        let prepare_start = later(launched, ticks(p.launching));
        let transfer = Transfer::new(later(prepare_start, ticks(p.preparing)), p, &self.limits, tick);
        let verify_end = later(transfer.end, ticks(p.verifying));
        let failure = p.failure.map(|failure| (failure, transfer.time_moved(transfer.bytes / 2.0)));
        // Nothing moves once the execution is cancelled or has failed.
        let clock = [Some(now), self.cancelled_at, failure.map(|(_, fails_at)| fails_at)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now);
        let fraction = |from: DateTime<Utc>, to: DateTime<Utc>| {
            if clock >= to {
                1.0
            } else if clock <= from {
                0.0
            } else {
                (clock - from).as_seconds_f64() / (to - from).as_seconds_f64()
            }
        };
        let ms_in =
            |from: DateTime<Utc>, to: DateTime<Utc>| (clock.clamp(from, to) - from).num_milliseconds();
        let mut snapshot = Snapshot {
            status: if clock < launched {
                "QUEUED"
            } else if clock < prepare_start {
                "LAUNCHING"
            } else if clock < transfer.start {
                "PREPARING"
            } else if clock < transfer.end {
                "TRANSFERRING"
            } else if clock < verify_end {
                "VERIFYING"
            } else {
                "SUCCESS"
            },
            terminal: false,
            prepared: fraction(prepare_start, transfer.start),
            transferred: transfer.done_by(clock),
            verified: fraction(transfer.end, verify_end),
            prepare_ms: ms_in(prepare_start, transfer.start),
            transfer_ms: ms_in(transfer.start, transfer.end),
            verify_ms: ms_in(transfer.end, verify_end),
            launched_at: (clock >= launched).then_some(launched),
            ended_at: None,
            error: None,
        };
        if let Some((failure, fails_at)) = failure {
            if clock >= fails_at {
                snapshot = Snapshot {
                    status: "ERROR",
                    transferred: 0.5,
                    verified: 0.0,
                    ended_at: Some(fails_at),
                    error: Some(failure),
                    ..snapshot
                };
            }
        }
        if snapshot.status == "SUCCESS" {
            snapshot.ended_at = Some(verify_end);
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

    fn account(&self) -> &str {
        self.arn.split(':').nth(4).unwrap_or(ACCOUNT)
    }

    /// When the task report turns SUCCESS: `report_pending` ticks after the execution ends
    /// (`None` without a report config, or before the end).
    fn report_written_at(&self, s: &Snapshot, tick: Duration) -> Option<DateTime<Utc>> {
        let pending = self.profile.report_pending?;
        let ticks = Duration::nanoseconds(tick.num_nanoseconds().unwrap_or(i64::MAX).saturating_mul(pending));
        Some(later(s.ended_at?, ticks))
    }

    fn describe(&self, now: DateTime<Utc>, tick: Duration) -> Value {
        let p = &self.profile;
        let s = self.snapshot(now, tick);
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
            result.insert("PrepareDuration".into(), json!(s.prepare_ms));
            result.insert("TransferDuration".into(), json!(s.transfer_ms));
            result.insert("VerifyDuration".into(), json!(s.verify_ms));
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
            "Options": options(p.mode, self.limits.last().map_or(-1, |(_, limit)| *limit)),
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
        if p.report_pending.is_some() {
            let config = self.report.clone().unwrap_or_else(|| report_config(self.account()));
            body.insert("TaskReportConfig".into(), config);
            let written = self.report_written_at(&s, tick).is_some_and(|written| now >= written);
            body.insert(
                "ReportResult".into(),
                json!({ "Status": if written { "SUCCESS" } else { "PENDING" } }),
            );
        }
        Value::Object(std::mem::take(body))
    }
}

fn options(mode: Mode, bytes_per_second: i64) -> Value {
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
        options["BytesPerSecond"] = json!(bytes_per_second);
    }
    options
}

/// Reports go to the account's own bucket ([`reports::bucket`]): `example-datasync-reports` for
/// the seeded account.
fn report_config(account: &str) -> Value {
    json!({
        "Destination": { "S3": {
            "Subdirectory": format!("{}/", reports::SUBDIRECTORY),
            "S3BucketArn": format!("arn:aws:s3:::{}", reports::bucket(account)),
            "BucketAccessRoleArn": format!("arn:aws:iam::{account}:role/datasync-report-writer"),
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

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    /// One-second ticks: the quick task (queued 1, launching 2, preparing 4) transfers its 3 GB
    /// from second 7 to 27 at its natural rate, then verifies until 31.
    const TICK: std::time::Duration = std::time::Duration::from_secs(1);
    const NATURAL: i64 = 150_000_000;
    const BYTES: i64 = 3_000_000_000;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
    }

    fn at(seconds: f64) -> DateTime<Utc> {
        after(t0(), seconds)
    }

    /// A fleet with an execution of the quick task started at `t0`, and its ARN.
    fn quick() -> (Fleet, String) {
        let mut fleet = Fleet::seeded(t0(), TICK, 0);
        let arn = fleet.start(seeded::QUICK_TASK, t0()).unwrap();
        (fleet, arn)
    }

    fn describe(fleet: &Fleet, arn: &str, second: f64) -> Value {
        fleet.describe(fleet.execution(arn).unwrap(), at(second))
    }

    /// Status and bytes transferred at `second`.
    fn seen(fleet: &Fleet, arn: &str, second: f64) -> (String, i64) {
        let described = describe(fleet, arn, second);
        (described["Status"].as_str().unwrap().to_owned(), described["BytesTransferred"].as_i64().unwrap())
    }

    fn limit(fleet: &mut Fleet, arn: &str, bytes_per_second: i64, second: f64) {
        fleet.update(arn, bytes_per_second, at(second)).unwrap().unwrap();
    }

    #[test]
    fn without_a_limit_the_transfer_takes_its_ticks_as_it_always_did() {
        let (fleet, arn) = quick();
        let expected = [
            (0.0, "QUEUED", 0),
            (1.0, "LAUNCHING", 0),
            (3.0, "PREPARING", 0),
            (6.999, "PREPARING", 0),
            (7.0, "TRANSFERRING", 0),
            (12.0, "TRANSFERRING", BYTES / 4),
            (26.999, "TRANSFERRING", 2_999_850_000),
            (27.0, "VERIFYING", BYTES),
            (30.999, "VERIFYING", BYTES),
            (31.0, "SUCCESS", BYTES),
        ];
        for (second, status, bytes) in expected {
            assert_eq!(seen(&fleet, &arn, second), (status.to_owned(), bytes), "at {second} s");
        }
        let halfway = describe(&fleet, &arn, 17.0);
        assert_eq!(halfway["FilesTransferred"], 600);
        assert_eq!(halfway["Result"]["TransferDuration"], 10_000);
        let done = describe(&fleet, &arn, 100.0);
        assert_eq!(done["Result"]["TransferDuration"], 20_000);
        assert_eq!(done["Result"]["TotalDuration"], 31_000);
        assert_eq!(done["EndTime"], json!(epoch_seconds(at(31.0))));
        assert_eq!(done["Options"]["BytesPerSecond"], -1);
    }

    #[test]
    fn a_limit_at_half_the_natural_rate_doubles_the_transfer_whether_set_before_or_as_it_starts() {
        let (unlimited, _) = quick();
        for set_at in [5.0, 7.0] {
            let (mut fleet, arn) = quick();
            limit(&mut fleet, &arn, NATURAL / 2, set_at);
            for second in 7..=27 {
                let second = second as f64;
                let (_, natural_bytes) = seen(&unlimited, &unlimited.executions.last().unwrap().arn, second);
                assert_eq!(
                    seen(&fleet, &arn, second),
                    ("TRANSFERRING".into(), natural_bytes / 2),
                    "at {second} s"
                );
            }
            assert_eq!(seen(&fleet, &arn, 46.999).0, "TRANSFERRING");
            assert_eq!(seen(&fleet, &arn, 47.0), ("VERIFYING".into(), BYTES));
            assert_eq!(seen(&fleet, &arn, 51.0), ("SUCCESS".into(), BYTES));
            let done = describe(&fleet, &arn, 100.0);
            assert_eq!(done["Result"]["TransferDuration"], 40_000, "set at {set_at} s");
            assert_eq!(done["Result"]["TotalDuration"], 51_000);
            assert_eq!(done["EndTime"], json!(epoch_seconds(at(51.0))));
            assert_eq!(done["Options"]["BytesPerSecond"], NATURAL / 2);
        }
    }

    #[test]
    fn lifting_the_limit_restores_the_natural_rate_and_a_limit_above_it_changes_nothing() {
        let (mut fleet, arn) = quick();
        limit(&mut fleet, &arn, NATURAL / 2, 7.0);
        limit(&mut fleet, &arn, -1, 17.0);
        assert_eq!(seen(&fleet, &arn, 17.0).1, BYTES / 4);
        assert_eq!(seen(&fleet, &arn, 18.0).1 - seen(&fleet, &arn, 17.0).1, NATURAL);
        // The other 2.25 GB at the natural rate: 15 s more.
        assert_eq!(seen(&fleet, &arn, 31.999).0, "TRANSFERRING");
        assert_eq!(seen(&fleet, &arn, 32.0), ("VERIFYING".into(), BYTES));
        let done = describe(&fleet, &arn, 100.0);
        assert_eq!(done["Result"]["TransferDuration"], 25_000);
        assert_eq!(done["EndTime"], json!(epoch_seconds(at(36.0))));
        assert_eq!(done["Options"]["BytesPerSecond"], -1);

        let (mut fleet, arn) = quick();
        limit(&mut fleet, &arn, NATURAL * 10, 7.0);
        assert_eq!(seen(&fleet, &arn, 12.0).1, BYTES / 4);
        assert_eq!(seen(&fleet, &arn, 27.0).0, "VERIFYING");
    }

    #[test]
    fn a_failing_transfer_fails_with_half_its_bytes_moved_however_long_that_takes() {
        let failure = ("ErrorCodeNetworkTimeout", "the agent lost its connection");
        let failing = || {
            let (mut fleet, arn) = quick();
            fleet.executions.last_mut().unwrap().profile.failure = Some(failure);
            (fleet, arn)
        };
        let (fleet, arn) = failing();
        assert_eq!(seen(&fleet, &arn, 16.999).0, "TRANSFERRING");
        assert_eq!(seen(&fleet, &arn, 17.0), ("ERROR".into(), BYTES / 2));

        let (mut fleet, arn) = failing();
        limit(&mut fleet, &arn, NATURAL / 2, 7.0);
        assert_eq!(seen(&fleet, &arn, 17.0), ("TRANSFERRING".into(), BYTES / 4));
        assert_eq!(seen(&fleet, &arn, 26.999).0, "TRANSFERRING");
        let failed = describe(&fleet, &arn, 100.0);
        assert_eq!(failed["Status"], "ERROR");
        assert_eq!(failed["BytesTransferred"], BYTES / 2);
        assert_eq!(failed["Result"]["ErrorCode"], failure.0);
        assert_eq!(failed["Result"]["TransferStatus"], "ERROR");
        assert_eq!(failed["Result"]["TransferDuration"], 20_000);
        assert_eq!(failed["Result"]["VerifyDuration"], 0);
        assert_eq!(failed["EndTime"], json!(epoch_seconds(at(27.0))));
        assert_eq!(fleet.update(&arn, -1, at(100.0)), Some(Err("the task execution is not running")));
    }

    #[test]
    fn a_limited_transfer_stops_where_it_was_cancelled() {
        let (mut fleet, arn) = quick();
        limit(&mut fleet, &arn, NATURAL / 2, 7.0);
        assert_eq!(fleet.cancel(&arn, at(17.0)), Some(true));
        assert_eq!(seen(&fleet, &arn, 17.5), ("CANCELLING".into(), BYTES / 4));
        let cancelled = describe(&fleet, &arn, 100.0);
        assert_eq!(cancelled["Status"], "ERROR");
        assert_eq!(cancelled["Result"]["ErrorCode"], "OpCancelled");
        assert_eq!(cancelled["BytesTransferred"], BYTES / 4);
        assert_eq!(cancelled["Result"]["TransferDuration"], 10_000);
        assert_eq!(cancelled["EndTime"], json!(epoch_seconds(at(18.0))));
    }

    #[test]
    fn nothing_to_move_or_no_time_to_move_it_in_ends_the_transfer_as_it_starts() {
        for (bytes, transferring) in [(BYTES, 0), (0, 20)] {
            let (mut fleet, arn) = quick();
            let profile = &mut fleet.executions.last_mut().unwrap().profile;
            (profile.bytes, profile.transferring) = (bytes, transferring);
            limit(&mut fleet, &arn, 1, 5.0);
            assert_eq!(
                seen(&fleet, &arn, 6.999),
                ("PREPARING".into(), 0),
                "{bytes} bytes in {transferring} ticks"
            );
            assert_eq!(seen(&fleet, &arn, 7.0), ("VERIFYING".into(), bytes));
            assert_eq!(describe(&fleet, &arn, 7.0)["Result"]["TransferDuration"], 0);
        }
    }
}
