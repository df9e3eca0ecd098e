-- Trusted documents registered with `datasync-gateway documents push` (a frontend's CI, before
-- it deploys): the operations `--trusted-documents-mode audit|enforce` lets run. Only added to:
-- an id names one text for good (most ids are the text's hash), so a push is idempotent and a
-- gateway still serving an older frontend keeps its documents.
CREATE TABLE trusted_documents (
    -- As manifests list it, without a `sha256:` prefix.
    id       text PRIMARY KEY,
    -- The operation's name, for logs and metrics.
    name     text,
    body     text NOT NULL,
    added_at timestamptz NOT NULL DEFAULT now()
);
