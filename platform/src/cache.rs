//! The one in-process cache policy for look-ups on the hot path: a found value is kept for
//! `ttl`, a miss for a shorter `negative_ttl` (so a key or link created a moment ago is
//! seen soon), and every look-up is counted in `cache_lookups_total{cache,result}`.
//!
//! Built on `quick_cache` (sharded, S3-FIFO eviction, a read lock and one hash per hit),
//! each entry stamped with when it expires: a hit on moka's async cache cost about a
//! thousand instructions, and ingest makes two a request (`bench/profile.sh`).

use std::borrow::Borrow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use envconfig::Envconfig;
use quick_cache::sync::Cache;

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

/// Tables are sized for this many entries up front and grow beyond it; the capacity
/// bounds how many are kept.
const INITIAL_ENTRIES: usize = 4096;

pub struct TwoSpeedCache<K, V> {
    /// Found values, with the instant each stops being trusted.
    found: Cache<K, (V, Instant)>,
    /// Keys known to be missing, with the instant that stops being trusted.
    missing: Cache<K, Instant>,
    ttl: Duration,
    negative_ttl: Duration,
    /// `cache_lookups_total{cache, outcome}`, resolved once (not per look-up).
    hits: prometheus::IntCounter,
    misses: prometheus::IntCounter,
    /// Bumped by every invalidation: a load that began before one does not cache what it
    /// read (it may predate the change).
    generation: AtomicU64,
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
            found: table(capacity),
            missing: table(capacity),
            ttl,
            negative_ttl,
            generation: AtomicU64::new(0),
        }
    }

    /// The cached answer for `key` (`Some(None)`: known to be missing), if there is one and
    /// it has not expired. Not counted as a miss: the caller goes on to
    /// [`Self::get_or_load`], which counts it.
    pub fn cached<Q>(&self, key: &Q) -> Option<Option<V>>
    where
        K: Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        let now = Instant::now();
        if let Some((value, until)) = self.found.get(key) {
            if now < until {
                self.count(true);
                return Some(Some(value));
            }
        }
        if let Some(until) = self.missing.get(key) {
            if now < until {
                self.count(true);
                return Some(None);
            }
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
        if let Some(answer) = self.cached(key) {
            return Ok(answer);
        }
        self.count(false);
        let generation = self.generation.load(Ordering::Acquire);
        // Boxed: only a miss pays for the (large) loading future, and every caller's own
        // future stays small (each is moved, and boxed, once per request).
        let loaded = Box::pin(load()).await?;
        if self.generation.load(Ordering::Acquire) != generation {
            return Ok(loaded);
        }
        let now = Instant::now();
        match &loaded {
            Some(value) => {
                self.missing.remove(key);
                self.found
                    .insert(key.to_owned(), (value.clone(), now + self.ttl));
            }
            None => {
                self.found.remove(key);
                self.missing.insert(key.to_owned(), now + self.negative_ttl);
            }
        }
        Ok(loaded)
    }

    /// Forgets every answer (after what they were loaded from changed).
    pub fn clear(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.found.clear();
        self.missing.clear();
    }

    /// Forgets the answer for `key` (what it was loaded from changed).
    pub fn invalidate<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.found.remove(key);
        self.missing.remove(key);
    }

    fn count(&self, hit: bool) {
        if hit {
            self.hits.inc()
        } else {
            self.misses.inc()
        }
    }
}

/// A table that keeps at most `capacity` entries (allocated as they are used).
fn table<K: std::hash::Hash + Eq, V: Clone>(capacity: u64) -> Cache<K, V> {
    Cache::with(
        INITIAL_ENTRIES.min(capacity as usize),
        capacity,
        Default::default(),
        Default::default(),
        Default::default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> TwoSpeedCache<String, u32> {
        TwoSpeedCache::new(
            "test",
            16,
            Duration::from_millis(300),
            Duration::from_millis(100),
        )
    }

    async fn load_counting(
        cache: &TwoSpeedCache<String, u32>,
        key: &str,
        answer: Option<u32>,
        loads: &mut u32,
    ) -> Option<u32> {
        cache
            .get_or_load(key, || async {
                *loads += 1;
                Ok::<_, ()>(answer)
            })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_found_value_is_kept_for_its_ttl_then_loaded_again() {
        let cache = cache();
        let mut loads = 0;
        assert_eq!(
            load_counting(&cache, "k", Some(7), &mut loads).await,
            Some(7)
        );
        assert_eq!(
            load_counting(&cache, "k", Some(8), &mut loads).await,
            Some(7)
        );
        assert_eq!((loads, cache.cached("k")), (1, Some(Some(7))));
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert_eq!(cache.cached("k"), None, "expired");
        assert_eq!(
            load_counting(&cache, "k", Some(8), &mut loads).await,
            Some(8)
        );
        assert_eq!(loads, 2);
    }

    #[tokio::test]
    async fn a_miss_is_kept_for_the_shorter_ttl_and_a_later_find_replaces_it() {
        let cache = cache();
        let mut loads = 0;
        assert_eq!(load_counting(&cache, "k", None, &mut loads).await, None);
        assert_eq!(cache.cached("k"), Some(None));
        assert_eq!(load_counting(&cache, "k", Some(1), &mut loads).await, None);
        assert_eq!(loads, 1);
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(
            load_counting(&cache, "k", Some(1), &mut loads).await,
            Some(1)
        );
        assert_eq!((loads, cache.cached("k")), (2, Some(Some(1))));
        cache.clear();
        assert_eq!(cache.cached("k"), None);
    }

    #[test]
    fn it_keeps_no_more_than_its_capacity() {
        let cache = cache();
        for i in 0..1000u32 {
            cache
                .found
                .insert(i.to_string(), (i, Instant::now() + cache.ttl));
        }
        assert!(cache.found.len() <= 16, "{}", cache.found.len());
    }
}
