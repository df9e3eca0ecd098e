//! The services: what GraphQL resolvers, HTTP routes and background work call. Each owns one
//! read or write path and its rules, and turns store and DataSync failures into
//! [`GatewayError`](crate::error::GatewayError)s.
//!
//! - [`executions`]: one execution by ARN (cache, then the index for settled ones, then DataSync).
//! - [`index`]: the index of every execution: pages, counts and statistics.
//! - [`tasks`]: tasks and locations, listed, filtered and paged.
//! - [`control`]: starting and cancelling executions (idempotency, audit).
//!
//! May import: `cache`, `store`, `datasync`, `live` (control follows what it starts),
//! `request`, `model`, `config`, `error`, `metrics`. Never `graphql` or `http`.

pub mod control;
pub mod discovery;
pub mod executions;
pub mod index;
pub mod live;
pub mod tasks;
