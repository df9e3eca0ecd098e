//! Telling other replicas that an execution's row changed: `NOTIFY` as a wake-up, after which
//! a replica re-reads the row. A notification carries only who wrote and which ARN, so a lost
//! one costs nothing that a re-read cannot repair (see `service::live::listen`).

use sqlx::postgres::PgListener;

use super::Coordination;
use crate::model::ExecutionArn;
use crate::store::StoreError;

/// The channel; a payload is `<replica> <execution ARN>`.
pub const CHANNEL: &str = "execution_changed";

impl Coordination {
    /// Notifies every replica listening that `origin` wrote the rows of `arns`.
    pub async fn notify_changed(&self, origin: &str, arns: &[ExecutionArn]) -> Result<(), StoreError> {
        let arns: Vec<&str> = arns.iter().map(ExecutionArn::as_str).collect();
        sqlx::query!(
            "SELECT pg_notify($1, $2 || ' ' || arn) FROM unnest($3::text[]) AS arn",
            CHANNEL,
            origin,
            &arns as &[&str]
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
}
