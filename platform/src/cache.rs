//! The one in-process cache policy for look-ups on the hot path: a found value is kept for
//! `ttl`, a miss for a shorter `negative_ttl` (so a key or link created a moment ago is
//! seen soon), and every look-up is counted in `cache_lookups_total{cache,result}`.

use std::borrow::Borrow;
use std::time::Duration;

use envconfig::Envconfig;
use moka::future::Cache;

use crate::metrics::CACHE_LOOKUPS;

#[derive(Envconfig, Clone, Debug)]
pub struct LookupCacheConfig {
    /// How long a resolved API key (account, plan, environment) is trusted; a revoked key
    /// or a plan change made by another process takes effect within this.
    #[envconfig(from = "AUTH_CACHE_TTL_SECS", default = "30")]
    pub ttl_secs: u64,
    /// How long an unknown key or short code is remembered as unknown.
    #[envconfig(from = "NEGATIVE_CACHE_TTL_SECS", default = "5")]
    pub negative_ttl_secs: u64,
}

pub struct TwoSpeedCache<K, V> {
    found: Cache<K, V>,
    missing: Cache<K, ()>,
    /// `cache_lookups_total{cache, outcome}`, resolved once (not per look-up).
    hits: prometheus::IntCounter,
    misses: prometheus::IntCounter,
}

impl<K, V> TwoSpeedCache<K, V>
where
    K: std::hash::Hash + Eq + Send + Sync + Clone + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub fn new(name: &'static str, capacity: u64, ttl: Duration, negative_ttl: Duration) -> Self {
        Self {
            hits: CACHE_LOOKUPS.with_label_values(&[name, "hit"]),
            misses: CACHE_LOOKUPS.with_label_values(&[name, "miss"]),
            found: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
            missing: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(negative_ttl)
                .build(),
        }
    }

    /// The cached answer for `key` (`Some(None)`: known to be missing), if there is one. Not
    /// counted as a miss: the caller goes on to [`Self::get_or_load`], which counts it.
    pub async fn cached<Q>(&self, key: &Q) -> Option<Option<V>>
    where
        K: Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        if let Some(value) = self.found.get(key).await {
            self.count(true);
            return Some(Some(value));
        }
        if self.missing.contains_key(key) {
            self.count(true);
            return Some(None);
        }
        None
    }

    /// The cached answer for `key`, or `load`'s (which is then cached, found or not). A hit
    /// looks up by reference: only a miss makes an owned key.
    pub async fn get_or_load<Q, F, Fut, E>(&self, key: &Q, load: F) -> Result<Option<V>, E>
    where
        K: Borrow<Q>,
        Q: std::hash::Hash + Eq + ToOwned<Owned = K> + ?Sized,
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Option<V>, E>>,
    {
        if let Some(answer) = self.cached(key).await {
            return Ok(answer);
        }
        self.count(false);
        let loaded = load().await?;
        match &loaded {
            Some(value) => self.found.insert(key.to_owned(), value.clone()).await,
            None => self.missing.insert(key.to_owned(), ()).await,
        }
        Ok(loaded)
    }

    /// Forgets every answer (after this process changed what they were loaded from).
    pub fn clear(&self) {
        self.found.invalidate_all();
        self.missing.invalidate_all();
    }

    fn count(&self, hit: bool) {
        if hit {
            self.hits.inc()
        } else {
            self.misses.inc()
        }
    }
}
