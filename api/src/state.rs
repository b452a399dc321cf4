use std::sync::Arc;
use std::time::Duration;

use linktrace_domain::AddressPolicy;
use linktrace_platform::clock::Clock;
use linktrace_platform::kafka::EventSink;
use linktrace_platform::keys::KeyDirectory;
use moka::future::Cache;
use sqlx::PgPool;

use tokio_util::task::TaskTracker;

use crate::clicks::ClickEnricher;
use crate::links::Link;

/// What every api handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub keys: Arc<KeyDirectory>,
    pub clickhouse: clickhouse::Client,
    pub sink: Arc<dyn EventSink>,
    pub clock: Arc<dyn Clock>,
    pub settings: Arc<Settings>,
    /// Links by short code for the redirect (`None`: no such link), briefly cached.
    pub redirect_cache: Cache<String, Option<Arc<Link>>>,
    /// Trusted proxies, user agents, geo and visitor keys of the redirect.
    pub clicks: Arc<ClickEnricher>,
    /// Clicks on their way to the broker (the redirect does not wait for them); shutdown
    /// waits for them.
    pub clicks_in_flight: TaskTracker,
}

pub struct Settings {
    pub public_base_url: String,
    pub admin_token: String,
    pub attribution_window: Duration,
    /// Which addresses a webhook URL may name.
    pub endpoint_policy: AddressPolicy,
}

impl AppState {
    pub fn redirect_cache() -> Cache<String, Option<Arc<Link>>> {
        Cache::builder()
            .max_capacity(100_000)
            .time_to_live(Duration::from_secs(10))
            .build()
    }
}
