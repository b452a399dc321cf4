//! `/admin/v1/*`: accounts, plans and keys, behind the admin bearer token.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use linktrace_domain::{ApiKey, Environment, PlanName};
use linktrace_platform::request::{
    field_error, header_value, required_str, BodyError, JsonObject, PathSegment,
};
use serde_json::{json, Value};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::accounts::{self, CreatedAccount};
use crate::error::ApiError;
use crate::state::AppState;

fn require_admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let presented = header_value(headers, &["authorization"])
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let expected = state.settings.admin_token.as_bytes();
    // Constant time: the comparison takes as long whatever prefix matches.
    if expected.is_empty() || !bool::from(presented.as_bytes().ct_eq(expected)) {
        return Err(ApiError::AdminUnauthorized);
    }
    Ok(())
}

fn account_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound("account"))
}

pub async fn create_account(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<JsonObject, BodyError>,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let JsonObject(object) = body?;
    let name = required_str(&object, "name")?;
    let plan = PlanName::parse(required_str(&object, "plan")?).map_err(field_error("plan"))?;
    let created = accounts::create(&state.pool, name, &plan).await?;
    Ok((StatusCode::CREATED, Json(account_created(&created))).into_response())
}

pub async fn change_plan(
    State(state): State<AppState>,
    PathSegment(raw_id): PathSegment,
    headers: HeaderMap,
    body: Result<JsonObject, BodyError>,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let id = account_id(&raw_id)?;
    let JsonObject(object) = body?;
    let plan = PlanName::parse(required_str(&object, "plan")?).map_err(field_error("plan"))?;
    let changed = accounts::change_plan(&state.pool, id, &plan).await?;
    state.keys.forget_all();
    if !changed {
        return Err(ApiError::NotFound("account"));
    }
    Ok(Json(plan_changed(id, &plan)).into_response())
}

/// The account and key environment a key operation names (`{"environment": "live" | "test"}`).
fn key_target(
    raw_id: &str,
    body: Result<JsonObject, BodyError>,
) -> Result<(Uuid, Environment), ApiError> {
    let id = account_id(raw_id)?;
    let JsonObject(object) = body?;
    let environment = Environment::parse(required_str(&object, "environment")?)
        .ok_or_else(|| ApiError::validation(ENVIRONMENT_RULE))?;
    Ok((id, environment))
}

pub async fn rotate_key(
    State(state): State<AppState>,
    PathSegment(raw_id): PathSegment,
    headers: HeaderMap,
    body: Result<JsonObject, BodyError>,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let (id, environment) = key_target(&raw_id, body)?;
    let key = accounts::rotate_key(&state.pool, id, environment).await?;
    state.keys.forget_all();
    let key = key.ok_or(ApiError::NotFound("account"))?;
    Ok(Json(key_rotated(id, environment, &key)).into_response())
}

pub async fn revoke_key(
    State(state): State<AppState>,
    PathSegment(raw_id): PathSegment,
    headers: HeaderMap,
    body: Result<JsonObject, BodyError>,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let (id, environment) = key_target(&raw_id, body)?;
    let revoked = accounts::revoke_key(&state.pool, id, environment).await?;
    state.keys.forget_all();
    if !revoked {
        return Err(ApiError::NotFound("account"));
    }
    Ok(Json(key_revoked(id, environment)).into_response())
}

// The bodies the admin API answers with; `linktrace-admin` prints the same ones.

pub const ENVIRONMENT_RULE: &str = "environment must be \"live\" or \"test\"";

pub fn account_created(created: &CreatedAccount) -> Value {
    json!({
        "accountId": created.account_id,
        "apiKey": created.api_key.expose_secret(),
        "testApiKey": created.test_api_key.expose_secret(),
    })
}

pub fn plan_changed(id: Uuid, plan: &PlanName) -> Value {
    json!({ "success": true, "accountId": id, "plan": plan.as_str() })
}

pub fn key_rotated(id: Uuid, environment: Environment, key: &ApiKey) -> Value {
    json!({ "success": true, "accountId": id, "environment": environment.as_str(), "apiKey": key.expose_secret() })
}

pub fn key_revoked(id: Uuid, environment: Environment) -> Value {
    json!({ "success": true, "accountId": id, "environment": environment.as_str(), "revoked": true })
}
