//! `/admin/v1/*`: accounts, plans and keys, behind the admin bearer token.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use linktrace_domain::{ApiKey, Environment, PlanName};
use linktrace_platform::openapi::{errors, Yes};
use linktrace_platform::request::{header_value, JsonBody, PathSegment, RequestError, Text};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::accounts::{self, CreatedAccount};
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) fn require_admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let presented = header_value(headers, &[axum::http::header::AUTHORIZATION])
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let expected = state.settings.admin_token.expose().as_bytes();
    // Constant time: the comparison takes as long whatever prefix matches.
    if expected.is_empty() || !bool::from(presented.as_bytes().ct_eq(expected)) {
        return Err(ApiError::AdminUnauthorized);
    }
    Ok(())
}

/// A request about one account: the admin token first, then the account id from the path
/// (not a UUID: 404, as an unknown account), then the body.
fn account_request<T>(
    state: &AppState,
    headers: &HeaderMap,
    raw_id: &str,
    body: Result<JsonBody<T>, RequestError>,
) -> Result<(Uuid, T), ApiError> {
    require_admin(state, headers)?;
    let id = Uuid::parse_str(raw_id).map_err(|_| ApiError::NotFound("account"))?;
    let JsonBody(body) = body?;
    Ok((id, body))
}

/// A new account.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AccountBody {
    /// 1-200 characters once trimmed.
    #[schema(value_type = String, min_length = 1, max_length = 200, pattern = "\\S")]
    pub name: Text<0, 4096>,
    pub plan: PlanName,
}

/// A plan change.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PlanBody {
    pub plan: PlanName,
}

/// Which of the account's two keys.
#[derive(Debug, Deserialize, ToSchema)]
pub struct KeyBody {
    pub environment: Environment,
}

/// Create an account with its live and test keys (shown once)
#[utoipa::path(
    post,
    path = "/admin/v1/accounts",
    operation_id = "createAccount",
    tag = "admin",
    request_body = AccountBody,
    responses(
        (status = 201, description = "accountId, apiKey, testApiKey", body = AccountCreated, links(
            ("ChangePlan" = (operation_id = "changePlan", parameters(("accountId" = "$response.body#/accountId")))),
            ("RevokeKey" = (operation_id = "revokeKey", parameters(("accountId" = "$response.body#/accountId")))),
            ("RotateKey" = (operation_id = "rotateKey", parameters(("accountId" = "$response.body#/accountId")))),
        )),
        errors::BadRequest, errors::Unauthorized, errors::PayloadTooLarge, errors::Unavailable,
    ),
    security(("adminToken" = [])),
)]
pub async fn create_account(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<JsonBody<AccountBody>, RequestError>,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let JsonBody(body) = body?;
    let created = accounts::create(&state.pool, body.name.as_str(), &body.plan).await?;
    Ok((StatusCode::CREATED, Json(AccountCreated::from(&created))).into_response())
}

/// Change an account's plan
#[utoipa::path(
    put,
    path = "/admin/v1/accounts/{accountId}/plan",
    tag = "admin",
    operation_id = "changePlan",
    params(("accountId" = Uuid, Path)),
    request_body = PlanBody,
    responses(
        (status = 200, description = "Changed", body = PlanChanged),
        errors::BadRequest, errors::Unauthorized, errors::NotFound, errors::PayloadTooLarge,
        errors::Unavailable,
    ),
    security(("adminToken" = [])),
)]
pub async fn change_plan(
    State(state): State<AppState>,
    PathSegment(raw_id): PathSegment,
    headers: HeaderMap,
    body: Result<JsonBody<PlanBody>, RequestError>,
) -> Result<Response, ApiError> {
    let (id, PlanBody { plan }) = account_request(&state, &headers, &raw_id, body)?;
    let changed = accounts::change_plan(&state.pool, id, &plan).await?;
    state.keys.forget_all();
    if !changed {
        return Err(ApiError::NotFound("account"));
    }
    Ok(Json(PlanChanged::new(id, &plan)).into_response())
}

/// Revoke the current key of an environment and issue a new one
#[utoipa::path(
    post,
    path = "/admin/v1/accounts/{accountId}/keys/rotate",
    tag = "admin",
    operation_id = "rotateKey",
    params(("accountId" = Uuid, Path)),
    request_body = KeyBody,
    responses(
        (status = 200, description = "The new key", body = KeyRotated),
        errors::BadRequest, errors::Unauthorized, errors::NotFound, errors::PayloadTooLarge,
        errors::Unavailable,
    ),
    security(("adminToken" = [])),
)]
pub async fn rotate_key(
    State(state): State<AppState>,
    PathSegment(raw_id): PathSegment,
    headers: HeaderMap,
    body: Result<JsonBody<KeyBody>, RequestError>,
) -> Result<Response, ApiError> {
    let (id, KeyBody { environment }) = account_request(&state, &headers, &raw_id, body)?;
    let key = accounts::rotate_key(&state.pool, id, environment).await?;
    state.keys.forget_all();
    let key = key.ok_or(ApiError::NotFound("account"))?;
    Ok(Json(KeyRotated::new(id, environment, &key)).into_response())
}

/// Revoke the key of an environment without issuing another
#[utoipa::path(
    post,
    path = "/admin/v1/accounts/{accountId}/keys/revoke",
    tag = "admin",
    operation_id = "revokeKey",
    params(("accountId" = Uuid, Path)),
    request_body = KeyBody,
    responses(
        (status = 200, description = "Revoked", body = KeyRevoked),
        errors::BadRequest, errors::Unauthorized, errors::NotFound, errors::PayloadTooLarge,
        errors::Unavailable,
    ),
    security(("adminToken" = [])),
)]
pub async fn revoke_key(
    State(state): State<AppState>,
    PathSegment(raw_id): PathSegment,
    headers: HeaderMap,
    body: Result<JsonBody<KeyBody>, RequestError>,
) -> Result<Response, ApiError> {
    let (id, KeyBody { environment }) = account_request(&state, &headers, &raw_id, body)?;
    let revoked = accounts::revoke_key(&state.pool, id, environment).await?;
    state.keys.forget_all();
    if !revoked {
        return Err(ApiError::NotFound("account"));
    }
    Ok(Json(KeyRevoked::new(id, environment)).into_response())
}

// The bodies the admin API answers with; `linktrace-admin` prints the same ones.

pub const ENVIRONMENT_RULE: &str = "environment must be \"live\" or \"test\"";

/// A new account and its two keys, shown this once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountCreated {
    pub account_id: Uuid,
    #[schema(pattern = "^lt_live_")]
    pub api_key: String,
    #[schema(pattern = "^lt_test_")]
    pub test_api_key: String,
}

impl From<&CreatedAccount> for AccountCreated {
    fn from(created: &CreatedAccount) -> Self {
        AccountCreated {
            account_id: created.account_id,
            api_key: created.api_key.expose_secret().to_owned(),
            test_api_key: created.test_api_key.expose_secret().to_owned(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanChanged {
    pub success: Yes,
    pub account_id: Uuid,
    pub plan: PlanName,
}

impl PlanChanged {
    pub fn new(account_id: Uuid, plan: &PlanName) -> Self {
        PlanChanged {
            success: Yes,
            account_id,
            plan: plan.clone(),
        }
    }
}

/// The environment's new key, shown this once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyRotated {
    pub success: Yes,
    pub account_id: Uuid,
    pub environment: Environment,
    #[schema(pattern = "^lt_(live|test)_")]
    pub api_key: String,
}

impl KeyRotated {
    pub fn new(account_id: Uuid, environment: Environment, key: &ApiKey) -> Self {
        KeyRotated {
            success: Yes,
            account_id,
            environment,
            api_key: key.expose_secret().to_owned(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyRevoked {
    pub success: Yes,
    pub account_id: Uuid,
    pub environment: Environment,
    pub revoked: Yes,
}

impl KeyRevoked {
    pub fn new(account_id: Uuid, environment: Environment) -> Self {
        KeyRevoked {
            success: Yes,
            account_id,
            environment,
            revoked: Yes,
        }
    }
}
