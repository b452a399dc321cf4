//! `/api/v1/referral-links`: create, metadata with totals, list, update, delete — always
//! scoped to the caller's account; another account's link is `404 LINK_NOT_FOUND`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use linktrace_domain::{DomainName, Endpoint, ShortCode, Utm, WebUrl};
use linktrace_platform::error::CommonError;
use linktrace_platform::openapi::{errors, Yes};
use linktrace_platform::request::{
    optional_object, present, present_object, JsonBody, JsonObject, Limit, PathSegment,
    QueryParams, RequestError, Text, Timestamp,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::analytics::reports::{self, LinkTotals};
use crate::error::ApiError;
use crate::link_rules::{MaxClicks, RulesParam};
use crate::links::{self, LinkFields, LinkMetadata, LinkView};
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

/// A short title or name on a link.
type ShortText = Text<0, 255>;

/// A new link. Without `shortCode`, 8 lowercase hex characters are generated.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateLinkBody {
    pub destination_url: WebUrl,
    pub short_code: Option<ShortCode>,
    pub ios_url: Option<WebUrl>,
    pub android_url: Option<WebUrl>,
    pub campaign: Option<ShortText>,
    pub referrer_user_id: Option<ShortText>,
    #[serde(default, deserialize_with = "optional_object")]
    pub metadata: Option<MetadataBody>,
    /// Default UTM values for clicks whose URL carries none of its own.
    #[serde(default, deserialize_with = "optional_object")]
    pub utm: Option<UtmBody>,
    /// Where the app takes a user who installed from this link (deferred deep linking).
    pub deep_link_path: Option<Text<1, 512>>,
    /// The link's data for the app: a flat JSON object (strings, numbers, booleans,
    /// nulls), at most 4 KB serialised. Returned by attributions.
    pub data: Option<DeepLinkData>,
    /// Hours after a click on this link an install may still be attributed to it (1-720;
    /// without it the service's default applies).
    pub attribution_window_hours: Option<WindowHours>,
    /// One of the account's verified link domains: the link's `url` is on it.
    pub domain: Option<DomainName>,
    /// Up to 10 labels of 1-64 characters, to find links by and to filter analytics by.
    pub tags: Option<Tags>,
    /// Up to 20 redirect rules `{country?, device?, os?, language?, url}`, first match
    /// first, before the platform URLs and the destination.
    pub rules: Option<RulesParam>,
    /// After this many counted clicks (people, not repeats) the link answers as an expired
    /// one.
    pub max_clicks: Option<MaxClicks>,
    pub expires_at: Option<Timestamp>,
}

/// A link's tags: at most 10, each 1-64 characters without control characters; duplicates
/// are kept once.
#[derive(Debug, Clone)]
pub struct Tags(pub Vec<String>);

impl<'de> Deserialize<'de> for Tags {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let raw = Vec::<String>::deserialize(deserializer)?;
        if raw.len() > 10 {
            return Err(D::Error::custom("must hold at most 10 tags"));
        }
        let mut tags: Vec<String> = Vec::with_capacity(raw.len());
        for tag in raw {
            let tag = tag.trim().to_owned();
            if !(1..=64).contains(&tag.chars().count()) || tag.chars().any(char::is_control) {
                return Err(D::Error::custom(
                    "each tag must be 1-64 characters without control characters",
                ));
            }
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
        Ok(Tags(tags))
    }
}

impl utoipa::PartialSchema for Tags {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ArrayBuilder::new()
            .items(linktrace_domain::schema::text(
                None,
                Some(1),
                Some(64),
                "a tag",
            ))
            .max_items(Some(10))
            .into()
    }
}

impl utoipa::ToSchema for Tags {}

/// An attribution window in whole hours, 1 to 720 (30 days).
#[derive(Debug, Clone, Copy)]
pub struct WindowHours(pub i32);

impl<'de> Deserialize<'de> for WindowHours {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        value
            .as_u64()
            .filter(|hours| (1..=720).contains(hours))
            .map(|hours| WindowHours(hours as i32))
            .ok_or_else(|| {
                serde::de::Error::custom("must be a whole number of hours from 1 to 720")
            })
    }
}

impl utoipa::PartialSchema for WindowHours {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Integer)
            .minimum(Some(1))
            .maximum(Some(720))
            .into()
    }
}

impl utoipa::ToSchema for WindowHours {}

/// The most a link's `data` may take, serialised.
const DEEP_LINK_DATA_BYTES: usize = 4 * 1024;

/// A flat JSON object of at most [`DEEP_LINK_DATA_BYTES`] serialised, without NUL.
#[derive(Debug, Clone)]
pub struct DeepLinkData(pub serde_json::Map<String, serde_json::Value>);

impl<'de> Deserialize<'de> for DeepLinkData {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let map = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        if let Some((key, _)) = map.iter().find(|(_, v)| v.is_object() || v.is_array()) {
            return Err(D::Error::custom(format!(
                "must be a flat object: {key:?} holds an object or array"
            )));
        }
        // Postgres's JSONB cannot hold a NUL: refused here, not a 503 later.
        let has_nul = |text: &str| text.contains('\0');
        if map
            .iter()
            .any(|(k, v)| has_nul(k) || v.as_str().is_some_and(has_nul))
        {
            return Err(D::Error::custom("must not contain NUL characters"));
        }
        JsonObject::<DEEP_LINK_DATA_BYTES>::within(map)
            .map(|object| DeepLinkData(object.0))
            .map_err(D::Error::custom)
    }
}

impl utoipa::PartialSchema for DeepLinkData {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Object)
            .description(Some(
                "flat JSON object (no nested objects or arrays), at most 4 KB serialised",
            ))
            .into()
    }
}
impl ToSchema for DeepLinkData {}

/// A link's default UTM values.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UtmBody {
    pub source: Option<Text<0, 255>>,
    pub medium: Option<Text<0, 255>>,
    pub campaign: Option<Text<0, 255>>,
    pub term: Option<Text<0, 255>>,
    pub content: Option<Text<0, 255>>,
}

impl From<UtmBody> for Utm {
    fn from(body: UtmBody) -> Self {
        let value = |v: Option<Text<0, 255>>| v.map(Text::into_string).unwrap_or_default();
        Utm {
            source: value(body.source),
            medium: value(body.medium),
            campaign: value(body.campaign),
            term: value(body.term),
            content: value(body.content),
        }
    }
}

/// What previews of the link show.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetadataBody {
    pub title: Option<ShortText>,
    pub description: Option<Text<0, 2000>>,
    pub image_url: Option<WebUrl>,
}

impl From<MetadataBody> for LinkMetadata {
    fn from(body: MetadataBody) -> Self {
        LinkMetadata {
            title: body.title.map(Text::into_string),
            description: body.description.map(Text::into_string),
            image_url: body.image_url.map(WebUrl::into_string),
        }
    }
}

impl From<CreateLinkBody> for LinkFields {
    fn from(body: CreateLinkBody) -> Self {
        LinkFields {
            destination_url: body.destination_url.into_string(),
            ios_url: body.ios_url.map(WebUrl::into_string),
            android_url: body.android_url.map(WebUrl::into_string),
            campaign: body.campaign.map(Text::into_string),
            referrer_user_id: body.referrer_user_id.map(Text::into_string),
            metadata: body.metadata.map(LinkMetadata::from).unwrap_or_default(),
            utm: body.utm.map(Utm::from).unwrap_or_default(),
            deep_link_path: body.deep_link_path.map(Text::into_string),
            data: body.data.map(|d| d.0).unwrap_or_default(),
            attribution_window_hours: body.attribution_window_hours.map(|w| w.0),
            domain: body.domain.map(|d| d.as_str().to_owned()),
            tags: body.tags.map(|t| t.0).unwrap_or_default(),
            rules: body.rules.map(|r| r.0).unwrap_or_default(),
            max_clicks: body.max_clicks.map(|m| m.0),
            expires_at: body.expires_at.map(|t| t.0),
        }
    }
}

/// A change to a link: only the fields present change; `null` clears an optional one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateLinkBody {
    pub destination_url: Option<WebUrl>,
    #[serde(default, deserialize_with = "present")]
    pub ios_url: Option<Option<WebUrl>>,
    #[serde(default, deserialize_with = "present")]
    pub android_url: Option<Option<WebUrl>>,
    #[serde(default, deserialize_with = "present")]
    pub campaign: Option<Option<ShortText>>,
    #[serde(default, deserialize_with = "present")]
    pub referrer_user_id: Option<Option<ShortText>>,
    #[serde(default, deserialize_with = "present_object")]
    pub metadata: Option<Option<MetadataBody>>,
    #[serde(default, deserialize_with = "present_object")]
    pub utm: Option<Option<UtmBody>>,
    #[serde(default, deserialize_with = "present")]
    pub deep_link_path: Option<Option<Text<1, 512>>>,
    #[serde(default, deserialize_with = "present")]
    pub data: Option<Option<DeepLinkData>>,
    #[serde(default, deserialize_with = "present")]
    pub attribution_window_hours: Option<Option<WindowHours>>,
    #[serde(default, deserialize_with = "present")]
    pub domain: Option<Option<DomainName>>,
    /// Replaces the link's tags (`null` or `[]`: none).
    #[serde(default, deserialize_with = "present")]
    pub tags: Option<Option<Tags>>,
    /// Replaces the link's redirect rules (`null` or `[]`: none).
    #[serde(default, deserialize_with = "present")]
    pub rules: Option<Option<RulesParam>>,
    /// A new cap (`null`: none); a cap above the clicks counted so far opens the link again.
    #[serde(default, deserialize_with = "present")]
    pub max_clicks: Option<Option<MaxClicks>>,
    #[serde(default, deserialize_with = "present")]
    pub expires_at: Option<Option<Timestamp>>,
}

impl UpdateLinkBody {
    fn apply(self, mut fields: LinkFields) -> LinkFields {
        if let Some(url) = self.destination_url {
            fields.destination_url = url.into_string();
        }
        if let Some(url) = self.ios_url {
            fields.ios_url = url.map(WebUrl::into_string);
        }
        if let Some(url) = self.android_url {
            fields.android_url = url.map(WebUrl::into_string);
        }
        if let Some(campaign) = self.campaign {
            fields.campaign = campaign.map(Text::into_string);
        }
        if let Some(referrer) = self.referrer_user_id {
            fields.referrer_user_id = referrer.map(Text::into_string);
        }
        if let Some(metadata) = self.metadata {
            fields.metadata = metadata.map(LinkMetadata::from).unwrap_or_default();
        }
        if let Some(utm) = self.utm {
            fields.utm = utm.map(Utm::from).unwrap_or_default();
        }
        if let Some(path) = self.deep_link_path {
            fields.deep_link_path = path.map(Text::into_string);
        }
        if let Some(data) = self.data {
            fields.data = data.map(|d| d.0).unwrap_or_default();
        }
        if let Some(window) = self.attribution_window_hours {
            fields.attribution_window_hours = window.map(|w| w.0);
        }
        if let Some(domain) = self.domain {
            fields.domain = domain.map(|d| d.as_str().to_owned());
        }
        if let Some(tags) = self.tags {
            fields.tags = tags.map(|t| t.0).unwrap_or_default();
        }
        if let Some(rules) = self.rules {
            fields.rules = rules.map(|r| r.0).unwrap_or_default();
        }
        if let Some(max_clicks) = self.max_clicks {
            fields.max_clicks = max_clicks.map(|m| m.0);
        }
        if let Some(expires_at) = self.expires_at {
            fields.expires_at = expires_at.map(|t| t.0);
        }
        fields
    }
}

/// One link.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkAnswer {
    pub success: Yes,
    pub link: LinkView,
}

/// A link as created, with its all-time totals in the caller's environment.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkWithTotals {
    pub success: Yes,
    pub link: LinkView,
    pub totals: LinkTotals,
}

/// A page of links, newest first; `nextCursor` fetches the next one.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkPage {
    pub success: Yes,
    pub links: Vec<LinkView>,
    pub next_cursor: Option<String>,
}

/// Done.
#[derive(Debug, Serialize, ToSchema)]
pub struct Done {
    pub success: Yes,
}

/// Create a referral link
#[utoipa::path(
    post,
    path = "/api/v1/referral-links",
    operation_id = "createLink",
    tag = "api",
    request_body = CreateLinkBody,
    responses(
        (status = 201, description = "The link", body = LinkAnswer, links(
            ("GetMetadata" = (operation_id = "getLinkMetadata", parameters(("shortCode" = "$response.body#/link/shortCode")))),
            ("UpdateLink" = (operation_id = "updateLink", parameters(("shortCode" = "$response.body#/link/shortCode")))),
            ("DeleteLink" = (operation_id = "deleteLink", parameters(("shortCode" = "$response.body#/link/shortCode")))),
            ("FollowLink" = (operation_id = "followLink", parameters(("shortCode" = "$response.body#/link/shortCode")))),
        )),
        errors::BadRequest, errors::Unauthorized, errors::PlanUpgradeRequired,
        errors::ShortCodeTaken, errors::PayloadTooLarge, errors::Unavailable,
    ),
    security(("apiKey" = [])),
)]
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<JsonBody<CreateLinkBody>, RequestError>,
) -> Result<Response, ApiError> {
    let caller = caller(&state, &headers).await?;
    caller.require(Endpoint::CreateReferralLink)?;
    let JsonBody(body) = body?;
    let link = create_one(&state, caller.account_id, body).await?;
    let answer = LinkAnswer {
        success: Yes,
        link: link.view(&state.settings.public_base_url),
    };
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// Creates one link of the account's: what `create` and each item of `bulk_create` do.
async fn create_one(
    state: &AppState,
    account_id: uuid::Uuid,
    body: CreateLinkBody,
) -> Result<links::Link, ApiError> {
    let custom = body.short_code.clone();
    if let Some(code) = &custom {
        if RESERVED_SHORT_CODES.contains(&code.as_str().to_ascii_lowercase().as_str()) {
            return Err(ApiError::validation(format!(
                "shortCode \"{code}\" is reserved"
            )));
        }
    }
    let fields = LinkFields::from(body);
    require_verified_domain(state, account_id, &fields).await?;
    let link = match custom {
        Some(code) => links::insert(&state.pool, account_id, code.as_str(), &fields)
            .await?
            .ok_or(ApiError::ShortCodeTaken)?,
        None => {
            // 32 bits of randomness: a clash is rare; try a few times.
            let mut created = None;
            for _ in 0..8 {
                let code = ShortCode::generate();
                if let Some(link) =
                    links::insert(&state.pool, account_id, code.as_str(), &fields).await?
                {
                    created = Some(link);
                    break;
                }
            }
            created.ok_or_else(|| ApiError::Stream("could not allocate a short code".into()))?
        }
    };
    Ok(link)
}

/// The most links one bulk request creates.
pub const MAX_BULK_LINKS: usize = 1000;
/// The largest bulk request body (1,000 links of about 1 KB).
pub const MAX_BULK_BODY_BYTES: usize = 1024 * 1024;

/// 1 to 1,000 links, each as for `POST /api/v1/referral-links`; each is read and judged on
/// its own.
#[derive(Debug, Deserialize, ToSchema)]
pub struct BulkLinksBody {
    #[schema(value_type = Vec<CreateLinkBody>, min_items = 1, max_items = 1000)]
    pub links: Vec<Box<serde_json::value::RawValue>>,
}

/// One item's outcome: `201` and its link, or its error's status and envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkLinkResult {
    /// The item's position in `links`.
    pub index: usize,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<LinkView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<linktrace_domain::ErrorEnvelope>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkLinksAnswer {
    pub success: Yes,
    /// How many links were created.
    pub created: usize,
    pub results: Vec<BulkLinkResult>,
}

/// Create up to 1,000 links; one result per item, in order; a bad item sinks no other
#[utoipa::path(
    post,
    path = "/api/v1/referral-links/bulk",
    operation_id = "createLinksInBulk",
    tag = "api",
    request_body = BulkLinksBody,
    responses(
        (status = 200, description = "Per-item results", body = BulkLinksAnswer),
        errors::BadRequest, errors::Unauthorized, errors::PlanUpgradeRequired,
        errors::PayloadTooLarge, errors::Unavailable,
    ),
    security(("apiKey" = [])),
)]
pub async fn bulk_create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<JsonBody<BulkLinksBody>, RequestError>,
) -> Result<Json<BulkLinksAnswer>, ApiError> {
    use futures::StreamExt;
    let caller = caller(&state, &headers).await?;
    caller.require(Endpoint::CreateReferralLink)?;
    let JsonBody(BulkLinksBody { links: items }) = body?;
    if items.is_empty() || items.len() > MAX_BULK_LINKS {
        return Err(ApiError::validation(format!(
            "links must hold 1 to {MAX_BULK_LINKS} links"
        )));
    }
    let state = &state;
    let account_id = caller.account_id;
    let items: Vec<Result<CreateLinkBody, ApiError>> =
        items.iter().map(|item| read_bulk_item(item)).collect();
    // The answer is what creating the items one by one, in order, would give: an item that
    // repeats an earlier item's `shortCode` waits until every earlier item with that code is
    // done, so the earlier one always wins. Every other item runs a few at once.
    let mut seen = std::collections::HashSet::new();
    let (first, repeats): (Vec<_>, Vec<_>) =
        items
            .into_iter()
            .enumerate()
            .partition(|(_, item)| match item {
                Ok(body) => match &body.short_code {
                    Some(code) => seen.insert(code.as_str().to_owned()),
                    None => true,
                },
                Err(_) => true,
            });
    let mut results: Vec<BulkLinkResult> = futures::stream::iter(first)
        .map(|(index, item)| async move {
            bulk_result(
                state,
                index,
                create_bulk_item(state, account_id, item).await,
            )
        })
        // A few at once: one request must not take every Postgres connection.
        .buffered(8)
        .collect()
        .await;
    for (index, item) in repeats {
        let outcome = create_bulk_item(state, account_id, item).await;
        results.push(bulk_result(state, index, outcome));
    }
    results.sort_by_key(|r| r.index);
    Ok(Json(BulkLinksAnswer {
        success: Yes,
        created: results.iter().filter(|r| r.link.is_some()).count(),
        results,
    }))
}

/// One bulk item read as a link body, or the error its own result carries.
fn read_bulk_item(item: &serde_json::value::RawValue) -> Result<CreateLinkBody, ApiError> {
    match linktrace_platform::request::from_json::<CreateLinkBody>(item.get().as_bytes()) {
        Ok(body) => Ok(body),
        Err(RequestError::NotAnObject) => {
            Err(ApiError::validation("each link must be a JSON object"))
        }
        Err(refused) => Err(ApiError::Common(refused.into())),
    }
}

async fn create_bulk_item(
    state: &AppState,
    account_id: uuid::Uuid,
    item: Result<CreateLinkBody, ApiError>,
) -> Result<links::Link, ApiError> {
    create_one(state, account_id, item?).await
}

fn bulk_result(
    state: &AppState,
    index: usize,
    outcome: Result<links::Link, ApiError>,
) -> BulkLinkResult {
    match outcome {
        Ok(link) => BulkLinkResult {
            index,
            status: StatusCode::CREATED.as_u16(),
            link: Some(link.view(&state.settings.public_base_url)),
            error: None,
        },
        Err(error) => BulkLinkResult {
            index,
            status: error.status().as_u16(),
            link: None,
            error: Some(error.envelope()),
        },
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct MetadataQuery {
    #[param(inline)]
    short_code: ShortCode,
}

/// A link as created, with its click, install and event totals
#[utoipa::path(
    get,
    path = "/api/v1/referral-links/metadata",
    tag = "api",
    operation_id = "getLinkMetadata",
    params(MetadataQuery),
    responses(
        (status = 200, description = "The link and totals", body = LinkWithTotals),
        errors::BadRequest, errors::Unauthorized, errors::PlanUpgradeRequired,
        errors::NotFound, errors::Unavailable,
    ),
    security(("apiKey" = [])),
)]
pub async fn metadata(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<QueryParams<MetadataQuery>, RequestError>,
) -> Result<Response, ApiError> {
    let caller = caller(&state, &headers).await?;
    caller.require(Endpoint::ReferralLinkMetadata)?;
    let QueryParams(MetadataQuery { short_code: code }) = query?;
    let link = links::find_owned(&state.pool, caller.account_id, code.as_str()).await?;
    let totals = reports::link_totals(
        &state.clickhouse,
        caller.account_id,
        code.as_str(),
        caller.environment,
    )
    .await?;
    Ok(Json(LinkWithTotals {
        success: Yes,
        link: link.view(&state.settings.public_base_url),
        totals,
    })
    .into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// 1-200, default 50.
    #[param(inline)]
    limit: Option<Limit<200>>,
    /// `nextCursor` of the previous page.
    #[param(inline)]
    cursor: Option<String>,
    /// Only links with this tag.
    #[param(inline)]
    tag: Option<Text<1, 64>>,
    /// Only links whose short code or destination contains this (case-insensitive).
    #[param(inline)]
    q: Option<Text<1, 256>>,
}

/// List the account's links, newest first
#[utoipa::path(
    get,
    path = "/api/v1/referral-links",
    operation_id = "listLinks",
    tag = "api",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of links and nextCursor", body = LinkPage),
        errors::BadRequest, errors::Unauthorized, errors::PlanUpgradeRequired, errors::Unavailable,
    ),
    security(("apiKey" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<QueryParams<ListQuery>, RequestError>,
) -> Result<Response, ApiError> {
    let caller = caller(&state, &headers).await?;
    caller.require(Endpoint::ReferralLinkMetadata)?;
    let QueryParams(query) = query?;
    let limit = i64::from(query.limit.map_or(50, Limit::get));
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let filter = links::LinkFilter {
        tag: query.tag.as_ref().map(|t| t.as_str().trim()),
        search: query.q.as_ref().map(Text::as_str),
    };
    let page = links::list(&state.pool, caller.account_id, filter, after, limit).await?;
    let next_cursor = (page.len() as i64 == limit)
        .then(|| {
            page.last()
                .map(|l| format!("{}_{}", l.created_at.timestamp_micros(), l.short_code))
        })
        .flatten();
    let links = page
        .iter()
        .map(|l| l.view(&state.settings.public_base_url))
        .collect();
    Ok(Json(LinkPage {
        success: Yes,
        links,
        next_cursor,
    })
    .into_response())
}

fn decode_cursor(raw: &str) -> Result<(DateTime<Utc>, String), ApiError> {
    let invalid = || ApiError::validation("cursor is not valid");
    let (micros, code) = raw.split_once('_').ok_or_else(invalid)?;
    let micros: i64 = micros.parse().map_err(|_| invalid())?;
    let at = DateTime::from_timestamp_micros(micros).ok_or_else(invalid)?;
    let code = ShortCode::parse(code).map_err(|_| invalid())?;
    Ok((at, code.as_str().to_owned()))
}

/// The link a path names: one that is not a short code names nothing.
fn path_code(raw: &str) -> Result<ShortCode, ApiError> {
    ShortCode::parse(raw).map_err(|_| ApiError::Common(CommonError::LinkNotFound))
}

/// Change a link's fields
#[utoipa::path(
    patch,
    path = "/api/v1/referral-links/{shortCode}",
    tag = "api",
    operation_id = "updateLink",
    params(("shortCode" = ShortCode, Path)),
    request_body = UpdateLinkBody,
    responses(
        (status = 200, description = "The link", body = LinkAnswer),
        errors::BadRequest, errors::Unauthorized, errors::PlanUpgradeRequired,
        errors::NotFound, errors::PayloadTooLarge, errors::Unavailable,
    ),
    security(("apiKey" = [])),
)]
pub async fn update(
    State(state): State<AppState>,
    PathSegment(raw_code): PathSegment,
    headers: HeaderMap,
    body: Result<JsonBody<UpdateLinkBody>, RequestError>,
) -> Result<Response, ApiError> {
    let caller = caller(&state, &headers).await?;
    caller.require(Endpoint::CreateReferralLink)?;
    crate::routes::require_live(&caller)?;
    let code = path_code(&raw_code)?;
    let existing = links::find_owned(&state.pool, caller.account_id, code.as_str()).await?;
    let JsonBody(change) = body?;
    let fields = change.apply(existing.fields());
    require_verified_domain(&state, caller.account_id, &fields).await?;
    let link = links::update(&state.pool, caller.account_id, code.as_str(), &fields).await?;
    state.redirect_cache.invalidate(code.as_str());
    Ok(Json(LinkAnswer {
        success: Yes,
        link: link.view(&state.settings.public_base_url),
    })
    .into_response())
}

/// Delete a link
#[utoipa::path(
    delete,
    path = "/api/v1/referral-links/{shortCode}",
    tag = "api",
    operation_id = "deleteLink",
    params(("shortCode" = ShortCode, Path)),
    responses(
        (status = 200, description = "Deleted", body = Done),
        errors::Unauthorized, errors::PlanUpgradeRequired, errors::NotFound, errors::Unavailable,
    ),
    security(("apiKey" = [])),
)]
pub async fn delete(
    State(state): State<AppState>,
    PathSegment(raw_code): PathSegment,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = caller(&state, &headers).await?;
    caller.require(Endpoint::CreateReferralLink)?;
    crate::routes::require_live(&caller)?;
    let code = path_code(&raw_code)?;
    links::delete(&state.pool, caller.account_id, code.as_str()).await?;
    state.redirect_cache.invalidate(code.as_str());
    Ok(Json(Done { success: Yes }).into_response())
}

/// A link may name only a verified domain of its own account.
async fn require_verified_domain(
    state: &AppState,
    account_id: uuid::Uuid,
    fields: &LinkFields,
) -> Result<(), ApiError> {
    let Some(domain) = &fields.domain else {
        return Ok(());
    };
    let name =
        DomainName::parse(domain).map_err(|e| ApiError::validation(format!("domain {e}")))?;
    match crate::domains::find(&state.pool, &name).await? {
        Some(d) if d.account_id == account_id && d.verified_at.is_some() => Ok(()),
        _ => Err(ApiError::validation(format!(
            "domain {domain} is not a verified domain of this account (POST /api/v1/domains)"
        ))),
    }
}

/// `format` and `size` of a link's QR code.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QrQuery {
    /// `svg` (default) or `png`.
    #[param(inline)]
    format: Option<QrFormat>,
    /// Pixels per side, 64-2048 (default 512).
    #[param(inline)]
    size: Option<QrSize>,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum QrFormat {
    Svg,
    Png,
}

/// A QR code's side in pixels: 64 to 2048.
#[derive(Debug, Clone, Copy)]
pub struct QrSize(u32);

impl<'de> Deserialize<'de> for QrSize {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        raw.parse::<u32>()
            .ok()
            .filter(|n| (64..=2048).contains(n))
            .map(QrSize)
            .ok_or_else(|| {
                serde::de::Error::custom("must be a whole number of pixels from 64 to 2048")
            })
    }
}

impl utoipa::PartialSchema for QrSize {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Integer)
            .minimum(Some(64))
            .maximum(Some(2048))
            .into()
    }
}

impl utoipa::ToSchema for QrSize {}

/// The link's public URL as a QR code (SVG or PNG)
#[utoipa::path(
    get,
    path = "/api/v1/referral-links/{shortCode}/qr",
    tag = "api",
    operation_id = "getLinkQrCode",
    params(("shortCode" = ShortCode, Path), QrQuery),
    responses(
        (status = 200, description = "The QR code of the link's `url`", content(
            (String = "image/svg+xml"),
            (Vec<u8> = "image/png"),
        )),
        errors::BadRequest, errors::Unauthorized, errors::PlanUpgradeRequired,
        errors::NotFound, errors::Unavailable,
    ),
    security(("apiKey" = [])),
)]
pub async fn qr_code(
    State(state): State<AppState>,
    PathSegment(raw_code): PathSegment,
    headers: HeaderMap,
    query: Result<QueryParams<QrQuery>, RequestError>,
) -> Result<Response, ApiError> {
    let caller = caller(&state, &headers).await?;
    caller.require(Endpoint::ReferralLinkMetadata)?;
    let QueryParams(query) = query?;
    let code = path_code(&raw_code)?;
    let link = links::find_owned(&state.pool, caller.account_id, code.as_str()).await?;
    let url = link.public_url(&state.settings.public_base_url);
    let size = query.size.map_or(512, |s| s.0);
    let (content_type, body) = match query.format.unwrap_or(QrFormat::Svg) {
        QrFormat::Svg => (
            "image/svg+xml",
            crate::qr::svg(&url, size).map(String::into_bytes),
        ),
        QrFormat::Png => ("image/png", crate::qr::png(&url, size)),
    };
    let body =
        body.map_err(|e| ApiError::validation(format!("the link URL cannot be a QR code: {e}")))?;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, content_type),
            (axum::http::header::CACHE_CONTROL, "private, max-age=300"),
        ],
        body,
    )
        .into_response())
}
