-- Every stored event. `event_id` is unique per event (deterministic for entity events), so
-- redeliveries collapse: ReplacingMergeTree removes copies on merge, and reads count
-- `uniqExact(event_id)` (or use FINAL) so unmerged copies are never counted twice.
-- Ordered for the dashboard's reads: per account, link and event over time.
CREATE TABLE IF NOT EXISTS events
(
    event_id        String,
    account_id      String,
    environment     String,
    link_short_code String,
    event_name      String,
    entity_id       String,
    user_id         String,
    properties      String,
    source          String,
    ip              String,
    user_agent      String,
    referrer        String,
    platform        String,
    click_id        String,
    event_time      DateTime,
    event_time_ms   UInt64,
    received_at     DateTime,
    written_at      DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(event_time)
ORDER BY (account_id, link_short_code, event_name, toDate(event_time), event_id);
