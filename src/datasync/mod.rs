//! Everything that talks to DataSync or knows its wire shapes.

pub mod arn;
pub mod budget;
pub mod client;
pub mod fair;
pub mod mapping;

pub use arn::{ExecutionArn, InvalidArn};
pub use client::DataSyncClient;
