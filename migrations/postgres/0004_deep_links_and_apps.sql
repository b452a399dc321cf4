-- Deferred deep linking: where the app should take a user who installed from a link, and
-- the link's data for it (a flat JSON object), returned by attributions.
ALTER TABLE links ADD COLUMN deep_link_path TEXT;
ALTER TABLE links ADD COLUMN data JSONB NOT NULL DEFAULT '{}'::jsonb;

-- Each account's apps, for the link host's apple-app-site-association and assetlinks.json.
CREATE TABLE apps (
    account_id                   UUID PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    ios_team_id                  TEXT,
    ios_bundle_id                TEXT,
    android_package_name         TEXT,
    android_cert_fingerprints    TEXT[] NOT NULL DEFAULT '{}',
    updated_at                   TIMESTAMPTZ NOT NULL DEFAULT now()
);
