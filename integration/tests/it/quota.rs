//! The quota lease off the hot path, against real Postgres: a hot account's next block is
//! leased while the current one is still being spent, so no request waits for Postgres
//! at a block boundary, and the quota stays exact.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use linktrace_ingest::quota::{QuotaDecision, QuotaLimiter};
use linktrace_integration::TestEnv;

const QUOTA: i64 = 1_000_000;

fn limiter(env: &TestEnv, most: i64) -> Arc<QuotaLimiter> {
    Arc::new(QuotaLimiter::new(
        env.pool.clone(),
        most,
        Duration::from_secs(60),
    ))
}

#[tokio::test]
async fn a_hot_account_waits_for_postgres_only_for_its_first_block() {
    let env = TestEnv::new().await;
    let account = env.create_account("scale").await;
    // Blocks of at most 25: 200 events ~10 ms apart cross at least 8 block boundaries.
    // The pace leaves each lease ahead the time of half a block (the first block: 5 events,
    // ≥ 50 ms; later ones: 12 events, ≥ 120 ms) to come back from Postgres. At 1 ms apart a
    // CI machine busy with the cluster tests once took longer than that (stop 38), and the
    // request at that boundary rightly waited: traffic had outrun the prefetch.
    let quota = limiter(&env, 25);
    for _ in 0..200 {
        let decision = quota.acquire(account.id, QUOTA, Utc::now()).await.unwrap();
        assert!(matches!(decision, QuotaDecision::Granted(_)));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let leases: i64 = sqlx::query_scalar("SELECT leased FROM quota_usage WHERE account_id = $1")
        .bind(account.id)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert!(leases >= 200, "leased {leases}");
    assert_eq!(
        quota.waits(),
        1,
        "only the very first event waits for a lease"
    );
}

#[tokio::test]
async fn a_block_boundary_under_a_stuck_lease_waits_and_then_proceeds() {
    let env = TestEnv::new().await;
    let account = env.create_account("scale").await;
    let quota = limiter(&env, 10);
    // The first event leases the first block (10).
    quota.acquire(account.id, QUOTA, Utc::now()).await.unwrap();
    // Postgres stalls every lease of this account from now on (a row lock).
    let mut blocker = env.pool.begin().await.unwrap();
    sqlx::query("SELECT leased FROM quota_usage WHERE account_id = $1 FOR UPDATE")
        .bind(account.id)
        .fetch_one(&mut *blocker)
        .await
        .unwrap();
    // The rest of the block is spent without waiting, though the lease ahead is stuck.
    for _ in 0..9 {
        let granted = tokio::time::timeout(
            Duration::from_millis(200),
            quota.acquire(account.id, QUOTA, Utc::now()),
        )
        .await
        .expect("no wait while the block lasts")
        .unwrap();
        assert!(matches!(granted, QuotaDecision::Granted(_)));
    }
    // The eleventh needs the stuck lease, and gets it once Postgres answers.
    let waiting = tokio::spawn({
        let quota = quota.clone();
        async move { quota.acquire(account.id, QUOTA, Utc::now()).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "nothing was left to grant");
    blocker.commit().await.unwrap();
    let decision = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(decision, QuotaDecision::Granted(_)));
    // Exact: returning what is unused leaves leased == taken.
    quota.return_unused(true).await.unwrap();
    let leased: i64 = sqlx::query_scalar("SELECT leased FROM quota_usage WHERE account_id = $1")
        .bind(account.id)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(leased, 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_takers_get_exactly_the_quota_and_leases_balance() {
    let env = TestEnv::new().await;
    let account = env.create_account("scale").await;
    let quota = limiter(&env, 40);
    const QUOTA_HERE: i64 = 1_000;
    let takers = (0..64).map(|_| {
        let quota = quota.clone();
        tokio::spawn(async move {
            let mut granted = 0;
            for _ in 0..25 {
                if let QuotaDecision::Granted(_) = quota
                    .acquire(account.id, QUOTA_HERE, Utc::now())
                    .await
                    .unwrap()
                {
                    granted += 1;
                }
            }
            granted
        })
    });
    let granted: i64 = futures::future::join_all(takers)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .sum();
    assert_eq!(granted, QUOTA_HERE, "1,600 asked for a quota of 1,000");
    quota.return_unused(true).await.unwrap();
    let leased: i64 = sqlx::query_scalar("SELECT leased FROM quota_usage WHERE account_id = $1")
        .bind(account.id)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(leased, QUOTA_HERE);
}

async fn leased(env: &TestEnv, account_id: uuid::Uuid) -> i64 {
    sqlx::query_scalar("SELECT leased FROM quota_usage WHERE account_id = $1")
        .bind(account_id)
        .fetch_one(&env.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_lease_unused_for_two_whole_returner_passes_is_given_back_and_a_busy_one_kept() {
    let env = TestEnv::new().await;
    let busy = env.create_account("scale").await;
    let idle = env.create_account("scale").await;
    let quota = limiter(&env, 10);
    let now = Utc::now();
    // Each leases a first block of 10 and spends one unit of it.
    quota.acquire(busy.id, QUOTA, now).await.unwrap();
    quota.acquire(idle.id, QUOTA, now).await.unwrap();
    assert_eq!(leased(&env, idle.id).await, 10);
    for pass in 1..=3 {
        quota.return_unused(false).await.unwrap();
        // The busy account spends between every two passes.
        quota.acquire(busy.id, QUOTA, now).await.unwrap();
        let idle_leased = leased(&env, idle.id).await;
        if pass < 3 {
            // Passes run every half idle time: two are not yet the whole of it.
            assert_eq!(idle_leased, 10, "given back after {pass} passes");
        } else {
            assert_eq!(idle_leased, 1, "the 9 unused units go back after 3 passes");
        }
    }
    assert_eq!(leased(&env, busy.id).await, 10, "a busy lease is kept");
    // The idle account comes back: it leases again and is counted exactly.
    quota.acquire(idle.id, QUOTA, now).await.unwrap();
    quota.return_unused(true).await.unwrap();
    assert_eq!(leased(&env, idle.id).await, 2);
    assert_eq!(leased(&env, busy.id).await, 4);
}
