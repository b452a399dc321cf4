//! Cached look-ups in Postgres on ingest's hot path: links, and which link drove a user's
//! install (API keys: [`linktrace_platform::keys`]). Each answer (including "not found",
//! for a shorter time) is cached in process, so a steady sender costs no Postgres round
//! trip per request.

use std::time::Duration;

use linktrace_domain::Environment;
use linktrace_platform::cache::TwoSpeedCache;
use linktrace_platform::invalidation::{Change, Invalidate};
use sqlx::PgPool;
use uuid::Uuid;

pub struct Directory {
    pool: PgPool,
    links: TwoSpeedCache<String, Uuid>,
    installs: TwoSpeedCache<(Uuid, Environment, String), Option<String>>,
}

#[derive(Debug, Clone, Copy)]
pub struct DirectoryTtls {
    pub links: Duration,
    pub negative: Duration,
}

impl Directory {
    pub fn new(pool: PgPool, ttls: DirectoryTtls) -> Self {
        Self {
            pool,
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

    /// Forgets what was cached about `change` (`platform::invalidation`).
    fn forget(&self, change: &Change) {
        match change {
            Change::Link(code) => self.links.invalidate(code.as_str()),
            Change::Everything => {
                self.links.clear();
                self.installs.clear();
            }
            Change::Keys | Change::Domain(_) => {}
        }
    }

    /// The account that owns `short_code`, if any.
    pub async fn link_owner(&self, short_code: &str) -> Result<Option<Uuid>, sqlx::Error> {
        let pool = &self.pool;
        self.links
            .get_or_load(short_code, || async move {
                sqlx::query_scalar("SELECT account_id FROM links WHERE short_code = $1")
                    .bind(short_code)
                    .fetch_optional(pool)
                    .await
            })
            .await
    }

    /// The link that drove `user_id`'s install in `environment`: `None` when the user's
    /// install was organic or never attributed there.
    pub async fn install_link(
        &self,
        account_id: Uuid,
        environment: Environment,
        user_id: &str,
    ) -> Result<Option<String>, sqlx::Error> {
        let pool = &self.pool;
        let key = (account_id, environment, user_id.to_owned());
        let found = self
            .installs
            .get_or_load(&key, || async move {
                sqlx::query_scalar::<_, Option<String>>(
                    "SELECT short_code FROM attributions \
                     WHERE account_id = $1 AND environment = $3 AND user_id = $2",
                )
                .bind(account_id)
                .bind(user_id)
                .bind(environment.as_str())
                .fetch_optional(pool)
                .await
            })
            .await?;
        Ok(found.flatten())
    }
}

impl Invalidate for Directory {
    fn invalidate(&self, change: &Change) {
        self.forget(change);
    }
}
