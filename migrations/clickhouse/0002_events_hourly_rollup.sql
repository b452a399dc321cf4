-- Hourly rollup for dashboards. It keeps the *set* of event ids per bucket
-- (uniqExactState), not a sum, so a redelivered event is still counted once.
CREATE TABLE IF NOT EXISTS events_hourly
(
    account_id      String,
    environment     String,
    link_short_code String,
    event_name      String,
    hour            DateTime,
    events          AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(hour)
ORDER BY (account_id, environment, link_short_code, event_name, hour);

CREATE MATERIALIZED VIEW IF NOT EXISTS events_hourly_mv TO events_hourly AS
SELECT
    account_id,
    environment,
    link_short_code,
    event_name,
    toStartOfHour(event_time) AS hour,
    uniqExactState(event_id) AS events
FROM events
GROUP BY account_id, environment, link_short_code, event_name, hour;
