-- Webhooks (issue 22): endpoints as data, a durable outbox of execution events, and the log of
-- every delivery.
--
-- The index writer appends to `webhook_events` in the transaction that changes the execution's
-- row, so an event is never lost between the write and the send, and never invented (a write
-- that rolls back takes its events with it). Appends take one advisory lock until they commit,
-- so events commit in `seq` order and an endpoint reading the outbox past its cursor cannot pass
-- over an event that commits late.
CREATE TABLE webhooks (
    id text PRIMARY KEY,
    url text NOT NULL,
    description text NOT NULL DEFAULT '',
    -- The execution filter (the index's `SnapshotFilter`, as JSON) and the event types wanted.
    filter jsonb NOT NULL,
    events text[] NOT NULL,
    enabled boolean NOT NULL DEFAULT true,
    disabled_reason text,
    -- Standard Webhooks secrets (`whsec_…`): HMAC keys, so they are kept as they are. The
    -- previous one still signs until `previous_secret_until` (a rotation's overlap).
    secret text NOT NULL,
    previous_secret text,
    previous_secret_until timestamptz,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- The last outbox event this endpoint has taken (delivered, queued or passed over).
    cursor_seq bigint NOT NULL,
    -- Since when every attempt has failed (NULL: the last one succeeded).
    failing_since timestamptz,
    -- The replica sending to it, one at a time.
    lease_holder text,
    lease_expires timestamptz
);

CREATE TABLE webhook_events (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The Standard Webhooks message id: one per execution and status, so that replicas writing
    -- the same change record one event, and receivers can deduplicate on it.
    event_id text NOT NULL UNIQUE,
    type text NOT NULL,
    execution_arn text NOT NULL,
    occurred_at timestamptz NOT NULL,
    data jsonb NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_events_recorded ON webhook_events (recorded_at);

CREATE TABLE webhook_deliveries (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id text NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_seq bigint NOT NULL REFERENCES webhook_events (seq) ON DELETE CASCADE,
    state text NOT NULL DEFAULT 'PENDING' CHECK (state IN ('PENDING', 'DELIVERED', 'FAILED')),
    -- Each attempt: `{at, status, durationMs, error}`.
    attempts jsonb NOT NULL DEFAULT '[]',
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now()
);
-- An endpoint's deliveries in order: the head to send, and the log newest first.
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (webhook_id, id);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (webhook_id, id) WHERE state = 'PENDING';
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_seq);
