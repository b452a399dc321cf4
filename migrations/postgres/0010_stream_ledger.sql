-- The stream ledger (`platform/src/stream_ledger.rs`): per partition of the events topic,
-- what storage has settled and who may write it. The consumer never asks ClickHouse (whose
-- replicas may lag) where to resume, and a consumer that lost a partition cannot write it.
--
--   epoch            bumped by every consumer that takes the partition; a write is begun only
--                    under the current epoch (the fence)
--   settled_through  every offset at or below it is settled: stored in ClickHouse, or
--                    skipped (a copy, or dead-lettered), and written down in stream_skips
--   intent_*         a write begun and not yet settled: its offsets, its epoch, and when its
--                    writer's own time limit for it runs out
CREATE TABLE stream_partitions (
    topic            TEXT NOT NULL,
    kafka_partition  INT NOT NULL,
    epoch            BIGINT NOT NULL,
    owner            TEXT NOT NULL,
    settled_through  BIGINT NOT NULL,
    intent_epoch     BIGINT,
    intent_from      BIGINT,
    intent_to        BIGINT,
    intent_deadline  TIMESTAMPTZ,
    PRIMARY KEY (topic, kafka_partition)
) WITH (fillfactor = 50);

-- Settled offsets that were not stored, and why: the webhook worker delivers an event only
-- if its offset is settled and not here. Rare (copies and refusals), kept for a week.
CREATE TABLE stream_skips (
    topic            TEXT NOT NULL,
    kafka_partition  INT NOT NULL,
    kafka_offset     BIGINT NOT NULL,
    reason           TEXT NOT NULL,
    skipped_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, kafka_partition, kafka_offset)
);
CREATE INDEX stream_skips_age ON stream_skips (skipped_at);
