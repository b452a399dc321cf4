//! Accounts and their keys in Postgres. Keys are generated here, shown once, and stored
//! only as hashes.

use linktrace_domain::{ApiKey, Environment, PlanName};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::ApiError;

#[derive(Debug, Clone)]
pub struct CreatedAccount {
    pub account_id: Uuid,
    pub api_key: ApiKey,
    pub test_api_key: ApiKey,
}

pub async fn plan_exists(pool: &PgPool, plan: &PlanName) -> Result<bool, ApiError> {
    Ok(
        sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM plans WHERE name = $1)")
            .bind(plan.as_str())
            .fetch_one(pool)
            .await?,
    )
}

/// Creates an account named `name` (trimmed; 1-200 characters) on `plan`, with a live and
/// a test key.
pub async fn create(
    pool: &PgPool,
    name: &str,
    plan: &PlanName,
) -> Result<CreatedAccount, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::validation("name must be 1-200 characters"));
    }
    if !plan_exists(pool, plan).await? {
        return Err(ApiError::validation(format!(
            "plan \"{plan}\" does not exist"
        )));
    }
    let account_id = Uuid::new_v4();
    let api_key = ApiKey::generate(Environment::Live);
    let test_api_key = ApiKey::generate(Environment::Test);
    let mut tx = pool.begin().await?;
    sqlx::query("INSERT INTO accounts (id, name, plan) VALUES ($1, $2, $3)")
        .bind(account_id)
        .bind(name)
        .bind(plan.as_str())
        .execute(&mut *tx)
        .await?;
    for key in [&api_key, &test_api_key] {
        insert_key(&mut tx, account_id, key).await?;
    }
    tx.commit().await?;
    tracing::info!(%account_id, plan = %plan, "account created");
    Ok(CreatedAccount {
        account_id,
        api_key,
        test_api_key,
    })
}

async fn insert_key(
    tx: &mut sqlx::PgConnection,
    account_id: Uuid,
    key: &ApiKey,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO api_keys (key_hash, account_id, environment, prefix) VALUES ($1, $2, $3, $4)",
    )
    .bind(key.hash().as_str())
    .bind(account_id)
    .bind(key.environment().as_str())
    .bind(key.display_prefix())
    .execute(tx)
    .await?;
    Ok(())
}

/// Changes the account's plan; `false` when there is no such account.
pub async fn change_plan(
    pool: &PgPool,
    account_id: Uuid,
    plan: &PlanName,
) -> Result<bool, ApiError> {
    if !plan_exists(pool, plan).await? {
        return Err(ApiError::validation(format!(
            "plan \"{plan}\" does not exist"
        )));
    }
    let updated = sqlx::query("UPDATE accounts SET plan = $2 WHERE id = $1")
        .bind(account_id)
        .bind(plan.as_str())
        .execute(pool)
        .await?;
    Ok(updated.rows_affected() == 1)
}

/// Revokes the account's current key of `environment` and issues a new one, atomically.
pub async fn rotate_key(
    pool: &PgPool,
    account_id: Uuid,
    environment: Environment,
) -> Result<Option<ApiKey>, ApiError> {
    let mut tx = pool.begin().await?;
    if !revoke_in(&mut tx, account_id, environment).await? {
        return Ok(None);
    }
    let key = ApiKey::generate(environment);
    insert_key(&mut tx, account_id, &key).await?;
    tx.commit().await?;
    Ok(Some(key))
}

/// Revokes the account's key of `environment` without issuing another; `false` when there is
/// no such account. Ingest stops accepting it within its key-cache TTL.
pub async fn revoke_key(
    pool: &PgPool,
    account_id: Uuid,
    environment: Environment,
) -> Result<bool, ApiError> {
    let mut tx = pool.begin().await?;
    let exists = revoke_in(&mut tx, account_id, environment).await?;
    tx.commit().await?;
    Ok(exists)
}

/// Marks the account's live keys of `environment` revoked; `false` when there is no account.
async fn revoke_in(
    tx: &mut sqlx::PgConnection,
    account_id: Uuid,
    environment: Environment,
) -> Result<bool, sqlx::Error> {
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM accounts WHERE id = $1)")
        .bind(account_id)
        .fetch_one(&mut *tx)
        .await?;
    if exists {
        sqlx::query("UPDATE api_keys SET revoked_at = now() WHERE account_id = $1 AND environment = $2 AND revoked_at IS NULL")
            .bind(account_id)
            .bind(environment.as_str())
            .execute(&mut *tx)
            .await?;
    }
    Ok(exists)
}
