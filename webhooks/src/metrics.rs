use std::sync::LazyLock;

use linktrace_platform::metrics::LATENCY_BUCKETS;
use prometheus::{
    register_histogram, register_int_counter, register_int_counter_vec, register_int_gauge,
    Histogram, IntCounter, IntCounterVec, IntGauge,
};

/// Attempts by what followed them: `delivered` (2xx), `retried` (another attempt is
/// scheduled) or `failed` (given up after the retry window).
pub static ATTEMPTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "webhook_attempts_total",
        "Delivery attempts, by outcome: delivered, retried, failed",
        &["outcome"]
    )
    .expect("registers once")
});
pub static ATTEMPT_DURATION: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(
        "webhook_attempt_duration_seconds",
        "How long endpoints took to answer an attempt (or to fail it)",
        LATENCY_BUCKETS.to_vec()
    )
    .expect("registers once")
});
pub static DELIVERY_DELAY: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(
        "webhook_delivery_delay_seconds",
        "From the event's acceptance (the 202) to its successful delivery",
        vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0, 86400.0]
    )
    .expect("registers once")
});
pub static SETTLE_WAIT: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(
        "webhook_settle_wait_seconds",
        "How long a batch with matching events waited for storage to settle them",
        LATENCY_BUCKETS.to_vec()
    )
    .expect("registers once")
});
pub static BACKLOG: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "webhook_backlog",
        "Deliveries not finished yet: due, in flight or waiting for a retry"
    )
    .expect("registers once")
});
pub static ENQUEUED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "webhook_deliveries_enqueued_total",
        "Deliveries written to the outbox (a redelivered event's are not counted again)"
    )
    .expect("registers once")
});
pub static NOT_STORED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "webhook_events_not_stored_total",
        "Matching messages storage did not keep at their position (copies, refused rows): not delivered"
    )
    .expect("registers once")
});

/// Registers every worker metric now (each attempt outcome at zero), so that a dashboard
/// reads zeros, not "no data", until something happens.
pub fn register() {
    for histogram in [&ATTEMPT_DURATION, &DELIVERY_DELAY, &SETTLE_WAIT] {
        LazyLock::force(histogram);
    }
    for counter in [&ENQUEUED, &NOT_STORED] {
        LazyLock::force(counter);
    }
    LazyLock::force(&BACKLOG);
    for outcome in ["delivered", "retried", "failed"] {
        ATTEMPTS.with_label_values(&[outcome]);
    }
}
