//! The monthly quota of production events, exact across any number of ingest instances.
//!
//! Postgres holds, per account and month, how much quota has been *leased* to instances.
//! An instance leases a block (at most a quarter of what is left, so that near the end
//! instances take small slices and none sits on a large remainder), spends it locally
//! without a round trip, and gives back what it did not use once the account has been idle
//! for a while and on shutdown. So `leased` never exceeds the quota, and once traffic stops
//! it equals exactly the events accepted.
//!
//! Off the hot path: the next block is leased in the background once half of the current
//! one is spent (double buffering), sized by the account's recent rate (about a second of
//! traffic, between [`MIN_BLOCK`] and the configured most), and no lock is held across a
//! Postgres round trip. A request waits for Postgres only when its instance holds nothing
//! for the account (its first event, or traffic outrunning the prefetch).
//!
//! An event counts in the month of its `receivedAt` (the caller passes it). Idleness is
//! counted in passes of the returner, not read from a clock on every event.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use linktrace_domain::BillingMonth;
use prometheus::{register_int_counter, IntCounter};
use sqlx::PgPool;
use tokio::sync::Notify;
use uuid::Uuid;

/// Registers the quota's metrics now.
pub fn register_metrics() {
    LazyLock::force(&QUOTA_REJECTIONS);
    LazyLock::force(&QUOTA_LEASES);
    LazyLock::force(&QUOTA_WAITS);
}

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

static QUOTA_WAITS: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "ingest_quota_waits_total",
        "Events that waited for a lease from Postgres (the instance held no quota for the account)"
    )
    .expect("metric registers once")
});

/// The smallest block leased (the quarter-of-what-is-left rule can still make it smaller).
pub const MIN_BLOCK: i64 = 10;
/// A block should last about this long at the account's recent rate.
const BLOCK_SPAN: Duration = Duration::from_secs(1);
/// After Postgres says the quota is spent, how long to answer 429 without asking again.
const EXHAUSTED_RECHECK: Duration = Duration::from_millis(250);

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

/// What this instance holds of one account's month. The block being spent is an atomic
/// counter: a request takes its unit without a lock; the mutex guards only what changes
/// once per block (the block ahead, the lease under way, the rate).
struct AccountLease {
    /// Units of the block being spent. A request that finds none puts its unit back at
    /// once, so the counter dips below zero only for that instant.
    available: AtomicI64,
    /// Units taken since the block came in.
    taken: AtomicI64,
    /// Set when a block comes in; the request that takes half of it clears it and leases
    /// the next one.
    prefetch_armed: AtomicBool,
    /// The returner's pass (see [`QuotaLimiter::passes`]) during which the last unit was
    /// taken: idle detection without reading a clock on every event.
    last_used_pass: AtomicU64,
    state: Mutex<Lease>,
    /// Wakes requests waiting for a lease to finish.
    refilled: Notify,
}

struct Lease {
    /// Units of the block leased ahead (0: none).
    next: i64,
    /// A lease from Postgres is under way.
    refilling: bool,
    exhausted_until: Option<Instant>,
    /// When the block being spent came in: with `taken`, the account's recent rate.
    block_started: Instant,
}

impl Lease {
    fn exhausted(&self, now: Instant) -> bool {
        self.exhausted_until.is_some_and(|until| now < until)
    }
}

impl AccountLease {
    fn new() -> Self {
        AccountLease {
            available: AtomicI64::new(0),
            taken: AtomicI64::new(0),
            prefetch_armed: AtomicBool::new(false),
            last_used_pass: AtomicU64::new(0),
            state: Mutex::new(Lease {
                next: 0,
                refilling: false,
                exhausted_until: None,
                block_started: Instant::now(),
            }),
            refilled: Notify::new(),
        }
    }

    /// Takes one unit of the block being spent, if any is left.
    fn try_take(&self) -> Option<i64> {
        let before = self.available.fetch_sub(1, Ordering::AcqRel);
        if before > 0 {
            Some(before - 1)
        } else {
            self.available.fetch_add(1, Ordering::AcqRel);
            None
        }
    }

    /// Takes every unit of the block being spent (never a unit a request is putting back).
    fn take_all(&self) -> i64 {
        let mut current = self.available.load(Ordering::Acquire);
        loop {
            if current <= 0 {
                return 0;
            }
            match self
                .available
                .compare_exchange(current, 0, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return current,
                Err(seen) => current = seen,
            }
        }
    }

    /// A new block comes in (called with the state locked).
    fn swap_in(&self, lease: &mut Lease, units: i64, now: Instant) {
        lease.block_started = now;
        self.taken.store(0, Ordering::Relaxed);
        self.available.fetch_add(units, Ordering::AcqRel);
        self.prefetch_armed.store(true, Ordering::Release);
    }

    /// The size of the next block: about [`BLOCK_SPAN`] of the recent rate.
    fn wanted_block(&self, lease: &Lease, now: Instant, most: i64) -> i64 {
        let elapsed = now
            .duration_since(lease.block_started)
            .as_secs_f64()
            .max(1e-3);
        let rate = self.taken.load(Ordering::Relaxed) as f64 / elapsed;
        ((rate * BLOCK_SPAN.as_secs_f64()) as i64).clamp(MIN_BLOCK.min(most), most)
    }
}

type LeaseKey = (Uuid, BillingMonth);

/// Passes of the returner an account must sit out, unused, before its lease is given back:
/// the returner runs every half idle time, so that is at least the whole idle time.
const IDLE_PASSES: u64 = 2;

pub struct QuotaLimiter {
    pool: PgPool,
    /// The most leased at once.
    block: i64,
    idle: Duration,
    /// Read on every event, written once per account and month. Keyed by random account
    /// ids, so foldhash rather than SipHash (a fifth of the quota's own cost per event).
    leases: RwLock<HashMap<LeaseKey, Arc<AccountLease>, foldhash::fast::RandomState>>,
    /// Acquisitions that waited for Postgres (this instance's share of `QUOTA_WAITS`).
    waits: AtomicU64,
    /// Passes of [`Self::return_unused`] looking for idle leases so far.
    passes: AtomicU64,
}

impl QuotaLimiter {
    pub fn new(pool: PgPool, block: i64, idle: Duration) -> Self {
        Self {
            pool,
            block: block.max(1),
            idle,
            leases: RwLock::new(HashMap::default()),
            waits: AtomicU64::new(0),
            passes: AtomicU64::new(0),
        }
    }

    fn lease_for(&self, key: LeaseKey) -> Arc<AccountLease> {
        if let Some(account) = self.leases.read().expect("lease map lock").get(&key) {
            return Arc::clone(account);
        }
        self.leases
            .write()
            .expect("lease map lock")
            .entry(key)
            .or_insert_with(|| Arc::new(AccountLease::new()))
            .clone()
    }

    /// Takes one unit of `account_id`'s quota for the month of `received_at` (the event's
    /// `receivedAt`: the month it is billed in).
    #[tracing::instrument(name = "quota", skip_all)]
    pub async fn acquire(
        self: &Arc<Self>,
        account_id: Uuid,
        monthly_quota: i64,
        received_at: DateTime<Utc>,
    ) -> Result<QuotaDecision, sqlx::Error> {
        let month = BillingMonth::containing(received_at);
        let key = (account_id, month);
        // The usual case under the map's read lock, without a reference of its own to the
        // account's lease (its count is one more line both cores would write).
        if let Some(account) = self.leases.read().expect("lease map lock").get(&key) {
            if let Some(permit) = self.take(account, account_id, month, monthly_quota) {
                return Ok(QuotaDecision::Granted(permit));
            }
        }
        let account = self.lease_for(key);
        // Boxed: only a request that finds the block spent carries the (large) future that
        // waits for Postgres; every other request's future stays small.
        Box::pin(self.acquire_waiting(account, account_id, month, monthly_quota)).await
    }

    /// The hot path, without a lock: one unit of the block being spent, if any is left;
    /// arms the lease of the next block once half of this one is gone.
    fn take(
        self: &Arc<Self>,
        account: &Arc<AccountLease>,
        account_id: Uuid,
        month: BillingMonth,
        monthly_quota: i64,
    ) -> Option<QuotaPermit> {
        let left = account.try_take()?;
        let taken = account.taken.fetch_add(1, Ordering::Relaxed) + 1;
        // Written when the pass changes, not on every event: a write on every one moved the
        // line between the cores each time.
        let pass = self.passes.load(Ordering::Relaxed);
        if account.last_used_pass.load(Ordering::Relaxed) != pass {
            account.last_used_pass.store(pass, Ordering::Relaxed);
        }
        if left <= taken
            && account.prefetch_armed.load(Ordering::Relaxed)
            && account.prefetch_armed.swap(false, Ordering::AcqRel)
        {
            self.prefetch(account, account_id, month, monthly_quota);
        }
        Some(QuotaPermit { account_id, month })
    }

    /// The block being spent is gone: swap in the one leased ahead, or lease one (or wait
    /// for the lease under way), or answer that the quota is spent.
    async fn acquire_waiting(
        self: &Arc<Self>,
        account: Arc<AccountLease>,
        account_id: Uuid,
        month: BillingMonth,
        monthly_quota: i64,
    ) -> Result<QuotaDecision, sqlx::Error> {
        let mut waited = false;
        loop {
            if let Some(permit) = self.take(&account, account_id, month, monthly_quota) {
                return Ok(QuotaDecision::Granted(permit));
            }
            let wait_for_lease = {
                let mut lease = account.state.lock().expect("lease lock");
                let now = Instant::now();
                if account.available.load(Ordering::Acquire) > 0 {
                    continue;
                }
                if lease.next > 0 {
                    let next = std::mem::take(&mut lease.next);
                    account.swap_in(&mut lease, next, now);
                    continue;
                }
                if lease.exhausted(now) && !lease.refilling {
                    QUOTA_REJECTIONS.inc();
                    return Ok(QuotaDecision::Exhausted {
                        resets_on: month.resets_on(),
                    });
                }
                if lease.refilling {
                    // Registered before the lock is released, so its wake-up cannot be missed.
                    Some(account.refilled.notified())
                } else {
                    lease.refilling = true;
                    None
                }
            };
            if !waited {
                waited = true;
                QUOTA_WAITS.inc();
                self.waits.fetch_add(1, Ordering::Relaxed);
            }
            match wait_for_lease {
                Some(notified) => notified.await,
                None => {
                    let units = self.block.min(MIN_BLOCK.max(1));
                    let leased = self
                        .lease_block(account_id, month, monthly_quota, units)
                        .await;
                    self.finish_refill(&account, leased.as_ref().ok().copied());
                    leased?;
                }
            }
        }
    }

    /// Half the block is spent: lease the next one in the background, unless one is
    /// already ahead or under way, or Postgres just said the quota is spent.
    fn prefetch(
        self: &Arc<Self>,
        account: &Arc<AccountLease>,
        account_id: Uuid,
        month: BillingMonth,
        monthly_quota: i64,
    ) {
        let units = {
            let mut lease = account.state.lock().expect("lease lock");
            let now = Instant::now();
            if lease.next > 0 || lease.refilling || lease.exhausted(now) {
                return;
            }
            lease.refilling = true;
            account.wanted_block(&lease, now, self.block)
        };
        self.spawn_prefetch(account.clone(), account_id, month, monthly_quota, units);
    }

    /// Leases the next block in the background while the current one is still being spent.
    fn spawn_prefetch(
        self: &Arc<Self>,
        account: Arc<AccountLease>,
        account_id: Uuid,
        month: BillingMonth,
        monthly_quota: i64,
        units: i64,
    ) {
        let limiter = Arc::clone(self);
        tokio::spawn(async move {
            let leased = limiter
                .lease_block(account_id, month, monthly_quota, units)
                .await;
            if let Err(error) = &leased {
                tracing::warn!(%error, "could not lease quota ahead; will lease on demand");
            }
            limiter.finish_refill(&account, leased.ok());
        });
    }

    /// Records a finished lease (`None`: it failed) and wakes whoever waits for it.
    fn finish_refill(&self, account: &AccountLease, leased: Option<i64>) {
        {
            let mut lease = account.state.lock().expect("lease lock");
            lease.refilling = false;
            match leased {
                Some(0) => lease.exhausted_until = Some(Instant::now() + EXHAUSTED_RECHECK),
                Some(units) => {
                    QUOTA_LEASES.inc();
                    lease.exhausted_until = None;
                    if account.available.load(Ordering::Acquire) <= 0 {
                        account.swap_in(&mut lease, units, Instant::now());
                    } else {
                        lease.next += units;
                    }
                }
                None => {}
            }
        }
        account.refilled.notify_waiters();
    }

    /// How many acquisitions had to wait for a lease from Postgres.
    pub fn waits(&self) -> u64 {
        self.waits.load(Ordering::Relaxed)
    }

    /// Gives a unit back to the local lease (the event was not accepted).
    pub async fn refund(&self, permit: QuotaPermit) {
        let account = self.lease_for((permit.account_id, permit.month));
        account.available.fetch_add(1, Ordering::AcqRel);
    }

    /// Leases up to `units` (at most a quarter of what is left of the quota, at least one
    /// while any is left); 0 when the quota is spent.
    async fn lease_block(
        &self,
        account_id: Uuid,
        month: BillingMonth,
        quota: i64,
        units: i64,
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
        .bind(units)
        .bind(quota)
        .fetch_optional(&self.pool)
        .await?;
        Ok(granted.unwrap_or(0))
    }

    /// Gives back to Postgres the unused quota of every lease not spent from during the
    /// last [`IDLE_PASSES`] passes (run every half idle time by [`Self::spawn_returner`]:
    /// idle for the configured time), or of all of them when `everything`, on shutdown,
    /// once any lease still under way has landed. Each call that is not `everything` is a
    /// pass.
    pub async fn return_unused(&self, everything: bool) -> Result<(), sqlx::Error> {
        let pass = if everything {
            self.passes.load(Ordering::Relaxed)
        } else {
            self.passes.fetch_add(1, Ordering::Relaxed) + 1
        };
        let entries: Vec<(LeaseKey, Arc<AccountLease>)> = self
            .leases
            .read()
            .expect("lease map lock")
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        for ((account_id, month), account) in entries {
            if everything {
                // A lease ahead still under way would land after this return and never be
                // given back: wait for it (nothing new starts, the server has stopped).
                loop {
                    let landed = {
                        let lease = account.state.lock().expect("lease lock");
                        (!lease.refilling)
                            .then_some(())
                            .ok_or_else(|| account.refilled.notified())
                    };
                    match landed {
                        Ok(()) => break,
                        Err(notified) => notified.await,
                    }
                }
            }
            let unused = {
                let mut lease = account.state.lock().expect("lease lock");
                // Spent from during pass `last_used` at the latest: unused since the pass
                // after it began.
                let last_used = account.last_used_pass.load(Ordering::Relaxed);
                let idle = pass.saturating_sub(last_used) > IDLE_PASSES;
                if everything || idle {
                    account.take_all() + std::mem::take(&mut lease.next)
                } else {
                    0
                }
            };
            if unused == 0 {
                continue;
            }
            let returned = sqlx::query(
                "UPDATE quota_usage SET leased = leased - $3 WHERE account_id = $1 AND month = $2",
            )
            .bind(account_id)
            .bind(month.first_day())
            .bind(unused)
            .execute(&self.pool)
            .await;
            if let Err(error) = returned {
                // Still ours: keep spending it, and try again next time.
                account.available.fetch_add(unused, Ordering::AcqRel);
                return Err(error);
            }
        }
        Ok(())
    }

    /// Runs [`Self::return_unused`] periodically until [`Returner::stop`].
    pub fn spawn_returner(self: &Arc<Self>) -> Returner {
        let limiter = Arc::clone(self);
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(limiter.idle.max(Duration::from_millis(100)) / 2);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = &mut stopped => return,
                }
                // Never cancelled midway: a return that Postgres applied is always
                // forgotten locally, so no unit is given back twice.
                if let Err(error) = limiter.return_unused(false).await {
                    tracing::warn!(%error, "could not return unused quota; will retry");
                }
            }
        });
        Returner { stop, task }
    }
}

/// The background task giving idle leases back.
pub struct Returner {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Returner {
    /// Stops it once a return under way has finished.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}
