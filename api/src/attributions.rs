//! Attribution of installs to links: the click (or link) a user's install came from, matched
//! in order by an explicit short code, a click id, a fingerprint (the device's IP, and its
//! platform when known) on the account's recent clicks, else organic. A user is attributed
//! once per environment: the first attribution wins and a repeat returns it unchanged.
//! Postgres keeps each user's attribution; clicks are matched in ClickHouse's click tables.
//! The route (`routes/attributions.rs`) parses the request and writes the answer.

use chrono::{DateTime, Utc};
use clickhouse::query::Query;
use clickhouse::{Client, Row};
use linktrace_domain::{AttributionMatch, Environment, ShortCode};
use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::analytics::secs;
use crate::error::ApiError;
use crate::links;

/// A user's attribution, as Postgres keeps it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Attribution {
    pub user_id: String,
    pub short_code: Option<String>,
    #[sqlx(try_from = "String")]
    pub match_type: AttributionMatch,
    pub click_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Whose install, in which environment.
#[derive(Debug, Clone, Copy)]
pub struct User<'a> {
    pub account_id: Uuid,
    pub environment: Environment,
    pub user_id: &'a str,
}

/// What the app reports of the install, to match it by.
#[derive(Debug, Default, Clone, Copy)]
pub struct InstallFacts<'a> {
    /// The link the app opened with (a deep link).
    pub short_code: Option<&'a ShortCode>,
    /// The click id the app was installed from.
    pub click_id: Option<&'a str>,
    /// The device's IP, as clicks store it (anonymised alike).
    pub ip: Option<&'a str>,
    /// `ios`, `android` or `web`, lower case.
    pub platform: Option<&'a str>,
}

/// How an install was matched: the link and click it is attributed to, if any.
#[derive(Debug, Clone)]
pub struct Matched {
    pub short_code: Option<String>,
    pub match_type: AttributionMatch,
    pub click_id: Option<String>,
}

/// The statements on Postgres's `attributions`.
pub mod sql {
    pub const FIND: &str = "SELECT user_id, short_code, match_type, click_id, created_at \
         FROM attributions WHERE account_id = $1 AND environment = $2 AND user_id = $3";
    /// Records the attribution unless the user has one ($1 account, $2 environment, $3 user,
    /// $4 short code, $5 match type, $6 click id).
    pub const RECORD: &str = "INSERT INTO attributions \
         (account_id, environment, user_id, short_code, match_type, click_id) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (account_id, environment, user_id) DO NOTHING \
         RETURNING user_id, short_code, match_type, click_id, created_at";
    pub const FORGET: &str =
        "DELETE FROM attributions WHERE account_id = $1 AND environment = $2 AND user_id = $3";
}

/// The user's attribution in its environment (test and live never see each other's users).
pub async fn find(pool: &PgPool, user: User<'_>) -> Result<Option<Attribution>, sqlx::Error> {
    sqlx::query_as(sql::FIND)
        .bind(user.account_id)
        .bind(user.environment.as_str())
        .bind(user.user_id)
        .fetch_optional(pool)
        .await
}

/// Records `matched` as the user's attribution; `None` when another request attributed the
/// user first (its attribution stands).
pub async fn record(
    pool: &PgPool,
    user: User<'_>,
    matched: &Matched,
) -> Result<Option<Attribution>, sqlx::Error> {
    sqlx::query_as(sql::RECORD)
        .bind(user.account_id)
        .bind(user.environment.as_str())
        .bind(user.user_id)
        .bind(&matched.short_code)
        .bind(matched.match_type.as_str())
        .bind(&matched.click_id)
        .fetch_optional(pool)
        .await
}

/// Takes back an attribution whose install event did not reach the stream, so a retry
/// records both.
pub async fn forget(pool: &PgPool, user: User<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(sql::FORGET)
        .bind(user.account_id)
        .bind(user.environment.as_str())
        .bind(user.user_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Matches an install: its short code (a link of the account's, else `NotFound`), its click
/// id, a fingerprint on the account's clicks since `since`, else organic.
pub async fn match_install(
    pool: &PgPool,
    clickhouse: &Client,
    account_id: Uuid,
    facts: InstallFacts<'_>,
    since: DateTime<Utc>,
) -> Result<Matched, ApiError> {
    if let Some(code) = facts.short_code {
        links::find_owned(pool, account_id, code.as_str()).await?;
        return Ok(Matched {
            short_code: Some(code.as_str().to_owned()),
            match_type: AttributionMatch::ShortCode,
            click_id: facts.click_id.map(str::to_owned),
        });
    }
    if let Some(id) = facts.click_id {
        if let Some(found) = click_by_id(clickhouse, account_id, id).await? {
            return Ok(found.matched(AttributionMatch::ClickId));
        }
    }
    if let Some(ip) = facts.ip {
        let platform = facts.platform.unwrap_or("");
        if let Some(found) =
            click_by_fingerprint(clickhouse, account_id, ip, platform, since).await?
        {
            return Ok(found.matched(AttributionMatch::Fingerprint));
        }
    }
    Ok(Matched {
        short_code: None,
        match_type: AttributionMatch::Organic,
        click_id: None,
    })
}

/// A click an install matched.
#[derive(Debug, Row, Deserialize)]
pub struct ClickMatch {
    pub link_short_code: String,
    pub click_id: String,
}

impl ClickMatch {
    fn matched(self, match_type: AttributionMatch) -> Matched {
        Matched {
            short_code: Some(self.link_short_code),
            match_type,
            click_id: Some(self.click_id),
        }
    }
}

pub fn click_by_id_query(client: &Client, account_id: Uuid, click_id: &str) -> Query {
    client
        .query(
            "SELECT link_short_code, click_id FROM clicks_by_id \
             WHERE account_id = ? AND click_id = ? LIMIT 1",
        )
        .bind(account_id.to_string())
        .bind(click_id)
}

/// The click with this id, in the account.
pub async fn click_by_id(
    client: &Client,
    account_id: Uuid,
    click_id: &str,
) -> Result<Option<ClickMatch>, clickhouse::error::Error> {
    click_by_id_query(client, account_id, click_id)
        .fetch_optional::<ClickMatch>()
        .await
}

pub fn click_by_fingerprint_query(
    client: &Client,
    account_id: Uuid,
    ip: &str,
    platform: &str,
    since: DateTime<Utc>,
) -> Query {
    client
        .query(
            "SELECT link_short_code, click_id FROM clicks_by_ip \
             WHERE account_id = ? AND ip = ? AND event_time >= toDateTime(?) AND (? = '' OR platform = ?) \
             ORDER BY event_time_ms DESC LIMIT 1",
        )
        .bind(account_id.to_string())
        .bind(ip)
        .bind(secs(since))
        .bind(platform)
        .bind(platform)
}

/// The account's latest click from this device (same IP, and the same platform when
/// known) since `since`.
pub async fn click_by_fingerprint(
    client: &Client,
    account_id: Uuid,
    ip: &str,
    platform: &str,
    since: DateTime<Utc>,
) -> Result<Option<ClickMatch>, clickhouse::error::Error> {
    click_by_fingerprint_query(client, account_id, ip, platform, since)
        .fetch_optional::<ClickMatch>()
        .await
}

/// The ClickHouse reads above as the SQL they send for a sample account, by name: what the
/// test suite runs on current ClickHouse (chdb) as well as on the server.
pub fn catalog(
    client: &Client,
    account_id: Uuid,
    since: DateTime<Utc>,
) -> Vec<(&'static str, String)> {
    let show = |query: Query| query.sql_display().to_string();
    vec![
        (
            "click_by_id",
            show(click_by_id_query(client, account_id, "click-1")),
        ),
        (
            "click_by_fingerprint",
            show(click_by_fingerprint_query(
                client,
                account_id,
                "203.0.113.9",
                "ios",
                since,
            )),
        ),
    ]
}
