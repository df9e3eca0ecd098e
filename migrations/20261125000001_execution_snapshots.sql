-- One row per task execution the gateway has seen finished (SUCCESS or ERROR), in two tables:
--
-- execution_snapshots holds copies of what history and statistics filter, sort and aggregate
-- on. It stays narrow (~350 bytes a row) so that statistics scan a few hundred MB per million
-- executions, not the ~2 GB the JSON documents take.
--
-- execution_snapshot_documents holds DataSync's full description as JSONB, in the shape of the
-- gateway's domain type (versioned by snapshot_version), so new DataSync fields need no data
-- migration.
CREATE TABLE execution_snapshots (
    execution_arn        text        COLLATE "C" PRIMARY KEY,
    task_arn             text        COLLATE "C" NOT NULL,
    region               text        NOT NULL,
    account_id           text        NOT NULL,
    -- Exactly what DataSync sent, so values this build does not know are kept.
    status               text        NOT NULL,
    task_mode            text,
    -- DataSync's StartTime; moto sends none.
    start_time           timestamptz,
    -- The sort key of history: StartTime, or when the gateway first saw the execution finished.
    started_at           timestamptz NOT NULL,
    first_seen_terminal  timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    total_duration_ms    bigint,
    prepare_duration_ms  bigint,
    transfer_duration_ms bigint,
    verify_duration_ms   bigint,
    bytes_transferred    bigint      NOT NULL,
    bytes_written        bigint      NOT NULL,
    bytes_compressed     bigint      NOT NULL,
    files_transferred    bigint      NOT NULL,
    files_verified       bigint      NOT NULL,
    files_deleted        bigint      NOT NULL,
    files_skipped        bigint      NOT NULL,
    error_code           text,
    report_status        text
);

-- History pages are keyset-paginated on (started_at, execution_arn), newest first by default;
-- each index serves one common filter with that order.
CREATE INDEX execution_snapshots_started ON execution_snapshots (started_at DESC, execution_arn DESC);
CREATE INDEX execution_snapshots_task ON execution_snapshots (task_arn, started_at DESC, execution_arn DESC);
CREATE INDEX execution_snapshots_status ON execution_snapshots (status, started_at DESC, execution_arn DESC);
CREATE INDEX execution_snapshots_error_code ON execution_snapshots (error_code, started_at DESC, execution_arn DESC)
    WHERE error_code IS NOT NULL;

CREATE TABLE execution_snapshot_documents (
    execution_arn    text    COLLATE "C" PRIMARY KEY
                             REFERENCES execution_snapshots (execution_arn) ON DELETE CASCADE,
    snapshot_version integer NOT NULL,
    snapshot         jsonb   NOT NULL
);
