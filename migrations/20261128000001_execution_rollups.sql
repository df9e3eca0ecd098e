-- Counts and sums of finished executions per UTC day, task, status, error code and task mode,
-- kept by the triggers below whenever execution_snapshots changes, so that statistics without
-- percentiles read these few rows instead of every execution (percentiles still come from
-- execution_snapshots itself). An empty string stands for no error code or task mode (a key
-- column cannot be NULL).
CREATE TABLE execution_rollups (
    started_day       date NOT NULL,
    task_arn          text COLLATE "C" NOT NULL,
    status            text NOT NULL,
    error_code        text NOT NULL,
    task_mode         text NOT NULL,
    region            text NOT NULL,
    account_id        text NOT NULL,
    executions        bigint NOT NULL,
    bytes_transferred bigint NOT NULL,
    bytes_written     bigint NOT NULL,
    files_transferred bigint NOT NULL,
    -- Executions with a total duration, and the sum of those durations.
    timed             bigint NOT NULL,
    duration_ms       bigint NOT NULL,
    PRIMARY KEY (started_day, task_arn, status, error_code, task_mode)
);

-- One statement's changes, set-based: every row it removed counts -1, every row it wrote +1,
-- so an upsert that rewrites a finished execution (a report result arriving), a running one
-- finishing, a retention DELETE and a bulk load all leave the rollups equal to what the rows
-- add up to. Statement-level with transition tables, not per row: a million-row INSERT costs
-- one aggregate, not a million upserts. Keys are written in order, so that two replicas'
-- writers lock shared rollup rows in the same order (no deadlock).
CREATE FUNCTION execution_rollups_apply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changes text := CASE TG_OP
        WHEN 'INSERT' THEN 'SELECT 1 AS sign, * FROM new_rows'
        WHEN 'UPDATE' THEN 'SELECT -1 AS sign, * FROM old_rows UNION ALL SELECT 1, * FROM new_rows'
        ELSE 'SELECT -1 AS sign, * FROM old_rows'
    END;
BEGIN
    EXECUTE format(
        'INSERT INTO execution_rollups AS rollup
         SELECT started_day, task_arn, status, coalesce(error_code, %1$L), coalesce(task_mode, %1$L),
                min(region), min(account_id), sum(sign), sum(sign * bytes_transferred),
                sum(sign * bytes_written), sum(sign * files_transferred),
                coalesce(sum(sign) FILTER (WHERE total_duration_ms IS NOT NULL), 0),
                coalesce(sum(sign * total_duration_ms), 0)
         FROM (%2$s) changes
         WHERE status IN (%3$L, %4$L)
         GROUP BY 1, 2, 3, 4, 5
         ORDER BY 1, 2, 3, 4, 5
         ON CONFLICT (started_day, task_arn, status, error_code, task_mode) DO UPDATE SET
             executions = rollup.executions + EXCLUDED.executions,
             bytes_transferred = rollup.bytes_transferred + EXCLUDED.bytes_transferred,
             bytes_written = rollup.bytes_written + EXCLUDED.bytes_written,
             files_transferred = rollup.files_transferred + EXCLUDED.files_transferred,
             timed = rollup.timed + EXCLUDED.timed,
             duration_ms = rollup.duration_ms + EXCLUDED.duration_ms',
        '', changes, 'SUCCESS', 'ERROR');
    RETURN NULL;
END
$$;

CREATE TRIGGER execution_rollups_insert AFTER INSERT ON execution_snapshots
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION execution_rollups_apply();
CREATE TRIGGER execution_rollups_update AFTER UPDATE ON execution_snapshots
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION execution_rollups_apply();
CREATE TRIGGER execution_rollups_delete AFTER DELETE ON execution_snapshots
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION execution_rollups_apply();

CREATE FUNCTION execution_rollups_clear() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE execution_rollups;
    RETURN NULL;
END
$$;

-- TRUNCATE fires no DELETE trigger.
CREATE TRIGGER execution_rollups_truncate AFTER TRUNCATE ON execution_snapshots
    FOR EACH STATEMENT EXECUTE FUNCTION execution_rollups_clear();

-- What was recorded before the triggers existed.
INSERT INTO execution_rollups
SELECT started_day, task_arn, status, coalesce(error_code, ''), coalesce(task_mode, ''),
       min(region), min(account_id), count(*), sum(bytes_transferred), sum(bytes_written),
       sum(files_transferred), count(total_duration_ms), coalesce(sum(total_duration_ms), 0)
FROM execution_snapshots
WHERE status IN ('SUCCESS', 'ERROR')
GROUP BY 1, 2, 3, 4, 5;
