-- Plans are data: which endpoints each allows and its monthly quota of production events.
CREATE TABLE plans (
    name                TEXT PRIMARY KEY,
    allowed_endpoints   TEXT[] NOT NULL,
    monthly_event_quota BIGINT NOT NULL CHECK (monthly_event_quota >= 0)
);

INSERT INTO plans (name, allowed_endpoints, monthly_event_quota) VALUES
    ('free',
     ARRAY['referral_links.create', 'referral_links.metadata', 'attributions.create',
           'capture_event.create', 'analytics.read'],
     1000),
    ('scale',
     ARRAY['referral_links.create', 'referral_links.metadata', 'attributions.create',
           'capture_event.create', 'analytics.read', 'events.create'],
     5000);

CREATE TABLE accounts (
    id         UUID PRIMARY KEY,
    name       TEXT NOT NULL,
    plan       TEXT NOT NULL REFERENCES plans (name),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Keys are stored as the SHA-256 of the whole key, never in clear.
CREATE TABLE api_keys (
    key_hash    TEXT PRIMARY KEY,
    account_id  UUID NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    environment TEXT NOT NULL CHECK (environment IN ('live', 'test')),
    prefix      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX api_keys_account ON api_keys (account_id);

CREATE TABLE links (
    short_code       TEXT PRIMARY KEY,
    account_id       UUID NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    destination_url  TEXT NOT NULL,
    ios_url          TEXT,
    android_url      TEXT,
    campaign         TEXT,
    referrer_user_id TEXT,
    title            TEXT,
    description      TEXT,
    image_url        TEXT,
    expires_at       TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX links_account_created ON links (account_id, created_at DESC, short_code);

-- First attribution of a user wins: the primary key makes a repeat a no-op.
CREATE TABLE attributions (
    account_id UUID NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    short_code TEXT,
    match_type TEXT NOT NULL CHECK (match_type IN ('short_code', 'click_id', 'fingerprint', 'organic')),
    click_id   TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, user_id)
);

-- Production events leased against the monthly quota, per account and month. Ingest
-- instances lease blocks and give back what they did not use, so `leased` ends equal to
-- the events accepted.
CREATE TABLE quota_usage (
    account_id UUID NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    month      DATE NOT NULL,
    leased     BIGINT NOT NULL DEFAULT 0 CHECK (leased >= 0),
    PRIMARY KEY (account_id, month)
);

-- One row per (account, link, event, entity) tuple ever accepted: the dedup index.
-- `pending`: a request holds the claim and is producing; `queued`: the broker has it;
-- `stored`: the consumer wrote it to ClickHouse.
CREATE TABLE entity_events (
    account_id      UUID NOT NULL,
    link_short_code TEXT NOT NULL,
    event_name      TEXT NOT NULL,
    entity_id       TEXT NOT NULL,
    event_id        UUID NOT NULL,
    event_time      TIMESTAMPTZ NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'queued', 'stored')),
    claimed_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, link_short_code, event_name, entity_id)
);
CREATE UNIQUE INDEX entity_events_event_id ON entity_events (event_id);
