-- When each execution launched and ended (DataSync's LaunchTime and EndTime), as columns, so
-- that pages can be ordered and filtered by the end: what dashboards sort finished runs by.
-- Backfilled from the stored documents; a settled row recorded before documents carried endTime
-- gets its start plus DataSync's total duration, which is what EndTime measures.
--
-- The backfill updates every row (and the rollups' statement trigger sees it, changing nothing
-- they count). On a large index, run it in batches beforehand: this then only adds what is left.
ALTER TABLE execution_snapshots
    ADD COLUMN IF NOT EXISTS launch_time timestamptz,
    ADD COLUMN IF NOT EXISTS end_time timestamptz;

UPDATE execution_snapshots s SET
    launch_time = (d.snapshot ->> 'launchTime')::timestamptz,
    end_time = COALESCE(
        (d.snapshot ->> 'endTime')::timestamptz,
        CASE WHEN s.status IN ('SUCCESS', 'ERROR') AND s.start_time IS NOT NULL AND s.total_duration_ms IS NOT NULL
             THEN s.start_time + s.total_duration_ms * interval '1 millisecond' END)
FROM execution_snapshot_documents d
WHERE d.execution_arn = s.execution_arn AND s.end_time IS NULL;

-- Pages in the order of the end, newest or oldest first, a keyset away from any depth.
CREATE INDEX IF NOT EXISTS execution_snapshots_ended
    ON execution_snapshots (end_time DESC, execution_arn DESC) WHERE end_time IS NOT NULL;
