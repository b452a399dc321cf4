//! Each account's webhooks, and the record of their delivery attempts (which the webhook
//! worker writes; see the `linktrace-webhooks` crate). A webhook belongs to the environment
//! of the key that created it and receives only that environment's events.

use chrono::{DateTime, Utc};
use linktrace_domain::{Environment, EventTypes, WebUrl, WebhookSecret};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;

/// How many webhooks an account may have per environment.
pub const MAX_PER_ACCOUNT: i64 = 20;

/// A webhook as the api shows it (never with its secret, except once at creation).
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub id: Uuid,
    #[schema(value_type = String)]
    pub url: String,
    #[schema(value_type = Vec<String>)]
    pub events: Vec<String>,
    /// `live` or `test`: the key's that made it.
    #[schema(example = "live")]
    pub environment: String,
    pub created_at: DateTime<Utc>,
}

/// One attempt to deliver an event to a webhook.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub event_id: Uuid,
    /// The event's name.
    #[serde(rename = "type")]
    pub event_name: String,
    /// 1 for the first attempt at this event.
    pub attempt: i32,
    /// `delivered` (2xx), `retrying` (another attempt is scheduled) or `failed` (given up).
    #[schema(example = "delivered")]
    pub status: String,
    /// The endpoint's HTTP status; absent when it gave none (timeout, refused connection).
    pub response_code: Option<i32>,
    /// Why the attempt failed, when it did.
    pub error: Option<String>,
    pub duration_ms: i32,
    pub attempted_at: DateTime<Utc>,
}

/// Creates a webhook; `None` when the account already has [`MAX_PER_ACCOUNT`] in this
/// environment.
pub async fn create(
    pool: &PgPool,
    account_id: Uuid,
    environment: Environment,
    url: &WebUrl,
    events: &EventTypes,
    secret: &WebhookSecret,
) -> Result<Option<Webhook>, ApiError> {
    let mut tx = pool.begin().await?;
    // One creation at a time per account, so the limit holds under concurrent calls.
    sqlx::query("SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE")
        .bind(account_id)
        .execute(&mut *tx)
        .await?;
    let created: Option<Webhook> = sqlx::query_as(
        "INSERT INTO webhooks (id, account_id, environment, url, events, secret) \
         SELECT $1, $2, $3, $4, $5, $6 \
          WHERE (SELECT count(*) FROM webhooks WHERE account_id = $2 AND environment = $3) < $7 \
         RETURNING id, url, events, environment, created_at",
    )
    .bind(Uuid::new_v4())
    .bind(account_id)
    .bind(environment.as_str())
    .bind(url.as_str())
    .bind(events.as_slice())
    .bind(secret.expose_secret())
    .bind(MAX_PER_ACCOUNT)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(created)
}

/// The account's webhooks of one environment, oldest first.
pub async fn list(
    pool: &PgPool,
    account_id: Uuid,
    environment: Environment,
) -> Result<Vec<Webhook>, ApiError> {
    Ok(sqlx::query_as(
        "SELECT id, url, events, environment, created_at FROM webhooks \
          WHERE account_id = $1 AND environment = $2 ORDER BY created_at, id",
    )
    .bind(account_id)
    .bind(environment.as_str())
    .fetch_all(pool)
    .await?)
}

/// Deletes a webhook with its pending deliveries and attempts; `false` when the caller has
/// no such webhook.
pub async fn delete(
    pool: &PgPool,
    account_id: Uuid,
    environment: Environment,
    id: Uuid,
) -> Result<bool, ApiError> {
    let deleted =
        sqlx::query("DELETE FROM webhooks WHERE id = $1 AND account_id = $2 AND environment = $3")
            .bind(id)
            .bind(account_id)
            .bind(environment.as_str())
            .execute(pool)
            .await?;
    Ok(deleted.rows_affected() == 1)
}

/// The webhook's most recent attempts, newest first; `None` when the caller has no such
/// webhook.
pub async fn recent_attempts(
    pool: &PgPool,
    account_id: Uuid,
    environment: Environment,
    id: Uuid,
    limit: i64,
) -> Result<Option<Vec<Attempt>>, ApiError> {
    let owned: Option<Uuid> = sqlx::query_scalar(
        "SELECT id FROM webhooks WHERE id = $1 AND account_id = $2 AND environment = $3",
    )
    .bind(id)
    .bind(account_id)
    .bind(environment.as_str())
    .fetch_optional(pool)
    .await?;
    if owned.is_none() {
        return Ok(None);
    }
    let attempts = sqlx::query_as(
        "SELECT event_id, event_name, attempt, outcome AS status, response_code, error, \
                duration_ms, attempted_at \
           FROM webhook_attempts WHERE webhook_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(Some(attempts))
}
