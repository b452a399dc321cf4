-- Dashboard sign-in (spec, "Links at scale": the dashboard's JavaScript never holds a secret
-- key). An API key entered once, or a one-time sign-in link minted with the key, becomes a
-- session: an HttpOnly cookie whose token Postgres keeps only as a SHA-256 hash, tied to the
-- key it came from. Revoking the key, or deleting its account, ends its sessions and links.
CREATE TABLE dashboard_sessions (
    token_hash TEXT PRIMARY KEY,
    key_hash   TEXT NOT NULL REFERENCES api_keys (key_hash) ON DELETE CASCADE,
    -- `session`: a signed-in browser's cookie; `sign_in_link`: redeemable once, briefly.
    kind       TEXT NOT NULL CHECK (kind IN ('session', 'sign_in_link')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX dashboard_sessions_key ON dashboard_sessions (key_hash);
CREATE INDEX dashboard_sessions_expiry ON dashboard_sessions (expires_at);
