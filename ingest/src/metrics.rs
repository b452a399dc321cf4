//! Ingest's own Prometheus metrics (HTTP and producer metrics live in the platform crate).

use std::sync::LazyLock;

use prometheus::{register_int_counter_vec, IntCounterVec};

pub static EVENTS_ACCEPTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "ingest_events_accepted_total",
        "Events acknowledged by the broker and answered 2xx",
        &["source"]
    )
    .expect("metric registers once")
});

pub static EVENTS_DEDUPLICATED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "ingest_events_deduplicated_total",
        "Events answered 200 deduplicated",
        &["source"]
    )
    .expect("metric registers once")
});

pub static EVENTS_REJECTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "ingest_events_rejected_total",
        "Events refused, by reason",
        &["reason"]
    )
    .expect("metric registers once")
});
