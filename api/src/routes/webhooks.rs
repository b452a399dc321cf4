//! `POST/GET /api/v1/webhooks`, `DELETE /api/v1/webhooks/{id}` and
//! `GET /api/v1/webhooks/{id}/deliveries`. Deliveries themselves are the webhook worker's
//! (a consumer group of its own); these routes only manage webhooks and read its record.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use linktrace_domain::{Endpoint, EventTypes, WebUrl, WebhookSecret};
use linktrace_platform::openapi::{errors, Yes};
use linktrace_platform::request::{JsonBody, Limit, PathSegment, QueryParams, RequestError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::ApiError;
use crate::routes::{caller, Caller};
use crate::state::AppState;
use crate::webhooks::{self, Attempt, Webhook};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookBody {
    /// Where events are POSTed: http(s); loopback and private addresses only where the
    /// operator allows them.
    pub url: WebUrl,
    pub events: EventTypes,
}

/// The new webhook and its signing secret (shown only here).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedWebhook {
    pub success: Yes,
    #[serde(flatten)]
    pub webhook: Webhook,
    /// Signs every delivery: `LinkTrace-Signature: t=<unix seconds>,v1=<hex
    /// HMAC-SHA256(secret, "<t>.<raw body>")>`. Not shown again.
    #[schema(example = "whsec_…")]
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    pub success: Yes,
    pub webhooks: Vec<Webhook>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Deliveries {
    pub success: Yes,
    /// The most recent attempts, newest first.
    pub deliveries: Vec<Attempt>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    pub success: Yes,
}

/// Create a webhook for the key's environment
#[utoipa::path(
    post,
    path = "/api/v1/webhooks",
    operation_id = "createWebhook",
    tag = "api",
    request_body = CreateWebhookBody,
    responses(
        (status = 201, description = "Created; the secret is shown only now", body = CreatedWebhook),
        errors::BadRequest, errors::Unauthorized, errors::PlanUpgradeRequired,
        errors::PayloadTooLarge, errors::Unavailable,
    ),
    security(("apiKey" = [])),
)]
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<JsonBody<CreateWebhookBody>, RequestError>,
) -> Result<Response, ApiError> {
    let caller = webhook_caller(&state, &headers).await?;
    let JsonBody(body) = body?;
    if !state
        .settings
        .endpoint_policy
        .permits_url_host(body.url.as_str())
    {
        return Err(ApiError::validation(
            "url: must not point at a loopback, private or other non-public address",
        ));
    }
    let secret = WebhookSecret::generate();
    let webhook = webhooks::create(
        &state.pool,
        caller.account_id,
        caller.environment,
        &body.url,
        &body.events,
        &secret,
    )
    .await?
    .ok_or_else(|| {
        ApiError::validation(format!(
            "an account has at most {} webhooks per environment",
            webhooks::MAX_PER_ACCOUNT
        ))
    })?;
    let created = CreatedWebhook {
        success: Yes,
        webhook,
        secret: secret.expose_secret().to_owned(),
    };
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// List the key environment's webhooks
#[utoipa::path(
    get,
    path = "/api/v1/webhooks",
    operation_id = "listWebhooks",
    tag = "api",
    responses(
        (status = 200, description = "The webhooks, oldest first (without secrets)", body = WebhookList),
        errors::Unauthorized, errors::PlanUpgradeRequired, errors::Unavailable,
    ),
    security(("apiKey" = [])),
)]
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let caller = webhook_caller(&state, &headers).await?;
    let webhooks = webhooks::list(&state.pool, caller.account_id, caller.environment).await?;
    Ok(Json(WebhookList {
        success: Yes,
        webhooks,
    })
    .into_response())
}

/// Delete a webhook (its pending deliveries are dropped)
#[utoipa::path(
    delete,
    path = "/api/v1/webhooks/{id}",
    operation_id = "deleteWebhook",
    tag = "api",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "Deleted", body = Deleted),
        errors::Unauthorized, errors::PlanUpgradeRequired, errors::NotFound, errors::Unavailable,
    ),
    security(("apiKey" = [])),
)]
pub async fn delete(
    State(state): State<AppState>,
    PathSegment(raw_id): PathSegment,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = webhook_caller(&state, &headers).await?;
    let id = webhook_id(&raw_id)?;
    if !webhooks::delete(&state.pool, caller.account_id, caller.environment, id).await? {
        return Err(ApiError::NotFound("webhook"));
    }
    Ok(Json(Deleted { success: Yes }).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// 1-200, default 50.
    #[param(inline)]
    limit: Option<Limit<200>>,
}

/// The webhook's recent delivery attempts
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}/deliveries",
    operation_id = "listWebhookDeliveries",
    tag = "api",
    params(("id" = Uuid, Path), DeliveriesQuery),
    responses(
        (status = 200, description = "Recent attempts, newest first", body = Deliveries),
        errors::BadRequest, errors::Unauthorized, errors::PlanUpgradeRequired,
        errors::NotFound, errors::Unavailable,
    ),
    security(("apiKey" = [])),
)]
pub async fn deliveries(
    State(state): State<AppState>,
    PathSegment(raw_id): PathSegment,
    headers: HeaderMap,
    query: Result<QueryParams<DeliveriesQuery>, RequestError>,
) -> Result<Response, ApiError> {
    let caller = webhook_caller(&state, &headers).await?;
    let QueryParams(query) = query?;
    let id = webhook_id(&raw_id)?;
    let limit = i64::from(query.limit.map_or(50, Limit::get));
    let attempts = webhooks::recent_attempts(
        &state.pool,
        caller.account_id,
        caller.environment,
        id,
        limit,
    )
    .await?
    .ok_or(ApiError::NotFound("webhook"))?;
    Ok(Json(Deliveries {
        success: Yes,
        deliveries: attempts,
    })
    .into_response())
}

/// Webhooks carry events, so they come with the plan's events endpoint.
async fn webhook_caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let caller = caller(state, headers).await?;
    caller.require(Endpoint::Events)?;
    Ok(caller)
}

/// A path id that is not a UUID names no webhook.
fn webhook_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound("webhook"))
}
