//! Task execution ARNs, validated against DataSync's own pattern before any upstream call.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

/// DataSync's limit on the length of an ARN.
const MAX_ARN_LENGTH: usize = 128;
const PARTITIONS: [&str; 5] = ["aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b"];

/// A task execution ARN that matches DataSync's pattern:
/// `arn:(aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b):datasync:[a-z-0-9]*:[0-9]{12}:task/task-[0-9a-f]{17}/execution/exec-[0-9a-f]{17}`.
///
/// Its text is shared, not copied ([`ExecutionArn::shared`]): the execution cache's key and the
/// cached description's `task_execution_arn` are this very string. The parts' offsets fit in a
/// byte (at most 128 characters).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ExecutionArn {
    arn: Arc<str>,
    region: Range<u8>,
    account_id: Range<u8>,
    task_end: u8,
    execution_start: u8,
}

/// Why a string is not a task execution ARN; the message tells the caller what to fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{arn}` is not a DataSync {kind} ARN: {reason}; expected {expected} with a 12-digit account and 17-hex-digit IDs")]
pub struct InvalidArn {
    arn: String,
    kind: &'static str,
    reason: &'static str,
    expected: &'static str,
}

const EXECUTION_FORM: &str = "arn:aws:datasync:REGION:ACCOUNT:task/task-ID/execution/exec-ID";
const TASK_FORM: &str = "arn:aws:datasync:REGION:ACCOUNT:task/task-ID";

/// Checks a task ARN against DataSync's pattern
/// `arn:(aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b):datasync:[a-z-0-9]*:[0-9]{12}:task/task-[0-9a-f]{17}`;
/// its region.
pub fn validate_task_arn(input: &str) -> Result<&str, InvalidArn> {
    let invalid = |reason| InvalidArn { arn: shorten(input), kind: "task", reason, expected: TASK_FORM };
    let (_, region, _, resource) = split_prefix(input).map_err(invalid)?;
    if !is_id(resource, "task/task-") {
        return Err(invalid("the resource must be task/task-ID with a 17-hex-digit ID"));
    }
    Ok(region)
}

/// Partition, region, account and resource of a DataSync ARN, each checked.
fn split_prefix(input: &str) -> Result<(&str, &str, &str, &str), &'static str> {
    if input.len() > MAX_ARN_LENGTH {
        return Err("longer than 128 characters");
    }
    let mut parts = input.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("datasync"), Some(region), Some(account), Some(resource)) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("it must start with arn:PARTITION:datasync: and have six ':'-separated parts");
    };
    if !PARTITIONS.contains(&partition) {
        return Err("unknown partition");
    }
    if !is_region(region) {
        return Err("the region must look like us-east-1");
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the account must be 12 digits");
    }
    Ok((partition, region, account, resource))
}

impl ExecutionArn {
    pub fn parse(input: &str) -> Result<Self, InvalidArn> {
        let invalid = |reason| InvalidArn {
            arn: shorten(input),
            kind: "task execution",
            reason,
            expected: EXECUTION_FORM,
        };
        let (partition, region, account, resource) = split_prefix(input).map_err(invalid)?;
        let Some((task, execution)) = resource.split_once("/execution/") else {
            return Err(invalid("the resource must be task/task-ID/execution/exec-ID"));
        };
        if !is_id(task, "task/task-") || !is_id(execution, "exec-") {
            return Err(invalid("task and execution IDs must be 17 lowercase hex digits"));
        }

        // At most MAX_ARN_LENGTH (128) bytes, checked above: every offset fits in a u8.
        let offset = |at: usize| at as u8;
        let region_start = "arn:".len() + partition.len() + ":datasync:".len();
        let account_start = region_start + region.len() + 1;
        let task_end = account_start + account.len() + 1 + task.len();
        Ok(ExecutionArn {
            arn: input.into(),
            region: offset(region_start)..offset(region_start + region.len()),
            account_id: offset(account_start)..offset(account_start + account.len()),
            task_end: offset(task_end),
            execution_start: offset(task_end + "/execution/".len()),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.arn
    }

    /// The text itself, shared rather than copied.
    pub fn shared(&self) -> Arc<str> {
        self.arn.clone()
    }

    /// The ARN of the task this execution belongs to.
    pub fn task_arn(&self) -> &str {
        &self.arn[..usize::from(self.task_end)]
    }

    /// The `exec-…` part.
    pub fn execution_id(&self) -> &str {
        &self.arn[usize::from(self.execution_start)..]
    }

    pub fn region(&self) -> &str {
        self.part(&self.region)
    }

    pub fn account_id(&self) -> &str {
        self.part(&self.account_id)
    }

    fn part(&self, range: &Range<u8>) -> &str {
        &self.arn[usize::from(range.start)..usize::from(range.end)]
    }
}

impl fmt::Display for ExecutionArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.arn)
    }
}

/// The region part of any DataSync ARN (task, execution, location), unchecked.
pub fn region_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(3)
}

/// An AWS region name: lowercase words and a number, e.g. `us-east-1`, `us-gov-west-1`,
/// `us-isob-east-1`. Stricter than DataSync's `[a-z-0-9]*`, because each region the gateway
/// is asked about gets an SDK client of its own.
pub fn is_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    let Some((number, words)) = parts.split_last() else { return false };
    region.len() <= 32
        && words.len() >= 2
        && words
            .iter()
            .all(|word| (2..=10).contains(&word.len()) && word.bytes().all(|b| b.is_ascii_lowercase()))
        && (1..=2).contains(&number.len())
        && number.bytes().all(|b| b.is_ascii_digit())
}

fn is_id(part: &str, prefix: &str) -> bool {
    part.strip_prefix(prefix).is_some_and(|id| {
        id.len() == 17 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Error messages quote the input; a megabyte of it would only get in the way.
fn shorten(input: &str) -> String {
    const SHOWN: usize = 160;
    match input.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{}…", &input[..end]),
        None => input.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "arn:aws:datasync:us-east-1:111222333444:task/task-0208075f79cedf4a2/execution/exec-08ef1e88ec491019b";

    #[test]
    fn parses_the_parts_of_a_valid_arn() {
        let arn = ExecutionArn::parse(GOOD).unwrap();
        assert_eq!(arn.task_arn(), "arn:aws:datasync:us-east-1:111222333444:task/task-0208075f79cedf4a2");
        assert_eq!(arn.execution_id(), "exec-08ef1e88ec491019b");
        assert_eq!(arn.region(), "us-east-1");
        assert_eq!(arn.account_id(), "111222333444");
        assert_eq!(arn.as_str(), GOOD);
    }

    #[test]
    fn accepts_every_partition() {
        for partition in PARTITIONS {
            let arn = GOOD.replacen("arn:aws:", &format!("arn:{partition}:"), 1);
            let parsed = ExecutionArn::parse(&arn).unwrap_or_else(|error| panic!("{arn}: {error}"));
            assert_eq!((parsed.region(), parsed.account_id()), ("us-east-1", "111222333444"));
            assert_eq!(parsed.execution_id(), "exec-08ef1e88ec491019b");
        }
    }

    #[test]
    fn rejects_what_datasync_rejects() {
        let bad = [
            "",
            "exec-08ef1e88ec491019b",
            "arn:aws:s3:::bucket",
            "arn:aws:datasync:us-east-1:111222333444:task/task-0208075f79cedf4a2",
            "arn:azure:datasync:us-east-1:111222333444:task/task-0208075f79cedf4a2/execution/exec-08ef1e88ec491019b",
            "arn:aws:datasync:US-EAST-1:111222333444:task/task-0208075f79cedf4a2/execution/exec-08ef1e88ec491019b",
            "arn:aws:datasync:us-east-1:11122233344:task/task-0208075f79cedf4a2/execution/exec-08ef1e88ec491019b",
            "arn:aws:datasync:us-east-1:111222333444:task/task-0208075F79CEDF4A2/execution/exec-08ef1e88ec491019b",
            "arn:aws:datasync:us-east-1:111222333444:task/task-0208075f79cedf4a2/execution/exec-08ef1e88ec491019",
            "arn:aws:datasync:us-east-1:111222333444:task/task-0208075f79cedf4a2/execution/exec-08ef1e88ec491019b/x",
            "arn:aws:datasync:us-east-1:111222333444:task/task-0208075f79cedf4a2/execution/exec-08ef1e88ec491019b'; DROP TABLE x;--",
        ];
        for arn in bad {
            assert!(ExecutionArn::parse(arn).is_err(), "accepted {arn:?}");
        }
    }

    #[test]
    fn regions_must_look_like_aws_regions() {
        for region in
            ["us-east-1", "eu-central-2", "us-gov-west-1", "cn-north-1", "us-isob-east-1", "ap-southeast-5"]
        {
            assert!(is_region(region), "{region}");
        }
        for region in ["", "us", "us-east", "us-east-123", "US-EAST-1", "a-b-1", "us--1", "us-east-1-"] {
            assert!(!is_region(region), "{region}");
        }
    }

    #[test]
    fn task_arns_are_checked_on_their_own() {
        assert!(
            validate_task_arn("arn:aws:datasync:us-east-1:111222333444:task/task-0208075f79cedf4a2").is_ok()
        );
        assert!(validate_task_arn(GOOD).is_err());
        assert!(
            validate_task_arn("arn:aws:datasync:us-east-1:111222333444:task/task-0208075f79cedf4a").is_err()
        );
        assert!(validate_task_arn("x' OR '1'='1").is_err());
    }

    #[test]
    fn error_messages_quote_at_most_a_short_prefix() {
        let huge = "x".repeat(1_000_000);
        let message = ExecutionArn::parse(&huge).unwrap_err().to_string();
        assert!(message.len() < 600, "{}", message.len());
    }
}
