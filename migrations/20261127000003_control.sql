-- Control mutations. A start is recorded under its idempotency key before DataSync is asked, so
-- a retried request (the same key) returns the execution the first one started instead of
-- starting another; `execution_arn` is null while the first is still in flight.
CREATE TABLE control_starts (
    idempotency_key text PRIMARY KEY,
    caller text NOT NULL,
    task_arn text NOT NULL,
    execution_arn text,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Every mutation: who, what, when, and how it ended.
CREATE TABLE audit_log (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    caller text NOT NULL,
    action text NOT NULL,
    target text NOT NULL,
    arguments jsonb NOT NULL DEFAULT '{}',
    outcome text NOT NULL,
    error_code text
);
CREATE INDEX audit_log_at ON audit_log (at DESC);
