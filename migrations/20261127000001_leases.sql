-- Live following across replicas. Each running execution is polled by the replica holding its
-- lease; a replica renews what it holds while it polls, and a dead replica's leases run out
-- and are taken by another. Plain rows updated with `FOR UPDATE SKIP LOCKED`, so it works
-- through a transaction-mode pooler (no session advisory locks).
ALTER TABLE execution_snapshots
    ADD COLUMN poll_owner text,
    ADD COLUMN poll_lease_expires timestamptz;

-- Singleton jobs (the discovery sync) run on the replica holding the job's lease.
CREATE TABLE job_leases (
    name text PRIMARY KEY,
    owner text NOT NULL,
    expires_at timestamptz NOT NULL
);
