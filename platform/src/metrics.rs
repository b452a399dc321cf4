//! Prometheus metrics: one process-wide registry (the crate's default) and the `/metrics`
//! text endpoint (HTTP request metrics: [`crate::http_metrics`]).

use std::sync::LazyLock;

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use prometheus::{register_int_counter_vec, Encoder, IntCounterVec, TextEncoder};

/// Latency buckets (seconds) for request and I/O histograms: 250µs to 10s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// In-process cache look-ups, by cache and hit/miss (see [`crate::cache`]).
pub static CACHE_LOOKUPS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "cache_lookups_total",
        "In-process cache look-ups, by cache and hit/miss",
        &["cache", "result"]
    )
    .expect("metric registers once")
});

/// Every registered metric in Prometheus' text format.
pub fn render() -> String {
    let mut buffer = Vec::new();
    let encoder = TextEncoder::new();
    if let Err(error) = encoder.encode(&prometheus::gather(), &mut buffer) {
        tracing::error!(%error, "could not encode metrics");
    }
    String::from_utf8(buffer).unwrap_or_default()
}

pub async fn handler() -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], render())
}
