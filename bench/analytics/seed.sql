-- One chunk of the analytics benchmark's synthetic history, for one account: run with
-- {account}, {offset}, {chunk}, {total}, {start}, {span} substituted (bench/analytics/run.sh).
-- Goes through the real `events` table, so the materialized views fill every rollup.
-- Event n happens at start + n*span/total (90 days, in order), on one of 2,000 links
-- (lnk1000..lnk2999); 60% clicks (with click id, IPv4 and platform), 10% installs, 15%
-- purchases, 10% sign-ups, 5% shares, from 5 M users. A click's visitor key is its user's
-- of that day (as the redirect's daily salt makes it), with one of 7 countries and 3 devices.
INSERT INTO events (event_id, account_id, environment, link_short_code, event_name, entity_id,
                    user_id, properties, source, ip, user_agent, referrer, platform, click_id,
                    event_time, event_time_ms, received_at, kafka_topic, kafka_partition, kafka_offset,
                    visitor, country, device)
SELECT
    concat('seed-', toString(n)) AS event_id,
    '{account}' AS account_id,
    'production' AS environment,
    concat('lnk', toString(1000 + intHash32(n) % 2000)) AS link_short_code,
    multiIf(mix < 60, 'click', mix < 70, 'install', mix < 85, 'purchase', mix < 95, 'signup', 'share') AS event_name,
    '' AS entity_id,
    if(mix < 60, '', concat('u', toString(intHash32(n * 5) % 5000000))) AS user_id,
    '' AS properties,
    'seed' AS source,
    if(mix < 60, IPv4NumToString(intHash32(n * 7)), '') AS ip,
    '' AS user_agent,
    '' AS referrer,
    ['ios', 'android', 'web'][intHash32(n * 11) % 3 + 1] AS platform,
    if(mix < 60, concat('c', toString(n)), '') AS click_id,
    toDateTime({start} + intDiv(n * {span}, {total})) AS event_time,
    toUInt64({start} + intDiv(n * {span}, {total})) * 1000 AS event_time_ms,
    toDateTime({start} + intDiv(n * {span}, {total})) AS received_at,
    '' AS kafka_topic,
    toUInt16(0) AS kafka_partition,
    toUInt64(0) AS kafka_offset,
    if(mix < 60, concat('v', toString(intHash32(n * 5) % 5000000), '-',
                        toString(intDiv({start} + intDiv(n * {span}, {total}), 86400))), '') AS visitor,
    if(mix < 60, ['US', 'DE', 'IN', 'BR', 'JP', 'GB', 'FR'][intHash32(n * 13) % 7 + 1], '') AS country,
    if(mix < 60, ['mobile', 'desktop', 'tablet'][intHash32(n * 17) % 3 + 1], '') AS device
FROM (SELECT number + {offset} AS n, intHash32(n * 3) % 100 AS mix FROM numbers({chunk}))
