//! datasync-gateway: one typed GraphQL endpoint over AWS DataSync task executions.
//!
//! Read in this order: [`app`] wires everything; [`graphql`] is the schema; [`service`] is the
//! read path; [`cache`] and [`datasync`] are what it reads through; [`model`] is the one
//! domain type they all share.

pub mod app;
pub mod cache;
pub mod caller;
pub mod config;
pub mod datasync;
pub mod discovery;
pub mod error;
pub mod graphql;
pub mod history;
mod http;
pub mod model;
pub mod service;
pub mod simulator;
pub mod store;
pub mod tasks;
