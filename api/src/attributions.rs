//! Attribution of installs to links: the click (or link) a user's install came from, matched
//! in order by the click id in Google Play's install referrer, an explicit short code, a
//! click id, a fingerprint (the device's IP, and its platform when known) on the account's
//! recent clicks, else organic. A click matches only inside its link's attribution window
//! (`attributionWindowHours`, else the service's), and every match keeps its evidence. A user is attributed
//! once per environment: the first attribution wins and a repeat returns it unchanged.
//! Postgres keeps each user's attribution; clicks are matched in ClickHouse's click tables.
//! The route (`routes/attributions.rs`) parses the request and writes the answer.

use chrono::{DateTime, Utc};
use clickhouse::query::Query;
use clickhouse::{Client, Row};
use linktrace_domain::{AttributionMatch, Environment, ShortCode};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use crate::analytics::sql::secs;
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
    /// How it matched (`None` for attributions recorded before evidence was kept).
    #[sqlx(json(nullable))]
    pub evidence: Option<Evidence>,
}

/// Why an attribution matched, as every answer shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    /// When the matched click happened (null: no click was matched).
    pub clicked_at: Option<DateTime<Utc>>,
    /// Seconds from that click to the install.
    pub seconds_to_install: Option<i64>,
    /// The attribution window applied to the click, in hours.
    pub window_hours: Option<u32>,
    /// Where that window came from: `link` (its `attributionWindowHours`) or `service`.
    pub window_source: Option<WindowSource>,
    /// For a fingerprint match: how many of the account's clicks from that device were
    /// inside their links' windows (the latest was taken).
    pub candidates: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WindowSource {
    Link,
    Service,
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
    /// The click id the app read from Google Play's install referrer.
    pub referrer_click_id: Option<&'a str>,
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
    pub evidence: Evidence,
}

/// The statements on Postgres's `attributions`.
pub mod sql {
    pub const FIND: &str =
        "SELECT user_id, short_code, match_type, click_id, created_at, evidence \
         FROM attributions WHERE account_id = $1 AND environment = $2 AND user_id = $3";
    /// Records the attribution unless the user has one ($1 account, $2 environment, $3 user,
    /// $4 short code, $5 match type, $6 click id, $7 evidence).
    pub const RECORD: &str = "INSERT INTO attributions \
         (account_id, environment, user_id, short_code, match_type, click_id, evidence) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (account_id, environment, user_id) DO NOTHING \
         RETURNING user_id, short_code, match_type, click_id, created_at, evidence";
    /// The attribution windows of the account's links among $2 (hours; null: the service's).
    pub const LINK_WINDOWS: &str = "SELECT short_code, attribution_window_hours FROM links \
         WHERE account_id = $1 AND short_code = ANY($2)";
    pub const FORGET: &str =
        "DELETE FROM attributions WHERE account_id = $1 AND environment = $2 AND user_id = $3";
    /// Attributions recorded in [$3, $4), per match type (index `attributions_by_time`).
    pub const COUNT_BY_MATCH: &str = "SELECT match_type, count(*) FROM attributions \
         WHERE account_id = $1 AND environment = $2 AND created_at >= $3 AND created_at < $4 \
         GROUP BY match_type";
}

/// How many installs were attributed in `[from, to)`, per match type: every type, 0 where
/// none matched so.
pub async fn count_by_match(
    pool: &PgPool,
    account_id: Uuid,
    environment: Environment,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<std::collections::BTreeMap<&'static str, i64>, sqlx::Error> {
    let rows: Vec<(String, i64)> = sqlx::query_as(sql::COUNT_BY_MATCH)
        .bind(account_id)
        .bind(environment.as_str())
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await?;
    let mut counts: std::collections::BTreeMap<&'static str, i64> = AttributionMatch::all()
        .into_iter()
        .map(|m| (m.as_str(), 0))
        .collect();
    for (name, count) in rows {
        if let Some(matched) = AttributionMatch::parse(&name) {
            counts.insert(matched.as_str(), count);
        }
    }
    Ok(counts)
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
        .bind(sqlx::types::Json(&matched.evidence))
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

/// The most recent clicks from one device a fingerprint match weighs.
const FINGERPRINT_CANDIDATES: u64 = 100;

/// The longest window a link may set (`attributionWindowHours` ≤ 720).
const LONGEST_LINK_WINDOW_HOURS: u32 = 720;

/// Matches an install reported at `now`: the click id in its install referrer, its short
/// code (a link of the account's, else `NotFound`), its click id, a fingerprint on the
/// account's clicks, else organic. A click counts only inside its link's window
/// (`default_window_hours` for links without one of their own).
pub async fn match_install<'a>(
    pool: &PgPool,
    clickhouse: &Client,
    account_id: Uuid,
    facts: InstallFacts<'a>,
    now: DateTime<Utc>,
    default_window_hours: u32,
) -> Result<Matched, ApiError> {
    let windows = Windows {
        pool,
        account_id,
        default_hours: default_window_hours,
    };
    // A click found by its id, if the install is inside its link's window.
    let by_click_id = |id: &'a str, match_type: AttributionMatch| {
        let windows = &windows;
        async move {
            let Some(click) = click_by_id(clickhouse, account_id, id).await? else {
                return Ok::<_, ApiError>(None);
            };
            let window = windows.of(vec![click.link_short_code.clone()]).await?;
            let window = window(&click.link_short_code);
            Ok(admit(click, now, window, match_type))
        }
    };
    if let Some(id) = facts.referrer_click_id {
        if let Some(matched) = by_click_id(id, AttributionMatch::InstallReferrer).await? {
            return Ok(matched);
        }
    }
    if let Some(code) = facts.short_code {
        links::find_owned(pool, account_id, code.as_str()).await?;
        return Ok(Matched {
            short_code: Some(code.as_str().to_owned()),
            match_type: AttributionMatch::ShortCode,
            click_id: facts.click_id.map(str::to_owned),
            evidence: Evidence::default(),
        });
    }
    if let Some(id) = facts.click_id {
        if let Some(matched) = by_click_id(id, AttributionMatch::ClickId).await? {
            return Ok(matched);
        }
    }
    if let Some(ip) = facts.ip {
        let platform = facts.platform.unwrap_or("");
        let longest = default_window_hours.max(LONGEST_LINK_WINDOW_HOURS);
        let since = now - chrono::Duration::hours(i64::from(longest));
        let clicks = clicks_by_fingerprint(clickhouse, account_id, ip, platform, since).await?;
        let codes: Vec<String> = clicks.iter().map(|c| c.link_short_code.clone()).collect();
        let window = windows.of(codes).await?;
        // Newest first: the latest click inside its window is the match.
        let inside: Vec<Matched> = clicks
            .into_iter()
            .filter_map(|click| {
                let link_window = window(&click.link_short_code);
                admit(click, now, link_window, AttributionMatch::Fingerprint)
            })
            .collect();
        let candidates = inside.len() as u32;
        if let Some(mut latest) = inside.into_iter().next() {
            latest.evidence.candidates = Some(candidates);
            return Ok(latest);
        }
    }
    Ok(Matched {
        short_code: None,
        match_type: AttributionMatch::Organic,
        click_id: None,
        evidence: Evidence::default(),
    })
}

/// The attribution windows of one account's links.
struct Windows<'a> {
    pool: &'a PgPool,
    account_id: Uuid,
    default_hours: u32,
}

impl Windows<'_> {
    /// The windows of the links `short_codes`, in hours, and where each came from, as a
    /// look-up by short code.
    async fn of(
        &self,
        short_codes: Vec<String>,
    ) -> Result<impl Fn(&str) -> (u32, WindowSource), ApiError> {
        let own: Vec<(String, Option<i32>)> = sqlx::query_as(sql::LINK_WINDOWS)
            .bind(self.account_id)
            .bind(short_codes)
            .fetch_all(self.pool)
            .await?;
        let own: std::collections::HashMap<String, u32> = own
            .into_iter()
            .filter_map(|(code, hours)| Some((code, hours?.max(1) as u32)))
            .collect();
        let default_hours = self.default_hours;
        Ok(move |code: &str| match own.get(code) {
            Some(&hours) => (hours, WindowSource::Link),
            None => (default_hours, WindowSource::Service),
        })
    }
}

/// `click` as the install's match, if the install at `now` is inside `window` (its link's,
/// in hours, and where that came from).
fn admit(
    click: ClickMatch,
    now: DateTime<Utc>,
    (hours, source): (u32, WindowSource),
    match_type: AttributionMatch,
) -> Option<Matched> {
    let clicked_at = click.clicked_at();
    let age = now - clicked_at;
    if age > chrono::Duration::hours(i64::from(hours)) {
        return None;
    }
    Some(Matched {
        short_code: Some(click.link_short_code),
        match_type,
        click_id: Some(click.click_id),
        evidence: Evidence {
            clicked_at: Some(clicked_at),
            seconds_to_install: Some(age.num_seconds().max(0)),
            window_hours: Some(hours),
            window_source: Some(source),
            candidates: None,
        },
    })
}

/// A click an install matched.
#[derive(Debug, Row, Deserialize)]
pub struct ClickMatch {
    pub link_short_code: String,
    pub click_id: String,
    /// When the click happened, in milliseconds since the epoch.
    pub clicked_at_ms: u64,
}

impl ClickMatch {
    fn clicked_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.clicked_at_ms as i64).unwrap_or_default()
    }
}

/// The click id in an install referrer as Google Play hands it to the app
/// (`linktrace_click_id=…&utm_source=…`; still URL-encoded as some apps pass it on).
pub fn referrer_click_id(referrer: &str) -> Option<String> {
    let decoded;
    let referrer = if !referrer.contains('=') && referrer.contains("%3D") {
        decoded = url::form_urlencoded::parse(format!("r={referrer}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())?;
        decoded.as_str()
    } else {
        referrer
    };
    url::form_urlencoded::parse(referrer.as_bytes())
        .find(|(key, value)| key == "linktrace_click_id" && !value.is_empty())
        .map(|(_, value)| value.into_owned())
}

pub fn click_by_id_query(client: &Client, account_id: Uuid, click_id: &str) -> Query {
    client
        .query(
            "SELECT link_short_code, click_id, toUInt64(toUnixTimestamp(event_time)) * 1000 AS clicked_at_ms \
             FROM clicks_by_id WHERE account_id = ? AND click_id = ? LIMIT 1",
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
            "SELECT link_short_code, click_id, event_time_ms AS clicked_at_ms FROM clicks_by_ip \
             WHERE account_id = ? AND ip = ? AND event_time >= toDateTime(?) AND (? = '' OR platform = ?) \
             ORDER BY event_time_ms DESC LIMIT ?",
        )
        .bind(account_id.to_string())
        .bind(ip)
        .bind(secs(since))
        .bind(platform)
        .bind(platform)
        .bind(FINGERPRINT_CANDIDATES)
}

/// The account's latest clicks from this device (same IP, and the same platform when
/// known) since `since`, newest first, each once.
pub async fn clicks_by_fingerprint(
    client: &Client,
    account_id: Uuid,
    ip: &str,
    platform: &str,
    since: DateTime<Utc>,
) -> Result<Vec<ClickMatch>, clickhouse::error::Error> {
    let mut clicks = click_by_fingerprint_query(client, account_id, ip, platform, since)
        .fetch_all::<ClickMatch>()
        .await?;
    // A click's row may be there twice until the table's merge: it is one candidate.
    let mut seen = std::collections::HashSet::new();
    clicks.retain(|click| seen.insert(click.click_id.clone()));
    Ok(clicks)
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
