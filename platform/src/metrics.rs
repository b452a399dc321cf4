//! Prometheus metrics: one process-wide registry (the crate's default), HTTP request
//! metrics for every router, and the `/metrics` text endpoint.

use std::sync::LazyLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{
    register_histogram_vec, register_int_counter_vec, Encoder, HistogramVec, IntCounterVec,
    TextEncoder,
};

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

static HTTP_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "http_requests_total",
        "HTTP requests answered, by route, method and status",
        &["route", "method", "status"]
    )
    .expect("metric registers once")
});

static HTTP_LATENCY: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "http_request_duration_seconds",
        "HTTP request latency, by route and method",
        &["route", "method"],
        LATENCY_BUCKETS.to_vec()
    )
    .expect("metric registers once")
});

/// axum middleware: counts and times every request by its route template (never the raw
/// path, so short codes do not explode label cardinality).
pub async fn track_http(request: Request, next: Next) -> Response {
    // Both are cheap clones (an `Arc<str>`, a standard method), not allocations.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = request.method().clone();
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let started = Instant::now();
    let response = next.run(request).await;
    HTTP_LATENCY
        .with_label_values(&[route, method.as_str()])
        .observe(started.elapsed().as_secs_f64());
    HTTP_REQUESTS
        .with_label_values(&[route, method.as_str(), response.status().as_str()])
        .inc();
    response
}

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
