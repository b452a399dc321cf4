//! The monthly quota of production events, exact across any number of ingest instances.
//!
//! Postgres holds, per account and month, how much quota has been *leased* to instances.
//! An instance leases a block (at most `block`, and at most a quarter of what is left, so
//! that near the end instances take small slices and none sits on a large remainder),
//! spends it locally without a round trip, and gives back what it did not use once the
//! account has been idle for a while and on shutdown. So `leased` never exceeds the quota,
//! and once traffic stops it equals exactly the events accepted.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use linktrace_domain::BillingMonth;
use linktrace_platform::clock::Clock;
use prometheus::{register_int_counter, IntCounter};
use sqlx::PgPool;
use uuid::Uuid;

static QUOTA_REJECTIONS: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "ingest_quota_rejections_total",
        "Production events refused with 429 QUOTA_EXCEEDED"
    )
    .expect("metric registers once")
});

static QUOTA_LEASES: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "ingest_quota_leases_total",
        "Blocks of quota leased from Postgres"
    )
    .expect("metric registers once")
});

/// One unit of quota taken for an event; give it back with [`QuotaLimiter::refund`] when
/// the event is not accepted after all.
#[derive(Debug, Clone, Copy)]
pub struct QuotaPermit {
    account_id: Uuid,
    month: BillingMonth,
}

#[derive(Debug)]
pub enum QuotaDecision {
    Granted(QuotaPermit),
    Exhausted { resets_on: String },
}

#[derive(Default)]
struct Lease {
    remaining: i64,
    last_used: Option<Instant>,
    exhausted_until: Option<Instant>,
}

type LeaseKey = (Uuid, BillingMonth);

pub struct QuotaLimiter {
    pool: PgPool,
    clock: Arc<dyn Clock>,
    block: i64,
    idle: Duration,
    leases: Mutex<HashMap<LeaseKey, Arc<tokio::sync::Mutex<Lease>>>>,
}

/// After Postgres says the quota is spent, how long to answer 429 without asking again.
const EXHAUSTED_RECHECK: Duration = Duration::from_millis(250);

impl QuotaLimiter {
    pub fn new(pool: PgPool, clock: Arc<dyn Clock>, block: i64, idle: Duration) -> Self {
        Self {
            pool,
            clock,
            block: block.max(1),
            idle,
            leases: Mutex::new(HashMap::new()),
        }
    }

    fn lease_for(&self, key: LeaseKey) -> Arc<tokio::sync::Mutex<Lease>> {
        self.leases
            .lock()
            .expect("lease map lock")
            .entry(key)
            .or_default()
            .clone()
    }

    /// Takes one unit of `account_id`'s quota for the current month.
    #[tracing::instrument(name = "quota", skip_all)]
    pub async fn acquire(
        &self,
        account_id: Uuid,
        monthly_quota: i64,
    ) -> Result<QuotaDecision, sqlx::Error> {
        let month = BillingMonth::containing(self.clock.now());
        let lease = self.lease_for((account_id, month));
        let mut lease = lease.lock().await;
        let now = Instant::now();
        if lease.remaining == 0 {
            let recently_exhausted = lease.exhausted_until.is_some_and(|until| now < until);
            if !recently_exhausted {
                lease.remaining = self.lease_block(account_id, month, monthly_quota).await?;
                if lease.remaining == 0 {
                    lease.exhausted_until = Some(now + EXHAUSTED_RECHECK);
                } else {
                    QUOTA_LEASES.inc();
                }
            }
        }
        if lease.remaining == 0 {
            QUOTA_REJECTIONS.inc();
            return Ok(QuotaDecision::Exhausted {
                resets_on: month.resets_on(),
            });
        }
        lease.remaining -= 1;
        lease.last_used = Some(now);
        Ok(QuotaDecision::Granted(QuotaPermit { account_id, month }))
    }

    /// Gives a unit back to the local lease (the event was not accepted).
    pub async fn refund(&self, permit: QuotaPermit) {
        let lease = self.lease_for((permit.account_id, permit.month));
        lease.lock().await.remaining += 1;
    }

    async fn lease_block(
        &self,
        account_id: Uuid,
        month: BillingMonth,
        quota: i64,
    ) -> Result<i64, sqlx::Error> {
        sqlx::query("INSERT INTO quota_usage (account_id, month, leased) VALUES ($1, $2, 0) ON CONFLICT DO NOTHING")
            .bind(account_id)
            .bind(month.first_day())
            .execute(&self.pool)
            .await?;
        let granted: Option<i64> = sqlx::query_scalar(
            "UPDATE quota_usage q SET leased = q.leased + g.n \
             FROM (SELECT LEAST($3::bigint, GREATEST(1, ($4::bigint - leased) / 4)) AS n \
                   FROM quota_usage WHERE account_id = $1 AND month = $2 AND leased < $4 FOR UPDATE) g \
             WHERE q.account_id = $1 AND q.month = $2 \
             RETURNING g.n",
        )
        .bind(account_id)
        .bind(month.first_day())
        .bind(self.block)
        .bind(quota)
        .fetch_optional(&self.pool)
        .await?;
        Ok(granted.unwrap_or(0))
    }

    /// Gives back to Postgres the unused quota of every lease idle for longer than the
    /// configured time (all of them when `everything`).
    pub async fn return_unused(&self, everything: bool) -> Result<(), sqlx::Error> {
        let entries: Vec<(LeaseKey, Arc<tokio::sync::Mutex<Lease>>)> = self
            .leases
            .lock()
            .expect("lease map lock")
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        for ((account_id, month), lease) in entries {
            let mut lease = lease.lock().await;
            let idle = lease.last_used.is_none_or(|at| at.elapsed() >= self.idle);
            if lease.remaining > 0 && (everything || idle) {
                sqlx::query("UPDATE quota_usage SET leased = leased - $3 WHERE account_id = $1 AND month = $2")
                    .bind(account_id)
                    .bind(month.first_day())
                    .bind(lease.remaining)
                    .execute(&self.pool)
                    .await?;
                lease.remaining = 0;
            }
        }
        Ok(())
    }

    /// Runs [`Self::return_unused`] periodically until the returned task is dropped/aborted.
    pub fn spawn_returner(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let limiter = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(limiter.idle.max(Duration::from_millis(100)) / 2);
            loop {
                tick.tick().await;
                if let Err(error) = limiter.return_unused(false).await {
                    tracing::warn!(%error, "could not return unused quota; will retry");
                }
            }
        })
    }
}
