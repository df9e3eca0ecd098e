-- Pages of one account's executions, newest first: what a caller limited to some accounts reads
-- (every page of theirs carries `account_id = ANY(…)`), and the `accountIds` filter. Without
-- it, such a page walks the time index until enough rows match: measured at 1M rows, 11.8 ms
-- for the first page of an account holding 0.1% of them and 74 ms ten pages deep (far more at
-- 10M); with it, 0.2–1.1 ms, for 56 MB per million rows.
--
-- On a large index, create the same index beforehand with CREATE INDEX CONCURRENTLY; this then
-- does nothing.
CREATE INDEX IF NOT EXISTS execution_snapshots_account
    ON execution_snapshots (account_id, started_at DESC, execution_arn DESC);
