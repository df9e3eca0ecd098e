//! Telling other replicas that an execution's row changed: `NOTIFY` as a wake-up, after which
//! a replica re-reads the row. A notification carries only who wrote and which ARN, so a lost
//! one costs nothing that a re-read cannot repair (see [`crate::live::listen`]).

use sqlx::postgres::PgListener;

use super::{HistoryStore, StoreError, StoredSnapshot};
use crate::model::TaskExecution;

/// The channel; a payload is `<replica> <execution ARN>`.
pub const CHANNEL: &str = "execution_changed";

/// Most running executions read back at once.
const MAX_RUNNING: i64 = 10_000;

impl HistoryStore {
    /// Notifies every replica listening that `origin` wrote the rows of `arns`.
    pub async fn notify_changed(&self, origin: &str, arns: &[String]) -> Result<(), StoreError> {
        sqlx::query!(
            "SELECT pg_notify($1, $2 || ' ' || arn) FROM unnest($3::text[]) AS arn",
            CHANNEL,
            origin,
            arns
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A connection listening on [`CHANNEL`] (a session of its own: LISTEN needs one).
    pub async fn listener(&self) -> Result<PgListener, StoreError> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(CHANNEL).await?;
        Ok(listener)
    }

    /// The stored descriptions of those of `arns` the index has.
    pub async fn get_many(&self, arns: &[String]) -> Result<Vec<TaskExecution>, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT execution_arn, snapshot AS "snapshot: StoredSnapshot" FROM execution_snapshot_documents WHERE execution_arn = ANY($1)"#,
            arns,
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(|row| row.snapshot.decode(&row.execution_arn)).collect()
    }

    /// The stored descriptions of the executions the index holds as running.
    pub async fn running(&self) -> Result<Vec<TaskExecution>, StoreError> {
        let rows = sqlx::query!(
            "SELECT d.execution_arn, d.snapshot AS \"snapshot: StoredSnapshot\" FROM execution_snapshots s \
             JOIN execution_snapshot_documents d USING (execution_arn) \
             WHERE s.status NOT IN ('SUCCESS', 'ERROR') \
             ORDER BY s.started_at DESC, s.execution_arn DESC LIMIT $1",
            MAX_RUNNING,
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(|row| row.snapshot.decode(&row.execution_arn)).collect()
    }
}
