//! The key directory: what an `x-api-key` secret stands for (account, environment, what
//! its plan allows, the plan's quota). One look-up and one cache policy for every service.
//! Postgres holds only keys' hashes and is asked by hash. The in-process cache is keyed by
//! the presented secret itself, so a hit costs no SHA-256 (it was ~3% of an event's
//! instructions, bench/profile.sh); its hasher is randomly keyed, so look-up timing says
//! nothing about other keys. A change of key or plan made elsewhere is seen within
//! `AUTH_CACHE_TTL_SECS`; the process that makes one (the api's admin endpoints) clears
//! its cache at once.

use std::sync::Arc;
use std::time::Duration;

use linktrace_domain::{ApiKey, Endpoint, Environment};
use sqlx::PgPool;
use uuid::Uuid;

use crate::cache::{LookupCacheConfig, TwoSpeedCache};

/// What an API key stands for.
#[derive(Debug, Clone)]
pub struct KeyOwner {
    pub account_id: Uuid,
    pub environment: Environment,
    /// What the account's plan allows (plans list them as data; unknown names are ignored).
    pub endpoints: Arc<[Endpoint]>,
    pub monthly_event_quota: i64,
}

/// The caller's plan does not include the endpoint (403 `PLAN_UPGRADE_REQUIRED`).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("this endpoint needs the Scale plan")]
pub struct PlanUpgradeRequired;

impl KeyOwner {
    pub fn allows(&self, endpoint: Endpoint) -> bool {
        self.endpoints.contains(&endpoint)
    }

    pub fn require(&self, endpoint: Endpoint) -> Result<(), PlanUpgradeRequired> {
        if self.allows(endpoint) {
            Ok(())
        } else {
            Err(PlanUpgradeRequired)
        }
    }
}

pub struct KeyDirectory {
    pool: PgPool,
    cache: TwoSpeedCache<String, KeyOwner>,
}

impl KeyDirectory {
    pub fn new(pool: PgPool, config: &LookupCacheConfig) -> Self {
        Self {
            pool,
            cache: TwoSpeedCache::new(
                "api_keys",
                100_000,
                Duration::from_secs(config.ttl_secs),
                Duration::from_secs(config.negative_ttl_secs),
            ),
        }
    }

    /// The owner of `secret`; `None` when it is missing, malformed, unknown or revoked.
    pub async fn resolve(&self, secret: Option<&str>) -> Result<Option<KeyOwner>, sqlx::Error> {
        let Some(secret) = secret else {
            return Ok(None);
        };
        // Only well-formed keys are ever cached, so a hit needs no parsing (it was an
        // allocation and a check of every character per request: bench/profile.sh).
        if let Some(answer) = self.cache.cached(secret) {
            return Ok(answer);
        }
        let Ok(key) = ApiKey::parse(secret) else {
            return Ok(None);
        };
        let pool = &self.pool;
        let key = &key;
        self.cache
            .get_or_load(key.expose_secret(), || async move {
                owner_of_hash(pool, key.hash().as_str()).await
            })
            .await
    }

    /// The owner of the key with this hash, read from Postgres now (not cached): for what
    /// holds a key's hash instead of its secret, such as a dashboard session.
    pub async fn resolve_hash(&self, key_hash: &str) -> Result<Option<KeyOwner>, sqlx::Error> {
        owner_of_hash(&self.pool, key_hash).await
    }

    /// Forgets every resolved key: this process just changed keys or plans.
    pub fn forget_all(&self) {
        self.cache.clear();
    }
}

/// What the live (not revoked) key with this hash stands for.
async fn owner_of_hash(pool: &PgPool, key_hash: &str) -> Result<Option<KeyOwner>, sqlx::Error> {
    let row: Option<(Uuid, String, Vec<String>, i64)> = sqlx::query_as(
        "SELECT k.account_id, k.environment, p.allowed_endpoints, p.monthly_event_quota \
         FROM api_keys k JOIN accounts a ON a.id = k.account_id JOIN plans p ON p.name = a.plan \
         WHERE k.key_hash = $1 AND k.revoked_at IS NULL",
    )
    .bind(key_hash)
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|(account_id, environment, allowed, quota)| {
        Some(KeyOwner {
            account_id,
            environment: Environment::parse(&environment)?,
            endpoints: allowed.iter().filter_map(|e| Endpoint::parse(e)).collect(),
            monthly_event_quota: quota,
        })
    }))
}
