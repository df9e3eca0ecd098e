-- execution_snapshots becomes the index of every execution the gateway knows: finished ones as
-- before, running ones as last described (their counters move, so their row is rewritten each
-- time the discovery sync describes them). History and statistics read only finished rows.
ALTER TABLE execution_snapshots
    ALTER COLUMN first_seen_terminal DROP NOT NULL,
    -- When the discovery sync last saw DataSync list the execution (null: never by a sync).
    ADD COLUMN last_listed_at timestamptz,
    -- Whether DataSync still lists it: false once a sync of its region no longer does (it is
    -- older than DataSync's ~30 days, or its task was deleted); null when no sync has said.
    ADD COLUMN listed boolean;

-- "What is running now": few rows, read newest first.
CREATE INDEX execution_snapshots_running ON execution_snapshots (started_at DESC, execution_arn DESC)
    WHERE status NOT IN ('SUCCESS', 'ERROR');

-- Each sync marks what DataSync stopped listing among what it listed last time (~30 days of
-- executions, not the whole history).
CREATE INDEX execution_snapshots_listed ON execution_snapshots (region) WHERE listed;
