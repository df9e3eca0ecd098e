-- API keys for services calling the gateway. The key itself is never stored: only its SHA-256
-- (keys are 256 random bits, so a fast hash is as good as a slow one and costs nothing per
-- request). `id` is the public part of the key (`dsg_<id>_<secret>`), for lookup and for logs.
CREATE TABLE api_keys (
    id text PRIMARY KEY,
    name text NOT NULL,
    role text NOT NULL CHECK (role IN ('reader', 'operator')),
    key_sha256 bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
