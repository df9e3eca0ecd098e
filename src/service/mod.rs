//! The services: what GraphQL resolvers, HTTP routes and background work call. Each owns one
//! read or write path and its rules, and turns store and DataSync failures into
//! [`GatewayError`](crate::error::GatewayError)s.
//!
//! - [`executions`]: one execution by ARN (cache, then the index for settled ones, then DataSync).
//! - [`index`]: the index of every execution: pages, counts and statistics.
//! - [`tasks`]: tasks and locations, listed, filtered and paged.
//! - [`control`]: starting and cancelling executions (idempotency, audit).
//! - [`documents`]: trusted documents, from manifests and the database, kept current.
//! - [`reports`]: stored task report records; [`report_ingestion`] stores them.
//! - [`webhooks`]: webhook endpoints, and their delivery from the outbox.
//! - [`audit`]: the record of every operator's change.
//!
//! May import: `cache`, `store`, `datasync`, `live` (control follows what it starts),
//! `request`, `model`, `config`, `error`, `metrics`. Never `graphql` or `http`.

pub mod accounts;
pub mod audit;
pub mod control;
pub mod discovery;
pub mod documents;
pub mod executions;
pub mod index;
pub mod live;
pub mod report_ingestion;
pub mod reports;
pub mod tasks;
pub mod webhooks;

/// What the services' unit tests stand on: the real SDK client over HTTP to a simulator of
/// their own, no database.
#[cfg(test)]
mod testing {
    use std::time::Duration;

    use crate::config::Config;
    use crate::datasync::DataSyncClient;
    use crate::metrics::Metrics;
    use crate::simulator::{fleet, Simulator, SimulatorConfig};

    /// A client for the simulator's regions, with the default configuration and short retry
    /// backoff. The simulator's executions stay where they start (an hour a tick): new ones are
    /// QUEUED or LAUNCHING.
    pub(crate) async fn simulated_datasync() -> (DataSyncClient, Config, Metrics, Simulator) {
        let simulator = Simulator::start(
            std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            SimulatorConfig::with_tick(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
        let mut config = Config::defaults();
        config.datasync.simulator = false;
        config.datasync.fake_credentials = true;
        config.datasync.datasync_endpoint = Some(simulator.endpoint_url());
        config.datasync.initial_backoff = Duration::from_millis(10);
        let regions: Vec<crate::model::Region> =
            fleet::REGIONS.map(|region| region.parse().unwrap()).to_vec();
        let metrics = Metrics::default();
        let datasync = DataSyncClient::connect(&config.datasync, &config.accounts, regions, metrics.clone())
            .await
            .unwrap();
        (datasync, config, metrics, simulator)
    }
}
