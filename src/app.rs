//! Start-up: builds the whole gateway from a [`Config`]. `main` and the tests both use it, so
//! tests run exactly what production runs, on a port of their choosing (0 for any free one).

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;

use crate::cache::ExecutionCache;
use crate::config::Config;
use crate::datasync::DataSyncClient;
use crate::graphql::build_schema;
use crate::http::{self, AppState};
use crate::service::ExecutionService;
use crate::simulator::{Simulator, SimulatorConfig};

pub struct Application {
    listener: TcpListener,
    router: Router,
    simulator: Option<Simulator>,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let simulator = if config.datasync.simulator {
            let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
            Some(
                Simulator::start(loopback, SimulatorConfig { tick: config.datasync.simulator_tick })
                    .await
                    .context("starting the simulator")?,
            )
        } else {
            None
        };
        let datasync =
            DataSyncClient::new(&config.datasync, simulator.as_ref().map(Simulator::endpoint_url)).await;
        let service = ExecutionService::new(ExecutionCache::new(&config.cache), datasync);
        let state = AppState {
            schema: build_schema(service, &config.limits),
            max_batch_operations: config.limits.max_batch_operations,
        };
        let router = http::router(state, &config.limits)?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listening on {}", config.listen))?;
        Ok(Application { listener, router, simulator })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// The in-process simulator, when the config asked for one.
    pub fn simulator(&self) -> Option<&Simulator> {
        self.simulator.as_ref()
    }

    /// Serves until `shutdown` resolves, then finishes the requests in flight.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let Application { listener, router, simulator } = self;
        let served = axum::serve(listener, router).with_graceful_shutdown(shutdown).await;
        drop(simulator);
        served
    }
}
