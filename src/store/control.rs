//! The control tables: idempotent starts and the audit log (see [`crate::service::control`]).

use sqlx::PgPool;

use super::{identifier, StoreError};
use crate::model::{ExecutionArn, TaskArn};

#[derive(Clone)]
pub struct ControlStore {
    pub(super) pool: PgPool,
}

impl ControlStore {
    /// Takes `key` for a start of `task_arn`, or returns what an earlier request with it
    /// recorded: its task and the execution it started (none while still in flight).
    pub async fn claim_start(
        &self,
        key: &str,
        caller: &str,
        task_arn: &TaskArn,
    ) -> Result<Option<(TaskArn, Option<ExecutionArn>)>, StoreError> {
        let inserted = sqlx::query_scalar!(
            "INSERT INTO control_starts (idempotency_key, caller, task_arn) VALUES ($1, $2, $3) \
             ON CONFLICT (idempotency_key) DO NOTHING RETURNING idempotency_key",
            key,
            caller,
            task_arn.as_str(),
        )
        .fetch_optional(&self.pool)
        .await?;
        if inserted.is_some() {
            return Ok(None);
        }
        let row = sqlx::query!(
            "SELECT task_arn, execution_arn FROM control_starts WHERE idempotency_key = $1",
            key
        )
        .fetch_one(&self.pool)
        .await?;
        let execution_arn = row.execution_arn.as_deref().map(identifier).transpose()?;
        Ok(Some((identifier(&row.task_arn)?, execution_arn)))
    }

    /// The execution the start under `key` produced, or (it failed) the key freed.
    pub async fn settle_start(
        &self,
        key: &str,
        execution_arn: Option<&ExecutionArn>,
    ) -> Result<(), StoreError> {
        match execution_arn {
            Some(arn) => {
                sqlx::query!(
                    "UPDATE control_starts SET execution_arn = $2 WHERE idempotency_key = $1",
                    key,
                    arn.as_str(),
                )
                .execute(&self.pool)
                .await?
            }
            None => {
                sqlx::query!("DELETE FROM control_starts WHERE idempotency_key = $1", key)
                    .execute(&self.pool)
                    .await?
            }
        };
        Ok(())
    }

    pub async fn audit(
        &self,
        caller: &str,
        action: &str,
        target: &str,
        arguments: &serde_json::Value,
        outcome: &str,
        error_code: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query!(
            "INSERT INTO audit_log (caller, action, target, arguments, outcome, error_code) VALUES ($1, $2, $3, $4, $5, $6)",
            caller,
            action,
            target,
            arguments,
            outcome,
            error_code,
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
