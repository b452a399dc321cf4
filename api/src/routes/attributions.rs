//! `POST /api/v1/attributions`: attribute a user's install to a link by, in order, an
//! explicit short code, a click id, a fingerprint match on the account's recent clicks,
//! else organic. The first attribution of a user wins; a repeat returns it unchanged.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use linktrace_domain::{AttributionMatch, ClientFacts, Endpoint, EventRecord, ShortCode};
use linktrace_platform::request::{
    field_error, optional_bounded_str, optional_str, required_str, BodyError, JsonObject,
};
use serde_json::json;
use uuid::Uuid;

use crate::analytics;
use crate::error::ApiError;
use crate::links;
use crate::routes::{caller, Caller};
use crate::state::AppState;

#[derive(Debug, Clone, sqlx::FromRow)]
struct Attribution {
    user_id: String,
    short_code: Option<String>,
    match_type: String,
    click_id: Option<String>,
    created_at: DateTime<Utc>,
}

pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<JsonObject, BodyError>,
) -> Result<Response, ApiError> {
    let caller = caller(&state, &headers).await?;
    caller.require(Endpoint::CreateAttribution)?;
    let JsonObject(object) = body?;
    let user_id = required_str(&object, "userId")?;
    if user_id.is_empty() || user_id.chars().count() > 255 {
        return Err(ApiError::validation("userId must be 1-255 characters"));
    }
    let short_code = optional_str(&object, "shortCode")?
        .map(ShortCode::parse)
        .transpose()
        .map_err(field_error("shortCode"))?;
    let click_id = optional_bounded_str(&object, "clickId", 64)?;
    let ip = optional_bounded_str(&object, "ip", 64)?;
    let user_agent = optional_bounded_str(&object, "userAgent", 1024)?;
    let platform = optional_bounded_str(&object, "platform", 32)?.map(str::to_ascii_lowercase);

    if let Some(existing) = find(&state, caller.account_id, user_id).await? {
        return respond(&state, &caller, existing, false).await;
    }

    let (matched_code, match_type, matched_click) = if let Some(code) = &short_code {
        links::find_owned(&state.pool, caller.account_id, code.as_str()).await?;
        (
            Some(code.as_str().to_owned()),
            AttributionMatch::ShortCode,
            click_id.map(str::to_owned),
        )
    } else if let Some(found) = match click_id {
        Some(id) => analytics::click_by_id(&state.clickhouse, caller.account_id, id).await?,
        None => None,
    } {
        (
            Some(found.link_short_code),
            AttributionMatch::ClickId,
            Some(found.click_id),
        )
    } else if let Some(found) = match ip {
        Some(ip) => {
            let window =
                chrono::Duration::from_std(state.settings.attribution_window).unwrap_or_default();
            let since = state.clock.now() - window;
            let platform = platform.as_deref().unwrap_or("");
            analytics::click_by_fingerprint(
                &state.clickhouse,
                caller.account_id,
                ip,
                platform,
                since,
            )
            .await?
        }
        None => None,
    } {
        (
            Some(found.link_short_code),
            AttributionMatch::Fingerprint,
            Some(found.click_id),
        )
    } else {
        (None, AttributionMatch::Organic, None)
    };

    let inserted: Option<Attribution> = sqlx::query_as(
        "INSERT INTO attributions (account_id, user_id, short_code, match_type, click_id) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (account_id, user_id) DO NOTHING \
         RETURNING user_id, short_code, match_type, click_id, created_at",
    )
    .bind(caller.account_id)
    .bind(user_id)
    .bind(&matched_code)
    .bind(match_type.as_str())
    .bind(&matched_click)
    .fetch_optional(&state.pool)
    .await?;
    let Some(attribution) = inserted else {
        // Another request attributed this user first: its answer stands.
        let existing = find(&state, caller.account_id, user_id)
            .await?
            .ok_or(ApiError::NotFound("attribution"))?;
        return respond(&state, &caller, existing, false).await;
    };

    let client = ClientFacts {
        ip: ip.map(str::to_owned),
        user_agent: user_agent.map(str::to_owned),
        referrer: None,
        platform: platform.clone(),
        click_id: matched_click.clone(),
    };
    let install = EventRecord::install(
        caller.account_id,
        caller.environment,
        user_id,
        matched_code.clone(),
        match_type,
        client,
        state.clock.now(),
    );
    if let Err(error) = state.sink.send(&install).await {
        // Without its install event the attribution must not stand: undo it so a retry
        // records both.
        sqlx::query("DELETE FROM attributions WHERE account_id = $1 AND user_id = $2")
            .bind(caller.account_id)
            .bind(user_id)
            .execute(&state.pool)
            .await?;
        return Err(ApiError::Stream(error.to_string()));
    }
    respond(&state, &caller, attribution, true).await
}

async fn find(
    state: &AppState,
    account_id: Uuid,
    user_id: &str,
) -> Result<Option<Attribution>, ApiError> {
    Ok(sqlx::query_as(
        "SELECT user_id, short_code, match_type, click_id, created_at FROM attributions \
         WHERE account_id = $1 AND user_id = $2",
    )
    .bind(account_id)
    .bind(user_id)
    .fetch_optional(&state.pool)
    .await?)
}

async fn respond(
    state: &AppState,
    caller: &Caller,
    attribution: Attribution,
    created: bool,
) -> Result<Response, ApiError> {
    let link = match &attribution.short_code {
        Some(code) => links::find_owned(&state.pool, caller.account_id, code)
            .await
            .ok()
            .map(|l| l.view(&state.settings.public_base_url)),
        None => None,
    };
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({
            "success": true,
            "created": created,
            "attribution": {
                "userId": attribution.user_id,
                "shortCode": attribution.short_code,
                "matchType": attribution.match_type,
                "clickId": attribution.click_id,
                "createdAt": attribution.created_at,
            },
            "link": link,
        })),
    )
        .into_response())
}
