//! Webhook delivery, measured into a local receiver (this process):
//!
//! 1. delay — events sent at a steady rate through ingest, after 3 s of warm-up; for each,
//!    the time from its 202 to its first delivery (p50/p99/max);
//! 2. throughput — a burst sent through the batch endpoint as fast as it takes them; the
//!    deliveries per second while the backlog drains (first to last delivery).
//!
//! Usage: webhook-probe INGEST_URL API_URL API_KEY SHORT_CODE RATE SECONDS BURST
//! Prints one JSON line.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

#[derive(Default)]
struct Log {
    /// properties.probe → first arrival.
    first: HashMap<String, Instant>,
    requests: u64,
}

async fn receive(State(log): State<Arc<Mutex<Log>>>, body: Bytes) -> &'static str {
    let now = Instant::now();
    let user = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["data"]["properties"]["probe"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut log = log.lock().unwrap();
    log.requests += 1;
    log.first.entry(user).or_insert(now);
    "ok"
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 - 1.0) * q).round() as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

async fn wait_for(log: &Arc<Mutex<Log>>, prefix: &str, count: usize, within: Duration) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let seen = log
            .lock()
            .unwrap()
            .first
            .keys()
            .filter(|k| k.starts_with(prefix))
            .count();
        if seen >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends events through ingest; remembers when each was answered 202.
struct Sender {
    http: reqwest::Client,
    url: String,
    key: String,
    code: String,
}

type Acked = Arc<Mutex<HashMap<String, Instant>>>;

impl Sender {
    /// `rate` events a second for `seconds`, marked `{prefix}-{i}`.
    async fn steady(&self, prefix: &str, rate: u64, seconds: u64) -> Acked {
        let acked: Acked = Arc::default();
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
        let mut sends = Vec::new();
        for i in 0..rate * seconds {
            tick.tick().await;
            let mark = format!("{prefix}-{i}");
            let body = json!({ "linkShortCode": self.code, "eventName": "probe", "properties": { "probe": mark } });
            let request = self
                .http
                .post(&self.url)
                .header("x-api-key", &self.key)
                .json(&body);
            let acked = acked.clone();
            sends.push(tokio::spawn(async move {
                let response = request.send().await;
                if matches!(response, Ok(ref r) if r.status().as_u16() == 202) {
                    acked.lock().unwrap().insert(mark, Instant::now());
                }
            }));
        }
        for send in sends {
            let _ = send.await;
        }
        acked
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        args.len() == 8,
        "usage: webhook-probe INGEST_URL API_URL API_KEY SHORT_CODE RATE SECONDS BURST"
    );
    let (ingest, api, key, code) = (&args[1], &args[2], &args[3], &args[4]);
    let rate: u64 = args[5].parse()?;
    let seconds: u64 = args[6].parse()?;
    let burst: usize = args[7].parse()?;

    let log: Arc<Mutex<Log>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let receiver = format!("http://{}/hook", listener.local_addr()?);
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(log.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{api}/api/v1/webhooks"))
        .header("x-api-key", key)
        .json(&json!({ "url": receiver, "events": ["probe"] }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    anyhow::ensure!(created["secret"].is_string(), "no webhook: {created}");
    // The worker reads subscriptions at most a second old.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // 1. The delay, at a steady rate, after a warm-up (fresh consumer groups take their
    // partitions in the first seconds; that is start-up, not delivery).
    let sender = Sender {
        http: http.clone(),
        url: format!("{ingest}/api/v1/events"),
        key: key.clone(),
        code: code.clone(),
    };
    let warm = sender.steady("warm", rate, 3).await;
    let warm_sent = warm.lock().unwrap().len();
    wait_for(&log, "warm-", warm_sent, Duration::from_secs(60)).await;
    let acked = sender.steady("steady", rate, seconds).await;
    let steady_sent = acked.lock().unwrap().len();
    wait_for(&log, "steady-", steady_sent, Duration::from_secs(60)).await;
    let mut delays: Vec<f64> = {
        let acked = acked.lock().unwrap();
        let log = log.lock().unwrap();
        acked
            .iter()
            .filter_map(|(user, at)| {
                log.first
                    .get(user)
                    .map(|d| d.saturating_duration_since(*at).as_secs_f64() * 1000.0)
            })
            .collect()
    };
    delays.sort_by(|a, b| a.partial_cmp(b).unwrap());

    // 2. Throughput: a burst through the batch endpoint, then the backlog drains.
    let requests_before = log.lock().unwrap().requests;
    let burst_started = Instant::now();
    let batches: Vec<Vec<Value>> = (0..burst)
        .map(|i| json!({ "linkShortCode": code, "eventName": "probe", "properties": { "probe": format!("burst-{i}") } }))
        .collect::<Vec<_>>()
        .chunks(1000)
        .map(<[Value]>::to_vec)
        .collect();
    let mut queued = 0u64;
    for chunk in batches {
        let answer: Value = http
            .post(format!("{ingest}/api/v1/events/batch"))
            .header("x-api-key", key)
            .json(&json!({ "events": chunk }))
            .send()
            .await?
            .json()
            .await?;
        queued += answer["queued"].as_u64().unwrap_or(0);
    }
    let burst_sent = burst_started.elapsed();
    wait_for(&log, "burst-", queued as usize, Duration::from_secs(300)).await;
    let (delivered, first, last, requests) = {
        let log = log.lock().unwrap();
        let times: Vec<Instant> = log
            .first
            .iter()
            .filter(|(k, _)| k.starts_with("burst-"))
            .map(|(_, t)| *t)
            .collect();
        (
            times.len(),
            times.iter().min().copied(),
            times.iter().max().copied(),
            log.requests - requests_before,
        )
    };
    let drain = match (first, last) {
        (Some(first), Some(last)) => last.duration_since(first).as_secs_f64(),
        _ => f64::NAN,
    };
    let end_to_end = last.map_or(f64::NAN, |l| l.duration_since(burst_started).as_secs_f64());
    let (requests_total, events_total) = {
        let log = log.lock().unwrap();
        (log.requests, log.first.len())
    };
    println!(
        "{}",
        json!({
            "steady": {
                "rate": rate, "seconds": seconds, "sent": steady_sent, "delivered": delays.len(),
                "p50_ms": percentile(&delays, 0.5), "p99_ms": percentile(&delays, 0.99),
                "max_ms": percentile(&delays, 1.0),
            },
            "burst": {
                "queued": queued, "delivered": delivered, "requests": requests,
                "send_seconds": burst_sent.as_secs_f64(),
                "drain_seconds": drain, "per_s": delivered as f64 / drain,
                "all_delivered_after_s": end_to_end,
            },
            "receiver": { "requests": requests_total, "events": events_total }
        })
    );
    Ok(())
}
