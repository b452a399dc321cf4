//! Kafka: configuration shared by producers and consumers, the event sink, and topic admin.
//! Nothing here knows which Kafka-protocol broker is on the other end.

mod admin;
pub mod group;
mod observed;
mod sink;

use envconfig::Envconfig;
use linktrace_domain::WriteLayout;
use rdkafka::ClientConfig;

pub use admin::create_topic;
pub use observed::{ObservedContext, LAG};
pub use sink::{register_metrics, EventSink, KafkaReadiness, KafkaSink, SinkError};

#[derive(Envconfig, Clone, Debug)]
pub struct KafkaConfig {
    #[envconfig(from = "KAFKA_BROKERS", default = "127.0.0.1:9092")]
    pub brokers: String,
    #[envconfig(from = "KAFKA_EVENTS_TOPIC", default = "linktrace.events")]
    pub events_topic: String,
    #[envconfig(from = "KAFKA_DEAD_LETTER_TOPIC", default = "linktrace.events.dlq")]
    pub dead_letter_topic: String,
    /// How long the producer waits to fill a batch. Chosen by measurement (BENCHMARKS.md).
    #[envconfig(from = "KAFKA_PRODUCER_LINGER_MS", default = "2")]
    pub producer_linger_ms: u32,
    /// `none`, `lz4`, `zstd`, `snappy` or `gzip`.
    #[envconfig(from = "KAFKA_PRODUCER_COMPRESSION", default = "none")]
    pub producer_compression: String,
    /// The deadline for the broker's acknowledgement; past it the request fails (503).
    #[envconfig(from = "KAFKA_PRODUCER_MESSAGE_TIMEOUT_MS", default = "5000")]
    pub producer_message_timeout_ms: u32,
    /// The idempotent producer (no duplicates from the producer's own retries). Turn it off
    /// only for a broker without idempotent-producer support: every event also carries an
    /// `event_id` that storage deduplicates on, so a retry's copy is never counted.
    #[envconfig(from = "KAFKA_PRODUCER_IDEMPOTENT", default = "true")]
    pub producer_idempotent: bool,
    /// The event record's layout producers write (`linktrace_domain::event_record`): this
    /// build's own (2) unless a rolling upgrade from a build that reads layout 1 only still
    /// runs older consumers or webhook workers — then 1 on ingest and the api until those
    /// are upgraded (an older reader dead-letters a layout it does not know).
    #[envconfig(from = "KAFKA_RECORD_SCHEMA_VERSION", default = "2")]
    pub record_layout: WriteLayout,
    /// Messages the producer may hold in memory before sends wait (and then fail).
    #[envconfig(from = "KAFKA_PRODUCER_QUEUE_MAX_MESSAGES", default = "100000")]
    pub producer_queue_max_messages: u32,
}

impl KafkaConfig {
    /// The producer's settings: acknowledged by all in-sync replicas, idempotent unless
    /// configured otherwise, bounded in time and memory.
    pub fn producer_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("acks", "all")
            .set("enable.idempotence", self.producer_idempotent.to_string())
            .set("linger.ms", self.producer_linger_ms.to_string())
            .set("compression.type", &self.producer_compression)
            .set(
                "message.timeout.ms",
                self.producer_message_timeout_ms.to_string(),
            )
            .set(
                "queue.buffering.max.messages",
                self.producer_queue_max_messages.to_string(),
            )
            .set("socket.keepalive.enable", "true");
        config
    }

    /// A member of consumer group `group_id` that commits offsets itself, only after its
    /// work is done (never automatically), starts from the earliest offset when the group
    /// has none, and reports statistics every 5 s (the lag gauge). `instance_id`: static
    /// membership (`group.instance.id`), so a restarted member takes its partitions back
    /// at once; empty for dynamic membership.
    pub fn group_consumer_config(&self, group_id: &str, instance_id: &str) -> ClientConfig {
        let mut config = self.client_config();
        if !instance_id.is_empty() {
            config.set("group.instance.id", instance_id);
        }
        config
            .set("group.id", group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("statistics.interval.ms", "5000");
        config
    }

    /// Settings common to every client (admin, consumer).
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        config
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(settings: &[(&str, &str)]) -> Result<KafkaConfig, envconfig::Error> {
        let settings: HashMap<String, String> = settings
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        KafkaConfig::init_from_hashmap(&settings)
    }

    #[test]
    fn producers_write_this_builds_layout_unless_told_an_older_one() {
        assert_eq!(config(&[]).unwrap().record_layout, WriteLayout::CURRENT);
        let older = config(&[("KAFKA_RECORD_SCHEMA_VERSION", "1")]).unwrap();
        assert_eq!(older.record_layout.get(), 1);
        for refused in ["0", "3", "latest"] {
            assert!(
                config(&[("KAFKA_RECORD_SCHEMA_VERSION", refused)]).is_err(),
                "{refused}"
            );
        }
    }
}
