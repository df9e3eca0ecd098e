//! The command line: `serve`, `simulate`, `print-schema`, `migrate`, `keys`, `documents`, `prune`.
// The release build's MIR inlining nests async-graphql's resolver futures (the query root's
// `add_set`) past rustc's default layout query depth of 128; without this the optimised binary
// (the Docker image, the benchmarks) does not compile, while debug builds do.
#![recursion_limit = "256"]

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand};
use datasync_gateway::app::{open_store, retention_cutoff, Application};
use datasync_gateway::auth::keys::KeyStore;
use datasync_gateway::config::Config;
use datasync_gateway::model::AccountId;
use datasync_gateway::request::Role;
use datasync_gateway::service::documents::manifest::read_path;
use datasync_gateway::simulator::{Simulator, SimulatorConfig};
use datasync_gateway::store::documents::StoredDocument;
use datasync_gateway::telemetry::{LogFormat, Telemetry};

#[derive(Parser)]
#[command(version, about = "A GraphQL gateway over AWS DataSync task executions")]
struct Cli {
    #[command(subcommand)]
    command: Command,

    /// `text` for people, `json` (one object a line) for log pipelines.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text", global = true)]
    log_format: LogFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the GraphQL API (POST/GET /graphql, GraphiQL at /graphiql).
    Serve(Box<Config>),
    /// Run the DataSync simulator on its own, for the gateway or any AWS SDK to talk to.
    Simulate {
        #[arg(long, env = "SIMULATOR_LISTEN_ADDR", default_value = "127.0.0.1:9000")]
        listen: SocketAddr,
        /// The simulator's unit of time: a new execution of the quick task takes 31 ticks.
        #[arg(long, env = "SIMULATOR_TICK", default_value = "2s", value_parser = humantime::parse_duration)]
        tick: Duration,
        /// Finished executions added to the seeded ones (paging, volume, benchmarks).
        #[arg(long, env = "SIMULATOR_EXECUTIONS", default_value_t = 0)]
        executions: usize,
        /// The quick task starts on its own every this many ticks (0: never).
        #[arg(long, env = "SIMULATOR_SCHEDULE_TICKS", default_value_t = 60)]
        schedule_ticks: u32,
        /// Accounts in the simulated organisation, each with a copy of the seeded fleet.
        #[arg(long, env = "SIMULATOR_ACCOUNTS", default_value_t = 1)]
        accounts: usize,
    },
    /// Print the GraphQL schema (SDL), as committed in schema.graphql.
    PrintSchema {
        /// The Apollo Federation 2 subgraph SDL instead (schema.federation.graphql).
        #[arg(long)]
        federation: bool,
    },
    /// Apply the history database's migrations (serve also does this at start-up).
    Migrate {
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: String,
    },
    /// Manage API keys (in PostgreSQL, or in --api-keys-file): create, list, revoke.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
        #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
        database_url: Option<String>,
        #[arg(long, env = "API_KEYS_FILE", global = true)]
        api_keys_file: Option<std::path::PathBuf>,
    },
    /// Manage trusted documents in PostgreSQL: push a frontend's manifest before it deploys.
    Documents {
        #[command(subcommand)]
        action: DocumentsAction,
        #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
        database_url: Option<String>,
    },
    /// Delete recorded executions that started longer ago than --history-retention, once.
    Prune {
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: String,
        /// e.g. 400d
        #[arg(long, env = "HISTORY_RETENTION", value_parser = humantime::parse_duration)]
        history_retention: Duration,
    },
}

#[derive(Subcommand)]
enum KeysAction {
    /// Make a key; it is printed once and never stored.
    Create {
        /// reader (queries, subscriptions) or operator (also mutations).
        #[arg(long)]
        role: String,
        /// Who the key is for, e.g. billing-service.
        #[arg(long)]
        name: String,
        /// Limit the key to these accounts (comma-separated 12-digit ids): anything of another
        /// account is, to its holder, as if it did not exist. Default: every account.
        #[arg(long, value_delimiter = ',', value_parser = account_id)]
        accounts: Vec<AccountId>,
    },
    /// The keys (id, name, role, when created and revoked); never the keys themselves.
    List,
    /// Revoke a key by its id (the part after `dsg_`); gateways stop taking it within 30 s.
    Revoke { id: String },
}

#[derive(Subcommand)]
enum DocumentsAction {
    /// Register every document of a manifest (GraphQL Code Generator's persisted-documents.json,
    /// Apollo's persisted-query manifest, Relay's persisted_queries.json) or of a directory of
    /// them. Idempotent; refused whole if an id is already stored with another text. Gateways
    /// serve new documents within --trusted-documents-reload-interval.
    Push { file: std::path::PathBuf },
}

/// jemalloc rather than the system allocator: measured with `cargo bench --bench memory`, it
/// holds the cache in less memory and gives memory back after a spike (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Stack per runtime thread. GraphQL resolution nests deeply (a field's future holds its
/// children's), and unoptimised builds (`scripts/run`) make each frame several times larger:
/// tokio's 2 MiB default overflowed on a federated query with a nested task in a debug build.
const THREAD_STACK_BYTES: usize = 8 * 1024 * 1024;

fn main() -> anyhow::Result<()> {
    forget_empty_environment_variables();
    let cli = Cli::parse();
    // The log goes to stderr: standard output is for what a command prints (a new API key).
    let telemetry = Telemetry::init(cli.log_format)?;
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(THREAD_STACK_BYTES)
        .build()?
        .block_on(run(cli.command));
    telemetry.shutdown();
    result
}

/// An empty environment variable counts as unset, as compose files and CI templates pass
/// `DATABASE_URL: ""` to mean "none". Before any thread starts, while changing the environment
/// is sound.
fn forget_empty_environment_variables() {
    let empty: Vec<_> =
        std::env::vars_os().filter(|(_, value)| value.is_empty()).map(|(name, _)| name).collect();
    for name in empty {
        std::env::remove_var(name);
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(config) => {
            let app = Application::build(*config).await?;
            tracing::info!(
                "datasync-gateway listening on http://{0} (GraphiQL: http://{0}/graphiql)",
                app.local_addr()
            );
            app.run_until(shutdown_signal()).await;
            tracing::info!("stopped");
        }
        Command::Simulate { listen, tick, executions, schedule_ticks, accounts } => {
            let schedule_ticks = Some(schedule_ticks).filter(|ticks| *ticks > 0);
            let config = SimulatorConfig {
                extra_executions: executions,
                schedule_ticks,
                accounts,
                ..SimulatorConfig::with_tick(tick)
            };
            let simulator = Simulator::start(listen, config).await?;
            tokio::select! {
                () = simulator.wait() => {}
                () = shutdown_signal() => {}
            }
        }
        Command::PrintSchema { federation: false } => print!("{}", datasync_gateway::graphql::sdl()),
        Command::PrintSchema { federation: true } => {
            print!("{}", datasync_gateway::graphql::federation_sdl())
        }
        Command::Migrate { database_url } => {
            open_store(&database_url, 1).await?;
            tracing::info!("migrations applied");
        }
        Command::Keys { action, database_url, api_keys_file } => {
            let keys = match (api_keys_file, database_url) {
                (Some(path), _) => KeyStore::File(path),
                (None, Some(url)) => KeyStore::Database(open_store(&url, 1).await?.keys()),
                (None, None) => anyhow::bail!("say where keys are kept: --database-url or --api-keys-file"),
            };
            match action {
                KeysAction::Create { role, name, accounts } => {
                    let role =
                        Role::parse(&role).ok_or_else(|| anyhow::anyhow!("--role is reader or operator"))?;
                    let (key, record) = keys.create(&name, role, accounts).await?;
                    eprintln!(
                        "created key {} ({}, {}); it is shown once:",
                        record.id,
                        record.name,
                        role.as_str()
                    );
                    println!("{key}");
                }
                KeysAction::List => print_keys(&keys.list().await?),
                KeysAction::Revoke { id } => {
                    keys.revoke(&id).await?;
                    println!("revoked {id}");
                }
            }
        }
        Command::Documents { action: DocumentsAction::Push { file }, database_url } => {
            let Some(url) = database_url else {
                anyhow::bail!("say where documents are kept: --database-url (or DATABASE_URL)")
            };
            let mut documents = read_path(&file)?;
            documents.sort_by(|a, b| a.id.cmp(&b.id));
            documents.dedup_by(|a, b| a.id == b.id && a.text == b.text);
            let rows: Vec<StoredDocument> = documents
                .into_iter()
                .map(|document| StoredDocument { id: document.id, name: document.name, body: document.text })
                .collect();
            let pushed = open_store(&url, 1).await?.documents().push(&rows).await?;
            println!("{} documents added, {} already there", pushed.added, pushed.present);
        }
        Command::Prune { database_url, history_retention } => {
            let store = open_store(&database_url, 1).await?;
            let cutoff = retention_cutoff(history_retention)
                .ok_or_else(|| anyhow::anyhow!("--history-retention reaches before year 1"))?;
            let deleted = store.index().prune(cutoff).await?;
            println!("deleted {deleted} executions that started before {cutoff}");
        }
    }
    Ok(())
}

/// One line a key, in columns as wide as their widest value.
fn print_keys(records: &[datasync_gateway::auth::keys::KeyRecord]) {
    let time = |at: chrono::DateTime<chrono::Utc>| at.format("%Y-%m-%d %H:%M:%SZ").to_string();
    let rows: Vec<[String; 6]> = records
        .iter()
        .map(|record| {
            let revoked = record.revoked_at.map(time).unwrap_or_else(|| "-".into());
            [
                record.id.clone(),
                record.role.as_str().into(),
                time(record.created_at),
                revoked,
                accounts(&record.accounts),
                record.name.clone(),
            ]
        })
        .collect();
    let header = ["id", "role", "created", "revoked", "accounts", "name"].map(String::from);
    let mut widths = header.clone().map(|title| title.len());
    for row in &rows {
        for (width, value) in widths.iter_mut().zip(row) {
            *width = (*width).max(value.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> =
            row.iter().zip(widths).map(|(value, width)| format!("{value:<width$}")).collect();
        println!("{}", cells.join("  ").trim_end());
    }
}

/// A key's accounts, or `*` for every account.
fn accounts(accounts: &[AccountId]) -> String {
    if accounts.is_empty() {
        return "*".into();
    }
    accounts.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

fn account_id(value: &str) -> Result<AccountId, String> {
    AccountId::parse(value).map_err(|_| "an account id is 12 digits".into())
}

/// Ctrl-C or SIGTERM (what `docker stop` and Kubernetes send).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
