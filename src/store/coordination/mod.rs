//! What replicas share through the database: leases on executions to poll and on jobs to run
//! (with heartbeats), in [`leases`]; and `NOTIFY` wake-ups when a replica wrote a row, in
//! [`changes`].

pub mod changes;
pub mod leases;
pub mod sync_runs;

use sqlx::PgPool;

#[derive(Clone)]
pub struct Coordination {
    pub(super) pool: PgPool,
}
