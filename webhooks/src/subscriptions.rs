//! Which webhooks want which events: every webhook, read from Postgres.
//!
//! A batch is matched only against a list read *after* its newest event was received
//! ([`Subscriptions::cover`]): a webhook whose `201` was answered before an event was sent
//! is then always in the list that event is matched with. Otherwise the list is read again
//! at most once a second, so a deleted webhook stops within about a second.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use linktrace_domain::{Environment, EventRecord, EventTypes};
use sqlx::PgPool;
use uuid::Uuid;

const REFRESH_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct Subscription {
    pub webhook_id: Uuid,
    pub events: EventTypes,
    /// Events accepted before the webhook existed are not delivered to it.
    pub created_at: DateTime<Utc>,
}

pub struct Subscriptions {
    pool: PgPool,
    loaded: RwLock<Loaded>,
}

#[derive(Default)]
struct Loaded {
    by_account: HashMap<(Uuid, Environment), Vec<Subscription>>,
    at: Option<Instant>,
    /// Postgres's clock just before the rows were read: every webhook committed before it
    /// is in the list.
    as_of: Option<DateTime<Utc>>,
}

/// How far the clocks of ingest (which stamps `received_at`) and Postgres may disagree
/// without an event being matched against a list read before it was received.
const CLOCK_SKEW_MARGIN: chrono::TimeDelta = chrono::TimeDelta::milliseconds(250);

#[derive(sqlx::FromRow)]
struct WebhookRow {
    id: Uuid,
    account_id: Uuid,
    environment: String,
    events: Vec<String>,
    created_at: DateTime<Utc>,
}

impl Subscriptions {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            loaded: RwLock::default(),
        }
    }

    /// Makes sure the list covers events received up to `newest`: reloads when it was read
    /// before then (with a margin for the clocks), or more than a second ago.
    pub async fn cover(&self, newest: DateTime<Utc>) -> Result<(), sqlx::Error> {
        let fresh = {
            let loaded = self.read();
            loaded.at.is_some_and(|at| at.elapsed() < REFRESH_EVERY)
                && loaded
                    .as_of
                    .is_some_and(|as_of| as_of >= newest + CLOCK_SKEW_MARGIN)
        };
        if fresh {
            return Ok(());
        }
        self.reload().await
    }

    /// Reloads when the last load is older than a second (the dispatcher's view of which
    /// webhooks exist).
    pub async fn refresh(&self) -> Result<(), sqlx::Error> {
        if self
            .read()
            .at
            .is_some_and(|at| at.elapsed() < REFRESH_EVERY)
        {
            return Ok(());
        }
        self.reload().await
    }

    async fn reload(&self) -> Result<(), sqlx::Error> {
        // Read first, in a statement of its own: the rows' statement starts after it, so it
        // sees every webhook committed before this time.
        let as_of: DateTime<Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
            .fetch_one(&self.pool)
            .await?;
        let rows: Vec<WebhookRow> =
            sqlx::query_as("SELECT id, account_id, environment, events, created_at FROM webhooks")
                .fetch_all(&self.pool)
                .await?;
        let mut by_account: HashMap<(Uuid, Environment), Vec<Subscription>> = HashMap::new();
        for row in rows {
            // Rows were checked when created; one that no longer parses is skipped.
            let (Some(environment), Ok(events)) = (
                Environment::parse(&row.environment),
                EventTypes::parse(&row.events),
            ) else {
                continue;
            };
            by_account
                .entry((row.account_id, environment))
                .or_default()
                .push(Subscription {
                    webhook_id: row.id,
                    events,
                    created_at: row.created_at,
                });
        }
        *self.loaded.write().expect("not poisoned") = Loaded {
            by_account,
            at: Some(Instant::now()),
            as_of: Some(as_of),
        };
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Loaded> {
        self.loaded.read().expect("not poisoned")
    }

    /// The webhooks `record` goes to: its account's, of its environment (a test key's
    /// webhooks get test events only), subscribed to its name, created before it arrived.
    pub fn matching(&self, record: &EventRecord) -> Vec<Uuid> {
        self.read()
            .by_account
            .get(&(record.account_id, record.environment))
            .into_iter()
            .flatten()
            .filter(|s| s.events.matches(&record.event_name) && s.created_at <= record.received_at)
            .map(|s| s.webhook_id)
            .collect()
    }

    /// Every webhook's id (the dispatcher offers each its slots).
    pub fn webhook_ids(&self) -> Vec<Uuid> {
        self.read()
            .by_account
            .values()
            .flatten()
            .map(|s| s.webhook_id)
            .collect()
    }
}
