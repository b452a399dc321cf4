//! The Postgres outbox of deliveries (`webhook_deliveries`, migration 5) and the record of
//! attempts (`webhook_attempts`). Retry state lives here, so it survives restarts; rows are
//! claimed with a lease (`next_attempt_at` moved past the attempt's deadline), so a worker
//! that dies mid-attempt leaves its rows to be claimed again.
//!
//! Both tables have a partition per UTC day (migration 20): deliveries by their event's
//! `received_at` (fixed per event, so a redelivered copy meets its original's row),
//! attempts by `attempted_at`. [`Outbox::prepare_days`] makes days ahead; retention
//! ([`Outbox::purge`]) drops a whole day once nothing in it is pending or recent.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// One delivery the intake wants made.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub webhook_id: Uuid,
    pub event_id: Uuid,
    pub event_name: String,
    pub body: String,
    pub received_at: DateTime<Utc>,
}

/// A delivery claimed for one attempt.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub webhook_id: Uuid,
    pub event_id: Uuid,
    pub event_name: String,
    pub body: String,
    /// Including this one.
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub url: String,
    pub secret: String,
}

/// How an attempt ended, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    RetryAt(DateTime<Utc>),
    Failed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::RetryAt(_) => "retrying",
            Outcome::Failed => "failed",
        }
    }
}

#[derive(Clone)]
pub struct Outbox {
    pool: PgPool,
}

impl Outbox {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Adds deliveries in one statement; ones already there (a redelivered batch) are left
    /// as they are. Returns how many are new.
    pub async fn enqueue(&self, deliveries: &[NewDelivery]) -> Result<u64, sqlx::Error> {
        if deliveries.is_empty() {
            return Ok(0);
        }
        let column = |f: fn(&NewDelivery) -> String| deliveries.iter().map(f).collect::<Vec<_>>();
        let webhooks: Vec<Uuid> = deliveries.iter().map(|d| d.webhook_id).collect();
        let events: Vec<Uuid> = deliveries.iter().map(|d| d.event_id).collect();
        let received: Vec<DateTime<Utc>> = deliveries.iter().map(|d| d.received_at).collect();
        let inserted = sqlx::query(
            "INSERT INTO webhook_deliveries (webhook_id, event_id, event_name, body, received_at) \
             SELECT d.webhook_id, d.event_id, d.event_name, d.body, d.received_at \
               FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[]) \
                    AS d(webhook_id, event_id, event_name, body, received_at) \
               JOIN webhooks w ON w.id = d.webhook_id \
             ON CONFLICT (webhook_id, event_id, received_at) DO NOTHING",
        )
        .bind(webhooks)
        .bind(events)
        .bind(column(|d| d.event_name.clone()))
        .bind(column(|d| d.body.clone()))
        .bind(received)
        .persistent(false)
        .execute(&self.pool)
        .await?;
        Ok(inserted.rows_affected())
    }

    /// Claims up to `slots` due deliveries of each webhook (oldest due first), leasing each
    /// for `lease`.
    pub async fn claim(
        &self,
        budgets: &[(Uuid, i32)],
        lease: Duration,
    ) -> Result<Vec<Claimed>, sqlx::Error> {
        if budgets.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = budgets.iter().map(|(id, _)| *id).collect();
        let slots: Vec<i32> = budgets.iter().map(|(_, n)| *n).collect();
        sqlx::query_as(
            "WITH picked AS ( \
               SELECT d.webhook_id, d.event_id, d.received_at \
                 FROM unnest($1::uuid[], $2::int[]) AS b(webhook_id, slots) \
                 CROSS JOIN LATERAL ( \
                   SELECT webhook_id, event_id, received_at FROM webhook_deliveries \
                    WHERE webhook_id = b.webhook_id AND state = 'pending' AND next_attempt_at <= now() \
                    ORDER BY next_attempt_at LIMIT b.slots \
                    FOR UPDATE SKIP LOCKED) d) \
             UPDATE webhook_deliveries d \
                SET attempts = d.attempts + 1, \
                    next_attempt_at = now() + make_interval(secs => $3) \
               FROM picked p, webhooks w \
              WHERE d.webhook_id = p.webhook_id AND d.event_id = p.event_id \
                AND d.received_at = p.received_at AND w.id = d.webhook_id \
             RETURNING d.webhook_id, d.event_id, d.event_name, d.body, d.attempts, d.created_at, \
                       d.received_at, w.url, w.secret",
        )
        .bind(ids)
        .bind(slots)
        .bind(lease.as_secs_f64())
        .persistent(false)
        .fetch_all(&self.pool)
        .await
    }

    /// Records an attempt and moves the delivery on (done, failed, or due again later).
    pub async fn record(
        &self,
        claimed: &Claimed,
        outcome: Outcome,
        response_code: Option<u16>,
        error: Option<&str>,
        took: Duration,
    ) -> Result<(), sqlx::Error> {
        let (state, next) = match outcome {
            Outcome::Delivered => ("delivered", None),
            Outcome::Failed => ("failed", None),
            Outcome::RetryAt(at) => ("pending", Some(at)),
        };
        sqlx::query(
            "WITH moved AS ( \
               UPDATE webhook_deliveries \
                  SET state = $3, next_attempt_at = COALESCE($4, next_attempt_at), \
                      finished_at = CASE WHEN $3 = 'pending' THEN NULL ELSE now() END \
                WHERE webhook_id = $1 AND event_id = $2 AND received_at = $10 \
               RETURNING webhook_id, event_id, event_name) \
             INSERT INTO webhook_attempts \
               (webhook_id, event_id, event_name, attempt, outcome, response_code, error, duration_ms) \
             SELECT webhook_id, event_id, event_name, $5, $6, $7, $8, $9 FROM moved",
        )
        .bind(claimed.webhook_id)
        .bind(claimed.event_id)
        .bind(state)
        .bind(next)
        .bind(claimed.attempts)
        .bind(outcome.as_str())
        .bind(response_code.map(i32::from))
        .bind(error)
        .bind(took.as_millis().min(i32::MAX as u128) as i32)
        .bind(claimed.received_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deliveries not finished yet (due or waiting for a retry).
    pub async fn backlog(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries WHERE state = 'pending'")
            .fetch_one(&self.pool)
            .await
    }

    /// Makes both tables' partitions of the UTC days `from..=to`, where missing.
    pub async fn prepare_days(&self, from: NaiveDate, to: NaiveDate) -> Result<(), sqlx::Error> {
        sqlx::query(
            "SELECT webhook_outbox_add_day(d::date) \
               FROM generate_series($1::date, $2::date, interval '1 day') AS d",
        )
        .bind(from)
        .bind(to)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Retention. Drops each day of deliveries that ended more than a day ago, holds
    /// nothing pending, and whose last delivery finished longer ago than `keep`; drops each
    /// day of attempts that ended longer ago than `keep`; deletes what a default partition
    /// holds past `keep`. Returns the rows removed.
    pub async fn purge(&self, keep: Duration) -> Result<u64, sqlx::Error> {
        let seconds = keep.as_secs_f64();
        let mut removed = 0;
        for (partition, ends) in self.days_of("webhook_deliveries").await? {
            if ends > Utc::now() - chrono::Duration::days(1) {
                continue;
            }
            // Locked while it is checked and dropped: no delivery can be added to it or
            // moved on in between.
            let mut tx = self.pool.begin().await?;
            sqlx::query(&format!("LOCK TABLE {partition} IN ACCESS EXCLUSIVE MODE"))
                .execute(&mut *tx)
                .await?;
            let (done, rows): (bool, i64) = sqlx::query_as(&format!(
                "SELECT NOT EXISTS (SELECT 1 FROM {partition} WHERE state = 'pending') \
                    AND coalesce(max(finished_at) < now() - make_interval(secs => $1), true), \
                    count(*) \
                   FROM {partition}"
            ))
            .bind(seconds)
            .fetch_one(&mut *tx)
            .await?;
            if done {
                sqlx::query(&format!("DROP TABLE {partition}"))
                    .execute(&mut *tx)
                    .await?;
                removed += rows as u64;
            }
            tx.commit().await?;
        }
        for (partition, ends) in self.days_of("webhook_attempts").await? {
            if ends > Utc::now() - chrono::Duration::from_std(keep).unwrap_or_default() {
                continue;
            }
            let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {partition}"))
                .fetch_one(&self.pool)
                .await?;
            sqlx::query(&format!("DROP TABLE IF EXISTS {partition}"))
                .execute(&self.pool)
                .await?;
            removed += rows as u64;
        }
        let deliveries = sqlx::query(
            "DELETE FROM webhook_deliveries_default WHERE state <> 'pending' \
               AND finished_at < now() - make_interval(secs => $1)",
        )
        .bind(seconds)
        .execute(&self.pool)
        .await?;
        let attempts = sqlx::query(
            "DELETE FROM webhook_attempts_default WHERE attempted_at < now() - make_interval(secs => $1)",
        )
        .bind(seconds)
        .execute(&self.pool)
        .await?;
        Ok(removed + deliveries.rows_affected() + attempts.rows_affected())
    }

    /// The day partitions of `parent` (named `<parent>_pYYYYMMDD`), with when each day ends.
    async fn days_of(&self, parent: &str) -> Result<Vec<(String, DateTime<Utc>)>, sqlx::Error> {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_inherits i \
               JOIN pg_class c ON c.oid = i.inhrelid \
               JOIN pg_class p ON p.oid = i.inhparent \
              WHERE p.relname = $1 ORDER BY 1",
        )
        .bind(parent)
        .fetch_all(&self.pool)
        .await?;
        let prefix = format!("{parent}_p");
        Ok(names
            .into_iter()
            .filter_map(|name| {
                let day = NaiveDate::parse_from_str(name.strip_prefix(&prefix)?, "%Y%m%d").ok()?;
                let ends = day.succ_opt()?.and_hms_opt(0, 0, 0)?.and_utc();
                Some((name, ends))
            })
            .collect())
    }
}
