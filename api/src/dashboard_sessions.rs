//! Dashboard sign-in (spec, "Links at scale"): the dashboard's JavaScript never holds a
//! secret key. A key is entered once in a plain HTML form (posted by the browser, not read by
//! script), or a one-time sign-in link is minted with it (`POST /api/v1/dashboard/sign-in-links`,
//! for a CLI or a test). Either becomes a session: an `HttpOnly`, `SameSite=Strict` cookie
//! whose token Postgres keeps only as a SHA-256 hash, tied to the key it came from
//! (migration 0017). Revoking the key ends its sessions and links at once.
//!
//! A session authenticates a request only together with the header
//! [`DASHBOARD_HEADER`]: another site's page can make a browser send the cookie, but not a
//! custom header (that needs a CORS preflight, which nothing here answers), so no other
//! site can read or change anything with a signed-in browser.

use std::time::Duration;

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use cookie::{Cookie, SameSite};
use linktrace_platform::keys::KeyOwner;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::error::ApiError;
use crate::state::AppState;

/// The session cookie's name.
pub const COOKIE: &str = "lt_dashboard";
/// The header every request authenticated by the session cookie carries (the dashboard's
/// own requests send it).
pub const DASHBOARD_HEADER: &str = "x-linktrace-dashboard";
/// How long a session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// How long a sign-in link can be redeemed (once).
pub const SIGN_IN_LINK_TTL: Duration = Duration::from_secs(10 * 60);

/// What a token opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Session,
    SignInLink,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Session => "session",
            Kind::SignInLink => "sign_in_link",
        }
    }

    fn ttl(self) -> Duration {
        match self {
            Kind::Session => SESSION_TTL,
            Kind::SignInLink => SIGN_IN_LINK_TTL,
        }
    }
}

/// A fresh token (256 random bits, hex) and when it expires. Only its hash is stored.
pub struct Issued {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

mod sql {
    pub const ISSUE: &str =
        "INSERT INTO dashboard_sessions (token_hash, key_hash, kind, expires_at) \
         VALUES ($1, $2, $3, $4)";
    /// Sessions and links a day past their end (each issue sweeps a few).
    pub const SWEEP: &str = "DELETE FROM dashboard_sessions WHERE token_hash IN \
         (SELECT token_hash FROM dashboard_sessions WHERE expires_at < now() - interval '1 day' LIMIT 100)";
    /// A link is redeemed once: whoever deletes it has it.
    pub const REDEEM_LINK: &str = "DELETE FROM dashboard_sessions \
         WHERE token_hash = $1 AND kind = 'sign_in_link' AND expires_at > now() RETURNING key_hash";
    pub const SESSION_KEY: &str = "SELECT key_hash FROM dashboard_sessions \
         WHERE token_hash = $1 AND kind = 'session' AND expires_at > now()";
    pub const END: &str =
        "DELETE FROM dashboard_sessions WHERE token_hash = $1 AND kind = 'session'";
}

async fn issue(pool: &PgPool, key_hash: &str, kind: Kind) -> Result<Issued, sqlx::Error> {
    let mut raw = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut raw);
    let token = hex::encode(raw);
    let expires_at = Utc::now() + kind.ttl();
    sqlx::query(sql::SWEEP).execute(pool).await?;
    sqlx::query(sql::ISSUE)
        .bind(token_hash(&token))
        .bind(key_hash)
        .bind(kind.as_str())
        .bind(expires_at)
        .execute(pool)
        .await?;
    Ok(Issued { token, expires_at })
}

/// A session for the key with this hash.
pub async fn start_session(pool: &PgPool, key_hash: &str) -> Result<Issued, sqlx::Error> {
    issue(pool, key_hash, Kind::Session).await
}

/// A one-time sign-in link's token for the key with this hash.
pub async fn mint_sign_in_link(pool: &PgPool, key_hash: &str) -> Result<Issued, sqlx::Error> {
    issue(pool, key_hash, Kind::SignInLink).await
}

/// Redeems a sign-in link (once, before it expires): the hash of the key it was minted with.
pub async fn redeem_sign_in_link(
    pool: &PgPool,
    token: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(sql::REDEEM_LINK)
        .bind(token_hash(token))
        .fetch_optional(pool)
        .await
}

/// Ends a session (signing out).
pub async fn end(pool: &PgPool, token: &str) -> Result<(), sqlx::Error> {
    sqlx::query(sql::END)
        .bind(token_hash(token))
        .execute(pool)
        .await?;
    Ok(())
}

/// The session token of the request's cookie, if it has one.
pub fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == COOKIE)
        .map(|cookie| cookie.value().to_owned())
}

/// What the request's session stands for: `None` without the cookie or the dashboard
/// header, or when the session has ended, expired, or its key was revoked.
pub async fn owner(state: &AppState, headers: &HeaderMap) -> Result<Option<KeyOwner>, ApiError> {
    if !headers.contains_key(DASHBOARD_HEADER) {
        return Ok(None);
    }
    let Some(token) = cookie_token(headers) else {
        return Ok(None);
    };
    let key_hash: Option<String> = sqlx::query_scalar(sql::SESSION_KEY)
        .bind(token_hash(&token))
        .fetch_optional(&state.pool)
        .await?;
    match key_hash {
        Some(hash) => Ok(state.keys.resolve_hash(&hash).await?),
        None => Ok(None),
    }
}

/// The `Set-Cookie` value that carries a session (`Secure` when the public base URL is https).
pub fn session_cookie(issued: &Issued, secure: bool) -> String {
    set_cookie(issued.token.clone(), SESSION_TTL.as_secs() as i64, secure)
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn removal_cookie(secure: bool) -> String {
    set_cookie(String::new(), 0, secure)
}

fn set_cookie(value: String, max_age_secs: i64, secure: bool) -> String {
    Cookie::build((COOKIE, value))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .path("/")
        .max_age(cookie::time::Duration::seconds(max_age_secs))
        .build()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_http_only_strict_and_read_back_among_others() {
        let issued = Issued {
            token: "ab".repeat(32),
            expires_at: Utc::now(),
        };
        let set = session_cookie(&issued, true);
        for part in [
            "HttpOnly",
            "SameSite=Strict",
            "Secure",
            "Path=/",
            "Max-Age=43200",
        ] {
            assert!(set.contains(part), "{set}");
        }
        assert!(!session_cookie(&issued, false).contains("Secure"));
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            format!("other=1; {COOKIE}={}; third=x", issued.token)
                .parse()
                .unwrap(),
        );
        assert_eq!(cookie_token(&headers), Some(issued.token));
        assert_ne!(token_hash("a"), token_hash("b"));
    }
}
