//! `linktrace-admin` run as a process against a fresh Postgres database: what it prints is
//! what it did, and the keys it prints are the ones the api accepts.

use std::process::{Command, Output};

use linktrace_domain::Environment;
use linktrace_platform::cache::LookupCacheConfig;
use linktrace_platform::keys::{KeyDirectory, KeyOwner};
use linktrace_platform::postgres::{connect_and_migrate, PostgresConfig};
use serde_json::Value;
use sqlx::PgPool;

struct Database {
    url: String,
    pool: PgPool,
}

async fn fresh_database() -> Database {
    let server = std::env::var("TEST_POSTGRES_SERVER")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let url = format!(
        "{server}/lt_test_cli_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let pool = connect_and_migrate(&PostgresConfig {
        url: linktrace_platform::secret::Secret::new(url.clone()),
        max_connections: 2,
    })
    .await
    .expect("Postgres must be running (deploy/up.sh --infra)");
    Database { url, pool }
}

fn admin(database: &Database, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_linktrace-admin"))
        .args(args)
        .env("DATABASE_URL", &database.url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run linktrace-admin")
}

fn printed(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON on stdout")
}

async fn plan_of(pool: &PgPool, account_id: &str) -> String {
    sqlx::query_scalar("SELECT plan FROM accounts WHERE id = $1::uuid")
        .bind(account_id)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// What the key directory (as every service uses it) says of `secret`, uncached.
async fn owner(pool: &sqlx::PgPool, secret: &str) -> Result<KeyOwner, &'static str> {
    let uncached = LookupCacheConfig {
        ttl_secs: 0,
        negative_ttl_secs: 0,
    };
    KeyDirectory::new(pool.clone(), &uncached)
        .resolve(Some(secret))
        .await
        .expect("Postgres")
        .ok_or("unknown or revoked key")
}

#[tokio::test]
async fn the_cli_creates_accounts_changes_plans_and_rotates_and_revokes_keys() {
    let database = fresh_database().await;
    let pool = &database.pool;

    let created = printed(&admin(
        &database,
        &["create-account", "--name", "Acme", "--plan", "free"],
    ));
    let id = created["accountId"].as_str().unwrap().to_owned();
    let live = created["apiKey"].as_str().unwrap().to_owned();
    let test = created["testApiKey"].as_str().unwrap().to_owned();
    let caller = owner(pool, &live).await.unwrap();
    assert_eq!(caller.account_id.to_string(), id);
    assert_eq!(caller.environment, Environment::Live);
    assert_eq!(
        owner(pool, &test).await.unwrap().environment,
        Environment::Test
    );
    assert_eq!(plan_of(pool, &id).await, "free");

    let changed = printed(&admin(&database, &["set-plan", &id, "--plan", "scale"]));
    assert_eq!(changed["plan"], "scale");
    assert_eq!(plan_of(pool, &id).await, "scale");

    let rotated = printed(&admin(
        &database,
        &["rotate-key", &id, "--environment", "live"],
    ));
    let new_live = rotated["apiKey"].as_str().unwrap();
    assert_ne!(new_live, live);
    assert!(owner(pool, &live).await.is_err());
    assert!(owner(pool, new_live).await.is_ok());
    // Rotating live leaves the test key alone.
    assert!(owner(pool, &test).await.is_ok());

    let revoked = printed(&admin(
        &database,
        &["revoke-key", &id, "--environment", "test"],
    ));
    assert_eq!(revoked["revoked"], true);
    assert!(owner(pool, &test).await.is_err());
    assert!(owner(pool, new_live).await.is_ok());
}

#[tokio::test]
async fn the_cli_refuses_what_the_admin_api_refuses() {
    let database = fresh_database().await;
    let nobody = uuid::Uuid::new_v4().to_string();
    for (args, reason) in [
        (
            vec!["create-account", "--name", "Acme", "--plan", "gold"],
            "plan",
        ),
        (
            vec!["create-account", "--name", "  ", "--plan", "free"],
            "name must be 1-200 characters",
        ),
        (
            vec!["set-plan", nobody.as_str(), "--plan", "free"],
            "no account",
        ),
        (
            vec!["rotate-key", nobody.as_str(), "--environment", "live"],
            "no account",
        ),
        (
            vec!["revoke-key", "not-a-uuid", "--environment", "live"],
            "invalid value",
        ),
        (
            vec!["revoke-key", nobody.as_str(), "--environment", "prod"],
            "environment must be",
        ),
    ] {
        let output = admin(&database, &args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(reason), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?} printed a result");
    }
    let accounts: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts")
        .fetch_one(&database.pool)
        .await
        .unwrap();
    assert_eq!(accounts, 0);
}
