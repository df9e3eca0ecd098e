//! DataSync's enumerations, as GraphQL enums that never fail on a value they do not know.
//!
//! DataSync adds enum values over time (and moto sends `INITIALIZING`, which DataSync's model
//! does not have). Each enum therefore has an `UNKNOWN` member, and [`EnumValue`] keeps the raw
//! string DataSync sent, so nothing is lost in the cache, in the store, or for the client.

use std::borrow::Cow;
use std::fmt;

use async_graphql::{registry::Registry, ContextSelectionSet, OutputType, Positioned, ServerResult, Value};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An enum whose members are DataSync's wire strings.
pub trait DataSyncEnum: Copy + Send + Sync + 'static {
    /// The member for a wire string; `Unknown` for anything else.
    fn from_wire(raw: &str) -> Self;

    /// The wire string of a member; `None` for `Unknown`.
    fn wire(self) -> Option<&'static str>;

    /// The member standing for any value this build does not know.
    const UNKNOWN: Self;
}

/// One DataSync enum value: the member, or the raw wire string when this build does not know it.
///
/// Serialises as the wire string, so a snapshot taken today still says exactly what DataSync sent
/// after a later build learns the new member.
#[derive(Clone)]
pub struct EnumValue<E> {
    raw: Raw<E>,
}

/// 16 bytes, and so is `Option<EnumValue>` (a cached execution holds some twenty): the rare
/// unknown string sits behind a thin pointer. A `Cow<'static, str>` of the wire string took 24.
#[derive(Clone)]
enum Raw<E> {
    Known(E),
    // Boxed on purpose: a thin pointer, where a `String` would make every value 32 bytes.
    #[allow(clippy::box_collection)]
    Unknown(Box<String>),
}

impl<E: DataSyncEnum> EnumValue<E> {
    pub fn from_wire(raw: impl AsRef<str> + Into<String>) -> Self {
        let raw = match E::from_wire(raw.as_ref()) {
            member if member.wire().is_some() => Raw::Known(member),
            _ => Raw::Unknown(Box::new(raw.into())),
        };
        EnumValue { raw }
    }

    /// The member, or `Unknown` when this build does not know the raw string.
    pub fn get(&self) -> E {
        match &self.raw {
            Raw::Known(member) => *member,
            Raw::Unknown(_) => E::UNKNOWN,
        }
    }

    /// Exactly what DataSync sent.
    pub fn raw(&self) -> &str {
        match &self.raw {
            Raw::Known(member) => member.wire().unwrap_or_default(),
            Raw::Unknown(raw) => raw,
        }
    }
}

impl<E: DataSyncEnum> PartialEq for EnumValue<E> {
    fn eq(&self, other: &Self) -> bool {
        self.raw() == other.raw()
    }
}

impl<E: DataSyncEnum> fmt::Debug for EnumValue<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.raw())
    }
}

impl<E: DataSyncEnum> Serialize for EnumValue<E> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.raw())
    }
}

impl<'de, E: DataSyncEnum> Deserialize<'de> for EnumValue<E> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(EnumValue::from_wire(String::deserialize(deserializer)?))
    }
}

impl<E: DataSyncEnum + OutputType> OutputType for EnumValue<E> {
    fn type_name() -> Cow<'static, str> {
        E::type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        E::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<async_graphql::parser::types::Field>,
    ) -> ServerResult<Value> {
        self.get().resolve(ctx, field).await
    }
}

/// Declares a DataSync enum: a GraphQL enum with the wire strings as member names, plus `UNKNOWN`.
macro_rules! datasync_enum {
    (
        $(#[doc = $doc:tt])*
        $name:ident { $( $(#[doc = $vdoc:tt])* $variant:ident = $wire:tt, )+ }
    ) => {
        $(#[doc = $doc])*
        #[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name {
            $( $(#[doc = $vdoc])* #[graphql(name = $wire)] $variant, )+
            /// A value this version of the gateway does not know; the raw string is kept.
            #[graphql(name = "UNKNOWN")]
            Unknown,
        }

        impl DataSyncEnum for $name {
            const UNKNOWN: Self = Self::Unknown;

            fn from_wire(raw: &str) -> Self {
                match raw {
                    $( $wire => Self::$variant, )+
                    _ => Self::Unknown,
                }
            }

            fn wire(self) -> Option<&'static str> {
                match self {
                    $( Self::$variant => Some($wire), )+
                    Self::Unknown => None,
                }
            }
        }
    };
}

datasync_enum! {
    /// Where a task execution is in its life.
    TaskExecutionStatus {
        /// Waiting for another execution of the same task to finish.
        Queued = "QUEUED",
        /// Being cancelled at the caller's request.
        Cancelling = "CANCELLING",
        /// Initialising the agents and network resources.
        Launching = "LAUNCHING",
        /// Comparing source and destination to decide what to transfer.
        Preparing = "PREPARING",
        /// Moving data.
        Transferring = "TRANSFERRING",
        /// Checking the integrity of what was transferred.
        Verifying = "VERIFYING",
        /// Finished, and everything succeeded.
        Success = "SUCCESS",
        /// Finished with an error, or cancelled; see `result.errorCode`.
        Error = "ERROR",
    }
}

datasync_enum! {
    /// Whether a task can run.
    TaskStatus {
        /// Ready to run.
        Available = "AVAILABLE",
        /// Being created.
        Creating = "CREATING",
        /// Waiting for another task using the same agent.
        Queued = "QUEUED",
        /// An execution is running.
        Running = "RUNNING",
        /// Its agent is offline or its locations cannot be reached; see `errorCode`.
        Unavailable = "UNAVAILABLE",
    }
}

datasync_enum! {
    /// Whether a task's schedule is on.
    ScheduleStatus {
        /// The task runs on its schedule.
        Enabled = "ENABLED",
        /// The schedule is paused.
        Disabled = "DISABLED",
    }
}

datasync_enum! {
    /// Who disabled a task's schedule.
    ScheduleDisabledBy {
        /// Someone turned it off.
        User = "USER",
        /// DataSync turned it off after repeated failures.
        Service = "SERVICE",
    }
}

impl TaskExecutionStatus {
    /// SUCCESS or ERROR: the status will not change again.
    pub fn is_terminal(self) -> bool {
        matches!(self, TaskExecutionStatus::Success | TaskExecutionStatus::Error)
    }
}

datasync_enum! {
    /// Whether the task runs in Basic or Enhanced mode; some counters only apply to one of them.
    TaskMode {
        /// The original mode: limited number of files, richer per-phase durations.
        Basic = "BASIC",
        /// Virtually unlimited objects, with listing and failure counters per phase.
        Enhanced = "ENHANCED",
    }
}

datasync_enum! {
    /// How far a phase (prepare, transfer, verify) or a task report has got.
    PhaseStatus {
        /// Not finished yet.
        Pending = "PENDING",
        /// Finished successfully.
        Success = "SUCCESS",
        /// Failed.
        Error = "ERROR",
    }
}

datasync_enum! {
    /// If and how data integrity is checked at the end of a transfer.
    VerifyMode {
        /// Checksums of what was transferred are compared at source and destination (recommended).
        OnlyFilesTransferred = "ONLY_FILES_TRANSFERRED",
        /// The whole source and destination are compared at the end (Basic mode only).
        PointInTimeConsistent = "POINT_IN_TIME_CONSISTENT",
        /// Integrity is checked only during the transfer.
        None = "NONE",
    }
}

datasync_enum! {
    /// Whether data already at the destination may be modified.
    OverwriteMode {
        /// Destination data is modified when the source changed (default).
        Always = "ALWAYS",
        /// Destination data is never overwritten.
        Never = "NEVER",
    }
}

datasync_enum! {
    /// Whether the last-access time of files is preserved.
    Atime {
        /// Ignore access times.
        None = "NONE",
        /// Preserve access times where the platform allows (default; requires `mtime: PRESERVE`).
        BestEffort = "BEST_EFFORT",
    }
}

datasync_enum! {
    /// Whether the last-modification time of files is preserved.
    Mtime {
        /// Ignore modification times.
        None = "NONE",
        /// Preserve modification times (default; needed to run a task more than once).
        Preserve = "PRESERVE",
    }
}

datasync_enum! {
    /// How the POSIX owner (user) of files is copied.
    Uid {
        /// Do not copy user IDs.
        None = "NONE",
        /// Copy the numeric ID (default).
        IntValue = "INT_VALUE",
        /// Copy the user name.
        Name = "NAME",
        /// Copy both the numeric ID and the name.
        Both = "BOTH",
    }
}

datasync_enum! {
    /// How the POSIX group of files is copied.
    Gid {
        /// Do not copy group IDs.
        None = "NONE",
        /// Copy the numeric ID (default).
        IntValue = "INT_VALUE",
        /// Copy the group name.
        Name = "NAME",
        /// Copy both the numeric ID and the name.
        Both = "BOTH",
    }
}

datasync_enum! {
    /// What happens to destination files that no longer exist at the source.
    PreserveDeletedFiles {
        /// Keep them (default).
        Preserve = "PRESERVE",
        /// Delete them from the destination.
        Remove = "REMOVE",
    }
}

datasync_enum! {
    /// Whether block and character device metadata is recreated at the destination.
    PreserveDevices {
        /// Ignore special devices (default).
        None = "NONE",
        /// Recreate device names and metadata (not their contents).
        Preserve = "PRESERVE",
    }
}

datasync_enum! {
    /// Whether POSIX permissions are copied.
    PosixPermissions {
        /// Ignore permissions.
        None = "NONE",
        /// Copy permissions (default).
        Preserve = "PRESERVE",
    }
}

datasync_enum! {
    /// Whether the execution waits in a queue when another execution of the task is running.
    TaskQueueing {
        /// Queue it (default).
        Enabled = "ENABLED",
        /// Do not queue.
        Disabled = "DISABLED",
    }
}

datasync_enum! {
    /// What DataSync publishes to CloudWatch Logs.
    LogLevel {
        /// Nothing.
        Off = "OFF",
        /// Basic information such as transfer errors.
        Basic = "BASIC",
        /// Every file or object transferred and checked.
        Transfer = "TRANSFER",
    }
}

datasync_enum! {
    /// Whether only changes or everything is transferred.
    TransferMode {
        /// Only what differs between source and destination (default).
        Changed = "CHANGED",
        /// Everything, without comparing.
        All = "ALL",
    }
}

datasync_enum! {
    /// Which parts of an SMB security descriptor are copied.
    SmbSecurityDescriptorCopyFlags {
        /// None: the destination's defaults apply.
        None = "NONE",
        /// The owner and the discretionary ACLs (default).
        OwnerDacl = "OWNER_DACL",
        /// The owner, discretionary ACLs and system ACLs.
        OwnerDaclSacl = "OWNER_DACL_SACL",
    }
}

datasync_enum! {
    /// Whether object tags are copied between object stores.
    ObjectTags {
        /// Copy tags (default).
        Preserve = "PRESERVE",
        /// Ignore tags.
        None = "NONE",
    }
}

datasync_enum! {
    /// How a filter rule's value is interpreted.
    FilterType {
        /// Patterns separated by `|`, where `*` matches anything.
        SimplePattern = "SIMPLE_PATTERN",
    }
}

datasync_enum! {
    /// What the manifest is used for.
    ManifestAction {
        /// Transfer what the manifest lists.
        Transfer = "TRANSFER",
    }
}

datasync_enum! {
    /// The file format of a manifest.
    ManifestFormat {
        /// Comma-separated values.
        Csv = "CSV",
    }
}

datasync_enum! {
    /// How much a task report says.
    ReportOutputType {
        /// Totals only: counts and durations.
        SummaryOnly = "SUMMARY_ONLY",
        /// Every file or object transferred, skipped, verified or deleted.
        Standard = "STANDARD",
    }
}

datasync_enum! {
    /// Whether a task report lists only failures or also successes.
    ReportLevel {
        /// Only what went wrong.
        ErrorsOnly = "ERRORS_ONLY",
        /// What succeeded and what went wrong.
        SuccessesAndErrors = "SUCCESSES_AND_ERRORS",
    }
}

datasync_enum! {
    /// Whether a task report includes the new S3 object version of each transferred object.
    ObjectVersionIds {
        /// Include version IDs (versioned buckets only).
        Include = "INCLUDE",
        /// Leave them out.
        None = "NONE",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_parse_and_unknown_ones_keep_their_raw_string() {
        let known = EnumValue::<TaskExecutionStatus>::from_wire("TRANSFERRING");
        assert_eq!(known.get(), TaskExecutionStatus::Transferring);

        let moto = EnumValue::<TaskExecutionStatus>::from_wire("INITIALIZING");
        assert_eq!(moto.get(), TaskExecutionStatus::Unknown);
        assert_eq!(moto.raw(), "INITIALIZING");
    }

    #[test]
    fn a_value_takes_two_words_even_when_optional() {
        assert_eq!(std::mem::size_of::<Option<EnumValue<VerifyMode>>>(), 16);
    }

    #[test]
    fn serialises_as_the_raw_string() {
        let value = EnumValue::<VerifyMode>::from_wire("SOMETHING_NEW");
        let json = serde_json::to_string(&value).unwrap();
        assert_eq!(json, "\"SOMETHING_NEW\"");
        let back: EnumValue<VerifyMode> = serde_json::from_str(&json).unwrap();
        assert_eq!(back.raw(), "SOMETHING_NEW");
        assert_eq!(back.get(), VerifyMode::Unknown);
    }
}
