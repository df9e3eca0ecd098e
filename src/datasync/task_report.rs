//! DataSync's task reports as it writes them to S3 (AWS's "task reports" user guide): which
//! object is which, and the records of one detailed report part, read one at a time.
//!
//! A detailed part is `{"TaskExecutionId": "exec-…", "<List>": [record, …]}`, the list named
//! after its kind (`Transferred`, `Verified`, `Deleted`, `Skipped`). Basic and Enhanced mode
//! write different records for the same facts (`SrcMetadata`/`SourceMetadata`, `Mtime`/
//! `LastModified`, `FailureReason` and a numeric `FailureCode`/`ErrorCode` and `ErrorDetail`, a
//! leading `/` or none); this module is where they become one [`ReportRecord`]. Parts are read
//! from a `std::io::Read`, element by element, so that no part is ever held whole: DataSync
//! caps a part at 5 MB, but an execution of tens of millions of files has thousands of them.

use std::cell::RefCell;
use std::io::Read;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::model::{ReportKind, ReportRecord};

/// What a detailed report part's key says: `….files-<kind>-v<version>-<part>-<hex>.json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportPart {
    /// `exec-` and 17 hex digits.
    pub execution_id: String,
    pub kind: ReportKind,
    pub version: u32,
    /// From 1.
    pub part: u32,
}

impl ReportPart {
    /// The part a key names, if it names one; other objects of a report folder (its summary,
    /// kinds this gateway does not know) are `None`.
    pub fn parse(key: &str) -> Option<Self> {
        let name = key.rsplit('/').next()?.strip_suffix(".json")?;
        let (execution_id, rest) = name.split_once(".files-")?;
        let mut fields = rest.split('-');
        let kind = ReportKind::from_key(fields.next()?)?;
        let version = fields.next()?.strip_prefix('v')?.parse().ok()?;
        let part = fields.next().filter(|part| part.len() == 5)?.parse().ok()?;
        let hex = fields.next()?;
        let hex_only = |text: &str, length: usize| {
            text.len() == length && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        let id_ok = execution_id.strip_prefix("exec-").is_some_and(|id| hex_only(id, 17));
        (id_ok && fields.next().is_none() && !hex.is_empty() && hex_only(hex, hex.len()))
            .then(|| ReportPart { execution_id: execution_id.to_owned(), kind, version, part })
    }
}

/// What reading a part found besides its records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartRead {
    /// The part's `TaskExecutionId`, if it has one.
    pub execution_id: Option<String>,
    pub records: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum PartError {
    /// Not a report part: the JSON is broken or has the wrong shape, at this place.
    #[error("not a task report part: {message} (line {line}, column {column})")]
    Malformed { message: String, line: usize, column: usize },
    /// The part could not be read (the connection to S3 broke).
    #[error("the part could not be read: {0}")]
    Io(String),
    /// `on_record` refused a record; reading stopped there.
    #[error("{0}")]
    Stopped(String),
}

/// Reads the records of `kind` from one detailed part, handing each to `on_record` as it is
/// read; any other list in the part is skipped. `on_record` stops the reading by returning an
/// error, which is returned as [`PartError::Stopped`].
pub fn read_part(
    reader: impl Read,
    kind: ReportKind,
    on_record: &mut dyn FnMut(ReportRecord) -> Result<(), String>,
) -> Result<PartRead, PartError> {
    let stopped = RefCell::new(None);
    let mut read = PartRead { execution_id: None, records: 0 };
    let mut json = serde_json::Deserializer::from_reader(reader);
    let part = Part { list: kind.list(), on_record, stopped: &stopped, read: &mut read };
    let parsed = part.deserialize(&mut json).and_then(|()| json.end());
    match parsed {
        Ok(()) => Ok(read),
        Err(_) if stopped.borrow().is_some() => Err(PartError::Stopped(stopped.take().unwrap_or_default())),
        Err(error) if error.is_io() => Err(PartError::Io(error.to_string())),
        Err(error) => Err(PartError::Malformed {
            message: error.to_string(),
            line: error.line(),
            column: error.column(),
        }),
    }
}

/// The part's top-level object: its id, the list wanted, everything else skipped unread.
struct Part<'a, 'f> {
    list: &'static str,
    on_record: &'a mut dyn FnMut(ReportRecord) -> Result<(), String>,
    stopped: &'a RefCell<Option<String>>,
    read: &'f mut PartRead,
}

impl<'de> DeserializeSeed<'de> for Part<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Part<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a task report object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "TaskExecutionId" {
                self.read.execution_id = Some(map.next_value()?);
            } else if key == self.list {
                let records = Records { on_record: &mut *self.on_record, stopped: self.stopped, count: 0 };
                self.read.records += map.next_value_seed(records)?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// A part's list, element by element; the number read.
struct Records<'a> {
    on_record: &'a mut dyn FnMut(ReportRecord) -> Result<(), String>,
    stopped: &'a RefCell<Option<String>>,
    count: u64,
}

impl<'de> DeserializeSeed<'de> for Records<'_> {
    type Value = u64;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<u64, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Records<'_> {
    type Value = u64;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of task report records")
    }

    fn visit_seq<S: SeqAccess<'de>>(mut self, mut records: S) -> Result<u64, S::Error> {
        while let Some(record) = records.next_element::<WireRecord>()? {
            self.count += 1;
            if let Err(why) = (self.on_record)(record.into()) {
                *self.stopped.borrow_mut() = Some(why.clone());
                return Err(de::Error::custom(why));
            }
        }
        Ok(self.count)
    }
}

/// A record as either mode writes it. The status, time and reason fields are named after the
/// kind (`TransferStatus`, `VerifyTimestamp`, …); those of `Deleted` and `Skipped` have no
/// public example, so their likely names are taken as aliases too.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireRecord {
    relative_path: String,
    #[serde(alias = "SourceMetadata")]
    src_metadata: Option<WireMetadata>,
    #[serde(alias = "DestinationMetadata")]
    dst_metadata: Option<WireMetadata>,
    src_checksum: Option<String>,
    dst_checksum: Option<String>,
    #[serde(alias = "VerifyTimestamp", alias = "DeleteTimestamp", alias = "SkipTimestamp")]
    transfer_timestamp: Option<String>,
    #[serde(alias = "VerifyStatus", alias = "DeleteStatus", alias = "SkipStatus")]
    transfer_status: Option<String>,
    error_code: Option<String>,
    /// A number in the examples; text is taken as it is.
    failure_code: Option<serde_json::Value>,
    #[serde(alias = "FailureReason", alias = "SkipReason")]
    error_detail: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireMetadata {
    r#type: Option<String>,
    content_size: Option<i64>,
    #[serde(alias = "LastModified")]
    mtime: Option<String>,
}

impl From<WireRecord> for ReportRecord {
    fn from(wire: WireRecord) -> Self {
        let relative_path = match wire.relative_path.strip_prefix('/') {
            Some(rest) => rest.to_owned(),
            None => wire.relative_path,
        };
        let failure_code = wire.failure_code.map(|code| match code {
            serde_json::Value::String(text) => text,
            other => other.to_string(),
        });
        let (source, destination) = (wire.src_metadata, wire.dst_metadata);
        ReportRecord {
            relative_path,
            status: wire.transfer_status.unwrap_or_else(|| "UNKNOWN".to_owned()),
            file_type: source
                .as_ref()
                .and_then(|m| m.r#type.clone())
                .or_else(|| destination.as_ref()?.r#type.clone()),
            source_size: source.as_ref().and_then(|m| m.content_size),
            destination_size: destination.as_ref().and_then(|m| m.content_size),
            source_mtime: source.and_then(|m| m.mtime),
            destination_mtime: destination.and_then(|m| m.mtime),
            source_checksum: wire.src_checksum,
            destination_checksum: wire.dst_checksum,
            timestamp: wire.transfer_timestamp,
            error_code: wire.error_code.or(failure_code),
            error_detail: wire.error_detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every record of `kind` in `json`, or the error.
    fn records(json: &str, kind: ReportKind) -> Result<(PartRead, Vec<ReportRecord>), PartError> {
        let mut found = Vec::new();
        let read = read_part(json.as_bytes(), kind, &mut |record| {
            found.push(record);
            Ok(())
        })?;
        Ok((read, found))
    }

    // The examples below are AWS's own, from the task reports user guide.

    #[test]
    fn basic_mode_transfers_and_failures() {
        let json = r#"{ "TaskExecutionId": "exec-abcdefgh12345678",
          "Transferred": [
            { "RelativePath": "/object1.txt",
              "SrcMetadata": { "Type": "Regular", "ContentSize": 6, "Mtime": "2022-01-07T16:59:26.136114671Z",
                               "Atime": "2022-01-07T16:59:26.136114671Z", "Uid": 0, "Gid": 0, "Mode": "0644" },
              "Overwrite": "False", "DstS3VersionId": "jtqRtX3jN4J2G8k0sFSGYK1f35KqpAVP",
              "TransferTimestamp": "2022-01-07T16:59:45.747270957Z", "TransferType": "CONTENT_AND_METADATA",
              "TransferStatus": "SUCCESS" },
            { "RelativePath": "/object2.txt",
              "SrcMetadata": { "Type": "Regular", "ContentSize": 6, "Mtime": "2022-01-07T16:59:26.136114671Z" },
              "Overwrite": "False", "TransferTimestamp": "2022-01-07T16:59:45.747270957Z",
              "TransferType": "CONTENT_AND_METADATA", "TransferStatus": "FAILED",
              "FailureReason": "S3 Get Object Failed", "FailureCode": 40974 }
          ] }"#;
        let (read, found) = records(json, ReportKind::Transferred).unwrap();
        assert_eq!(read, PartRead { execution_id: Some("exec-abcdefgh12345678".into()), records: 2 });
        assert_eq!(
            found[0],
            ReportRecord {
                relative_path: "object1.txt".into(),
                status: "SUCCESS".into(),
                file_type: Some("Regular".into()),
                source_size: Some(6),
                source_mtime: Some("2022-01-07T16:59:26.136114671Z".into()),
                timestamp: Some("2022-01-07T16:59:45.747270957Z".into()),
                ..ReportRecord::default()
            }
        );
        assert!(!found[0].is_error());
        assert_eq!(found[1].status, "FAILED");
        assert_eq!(found[1].error_code.as_deref(), Some("40974"));
        assert_eq!(found[1].error_detail.as_deref(), Some("S3 Get Object Failed"));
        assert!(found[1].is_error());
    }

    #[test]
    fn enhanced_mode_reads_into_the_same_record() {
        let json = r#"{ "TaskExecutionId": "exec-abcdefgh12345678",
          "Transferred": [{ "RelativePath": "object1.txt",
            "SourceMetadata": { "Type": "Object", "ContentSize": 6, "LastModified": "2024-10-04T14:40:55Z",
              "SystemMetadata": { "ContentType": "binary/octet-stream", "ETag": "\"9b2d7e1f\"", "ServerSideEncryption": "AES256" },
              "UserMetadata": {}, "Tags": [] },
            "Overwrite": "False", "DstS3VersionId": "v1", "TransferTimestamp": "2024-10-04T14:48:39.748862183Z",
            "TransferType": "CONTENT_AND_METADATA", "TransferStatus": "FAILED",
            "ErrorCode": "AccessDenied", "ErrorDetail": "User is not authorized to perform: kms:GenerateDataKey" }] }"#;
        let (_, found) = records(json, ReportKind::Transferred).unwrap();
        assert_eq!(found[0].relative_path, "object1.txt");
        assert_eq!(found[0].file_type.as_deref(), Some("Object"));
        assert_eq!(found[0].source_mtime.as_deref(), Some("2024-10-04T14:40:55Z"));
        assert_eq!(found[0].error_code.as_deref(), Some("AccessDenied"));
        assert!(found[0].error_detail.as_deref().unwrap().contains("kms:GenerateDataKey"));
    }

    #[test]
    fn verified_records_carry_both_sides_and_their_checksums() {
        let json = r#"{ "TaskExecutionId": "exec-0a12a34ab112233ab",
          "Verified": [{ "RelativePath": "/testfile1.jpg",
            "SrcMetadata": { "Type": "Regular", "ContentSize": 15364, "Mtime": "2023-10-16T21:41:34.000000000Z" },
            "SrcChecksum": "SHA256:d10d148d9839d2b4cd1219992d4a31b1eb456a64e5e7ce8dd3ac1fbade8a5852",
            "DstMetadata": { "Type": "Regular", "ContentSize": 15360, "Mtime": "2023-10-16T21:41:34.000000000Z" },
            "DstChecksum": "SHA256:0000", "VerifyTimestamp": "2023-10-16T21:48:23.213451576Z",
            "VerifyStatus": "FAILED" }] }"#;
        let (_, found) = records(json, ReportKind::Verified).unwrap();
        let record = &found[0];
        assert_eq!((record.source_size, record.destination_size), (Some(15364), Some(15360)));
        assert!(record.source_checksum.as_deref().unwrap().starts_with("SHA256:d10d"));
        assert_eq!(record.timestamp.as_deref(), Some("2023-10-16T21:48:23.213451576Z"));
        assert!(record.is_error());
        // Asked for another kind, the part's list is skipped unread.
        let (read, found) = records(json, ReportKind::Transferred).unwrap();
        assert_eq!((read.records, found.len()), (0, 0));
    }

    #[test]
    fn a_broken_part_says_where_and_a_refused_record_stops_the_reading() {
        let truncated = r#"{ "TaskExecutionId": "exec-1", "Transferred": [ { "RelativePath": "/a", "TransferStatus": "SUCCESS" },"#;
        match records(truncated, ReportKind::Transferred) {
            Err(PartError::Malformed { line: 1, column, .. }) => assert!(column > 0),
            other => panic!("{other:?}"),
        }
        let not_a_record = r#"{ "Transferred": [ 42 ] }"#;
        assert!(matches!(records(not_a_record, ReportKind::Transferred), Err(PartError::Malformed { .. })));
        let trailing = r#"{ "Transferred": [] } { }"#;
        assert!(matches!(records(trailing, ReportKind::Transferred), Err(PartError::Malformed { .. })));

        let json = r#"{ "Transferred": [ { "RelativePath": "/a" }, { "RelativePath": "/b" }, { "RelativePath": "/c" } ] }"#;
        let mut seen = 0;
        let stopped = read_part(json.as_bytes(), ReportKind::Transferred, &mut |_| {
            seen += 1;
            if seen == 2 {
                Err("the database went away".into())
            } else {
                Ok(())
            }
        });
        assert!(matches!(stopped, Err(PartError::Stopped(why)) if why == "the database went away"));
        assert_eq!(seen, 2, "nothing is read past the refusal");
    }

    /// A reader that hands out a few bytes at a time, as a network stream does.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(7).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_large_part_is_read_record_by_record_from_a_trickling_stream() {
        let records: Vec<String> = (0..50_000)
            .map(|n| format!(r#"{{"RelativePath":"/dir-{}/file-{n}.dat","SrcMetadata":{{"Type":"Regular","ContentSize":{n}}},"TransferStatus":"{}"}}"#, n / 50, if n % 97 == 0 { "FAILED" } else { "SUCCESS" }))
            .collect();
        let json = format!(
            r#"{{"TaskExecutionId":"exec-0a1b2c3d4e5f60102","Transferred":[{}]}}"#,
            records.join(",")
        );
        let (mut count, mut failed, mut last) = (0u64, 0u64, String::new());
        let read = read_part(Trickle(json.as_bytes()), ReportKind::Transferred, &mut |record| {
            count += 1;
            failed += u64::from(record.is_error());
            last = record.relative_path;
            Ok(())
        })
        .unwrap();
        assert_eq!((read.records, count), (50_000, 50_000));
        assert_eq!(failed, (0..50_000).filter(|n| n % 97 == 0).count() as u64);
        assert_eq!(last, "dir-999/file-49999.dat");
    }

    #[test]
    fn part_keys_are_told_from_other_objects() {
        let key = "reports/Detailed-Reports/task-0a1b2c3d4e5f60001/exec-0a1b2c3d4e5f60102/exec-0a1b2c3d4e5f60102.files-verified-v1-00003-0a123abc12d3b0e4f.json";
        assert_eq!(
            ReportPart::parse(key),
            Some(ReportPart {
                execution_id: "exec-0a1b2c3d4e5f60102".into(),
                kind: ReportKind::Verified,
                version: 1,
                part: 3,
            })
        );
        for other in [
            "reports/Summary-Reports/task-0a1b2c3d4e5f60001/exec-0a1b2c3d4e5f60102/exec-0a1b2c3d4e5f60102.summary-v1.json",
            "Detailed-Reports/t/e/exec-0a1b2c3d4e5f60102.files-renamed-v1-00001-0a1.json",
            "Detailed-Reports/t/e/exec-0a1b2c3d4e5f60102.files-verified-v1-1-0a1.json",
            "Detailed-Reports/t/e/exec-xyz.files-verified-v1-00001-0a1.json",
            "Detailed-Reports/t/e/exec-0a1b2c3d4e5f60102.files-verified-v1-00001-0a1.json.tmp",
        ] {
            assert_eq!(ReportPart::parse(other), None, "{other}");
        }
    }
}
