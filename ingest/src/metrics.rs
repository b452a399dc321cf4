//! Ingest's own Prometheus metrics (HTTP and producer metrics live in the platform crate).

use std::sync::LazyLock;

use linktrace_domain::EventSource;
use prometheus::{register_int_counter_vec, IntCounter, IntCounterVec};

pub static EVENTS_ACCEPTED: LazyLock<PerSource> = LazyLock::new(|| {
    PerSource::new(
        register_int_counter_vec!(
            "ingest_events_accepted_total",
            "Events acknowledged by the broker and answered 2xx",
            &["source"]
        )
        .expect("metric registers once"),
    )
});

pub static EVENTS_DEDUPLICATED: LazyLock<PerSource> = LazyLock::new(|| {
    PerSource::new(
        register_int_counter_vec!(
            "ingest_events_deduplicated_total",
            "Events answered 200 deduplicated",
            &["source"]
        )
        .expect("metric registers once"),
    )
});

/// A counter by event source with ingest's two sources looked up once: a labelled look-up
/// hashes its label on every call, and these count every event.
pub struct PerSource {
    by_source: IntCounterVec,
    api: IntCounter,
    capture: IntCounter,
}

impl PerSource {
    fn new(by_source: IntCounterVec) -> Self {
        Self {
            api: by_source.with_label_values(&[EventSource::Api.as_str()]),
            capture: by_source.with_label_values(&[EventSource::Capture.as_str()]),
            by_source,
        }
    }

    pub fn inc(&self, source: EventSource) {
        match source {
            EventSource::Api => self.api.inc(),
            EventSource::Capture => self.capture.inc(),
            other => self.by_source.with_label_values(&[other.as_str()]).inc(),
        }
    }
}

pub static EVENTS_REJECTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "ingest_events_rejected_total",
        "Events refused, by reason",
        &["reason"]
    )
    .expect("metric registers once")
});

/// Registers ingest's metrics now, so that a dashboard reads zeros, not "no data", before
/// the first event.
pub fn register() {
    LazyLock::force(&EVENTS_ACCEPTED);
    LazyLock::force(&EVENTS_DEDUPLICATED);
    LazyLock::force(&EVENTS_REJECTED);
    crate::quota::register_metrics();
    crate::group_commit::register_metrics();
    linktrace_platform::kafka::register_metrics();
}
