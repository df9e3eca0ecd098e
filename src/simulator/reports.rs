//! The task reports the simulator's executions write: for an execution whose task has a report
//! config, once its `ReportResult` is SUCCESS, a STANDARD report (a summary and detailed
//! `files-transferred` and `files-verified` reports in numbered parts) in its account's report
//! bucket, which the simulator serves over S3 (`s3.rs`).
//!
//! Keys follow AWS's layout (the user guide's task-report pages and the public parsers of
//! aws-solutions; see the notes of issue 21):
//! `reports/Detailed-Reports/{task-id}/{exec-id}/{exec-id}.files-{kind}-v1-{NNNNN}-{17 hex}.json`
//! and `reports/Summary-Reports/{task-id}/{exec-id}/{exec-id}.summary-v1.json`.
//!
//! Nothing is stored: an object's body is generated when asked for, from the execution alone
//! (seeded by its ARN, timed by its start and end), so every GET of a key returns the same bytes.
//! An execution reports on at most [`MAX_FILES`] of its files (or the simulator's `report_files`) (`dir-{n/50}/file-{n}.dat`, Basic
//! mode listing their directories too), [`PART_RECORDS`] records a part.
//!
//! What the records hold follows the task's report config (`fleet::report_config`):
//! - Transferred: SUCCESSES_AND_ERRORS, so every file, with the failed ones (about one in 16, and
//!   a fixed set of "chronically failing" files, the same in every failed execution) when the
//!   execution failed. A successful execution has no failed file, as in DataSync.
//! - Verified: ERRORS_ONLY, so only mismatches (about one transferred file in 64 of a failed
//!   execution); a report with no record still has an (empty) part 1.
//!
//! Basic mode records use Basic's schema (`/`-led RelativePath, SrcMetadata{Type, ContentSize,
//! Mtime}, FailureReason and a numeric FailureCode); Enhanced mode records Enhanced's (no leading
//! `/`, SourceMetadata{Type: "Object", ContentSize, LastModified}, ErrorCode and ErrorDetail).
//! Enhanced mode's Verified schema is not public: it is Basic's with Enhanced's metadata and error
//! fields. The failure reasons and codes other than "S3 Get Object Failed" (40974) are made up.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::fleet;

/// Files an execution's report covers at most (its profile may have millions).
pub const MAX_FILES: i64 = 5_000;
/// Records in one part of a detailed report; DataSync splits at 5 MB instead.
pub const PART_RECORDS: usize = 1_000;
/// The report config's subdirectory, trimmed of its trailing `/`.
pub const SUBDIRECTORY: &str = "reports";
/// The management account's report bucket; another account's is this and `-{account}`.
pub const BUCKET: &str = "example-datasync-reports";

/// The report bucket of `account`: every account writes to its own (bucket names are global).
pub fn bucket(account: &str) -> String {
    if account == fleet::ACCOUNT {
        BUCKET.to_owned()
    } else {
        format!("{BUCKET}-{account}")
    }
}

/// The account that owns a report bucket, from its name; `None` if it is no report bucket.
pub fn bucket_account(bucket: &str) -> Option<&str> {
    match bucket.strip_prefix(BUCKET)? {
        "" => Some(fleet::ACCOUNT),
        rest => {
            let account = rest.strip_prefix('-')?;
            (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then_some(account)
        }
    }
}

/// A detailed report's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Transferred,
    Verified,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::Transferred, Kind::Verified];

    /// The kind in object keys: `files-{name}`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Transferred => "transferred",
            Kind::Verified => "verified",
        }
    }

    /// The body's array member.
    pub fn member(self) -> &'static str {
        match self {
            Kind::Transferred => "Transferred",
            Kind::Verified => "Verified",
        }
    }

    fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

/// A written task report: what its objects are generated from.
#[derive(Clone, Debug)]
pub struct Report {
    pub execution_arn: String,
    pub task_arn: String,
    pub source_location_arn: String,
    pub destination_location_arn: String,
    pub enhanced: bool,
    /// The profile's files and bytes (the whole transfer, not only what the report covers).
    pub files: i64,
    pub bytes: i64,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    /// When `ReportResult` turned SUCCESS: the objects' Last-Modified.
    pub written_at: DateTime<Utc>,
    /// DataSync's error code and detail when the execution ended in ERROR.
    pub error: Option<(&'static str, &'static str)>,
    /// Files reported on at most ([`MAX_FILES`] unless the simulator was told otherwise).
    pub max_files: i64,
}

/// One object of a report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    pub key: String,
    /// `None`: the summary.
    pub kind: Option<Kind>,
    /// 1-based part number (1 for the summary).
    pub part: usize,
}

/// A key parsed back: task id, execution id, kind (`None`: the summary) and part.
#[derive(Debug, PartialEq, Eq)]
pub struct ParsedKey<'a> {
    pub task_id: &'a str,
    pub exec_id: &'a str,
    pub kind: Option<Kind>,
    pub part: usize,
}

/// Parses a report key; `None` for anything else.
pub fn parse_key(key: &str) -> Option<ParsedKey<'_>> {
    let mut segments = key.strip_prefix(SUBDIRECTORY)?.strip_prefix('/')?.split('/');
    let (folder, task_id, exec_id, name) =
        (segments.next()?, segments.next()?, segments.next()?, segments.next()?);
    if segments.next().is_some() || !is_id(task_id, "task-") || !is_id(exec_id, "exec-") {
        return None;
    }
    let rest = name.strip_prefix(exec_id)?.strip_prefix('.')?.strip_suffix(".json")?;
    match folder {
        "Summary-Reports" if rest == "summary-v1" => {
            Some(ParsedKey { task_id, exec_id, kind: None, part: 1 })
        }
        "Detailed-Reports" => {
            let rest = rest.strip_prefix("files-")?;
            let (kind, rest) = rest.split_once("-v1-")?;
            let (part, hex) = rest.split_once('-')?;
            let valid = part.len() == 5
                && part.bytes().all(|b| b.is_ascii_digit())
                && hex.len() == 17
                && hex.bytes().all(|b| b.is_ascii_hexdigit());
            let part = part.parse().ok().filter(|part| valid && *part >= 1)?;
            Some(ParsedKey { task_id, exec_id, kind: Some(Kind::parse(kind)?), part })
        }
        _ => None,
    }
}

fn is_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|hex| hex.len() == 17 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// One line of a report: a directory (Basic mode) or a numbered file.
#[derive(Clone, Copy)]
enum Entry {
    Directory(i64),
    File(i64),
}

impl Report {
    /// The account the execution (and its report bucket) belongs to.
    pub fn account(&self) -> &str {
        self.execution_arn.split(':').nth(4).unwrap_or_default()
    }

    pub fn bucket(&self) -> String {
        bucket(self.account())
    }

    pub fn task_id(&self) -> &str {
        self.task_arn.rsplit('/').next().unwrap_or_default()
    }

    pub fn exec_id(&self) -> &str {
        self.execution_arn.rsplit('/').next().unwrap_or_default()
    }

    /// The report's folder under `Detailed-Reports/` or `Summary-Reports/`, with a trailing `/`.
    pub fn prefix(&self, folder: &str) -> String {
        format!("{SUBDIRECTORY}/{folder}/{}/{}/", self.task_id(), self.exec_id())
    }

    /// Every object of the report, the summary first, then each kind's parts in order.
    pub fn objects(&self) -> Vec<Object> {
        let exec = self.exec_id();
        let mut objects = vec![Object {
            key: format!("{}{exec}.summary-v1.json", self.prefix("Summary-Reports")),
            kind: None,
            part: 1,
        }];
        for kind in Kind::ALL {
            let parts = self.records(kind).div_ceil(PART_RECORDS).max(1);
            objects.extend((1..=parts).map(|part| Object {
                key: format!(
                    "{}{exec}.files-{}-v1-{part:05}-{}.json",
                    self.prefix("Detailed-Reports"),
                    kind.name(),
                    self.opaque(kind, part)
                ),
                kind: Some(kind),
                part,
            }));
        }
        objects
    }

    /// The 17 hex digits that end a part's name (AWS does not say what they mean).
    fn opaque(&self, kind: Kind, part: usize) -> String {
        let salt = if kind == Kind::Transferred { 11 } else { 12 };
        let bits = mix(mix(self.seed(), salt), part as u64);
        format!("{:x}{bits:016x}", part % 16)
    }

    /// Records of `kind` across all its parts.
    pub fn records(&self, kind: Kind) -> usize {
        match kind {
            // Every line, counted without generating any (a report may cover a million).
            Kind::Transferred => self.entries(),
            Kind::Verified if self.error.is_none() => 0,
            Kind::Verified => (0..self.entries()).filter(|&i| self.reported(kind, self.entry(i))).count(),
        }
    }

    /// The body of one of [`Report::objects`].
    pub fn body(&self, object: &Object) -> Vec<u8> {
        let Some(kind) = object.kind else { return self.summary().to_string().into_bytes() };
        let first = (object.part - 1) * PART_RECORDS;
        let records: Vec<Value> = match kind {
            // Every line is reported: the part's lines are a range, generated alone.
            Kind::Transferred => (first..(first + PART_RECORDS).min(self.entries()))
                .map(|i| self.record(kind, i, self.entry(i)))
                .collect(),
            Kind::Verified => (0..self.entries())
                .map(|i| (i, self.entry(i)))
                .filter(|(_, entry)| self.reported(kind, *entry))
                .skip(first)
                .take(PART_RECORDS)
                .map(|(i, entry)| self.record(kind, i, entry))
                .collect(),
        };
        let mut body = Map::new();
        body.insert("TaskExecutionId".into(), json!(self.exec_id()));
        body.insert(kind.member().into(), Value::Array(records));
        Value::Object(body).to_string().into_bytes()
    }

    /// The summary. AWS's summary schema is not public (the user guide lists only what it holds:
    /// account, locations, counts per kind, bytes, status, times, options and filters), so these
    /// field names are plausible, not AWS's.
    fn summary(&self) -> Value {
        let (mut transferred, mut verified, mut logical_bytes) = ([0_u64; 2], [0_u64; 2], 0);
        for entry in (0..self.entries()).map(|i| self.entry(i)) {
            let failed = self.failed(Kind::Transferred, entry);
            transferred[usize::from(failed)] += 1;
            if let (Entry::File(_), false) = (entry, failed) {
                logical_bytes += self.size(entry);
                verified[usize::from(self.failed(Kind::Verified, entry))] += 1;
            }
        }
        json!({
            "AccountId": self.account(),
            "TaskArn": self.task_arn,
            "TaskExecutionArn": self.execution_arn,
            "SourceLocationArn": self.source_location_arn,
            "DestinationLocationArn": self.destination_location_arn,
            "TaskMode": if self.enhanced { "ENHANCED" } else { "BASIC" },
            "Result": if self.error.is_some() { "ERROR" } else { "SUCCESS" },
            "ErrorCode": self.error.map(|(code, _)| code),
            "ErrorDetail": self.error.map(|(_, detail)| detail),
            "StartTime": timestamp(self.started_at),
            "EndTime": timestamp(self.ended_at),
            "TotalTimeMs": (self.ended_at - self.started_at).num_milliseconds(),
            "Transferred": { "Success": transferred[0], "Error": transferred[1] },
            "Verified": { "Success": verified[0], "Error": verified[1] },
            "Skipped": { "Success": 0, "Error": 0 },
            "Deleted": { "Success": 0, "Error": 0 },
            "LogicalBytes": logical_bytes,
            "PhysicalBytes": if self.enhanced { logical_bytes } else { logical_bytes * 3 / 5 },
            "ReportLevel": "ERRORS_ONLY",
            "ReportOverrides": { "Transferred": "SUCCESSES_AND_ERRORS", "Deleted": "SUCCESSES_AND_ERRORS" },
        })
    }

    /// The files reported on.
    fn reported_files(&self) -> i64 {
        self.files.clamp(0, self.max_files)
    }

    /// Lines before the kind filter: in Basic mode each directory of 50 files, then its files.
    fn entries(&self) -> usize {
        let files = self.reported_files();
        let directories = if self.enhanced { 0 } else { (files + 49) / 50 };
        (files + directories) as usize
    }

    fn entry(&self, i: usize) -> Entry {
        let i = i as i64;
        if self.enhanced {
            Entry::File(i)
        } else if i % 51 == 0 {
            Entry::Directory(i / 51)
        } else {
            Entry::File(i / 51 * 50 + i % 51 - 1)
        }
    }

    fn seed(&self) -> u64 {
        // FNV-1a: stable across runs and builds, unlike std's hasher.
        (self.execution_arn.bytes())
            .fold(0xcbf2_9ce4_8422_2325, |hash, b| (hash ^ b as u64).wrapping_mul(0x100_0000_01b3))
    }

    fn draw(&self, n: i64, salt: u64) -> u64 {
        mix(mix(self.seed(), salt), n as u64)
    }

    /// Whether `entry`'s record of `kind` failed: transfers only in a failed execution; a
    /// mismatch only for a file that was transferred.
    fn failed(&self, kind: Kind, entry: Entry) -> bool {
        let Entry::File(n) = entry else { return false };
        if self.error.is_none() {
            return false;
        }
        let transfer_failed = self.draw(n, 1) % 16 == 0 || mix(0x5eed, n as u64) % 64 == 0;
        match kind {
            Kind::Transferred => transfer_failed,
            Kind::Verified => !transfer_failed && self.draw(n, 2) % 64 == 0,
        }
    }

    /// Whether `entry` has a record of `kind` (the report levels of the task's config).
    fn reported(&self, kind: Kind, entry: Entry) -> bool {
        match kind {
            Kind::Transferred => true,
            Kind::Verified => self.failed(kind, entry),
        }
    }

    fn path(&self, entry: Entry) -> String {
        let path = match entry {
            Entry::Directory(d) => format!("dir-{d}"),
            Entry::File(n) => format!("dir-{}/file-{n}.dat", n / 50),
        };
        if self.enhanced {
            path
        } else {
            format!("/{path}")
        }
    }

    fn size(&self, entry: Entry) -> i64 {
        match entry {
            Entry::Directory(_) => 0,
            Entry::File(n) => {
                let average = (self.bytes / self.files.max(1)).max(2);
                average / 2 + (self.draw(n, 3) % average as u64) as i64
            }
        }
    }

    fn mtime(&self, entry: Entry) -> DateTime<Utc> {
        let (n, salt) = match entry {
            Entry::Directory(d) => (d, 4),
            Entry::File(n) => (n, 5),
        };
        let draw = self.draw(n, salt);
        self.started_at - Duration::seconds((draw % (90 * 86_400)) as i64 + 3_600)
            + Duration::nanoseconds((draw >> 32) as i64 % 1_000_000_000)
    }

    /// When line `i` was transferred: spread over the execution, in order.
    fn transferred_at(&self, i: usize) -> DateTime<Utc> {
        let span = (self.ended_at - self.started_at).num_nanoseconds().unwrap_or(i64::MAX).max(0) as i128;
        let offset = span * (i as i128 + 1) / (self.entries() as i128 + 2);
        self.started_at + Duration::nanoseconds(offset as i64)
    }

    fn checksum(&self, n: i64, side: &str) -> String {
        let digest = Sha256::digest(format!("{}:{n}:{side}", self.execution_arn));
        format!("SHA256:{digest:x}")
    }

    fn record(&self, kind: Kind, i: usize, entry: Entry) -> Value {
        let failed = self.failed(kind, entry);
        let transferred_at = self.transferred_at(i);
        let mut record = Map::new();
        record.insert("RelativePath".into(), json!(self.path(entry)));
        let metadata = self.metadata(entry);
        match kind {
            Kind::Transferred => {
                let (metadata_member, _) = self.metadata_members();
                record.insert(metadata_member.into(), metadata);
                record.insert("Overwrite".into(), json!("False"));
                if !failed && matches!(entry, Entry::File(_)) {
                    let version = format!("{:016x}{:016x}", self.draw(i as i64, 6), self.draw(i as i64, 7));
                    record.insert("DstS3VersionId".into(), json!(version));
                }
                record.insert("TransferTimestamp".into(), json!(timestamp(transferred_at)));
                let transfer_type =
                    if matches!(entry, Entry::Directory(_)) { "METADATA" } else { "CONTENT_AND_METADATA" };
                record.insert("TransferType".into(), json!(transfer_type));
                record.insert("TransferStatus".into(), json!(if failed { "FAILED" } else { "SUCCESS" }));
            }
            Kind::Verified => {
                let Entry::File(n) = entry else { unreachable!("only files are verified") };
                let (source_member, destination_member) = self.metadata_members();
                record.insert(source_member.into(), metadata.clone());
                record.insert("SrcChecksum".into(), json!(self.checksum(n, "src")));
                record.insert(destination_member.into(), metadata);
                let destination = if failed { "dst" } else { "src" };
                record.insert("DstChecksum".into(), json!(self.checksum(n, destination)));
                let verified_at = transferred_at + (self.ended_at - transferred_at) / 2;
                record.insert("VerifyTimestamp".into(), json!(timestamp(verified_at)));
                record.insert("VerifyStatus".into(), json!(if failed { "FAILED" } else { "SUCCESS" }));
            }
        }
        if failed {
            self.failure(kind, entry, &mut record);
        }
        Value::Object(record)
    }

    /// The source and destination metadata members of this mode's schema.
    fn metadata_members(&self) -> (&'static str, &'static str) {
        if self.enhanced {
            ("SourceMetadata", "DestinationMetadata")
        } else {
            ("SrcMetadata", "DstMetadata")
        }
    }

    fn metadata(&self, entry: Entry) -> Value {
        let mtime = self.mtime(entry);
        let id = match entry {
            Entry::Directory(d) => -1 - d,
            Entry::File(n) => n,
        };
        match (self.enhanced, entry) {
            (true, _) => json!({
                "Type": "Object",
                "ContentSize": self.size(entry),
                "LastModified": mtime.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "SystemMetadata": {
                    "ContentType": "binary/octet-stream",
                    "ETag": format!("\"{:016x}{:016x}\"", self.draw(id, 8), self.draw(id, 10)),
                    "ServerSideEncryption": "AES256",
                },
                "UserMetadata": {},
                "Tags": [],
            }),
            (false, Entry::Directory(_)) => json!({ "Type": "Directory", "Mtime": timestamp(mtime) }),
            (false, Entry::File(_)) => {
                json!({ "Type": "Regular", "ContentSize": self.size(entry), "Mtime": timestamp(mtime) })
            }
        }
    }

    fn failure(&self, kind: Kind, entry: Entry, record: &mut Map<String, Value>) {
        let Entry::File(n) = entry else { return };
        if self.enhanced {
            let (code, detail) = match kind {
                Kind::Transferred if n % 2 == 0 => (
                    "AccessDenied",
                    "User: arn:aws:sts::{account}:assumed-role/AwsSync-loc/AwsSync is not authorized to perform: kms:GenerateDataKey",
                ),
                Kind::Transferred => ("SlowDown", "Please reduce your request rate."),
                Kind::Verified => ("ChecksumMismatch", "The source and destination checksums differ."),
            };
            record.insert("ErrorCode".into(), json!(code));
            record.insert("ErrorDetail".into(), json!(detail.replace("{account}", self.account())));
        } else {
            let (reason, code) = match kind {
                Kind::Transferred => [
                    ("S3 Get Object Failed", 40974),
                    ("S3 Put Object Failed", 40975),
                    ("File modified during transfer", 40976),
                ][(self.draw(n, 9) % 3) as usize],
                Kind::Verified => ("Checksum mismatch between source and destination", 40981),
            };
            record.insert("FailureReason".into(), json!(reason));
            record.insert("FailureCode".into(), json!(code));
        }
    }
}

/// ISO-8601 UTC with nanoseconds, as the reports have them.
fn timestamp(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}

/// splitmix64's finaliser over two words.
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_add(0x9e37_79b9_7f4a_7c15).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::simulator::fleet::{seeded, Fleet};

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
    }

    fn fleet() -> Fleet {
        Fleet::seeded(t0(), std::time::Duration::from_secs(1), 0)
    }

    fn written(fleet: &Fleet, arn: &str, now: DateTime<Utc>) -> Option<Report> {
        fleet.written_report(fleet.execution(arn).unwrap(), now)
    }

    fn failed_report() -> Report {
        written(&fleet(), seeded::FAILED, t0()).expect("the failed execution's report is written")
    }

    fn records(report: &Report, object: &Object) -> Vec<Value> {
        let body: Value = serde_json::from_slice(&report.body(object)).expect("a JSON body");
        assert_eq!(body["TaskExecutionId"], report.exec_id(), "{}", object.key);
        let member = object.kind.unwrap().member();
        body[member].as_array().unwrap_or_else(|| panic!("{member} in {}", object.key)).clone()
    }

    #[test]
    fn every_key_parses_back_to_its_task_execution_kind_and_part() {
        let report = failed_report();
        let objects = report.objects();
        assert_eq!(report.bucket(), BUCKET);
        assert_eq!(report.task_id(), "task-0a1b2c3d4e5f60001");
        assert_eq!(report.exec_id(), "exec-0a1b2c3d4e5f60102");
        for object in &objects {
            let parsed = parse_key(&object.key).unwrap_or_else(|| panic!("{} parses", object.key));
            assert_eq!(
                parsed,
                ParsedKey {
                    task_id: report.task_id(),
                    exec_id: report.exec_id(),
                    kind: object.kind,
                    part: object.part
                }
            );
        }
        let first = &objects[1].key;
        assert!(
            first.starts_with("reports/Detailed-Reports/task-0a1b2c3d4e5f60001/exec-0a1b2c3d4e5f60102/exec-0a1b2c3d4e5f60102.files-transferred-v1-00001-"),
            "{first}"
        );
        assert_eq!(
            objects[0].key,
            "reports/Summary-Reports/task-0a1b2c3d4e5f60001/exec-0a1b2c3d4e5f60102/exec-0a1b2c3d4e5f60102.summary-v1.json"
        );
        for other in [
            "reports/Detailed-Reports/task-0a1b2c3d4e5f60001/exec-0a1b2c3d4e5f60102/exec-0a1b2c3d4e5f60102.files-skipped-v1-00001-0a123abc12d3b0e4f.json",
            "reports/Detailed-Reports/task-0a1b2c3d4e5f60001/exec-0a1b2c3d4e5f60102/exec-0a1b2c3d4e5f60101.files-verified-v1-00001-0a123abc12d3b0e4f.json",
            "reports/Detailed-Reports/task-0a1b2c3d4e5f60001/exec-0a1b2c3d4e5f60102/exec-0a1b2c3d4e5f60102.files-verified-v1-1-0a123abc12d3b0e4f.json",
            "other/Detailed-Reports/task-0a1b2c3d4e5f60001/exec-0a1b2c3d4e5f60102/exec-0a1b2c3d4e5f60102.files-verified-v1-00001-0a123abc12d3b0e4f.json",
        ] {
            assert_eq!(parse_key(other), None, "{other}");
        }
        assert_eq!(bucket_account(BUCKET), Some(fleet::ACCOUNT));
        assert_eq!(bucket_account(&bucket("222200000001")), Some("222200000001"));
        assert_eq!(bucket_account("example-datasync-reports-x"), None);
    }

    #[test]
    fn basic_records_have_the_documented_fields_and_the_failed_execution_has_failures() {
        let report = failed_report();
        let (mut transferred, mut failed, mut mismatched) = (0, 0, 0);
        for object in report.objects().iter().filter(|object| object.kind.is_some()) {
            for record in records(&report, object) {
                let path = record["RelativePath"].as_str().unwrap();
                assert!(path.starts_with("/dir-"), "{record}");
                assert!(record["SrcMetadata"]["Mtime"].as_str().unwrap().ends_with('Z'), "{record}");
                let directory = record["SrcMetadata"]["Type"] == "Directory";
                if !directory {
                    assert_eq!(record["SrcMetadata"]["Type"], "Regular");
                    assert!(record["SrcMetadata"]["ContentSize"].as_i64().unwrap() > 0);
                    let n: i64 =
                        path.rsplit("file-").next().unwrap().trim_end_matches(".dat").parse().unwrap();
                    assert_eq!(path, format!("/dir-{}/file-{n}.dat", n / 50));
                }
                match object.kind.unwrap() {
                    Kind::Transferred => {
                        transferred += 1;
                        assert!(record["TransferTimestamp"].as_str().unwrap().ends_with('Z'));
                        let status = record["TransferStatus"].as_str().unwrap();
                        if status == "FAILED" {
                            failed += 1;
                            assert!(!directory);
                            assert!(
                                record["FailureReason"].as_str().is_some_and(|r| !r.is_empty()),
                                "{record}"
                            );
                            assert!(record["FailureCode"].is_u64(), "{record}");
                        } else {
                            assert_eq!(status, "SUCCESS");
                            assert!(record.get("FailureReason").is_none());
                        }
                    }
                    Kind::Verified => {
                        mismatched += 1;
                        assert_eq!(record["VerifyStatus"], "FAILED");
                        let (src, dst) = (
                            record["SrcChecksum"].as_str().unwrap(),
                            record["DstChecksum"].as_str().unwrap(),
                        );
                        assert!(src.starts_with("SHA256:") && src.len() == 7 + 64, "{src}");
                        assert!(dst.starts_with("SHA256:") && src != dst, "{record}");
                        assert_eq!(record["DstMetadata"]["Type"], "Regular");
                        assert!(record["VerifyTimestamp"].is_string());
                        assert!(record["FailureReason"].is_string() && record["FailureCode"].is_u64());
                    }
                }
            }
        }
        assert_eq!(transferred, 5_000 + 100, "every reported file and its directories");
        assert!((200..=600).contains(&failed), "a few hundred failed transfers: {failed}");
        assert!((20..=200).contains(&mismatched), "some verify mismatches: {mismatched}");

        let summary: Value = serde_json::from_slice(&report.body(&report.objects()[0])).unwrap();
        assert_eq!(summary["Transferred"]["Error"], failed);
        assert_eq!(summary["Verified"]["Error"], mismatched);
        assert_eq!(summary["Result"], "ERROR");
        assert_eq!(summary["AccountId"], fleet::ACCOUNT);
    }

    #[test]
    fn parts_are_bounded_and_numbered_and_bodies_the_same_every_time() {
        let report = failed_report();
        let objects = report.objects();
        for kind in Kind::ALL {
            let parts: Vec<&Object> = objects.iter().filter(|object| object.kind == Some(kind)).collect();
            assert_eq!(
                parts.iter().map(|part| part.part).collect::<Vec<_>>(),
                (1..=parts.len()).collect::<Vec<_>>()
            );
            let counts: Vec<usize> = parts.iter().map(|part| records(&report, part).len()).collect();
            assert!(counts.iter().all(|&n| n <= PART_RECORDS), "{counts:?}");
            assert!(counts[..counts.len() - 1].iter().all(|&n| n == PART_RECORDS), "{counts:?}");
            assert_eq!(counts.iter().sum::<usize>(), report.records(kind));
        }
        assert!(objects.iter().filter(|object| object.kind == Some(Kind::Transferred)).count() >= 5);

        let again = written(&fleet(), seeded::FAILED, t0() + Duration::days(3)).unwrap();
        assert_eq!(again.objects(), objects);
        for object in &objects {
            assert_eq!(report.body(object), again.body(object), "{}", object.key);
        }
        let other = written(&fleet(), seeded::SUCCEEDED_BASIC, t0()).unwrap();
        assert_ne!(other.body(&other.objects()[1]), report.body(&objects[1]));
        assert_eq!(other.records(Kind::Verified), 0, "a successful execution has no mismatch");
        assert_eq!(
            records(&other, &other.objects().into_iter().find(|o| o.kind == Some(Kind::Verified)).unwrap()),
            Vec::<Value>::new()
        );
    }

    #[test]
    fn a_report_exists_once_report_result_is_success_and_never_without_a_config() {
        let fleet = fleet();
        for arn in [
            seeded::TRANSFERRING,
            seeded::QUEUED,
            seeded::REPORT_PENDING,
            seeded::SUCCEEDED_ENHANCED,
            seeded::CANCELLED,
        ] {
            assert!(written(&fleet, arn, t0()).is_none(), "{arn}");
        }
        let execution = fleet.execution(seeded::FAILED).unwrap();
        let report = written(&fleet, seeded::FAILED, t0()).unwrap();
        let status = |now| fleet.describe(execution, now)["ReportResult"]["Status"].clone();
        assert_eq!(status(report.written_at), "SUCCESS");
        assert_eq!(status(report.written_at - Duration::milliseconds(1)), "PENDING");
        assert!(fleet.written_report(execution, report.written_at - Duration::milliseconds(1)).is_none());
        assert_eq!(report.written_at - report.ended_at, Duration::seconds(5));
    }

    #[test]
    fn enhanced_records_use_the_enhanced_schema() {
        let mut fleet = fleet();
        let task = "arn:aws:datasync:eu-west-1:111122223333:task/task-0a1b2c3d4e5f60002";
        let arn = fleet.start(task, t0()).unwrap();
        let mut report = written(&fleet, &arn, t0() + Duration::days(1)).expect("written a day later");
        report.error = Some(("ErrorCodeS3AccessDenied", "denied"));
        let objects = report.objects();
        let (mut failed, mut mismatched) = (0, 0);
        for object in objects.iter().filter(|object| object.kind.is_some()) {
            for record in records(&report, object) {
                let path = record["RelativePath"].as_str().unwrap();
                assert!(path.starts_with("dir-") && path.ends_with(".dat"), "{record}");
                assert_eq!(record["SourceMetadata"]["Type"], "Object");
                assert!(record["SourceMetadata"]["ContentSize"].is_i64());
                let modified = record["SourceMetadata"]["LastModified"].as_str().unwrap();
                assert!(DateTime::parse_from_rfc3339(modified).is_ok(), "{modified}");
                assert!(record.get("SrcMetadata").is_none() && record.get("FailureCode").is_none());
                if record["TransferStatus"] == "FAILED" || record["VerifyStatus"] == "FAILED" {
                    assert!(record["ErrorCode"].is_string() && record["ErrorDetail"].is_string(), "{record}");
                    if object.kind == Some(Kind::Verified) {
                        mismatched += 1
                    } else {
                        failed += 1
                    }
                }
            }
        }
        assert_eq!(report.records(Kind::Transferred), 5_000, "no directory records in Enhanced mode");
        assert!(failed > 0 && mismatched > 0);
    }
}
