-- Unique visitors (spec, "Links at scale"): the breakdown rollup keeps, beside its counts, a
-- `uniqHLL12` sketch of who the row's events came from: the salted visitor key for clicks,
-- the user id for every other event (empty ones left out). `uniqHLL12Merge(uniques)` over
-- any set of rows is their distinct visitors or users, approximate (exact for small sets,
-- ~1.6% error beyond; at most 2.5 KB a row), as the funnel's users already are. The
-- rollup's key is unchanged: SummingMergeTree merges an AggregateFunction column's states.
--
-- The view is made again first, then the rows stored before get their sketches as rows of
-- their own that add nothing to any count (events, repeats and revenue 0). Merging a sketch
-- with itself changes nothing, so rows the new view also saw, or a re-run of this
-- migration, count each visitor once. Runs on ClickHouse 18.16 and current releases. A
-- cluster starts empty, so it has no backfill (see platform::clickhouse::cluster).
ALTER TABLE event_breakdowns_15m ADD COLUMN uniques AggregateFunction(uniqHLL12, String);

DROP TABLE IF EXISTS event_breakdowns_15m_mv;
CREATE MATERIALIZED VIEW IF NOT EXISTS event_breakdowns_15m_mv TO event_breakdowns_15m AS
SELECT account_id, environment, toStartOfFifteenMinutes(event_time) AS bucket, event_name,
       link_short_code, bot, country, city, device, os, browser, referrer_host, utm_source,
       utm_medium, utm_campaign, utm_term, utm_content, revenue_currency,
       count() AS events, sum(toDecimal128(revenue_micros, 0)) AS revenue_micros,
       toUInt64(sum(is_repeat)) AS repeats,
       uniqHLL12StateIf(if(event_name = 'click', visitor, user_id),
                        if(event_name = 'click', visitor, user_id) != '') AS uniques
FROM events
GROUP BY account_id, environment, bucket, event_name, link_short_code, bot, country, city,
         device, os, browser, referrer_host, utm_source, utm_medium, utm_campaign, utm_term,
         utm_content, revenue_currency;

INSERT INTO event_breakdowns_15m (account_id, environment, bucket, event_name, link_short_code,
       bot, country, city, device, os, browser, referrer_host, utm_source, utm_medium,
       utm_campaign, utm_term, utm_content, revenue_currency, uniques)
SELECT account_id, environment, toStartOfFifteenMinutes(event_time) AS bucket, event_name,
       link_short_code, bot, country, city, device, os, browser, referrer_host, utm_source,
       utm_medium, utm_campaign, utm_term, utm_content, revenue_currency,
       uniqHLL12State(who) AS uniques
FROM (SELECT account_id, environment, event_time, event_name, link_short_code, bot, country,
             city, device, os, browser, referrer_host, utm_source, utm_medium, utm_campaign,
             utm_term, utm_content, revenue_currency,
             if(event_name = 'click', visitor, user_id) AS who
        FROM events FINAL)
WHERE who != ''
GROUP BY account_id, environment, bucket, event_name, link_short_code, bot, country, city,
         device, os, browser, referrer_host, utm_source, utm_medium, utm_campaign, utm_term,
         utm_content, revenue_currency;
