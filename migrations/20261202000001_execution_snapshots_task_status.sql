-- A task's executions of one status, newest first: a task's failures, the question a dashboard
-- asks first. With the task index alone PostgreSQL walks every execution of the task in the
-- time range and reads each row to check its status: over 10M executions, a week of one task
-- without a failure took 13 ms (p50) to find that there is none, and the longer the range the
-- longer it takes.
--
-- Building it holds writers off (they retry; nothing is lost). To avoid that on a large table,
-- create the same index beforehand with CREATE INDEX CONCURRENTLY; this then does nothing.
CREATE INDEX IF NOT EXISTS execution_snapshots_task_status
    ON execution_snapshots (task_arn, status, started_at DESC, execution_arn DESC);
