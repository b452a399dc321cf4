-- Revenue sums that never wrap. Each event's `revenue_micros` fits an Int64 (an amount is
-- at most 1e12 major units, 1e18 micros), but the rollups summed them as Int64 too, so ten
-- such events in one bucket wrapped to a negative number. The rollups now sum into
-- Decimal128(0) (38 digits of micros: 1e32 major units, 1e20 events at the largest amount),
-- and every view converts before it sums, so a single INSERT of many events cannot wrap
-- either. Readers sum Decimal128 and read the sum as text (`toString`), exact.
--
-- Runs on ClickHouse 18.16 and current releases. A column already converted is converted
-- again as a no-op, so a partial run can be re-run. Writers should be stopped while it
-- runs (the consumer applies it before it consumes): each view is dropped and made again.

ALTER TABLE event_counts_hourly MODIFY COLUMN revenue_micros Decimal128(0);
ALTER TABLE event_counts_daily MODIFY COLUMN revenue_micros Decimal128(0);
ALTER TABLE event_totals_hourly MODIFY COLUMN revenue_micros Decimal128(0);
ALTER TABLE event_breakdowns_15m MODIFY COLUMN revenue_micros Decimal128(0);

DROP TABLE IF EXISTS event_counts_hourly_mv;
CREATE MATERIALIZED VIEW IF NOT EXISTS event_counts_hourly_mv TO event_counts_hourly AS
SELECT account_id, environment, toStartOfHour(event_time) AS hour, event_name, link_short_code,
       revenue_currency, count() AS events, sum(toDecimal128(revenue_micros, 0)) AS revenue_micros
FROM events
WHERE bot = 0
GROUP BY account_id, environment, hour, event_name, link_short_code, revenue_currency;

DROP TABLE IF EXISTS event_counts_daily_mv;
CREATE MATERIALIZED VIEW IF NOT EXISTS event_counts_daily_mv TO event_counts_daily AS
SELECT account_id, environment, toDate(event_time) AS day, event_name, link_short_code,
       revenue_currency, count() AS events, sum(toDecimal128(revenue_micros, 0)) AS revenue_micros
FROM events
WHERE bot = 0
GROUP BY account_id, environment, day, event_name, link_short_code, revenue_currency;

DROP TABLE IF EXISTS event_totals_hourly_mv;
CREATE MATERIALIZED VIEW IF NOT EXISTS event_totals_hourly_mv TO event_totals_hourly AS
SELECT account_id, environment, toStartOfHour(event_time) AS hour, event_name, revenue_currency,
       count() AS events, sum(toDecimal128(revenue_micros, 0)) AS revenue_micros
FROM events
WHERE bot = 0
GROUP BY account_id, environment, hour, event_name, revenue_currency;

DROP TABLE IF EXISTS event_breakdowns_15m_mv;
CREATE MATERIALIZED VIEW IF NOT EXISTS event_breakdowns_15m_mv TO event_breakdowns_15m AS
SELECT account_id, environment, toStartOfFifteenMinutes(event_time) AS bucket, event_name,
       link_short_code, bot, country, city, device, os, browser, referrer_host, utm_source,
       utm_medium, utm_campaign, utm_term, utm_content, revenue_currency,
       count() AS events, sum(toDecimal128(revenue_micros, 0)) AS revenue_micros
FROM events
GROUP BY account_id, environment, bucket, event_name, link_short_code, bot, country, city,
         device, os, browser, referrer_host, utm_source, utm_medium, utm_campaign, utm_term,
         utm_content, revenue_currency;
