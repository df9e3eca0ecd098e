//! datasync-gateway: one typed GraphQL endpoint over AWS DataSync task executions.
//!
//! Read in this order: [`app`] wires everything; `http` is the server and its routes;
//! [`graphql`] is the schema and the gate every request passes; [`service`] (executions),
//! [`tasks`] and [`history`] are the read paths the resolvers call, on behalf of a [`caller`];
//! [`cache`] and [`datasync`] are what they read through, [`store`] the PostgreSQL index the
//! [`discovery`] sync keeps current; [`model`] holds the domain types they all share.

pub mod app;
pub mod auth;
pub mod cache;
pub mod config;
pub mod datasync;
pub mod discovery;
pub mod error;
pub mod graphql;
mod http;
pub mod live;
pub mod metrics;
pub mod model;
pub mod request;
pub mod service;
pub mod simulator;
pub mod store;
pub mod telemetry;
