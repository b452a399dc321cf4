//! End-to-end delay: sends events at a steady rate through the gateway and records, for
//! each, the time from its 202 to the moment a ClickHouse query first sees it.
//!
//! Usage: e2e-probe BASE_URL API_KEY CLICKHOUSE_URL DATABASE RATE_PER_SEC SECONDS
//! Prints one JSON line: {"sent", "seen", "p50_ms", "p99_ms", "max_ms"}.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clickhouse::Row;
use serde::Deserialize;
use serde_json::json;

#[derive(Row, Deserialize)]
struct Seen {
    user_id: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        args.len() == 7,
        "usage: e2e-probe BASE_URL API_KEY CLICKHOUSE_URL DATABASE RATE SECONDS"
    );
    let (base, key) = (args[1].clone(), args[2].clone());
    let clickhouse = clickhouse::Client::default()
        .with_url(&args[3])
        .with_database(&args[4])
        .with_validation(false);
    let rate: u64 = args[5].parse()?;
    let seconds: u64 = args[6].parse()?;
    let run = format!("probe-{}", chrono::Utc::now().timestamp_millis());

    let acked: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let seen: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let http = reqwest::Client::new();

    // Poll ClickHouse for this run's events every 25 ms.
    let poller = {
        let (acked, seen, run) = (acked.clone(), seen.clone(), run.clone());
        tokio::spawn(async move {
            loop {
                let rows = clickhouse
                    .query(
                        "SELECT user_id FROM events WHERE event_name = 'probe' AND user_id LIKE ?",
                    )
                    .bind(format!("{run}-%"))
                    .fetch_all::<Seen>()
                    .await
                    .unwrap_or_default();
                let now = Instant::now();
                let done = {
                    let mut seen = seen.lock().unwrap();
                    for row in rows {
                        seen.entry(row.user_id).or_insert(now);
                    }
                    seen.len() >= acked.lock().unwrap().len() && seen.len() as u64 >= rate * seconds
                };
                if done {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        })
    };

    // capture-event carries a user id we can look for; it takes the same path as events.
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    let mut sends = Vec::new();
    for i in 0..rate * seconds {
        tick.tick().await;
        let (http, base, key, acked) = (http.clone(), base.clone(), key.clone(), acked.clone());
        let user = format!("{run}-{i}");
        sends.push(tokio::spawn(async move {
            let response = http
                .post(format!("{base}/api/v1/capture-event"))
                .header("linkrunner-key", key)
                .json(&json!({ "event_name": "probe", "user_id": user }))
                .send()
                .await;
            if matches!(response, Ok(ref r) if r.status().as_u16() == 201) {
                acked.lock().unwrap().insert(user, Instant::now());
            }
        }));
    }
    for send in sends {
        let _ = send.await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(30), poller).await;

    let acked = acked.lock().unwrap();
    let seen = seen.lock().unwrap();
    let mut delays: Vec<f64> = acked
        .iter()
        .filter_map(|(user, at)| {
            seen.get(user)
                .map(|s| s.saturating_duration_since(*at).as_secs_f64() * 1000.0)
        })
        .collect();
    delays.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pick = |q: f64| {
        delays
            .get(((delays.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "{}",
        json!({ "sent": acked.len(), "seen": delays.len(), "p50_ms": pick(0.50), "p99_ms": pick(0.99), "max_ms": pick(1.0) })
    );
    Ok(())
}
