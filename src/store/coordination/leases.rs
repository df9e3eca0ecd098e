//! Leases in PostgreSQL, so that several replicas share work without a consensus of their own:
//! each running execution is polled by the replica holding its lease, and a singleton job (the
//! discovery sync) runs on the replica holding the job's lease. A lease is a row's owner and
//! expiry, renewed by its holder; once it has run out, any replica may take it. Rows are
//! claimed with `FOR UPDATE SKIP LOCKED`, one short statement each, which works through a
//! transaction-mode pooler (no session advisory locks).

use std::time::Duration;

use super::Coordination;
use crate::model::ExecutionArn;
use crate::store::StoreError;

/// Most executions one replica follows at once.
const MAX_FOLLOWED: i64 = 10_000;

// A replica's heartbeat is the job lease named `replica:<its name>`: a lease whose owner's
// heartbeat has run out is free at once, whatever its own expiry says, so a replica that died
// (kill -9, a lost host) hands its work over within a few heartbeats instead of a whole lease.
// Each query below that takes a lease says so with `NOT EXISTS (… 'replica:' || owner …)`.

impl Coordination {
    /// Renews the leases `owner` holds on running executions and takes those whose lease ran
    /// out (or never had one), for `lease`; the ARNs `owner` now holds. A row whose ARN does not
    /// parse (written by hand: the gateway writes only parsed ones) is logged and not polled.
    pub async fn claim_executions(
        &self,
        owner: &str,
        lease: Duration,
    ) -> Result<Vec<ExecutionArn>, StoreError> {
        let arns = sqlx::query_scalar!(
            "UPDATE execution_snapshots SET poll_owner = $1, \
                 poll_lease_expires = now() + make_interval(secs => $2) \
             WHERE execution_arn IN ( \
                 SELECT execution_arn FROM execution_snapshots \
                 WHERE status NOT IN ('SUCCESS', 'ERROR') \
                   AND (poll_owner = $1 OR poll_lease_expires IS NULL OR poll_lease_expires < now() \
                        OR NOT EXISTS (SELECT 1 FROM job_leases beat \
                            WHERE beat.name = 'replica:' || poll_owner AND beat.expires_at > now())) \
                 ORDER BY started_at DESC, execution_arn DESC LIMIT $3 \
                 FOR UPDATE SKIP LOCKED) \
             RETURNING execution_arn",
            owner,
            lease.as_secs_f64(),
            MAX_FOLLOWED,
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(arns
            .iter()
            .filter_map(|text| {
                ExecutionArn::parse(text)
                    .inspect_err(|error| tracing::error!(row = text, %error, "an indexed ARN does not parse; not polled"))
                    .ok()
            })
            .collect())
    }

    /// Gives up `owner`'s leases (at shutdown), so another replica takes them at once.
    pub async fn release_executions(&self, owner: &str) -> Result<u64, StoreError> {
        let released = sqlx::query!(
            "UPDATE execution_snapshots SET poll_owner = NULL, poll_lease_expires = NULL WHERE poll_owner = $1",
            owner,
        )
        .execute(&self.pool)
        .await?;
        Ok(released.rows_affected())
    }

    /// Takes or renews the lease on job `name` for `lease`; whether `owner` holds it now.
    pub async fn acquire_job(&self, name: &str, owner: &str, lease: Duration) -> Result<bool, StoreError> {
        Ok(!self.acquire_jobs(&[name.to_owned()], owner, lease).await?.is_empty())
    }

    /// Takes or renews the leases on jobs `names` for `lease`, each unless another live
    /// replica holds it; the names `owner` holds now.
    pub async fn acquire_jobs(
        &self,
        names: &[String],
        owner: &str,
        lease: Duration,
    ) -> Result<Vec<String>, StoreError> {
        let held = sqlx::query_scalar!(
            "INSERT INTO job_leases (name, owner, expires_at) \
             SELECT name, $2, now() + make_interval(secs => $3) FROM unnest($1::text[]) AS name \
             ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at \
             WHERE job_leases.owner = EXCLUDED.owner OR job_leases.expires_at < now() \
                OR NOT EXISTS (SELECT 1 FROM job_leases beat \
                    WHERE beat.name = 'replica:' || job_leases.owner AND beat.expires_at > now()) \
             RETURNING name",
            names,
            owner,
            lease.as_secs_f64(),
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(held)
    }

    /// `owner` is alive for `ttl` more: its heartbeat, and whether another replica's leases on
    /// running executions are held by one whose heartbeat has run out (to be taken now).
    pub async fn beat(&self, owner: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.acquire_job(&format!("replica:{owner}"), owner, ttl).await?;
        // EXISTS is never NULL; PostgreSQL does not say so about an expression, hence the `!`.
        let orphaned = sqlx::query_scalar!(
            "SELECT EXISTS (SELECT 1 FROM execution_snapshots \
                 WHERE status NOT IN ('SUCCESS', 'ERROR') AND poll_owner <> $1 \
                   AND NOT EXISTS (SELECT 1 FROM job_leases beat \
                       WHERE beat.name = 'replica:' || poll_owner AND beat.expires_at > now())) AS \"exists!\"",
            owner,
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(orphaned)
    }

    /// Gives up `owner`'s job leases (at shutdown).
    pub async fn release_jobs(&self, owner: &str) -> Result<(), StoreError> {
        sqlx::query!("DELETE FROM job_leases WHERE owner = $1", owner).execute(&self.pool).await?;
        Ok(())
    }
}
