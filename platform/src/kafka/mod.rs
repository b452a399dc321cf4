//! Kafka: configuration shared by producers and consumers, the event sink, and topic admin.
//! Nothing here knows which Kafka-protocol broker is on the other end.

mod admin;
pub mod group;
mod observed;
mod sink;

use envconfig::Envconfig;
use rdkafka::ClientConfig;

pub use admin::create_topic;
pub use observed::{ObservedContext, LAG};
pub use sink::{EventSink, KafkaReadiness, KafkaSink, SinkError};

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
