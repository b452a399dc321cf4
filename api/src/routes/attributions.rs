//! `POST /api/v1/attributions`: parses the install the app reports, has it matched and
//! recorded (`crate::attributions`), puts its install event on the stream, and answers.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use linktrace_domain::{AttributionMatch, ClientFacts, Endpoint, EventRecord, ShortCode};
use linktrace_platform::openapi::{errors, Yes};
use linktrace_platform::request::{JsonBody, RequestError, Text};
use linktrace_platform::request_id;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::attributions::{self, Attribution, Evidence, InstallFacts, User};
use crate::error::ApiError;
use crate::links::{self, LinkView};
use crate::routes::{caller, Caller};
use crate::state::AppState;

/// What the app knows about the install it reports.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttributionBody {
    /// The app's id of the user; a user is attributed once.
    pub user_id: Text<1, 255>,
    /// The link the app opened with (a deep link), if any: attributes to it directly.
    pub short_code: Option<ShortCode>,
    /// The `x-linktrace-click-id` of the click the app was installed from.
    pub click_id: Option<Text<0, 64>>,
    /// The device's IP, for a fingerprint match against the account's recent clicks.
    pub ip: Option<Text<0, 64>>,
    pub user_agent: Option<Text<0, 1024>>,
    /// `ios`, `android` or `web`.
    pub platform: Option<Text<0, 32>>,
    /// The install referrer string Google Play's Install Referrer API gave the app
    /// (`linktrace_click_id=…&utm_source=…`): its click id matches first.
    pub install_referrer: Option<Text<0, 2048>>,
}

/// One user's attribution.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttributionView {
    pub user_id: String,
    pub short_code: Option<String>,
    pub match_type: AttributionMatch,
    pub click_id: Option<String>,
    pub created_at: DateTime<Utc>,
    /// How it matched: the click's time, the seconds to the install, the window applied
    /// and, for a fingerprint, the candidates.
    pub evidence: Evidence,
}

/// The attribution, and the link it names (as created).
#[derive(Debug, Serialize, ToSchema)]
pub struct AttributionAnswer {
    pub success: Yes,
    /// True when this call attributed the user; false when an earlier one had.
    pub created: bool,
    pub attribution: AttributionView,
    pub link: Option<LinkView>,
}

/// Attribute a user's install: shortCode, clickId, fingerprint, else organic; first wins
#[utoipa::path(
    post,
    path = "/api/v1/attributions",
    operation_id = "createAttribution",
    tag = "api",
    request_body = AttributionBody,
    responses(
        (status = 201, description = "Attributed now", body = AttributionAnswer),
        (status = 200, description = "Attributed before: the original result", body = AttributionAnswer),
        errors::BadRequest, errors::Unauthorized, errors::PlanUpgradeRequired,
        errors::NotFound, errors::PayloadTooLarge, errors::Unavailable,
    ),
    security(("apiKey" = [])),
)]
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<JsonBody<AttributionBody>, RequestError>,
) -> Result<Response, ApiError> {
    let caller = caller(&state, &headers).await?;
    caller.require(Endpoint::CreateAttribution)?;
    let JsonBody(body) = body?;
    let user_id = body.user_id.as_str();
    let short_code = body.short_code;
    let click_id = body.click_id.as_ref().map(Text::as_str);
    // As clicks store it (CLICK_IP_ANONYMISATION), so a fingerprint compares like with like.
    let ip = body
        .ip
        .as_ref()
        .and_then(|ip| state.clicks.ip_policy().apply_text(ip.as_str()));
    let ip = ip.as_deref();
    let user_agent = body.user_agent.as_ref().map(Text::as_str);
    let platform = body
        .platform
        .as_ref()
        .map(|p| p.as_str().to_ascii_lowercase());

    let user = User {
        account_id: caller.account_id,
        environment: caller.environment,
        user_id,
    };
    if let Some(existing) = attributions::find(&state.pool, user).await? {
        return respond(&state, &caller, existing, false).await;
    }

    let referrer_click_id = body
        .install_referrer
        .as_ref()
        .and_then(|r| attributions::referrer_click_id(r.as_str()));
    let facts = InstallFacts {
        referrer_click_id: referrer_click_id.as_deref(),
        short_code: short_code.as_ref(),
        click_id,
        ip,
        platform: platform.as_deref(),
    };
    let matched = attributions::match_install(
        &state.pool,
        &state.clickhouse,
        caller.account_id,
        facts,
        state.clock.now(),
        state.settings.attribution_window_hours,
    )
    .await?;
    let Some(attribution) = attributions::record(&state.pool, user, &matched).await? else {
        // Another request attributed this user first: its answer stands.
        let existing = attributions::find(&state.pool, user)
            .await?
            .ok_or(ApiError::NotFound("attribution"))?;
        return respond(&state, &caller, existing, false).await;
    };

    let client = ClientFacts {
        ip: ip.map(str::to_owned),
        user_agent: user_agent.map(str::to_owned),
        referrer: None,
        platform: platform.clone(),
        click_id: matched.click_id.clone(),
        facts: None,
    };
    let install = EventRecord::install(
        caller.account_id,
        caller.environment,
        user_id,
        matched.short_code.clone(),
        matched.match_type,
        client,
        state.clock.now(),
    )
    .with_request_id(request_id::current());
    if let Err(error) = state.sink.send(&install).await {
        // Without its install event the attribution must not stand: undo it so a retry
        // records both.
        attributions::forget(&state.pool, user).await?;
        return Err(ApiError::Stream(error.to_string()));
    }
    respond(&state, &caller, attribution, true).await
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
    let match_type = attribution.match_type;
    let answer = AttributionAnswer {
        success: Yes,
        created,
        attribution: AttributionView {
            user_id: attribution.user_id,
            short_code: attribution.short_code,
            match_type,
            click_id: attribution.click_id,
            created_at: attribution.created_at,
            evidence: attribution.evidence.unwrap_or_default(),
        },
        link,
    };
    Ok((status, Json(answer)).into_response())
}

const MATCH_TYPES_RANGE: crate::analytics::RangeRule = crate::analytics::RangeRule {
    default_days: 30,
    max_days: 400,
    noun: "the range",
};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct MatchTypesQuery {
    /// ISO-8601 date-time, or a date (midnight in `timezone`). Default: `to` minus 30 days.
    #[param(inline)]
    from: Option<crate::analytics::RangeBound>,
    /// ISO-8601 date-time, or a date (the end of that day in `timezone`). Default: now.
    #[param(inline)]
    to: Option<crate::analytics::RangeBound>,
    /// IANA time-zone name (default `UTC`) of date bounds.
    #[param(inline)]
    timezone: Option<crate::analytics::Zone>,
}

/// The range counted, as resolved.
#[derive(Debug, Serialize, ToSchema)]
pub struct MatchTypesRange {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// Installs attributed in the range, per match type (every type, 0 where none).
#[derive(Debug, Serialize, ToSchema)]
pub struct MatchTypesAnswer {
    pub success: Yes,
    pub range: MatchTypesRange,
    /// `install_referrer`, `short_code`, `click_id`, `fingerprint` and `organic`: how many
    /// of the key environment's installs were attributed so in the range.
    #[schema(value_type = std::collections::HashMap<String, i64>)]
    pub installs: std::collections::BTreeMap<&'static str, i64>,
}

/// Installs attributed in a range, by how each was matched
#[utoipa::path(
    get,
    path = "/api/v1/attributions/match-types",
    operation_id = "getInstallsByMatchType",
    tag = "api",
    params(MatchTypesQuery),
    responses(
        (status = 200, description = "Installs per match type", body = MatchTypesAnswer),
        errors::BadRequest, errors::Unauthorized, errors::PlanUpgradeRequired, errors::Unavailable,
    ),
    security(("apiKey" = [])),
)]
pub async fn match_types(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<linktrace_platform::request::QueryParams<MatchTypesQuery>, RequestError>,
) -> Result<Response, ApiError> {
    let caller = caller(&state, &headers).await?;
    caller.require(Endpoint::Analytics)?;
    let linktrace_platform::request::QueryParams(query) = query?;
    let zone = query.timezone.map_or(chrono_tz::Tz::UTC, |z| z.0);
    let (from, to) = MATCH_TYPES_RANGE.resolve(query.from, query.to, zone, state.clock.now())?;
    let installs =
        attributions::count_by_match(&state.pool, caller.account_id, caller.environment, from, to)
            .await?;
    Ok(Json(MatchTypesAnswer {
        success: Yes,
        range: MatchTypesRange { from, to },
        installs,
    })
    .into_response())
}
