//! The identifiers of DataSync's resources, parsed once where text enters the gateway (GraphQL
//! arguments and filters, EventBridge, the SDK's output, rows read back from PostgreSQL, flags)
//! and carried typed from there. Each is checked against DataSync's own pattern, so a value of
//! one of these types never needs checking again, and its parts (region, account, task) are
//! slices of the one shared text rather than found again by splitting.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;
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
#[derive(Clone, Debug)]
pub struct ExecutionArn {
    arn: Arc<str>,
    parts: Parts,
    task_end: u8,
    execution_start: u8,
}

/// A task ARN: `arn:PARTITION:datasync:REGION:ACCOUNT:task/task-[0-9a-f]{17}`.
#[derive(Clone, Debug)]
pub struct TaskArn {
    arn: Arc<str>,
    parts: Parts,
}

/// A location ARN: `arn:PARTITION:datasync:REGION:ACCOUNT:location/loc-[0-9a-f]{17}`.
#[derive(Clone, Debug)]
pub struct LocationArn {
    arn: Arc<str>,
    parts: Parts,
}

/// Where an ARN's region and account lie in its text.
#[derive(Clone, Debug)]
struct Parts {
    region: Range<u8>,
    account_id: Range<u8>,
}

/// An AWS region name: lowercase words and a number, e.g. `us-east-1`, `us-gov-west-1`,
/// `us-isob-east-1`. Stricter than DataSync's `[a-z-0-9]*`, because each region the gateway
/// is asked about gets an SDK client of its own.
#[derive(Clone, Debug)]
pub struct Region(Arc<str>);

/// A 12-digit AWS account id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId([u8; 12]);

/// Why a string is not the identifier asked for; the message tells the caller what to fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a DataSync {kind}: {reason}; expected {expected}")]
pub struct InvalidId {
    input: String,
    kind: &'static str,
    reason: &'static str,
    expected: &'static str,
}

const EXECUTION_FORM: &str =
    "arn:aws:datasync:REGION:ACCOUNT:task/task-ID/execution/exec-ID with a 12-digit account and 17-hex-digit IDs";
const TASK_FORM: &str =
    "arn:aws:datasync:REGION:ACCOUNT:task/task-ID with a 12-digit account and a 17-hex-digit ID";
const LOCATION_FORM: &str =
    "arn:aws:datasync:REGION:ACCOUNT:location/loc-ID with a 12-digit account and a 17-hex-digit ID";

impl InvalidId {
    fn new(input: &str, kind: &'static str, expected: &'static str, reason: &'static str) -> Self {
        InvalidId { input: shorten(input), kind, reason, expected }
    }
}

/// Partition, region, account and resource of a DataSync ARN, each checked; where the region
/// and account lie.
fn split_prefix(input: &str) -> Result<(Parts, &str), &'static str> {
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
    if !Region::is_valid(region) {
        return Err("the region must look like us-east-1");
    }
    if !AccountId::is_valid(account) {
        return Err("the account must be 12 digits");
    }
    // At most MAX_ARN_LENGTH (128) bytes, checked above: every offset fits in a u8.
    let offset = |at: usize| at as u8;
    let region_start = "arn:".len() + partition.len() + ":datasync:".len();
    let account_start = region_start + region.len() + 1;
    let parts = Parts {
        region: offset(region_start)..offset(region_start + region.len()),
        account_id: offset(account_start)..offset(account_start + account.len()),
    };
    Ok((parts, resource))
}

impl Parts {
    fn region<'a>(&self, arn: &'a str) -> &'a str {
        &arn[usize::from(self.region.start)..usize::from(self.region.end)]
    }

    fn account_id(&self, arn: &str) -> AccountId {
        let digits = &arn.as_bytes()[usize::from(self.account_id.start)..usize::from(self.account_id.end)];
        AccountId(digits.try_into().expect("an ARN's account was checked to be 12 digits"))
    }
}

impl ExecutionArn {
    pub fn parse(input: &str) -> Result<Self, InvalidId> {
        let invalid = |reason| InvalidId::new(input, "task execution ARN", EXECUTION_FORM, reason);
        let (parts, resource) = split_prefix(input).map_err(invalid)?;
        let Some((task, execution)) = resource.split_once("/execution/") else {
            return Err(invalid("the resource must be task/task-ID/execution/exec-ID"));
        };
        if !is_id(task, "task/task-") || !is_id(execution, "exec-") {
            return Err(invalid("task and execution IDs must be 17 lowercase hex digits"));
        }
        let task_end = input.len() - resource.len() + task.len();
        Ok(ExecutionArn {
            arn: input.into(),
            parts,
            task_end: task_end as u8,
            execution_start: (task_end + "/execution/".len()) as u8,
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
    pub fn task_arn(&self) -> TaskArn {
        TaskArn { arn: self.arn[..usize::from(self.task_end)].into(), parts: self.parts.clone() }
    }

    /// Whether this is an execution of `task`, without building the task's ARN.
    pub fn belongs_to(&self, task: &TaskArn) -> bool {
        &self.arn[..usize::from(self.task_end)] == task.as_str()
    }

    /// The `exec-…` part.
    pub fn execution_id(&self) -> &str {
        &self.arn[usize::from(self.execution_start)..]
    }

    pub fn region(&self) -> &str {
        self.parts.region(&self.arn)
    }

    pub fn account_id(&self) -> AccountId {
        self.parts.account_id(&self.arn)
    }
}

impl TaskArn {
    pub fn parse(input: &str) -> Result<Self, InvalidId> {
        let invalid = |reason| InvalidId::new(input, "task ARN", TASK_FORM, reason);
        let (parts, resource) = split_prefix(input).map_err(invalid)?;
        if !is_id(resource, "task/task-") {
            return Err(invalid("the resource must be task/task-ID with a 17-hex-digit ID"));
        }
        Ok(TaskArn { arn: input.into(), parts })
    }

    pub fn as_str(&self) -> &str {
        &self.arn
    }

    pub fn region(&self) -> &str {
        self.parts.region(&self.arn)
    }

    pub fn account_id(&self) -> AccountId {
        self.parts.account_id(&self.arn)
    }
}

impl LocationArn {
    pub fn parse(input: &str) -> Result<Self, InvalidId> {
        let invalid = |reason| InvalidId::new(input, "location ARN", LOCATION_FORM, reason);
        let (parts, resource) = split_prefix(input).map_err(invalid)?;
        if !is_id(resource, "location/loc-") {
            return Err(invalid("the resource must be location/loc-ID with a 17-hex-digit ID"));
        }
        Ok(LocationArn { arn: input.into(), parts })
    }

    pub fn as_str(&self) -> &str {
        &self.arn
    }

    pub fn region(&self) -> &str {
        self.parts.region(&self.arn)
    }

    pub fn account_id(&self) -> AccountId {
        self.parts.account_id(&self.arn)
    }
}

impl Region {
    pub fn parse(input: &str) -> Result<Self, InvalidId> {
        if Self::is_valid(input) {
            Ok(Region(input.into()))
        } else {
            Err(InvalidId::new(input, "region", "a region such as us-east-1", "not a region name"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn is_valid(region: &str) -> bool {
        let mut parts: Vec<&str> = region.split('-').collect();
        let Some(number) = parts.pop() else { return false };
        region.len() <= 32
            && parts.len() >= 2
            && parts
                .iter()
                .all(|word| (2..=10).contains(&word.len()) && word.bytes().all(|b| b.is_ascii_lowercase()))
            && (1..=2).contains(&number.len())
            && number.bytes().all(|b| b.is_ascii_digit())
    }
}

impl AccountId {
    pub fn parse(input: &str) -> Result<Self, InvalidId> {
        match input.as_bytes().try_into() {
            Ok(digits) if Self::is_valid(input) => Ok(AccountId(digits)),
            _ => Err(InvalidId::new(input, "account id", "12 digits", "not an account id")),
        }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("an account id is ASCII digits")
    }

    fn is_valid(account: &str) -> bool {
        account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())
    }
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

/// What every identifier shares: its text (Display, FromStr), serialised as that text (a stored
/// document that no longer parses fails to decode rather than slipping through), and exposed to
/// GraphQL as a `String`, the type the schema has always given them.
macro_rules! text_identifier {
    ($($name:ident),*) => {$(
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(input: &str) -> Result<Self, InvalidId> {
                Self::parse(input)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Self::parse(&text).map_err(serde::de::Error::custom)
            }
        }

        impl async_graphql::OutputType for $name {
            fn type_name() -> std::borrow::Cow<'static, str> {
                <str as async_graphql::OutputType>::type_name()
            }

            fn create_type_info(registry: &mut async_graphql::registry::Registry) -> String {
                <str as async_graphql::OutputType>::create_type_info(registry)
            }

            async fn resolve(
                &self,
                _: &async_graphql::ContextSelectionSet<'_>,
                _: &async_graphql::Positioned<async_graphql::parser::types::Field>,
            ) -> async_graphql::ServerResult<async_graphql::Value> {
                Ok(async_graphql::Value::String(self.as_str().to_owned()))
            }
        }
    )*};
}

/// Identity, order and hashing by the text alone (the parts are derived from it), so that a
/// map keyed by an identifier can be looked up with a `&str`.
macro_rules! compared_by_text {
    ($($name:ident),*) => {$(
        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.as_str() == other.as_str()
            }
        }

        impl Eq for $name {}

        impl std::hash::Hash for $name {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                self.as_str().hash(state)
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for $name {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.as_str().cmp(other.as_str())
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                self.as_str()
            }
        }
    )*};
}

text_identifier!(ExecutionArn, TaskArn, LocationArn, Region, AccountId);
compared_by_text!(ExecutionArn, TaskArn, LocationArn, Region);

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "arn:aws:datasync:us-east-1:111222333444:task/task-0208075f79cedf4a2/execution/exec-08ef1e88ec491019b";

    #[test]
    fn parses_the_parts_of_a_valid_arn() {
        let arn = ExecutionArn::parse(GOOD).unwrap();
        assert_eq!(
            arn.task_arn().as_str(),
            "arn:aws:datasync:us-east-1:111222333444:task/task-0208075f79cedf4a2"
        );
        assert_eq!(arn.execution_id(), "exec-08ef1e88ec491019b");
        assert_eq!(arn.region(), "us-east-1");
        assert_eq!(arn.account_id().as_str(), "111222333444");
        assert_eq!(arn.as_str(), GOOD);
    }

    #[test]
    fn accepts_every_partition() {
        for partition in PARTITIONS {
            let arn = GOOD.replacen("arn:aws:", &format!("arn:{partition}:"), 1);
            let parsed = ExecutionArn::parse(&arn).unwrap_or_else(|error| panic!("{arn}: {error}"));
            assert_eq!((parsed.region(), parsed.account_id().as_str()), ("us-east-1", "111222333444"));
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
            assert!(Region::is_valid(region), "{region}");
        }
        for region in ["", "us", "us-east", "us-east-123", "US-EAST-1", "a-b-1", "us--1", "us-east-1-"] {
            assert!(!Region::is_valid(region), "{region}");
        }
    }

    #[test]
    fn task_arns_are_checked_on_their_own() {
        assert!(TaskArn::parse("arn:aws:datasync:us-east-1:111222333444:task/task-0208075f79cedf4a2").is_ok());
        assert!(TaskArn::parse(GOOD).is_err());
        assert!(TaskArn::parse("arn:aws:datasync:us-east-1:111222333444:task/task-0208075f79cedf4a").is_err());
        assert!(TaskArn::parse("x' OR '1'='1").is_err());
    }

    #[test]
    fn location_arns_and_account_ids() {
        let location =
            LocationArn::parse("arn:aws:datasync:eu-west-1:111222333444:location/loc-0123456789abcdef0")
                .unwrap();
        assert_eq!(location.region(), "eu-west-1");
        assert!(LocationArn::parse("arn:aws:datasync:eu-west-1:111222333444:task/task-0123456789abcdef0")
            .is_err());
        assert_eq!(AccountId::parse("111222333444").unwrap().as_str(), "111222333444");
        assert!(AccountId::parse("11122233344x").is_err());
        assert!(AccountId::parse("1112223334445").is_err());
    }

    #[test]
    fn serialised_as_their_text_and_refused_when_it_does_not_parse() {
        let arn = ExecutionArn::parse(GOOD).unwrap();
        let json = serde_json::to_string(&arn).unwrap();
        assert_eq!(json, format!("\"{GOOD}\""));
        assert_eq!(serde_json::from_str::<ExecutionArn>(&json).unwrap(), arn);
        let error =
            serde_json::from_str::<ExecutionArn>("\"arn:aws:datasync:us-east-1:1:task/x\"").unwrap_err();
        assert!(error.to_string().contains("not a DataSync task execution ARN"), "{error}");
    }

    #[test]
    fn error_messages_quote_at_most_a_short_prefix() {
        let huge = "x".repeat(1_000_000);
        let message = ExecutionArn::parse(&huge).unwrap_err().to_string();
        assert!(message.len() < 600, "{}", message.len());
    }
}
