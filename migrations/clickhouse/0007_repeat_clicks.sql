-- Repeated clicks: a click by a visitor who clicked the same link less than an hour before
-- is stored like any other, flagged `is_repeat = 1`, and counted once by default
-- (`includeRepeats=true` counts it). The breakdown rollup sums the repeats beside the
-- events (`repeats`, not part of its key), so a read counts `sum(events) - sum(repeats)`
-- or `sum(events)`; the older endpoints' rollups count people's first clicks only.
--
-- Runs on ClickHouse 18.16 and current releases; re-runnable (existing columns are skipped
-- by the runner, views dropped and made again). Writers should be stopped while it runs
-- (the consumer applies it before it consumes). Rows stored before have is_repeat = 0.
ALTER TABLE events ADD COLUMN is_repeat UInt8 DEFAULT 0;
ALTER TABLE event_breakdowns_15m ADD COLUMN repeats UInt64 DEFAULT 0;

DROP TABLE IF EXISTS event_breakdowns_15m_mv;
CREATE MATERIALIZED VIEW IF NOT EXISTS event_breakdowns_15m_mv TO event_breakdowns_15m AS
SELECT account_id, environment, toStartOfFifteenMinutes(event_time) AS bucket, event_name,
       link_short_code, bot, country, city, device, os, browser, referrer_host, utm_source,
       utm_medium, utm_campaign, utm_term, utm_content, revenue_currency,
       count() AS events, sum(toDecimal128(revenue_micros, 0)) AS revenue_micros,
       toUInt64(sum(is_repeat)) AS repeats
FROM events
GROUP BY account_id, environment, bucket, event_name, link_short_code, bot, country, city,
         device, os, browser, referrer_host, utm_source, utm_medium, utm_campaign, utm_term,
         utm_content, revenue_currency;

DROP TABLE IF EXISTS event_counts_hourly_mv;
CREATE MATERIALIZED VIEW IF NOT EXISTS event_counts_hourly_mv TO event_counts_hourly AS
SELECT account_id, environment, toStartOfHour(event_time) AS hour, event_name, link_short_code,
       revenue_currency, count() AS events, sum(toDecimal128(revenue_micros, 0)) AS revenue_micros
FROM events
WHERE bot = 0 AND is_repeat = 0
GROUP BY account_id, environment, hour, event_name, link_short_code, revenue_currency;

DROP TABLE IF EXISTS event_counts_daily_mv;
CREATE MATERIALIZED VIEW IF NOT EXISTS event_counts_daily_mv TO event_counts_daily AS
SELECT account_id, environment, toDate(event_time) AS day, event_name, link_short_code,
       revenue_currency, count() AS events, sum(toDecimal128(revenue_micros, 0)) AS revenue_micros
FROM events
WHERE bot = 0 AND is_repeat = 0
GROUP BY account_id, environment, day, event_name, link_short_code, revenue_currency;

DROP TABLE IF EXISTS event_totals_hourly_mv;
CREATE MATERIALIZED VIEW IF NOT EXISTS event_totals_hourly_mv TO event_totals_hourly AS
SELECT account_id, environment, toStartOfHour(event_time) AS hour, event_name, revenue_currency,
       count() AS events, sum(toDecimal128(revenue_micros, 0)) AS revenue_micros
FROM events
WHERE bot = 0 AND is_repeat = 0
GROUP BY account_id, environment, hour, event_name, revenue_currency;
