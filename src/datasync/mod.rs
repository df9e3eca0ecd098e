//! Everything that talks to DataSync or knows its wire shapes.

pub mod budget;
pub mod client;
pub mod fair;
pub mod mapping;

pub use client::DataSyncClient;
