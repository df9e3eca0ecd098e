//! The discovery sync's jobs: which replica runs which site's sync (leases, split between the
//! live replicas), and the last run of each site, shared by all replicas.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Coordination;
use crate::model::{AccountId, Region};
use crate::store::StoreError;

/// One site's last sync, whichever replica ran it.
#[derive(Clone, Debug)]
pub struct SyncRun {
    pub account_id: Option<AccountId>,
    pub region: Region,
    pub last_run_at: DateTime<Utc>,
    pub duration_ms: i64,
    pub error: Option<String>,
    pub replica: String,
    pub listed: i32,
    pub described: i32,
    pub runs: i64,
}

impl Coordination {
    /// The replicas that hold a live lease whose name starts with `prefix` and whose heartbeat
    /// has not run out, by name.
    pub async fn live_replicas(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let names = sqlx::query_scalar!(
            "SELECT owner FROM job_leases held \
             WHERE starts_with(held.name, $1) AND held.expires_at > now() \
               AND EXISTS (SELECT 1 FROM job_leases beat \
                   WHERE beat.name = 'replica:' || held.owner AND beat.expires_at > now()) \
             ORDER BY 1",
            prefix,
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(names)
    }

    /// Makes `owner` hold exactly the jobs `names` among those starting with `prefix`: takes or
    /// renews each of them for `lease` (unless another live replica still holds it) and gives up
    /// the others it holds. The names it holds now.
    pub async fn hold_jobs(
        &self,
        prefix: &str,
        names: &[String],
        owner: &str,
        lease: Duration,
    ) -> Result<Vec<String>, StoreError> {
        sqlx::query!(
            "DELETE FROM job_leases WHERE owner = $1 AND starts_with(name, $2) AND NOT (name = ANY($3))",
            owner,
            prefix,
            names,
        )
        .execute(&self.pool)
        .await?;
        self.acquire_jobs(names, owner, lease).await
    }

    /// Records a site's run.
    pub async fn record_sync(&self, site: &str, run: &SyncRun) -> Result<(), StoreError> {
        sqlx::query!(
            "INSERT INTO sync_runs (site, account_id, region, last_run_at, duration_ms, error, replica, listed, described, runs) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1) \
             ON CONFLICT (site) DO UPDATE SET last_run_at = EXCLUDED.last_run_at, \
                 duration_ms = EXCLUDED.duration_ms, error = EXCLUDED.error, replica = EXCLUDED.replica, \
                 listed = EXCLUDED.listed, described = EXCLUDED.described, runs = sync_runs.runs + 1",
            site,
            run.account_id.as_ref().map(AccountId::as_str),
            run.region.as_str(),
            run.last_run_at,
            run.duration_ms,
            run.error,
            run.replica,
            run.listed,
            run.described,
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every site's last run. A row whose ids do not parse (written by hand) is logged and left out.
    pub async fn sync_runs(&self) -> Result<Vec<SyncRun>, StoreError> {
        let rows = sqlx::query!(
            "SELECT account_id, region, last_run_at, duration_ms, error, replica, listed, described, runs \
             FROM sync_runs ORDER BY site"
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let account_id = row.account_id.as_deref().map(AccountId::parse).transpose();
                let parsed = account_id.and_then(|account_id| Ok((account_id, Region::parse(&row.region)?)));
                let (account_id, region) = parsed
                    .inspect_err(
                        |error| tracing::error!(region = row.region, %error, "a sync run's ids do not parse"),
                    )
                    .ok()?;
                Some(SyncRun {
                    account_id,
                    region,
                    last_run_at: row.last_run_at,
                    duration_ms: row.duration_ms,
                    error: row.error,
                    replica: row.replica,
                    listed: row.listed,
                    described: row.described,
                    runs: row.runs,
                })
            })
            .collect())
    }
}
