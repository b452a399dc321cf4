//! What a rollup reconciliation pass costs (`linktrace_consumer::reconcile`), on the
//! ClickHouse server at `CLICKHOUSE_URL`: a day of `RECONCILE_EVENTS` synthetic events
//! (spread like real traffic: accounts, links, event names, countries, visitors, users) is
//! written into a database of its own through the views; then, in `RECONCILE_ROUNDS`
//! interleaved rounds, the time of
//!
//! - `scan`: a plain `count()` of the day's events (the baseline: one read of the day);
//! - each rollup's views' own query over the day (what the views computed when the events
//!   were written: the least a comparison must read), and its differences query (what one
//!   read of a pass costs);
//! - `clean_pass`: [`reconcile_day`] over the day in agreement (one read of every rollup);
//!
//! and once, `repair_pass`: the same after a write of 1% more events that two views missed
//! (two reads, the settle wait set to zero, and the repairs), checked to end in agreement.
//! Prints one JSON object; `bench/reconcile.sh` runs it and writes BENCHMARKS.md's section.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::NaiveDate;
use clickhouse::Client;
use linktrace_consumer::reconcile::{reconcile_day, rollups};
use serde_json::json;

const DAY: &str = "2026-11-18";

fn insert_sql(database: &str, events: u64, offset: u64) -> String {
    // Deterministic mixes from the row number: 20 accounts, 1,000 links, 70% clicks,
    // 20% installs, 10% purchases, 12 countries, a visitor key per 3 clicks.
    format!(
        "INSERT INTO {database}.events (event_id, account_id, environment, link_short_code, event_name, \
           user_id, source, ip, platform, click_id, event_time, event_time_ms, received_at, \
           country, device, os, browser, visitor, kafka_topic, kafka_partition, kafka_offset) \
         SELECT toString(generateUUIDv4()), \
                concat('00000000-0000-4000-8000-0000000000', toString(10 + n % 20)), \
                'production', concat('link', toString(n % 1000)), \
                multiIf(n % 10 < 7, 'click', n % 10 < 9, 'install', 'purchase'), \
                if(n % 10 < 7, '', concat('user', toString(n % 50000))), \
                if(n % 10 < 7, 'redirect', 'api'), \
                if(n % 10 < 7, concat('198.51.', toString(n % 200), '.', toString(n % 251)), ''), \
                'ios', if(n % 10 < 7, toString(generateUUIDv4()), ''), \
                t, toUInt64(toUInt32(t)) * 1000, t, \
                arrayElement(['US','DE','JP','IN','BR','FR','GB','CA','MX','ES','IT','KR'], 1 + n % 12), \
                if(n % 2 = 0, 'mobile', 'desktop'), if(n % 2 = 0, 'iOS', 'Windows'), 'Safari', \
                if(n % 10 < 7, concat('visitor', toString(intDiv(n, 3))), ''), \
                'events', toUInt16(n % 8), n \
           FROM (SELECT number + {offset} AS n, \
                        toDateTime('{DAY} 00:00:00') + toUInt32(intDiv((number + {offset}) * 86399, {total})) AS t \
                   FROM system.numbers LIMIT {events})",
        total = events.max(1) + offset,
    )
}

async fn timed<F, T>(work: F) -> anyhow::Result<(f64, T)>
where
    F: std::future::Future<Output = anyhow::Result<T>>,
{
    let started = Instant::now();
    let out = work.await?;
    Ok((started.elapsed().as_secs_f64() * 1000.0, out))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:8123".into());
    let events: u64 = std::env::var("RECONCILE_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000);
    let rounds: usize = std::env::var("RECONCILE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let database = std::env::var("CLICKHOUSE_DATABASE")
        .unwrap_or_else(|_| format!("linktrace_reconcile_{}", std::process::id()));
    let day: NaiveDate = DAY.parse()?;
    let server = Client::default().with_url(&url).with_validation(false);
    let client = server.clone().with_database(&database);
    server
        .query(&format!("CREATE DATABASE IF NOT EXISTS {database}"))
        .execute()
        .await?;
    linktrace_platform::clickhouse::migrate(&client)
        .await
        .context("applying the migrations")?;
    let (write_ms, ()) = timed(async {
        client
            .query(&insert_sql(&database, events, 0))
            .execute()
            .await?;
        Ok(())
    })
    .await?;
    let all = rollups(&client, &database).await?;
    let scan_sql = format!(
        "SELECT count() FROM {database}.events WHERE event_time >= toDateTime('{DAY} 00:00:00') \
         AND event_time < toDateTime('{DAY} 00:00:00') + 86400"
    );
    let mut scan = Vec::new();
    let mut clean_pass = Vec::new();
    let mut per_rollup: Vec<Vec<f64>> = vec![Vec::new(); all.len()];
    let mut per_view: Vec<Vec<f64>> = vec![Vec::new(); all.len()];
    for _ in 0..rounds {
        let (ms, counted) =
            timed(async { Ok(client.query(&scan_sql).fetch_one::<u64>().await?) }).await?;
        anyhow::ensure!(
            counted == events,
            "{counted} events in the day, {events} written"
        );
        scan.push(ms);
        for ((rollup, times), view_times) in all
            .iter()
            .zip(per_rollup.iter_mut())
            .zip(per_view.iter_mut())
        {
            let views = rollup.views_over_sql(&database, day);
            let (ms, _) =
                timed(async { Ok(client.query(&views).fetch_one::<u64>().await?) }).await?;
            view_times.push(ms);
            let sql = format!(
                "SELECT count() FROM ({})",
                rollup.differences_sql(&database, day)
            );
            let (ms, differing) =
                timed(async { Ok(client.query(&sql).fetch_one::<u64>().await?) }).await?;
            anyhow::ensure!(differing == 0, "{}: {differing} differences", rollup.target);
            times.push(ms);
        }
        let (ms, outcome) =
            timed(async { reconcile_day(&client, &database, &all, day, Duration::ZERO).await })
                .await?;
        anyhow::ensure!(outcome.clean(), "a clean day: {outcome:?}");
        clean_pass.push(ms);
    }
    // A write of 1% more events that two views missed.
    let missed = (events / 100).max(1);
    for view in ["event_counts_hourly_mv", "event_breakdowns_15m_mv"] {
        client
            .query(&format!("DETACH TABLE {database}.{view}"))
            .execute()
            .await?;
    }
    client
        .query(&insert_sql(&database, missed, events))
        .execute()
        .await?;
    for view in ["event_counts_hourly_mv", "event_breakdowns_15m_mv"] {
        client
            .query(&format!("ATTACH TABLE {database}.{view}"))
            .execute()
            .await?;
    }
    let (repair_ms, repaired) =
        timed(async { reconcile_day(&client, &database, &all, day, Duration::ZERO).await }).await?;
    let (_, after) =
        timed(async { reconcile_day(&client, &database, &all, day, Duration::ZERO).await }).await?;
    anyhow::ensure!(after.clean(), "in agreement after the repair: {after:?}");
    let sum: u64 = client
        .query(&format!(
            "SELECT toUInt64(sum(events)) FROM {database}.event_breakdowns_15m"
        ))
        .fetch_one()
        .await?;
    anyhow::ensure!(
        sum == events + missed,
        "breakdowns sum {sum}, events {}",
        events + missed
    );
    let scan_ms = median(&mut scan);
    let clean_ms = median(&mut clean_pass);
    let rollup_ms: serde_json::Map<String, serde_json::Value> = all
        .iter()
        .zip(per_rollup.iter_mut())
        .zip(per_view.iter_mut())
        .map(|((rollup, times), view_times)| {
            let ms = median(times);
            let views_ms = median(view_times);
            (
                rollup.target.clone(),
                json!({ "ms": ms, "views_ms": views_ms, "vs_views": ms / views_ms }),
            )
        })
        .collect();
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "events": events,
            "rounds": rounds,
            "server": client.query("SELECT version()").fetch_one::<String>().await?,
            "write_ms": write_ms,
            "scan_ms": scan_ms,
            "differences": rollup_ms,
            "clean_pass_ms": clean_ms,
            "clean_pass_vs_scan": clean_ms / scan_ms,
            "missed_events": missed,
            "repair_pass_ms": repair_ms,
            "repaired_rows": repaired.repaired,
        }))?
    );
    if std::env::var("BENCH_KEEP").as_deref() != Ok("1") {
        server
            .query(&format!("DROP DATABASE IF EXISTS {database}"))
            .execute()
            .await?;
    }
    Ok(())
}
