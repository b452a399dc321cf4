//! Cached look-ups in Postgres on the hot path: API keys, links, and which link drove a
//! user's install. Each answer (including "not found", for a shorter time) is cached in
//! process, so a steady sender costs no Postgres round trip per request.

use std::sync::Arc;
use std::time::Duration;

use linktrace_domain::{ApiKeyHash, Endpoint, Environment};
use moka::future::Cache;
use sqlx::PgPool;
use uuid::Uuid;

use crate::metrics::cache_lookup;

/// What an API key stands for.
#[derive(Debug, Clone)]
pub struct ResolvedKey {
    pub account_id: Uuid,
    pub environment: Environment,
    pub allowed_endpoints: Arc<[String]>,
    pub monthly_event_quota: i64,
}

impl ResolvedKey {
    pub fn allows(&self, endpoint: Endpoint) -> bool {
        self.allowed_endpoints
            .iter()
            .any(|e| e == endpoint.as_str())
    }
}

/// A cache that remembers found values for `ttl` and misses for `negative_ttl`.
struct TwoSpeedCache<K, V> {
    name: &'static str,
    found: Cache<K, V>,
    missing: Cache<K, ()>,
}

impl<K, V> TwoSpeedCache<K, V>
where
    K: std::hash::Hash + Eq + Send + Sync + Clone + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn new(name: &'static str, capacity: u64, ttl: Duration, negative_ttl: Duration) -> Self {
        Self {
            name,
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

    async fn get_or_load<F, Fut>(&self, key: K, load: F) -> Result<Option<V>, sqlx::Error>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Option<V>, sqlx::Error>>,
    {
        if let Some(value) = self.found.get(&key).await {
            cache_lookup(self.name, true);
            return Ok(Some(value));
        }
        if self.missing.contains_key(&key) {
            cache_lookup(self.name, true);
            return Ok(None);
        }
        cache_lookup(self.name, false);
        let loaded = load().await?;
        match &loaded {
            Some(value) => self.found.insert(key, value.clone()).await,
            None => self.missing.insert(key, ()).await,
        }
        Ok(loaded)
    }
}

pub struct Directory {
    pool: PgPool,
    keys: TwoSpeedCache<String, ResolvedKey>,
    links: TwoSpeedCache<String, Uuid>,
    installs: TwoSpeedCache<(Uuid, String), Option<String>>,
}

#[derive(Debug, Clone, Copy)]
pub struct DirectoryTtls {
    pub keys: Duration,
    pub links: Duration,
    pub negative: Duration,
}

impl Directory {
    pub fn new(pool: PgPool, ttls: DirectoryTtls) -> Self {
        Self {
            pool,
            keys: TwoSpeedCache::new("api_keys", 100_000, ttls.keys, ttls.negative),
            links: TwoSpeedCache::new("links", 1_000_000, ttls.links, ttls.negative),
            // First attribution wins and never changes, so a found one can live long.
            installs: TwoSpeedCache::new(
                "attributions",
                1_000_000,
                Duration::from_secs(3600),
                ttls.negative.min(Duration::from_secs(2)),
            ),
        }
    }

    pub async fn resolve_key(&self, hash: &ApiKeyHash) -> Result<Option<ResolvedKey>, sqlx::Error> {
        let pool = self.pool.clone();
        let hash = hash.as_str().to_owned();
        self.keys
            .get_or_load(hash.clone(), || async move {
                let row: Option<(Uuid, String, Vec<String>, i64)> = sqlx::query_as(
                    "SELECT k.account_id, k.environment, p.allowed_endpoints, p.monthly_event_quota \
                     FROM api_keys k JOIN accounts a ON a.id = k.account_id JOIN plans p ON p.name = a.plan \
                     WHERE k.key_hash = $1 AND k.revoked_at IS NULL",
                )
                .bind(&hash)
                .fetch_optional(&pool)
                .await?;
                Ok(row.and_then(|(account_id, environment, allowed, quota)| {
                    Some(ResolvedKey {
                        account_id,
                        environment: Environment::parse(&environment)?,
                        allowed_endpoints: allowed.into(),
                        monthly_event_quota: quota,
                    })
                }))
            })
            .await
    }

    /// The account that owns `short_code`, if any.
    pub async fn link_owner(&self, short_code: &str) -> Result<Option<Uuid>, sqlx::Error> {
        let pool = self.pool.clone();
        let code = short_code.to_owned();
        self.links
            .get_or_load(code.clone(), || async move {
                sqlx::query_scalar("SELECT account_id FROM links WHERE short_code = $1")
                    .bind(&code)
                    .fetch_optional(&pool)
                    .await
            })
            .await
    }

    /// The link that drove `user_id`'s install: `Some(None)` for an organic install,
    /// `None` when the user was never attributed.
    pub async fn install_link(
        &self,
        account_id: Uuid,
        user_id: &str,
    ) -> Result<Option<String>, sqlx::Error> {
        let pool = self.pool.clone();
        let user = user_id.to_owned();
        let found = self
            .installs
            .get_or_load((account_id, user.clone()), || async move {
                sqlx::query_scalar::<_, Option<String>>(
                    "SELECT short_code FROM attributions WHERE account_id = $1 AND user_id = $2",
                )
                .bind(account_id)
                .bind(&user)
                .fetch_optional(&pool)
                .await
            })
            .await?;
        Ok(found.flatten())
    }
}
