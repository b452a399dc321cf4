-- Webhooks: each account's endpoints, and the outbox of their deliveries.
--
-- The webhook worker (its own consumer group on the events stream) writes one outbox row
-- per (webhook, stored event) before it commits its offsets; the primary key makes a
-- redelivered or repeated copy of an event collapse into the row that is there. Retry
-- state lives in the row (attempts, next_attempt_at), so it survives restarts; a worker
-- claims a row by moving next_attempt_at past the attempt's deadline (a lease), so a worker
-- killed mid-attempt leaves the row to be tried again, with the same event id.
CREATE TABLE webhooks (
    id          UUID PRIMARY KEY,
    account_id  UUID NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- Which key created it: a test key's webhook receives only test events.
    environment TEXT NOT NULL CHECK (environment IN ('live', 'test')),
    url         TEXT NOT NULL,
    events      TEXT[] NOT NULL,
    secret      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_by_account ON webhooks (account_id, environment);

CREATE TABLE webhook_deliveries (
    webhook_id      UUID NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id        UUID NOT NULL,
    event_name      TEXT NOT NULL,
    -- The exact bytes POSTed on every attempt (the signature covers them).
    body            TEXT NOT NULL,
    -- When ingest (or the api) accepted the event: the delivery's delay is measured from it.
    received_at     TIMESTAMPTZ NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at     TIMESTAMPTZ,
    PRIMARY KEY (webhook_id, event_id)
);
-- What is due, per webhook (each endpoint is claimed on its own).
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (webhook_id, next_attempt_at)
    WHERE state = 'pending';
-- What the retention sweep removes.
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (finished_at)
    WHERE state <> 'pending';

-- Every attempt, for GET /api/v1/webhooks/{id}/deliveries.
CREATE TABLE webhook_attempts (
    id            BIGSERIAL PRIMARY KEY,
    webhook_id    UUID NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id      UUID NOT NULL,
    event_name    TEXT NOT NULL,
    attempt       INTEGER NOT NULL,
    -- delivered (2xx), retrying (another attempt is scheduled) or failed (given up).
    outcome       TEXT NOT NULL CHECK (outcome IN ('delivered', 'retrying', 'failed')),
    response_code INTEGER,
    error         TEXT,
    duration_ms   INTEGER NOT NULL,
    attempted_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX webhook_attempts_recent ON webhook_attempts (webhook_id, id DESC);
CREATE INDEX webhook_attempts_age ON webhook_attempts (attempted_at);
