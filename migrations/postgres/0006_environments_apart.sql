-- Test and live never touch each other's data: an entityId or an attributed userId of one
-- environment never deduplicates or blocks the other's. The environment joins both keys.
--
-- Rows written before this migration did not record their environment and take 'live'
-- here; the ones that were test traffic are found in ClickHouse (their stored events carry
-- `environment`) and moved to 'test' in place by the data migration
-- `environments_from_clickhouse` (platform::clickhouse::data_migrations), which the api and
-- the consumer run once, after the ClickHouse schema, before they serve.
ALTER TABLE entity_events
    ADD COLUMN environment TEXT NOT NULL DEFAULT 'live' CHECK (environment IN ('live', 'test'));
ALTER TABLE entity_events DROP CONSTRAINT entity_events_pkey;
ALTER TABLE entity_events
    ADD PRIMARY KEY (account_id, environment, link_short_code, event_name, entity_id);

ALTER TABLE attributions
    ADD COLUMN environment TEXT NOT NULL DEFAULT 'live' CHECK (environment IN ('live', 'test'));
ALTER TABLE attributions DROP CONSTRAINT attributions_pkey;
ALTER TABLE attributions ADD PRIMARY KEY (account_id, environment, user_id);

-- Data migrations that need more than Postgres (e.g. ClickHouse's rows): each runs once.
CREATE TABLE data_migrations (
    name       TEXT PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Idempotent requests (spec, "Idempotent requests"): one row per (account, environment,
-- Idempotency-Key) for 24 hours. `nonce` names the request's events (their ids and dedup
-- claims derive from it), so a retry of a failed attempt makes the same events; `status`
-- and `body` are the answer once there is one to replay (NULL while none is: a retry is
-- processed again).
CREATE TABLE idempotent_requests (
    account_id      UUID NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    environment     TEXT NOT NULL CHECK (environment IN ('live', 'test')),
    idempotency_key TEXT NOT NULL,
    request_hash    BYTEA NOT NULL,
    nonce           UUID NOT NULL,
    status          SMALLINT,
    body            BYTEA,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, environment, idempotency_key)
);
CREATE INDEX idempotent_requests_age ON idempotent_requests (created_at);
