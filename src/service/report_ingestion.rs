//! Report ingestion: stores the per-file records of the task reports DataSync has written, so
//! that "which files failed?" is a query, not a trip to S3.
//!
//! The index writer queues an execution's report (`report_ingestions`) in the statement that
//! records it as written (a STANDARD report whose `ReportResult` is SUCCESS), whoever saw it:
//! the watcher, the discovery sync, a client's read. Each replica takes due reports under a
//! lease, a few at a time, and for each lists the parts under the report's prefix in the
//! execution's account (its role, its region), then streams each part not yet stored from S3
//! through the parser ([`task_report::read_part`], on a blocking thread, one record at a time)
//! into `COPY`: a part is stored whole with its `report_parts` row, so an ingestion that stops
//! (a restart, a lost lease) resumes after the parts it stored, and none is stored twice.
//!
//! What is kept follows `--report-records` and `--report-max-records`. A part that is not a
//! report (broken JSON, another execution's) is recorded as unreadable and the others are
//! stored (PARTIAL). S3 refusing the bucket ends the ingestion FAILED at once, with S3's reason:
//! retrying would not help. S3 unavailable or a read broken off is tried again with backoff, up
//! to [`MAX_ATTEMPTS`] times.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::datasync::report_bucket::BucketError;
use crate::datasync::task_report::{read_part, PartError, ReportPart};
use crate::datasync::ReportBuckets;
use crate::metrics::Metrics;
use crate::model::{IngestionState, RecordsKept};
use crate::request::Caller;
use crate::store::reports::{
    encode_row, Claimed, PartCounts, PartFault, PartWritten, ReportStore, StoredPart,
};
use crate::store::StoreError;

/// Attempts of one ingestion, the first included, before it is given up as FAILED.
const MAX_ATTEMPTS: i32 = 8;
/// The wait before the second attempt; it doubles with each, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// How long a replica holds an ingestion without storing a part; a dead replica's are taken
/// sooner, as soon as its heartbeat runs out.
const LEASE: Duration = Duration::from_secs(300);
/// `COPY` data handed from the parser to the database at once.
const CHUNK_BYTES: usize = 256 * 1024;
/// Chunks waiting between parser and database: with the parser's read buffer, what one part
/// being stored holds in memory.
const CHUNKS_QUEUED: usize = 4;

#[derive(Clone, Debug)]
pub struct IngestionSettings {
    pub kept: RecordsKept,
    pub max_records: i64,
    pub concurrency: usize,
    pub interval: Duration,
}

/// What ingests: the queue, the buckets, this replica's name.
#[derive(Clone)]
pub struct Ingester {
    store: ReportStore,
    buckets: ReportBuckets,
    replica: String,
    settings: IngestionSettings,
    metrics: Metrics,
    caller: Caller,
}

/// Why an ingestion stopped before its end.
enum Stop {
    /// To be tried again later.
    Retry(String),
    /// For good: FAILED with this reason.
    Refused(String),
    /// Another replica holds it now.
    LeaseLost,
    Store(StoreError),
}

impl From<StoreError> for Stop {
    fn from(error: StoreError) -> Self {
        Stop::Store(error)
    }
}

impl From<BucketError> for Stop {
    fn from(error: BucketError) -> Self {
        match error {
            BucketError::Refused(why) => Stop::Refused(why),
            BucketError::Missing(why) | BucketError::Unavailable(why) => Stop::Retry(why),
        }
    }
}

/// How an ingestion ended.
struct Ended {
    state: IngestionState,
    truncated: bool,
    error: Option<String>,
    stored: u64,
}

impl Ingester {
    pub fn new(
        store: ReportStore,
        buckets: ReportBuckets,
        replica: String,
        settings: IngestionSettings,
        metrics: Metrics,
    ) -> Self {
        Ingester { store, buckets, replica, settings, metrics, caller: Caller::internal("report-ingestion") }
    }

    /// Takes due reports every interval, at most `concurrency` at once; the task.
    pub fn start(self) -> tokio::task::AbortHandle {
        let task = tokio::spawn(async move {
            let mut running = tokio::task::JoinSet::new();
            let mut ticks = tokio::time::interval(self.settings.interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                while running.try_join_next().is_some() {}
                let room = self.settings.concurrency.saturating_sub(running.len());
                if room == 0 {
                    continue;
                }
                match self.store.claim(&self.replica, LEASE, room as i64).await {
                    Ok(claimed) => {
                        for claimed in claimed {
                            let ingester = self.clone();
                            running.spawn(async move { ingester.ingest(claimed).await });
                        }
                    }
                    Err(error) => tracing::warn!(%error, "report ingestion: the queue could not be read"),
                }
            }
        });
        task.abort_handle()
    }

    /// Gives this replica's ingestions back at shutdown, to be resumed by another at once.
    pub async fn release(&self) {
        if let Err(error) = self.store.release(&self.replica).await {
            tracing::warn!(%error, "report ingestion: leases could not be released");
        }
    }

    async fn ingest(&self, claimed: Claimed) {
        let arn = &claimed.execution_arn;
        let (store, me, kept) = (&self.store, self.replica.as_str(), self.settings.kept);
        let result = match self.run(&claimed).await {
            Ok(ended) => {
                tracing::info!(%arn, state = ended.state.as_str(), stored = ended.stored, "task report ingested");
                self.metrics.report_ingestion(ended.state.as_str(), ended.stored);
                store.finish(claimed.id, me, ended.state, kept, ended.truncated, ended.error.as_deref()).await
            }
            Err(Stop::Retry(why)) if claimed.attempts < MAX_ATTEMPTS => {
                let delay = backoff(claimed.attempts);
                tracing::warn!(%arn, why, retry_in = ?delay, "task report ingestion interrupted; will retry");
                self.metrics.report_ingestion("RETRY", 0);
                store.retry_later(claimed.id, me, &why, delay).await
            }
            Err(Stop::Retry(why)) => {
                let why = format!("gave up after {} attempts: {why}", claimed.attempts);
                tracing::warn!(%arn, why, "task report ingestion failed");
                self.metrics.report_ingestion("FAILED", 0);
                store.finish(claimed.id, me, IngestionState::Failed, kept, false, Some(&why)).await
            }
            Err(Stop::Refused(why)) => {
                tracing::warn!(%arn, why, "task report ingestion refused");
                self.metrics.report_ingestion("FAILED", 0);
                store.finish(claimed.id, me, IngestionState::Failed, kept, false, Some(&why)).await
            }
            Err(Stop::LeaseLost) => {
                tracing::info!(%arn, "task report ingestion taken over by another replica");
                Ok(())
            }
            // The lease runs out and the ingestion is taken again (here or elsewhere).
            Err(Stop::Store(error)) => Err(error),
        };
        if let Err(error) = result {
            tracing::warn!(%arn, %error, "task report ingestion: the database failed; retried when its lease runs out");
        }
    }

    async fn run(&self, claimed: &Claimed) -> Result<Ended, Stop> {
        let arn = &claimed.execution_arn;
        let keys = self.buckets.list(arn, &claimed.bucket, &claimed.prefix, &self.caller).await?;
        let mut parts: Vec<(ReportPart, String)> = keys
            .into_iter()
            .filter_map(|key| Some((ReportPart::parse(&key)?, key)))
            .filter(|(part, _)| part.execution_id == arn.execution_id())
            .collect();
        if parts.is_empty() {
            return Err(Stop::Refused(format!(
                "no detailed report parts under s3://{}/{}",
                claimed.bucket, claimed.prefix
            )));
        }
        parts.sort_by(|(a, _), (b, _)| (a.kind.list(), a.part).cmp(&(b.kind.list(), b.part)));
        let done = self.store.done_parts(claimed.id).await?;
        let (mut kept, mut stored, mut truncated) = (claimed.records_kept, 0, false);
        for (part, key) in &parts {
            if done.contains(key) {
                continue;
            }
            if kept >= self.settings.max_records {
                truncated = true;
                break;
            }
            let room = self.settings.max_records - kept;
            let stored_part = StoredPart {
                key: key.clone(),
                kind: part.kind,
                part: i32::try_from(part.part).unwrap_or(i32::MAX),
                records_read: 0,
                records_kept: 0,
                error: None,
            };
            match self.part(claimed, &stored_part, room).await? {
                PartWritten::Stored(counts) => {
                    kept += counts.kept;
                    stored += counts.kept as u64;
                    if counts.cut {
                        truncated = true;
                        break;
                    }
                }
                PartWritten::Faulted(PartFault::Unreadable(why)) => {
                    tracing::warn!(%arn, key, why, "a task report part is unreadable; the others are stored");
                }
                PartWritten::Faulted(PartFault::Interrupted(why)) => return Err(Stop::Retry(why)),
                PartWritten::LeaseLost => return Err(Stop::LeaseLost),
            }
        }
        let recorded = self.store.parts(claimed.id).await?;
        let unreadable = recorded.iter().filter(|part| part.error.is_some()).count();
        let (state, error) = match unreadable {
            0 => (IngestionState::Complete, None),
            n if n == parts.len() => {
                (IngestionState::Failed, Some("no part of the report could be read".to_owned()))
            }
            n => (IngestionState::Partial, Some(format!("{n} of {} parts could not be read", parts.len()))),
        };
        Ok(Ended { state, truncated: truncated || kept >= self.settings.max_records, error, stored })
    }

    /// Streams one part from S3 through the parser into the database, keeping at most `room`
    /// records.
    async fn part(&self, claimed: &Claimed, part: &StoredPart, room: i64) -> Result<PartWritten, Stop> {
        let arn = &claimed.execution_arn;
        let stream = self.buckets.open(arn, &claimed.bucket, &part.key, &self.caller).await?;
        let (sender, chunks) = mpsc::channel::<Vec<u8>>(CHUNKS_QUEUED);
        // Made here: the bridge needs the runtime's handle, which a blocking thread lacks.
        let bridge = tokio_util::io::SyncIoBridge::new(stream);
        let (id, kind, number, kept) = (claimed.id, part.kind, part.part, self.settings.kept);
        let expected = arn.execution_id().to_owned();
        let parse = tokio::task::spawn_blocking(move || -> Result<PartCounts, PartFault> {
            // serde_json reads a byte at a time; each read of the bridge blocks on the runtime.
            let reader = std::io::BufReader::with_capacity(64 * 1024, bridge);
            let mut buffer = Vec::with_capacity(CHUNK_BYTES);
            let (mut ordinal, mut counts) = (0_i32, PartCounts { read: 0, kept: 0, cut: false });
            let read = read_part(reader, kind, &mut |record| {
                ordinal = ordinal.saturating_add(1);
                counts.read += 1;
                if !kept.keeps(&record) {
                    return Ok(());
                }
                if counts.kept >= room {
                    counts.cut = true;
                    return Err("the per-execution cap of records kept is reached".into());
                }
                encode_row(&mut buffer, id, kind, number, ordinal, &record);
                counts.kept += 1;
                if buffer.len() >= CHUNK_BYTES {
                    let full = std::mem::replace(&mut buffer, Vec::with_capacity(CHUNK_BYTES));
                    sender
                        .blocking_send(full)
                        .map_err(|_| "the database stopped taking records".to_owned())?;
                }
                Ok(())
            });
            match read {
                Ok(read) if read.execution_id.as_deref().is_some_and(|id| id != expected) => {
                    return Err(PartFault::Unreadable(format!(
                        "the part is {}'s report, not {expected}'s",
                        read.execution_id.unwrap_or_default()
                    )))
                }
                Ok(_) => {}
                Err(PartError::Stopped(_)) if counts.cut => {}
                Err(PartError::Malformed { message, line, column }) => {
                    return Err(PartFault::Unreadable(format!(
                        "not a task report part: {message} (line {line}, column {column})"
                    )))
                }
                Err(error) => return Err(PartFault::Interrupted(error.to_string())),
            }
            if !buffer.is_empty() {
                sender
                    .blocking_send(buffer)
                    .map_err(|_| PartFault::Interrupted("the database stopped taking records".into()))?;
            }
            Ok(counts)
        });
        let read = async {
            parse.await.unwrap_or_else(|panicked| {
                Err(PartFault::Interrupted(format!("the parser failed: {panicked}")))
            })
        };
        Ok(self.store.write_part(claimed, &self.replica, LEASE, part, chunks, read).await?)
    }
}

/// The wait after failed attempt `attempts` (1-based).
fn backoff(attempts: i32) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1)).unwrap_or(0).min(16);
    (FIRST_BACKOFF * 2_u32.pow(doublings)).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_from_half_a_minute_to_an_hour() {
        assert_eq!(backoff(1), Duration::from_secs(30));
        assert_eq!(backoff(2), Duration::from_secs(60));
        assert_eq!(backoff(4), Duration::from_secs(240));
        assert_eq!(backoff(MAX_ATTEMPTS), Duration::from_secs(3600));
        assert_eq!(backoff(i32::MAX), MAX_BACKOFF);
    }
}
