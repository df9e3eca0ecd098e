-- Duration percentiles from the rollups: each rollup row also keeps a histogram of its
-- executions' total durations, in log-scale buckets fine enough that a bucket's one value is
-- within 1% of every duration in it, so percentiles read from merged histograms are within 1%
-- of the exact ones (src/store/duration_histogram.rs reads them; the two must agree).
--
-- Bucket 0 holds durations under 1 ms; bucket b >= 1 holds (γ^(b-2), γ^(b-1)] ms with
-- γ = 1.01 / 0.99, and stands for 2γ^(b-1) / (γ + 1). NULL stays NULL (no duration, no bucket).
CREATE FUNCTION execution_duration_bucket(duration_ms bigint) RETURNS smallint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE
        WHEN duration_ms >= 1 THEN (1 + ceil(ln(duration_ms::float8) / ln(1.01::float8 / 0.99)))::smallint
        WHEN duration_ms < 1 THEN 0
    END;

-- A histogram is (bucket, count) entries in bucket order, 6 bytes each: the bucket a big-endian
-- smallint, the count a big-endian integer. Bytes, not two arrays: PostgreSQL sends an array
-- element by element (measured: 48 ms for the bench's 480,000 entries), a bytea in one piece.
ALTER TABLE execution_rollups ADD COLUMN duration_histogram bytea NOT NULL DEFAULT '';

CREATE FUNCTION duration_histogram_entries(histogram bytea) RETURNS TABLE (bucket smallint, count integer)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT ((get_byte(histogram, i) << 8) | get_byte(histogram, i + 1))::smallint,
           (get_byte(histogram, i + 2) << 24) | (get_byte(histogram, i + 3) << 16)
               | (get_byte(histogram, i + 4) << 8) | get_byte(histogram, i + 5)
    FROM generate_series(0, length(histogram) - 6, 6) AS i;
END;

-- The sum of two histograms (the second may hold negative counts: removed rows); empty buckets
-- are dropped.
CREATE FUNCTION duration_histogram_add(histogram bytea, more bytea) RETURNS bytea
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT coalesce(string_agg(int2send(bucket) || int4send(total), ''::bytea ORDER BY bucket), ''::bytea)
    FROM (SELECT bucket, sum(count)::integer AS total
          FROM (SELECT * FROM duration_histogram_entries(histogram)
                UNION ALL
                SELECT * FROM duration_histogram_entries(more)) AS entries
          GROUP BY bucket
          HAVING sum(count) <> 0) AS summed;
END;

-- The statement that adds `changes` (a query of snapshot rows with a `sign`: +1 counted, -1
-- taken away) to the rollups: the trigger runs it over a statement's transition tables, this
-- migration over every snapshot. Per bucket first, then per rollup key; keys written in order,
-- so that two replicas' writers lock shared rollup rows in the same order (no deadlock).
CREATE FUNCTION execution_rollups_add(changes text) RETURNS text LANGUAGE sql STABLE
RETURN format(
    'INSERT INTO execution_rollups AS rollup
     SELECT started_day, task_arn, status, error_code, task_mode, min(region), min(account_id),
            sum(executions), sum(bytes_transferred), sum(bytes_written), sum(files_transferred),
            sum(timed), sum(duration_ms),
            coalesce(string_agg(int2send(bucket) || int4send(timed::integer), %1$L::bytea ORDER BY bucket)
                         FILTER (WHERE timed <> 0), %1$L::bytea)
     FROM (SELECT started_day, task_arn, status, coalesce(error_code, %1$L) AS error_code,
                  coalesce(task_mode, %1$L) AS task_mode,
                  execution_duration_bucket(total_duration_ms) AS bucket,
                  min(region) AS region, min(account_id) AS account_id,
                  sum(sign) AS executions, sum(sign * bytes_transferred) AS bytes_transferred,
                  sum(sign * bytes_written) AS bytes_written,
                  sum(sign * files_transferred) AS files_transferred,
                  coalesce(sum(sign) FILTER (WHERE total_duration_ms IS NOT NULL), 0) AS timed,
                  coalesce(sum(sign * total_duration_ms), 0) AS duration_ms
           FROM (%2$s) changes
           WHERE status IN (%3$L, %4$L)
           GROUP BY 1, 2, 3, 4, 5, 6) per_bucket
     GROUP BY 1, 2, 3, 4, 5
     ORDER BY 1, 2, 3, 4, 5
     ON CONFLICT (started_day, task_arn, status, error_code, task_mode) DO UPDATE SET
         executions = rollup.executions + EXCLUDED.executions,
         bytes_transferred = rollup.bytes_transferred + EXCLUDED.bytes_transferred,
         bytes_written = rollup.bytes_written + EXCLUDED.bytes_written,
         files_transferred = rollup.files_transferred + EXCLUDED.files_transferred,
         timed = rollup.timed + EXCLUDED.timed,
         duration_ms = rollup.duration_ms + EXCLUDED.duration_ms,
         duration_histogram = duration_histogram_add(rollup.duration_histogram, EXCLUDED.duration_histogram)',
    '', changes, 'SUCCESS', 'ERROR');

CREATE OR REPLACE FUNCTION execution_rollups_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE execution_rollups_add(CASE TG_OP
        WHEN 'INSERT' THEN 'SELECT 1 AS sign, * FROM new_rows'
        WHEN 'UPDATE' THEN 'SELECT -1 AS sign, * FROM old_rows UNION ALL SELECT 1, * FROM new_rows'
        ELSE 'SELECT -1 AS sign, * FROM old_rows'
    END);
    RETURN NULL;
END
$$;

-- Rebuilt from every snapshot, with no writer in between (they wait for this migration's
-- transaction), so that nothing is counted twice or missed: 3.8 s over 1M executions, 32 s
-- over 10M.
LOCK TABLE execution_snapshots IN SHARE ROW EXCLUSIVE MODE;
TRUNCATE execution_rollups;
DO $$
BEGIN
    EXECUTE execution_rollups_add('SELECT 1 AS sign, * FROM execution_snapshots');
END
$$;
