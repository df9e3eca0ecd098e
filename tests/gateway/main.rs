//! Integration tests: the real gateway on a free port, the real SDK over HTTP to the simulator
//! (or to moto), asserted through GraphQL over HTTP the way clients use it.
//!
//! One test binary (modules below) so the suite links once.

mod accounts;
mod architecture;
mod auth;
mod cache;
mod common;
mod conformance;
mod control;
mod discovery;
mod docs;
mod errors;
mod federation;
mod fields;
mod filter;
mod front_door;
mod history;
mod history_queries;
mod hostile;
mod http;
mod jwt;
mod live;
mod metrics;
mod moto;
mod proxy;
mod replicas;
mod reports;
mod resilience;
mod response_cache;
mod schema;
mod simulator;
mod spec;
mod streams;
mod tasks;
mod traces;
mod trusted_documents;
mod webhooks;
mod ws_client;
