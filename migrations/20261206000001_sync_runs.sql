-- The discovery sync runs one job per site (an account's region), each under its own lease in
-- `job_leases`, on whichever replica holds it. Each run's outcome is kept here, so that every
-- replica can say how every site's sync is doing (`accounts { sync }`), not only its own.
CREATE TABLE sync_runs (
    site        text PRIMARY KEY,
    -- NULL for the gateway's own account when no accounts are configured.
    account_id  text,
    region      text NOT NULL,
    last_run_at timestamptz NOT NULL,
    duration_ms bigint NOT NULL,
    error       text,
    replica     text NOT NULL,
    listed      integer NOT NULL,
    described   integer NOT NULL,
    runs        bigint NOT NULL
);
