use std::net::SocketAddr;

use envconfig::Envconfig;
use linktrace_platform::clickhouse::ClickHouseConfig;
use linktrace_platform::kafka::KafkaConfig;
use linktrace_platform::postgres::PostgresConfig;

#[derive(Envconfig, Clone, Debug)]
pub struct ConsumerConfig {
    /// Where `/healthz`, `/readyz` and `/metrics` are served.
    #[envconfig(from = "CONSUMER_ADDR", default = "127.0.0.1:8083")]
    pub address: SocketAddr,
    #[envconfig(from = "KAFKA_CONSUMER_GROUP", default = "linktrace-consumer")]
    pub group_id: String,
    /// Static group membership (`group.instance.id`, e.g. the pod or host name): a
    /// restarted consumer takes its partitions back at once instead of waiting for the
    /// broker to expire its old session. Empty: dynamic membership.
    #[envconfig(from = "KAFKA_CONSUMER_INSTANCE_ID", default = "")]
    pub instance_id: String,
    #[envconfig(from = "KAFKA_CONSUMER_SESSION_TIMEOUT_MS", default = "10000")]
    pub session_timeout_ms: u32,
    /// A batch is written when it holds this many events…
    #[envconfig(from = "CONSUMER_BATCH_MAX_EVENTS", default = "20000")]
    pub batch_max_events: usize,
    /// …or when its first event has waited this long.
    #[envconfig(from = "CONSUMER_BATCH_MAX_WAIT_MS", default = "250")]
    pub batch_max_wait_ms: u64,
    /// librdkafka's fetch settings (see bench/consumer-fetch.sh for what they change):
    /// the broker answers a fetch once it has `fetch.min.bytes` or after
    /// `fetch.wait.max.ms`; at most `max.partition.fetch.bytes` per partition per fetch;
    /// the client prefetches until `queued.min.messages` wait in its queue. The wait
    /// showed in every event's 202 → visible delay against tansu (a caught-up consumer got
    /// new events about once per wait, data or not): 100 ms, not librdkafka's 500
    /// (bench/consumer-latency.sh: p99 under the batch endpoint's peak).
    #[envconfig(from = "CONSUMER_FETCH_MIN_BYTES", default = "1")]
    pub fetch_min_bytes: u32,
    #[envconfig(from = "CONSUMER_FETCH_WAIT_MAX_MS", default = "100")]
    pub fetch_wait_max_ms: u32,
    #[envconfig(from = "CONSUMER_MAX_PARTITION_FETCH_BYTES", default = "1048576")]
    pub max_partition_fetch_bytes: u32,
    #[envconfig(from = "CONSUMER_QUEUED_MIN_MESSAGES", default = "100000")]
    pub queued_min_messages: u32,
    /// The longest pause between retries of a failed ClickHouse write.
    #[envconfig(from = "CONSUMER_RETRY_MAX_BACKOFF_MS", default = "5000")]
    pub retry_max_backoff_ms: u64,
    /// How long one INSERT may take before the consumer gives up on it and retries. A
    /// write left open (its consumer died) is resolved by the partition's next owner
    /// once this and a margin have passed (see `linktrace_platform::stream_ledger`).
    #[envconfig(from = "CONSUMER_WRITE_TIMEOUT_SECS", default = "30")]
    pub write_timeout_secs: u64,
    /// How many recent event ids per partition are remembered to drop a producer retry's
    /// copy that arrives at a later offset.
    #[envconfig(from = "CONSUMER_RECENT_EVENT_WINDOW", default = "100000")]
    pub recent_event_window: usize,
    /// How often the rollup reconciler looks for marked days (`consumer::reconcile`).
    #[envconfig(from = "CONSUMER_RECONCILE_EVERY_SECS", default = "60")]
    pub reconcile_every_secs: u64,
    /// How long the reconciler waits between its two reads of a day: longer than any write
    /// lasts. Empty: the write deadline (twice `CONSUMER_WRITE_TIMEOUT_SECS`).
    #[envconfig(from = "CONSUMER_RECONCILE_SETTLE_SECS", default = "")]
    pub reconcile_settle_secs: String,
    /// Tests of crash safety only: a file path; after its first write the consumer creates
    /// it and holds, never committing (see `pipeline::FaultHook`). Empty: off.
    #[envconfig(from = "CONSUMER_FAULT_HOLD_BEFORE_COMMIT", default = "")]
    pub fault_hold_before_commit: String,
    #[envconfig(nested)]
    pub kafka: KafkaConfig,
    #[envconfig(nested)]
    pub clickhouse: ClickHouseConfig,
    #[envconfig(nested)]
    pub postgres: PostgresConfig,
}

impl ConsumerConfig {
    pub fn write_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.write_timeout_secs.max(1))
    }

    /// When a write left open may be resolved by another consumer: the writer's own
    /// timeout and a margin for the server to finish what it received.
    pub fn write_deadline(&self) -> std::time::Duration {
        self.write_timeout() * 2
    }

    /// How long the reconciler's two reads of a day are apart.
    pub fn reconcile_settle(&self) -> std::time::Duration {
        self.reconcile_settle_secs
            .trim()
            .parse()
            .map(std::time::Duration::from_secs)
            .unwrap_or_else(|_| self.write_deadline())
    }
}
