//! `/api/v1/referral-links`: create, metadata with totals, list, update, delete — always
//! scoped to the caller's account; another account's link is `404 LINK_NOT_FOUND`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use linktrace_domain::{Endpoint, ShortCode};
use linktrace_platform::error::CommonError;
use linktrace_platform::request::{
    field_error, optional_bounded_str, optional_str, required_str, BodyError, FieldError,
    JsonObject, PathSegment, QueryParams,
};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::analytics;
use crate::error::ApiError;
use crate::links::{self, LinkFields};
use crate::routes::caller;
use crate::state::AppState;

/// Paths a root-level short code must never shadow.
pub const RESERVED_SHORT_CODES: &[&str] = &[
    "healthz",
    "readyz",
    "metrics",
    "dashboard",
    "api",
    "admin",
    "openapi",
    "static",
    "favicon",
];

const MAX_URL: usize = 2048;
const MAX_TEXT: usize = 255;

pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<JsonObject, BodyError>,
) -> Result<Response, ApiError> {
    let caller = caller(&state, &headers).await?;
    caller.require(Endpoint::CreateReferralLink)?;
    let JsonObject(object) = body?;
    let fields = parse_fields(&object, LinkFields::default(), true)?;
    let custom = optional_str(&object, "shortCode")?
        .map(|raw| {
            let code = ShortCode::parse(raw).map_err(field_error("shortCode"))?;
            if RESERVED_SHORT_CODES.contains(&code.as_str().to_ascii_lowercase().as_str()) {
                return Err(ApiError::validation(format!(
                    "shortCode \"{raw}\" is reserved"
                )));
            }
            Ok(code)
        })
        .transpose()?;
    let link = match custom {
        Some(code) => links::insert(&state.pool, caller.account_id, code.as_str(), &fields)
            .await?
            .ok_or(ApiError::ShortCodeTaken)?,
        None => {
            // 32 bits of randomness: a clash is rare; try a few times.
            let mut created = None;
            for _ in 0..8 {
                let code = ShortCode::generate();
                if let Some(link) =
                    links::insert(&state.pool, caller.account_id, code.as_str(), &fields).await?
                {
                    created = Some(link);
                    break;
                }
            }
            created.ok_or_else(|| ApiError::Stream("could not allocate a short code".into()))?
        }
    };
    Ok((
        StatusCode::CREATED,
        Json(json!({ "success": true, "link": link.view(&state.settings.public_base_url) })),
    )
        .into_response())
}

#[derive(Deserialize)]
pub struct MetadataQuery {
    #[serde(rename = "shortCode")]
    short_code: Option<String>,
}

pub async fn metadata(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<QueryParams<MetadataQuery>, FieldError>,
) -> Result<Response, ApiError> {
    let caller = caller(&state, &headers).await?;
    caller.require(Endpoint::ReferralLinkMetadata)?;
    let QueryParams(query) = query?;
    let raw = query
        .short_code
        .ok_or_else(|| ApiError::validation("shortCode is required"))?;
    let code = ShortCode::parse(&raw).map_err(field_error("shortCode"))?;
    let link = links::find_owned(&state.pool, caller.account_id, code.as_str()).await?;
    let totals = analytics::link_totals(
        &state.clickhouse,
        caller.account_id,
        code.as_str(),
        caller.environment,
    )
    .await?;
    Ok(Json(json!({
        "success": true,
        "link": link.view(&state.settings.public_base_url),
        "totals": totals,
    }))
    .into_response())
}

#[derive(Deserialize)]
pub struct ListQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<QueryParams<ListQuery>, FieldError>,
) -> Result<Response, ApiError> {
    let caller = caller(&state, &headers).await?;
    caller.require(Endpoint::ReferralLinkMetadata)?;
    let QueryParams(query) = query?;
    let limit: i64 = match query.limit.as_deref() {
        None => 50,
        Some(raw) => raw
            .parse()
            .ok()
            .filter(|n| (1..=200).contains(n))
            .ok_or_else(|| ApiError::validation("limit must be 1-200"))?,
    };
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let page = links::list(&state.pool, caller.account_id, after, limit).await?;
    let next_cursor = (page.len() as i64 == limit)
        .then(|| {
            page.last()
                .map(|l| format!("{}_{}", l.created_at.timestamp_micros(), l.short_code))
        })
        .flatten();
    let items: Vec<_> = page
        .iter()
        .map(|l| l.view(&state.settings.public_base_url))
        .collect();
    Ok(Json(json!({ "success": true, "links": items, "nextCursor": next_cursor })).into_response())
}

fn decode_cursor(raw: &str) -> Result<(DateTime<Utc>, String), ApiError> {
    let invalid = || ApiError::validation("cursor is not valid");
    let (micros, code) = raw.split_once('_').ok_or_else(invalid)?;
    let micros: i64 = micros.parse().map_err(|_| invalid())?;
    let at = DateTime::from_timestamp_micros(micros).ok_or_else(invalid)?;
    let code = ShortCode::parse(code).map_err(|_| invalid())?;
    Ok((at, code.as_str().to_owned()))
}

pub async fn update(
    State(state): State<AppState>,
    PathSegment(raw_code): PathSegment,
    headers: HeaderMap,
    body: Result<JsonObject, BodyError>,
) -> Result<Response, ApiError> {
    let caller = caller(&state, &headers).await?;
    caller.require(Endpoint::CreateReferralLink)?;
    let code =
        ShortCode::parse(&raw_code).map_err(|_| ApiError::Common(CommonError::LinkNotFound))?;
    let existing = links::find_owned(&state.pool, caller.account_id, code.as_str()).await?;
    let JsonObject(object) = body?;
    let base = LinkFields {
        destination_url: existing.destination_url.clone(),
        ios_url: existing.ios_url.clone(),
        android_url: existing.android_url.clone(),
        campaign: existing.campaign.clone(),
        referrer_user_id: existing.referrer_user_id.clone(),
        metadata: existing.view("").metadata,
        expires_at: existing.expires_at,
    };
    let fields = parse_fields(&object, base, false)?;
    let link = links::update(&state.pool, caller.account_id, code.as_str(), &fields).await?;
    state.redirect_cache.invalidate(code.as_str()).await;
    Ok(
        Json(json!({ "success": true, "link": link.view(&state.settings.public_base_url) }))
            .into_response(),
    )
}

pub async fn delete(
    State(state): State<AppState>,
    PathSegment(raw_code): PathSegment,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = caller(&state, &headers).await?;
    caller.require(Endpoint::CreateReferralLink)?;
    let code =
        ShortCode::parse(&raw_code).map_err(|_| ApiError::Common(CommonError::LinkNotFound))?;
    links::delete(&state.pool, caller.account_id, code.as_str()).await?;
    state.redirect_cache.invalidate(code.as_str()).await;
    Ok(Json(json!({ "success": true })).into_response())
}

/// Reads link fields from `object` over `base`. Only fields present are changed;
/// `destinationUrl` is required when creating.
fn parse_fields(
    object: &Map<String, Value>,
    mut fields: LinkFields,
    creating: bool,
) -> Result<LinkFields, ApiError> {
    if creating {
        fields.destination_url =
            web_url(required_str(object, "destinationUrl")?, "destinationUrl")?;
    } else if let Some(raw) = optional_str(object, "destinationUrl")? {
        fields.destination_url = web_url(raw, "destinationUrl")?;
    }
    if object.contains_key("iosUrl") {
        fields.ios_url = optional_str(object, "iosUrl")?
            .map(|u| web_url(u, "iosUrl"))
            .transpose()?;
    }
    if object.contains_key("androidUrl") {
        fields.android_url = optional_str(object, "androidUrl")?
            .map(|u| web_url(u, "androidUrl"))
            .transpose()?;
    }
    if object.contains_key("campaign") {
        fields.campaign = optional_bounded_str(object, "campaign", MAX_TEXT)?.map(str::to_owned);
    }
    if object.contains_key("referrerUserId") {
        fields.referrer_user_id =
            optional_bounded_str(object, "referrerUserId", MAX_TEXT)?.map(str::to_owned);
    }
    match object.get("metadata") {
        None => {}
        Some(Value::Null) => fields.metadata = Default::default(),
        Some(Value::Object(meta)) => {
            fields.metadata.title = optional_bounded_str(meta, "title", MAX_TEXT)
                .map_err(|e| ApiError::validation(format!("metadata.{}", e.0)))?
                .map(str::to_owned);
            fields.metadata.description = optional_bounded_str(meta, "description", 2000)
                .map_err(|e| ApiError::validation(format!("metadata.{}", e.0)))?
                .map(str::to_owned);
            fields.metadata.image_url = optional_str(meta, "imageUrl")
                .map_err(|e| ApiError::validation(format!("metadata.{}", e.0)))?
                .map(|u| web_url(u, "metadata.imageUrl"))
                .transpose()?;
        }
        Some(_) => return Err(ApiError::validation("metadata must be an object")),
    }
    if object.contains_key("expiresAt") {
        fields.expires_at = optional_str(object, "expiresAt")?
            .map(|raw| {
                DateTime::parse_from_rfc3339(raw)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| ApiError::validation("expiresAt must be an ISO-8601 date-time"))
            })
            .transpose()?;
    }
    Ok(fields)
}

/// An absolute http(s) URL of reasonable length.
fn web_url(raw: &str, field: &str) -> Result<String, ApiError> {
    let invalid = || ApiError::validation(format!("{field} must be an absolute http or https URL"));
    if raw.len() > MAX_URL {
        return Err(ApiError::validation(format!(
            "{field} must be at most {MAX_URL} characters"
        )));
    }
    let url = url::Url::parse(raw).map_err(|_| invalid())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid());
    }
    Ok(raw.to_owned())
}
