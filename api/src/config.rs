use std::net::SocketAddr;

use envconfig::Envconfig;
use linktrace_platform::cache::LookupCacheConfig;

use crate::clicks::ClickConfig;
use linktrace_platform::clickhouse::ClickHouseConfig;
use linktrace_platform::endpoint_policy::EndpointPolicyConfig;
use linktrace_platform::kafka::KafkaConfig;
use linktrace_platform::postgres::PostgresConfig;

#[derive(Envconfig, Clone)]
pub struct ApiConfig {
    #[envconfig(from = "API_ADDR", default = "127.0.0.1:8082")]
    pub address: SocketAddr,
    /// The base URL customers use; a link's public URL is `{base}/l/{shortCode}`.
    #[envconfig(from = "PUBLIC_BASE_URL", default = "http://127.0.0.1:8080")]
    pub public_base_url: String,
    /// The bearer token of `/admin/v1/*`.
    #[envconfig(from = "LINKTRACE_ADMIN_TOKEN", default = "lt_admin_local_dev_token")]
    pub admin_token: String,
    /// How far back a fingerprint match looks for the device's click.
    #[envconfig(from = "ATTRIBUTION_WINDOW_HOURS", default = "24")]
    pub attribution_window_hours: u32,
    #[envconfig(nested)]
    pub clicks: ClickConfig,
    #[envconfig(nested)]
    pub endpoint_policy: EndpointPolicyConfig,
    #[envconfig(nested)]
    pub lookup_cache: LookupCacheConfig,
    #[envconfig(nested)]
    pub postgres: PostgresConfig,
    #[envconfig(nested)]
    pub clickhouse: ClickHouseConfig,
    #[envconfig(nested)]
    pub kafka: KafkaConfig,
}

impl std::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConfig")
            .field("address", &self.address)
            .field("public_base_url", &self.public_base_url)
            .field("attribution_window_hours", &self.attribution_window_hours)
            .field("clicks", &self.clicks)
            .field("postgres", &self.postgres)
            .field("clickhouse", &self.clickhouse)
            .field("kafka", &self.kafka)
            .finish_non_exhaustive()
    }
}
