//! datasync-gateway: one typed GraphQL endpoint over AWS DataSync task executions.
//!
//! Read in this order: [`app`] wires everything; `http` is the server and its routes;
//! [`graphql`] is the schema and the gate every request passes; [`service`] holds what the
//! resolvers and the background work call (executions, the index, tasks, control, live
//! following, the discovery sync), on behalf of a [`request::Caller`]; [`cache`], [`store`] and
//! [`datasync`] are what the services read and write through; [`model`] holds the domain types
//! and identifiers they all share.
//!
//! Imports run one way, from the top of that list down (`tests/gateway/architecture.rs` checks
//! each room's list): http → graphql → service → {cache, store, datasync} → model, with
//! `request`, `config` and `error` beside the model for every layer to use.

pub mod app;
pub mod auth;
pub mod cache;
pub mod config;
pub mod datasync;
pub mod error;
pub mod graphql;
mod http;
pub mod metrics;
pub mod model;
pub mod request;
pub mod service;
pub mod simulator;
pub mod store;
pub mod telemetry;
