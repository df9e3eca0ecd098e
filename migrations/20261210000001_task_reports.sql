-- Task reports' per-file records (issue 21). An execution whose STANDARD report DataSync has
-- written gets a row in `report_ingestions`, queued by the index writer in the very statement
-- that records the report as written; a replica takes it under a lease and copies each
-- detailed part's records into `report_files`, one transaction per part that also records the
-- part in `report_parts`, so a part is stored whole or not at all and never twice, and an
-- ingestion that stopped resumes after the parts already stored. Everything goes with its
-- execution (ON DELETE CASCADE), so history retention prunes records too.
CREATE TABLE report_ingestions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    execution_arn text NOT NULL UNIQUE REFERENCES execution_snapshots (execution_arn) ON DELETE CASCADE,
    -- Where the detailed parts are: the bucket (a name, or an access point's ARN) and the prefix
    -- `<subdirectory>/Detailed-Reports/<task-id>/<exec-id>/`.
    bucket text NOT NULL,
    prefix text NOT NULL,
    state text NOT NULL DEFAULT 'PENDING'
        CHECK (state IN ('PENDING', 'RUNNING', 'COMPLETE', 'PARTIAL', 'FAILED')),
    -- Which records were kept: `errors` or `all` (--report-records when it ran).
    kept text,
    records_read bigint NOT NULL DEFAULT 0,
    records_kept bigint NOT NULL DEFAULT 0,
    -- The per-execution cap was reached: parts after it were not read.
    truncated boolean NOT NULL DEFAULT false,
    error text,
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    owner text,
    lease_expires timestamptz,
    queued_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);

-- What a replica looks for: work due now.
CREATE INDEX report_ingestions_due ON report_ingestions (next_attempt_at)
    WHERE state IN ('PENDING', 'RUNNING');

CREATE TABLE report_parts (
    ingestion_id bigint NOT NULL REFERENCES report_ingestions (id) ON DELETE CASCADE,
    key text NOT NULL,
    kind text NOT NULL,
    part integer NOT NULL,
    records_read bigint NOT NULL,
    records_kept bigint NOT NULL,
    -- Why the part could not be stored (its records are not); NULL when it was.
    error text,
    PRIMARY KEY (ingestion_id, key)
);

-- One row per kept record. Paths sort bytewise (COLLATE "C") so that a path prefix is a range
-- of the primary key, which is also the order pages are read in.
CREATE TABLE report_files (
    ingestion_id bigint NOT NULL REFERENCES report_ingestions (id) ON DELETE CASCADE,
    relative_path text COLLATE "C" NOT NULL,
    kind text NOT NULL,
    part integer NOT NULL,
    ordinal integer NOT NULL,
    status text NOT NULL,
    failed boolean NOT NULL,
    file_type text,
    source_size bigint,
    destination_size bigint,
    source_mtime text,
    destination_mtime text,
    source_checksum text,
    destination_checksum text,
    event_time text,
    error_code text,
    error_detail text,
    PRIMARY KEY (ingestion_id, relative_path, kind, part, ordinal)
);
