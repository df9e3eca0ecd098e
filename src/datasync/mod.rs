//! Everything that talks to AWS or knows its wire shapes: the accounts served and their
//! credentials (STS, Organizations), the DataSync client (an SDK client and call budget per
//! site, fair turns between callers, timeouts and retries) and the one mapping from the SDK's
//! types to the domain's; task reports read from S3 and parsed.
//!
//! May import: `model`, `request` (whose turn a call is, and its allowance), `config`, `error`,
//! `metrics`, `telemetry`.

pub mod accounts;
pub mod budget;
pub mod client;
pub mod fair;
pub mod mapping;
pub mod per_site;
pub mod report_bucket;
pub mod task_report;

pub use accounts::Accounts;
pub use client::{sdk_config, DataSyncClient};
pub use report_bucket::ReportBuckets;
