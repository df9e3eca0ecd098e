//! The gateway's configuration: one struct, read from flags and environment variables by clap,
//! built directly by tests. Every setting has a default that works without an AWS account.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use crate::model::{AccountId, Region};

/// Everything `serve` needs.
#[derive(Args, Clone, Debug)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// A second address serving only /healthz, /readyz and /metrics, with connections of its
    /// own, so that probes and scrapes keep answering while the main address is flooded. Off by
    /// default.
    #[arg(long, env = "ADMIN_LISTEN_ADDR")]
    pub admin_listen: Option<SocketAddr>,

    #[command(flatten)]
    pub datasync: DataSyncConfig,

    #[command(flatten)]
    pub accounts: AccountsConfig,

    #[command(flatten)]
    pub cache: CacheConfig,

    #[command(flatten)]
    pub history: HistoryConfig,

    #[command(flatten)]
    pub reports: ReportsConfig,

    #[command(flatten)]
    pub webhooks: WebhooksConfig,

    #[command(flatten)]
    pub limits: LimitsConfig,

    #[command(flatten)]
    pub live: LiveConfig,

    #[command(flatten)]
    pub auth: AuthConfig,

    #[command(flatten)]
    pub documents: TrustedDocumentsConfig,
}

/// Trusted documents: the operations frontends ship, and what happens to others.
#[derive(Args, Clone, Debug)]
pub struct TrustedDocumentsConfig {
    /// A manifest of trusted documents, or a directory of `*.json` manifests: GraphQL Code
    /// Generator's `persisted-documents.json`, Apollo's persisted-query manifest or Relay's
    /// `persisted_queries.json`. Read again when it changes and on SIGHUP. Documents pushed
    /// with `datasync-gateway documents push` are served too, from the database.
    #[arg(id = "trusted_documents", long = "trusted-documents", env = "TRUSTED_DOCUMENTS")]
    pub path: Option<std::path::PathBuf>,

    /// `off`: any operation runs (trusted ones may be sent by id); `audit`: any operation runs,
    /// and those not trusted are counted and logged with their hash; `enforce`: those not
    /// trusted are refused with PERSISTED_QUERY_REQUIRED, except from operators and the keys of
    /// --trusted-documents-bypass-keys.
    #[arg(
        id = "trusted_documents_mode",
        long = "trusted-documents-mode",
        env = "TRUSTED_DOCUMENTS_MODE",
        value_enum,
        default_value = "off"
    )]
    pub mode: TrustedDocumentsMode,

    /// Callers that may send operations that are not trusted documents whatever their role:
    /// API key ids (as `keys list` shows them) or subjects (`key:<id>`, `jwt:<issuer>/<subject>`),
    /// comma-separated.
    #[arg(
        long = "trusted-documents-bypass-keys",
        env = "TRUSTED_DOCUMENTS_BYPASS_KEYS",
        value_delimiter = ','
    )]
    pub bypass_keys: Vec<String>,

    /// How often the manifests are checked for changes and the database for new documents.
    #[arg(long = "trusted-documents-reload-interval", env = "TRUSTED_DOCUMENTS_RELOAD_INTERVAL", default_value = "10s", value_parser = positive_duration)]
    pub reload_interval: Duration,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrustedDocumentsMode {
    Off,
    Audit,
    Enforce,
}

/// Who may call the gateway.
#[derive(Args, Clone, Debug)]
pub struct AuthConfig {
    /// `required`: every GraphQL request needs an API key (or JWT); `none`: anyone who can reach
    /// the port is an operator. Default: `none` on a loopback address or in simulator mode (unless
    /// --api-keys-file is given), `required` anywhere else, where the gateway refuses to start
    /// without a way to check credentials.
    #[arg(long = "auth", env = "AUTH", value_enum)]
    pub mode: Option<AuthMode>,

    /// API keys in a JSON file (managed with `datasync-gateway keys … --api-keys-file`), for the
    /// database-less mode; with --database-url (and no file) keys live in PostgreSQL.
    #[arg(long, env = "API_KEYS_FILE")]
    pub api_keys_file: Option<std::path::PathBuf>,

    #[command(flatten)]
    pub jwt: JwtConfig,
}

/// JWT bearer tokens from an identity provider.
#[derive(Args, Clone, Debug)]
pub struct JwtConfig {
    /// Where the identity provider publishes its signing keys (JWKS); turns JWTs on.
    #[arg(long, env = "JWT_JWKS_URL")]
    pub jwt_jwks_url: Option<String>,

    /// The `iss` tokens must have.
    #[arg(long, env = "JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// The `aud` tokens must have.
    #[arg(long, env = "JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// Clock skew allowed on `exp` and `nbf`.
    #[arg(long, env = "JWT_LEEWAY", default_value = "60s", value_parser = humantime::parse_duration)]
    pub jwt_leeway: Duration,

    /// The claim holding the role: `operator` (or a list or space-separated string containing
    /// it) makes an operator; anything else a reader.
    #[arg(long, env = "JWT_ROLE_CLAIM", default_value = "role")]
    pub jwt_role_claim: String,

    /// The claim naming the accounts a token may see (a list, or a string separated by spaces
    /// or commas; `*` for every account). When set, a token without it is refused. Default:
    /// tokens see every account.
    #[arg(long, env = "JWT_ACCOUNTS_CLAIM")]
    pub jwt_accounts_claim: Option<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMode {
    None,
    Required,
}

/// Live following: the watcher, subscriptions, EventBridge hints, replicas.
#[derive(Args, Clone)]
pub struct LiveConfig {
    /// How often each running execution is polled (QUEUED ones half as often), whatever the
    /// number of subscribers.
    #[arg(long, env = "POLL_INTERVAL", default_value = "5s", value_parser = positive_duration)]
    pub poll_interval: Duration,

    /// How long a replica's lease on an execution (and on the discovery job) lasts unless
    /// renewed; a dead replica's executions are taken over within two of these.
    #[arg(long, env = "LEASE_DURATION", default_value = "30s", value_parser = positive_duration)]
    pub lease_duration: Duration,

    /// Shared secret EventBridge sends in the `X-EventBridge-Secret` header to
    /// `POST /events/eventbridge`; the endpoint is off without one.
    #[arg(long, env = "EVENTBRIDGE_SECRET", hide_env_values = true)]
    pub eventbridge_secret: Option<String>,

    /// Operations (subscriptions) open at once on one WebSocket.
    #[arg(long, env = "MAX_SUBSCRIPTIONS_PER_CONNECTION", default_value_t = 100)]
    pub max_subscriptions_per_connection: usize,

    /// WebSockets and event streams open at once in this process (beyond: HTTP 503). An eighth
    /// of them at most may be WebSockets that have not sent `connection_init` yet.
    #[arg(long, env = "MAX_STREAMING_CONNECTIONS", default_value_t = 2_048)]
    pub max_streaming_connections: usize,

    /// WebSockets and event streams open at once from one client address (beyond: HTTP 429).
    #[arg(long, env = "MAX_STREAMS_PER_ADDRESS", default_value_t = 128)]
    pub max_streams_per_address: usize,

    /// WebSockets and event streams open at once for one authenticated caller (an API key, a
    /// JWT subject), from any address (beyond: HTTP 429, or 4429 after `connection_init`).
    #[arg(long, env = "MAX_STREAMS_PER_CALLER", default_value_t = 512)]
    pub max_streams_per_caller: usize,

    /// How long a new WebSocket may take to send `connection_init` (with or without
    /// authentication); then it is closed with 4408.
    #[arg(long, env = "CONNECTION_INIT_TIMEOUT", default_value = "10s", value_parser = positive_duration)]
    pub connection_init_timeout: Duration,

    /// How often an idle WebSocket or event stream is pinged; a WebSocket that answers nothing
    /// for two of these is closed.
    #[arg(long, env = "KEEPALIVE_INTERVAL", default_value = "15s", value_parser = positive_duration)]
    pub keepalive_interval: Duration,
}

impl std::fmt::Debug for LiveConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveConfig")
            .field("poll_interval", &self.poll_interval)
            .field("lease_duration", &self.lease_duration)
            .field("eventbridge_secret", &self.eventbridge_secret.as_ref().map(|_| "<redacted>"))
            .field("max_subscriptions_per_connection", &self.max_subscriptions_per_connection)
            .field("max_streaming_connections", &self.max_streaming_connections)
            .field("max_streams_per_address", &self.max_streams_per_address)
            .field("max_streams_per_caller", &self.max_streams_per_caller)
            .field("connection_init_timeout", &self.connection_init_timeout)
            .field("keepalive_interval", &self.keepalive_interval)
            .finish()
    }
}

/// Which AWS accounts are served, and how each is reached. Without any of these, the gateway
/// serves the account of its own credentials.
#[derive(Args, Clone, Debug)]
pub struct AccountsConfig {
    /// A TOML file of the accounts served: `[[account]]` tables with `id`, and optionally
    /// `name`, `role_arn` (to assume; none for the gateway's own account), `external_id`,
    /// `session_name` and `regions` (default: --regions). ARNs of other accounts are refused.
    #[arg(long, env = "ACCOUNTS_FILE", conflicts_with = "organization_role_name")]
    pub accounts_file: Option<std::path::PathBuf>,

    /// Serve every active account of the AWS Organization, assuming the role of this name in
    /// each (the gateway's credentials, or --organization-management-role-arn, must be allowed
    /// organizations:ListAccounts in the management account).
    #[arg(long, env = "ORGANIZATION_ROLE_NAME")]
    pub organization_role_name: Option<String>,

    /// A role in the management account to assume for listing the organisation's accounts
    /// (default: the gateway's own credentials).
    #[arg(long, env = "ORGANIZATION_MANAGEMENT_ROLE_ARN", requires = "organization_role_name")]
    pub organization_management_role_arn: Option<String>,

    /// The external id the member accounts' roles require, if any.
    #[arg(
        long,
        env = "ORGANIZATION_EXTERNAL_ID",
        requires = "organization_role_name",
        hide_env_values = true
    )]
    pub organization_external_id: Option<String>,

    /// Serve only the accounts directly in these organizational units (comma-separated `ou-…`
    /// ids; default: every account).
    #[arg(long, env = "ORGANIZATION_INCLUDE_OU", value_delimiter = ',', requires = "organization_role_name")]
    pub organization_include_ou: Vec<String>,

    /// Accounts of the organisation not to serve (comma-separated ids).
    #[arg(long, env = "ORGANIZATION_EXCLUDE_ACCOUNTS", value_delimiter = ',', value_parser = account_id, requires = "organization_role_name")]
    pub organization_exclude_accounts: Vec<AccountId>,

    /// How often the organisation's accounts are listed again: accounts that joined are served
    /// from then on, accounts that left are no longer synced.
    #[arg(long, env = "ACCOUNTS_REFRESH", default_value = "10m", value_parser = positive_duration)]
    pub accounts_refresh: Duration,

    /// Send STS calls (AssumeRole) to this URL instead of AWS's (a VPC endpoint, a simulator).
    /// The standard AWS_ENDPOINT_URL_STS works too.
    #[arg(long, env = "STS_ENDPOINT")]
    pub sts_endpoint: Option<String>,

    /// Send Organizations calls to this URL instead of AWS's. The standard
    /// AWS_ENDPOINT_URL_ORGANIZATIONS works too.
    #[arg(long, env = "ORGANIZATIONS_ENDPOINT")]
    pub organizations_endpoint: Option<String>,

    /// How long an assumed role's credentials last; they are renewed shortly before.
    #[arg(long, env = "ROLE_SESSION_LENGTH", default_value = "1h", value_parser = role_session_length)]
    pub role_session_length: Duration,
}

/// Where DataSync is and how hard to try.
#[derive(Args, Clone, Debug)]
pub struct DataSyncConfig {
    /// Run the built-in DataSync simulator in-process and use it instead of AWS (no account needed).
    #[arg(long, env = "DATASYNC_SIMULATOR", conflicts_with = "datasync_endpoint")]
    pub simulator: bool,

    /// The simulator's unit of time: a new execution of its quick task takes 31 ticks.
    #[arg(long, env = "SIMULATOR_TICK", default_value = "2s", value_parser = humantime::parse_duration)]
    pub simulator_tick: Duration,

    /// Finished executions the simulator adds to its seeded ones (paging, volume, benchmarks).
    #[arg(long, env = "SIMULATOR_EXECUTIONS", default_value_t = 0)]
    pub simulator_executions: usize,

    /// The simulator's quick task starts on its own every this many ticks (0: never), so there is
    /// always something new for the discovery sync to find.
    #[arg(long, env = "SIMULATOR_SCHEDULE_TICKS", default_value_t = 60)]
    pub simulator_schedule_ticks: u32,

    /// Accounts in the simulator's organisation, each with a copy of the seeded fleet; above 1,
    /// the gateway serves them all by assuming a role in each, as with --organization-role-name.
    #[arg(long, env = "SIMULATOR_ACCOUNTS", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub simulator_accounts: u16,

    /// Send DataSync calls to this URL (moto, a standalone simulator, a VPC endpoint) instead of the
    /// regional AWS endpoint. The standard AWS_ENDPOINT_URL_DATASYNC works too.
    #[arg(long, env = "DATASYNC_ENDPOINT")]
    pub datasync_endpoint: Option<String>,

    /// AWS regions served (comma-separated): ARNs of other regions are refused without an AWS
    /// call. Default: AWS_REGION (else us-east-1); with --simulator, the simulator's regions.
    #[arg(long, env = "DATASYNC_REGIONS", value_delimiter = ',', value_parser = region)]
    pub regions: Vec<Region>,

    /// Sign requests with placeholder credentials instead of the AWS credential chain
    /// (for moto or the simulator; implied by --simulator).
    #[arg(long, env = "DATASYNC_FAKE_CREDENTIALS")]
    pub fake_credentials: bool,

    /// Attempts per DataSync call, the first included; throttling and server errors are retried
    /// with exponential backoff and jitter.
    #[arg(long = "datasync-max-attempts", env = "DATASYNC_MAX_ATTEMPTS", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub max_attempts: u32,

    /// Backoff before the first retry; it grows exponentially from here.
    #[arg(long = "datasync-initial-backoff", env = "DATASYNC_INITIAL_BACKOFF", default_value = "200ms", value_parser = humantime::parse_duration)]
    pub initial_backoff: Duration,

    /// Time limit for one DataSync call, all attempts and backoff included.
    #[arg(long = "datasync-call-timeout", env = "DATASYNC_CALL_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub call_timeout: Duration,

    /// Time limit for one attempt of a DataSync call.
    #[arg(long = "datasync-attempt-timeout", env = "DATASYNC_ATTEMPT_TIMEOUT", default_value = "3s", value_parser = humantime::parse_duration)]
    pub attempt_timeout: Duration,

    /// DataSync calls per second per account and region, client reads and the discovery sync together, with
    /// bursts of five seconds' worth (the sync yields when the budget runs short). AWS publishes no limit; this stays well inside
    /// what an account is usually allowed, so the gateway cannot eat the account's API quota.
    #[arg(long = "datasync-calls-per-second", env = "DATASYNC_CALLS_PER_SECOND", default_value_t = 10.0)]
    pub calls_per_second: f64,

    /// DataSync calls in flight at once, across all clients; more wait. Keeps a burst of cold
    /// queries from turning into a burst of throttled calls.
    #[arg(long = "datasync-max-concurrency", env = "DATASYNC_MAX_CONCURRENCY", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_concurrency: u32,
}

/// How long descriptions are reused before DataSync is asked again.
#[derive(Args, Clone, Debug)]
pub struct CacheConfig {
    /// Memory for cached executions, in bytes (each weighed by an estimate of its size, about
    /// 2 KB); the least used are dropped beyond. The default suits a 512 MB container.
    #[arg(long = "cache-max-bytes", env = "CACHE_MAX_BYTES", default_value_t = 128 * 1024 * 1024)]
    pub max_bytes: u64,

    /// Task descriptions kept in memory.
    #[arg(long = "task-cache-capacity", env = "TASK_CACHE_CAPACITY", default_value_t = 10_000)]
    pub task_capacity: u64,

    /// Reuse of a finished execution (SUCCESS or ERROR, report settled): it will not change again.
    #[arg(long = "cache-finished-ttl", env = "CACHE_FINISHED_TTL", default_value = "1h", value_parser = humantime::parse_duration)]
    pub finished_ttl: Duration,

    /// Reuse of an execution still running: its counters move, so keep this short.
    #[arg(long = "cache-running-ttl", env = "CACHE_RUNNING_TTL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub running_ttl: Duration,

    /// Reuse of a task's description and of each region's task list (the discovery sync
    /// refreshes the lists on its own schedule).
    #[arg(long = "cache-task-ttl", env = "CACHE_TASK_TTL", default_value = "60s", value_parser = humantime::parse_duration)]
    pub task_ttl: Duration,

    /// Reuse of each region's location list (locations rarely change).
    #[arg(long = "cache-location-ttl", env = "CACHE_LOCATION_TTL", default_value = "5m", value_parser = humantime::parse_duration)]
    pub location_ttl: Duration,

    /// Reuse of "DataSync does not know this ARN", so a client retrying a typo costs one call.
    #[arg(long = "cache-not-found-ttl", env = "CACHE_NOT_FOUND_TTL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub not_found_ttl: Duration,

    /// Bytes of whole responses kept for replay to repeated queries (the same document,
    /// operation and variables) while every execution they read is unchanged in the cache; 0
    /// turns the response cache off.
    #[arg(long = "response-cache-bytes", env = "RESPONSE_CACHE_BYTES", default_value_t = 32 * 1024 * 1024)]
    pub response_cache_bytes: u64,

    /// When DataSync fails (throttling, an outage), a client's read is answered with the last
    /// description younger than this, marked STALE with a warning; 0 turns it off.
    #[arg(long = "stale-if-error", env = "STALE_IF_ERROR", default_value = "5m", value_parser = humantime::parse_duration)]
    pub stale_if_error: Duration,
}

/// The database: the index of executions (history is its finished part), the sync, retention. Its `Debug` leaves out the database URL, which may hold a password.
#[derive(Args, Clone)]
pub struct HistoryConfig {
    /// PostgreSQL for execution history, e.g. postgres://user:password@host/db. Without it the
    /// gateway serves live queries only. Migrations run at start-up.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Database connections in the pool.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 10)]
    pub database_max_connections: u32,

    /// Snapshots waiting to be written while the database is slow or down; beyond this they are
    /// dropped (and recorded again the next time DataSync is asked).
    #[arg(long, env = "HISTORY_BACKLOG_CAPACITY", default_value_t = 100_000)]
    pub history_backlog_capacity: usize,

    /// Delete executions that started longer ago than this (e.g. 400d); kept forever when unset.
    #[arg(long, env = "HISTORY_RETENTION", value_parser = humantime::parse_duration)]
    pub history_retention: Option<Duration>,

    /// How often retention is applied (at least 1s).
    #[arg(long, env = "HISTORY_PRUNE_INTERVAL", default_value = "1h", value_parser = non_zero_duration)]
    pub history_prune_interval: Duration,

    /// Where snapshots that could not be written before shutdown are kept, to be written at
    /// the next start.
    #[arg(long, env = "SPOOL_DIR", default_value = "spool")]
    pub spool_dir: std::path::PathBuf,

    /// `/readyz` answers 503 while the configured database cannot be reached, so that a load
    /// balancer sends clients to a replica that has it. `true` keeps this replica ready (live
    /// queries and subscriptions still work) for deployments that prefer that.
    #[arg(long, env = "READY_WITHOUT_DATABASE", default_value = "false", action = clap::ArgAction::Set)]
    pub ready_without_database: bool,

    /// How long a graceful shutdown waits for queued snapshots to be written before spooling them.
    #[arg(long, env = "HISTORY_FLUSH_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub history_flush_timeout: Duration,

    /// The discovery sync (on when a database is configured): lists every served region's tasks
    /// and executions on a schedule and keeps the index current. `--discovery=off` to disable.
    #[arg(long, env = "DISCOVERY", default_value = "on", value_parser = on_off, action = clap::ArgAction::Set)]
    pub discovery: bool,

    /// How often the discovery sync lists each region.
    #[arg(long, env = "DISCOVERY_INTERVAL", default_value = "30s", value_parser = non_zero_duration)]
    pub discovery_interval: Duration,

    /// Client-side time limits on database calls (not flags: tests shorten them).
    #[arg(skip)]
    pub timeouts: StoreTimeouts,
}

/// Task reports: which executions' per-file records are stored, and how they are read from S3.
#[derive(Args, Clone, Debug)]
pub struct ReportsConfig {
    /// Store the per-file records of every STANDARD task report DataSync writes (needs a
    /// database), so that `report { files }`, `reportFiles` and `failingPaths` can answer.
    /// `--report-ingestion=off` to disable.
    #[arg(long, env = "REPORT_INGESTION", default_value = "on", value_parser = on_off, action = clap::ArgAction::Set)]
    pub report_ingestion: bool,

    /// Which records are kept: `errors` (failures, mismatches, skips for a reason) or `all`.
    #[arg(long, env = "REPORT_RECORDS", value_enum, default_value = "errors")]
    pub report_records: crate::model::RecordsKept,

    /// Most records kept of one execution; the parts after the one that reaches it are not read,
    /// and the report says it was cut (`ingestion { truncated }`).
    #[arg(long, env = "REPORT_MAX_RECORDS", default_value_t = 1_000_000, value_parser = clap::value_parser!(i64).range(1..))]
    pub report_max_records: i64,

    /// Delete stored report records of executions that started longer ago than this (the
    /// executions stay). Default: as long as the executions themselves (--history-retention).
    #[arg(long, env = "REPORT_RETENTION", value_parser = humantime::parse_duration)]
    pub report_retention: Option<Duration>,

    /// Reports one replica reads at once.
    #[arg(long, env = "REPORT_CONCURRENCY", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub report_concurrency: u32,

    /// S3 calls per second per account and region for reading reports (their own budget, apart
    /// from DataSync's).
    #[arg(long, env = "REPORT_CALLS_PER_SECOND", default_value_t = 20.0)]
    pub report_calls_per_second: f64,

    /// How often a replica looks for reports to read.
    #[arg(long, env = "REPORT_INTERVAL", default_value = "5s", value_parser = positive_duration)]
    pub report_interval: Duration,

    /// Send S3 calls (task reports) to this URL instead of AWS's, path-style (moto, a VPC
    /// endpoint). The standard AWS_ENDPOINT_URL_S3 works too. With --simulator, its own S3.
    #[arg(long, env = "S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
}

/// Webhooks: where they may point, and how they are sent.
#[derive(Args, Clone, Debug)]
pub struct WebhooksConfig {
    /// Send webhooks from this replica (needs a database). `--webhooks=off` leaves the sending
    /// to other replicas; endpoints can still be managed.
    #[arg(long, env = "WEBHOOKS", default_value = "on", value_parser = on_off, action = clap::ArgAction::Set)]
    pub webhooks: bool,

    /// Allow `http://` endpoint URLs (default: `https://` only).
    #[arg(long, env = "WEBHOOKS_ALLOW_HTTP")]
    pub webhooks_allow_http: bool,

    /// Allow endpoints on loopback, private, link-local and other non-public addresses (checked
    /// at creation and again against the address each delivery connects to).
    #[arg(long, env = "WEBHOOKS_ALLOW_PRIVATE")]
    pub webhooks_allow_private: bool,

    /// The wait before each attempt of a delivery, the first included, comma-separated; after
    /// the last the delivery is FAILED. A receiver's `Retry-After` can lengthen a wait.
    #[arg(long, env = "WEBHOOK_RETRY_SCHEDULE", default_value = "0s,5s,5m,30m,2h,5h,10h,10h", value_delimiter = ',', value_parser = humantime::parse_duration)]
    pub webhook_retry_schedule: Vec<Duration>,

    /// How long an endpoint has to answer; a 2xx within it is a delivery.
    #[arg(long, env = "WEBHOOK_TIMEOUT", default_value = "15s", value_parser = positive_duration)]
    pub webhook_timeout: Duration,

    /// An endpoint whose every attempt has failed for this long is disabled, with the reason.
    #[arg(long, env = "WEBHOOK_DISABLE_AFTER", default_value = "5d", value_parser = positive_duration)]
    pub webhook_disable_after: Duration,

    /// Deliveries in flight at once from this replica, over all endpoints (each endpoint has
    /// one at a time).
    #[arg(long, env = "WEBHOOK_MAX_IN_FLIGHT", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub webhook_max_in_flight: u32,

    /// How long the old secret still signs after `rotateWebhookSecret`, unless the call says.
    #[arg(long, env = "WEBHOOK_SECRET_OVERLAP", default_value = "24h", value_parser = humantime::parse_duration)]
    pub webhook_secret_overlap: Duration,

    /// Delete events and their delivery log after this long.
    #[arg(long, env = "WEBHOOK_RETENTION", default_value = "7d", value_parser = positive_duration)]
    pub webhook_retention: Duration,

    /// How often a replica looks for new events to send.
    #[arg(long, env = "WEBHOOK_POLL_INTERVAL", default_value = "200ms", value_parser = positive_duration)]
    pub webhook_poll_interval: Duration,
}

/// How long each kind of database call may take before its caller gives up on it. A database
/// that stops answering on an open connection (a failover, a silent network) would otherwise
/// hold the caller until TCP gives up.
#[derive(Clone, Copy, Debug)]
pub struct StoreTimeouts {
    /// A settled execution read on a client's read path, before DataSync is asked instead.
    pub read: Duration,
    /// How long that path skips the database after such a read failed.
    pub read_pause: Duration,
    /// Index pages, counts and statistics, before the client is told HISTORY_UNAVAILABLE.
    pub query: Duration,
    /// One batch of the index writer, one step of the discovery sync, a spool replay.
    pub write: Duration,
    /// Lease, heartbeat and NOTIFY calls of the watcher and the listener.
    pub coordination: Duration,
    /// Idempotency keys and the audit log of starts and cancels.
    pub control: Duration,
}

impl Default for StoreTimeouts {
    fn default() -> Self {
        StoreTimeouts {
            read: Duration::from_secs(1),
            read_pause: Duration::from_secs(5),
            query: Duration::from_secs(20),
            write: Duration::from_secs(30),
            coordination: Duration::from_secs(10),
            control: Duration::from_secs(5),
        }
    }
}

/// Limits that keep one client from taking the gateway down.
#[derive(Args, Clone, Debug)]
pub struct LimitsConfig {
    /// GraphQL requests per second per caller (its key or JWT subject, else its IP address),
    /// with a burst of twice as many;
    /// beyond, HTTP 429 `RATE_LIMITED` with `Retry-After`. 0 turns it off.
    #[arg(long, env = "RATE_LIMIT", default_value_t = 100)]
    pub rate_limit: u32,

    /// Largest request body accepted, in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,

    /// Deepest selection set accepted (introspection has a fixed limit of its own).
    #[arg(long, env = "MAX_QUERY_DEPTH", default_value_t = 12)]
    pub max_query_depth: u32,

    /// Most fields a query may select once its fragments are expanded, counted before anything
    /// else is done with it.
    #[arg(long, env = "MAX_QUERY_SELECTIONS", default_value_t = 2_000)]
    pub max_query_selections: u64,

    /// Most aliases in a query.
    #[arg(long, env = "MAX_QUERY_ALIASES", default_value_t = 30)]
    pub max_query_aliases: u64,

    /// Highest query complexity accepted: fields selected, multiplied by list sizes (`arns`,
    /// `first`/`last`; statistics count as 100 groups).
    #[arg(long, env = "MAX_QUERY_COMPLEXITY", default_value_t = 20_000)]
    pub max_query_complexity: usize,

    /// Most DataSync calls one HTTP request may cause, across all its operations and fields.
    #[arg(long, env = "MAX_UPSTREAM_CALLS", default_value_t = 100)]
    pub max_upstream_calls: usize,

    /// Largest GraphQL response sent, in bytes; a larger answer is replaced by a RESPONSE_TOO_LARGE error.
    #[arg(long, env = "MAX_RESPONSE_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub max_response_bytes: usize,

    /// Answer introspection (`__schema`, `__type`); `--introspection=false` in production hides
    /// the schema from clients (GraphiQL then has no docs or autocompletion; the schema is in
    /// schema.graphql).
    #[arg(long, env = "INTROSPECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub introspection: bool,

    /// Most operations in one batched request.
    #[arg(long, env = "MAX_BATCH_OPERATIONS", default_value_t = 10)]
    pub max_batch_operations: usize,

    /// Time limit for one HTTP request.
    #[arg(long, env = "REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// Connections served at once; more are closed as soon as they are accepted.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 4_096)]
    pub max_connections: usize,

    /// Time a client has to send a request's headers, and longest a kept-alive connection waits
    /// for its next request.
    #[arg(long, env = "HEADER_READ_TIMEOUT", default_value = "10s", value_parser = non_zero_duration)]
    pub header_read_timeout: Duration,

    /// A connection on which no byte moves either way for this long, while no request is being
    /// handled, is closed (e.g. a client that stopped reading its response).
    #[arg(long, env = "CONNECTION_IDLE_TIMEOUT", default_value = "60s", value_parser = non_zero_duration)]
    pub connection_idle_timeout: Duration,

    /// A connection whose client takes none of what is being written to it for this long (an
    /// event stream or a large answer nobody reads) is closed.
    #[arg(long, env = "WRITE_TIMEOUT", default_value = "30s", value_parser = non_zero_duration)]
    pub write_timeout: Duration,

    /// Requests served on one kept-alive connection before it is closed.
    #[arg(long, env = "MAX_REQUESTS_PER_CONNECTION", default_value_t = 10_000)]
    pub max_requests_per_connection: u64,

    /// Origins allowed to call the API from a browser (repeat or comma-separate); none by default.
    #[arg(long = "cors-allow-origin", env = "CORS_ALLOW_ORIGINS", value_delimiter = ',')]
    pub cors_allow_origins: Vec<String>,
}

impl std::fmt::Debug for HistoryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoryConfig")
            .field("database_url", &self.database_url.as_ref().map(|_| "<redacted>"))
            .field("database_max_connections", &self.database_max_connections)
            .field("history_backlog_capacity", &self.history_backlog_capacity)
            .field("history_retention", &self.history_retention)
            .field("history_prune_interval", &self.history_prune_interval)
            .field("spool_dir", &self.spool_dir)
            .field("history_flush_timeout", &self.history_flush_timeout)
            .field("ready_without_database", &self.ready_without_database)
            .field("discovery", &self.discovery)
            .field("discovery_interval", &self.discovery_interval)
            .field("timeouts", &self.timeouts)
            .finish()
    }
}

fn region(value: &str) -> Result<Region, String> {
    Region::parse(value).map_err(|_| "a region looks like us-east-1".into())
}

fn account_id(value: &str) -> Result<AccountId, String> {
    AccountId::parse(value).map_err(|_| "an account id is 12 digits".into())
}

/// STS grants sessions of 15 minutes to 12 hours (a role's own maximum may be lower).
fn role_session_length(value: &str) -> Result<Duration, String> {
    match humantime::parse_duration(value) {
        Ok(length) if (Duration::from_secs(900)..=Duration::from_secs(43_200)).contains(&length) => {
            Ok(length)
        }
        Ok(_) => Err("must be between 15m and 12h".into()),
        Err(error) => Err(error.to_string()),
    }
}

/// AWS_REGION, AWS_DEFAULT_REGION, else us-east-1.
pub fn default_region() -> String {
    std::env::var("AWS_REGION")
        .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|_| "us-east-1".to_owned())
}

fn on_off(value: &str) -> Result<bool, String> {
    match value {
        "on" | "true" => Ok(true),
        "off" | "false" => Ok(false),
        _ => Err("on or off".into()),
    }
}

fn non_zero_duration(value: &str) -> Result<Duration, String> {
    match humantime::parse_duration(value) {
        Ok(duration) if duration >= Duration::from_secs(1) => Ok(duration),
        Ok(_) => Err("must be at least 1s".into()),
        Err(error) => Err(error.to_string()),
    }
}

/// At least 10 ms (tests poll fast; production takes seconds).
fn positive_duration(value: &str) -> Result<Duration, String> {
    match humantime::parse_duration(value) {
        Ok(duration) if duration >= Duration::from_millis(10) => Ok(duration),
        Ok(_) => Err("must be at least 10ms".into()),
        Err(error) => Err(error.to_string()),
    }
}

impl Config {
    /// What `serve` with no flags would use: the defaults, overridden by the environment
    /// variables that are set. Tests and the benchmark start from it.
    pub fn defaults() -> Self {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            config: Config,
        }
        <Defaults as clap::Parser>::parse_from(["defaults"]).config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_database_password() {
        let mut config = Config::defaults();
        config.history.database_url = Some("postgres://gateway:s3cret@db/history".into());
        config.live.eventbridge_secret = Some("hunter2".into());
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret") && !shown.contains("hunter2"), "{shown}");
    }
}
