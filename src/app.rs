//! Start-up: builds the whole gateway from a [`Config`]. `main` and the tests both use it, so
//! tests run exactly what production runs, on a port of their choosing (0 for any free one).

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::cache::TaskCaches;
use crate::config::{
    AccountsConfig, Config, DataSyncConfig, HistoryConfig, ReportsConfig, TrustedDocumentsMode,
};
use crate::datasync::{DataSyncClient, ReportBuckets};
use crate::graphql::response_cache::ResponseCache;
use crate::graphql::{build_schemas, Gate, Services, Streaming, TrustPolicy};
use crate::http::server::{self, ConnectionLimits};
use crate::http::{self, AppState, SharedState};
use crate::metrics::Metrics;
use crate::model::Region;
use crate::service::accounts::AccountService;
use crate::service::control::ControlService;
use crate::service::discovery::{Discovery, SyncParts};
use crate::service::documents::{Sources, TrustedDocuments};
use crate::service::executions::ExecutionService;
use crate::service::index::IndexService;
use crate::service::live::{Live, LiveSettings, LiveStore};
use crate::service::report_ingestion::{Ingester, IngestionSettings};
use crate::service::reports::ReportService;
use crate::service::tasks::TaskService;
use crate::service::webhooks::delivery::{DeliverySettings, Dispatcher};
use crate::service::webhooks::destination::Policy;
use crate::service::webhooks::WebhookService;
use crate::simulator::{fleet, Simulator, SimulatorConfig};
use crate::store::index::spool;
use crate::store::index::writer::IndexWriter;
use crate::store::Database;

/// Connections the admin address (probes) serves at once.
const ADMIN_MAX_CONNECTIONS: usize = 64;

pub struct Application {
    listener: TcpListener,
    entry: http::Entry,
    admin: Option<(TcpListener, http::Entry)>,
    connection_limits: ConnectionLimits,
    simulator: Option<Simulator>,
    index: Option<IndexService>,
    spool_dir: PathBuf,
    flush_timeout: Duration,
    live: Live,
    ingester: Option<Ingester>,
    dispatcher: Option<Dispatcher>,
    metrics: Metrics,
    background: Background,
    /// Tells long-lived connections and the admin server that the gateway is stopping.
    stop: tokio::sync::watch::Sender<bool>,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        // On the heap: building awaits the SDK's config loading and the migrations, a future
        // large enough (unoptimised) to overflow a test thread's stack when held inline.
        Box::pin(Self::assemble(config)).await
    }

    async fn assemble(config: Config) -> anyhow::Result<Self> {
        let simulator = if config.datasync.simulator {
            let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
            let simulator_config = SimulatorConfig {
                extra_executions: config.datasync.simulator_executions,
                schedule_ticks: Some(config.datasync.simulator_schedule_ticks).filter(|ticks| *ticks > 0),
                accounts: config.datasync.simulator_accounts.into(),
                ..SimulatorConfig::with_tick(config.datasync.simulator_tick)
            };
            Some(Simulator::start(loopback, simulator_config).await.context("starting the simulator")?)
        } else {
            None
        };
        let metrics = Metrics::default();
        let simulator_url = simulator.as_ref().map(Simulator::endpoint_url);
        let regions = served_regions(&config.datasync);
        let (datasync_config, accounts_config) = endpoints(&config, simulator_url.as_deref());
        let datasync =
            DataSyncClient::connect(&datasync_config, &accounts_config, regions, metrics.clone()).await?;
        let mut background = Background::default();
        background.0.extend(datasync.accounts().start_refreshing(accounts_config.accounts_refresh).await);
        let database = open_database(&config.history).await?;
        let index = match &database {
            Some(database) => Some(open_index(database, &config.history, &mut background).await),
            None => None,
        };
        let service = ExecutionService::new(&config.cache, datasync.clone(), index.clone(), metrics.clone());

        let tasks = TaskService::new(TaskCaches::new(&config.cache, &metrics), datasync.clone());
        let timeouts = config.history.timeouts;
        let live_store = match (&database, &index) {
            (Some(database), Some(index)) => Some(LiveStore {
                index: index.clone(),
                coordination: database.coordination(),
                limit: timeouts.coordination,
            }),
            _ => None,
        };
        let (live, live_tasks) = Live::start(
            service.clone(),
            live_store,
            LiveSettings { poll_interval: config.live.poll_interval, lease: config.live.lease_duration },
        );
        background.0.extend(live_tasks);
        let discovery = match (&database, config.history.discovery) {
            (Some(database), true) => {
                let parts = SyncParts {
                    executions: service.clone(),
                    tasks: tasks.clone(),
                    datasync: datasync.clone(),
                    index: database.index(),
                    coordination: database.coordination(),
                    live: live.clone(),
                    limit: timeouts.write,
                };
                let (discovery, task) = Discovery::start(parts, config.history.discovery_interval);
                background.0.push(task);
                Some(discovery)
            }
            (None, true) => {
                tracing::warn!("the discovery sync needs a database (DATABASE_URL); the index stays empty");
                None
            }
            (_, false) => None,
        };
        let auth = crate::auth::from_config(&config, database.as_ref().map(Database::keys), &metrics)?;
        let rate_limits = crate::request::rate_limit::RateLimits::new(config.limits.rate_limit);
        background.0.extend(rate_limits.start_forgetting());
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let control = ControlService::new(
            datasync.clone(),
            service.clone(),
            live.clone(),
            database.as_ref().map(|database| (database.control(), timeouts.control)),
        );
        let accounts = AccountService::new(
            datasync.clone(),
            database.as_ref().map(|database| (database.coordination(), timeouts.coordination)),
        );
        let reports =
            database.as_ref().map(|database| ReportService::new(database.reports(), timeouts.query));
        let ingester = match &database {
            Some(database) if config.reports.report_ingestion => {
                let s3_endpoint = config.reports.s3_endpoint.clone().or(simulator_url.clone());
                let ingester = ingester(&config.reports, database, &datasync, s3_endpoint, &live, &metrics);
                background.0.push(ingester.clone().start());
                if let Some(retention) = config.reports.report_retention {
                    let store = database.reports();
                    let prune = move |cutoff| {
                        let store = store.clone();
                        async move { store.prune(cutoff).await }
                    };
                    let interval = config.history.history_prune_interval;
                    background.0.push(
                        tokio::spawn(prune_periodically("report", retention, interval, prune)).abort_handle(),
                    );
                }
                Some(ingester)
            }
            _ => None,
        };
        let policy = Policy {
            allow_http: config.webhooks.webhooks_allow_http,
            allow_private: config.webhooks.webhooks_allow_private,
        };
        let webhooks = WebhookService::new(
            database.as_ref().map(|database| (database.webhooks(), timeouts.query)),
            database.as_ref().map(|database| (database.control(), timeouts.control)),
            policy,
            config.webhooks.webhook_secret_overlap,
        );
        let dispatcher = match &database {
            Some(database) if config.webhooks.webhooks => {
                let dispatcher = dispatcher(&config, database, policy, &live, &metrics);
                background.0.push(dispatcher.clone().start());
                let store = database.webhooks();
                let prune = move |cutoff| {
                    let store = store.clone();
                    async move { store.prune(cutoff).await }
                };
                let (retention, interval) =
                    (config.webhooks.webhook_retention, config.history.history_prune_interval);
                background.0.push(
                    tokio::spawn(prune_periodically("webhook event", retention, interval, prune))
                        .abort_handle(),
                );
                Some(dispatcher)
            }
            _ => None,
        };
        let services = Services {
            executions: service.clone(),
            tasks: tasks.clone(),
            live: live.clone(),
            control,
            accounts: accounts.clone(),
            reports,
            webhooks,
        };
        let schemas = build_schemas(services, &config.limits);
        let sources = Sources {
            path: config.documents.path.clone(),
            table: database.as_ref().map(|database| (database.documents(), timeouts.query)),
        };
        let (documents, reloading) = TrustedDocuments::start(sources, config.documents.reload_interval)
            .await
            .context("reading --trusted-documents")?;
        background.0.extend(reloading);
        if config.documents.mode == TrustedDocumentsMode::Enforce && documents.is_empty() {
            tracing::warn!(
                "--trusted-documents-mode enforce without trusted documents (yet): every operation \
                 is refused except from operators and bypass keys"
            );
        }
        let gate = Gate::new(&config.limits, TrustPolicy::new(documents, &config.documents, metrics.clone()));
        let streaming = Streaming {
            schemas: schemas.clone(),
            gate: gate.clone(),
            fanout: Default::default(),
            rate_limits: rate_limits.clone(),
            metrics: metrics.clone(),
            max_upstream_calls: config.limits.max_upstream_calls,
            max_subscriptions: config.live.max_subscriptions_per_connection,
            operations_open: Default::default(),
        };
        let state = AppState::from(SharedState {
            schemas,
            gate,
            limits: config.limits.clone(),
            index: index.clone(),
            ready_without_database: config.history.ready_without_database,
            discovery,
            graphiql_page: http::graphiql_page(simulator.as_ref().map(|_| fleet::EXAMPLE_QUERY)).into(),
            live: live.clone(),
            live_config: config.live.clone(),
            rate_limits: rate_limits.clone(),
            auth,
            streaming,
            streaming_slots: http::StreamSlots::new(
                config.live.max_streaming_connections,
                config.live.max_streams_per_address,
                config.live.max_streams_per_caller,
            ),
            metrics: metrics.clone(),
            responses: ResponseCache::new(config.cache.response_cache_bytes, service.clone(), &metrics),
            executions: service,
            tasks,
            accounts,
            shutdown: stopping,
        });
        let entry = http::Entry::new(state.clone())?;
        let listener = bind(config.listen).await?;
        let admin = match config.admin_listen {
            Some(address) => Some((bind(address).await?, http::Entry::admin(state))),
            None => None,
        };
        Ok(Application {
            listener,
            entry,
            admin,
            connection_limits: ConnectionLimits::new(&config.limits),
            simulator,
            index,
            spool_dir: config.history.spool_dir.clone(),
            flush_timeout: config.history.history_flush_timeout,
            live,
            ingester,
            dispatcher,
            metrics,
            background,
            stop,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// The admin address (probes only), when one was configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
            .as_ref()
            .map(|(listener, _)| listener.local_addr().expect("a bound listener has an address"))
    }

    /// The in-process simulator, when the config asked for one.
    pub fn simulator(&self) -> Option<&Simulator> {
        self.simulator.as_ref()
    }

    /// Serves until `shutdown` resolves, finishes the requests in flight (closing WebSockets and
    /// event streams), hands this replica's leases over, then writes the snapshots still queued
    /// for the index, spooling to disk what it cannot write.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let Application {
            listener,
            entry,
            admin,
            connection_limits,
            simulator,
            index,
            spool_dir,
            flush_timeout,
            live,
            ingester,
            dispatcher,
            metrics,
            background,
            stop,
        } = self;
        let admin = admin.map(|(listener, entry)| {
            let limits = ConnectionLimits { max_connections: ADMIN_MAX_CONNECTIONS, ..connection_limits };
            let mut stopping = stop.subscribe();
            tokio::spawn(async move {
                let stopping = async move {
                    let _ = stopping.wait_for(|stopping| *stopping).await;
                };
                server::serve(listener, entry, limits, Default::default(), stopping).await
            })
        });
        let stop_streams = stop.clone();
        let shutdown = async move {
            shutdown.await;
            let _ = stop_streams.send(true);
        };
        let open_connections = metrics.levels().http_connections.clone();
        server::serve(listener, entry, connection_limits, open_connections, shutdown).await;
        let _ = stop.send(true);
        if let Some(admin) = admin {
            let _ = admin.await;
        }
        live.release().await;
        if let Some(ingester) = ingester {
            ingester.release().await;
        }
        if let Some(dispatcher) = dispatcher {
            dispatcher.release().await;
        }
        if let Some(index) = index {
            spool_unwritten(index.writer(), flush_timeout, &spool_dir).await;
        }
        // After the writer's backlog: the writer is one of them.
        drop(background);
        drop(simulator);
    }
}

/// The gateway's own tasks (watcher, listener, discovery sync, index writer, retention): they
/// end with the application,
/// also when its future is dropped rather than run to the end, so that no replica's work goes
/// on after it is gone (holding leases nobody renews for it).
#[derive(Default)]
struct Background(Vec<tokio::task::AbortHandle>);

impl Drop for Background {
    fn drop(&mut self) {
        self.0.iter().for_each(tokio::task::AbortHandle::abort);
    }
}

async fn bind(address: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address).await.with_context(|| format!("listening on {address}"))
}

/// Gives the writer `timeout` to empty its backlog, then writes what is left to the spool.
async fn spool_unwritten(writer: &IndexWriter, timeout: Duration, spool_dir: &std::path::Path) {
    if writer.flush(timeout).await == 0 {
        return;
    }
    let unwritten = writer.unwritten();
    match spool::write(spool_dir, &unwritten) {
        Ok(path) => tracing::warn!(
            spooled = unwritten.len(),
            path = %path.display(),
            "history database unavailable at shutdown; snapshots spooled, to be written at the next start"
        ),
        Err(error) => tracing::error!(
            lost = unwritten.len(),
            dir = %spool_dir.display(),
            %error,
            "could not spool the snapshots not yet written; they are lost"
        ),
    }
}

/// The role the gateway assumes in each of the simulator's accounts when it has several.
const SIMULATOR_ROLE_NAME: &str = "DataSyncGatewayReader";

/// Where DataSync, STS and Organizations are: as configured, or the in-process simulator
/// (`simulator_url`) for all three. A simulator of several accounts is served as an
/// organisation, by assuming a role in each, unless accounts are configured.
fn endpoints(config: &Config, simulator_url: Option<&str>) -> (DataSyncConfig, AccountsConfig) {
    let (mut datasync, mut accounts) = (config.datasync.clone(), config.accounts.clone());
    let Some(url) = simulator_url else { return (datasync, accounts) };
    datasync.datasync_endpoint = Some(url.to_owned());
    accounts.sts_endpoint = Some(url.to_owned());
    accounts.organizations_endpoint = Some(url.to_owned());
    let unconfigured = accounts.accounts_file.is_none() && accounts.organization_role_name.is_none();
    if config.datasync.simulator_accounts > 1 && unconfigured {
        accounts.organization_role_name = Some(SIMULATOR_ROLE_NAME.to_owned());
    }
    (datasync, accounts)
}

/// The regions served: as configured, else the simulator's, else the SDK's default region.
fn served_regions(config: &DataSyncConfig) -> Vec<Region> {
    if !config.regions.is_empty() {
        return config.regions.clone();
    }
    let names: Vec<String> = if config.simulator {
        fleet::REGIONS.map(str::to_owned).to_vec()
    } else {
        vec![crate::config::default_region()]
    };
    names
        .iter()
        .filter_map(|name| {
            Region::parse(name)
                .inspect_err(|error| tracing::error!(%error, "AWS_REGION is not a region; not served"))
                .ok()
        })
        .collect()
}

/// The database (migrated), when one is configured.
async fn open_database(config: &HistoryConfig) -> anyhow::Result<Option<Database>> {
    let Some(url) = &config.database_url else {
        tracing::warn!("no DATABASE_URL: serving live queries only; history and statistics are unavailable");
        return Ok(None);
    };
    Ok(Some(open_store(url, config.database_max_connections).await?))
}

/// The index with its writer (what the spool kept written first) and retention task, whose
/// tasks end with the application.
async fn open_index(
    database: &Database,
    config: &HistoryConfig,
    background: &mut Background,
) -> IndexService {
    let store = database.index();
    let timeouts = config.timeouts;
    match spool::replay(&config.spool_dir, &store, timeouts.write).await {
        Ok(replayed) if replayed.files > 0 => tracing::info!(
            files = replayed.files,
            snapshots = replayed.snapshots,
            "spooled descriptions written to the index"
        ),
        Ok(_) => {}
        Err(error) => tracing::error!(dir = %config.spool_dir.display(), %error, "could not read the spool"),
    }
    let (writer, task) = IndexWriter::start(store.clone(), config.history_backlog_capacity, timeouts.write);
    background.0.push(task);
    if let Some(retention) = config.history_retention {
        let pruned = store.clone();
        let prune = move |cutoff| {
            let store = pruned.clone();
            async move { store.prune(cutoff).await }
        };
        let task =
            tokio::spawn(prune_periodically("history", retention, config.history_prune_interval, prune));
        background.0.push(task.abort_handle());
    }
    tracing::info!("index ready");
    IndexService::new(store, writer, timeouts)
}

/// Connects and applies migrations. The URL may hold a password: errors do not repeat it.
pub async fn open_store(url: &str, max_connections: u32) -> anyhow::Result<Database> {
    let database = Database::connect_lazy(url, max_connections)
        .map_err(|_| anyhow::anyhow!("DATABASE_URL is not a valid PostgreSQL URL"))?;
    database.migrate().await.context("could not connect to the history database and apply migrations")?;
    Ok(database)
}

/// The start time before which executions are deleted; `None` when `retention` reaches past
/// the earliest representable time.
pub fn retention_cutoff(retention: Duration) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::Utc::now().checked_sub_signed(chrono::Duration::from_std(retention).ok()?)
}

/// Applies a retention (`what`'s) every `interval`: `prune` deletes what started before a cutoff.
async fn prune_periodically<F, Fut>(what: &'static str, retention: Duration, interval: Duration, prune: F)
where
    F: Fn(chrono::DateTime<chrono::Utc>) -> Fut,
    Fut: Future<Output = Result<u64, crate::store::StoreError>>,
{
    let mut ticks = tokio::time::interval(interval);
    loop {
        ticks.tick().await;
        // The same cutoff as `prune`'s: one that reaches before the earliest representable time
        // deletes nothing (`chrono`'s subtraction panicked there, ending this task).
        let Some(cutoff) = retention_cutoff(retention) else {
            tracing::warn!(
                what,
                ?retention,
                "the retention reaches before the earliest time; nothing is pruned"
            );
            return;
        };
        match prune(cutoff).await {
            Ok(deleted) => tracing::info!(what, deleted, %cutoff, "retention applied"),
            Err(error) => tracing::warn!(what, %error, "retention failed; will retry"),
        }
    }
}

/// The webhook sender of this replica: leases taken as `live`'s replica, for as long as its
/// executions' (`--lease-duration`).
fn dispatcher(
    config: &Config,
    database: &Database,
    policy: Policy,
    live: &Live,
    metrics: &Metrics,
) -> Dispatcher {
    let webhooks = &config.webhooks;
    let settings = DeliverySettings {
        schedule: webhooks.webhook_retry_schedule.clone(),
        timeout: webhooks.webhook_timeout,
        disable_after: webhooks.webhook_disable_after,
        max_in_flight: webhooks.webhook_max_in_flight as usize,
        poll_interval: webhooks.webhook_poll_interval,
        lease: config.live.lease_duration,
        policy,
    };
    Dispatcher::new(database.webhooks(), live.replica().to_owned(), settings, metrics.clone())
}

/// The report ingester of this replica: the queue in `database`, S3 reached with the accounts'
/// credentials (through `s3_endpoint` when set).
fn ingester(
    config: &ReportsConfig,
    database: &Database,
    datasync: &DataSyncClient,
    s3_endpoint: Option<String>,
    live: &Live,
    metrics: &Metrics,
) -> Ingester {
    let buckets = ReportBuckets::new(
        datasync.accounts().clone(),
        datasync.sdk_config().clone(),
        s3_endpoint,
        config.report_calls_per_second,
        metrics.clone(),
    );
    let settings = IngestionSettings {
        kept: config.report_records,
        max_records: config.report_max_records,
        concurrency: config.report_concurrency as usize,
        interval: config.report_interval,
    };
    Ingester::new(database.reports(), buckets, live.replica().to_owned(), settings, metrics.clone())
}

#[cfg(test)]
mod retention_tests {
    use super::retention_cutoff;
    use std::time::Duration;

    #[test]
    fn a_retention_past_the_earliest_time_has_no_cutoff_rather_than_a_panic() {
        let year = Duration::from_secs(31_557_600);
        assert!(retention_cutoff(year * 400).is_some());
        assert_eq!(retention_cutoff(year * 400_000), None, "--history-retention 400000y");
    }
}
