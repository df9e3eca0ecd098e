//! PostgreSQL: one pool, and a room per kind of data, each owning its tables' SQL.
//!
//! - [`index`]: the index of executions (rows, documents, pages, statistics, rollups), its one
//!   writer and the spool that keeps unwritten rows across a restart.
//! - [`coordination`]: what replicas share: poll and job leases, heartbeats, `NOTIFY`.
//! - [`control`]: idempotent starts and the audit log.
//! - [`keys`]: API keys.
//! - [`documents`]: trusted documents pushed by frontends' CI.
//! - [`reports`]: task reports' records, and the queue of reports to store.
//! - [`webhooks`]: webhook endpoints, the outbox of events the index writer appends to, and
//!   the delivery log.
//!
//! May import: `model`, `request` (roles), `error`. A failure is a [`StoreError`], whose text
//! is for the log only; it becomes a [`GatewayError`] in one place (`From`).

pub mod control;
pub mod coordination;
pub mod documents;
pub mod index;
pub mod keys;
pub mod reports;
pub mod webhooks;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use crate::error::GatewayError;

/// A store failure. Its text is for the log only: it can carry SQL and connection details.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("stored row of {arn} is unreadable: {source}")]
    Snapshot { arn: String, source: sqlx::Error },
    #[error("no answer from the database within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Write(#[from] index::writer::WriteError),
}

/// What a client is told when the database fails it: never the SQL or the connection.
impl From<StoreError> for GatewayError {
    fn from(error: StoreError) -> Self {
        match error {
            // The database answered; one stored row does not fit this build's domain type.
            StoreError::Snapshot { .. } => GatewayError::Internal,
            StoreError::Timeout(_) => GatewayError::HistoryUnavailable("the database did not answer in time"),
            _ => GatewayError::HistoryUnavailable("the database could not be queried"),
        }
    }
}

/// Runs a store call with a client-side time limit: a database that stops answering on an open
/// connection (a failover, a silent network) would otherwise hold the caller until TCP gives up.
pub async fn within<T>(
    limit: Duration,
    call: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(limit, call).await.unwrap_or(Err(StoreError::Timeout(limit)))
}

/// An identifier column, parsed: one that does not is an error naming the row (the gateway
/// writes only parsed identifiers, so such a row was written by hand or by another program).
fn identifier<T: FromStr<Err = crate::model::InvalidId>>(text: &str) -> Result<T, StoreError> {
    text.parse().map_err(|invalid: crate::model::InvalidId| StoreError::Snapshot {
        arn: text.to_owned(),
        source: sqlx::Error::Decode(invalid.into()),
    })
}

/// The connection pool, from which each room's store is taken.
#[derive(Clone)]
pub struct Database {
    pool: PgPool,
}

impl Database {
    /// Connects (lazily: the gateway starts even when the database is down) with short timeouts,
    /// so that a database outage fails calls quickly instead of holding requests. Statements
    /// also get a server-side `statement_timeout` of 30 s.
    pub fn connect_lazy(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?.options([("statement_timeout", "30s")]);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(2))
            .connect_lazy_with(options);
        Ok(Database { pool })
    }

    /// Applies the migrations in `migrations/` that have not been applied yet.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        // On a connection of its own without the 30 s statement limit, which is for queries: a
        // migration may rebuild over every recorded execution (the rollups' rebuild over 10M
        // took 32 s). Detached, so the setting never reaches the pool.
        let mut connection = self.pool.acquire().await?.detach();
        sqlx::query!("SET statement_timeout = 0").execute(&mut connection).await?;
        // sqlx's `CREATE TABLE IF NOT EXISTS _sqlx_migrations` draws a NOTICE on every start
        // (and so on every CLI command), which sqlx logs.
        sqlx::query!("SET client_min_messages = warning").execute(&mut connection).await?;
        sqlx::migrate!("./migrations").run(&mut connection).await?;
        Ok(())
    }

    pub fn index(&self) -> index::IndexStore {
        index::IndexStore { pool: self.pool.clone() }
    }

    pub fn coordination(&self) -> coordination::Coordination {
        coordination::Coordination { pool: self.pool.clone() }
    }

    pub fn control(&self) -> control::ControlStore {
        control::ControlStore { pool: self.pool.clone() }
    }

    pub fn reports(&self) -> reports::ReportStore {
        reports::ReportStore { pool: self.pool.clone() }
    }

    pub fn keys(&self) -> keys::KeyTable {
        keys::KeyTable { pool: self.pool.clone() }
    }

    pub fn documents(&self) -> documents::DocumentTable {
        documents::DocumentTable { pool: self.pool.clone() }
    }

    pub fn webhooks(&self) -> webhooks::WebhookStore {
        webhooks::WebhookStore { pool: self.pool.clone() }
    }
}
