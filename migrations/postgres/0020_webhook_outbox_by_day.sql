-- The webhook outbox by day: retention is a partition dropped, not a DELETE that leaves
-- dead rows and index bloat behind at a high delivery rate (`webhooks/src/outbox.rs`).
--
-- `webhook_deliveries` is partitioned by the event's `received_at`. That time is fixed per
-- event (it travels in the event's record), so a copy of an event redelivered by the
-- stream lands in the same partition as its original and collapses into its row: the key
-- (webhook_id, event_id, received_at) is as unique as (webhook_id, event_id) was.
-- `webhook_attempts` is partitioned by `attempted_at`.
--
-- Each table has one partition per UTC day, made ahead by the webhook worker
-- (`webhook_outbox_add_day`), and a default partition for anything else (rows of before
-- this migration, a day made by nobody): the worker empties the default with a DELETE as
-- before, and drops a day once nothing in it is pending and its last delivery finished
-- longer ago than the retention.

ALTER TABLE webhook_deliveries RENAME TO webhook_deliveries_unpartitioned;
ALTER TABLE webhook_deliveries_unpartitioned
    RENAME CONSTRAINT webhook_deliveries_pkey TO webhook_deliveries_unpartitioned_pkey;
ALTER INDEX webhook_deliveries_due RENAME TO webhook_deliveries_unpartitioned_due;
ALTER INDEX webhook_deliveries_finished RENAME TO webhook_deliveries_unpartitioned_finished;

CREATE TABLE webhook_deliveries (
    webhook_id      UUID NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id        UUID NOT NULL,
    event_name      TEXT NOT NULL,
    -- The exact bytes POSTed on every attempt (the signature covers them).
    body            TEXT NOT NULL,
    -- When ingest (or the api) accepted the event: the delivery's delay is measured from it,
    -- and its partition is chosen by it.
    received_at     TIMESTAMPTZ NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at     TIMESTAMPTZ,
    PRIMARY KEY (webhook_id, event_id, received_at)
) PARTITION BY RANGE (received_at);
CREATE TABLE webhook_deliveries_default PARTITION OF webhook_deliveries DEFAULT;
INSERT INTO webhook_deliveries SELECT webhook_id, event_id, event_name, body, received_at,
    created_at, state, attempts, next_attempt_at, finished_at FROM webhook_deliveries_unpartitioned;
DROP TABLE webhook_deliveries_unpartitioned;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (webhook_id, next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (finished_at)
    WHERE state <> 'pending';

ALTER TABLE webhook_attempts RENAME TO webhook_attempts_unpartitioned;
ALTER TABLE webhook_attempts_unpartitioned
    RENAME CONSTRAINT webhook_attempts_pkey TO webhook_attempts_unpartitioned_pkey;
ALTER INDEX webhook_attempts_recent RENAME TO webhook_attempts_unpartitioned_recent;
ALTER INDEX webhook_attempts_age RENAME TO webhook_attempts_unpartitioned_age;
ALTER SEQUENCE webhook_attempts_id_seq OWNED BY NONE;

CREATE TABLE webhook_attempts (
    id            BIGINT NOT NULL DEFAULT nextval('webhook_attempts_id_seq'),
    webhook_id    UUID NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id      UUID NOT NULL,
    event_name    TEXT NOT NULL,
    attempt       INTEGER NOT NULL,
    -- delivered (2xx), retrying (another attempt is scheduled) or failed (given up).
    outcome       TEXT NOT NULL CHECK (outcome IN ('delivered', 'retrying', 'failed')),
    response_code INTEGER,
    error         TEXT,
    duration_ms   INTEGER NOT NULL,
    attempted_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (id, attempted_at)
) PARTITION BY RANGE (attempted_at);
ALTER SEQUENCE webhook_attempts_id_seq OWNED BY webhook_attempts.id;
CREATE TABLE webhook_attempts_default PARTITION OF webhook_attempts DEFAULT;
INSERT INTO webhook_attempts SELECT id, webhook_id, event_id, event_name, attempt, outcome,
    response_code, error, duration_ms, attempted_at FROM webhook_attempts_unpartitioned;
DROP TABLE webhook_attempts_unpartitioned;
CREATE INDEX webhook_attempts_recent ON webhook_attempts (webhook_id, id DESC);

-- Makes both tables' partitions of one UTC day, if missing. Rows of that day already in a
-- default partition are moved into the new one (Postgres refuses a partition whose range
-- the default holds rows of). One caller at a time.
CREATE FUNCTION webhook_outbox_add_day(day DATE) RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    suffix TEXT := to_char(day, 'YYYYMMDD');
    starts TIMESTAMPTZ := day::timestamp AT TIME ZONE 'UTC';
    ends   TIMESTAMPTZ := (day + 1)::timestamp AT TIME ZONE 'UTC';
    parent TEXT;
    time_column TEXT;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('webhook_outbox_add_day'));
    FOREACH parent IN ARRAY ARRAY['webhook_deliveries', 'webhook_attempts'] LOOP
        IF to_regclass(parent || '_p' || suffix) IS NOT NULL THEN
            CONTINUE;
        END IF;
        time_column := CASE parent WHEN 'webhook_deliveries' THEN 'received_at' ELSE 'attempted_at' END;
        EXECUTE format('CREATE TEMP TABLE webhook_outbox_moving ON COMMIT DROP AS '
                       'WITH moved AS (DELETE FROM %I WHERE %I >= %L AND %I < %L RETURNING *) '
                       'SELECT * FROM moved',
                       parent || '_default', time_column, starts, time_column, ends);
        EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                       parent || '_p' || suffix, parent, starts, ends);
        EXECUTE format('INSERT INTO %I SELECT * FROM webhook_outbox_moving', parent);
        DROP TABLE webhook_outbox_moving;
    END LOOP;
END
$$;
