-- The entity dedup index, compact and hash-partitioned: `entity_claims` replaces
-- `entity_events` (docs/ARCHITECTURE.md, "Postgres that can grow").
--
-- `entity_events` kept one row per (account, environment, link, event, entity) tuple under a
-- primary key of those five columns (four of them text) and a second index on event_id.
-- `entity_claims` keeps the tuple's claim key alone, a 16-byte v5 uuid of the tuple, which is
-- also the id its event is produced with (`EventRecord::entity_event_id`; an idempotent
-- request's claims: its nonce's ids):
-- - one index of 16-byte keys, and rows of fixed width with no text;
-- - hash-partitioned on that key, the column every statement names: the shape Citus
--   distributes by (the distribution column in every unique key and every statement). Four
--   partitions: on one server each statement of a batch touches every partition, and 16 cost
--   more than they saved (bench/entity-claims.sh, 256 connections on two cores: 1.35x the
--   claims/s of the old table with 4; in earlier runs of it 0.74x with 16, 1.9x with none);
-- - fill factor 80: the state updates (pending -> queued -> stored) change no indexed
--   column, so with room on the page they are HOT updates and add no index entries.
-- A claim made before the environment was part of the id (before 0006) keeps the id its
-- event was stored with in `stored_event_id`; `event_id` is its key like every other's.
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";

-- linktrace_domain::entity_claim_key: the same bytes, the same namespace.
CREATE FUNCTION entity_claim_key(environment TEXT, account_id UUID, link TEXT, event TEXT, entity TEXT)
RETURNS UUID LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT uuid_generate_v5('6c696e6b-7472-6163-6500-000000000001'::uuid,
        environment || chr(31) || account_id::text || chr(31) || link || chr(31) || event || chr(31) || entity)
$$;

CREATE TABLE entity_claims (
    event_id        UUID NOT NULL PRIMARY KEY,
    account_id      UUID NOT NULL,
    event_time      TIMESTAMPTZ NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'queued', 'stored')),
    claimed_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    stored_event_id UUID
) PARTITION BY HASH (event_id);

DO $$
BEGIN
    FOR remainder IN 0..3 LOOP
        EXECUTE format(
            'CREATE TABLE entity_claims_%s PARTITION OF entity_claims
               FOR VALUES WITH (MODULUS 4, REMAINDER %s) WITH (fillfactor = 80)',
            remainder, remainder);
    END LOOP;
END $$;

-- Idempotent requests' claims (event name `$request`) are keyed by their own id already;
-- every other tuple by its key, its stored id kept where it differs.
INSERT INTO entity_claims (event_id, account_id, event_time, state, claimed_at, stored_event_id)
SELECT k.key, e.account_id, e.event_time, e.state, e.claimed_at, NULLIF(e.event_id, k.key)
FROM entity_events e
CROSS JOIN LATERAL (
    SELECT CASE WHEN e.event_name = '$request' THEN e.event_id
                ELSE entity_claim_key(e.environment, e.account_id, e.link_short_code, e.event_name, e.entity_id)
           END AS key) k
ON CONFLICT (event_id) DO NOTHING;

DROP TABLE entity_events;
