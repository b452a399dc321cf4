use std::net::SocketAddr;

use envconfig::Envconfig;
use linktrace_platform::cache::LookupCacheConfig;
use linktrace_platform::kafka::KafkaConfig;
use linktrace_platform::postgres::PostgresConfig;

/// Ingest's configuration: every field an environment variable with a local default.
#[derive(Envconfig, Clone, Debug)]
pub struct IngestConfig {
    #[envconfig(from = "INGEST_ADDR", default = "127.0.0.1:8081")]
    pub address: SocketAddr,
    #[envconfig(nested)]
    pub postgres: PostgresConfig,
    #[envconfig(nested)]
    pub kafka: KafkaConfig,
    #[envconfig(nested)]
    pub lookup_cache: LookupCacheConfig,
    #[envconfig(from = "LINK_CACHE_TTL_SECS", default = "60")]
    pub link_cache_ttl_secs: u64,
    /// The most quota an instance leases from Postgres at once (blocks are sized by the
    /// account's recent rate up to this, and never more than a quarter of what is left).
    /// 10,000 by measurement (bench/quota.sh): at 1,000 a hot account at 50k events/s took
    /// 50 leases a second and ran at 0.965 of a test key; at 10,000, 0.997. What a killed
    /// instance strands (never given back) is at most its current and next block: about two
    /// seconds of the account's traffic.
    #[envconfig(from = "QUOTA_LEASE_BLOCK", default = "10000")]
    pub quota_lease_block: i64,
    /// Unused quota an instance holds is given back after this long without use.
    #[envconfig(from = "QUOTA_LEASE_IDLE_MS", default = "1000")]
    pub quota_lease_idle_ms: u64,
    /// Events per second each live API key may send (0: unlimited; a batch counts its
    /// events), and the burst it may save up. Over it: 429 RATE_LIMITED with Retry-After.
    #[envconfig(from = "INGEST_RATE_LIMIT_PER_SEC", default = "10000")]
    pub rate_limit_per_sec: u32,
    #[envconfig(from = "INGEST_RATE_LIMIT_BURST", default = "20000")]
    pub rate_limit_burst: u32,
    /// Events per second each test key may send (its bucket holds two seconds' worth): test
    /// events count against no quota, so this is what bounds them. Generous for any test
    /// suite, far below what a live key may send.
    #[envconfig(from = "INGEST_TEST_RATE_LIMIT_PER_SEC", default = "1000")]
    pub test_rate_limit_per_sec: u32,
    /// Proxies whose `X-Forwarded-For` names the client (the gateway), for the failed
    /// authentication throttle; empty: the TCP peer is the client.
    #[envconfig(from = "TRUSTED_PROXIES", default = "")]
    pub trusted_proxies: String,
    /// Failed authentications one address may make in a minute before it gets
    /// `429 RATE_LIMITED` until the minute is over.
    #[envconfig(from = "AUTH_FAILURES_PER_MINUTE", default = "20")]
    pub auth_failures_per_minute: u32,
    /// The largest request body, in bytes (the batch endpoint's limit is 1 MiB).
    #[envconfig(from = "INGEST_MAX_BODY_BYTES", default = "65536")]
    pub max_body_bytes: usize,
}
