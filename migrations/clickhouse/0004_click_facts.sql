-- Click facts as columns, and the rollup every breakdown reads.
--
-- Runs on ClickHouse 18.16 and current releases; re-runnable like 0003 (existing columns
-- are skipped by the runner, the rollup is truncated before its backfill, its view created
-- after it). Writers should be stopped while it runs (the consumer applies it first).

-- 1. What the redirect worked out about each click (empty / 0 for other events, and for
--    clicks stored before this migration).
ALTER TABLE events ADD COLUMN country String DEFAULT '';
ALTER TABLE events ADD COLUMN city String DEFAULT '';
ALTER TABLE events ADD COLUMN device String DEFAULT '';
ALTER TABLE events ADD COLUMN os String DEFAULT '';
ALTER TABLE events ADD COLUMN browser String DEFAULT '';
ALTER TABLE events ADD COLUMN referrer_host String DEFAULT '';
ALTER TABLE events ADD COLUMN utm_source String DEFAULT '';
ALTER TABLE events ADD COLUMN utm_medium String DEFAULT '';
ALTER TABLE events ADD COLUMN utm_campaign String DEFAULT '';
ALTER TABLE events ADD COLUMN utm_term String DEFAULT '';
ALTER TABLE events ADD COLUMN utm_content String DEFAULT '';
ALTER TABLE events ADD COLUMN bot UInt8 DEFAULT 0;
ALTER TABLE events ADD COLUMN visitor String DEFAULT '';

-- 2. Counts (and revenue) per 15 minutes and every breakdown key. Fifteen minutes, not an
--    hour, because every time zone in use today is a whole number of quarter hours from
--    UTC (India +5:30, Nepal +5:45): a day or month in any zone is a set of whole buckets.
--    `sum(events)` over any filter is the exact count at any moment (the rows of `events`
--    are stored exactly once and this table is fed by the same INSERT).
CREATE TABLE IF NOT EXISTS event_breakdowns_15m
(
    account_id       String,
    environment      String,
    bucket           DateTime,
    event_name       String,
    link_short_code  String,
    bot              UInt8,
    country          String,
    city             String,
    device           String,
    os               String,
    browser          String,
    referrer_host    String,
    utm_source       String,
    utm_medium       String,
    utm_campaign     String,
    utm_term         String,
    utm_content      String,
    revenue_currency String,
    events           UInt64,
    revenue_micros   Int64
)
ENGINE = SummingMergeTree()
PARTITION BY toYYYYMM(bucket)
ORDER BY (account_id, environment, bucket, event_name, link_short_code, bot, country, city,
          device, os, browser, referrer_host, utm_source, utm_medium, utm_campaign, utm_term,
          utm_content, revenue_currency);

TRUNCATE TABLE event_breakdowns_15m;

INSERT INTO event_breakdowns_15m
SELECT account_id, environment, toStartOfFifteenMinutes(event_time) AS bucket, event_name,
       link_short_code, bot, country, city, device, os, browser, referrer_host, utm_source,
       utm_medium, utm_campaign, utm_term, utm_content, revenue_currency,
       count() AS events, sum(revenue_micros) AS revenue_micros
FROM (SELECT account_id, environment, event_time, event_name, link_short_code, bot, country,
             city, device, os, browser, referrer_host, utm_source, utm_medium, utm_campaign,
             utm_term, utm_content, revenue_currency, revenue_micros FROM events FINAL)
GROUP BY account_id, environment, bucket, event_name, link_short_code, bot, country, city,
         device, os, browser, referrer_host, utm_source, utm_medium, utm_campaign, utm_term,
         utm_content, revenue_currency;

CREATE MATERIALIZED VIEW IF NOT EXISTS event_breakdowns_15m_mv TO event_breakdowns_15m AS
SELECT account_id, environment, toStartOfFifteenMinutes(event_time) AS bucket, event_name,
       link_short_code, bot, country, city, device, os, browser, referrer_host, utm_source,
       utm_medium, utm_campaign, utm_term, utm_content, revenue_currency,
       count() AS events, sum(revenue_micros) AS revenue_micros
FROM events
GROUP BY account_id, environment, bucket, event_name, link_short_code, bot, country, city,
         device, os, browser, referrer_host, utm_source, utm_medium, utm_campaign, utm_term,
         utm_content, revenue_currency;

-- 3. The count rollups the older analytics endpoints read count people, not bots (a bot's
--    click is kept in `events` and in the breakdowns above, where `includeBots` reaches
--    it). Their views are recreated with the filter; every row stored before this
--    migration has bot = 0, so their contents stand as they are.
DROP TABLE IF EXISTS event_counts_hourly_mv;
CREATE MATERIALIZED VIEW IF NOT EXISTS event_counts_hourly_mv TO event_counts_hourly AS
SELECT account_id, environment, toStartOfHour(event_time) AS hour, event_name, link_short_code,
       revenue_currency, count() AS events, sum(revenue_micros) AS revenue_micros
FROM events
WHERE bot = 0
GROUP BY account_id, environment, hour, event_name, link_short_code, revenue_currency;

DROP TABLE IF EXISTS event_counts_daily_mv;
CREATE MATERIALIZED VIEW IF NOT EXISTS event_counts_daily_mv TO event_counts_daily AS
SELECT account_id, environment, toDate(event_time) AS day, event_name, link_short_code,
       revenue_currency, count() AS events, sum(revenue_micros) AS revenue_micros
FROM events
WHERE bot = 0
GROUP BY account_id, environment, day, event_name, link_short_code, revenue_currency;

DROP TABLE IF EXISTS event_totals_hourly_mv;
CREATE MATERIALIZED VIEW IF NOT EXISTS event_totals_hourly_mv TO event_totals_hourly AS
SELECT account_id, environment, toStartOfHour(event_time) AS hour, event_name, revenue_currency,
       count() AS events, sum(revenue_micros) AS revenue_micros
FROM events
WHERE bot = 0
GROUP BY account_id, environment, hour, event_name, revenue_currency;
