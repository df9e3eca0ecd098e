//! Start-up: builds the whole gateway from a [`Config`]. `main` and the tests both use it, so
//! tests run exactly what production runs, on a port of their choosing (0 for any free one).

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;

use crate::cache::ExecutionCache;
use crate::config::{Config, HistoryConfig};
use crate::datasync::DataSyncClient;
use crate::graphql::build_schema;
use crate::http::{self, AppState};
use crate::service::{ExecutionService, History};
use crate::simulator::{fleet, Simulator, SimulatorConfig};
use crate::store::writer::SnapshotWriter;
use crate::store::HistoryStore;

/// How long a graceful shutdown waits for queued snapshots to be written.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Application {
    listener: TcpListener,
    router: Router,
    simulator: Option<Simulator>,
    history: Option<History>,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let simulator = if config.datasync.simulator {
            let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
            let simulator_config = SimulatorConfig { tick: config.datasync.simulator_tick };
            Some(Simulator::start(loopback, simulator_config).await.context("starting the simulator")?)
        } else {
            None
        };
        let datasync =
            DataSyncClient::new(&config.datasync, simulator.as_ref().map(Simulator::endpoint_url)).await;
        let history = open_history(&config.history).await?;
        let service =
            ExecutionService::new(ExecutionCache::new(&config.cache), datasync.clone(), history.clone());

        let mut backfill_regions = config.history.backfill_regions.clone();
        if backfill_regions.is_empty() && simulator.is_some() && history.is_some() {
            backfill_regions = fleet::REGIONS.map(str::to_owned).to_vec();
        }
        match (backfill_regions.is_empty(), history.is_some()) {
            (false, true) => {
                tokio::spawn(crate::backfill::run(service.clone(), datasync, backfill_regions));
            }
            (false, false) => tracing::warn!("backfill needs a database (DATABASE_URL); skipped"),
            (true, _) => {}
        }

        let state = AppState {
            schema: build_schema(service, &config.limits),
            max_batch_operations: config.limits.max_batch_operations,
            history: history.clone(),
        };
        let router = http::router(state, &config.limits)?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listening on {}", config.listen))?;
        Ok(Application { listener, router, simulator, history })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// The in-process simulator, when the config asked for one.
    pub fn simulator(&self) -> Option<&Simulator> {
        self.simulator.as_ref()
    }

    /// Serves until `shutdown` resolves, finishes the requests in flight, then writes the
    /// snapshots still queued for the history store.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let Application { listener, router, simulator, history } = self;
        let served = axum::serve(listener, router).with_graceful_shutdown(shutdown).await;
        if let Some(history) = history {
            let left = history.writer.flush(FLUSH_TIMEOUT).await;
            if left > 0 {
                tracing::error!(left, "shutting down with snapshots not yet written to the history store");
            }
        }
        drop(simulator);
        served
    }
}

/// The store (migrated) and its writer and retention task, when a database is configured.
async fn open_history(config: &HistoryConfig) -> anyhow::Result<Option<History>> {
    let Some(url) = &config.database_url else {
        tracing::warn!("no DATABASE_URL: serving live queries only; history and statistics are unavailable");
        return Ok(None);
    };
    let store = open_store(url, config.database_max_connections).await?;
    let writer = SnapshotWriter::start(store.clone(), config.history_backlog_capacity);
    if let Some(retention) = config.history_retention {
        tokio::spawn(prune_periodically(store.clone(), retention, config.history_prune_interval));
    }
    tracing::info!("history store ready");
    Ok(Some(History::new(store, writer)))
}

/// Connects and applies migrations. The URL may hold a password: errors do not repeat it.
pub async fn open_store(url: &str, max_connections: u32) -> anyhow::Result<HistoryStore> {
    let store = HistoryStore::connect_lazy(url, max_connections)
        .map_err(|_| anyhow::anyhow!("DATABASE_URL is not a valid PostgreSQL URL"))?;
    store.migrate().await.context("could not connect to the history database and apply migrations")?;
    Ok(store)
}

/// The start time before which executions are deleted; `None` when `retention` reaches past
/// the earliest representable time.
pub fn retention_cutoff(retention: Duration) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::Utc::now().checked_sub_signed(chrono::Duration::from_std(retention).ok()?)
}

async fn prune_periodically(store: HistoryStore, retention: Duration, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    loop {
        ticks.tick().await;
        let cutoff =
            chrono::Utc::now() - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
        match store.prune(cutoff).await {
            Ok(deleted) => tracing::info!(deleted, %cutoff, "history retention applied"),
            Err(error) => tracing::warn!(%error, "history retention failed; will retry"),
        }
    }
}
