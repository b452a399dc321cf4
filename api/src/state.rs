use std::sync::Arc;
use std::time::Duration;

use linktrace_domain::AddressPolicy;
use linktrace_platform::cache::TwoSpeedCache;
use linktrace_platform::clock::Clock;
use linktrace_platform::kafka::EventSink;
use linktrace_platform::keys::KeyDirectory;
use linktrace_platform::secret::Secret;
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
    /// Admin networks and the failed-authentication throttle.
    pub access: Arc<crate::access::Access>,
    /// Requests per second per API key.
    pub rate_limiter: Arc<linktrace_platform::rate_limit::KeyRateLimiter>,
    /// Which clicks repeat a visitor's counted click on a link within the hour.
    pub repeats: Arc<crate::clicks::repeats::RepeatClicks>,
    /// Which account a verified link domain belongs to.
    pub domain_owners: Arc<crate::domains::DomainOwners>,
    /// Looks up domains' verification records.
    pub dns: Arc<crate::domains::DnsVerifier>,
    /// Links by short code for the redirect, briefly cached (a missing code for less time).
    pub redirect_cache: Arc<RedirectCache>,
    /// Trusted proxies, user agents, geo and visitor keys of the redirect.
    pub clicks: Arc<ClickEnricher>,
    /// Clicks on their way to the broker (the redirect does not wait for them); shutdown
    /// waits for them.
    pub clicks_in_flight: TaskTracker,
}

pub struct Settings {
    pub public_base_url: String,
    pub admin_token: Secret,
    /// The attribution window of links without their own (`ATTRIBUTION_WINDOW_HOURS`).
    pub attribution_window_hours: u32,
    /// The account the operator gave the shared link host to (`LINK_HOST_ACCOUNT`).
    pub link_host_account: Option<uuid::Uuid>,
    /// The host of `public_base_url`: the shared link host, which no account can add.
    pub public_host: Option<String>,
    /// Which addresses a webhook URL may name.
    pub endpoint_policy: AddressPolicy,
    /// The dashboard's charting library's folder (`DASHBOARD_ASSETS_DIR`), if there is one.
    pub dashboard_assets: Option<std::path::PathBuf>,
    /// Session cookies are `Secure`: the public base URL is https.
    pub secure_cookies: bool,
}

/// The links the redirect serves, by short code.
pub type RedirectCache = TwoSpeedCache<String, Arc<Link>>;

/// The redirect's cache, told of link changes made by any api instance (a deleted or
/// re-created short code never redirects for the old owner once the change commits).
pub struct RedirectCacheInvalidation(pub Arc<RedirectCache>);

impl linktrace_platform::invalidation::Invalidate for RedirectCacheInvalidation {
    fn invalidate(&self, change: &linktrace_platform::invalidation::Change) {
        use linktrace_platform::invalidation::Change;
        match change {
            // At once, not in a task of its own: a load already under way when the change
            // arrives does not cache what it read (the cache's generation moved on).
            Change::Link(code) => self.0.invalidate(code.as_str()),
            Change::Everything => self.0.clear(),
            Change::Keys | Change::Domain(_) => {}
        }
    }
}

impl AppState {
    pub fn redirect_cache() -> Arc<RedirectCache> {
        Arc::new(TwoSpeedCache::new(
            "redirect_links",
            100_000,
            Duration::from_secs(10),
            Duration::from_secs(5),
        ))
    }
}
