//! Everything that talks to DataSync or knows its wire shapes: the client (per-region SDK
//! clients, the call budget, fair turns between callers, timeouts and retries) and the one
//! mapping from the SDK's types to the domain's.
//!
//! May import: `model`, `request` (whose turn a call is, and its allowance), `config`, `error`,
//! `metrics`, `telemetry`.

pub mod accounts;
pub mod budget;
pub mod client;
pub mod fair;
pub mod mapping;

pub use accounts::Accounts;
pub use client::{sdk_config, DataSyncClient};
