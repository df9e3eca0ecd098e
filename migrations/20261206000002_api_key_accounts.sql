-- An API key may be limited to some accounts (`keys create --accounts …`); empty: every account,
-- as every key was before.
ALTER TABLE api_keys ADD COLUMN accounts text[] NOT NULL DEFAULT '{}';
