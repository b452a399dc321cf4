//! Referral links in Postgres.

use chrono::{DateTime, Utc};
use linktrace_domain::Utm;
use linktrace_platform::error::CommonError;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::ApiError;
use crate::link_rules::RedirectRule;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Link {
    pub short_code: String,
    pub account_id: Uuid,
    pub destination_url: String,
    pub ios_url: Option<String>,
    pub android_url: Option<String>,
    pub campaign: Option<String>,
    pub referrer_user_id: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub image_url: Option<String>,
    /// Default UTM values, for clicks whose URL carries none of its own.
    #[sqlx(json)]
    pub utm: Utm,
    /// Where the app takes a user who installed from this link (deferred deep linking).
    pub deep_link_path: Option<String>,
    /// The link's data for the app: a flat JSON object.
    #[sqlx(json)]
    pub data: serde_json::Map<String, serde_json::Value>,
    /// How long after a click on this link an install may still be attributed to it
    /// (`None`: the service's `ATTRIBUTION_WINDOW_SECS`).
    pub attribution_window_hours: Option<i32>,
    /// The account's verified link domain its public URL is on (`None`: the shared host).
    pub domain: Option<String>,
    /// The customer's labels (at most 10), to find and group links by.
    pub tags: Vec<String>,
    /// Where clicks go by country, device, OS or language, first match first
    /// (`crate::link_rules`).
    #[sqlx(json)]
    pub rules: Vec<RedirectRule>,
    /// After this many counted clicks the link answers as an expired one.
    pub max_clicks: Option<i64>,
    /// When the link reached `max_clicks`.
    pub exhausted_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Link {
    /// Past `expiresAt`, or out of clicks (`maxClicks` reached).
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now) || self.exhausted_at.is_some()
    }

    /// What previews of the link show.
    pub fn metadata(&self) -> LinkMetadata {
        LinkMetadata {
            title: self.title.clone(),
            description: self.description.clone(),
            image_url: self.image_url.clone(),
        }
    }

    /// The fields a customer set, as an update starts from them.
    pub fn fields(&self) -> LinkFields {
        LinkFields {
            destination_url: self.destination_url.clone(),
            ios_url: self.ios_url.clone(),
            android_url: self.android_url.clone(),
            campaign: self.campaign.clone(),
            referrer_user_id: self.referrer_user_id.clone(),
            metadata: self.metadata(),
            utm: self.utm.clone(),
            deep_link_path: self.deep_link_path.clone(),
            data: self.data.clone(),
            attribution_window_hours: self.attribution_window_hours,
            domain: self.domain.clone(),
            tags: self.tags.clone(),
            rules: self.rules.clone(),
            max_clicks: self.max_clicks,
            expires_at: self.expires_at,
        }
    }

    /// The URL customers share: `https://{domain}/{shortCode}` on the link's domain, else
    /// `{base}/l/{shortCode}`.
    pub fn public_url(&self, public_base_url: &str) -> String {
        if let Some(domain) = &self.domain {
            return format!("https://{domain}/{}", self.short_code);
        }
        format!(
            "{}/l/{}",
            public_base_url.trim_end_matches('/'),
            self.short_code
        )
    }

    pub fn view(&self, public_base_url: &str) -> LinkView {
        LinkView {
            short_code: self.short_code.clone(),
            url: self.public_url(public_base_url),
            destination_url: self.destination_url.clone(),
            ios_url: self.ios_url.clone(),
            android_url: self.android_url.clone(),
            campaign: self.campaign.clone(),
            referrer_user_id: self.referrer_user_id.clone(),
            metadata: self.metadata(),
            utm: self.utm.clone(),
            deep_link_path: self.deep_link_path.clone(),
            data: self.data.clone(),
            attribution_window_hours: self.attribution_window_hours,
            domain: self.domain.clone(),
            tags: self.tags.clone(),
            rules: self.rules.clone(),
            max_clicks: self.max_clicks,
            exhausted: self.exhausted_at.is_some(),
            expires_at: self.expires_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// A link as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkView {
    pub short_code: String,
    pub url: String,
    pub destination_url: String,
    pub ios_url: Option<String>,
    pub android_url: Option<String>,
    pub campaign: Option<String>,
    pub referrer_user_id: Option<String>,
    pub metadata: LinkMetadata,
    /// Default UTM values (empty object: none).
    pub utm: Utm,
    /// Where the app takes a user who installed from this link.
    pub deep_link_path: Option<String>,
    /// The link's data for the app (flat JSON object; empty: none).
    #[schema(value_type = Object)]
    pub data: serde_json::Map<String, serde_json::Value>,
    /// Hours after a click on this link an install may still be attributed to it (null:
    /// the service's default window).
    pub attribution_window_hours: Option<i32>,
    /// The account's link domain the link's `url` is on (null: the shared host).
    pub domain: Option<String>,
    /// The link's tags (empty: none).
    pub tags: Vec<String>,
    /// Redirect rules, first match first (empty: none).
    pub rules: Vec<RedirectRule>,
    /// Counted clicks after which the link answers as an expired one (null: no cap).
    pub max_clicks: Option<i64>,
    /// Whether the link has reached `maxClicks`.
    pub exhausted: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkMetadata {
    pub title: Option<String>,
    pub description: Option<String>,
    pub image_url: Option<String>,
}

/// The fields a customer sets on a link.
#[derive(Debug, Clone, Default)]
pub struct LinkFields {
    pub destination_url: String,
    pub ios_url: Option<String>,
    pub android_url: Option<String>,
    pub campaign: Option<String>,
    pub referrer_user_id: Option<String>,
    pub metadata: LinkMetadata,
    pub utm: Utm,
    pub deep_link_path: Option<String>,
    pub data: serde_json::Map<String, serde_json::Value>,
    pub attribution_window_hours: Option<i32>,
    pub domain: Option<String>,
    pub tags: Vec<String>,
    pub rules: Vec<RedirectRule>,
    pub max_clicks: Option<i64>,
    pub expires_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str =
    "short_code, account_id, destination_url, ios_url, android_url, campaign, referrer_user_id, \
                       title, description, image_url, utm, deep_link_path, data, attribution_window_hours, domain, tags, rules, max_clicks, exhausted_at, expires_at, created_at, updated_at";

type LinkQuery<'q> = sqlx::query::QueryAs<'q, sqlx::Postgres, Link, sqlx::postgres::PgArguments>;

/// Binds `$1`..`$19` as both [`insert`] and [`update`] number them: the key, then the fields.
fn bind_link<'q>(
    query: LinkQuery<'q>,
    short_code: &'q str,
    account_id: Uuid,
    fields: &'q LinkFields,
) -> LinkQuery<'q> {
    query
        .bind(short_code)
        .bind(account_id)
        .bind(&fields.destination_url)
        .bind(&fields.ios_url)
        .bind(&fields.android_url)
        .bind(&fields.campaign)
        .bind(&fields.referrer_user_id)
        .bind(&fields.metadata.title)
        .bind(&fields.metadata.description)
        .bind(&fields.metadata.image_url)
        .bind(fields.expires_at)
        .bind(sqlx::types::Json(&fields.utm))
        .bind(&fields.deep_link_path)
        .bind(sqlx::types::Json(&fields.data))
        .bind(fields.attribution_window_hours)
        .bind(&fields.domain)
        .bind(&fields.tags)
        .bind(sqlx::types::Json(&fields.rules))
        .bind(fields.max_clicks)
}

/// Inserts a link; `Ok(None)` when the short code is taken (by anyone).
pub async fn insert(
    pool: &PgPool,
    account_id: Uuid,
    short_code: &str,
    fields: &LinkFields,
) -> Result<Option<Link>, ApiError> {
    let sql = format!(
        "INSERT INTO links (short_code, account_id, destination_url, ios_url, android_url, campaign, referrer_user_id, \
                            title, description, image_url, expires_at, utm, deep_link_path, data, attribution_window_hours, domain, tags, rules, max_clicks) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) \
         ON CONFLICT (short_code) DO NOTHING RETURNING {COLUMNS}"
    );
    Ok(
        bind_link(sqlx::query_as(&sql), short_code, account_id, fields)
            .fetch_optional(pool)
            .await?,
    )
}

/// The link, whoever owns it (the redirect needs this; API reads use [`find_owned`]).
pub async fn find(pool: &PgPool, short_code: &str) -> Result<Option<Link>, ApiError> {
    Ok(sqlx::query_as::<_, Link>(&format!(
        "SELECT {COLUMNS} FROM links WHERE short_code = $1"
    ))
    .bind(short_code)
    .fetch_optional(pool)
    .await?)
}

/// The link if `account_id` owns it; another account's link is "not found".
pub async fn find_owned(
    pool: &PgPool,
    account_id: Uuid,
    short_code: &str,
) -> Result<Link, ApiError> {
    sqlx::query_as::<_, Link>(&format!(
        "SELECT {COLUMNS} FROM links WHERE short_code = $1 AND account_id = $2"
    ))
    .bind(short_code)
    .bind(account_id)
    .fetch_optional(pool)
    .await?
    .ok_or(ApiError::Common(CommonError::LinkNotFound))
}

/// Which of an account's links a list shows: those with `tag`, and those whose short code or
/// destination contains `search` (case-insensitive).
#[derive(Debug, Default, Clone, Copy)]
pub struct LinkFilter<'a> {
    pub tag: Option<&'a str>,
    pub search: Option<&'a str>,
}

/// The most links a tag may cover in an analytics read (their codes become its filter).
pub const MAX_TAGGED_LINKS: i64 = 5_000;

/// The short codes of the account's links with `tag` (at most [`MAX_TAGGED_LINKS`] + 1, so
/// a caller can tell it went past).
pub async fn codes_tagged(
    pool: &PgPool,
    account_id: Uuid,
    tag: &str,
) -> Result<Vec<String>, ApiError> {
    Ok(sqlx::query_scalar(
        "SELECT short_code FROM links WHERE account_id = $1 AND tags @> ARRAY[$2]::text[] LIMIT $3",
    )
    .bind(account_id)
    .bind(tag)
    .bind(MAX_TAGGED_LINKS + 1)
    .fetch_all(pool)
    .await?)
}

/// One page of the account's links, newest first, after the cursor `(created_at, short_code)`.
pub async fn list(
    pool: &PgPool,
    account_id: Uuid,
    filter: LinkFilter<'_>,
    after: Option<(DateTime<Utc>, String)>,
    limit: i64,
) -> Result<Vec<Link>, ApiError> {
    let (cursor_time, cursor_code) = match after {
        Some((time, code)) => (Some(time), Some(code)),
        None => (None, None),
    };
    Ok(sqlx::query_as::<_, Link>(&format!(
        "SELECT {COLUMNS} FROM links WHERE account_id = $1 \
           AND ($2::timestamptz IS NULL OR (created_at, short_code) < ($2, $3)) \
           AND ($5::text IS NULL OR tags @> ARRAY[$5]::text[]) \
           AND ($6::text IS NULL OR strpos(lower(short_code), lower($6)) > 0 \
                OR strpos(lower(destination_url), lower($6)) > 0) \
         ORDER BY created_at DESC, short_code DESC LIMIT $4"
    ))
    .bind(account_id)
    .bind(cursor_time)
    .bind(cursor_code)
    .bind(limit)
    .bind(filter.tag)
    .bind(filter.search)
    .fetch_all(pool)
    .await?)
}

pub async fn update(
    pool: &PgPool,
    account_id: Uuid,
    short_code: &str,
    fields: &LinkFields,
) -> Result<Link, ApiError> {
    let sql = format!(
        "UPDATE links SET destination_url = $3, ios_url = $4, android_url = $5, campaign = $6, referrer_user_id = $7, \
                title = $8, description = $9, image_url = $10, expires_at = $11, utm = $12, deep_link_path = $13, data = $14, attribution_window_hours = $15, domain = $16, tags = $17, rules = $18, max_clicks = $19, \
                exhausted_at = CASE WHEN $19::bigint IS NOT NULL AND $19 <= coalesce( \
                    (SELECT counted FROM link_click_counts WHERE short_code = $1), 0) \
                  THEN coalesce(exhausted_at, now()) END, \
                updated_at = now() \
         WHERE short_code = $1 AND account_id = $2 RETURNING {COLUMNS}"
    );
    bind_link(sqlx::query_as(&sql), short_code, account_id, fields)
        .fetch_optional(pool)
        .await?
        .ok_or(ApiError::Common(CommonError::LinkNotFound))
}

pub async fn delete(pool: &PgPool, account_id: Uuid, short_code: &str) -> Result<(), ApiError> {
    let deleted = sqlx::query("DELETE FROM links WHERE short_code = $1 AND account_id = $2")
        .bind(short_code)
        .bind(account_id)
        .execute(pool)
        .await?;
    if deleted.rows_affected() == 0 {
        return Err(ApiError::Common(CommonError::LinkNotFound));
    }
    Ok(())
}

/// Counts one counted click (a person's, not a repeat) of a link with `maxClicks`; the click
/// that reaches the cap marks the link exhausted, which the change notification carries to
/// every instance's cache (`crate::link_rules`).
pub async fn count_capped_click(pool: &PgPool, short_code: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "WITH counted AS ( \
           INSERT INTO link_click_counts (short_code, counted) VALUES ($1, 1) \
           ON CONFLICT (short_code) DO UPDATE SET counted = link_click_counts.counted + 1 \
           RETURNING counted) \
         UPDATE links SET exhausted_at = now() \
          WHERE short_code = $1 AND exhausted_at IS NULL AND max_clicks IS NOT NULL \
            AND max_clicks <= (SELECT counted FROM counted)",
    )
    .bind(short_code)
    .execute(pool)
    .await?;
    Ok(())
}
