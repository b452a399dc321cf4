use std::net::SocketAddr;

use envconfig::Envconfig;
use linktrace_platform::clickhouse::ClickHouseConfig;
use linktrace_platform::endpoint_policy::EndpointPolicyConfig;
use linktrace_platform::kafka::KafkaConfig;
use linktrace_platform::postgres::PostgresConfig;

use crate::delivery::DeliveryConfig;
use crate::retry::RetryConfig;

#[derive(Envconfig, Clone, Debug)]
pub struct WebhooksConfig {
    /// Where `/healthz`, `/readyz` and `/metrics` are served.
    #[envconfig(from = "WEBHOOKS_ADDR", default = "127.0.0.1:8084")]
    pub address: SocketAddr,
    /// This worker's consumer group on the events topic.
    #[envconfig(from = "WEBHOOKS_CONSUMER_GROUP", default = "linktrace-webhooks")]
    pub group_id: String,
    /// Static group membership (see the consumer's `KAFKA_CONSUMER_INSTANCE_ID`).
    #[envconfig(from = "WEBHOOKS_CONSUMER_INSTANCE_ID", default = "")]
    pub instance_id: String,
    /// Finished deliveries and attempts are kept this long (for `…/deliveries`, and so that
    /// a redelivered event collapses into its row). Rows ≈ deliveries per second × this.
    #[envconfig(from = "WEBHOOKS_RETENTION_HOURS", default = "24")]
    pub retention_hours: u32,
    #[envconfig(nested)]
    pub delivery: DeliveryConfig,
    #[envconfig(nested)]
    pub retry: RetryConfig,
    #[envconfig(nested)]
    pub endpoint_policy: EndpointPolicyConfig,
    #[envconfig(nested)]
    pub kafka: KafkaConfig,
    #[envconfig(nested)]
    pub clickhouse: ClickHouseConfig,
    #[envconfig(nested)]
    pub postgres: PostgresConfig,
}
