//! A group consumer's context: logs rebalances and turns librdkafka's statistics into the
//! per-partition lag gauge.

use rdkafka::consumer::{ConsumerContext, Rebalance};
use rdkafka::{ClientContext, Statistics};

use std::sync::LazyLock;

use prometheus::{register_int_gauge_vec, IntGaugeVec};

/// Messages the group is behind each partition's end (from librdkafka's statistics).
pub static LAG: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "consumer_lag",
        "Messages behind the partition's end, per partition",
        &["topic", "partition"]
    )
    .expect("registers once")
});

pub struct ObservedContext;

impl ClientContext for ObservedContext {
    fn stats(&self, statistics: Statistics) {
        for (topic_name, topic) in &statistics.topics {
            for (partition_id, partition) in &topic.partitions {
                if *partition_id < 0 || partition.consumer_lag < 0 {
                    continue;
                }
                LAG.with_label_values(&[topic_name, &partition_id.to_string()])
                    .set(partition.consumer_lag);
            }
        }
    }
}

impl ConsumerContext for ObservedContext {
    fn pre_rebalance(
        &self,
        _consumer: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &Rebalance<'_>,
    ) {
        match rebalance {
            Rebalance::Assign(partitions) => {
                tracing::info!(partitions = partitions.count(), "partitions assigned")
            }
            Rebalance::Revoke(partitions) => {
                tracing::info!(partitions = partitions.count(), "partitions revoked")
            }
            Rebalance::Error(error) => tracing::warn!(%error, "rebalance error"),
        }
    }
}
