use std::sync::LazyLock;

use linktrace_platform::metrics::LATENCY_BUCKETS;
use prometheus::{
    register_histogram, register_int_counter, register_int_counter_vec, Histogram, IntCounter,
    IntCounterVec,
};

pub static CONSUMED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "consumer_events_consumed_total",
        "Messages read from the events topic"
    )
    .expect("registers once")
});
pub static WRITTEN: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "consumer_events_written_total",
        "Events written to ClickHouse"
    )
    .expect("registers once")
});
pub static DEDUPLICATED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "consumer_events_deduplicated_total",
        "Events dropped because they were already stored"
    )
    .expect("registers once")
});
pub static FENCED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "consumer_fenced_writes_total",
        "Partition writes not made because another consumer took the partition's lease"
    )
    .expect("registers once")
});
pub static ALREADY_STORED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "consumer_events_already_stored_total",
        "Redelivered events not written again: at or below the partition's settled offset"
    )
    .expect("registers once")
});
pub static DEAD_LETTERED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "consumer_events_dead_lettered_total",
        "Messages sent to the dead-letter topic, by reason",
        &["reason"]
    )
    .expect("registers once")
});
pub static CLICKHOUSE_ERRORS: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "consumer_clickhouse_errors_total",
        "Failed ClickHouse writes (each retried)"
    )
    .expect("registers once")
});
pub static BATCH_SIZE: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(
        "consumer_batch_size",
        "Events per ClickHouse write",
        vec![1.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0]
    )
    .expect("registers once")
});
pub static WRITE_LATENCY: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(
        "consumer_write_duration_seconds",
        "ClickHouse write latency per batch",
        LATENCY_BUCKETS.to_vec()
    )
    .expect("registers once")
});
pub static COMMIT_LATENCY: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(
        "consumer_commit_duration_seconds",
        "Offset commit latency per batch (the broker's answer)",
        LATENCY_BUCKETS.to_vec()
    )
    .expect("registers once")
});
pub static BATCH_LATENCY: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(
        "consumer_batch_duration_seconds",
        "A batch from its last message gathered to its offsets committed: decode, dedup, write, commit",
        LATENCY_BUCKETS.to_vec()
    )
    .expect("registers once")
});

/// Registers every consumer metric now (each dead-letter reason at zero), so that a
/// dashboard reads zeros, not "no data", until something happens.
pub fn register() {
    for counter in [
        &CONSUMED,
        &WRITTEN,
        &DEDUPLICATED,
        &FENCED,
        &ALREADY_STORED,
        &CLICKHOUSE_ERRORS,
    ] {
        LazyLock::force(counter);
    }
    for histogram in [&BATCH_SIZE, &WRITE_LATENCY, &COMMIT_LATENCY, &BATCH_LATENCY] {
        LazyLock::force(histogram);
    }
    for reason in DEAD_LETTER_REASONS {
        DEAD_LETTERED.with_label_values(&[reason]);
    }
    crate::reconcile::register_metrics();
    linktrace_platform::kafka::register_metrics();
}

/// Every `reason` a message is dead-lettered with.
pub const DEAD_LETTER_REASONS: [&str; 3] =
    ["malformed", "unknown_schema_version", "clickhouse_refused"];
