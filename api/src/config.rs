use std::net::SocketAddr;

use envconfig::Envconfig;
use linktrace_platform::cache::LookupCacheConfig;

use crate::clicks::ClickConfig;
use linktrace_platform::clickhouse::ClickHouseConfig;
use linktrace_platform::endpoint_policy::EndpointPolicyConfig;
use linktrace_platform::kafka::KafkaConfig;
use linktrace_platform::postgres::PostgresConfig;
use linktrace_platform::secret::Secret;

#[derive(Envconfig, Clone, Debug)]
pub struct ApiConfig {
    #[envconfig(from = "API_ADDR", default = "127.0.0.1:8082")]
    pub address: SocketAddr,
    /// The base URL customers use; a link's public URL is `{base}/l/{shortCode}`.
    #[envconfig(from = "PUBLIC_BASE_URL", default = "http://127.0.0.1:8080")]
    pub public_base_url: String,
    /// The bearer token of `/admin/v1/*`. Empty: the admin routes refuse every request. The
    /// local stack's development token is accepted from loopback only.
    #[envconfig(from = "LINKTRACE_ADMIN_TOKEN", default = "")]
    pub admin_token: Secret,
    /// `development` or `production`; production refuses to start without an admin token of
    /// its own (compose sets it).
    #[envconfig(from = "LINKTRACE_ENV", default = "development")]
    pub deployment: String,
    /// Who may reach `/admin/v1/*` (addresses or CIDR ranges, comma-separated): default
    /// loopback. Anyone else gets 404.
    #[envconfig(from = "ADMIN_NETWORKS", default = "127.0.0.1,::1")]
    pub admin_networks: String,
    /// Failed authentications (admin token or API key) one address may make in a minute
    /// before it gets `429 RATE_LIMITED` until the minute is over.
    #[envconfig(from = "AUTH_FAILURES_PER_MINUTE", default = "20")]
    pub auth_failures_per_minute: u32,
    /// Requests per second each API key may make of the api's `/api/v1/*` reads and writes
    /// (0: unlimited), and the burst it may save up; over it, 429 RATE_LIMITED with
    /// Retry-After. Per instance (approximate across instances).
    #[envconfig(from = "API_RATE_LIMIT_PER_SEC", default = "100")]
    pub rate_limit_per_sec: u32,
    #[envconfig(from = "API_RATE_LIMIT_BURST", default = "100")]
    pub rate_limit_burst: u32,
    /// How far back a fingerprint match looks for the device's click.
    #[envconfig(from = "ATTRIBUTION_WINDOW_HOURS", default = "24")]
    pub attribution_window_hours: u32,
    /// The account whose apps the shared link host's `apple-app-site-association` and
    /// `assetlinks.json` list (a single-company install). Empty: no account's, so no
    /// tenant's app claims every tenant's links.
    #[envconfig(from = "LINK_HOST_ACCOUNT", default = "")]
    pub link_host_account: String,
    /// The DNS server (`ip:port`) that domain verification asks for TXT records; empty: the
    /// system's resolver (`/etc/resolv.conf`).
    #[envconfig(from = "DNS_RESOLVER", default = "")]
    pub dns_resolver: String,
    /// Where the dashboard's charting library is (uPlot's `dist` folder, which deploy installs
    /// from the npm registry); empty: the dashboard draws plain bars instead.
    #[envconfig(from = "DASHBOARD_ASSETS_DIR", default = "")]
    pub dashboard_assets_dir: String,
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
