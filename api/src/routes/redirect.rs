//! `GET /l/{shortCode}` (and `/{shortCode}` on a link host): a 302 to the URL for the
//! device, recording a `click` through the event stream.

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};

use axum::extract::{ConnectInfo, State};
use axum::http::header::{CACHE_CONTROL, LOCATION, REFERER, USER_AGENT};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use linktrace_domain::{ClientFacts, EventRecord, ShortCode};
use linktrace_platform::request::PathSegment;
use prometheus::{register_int_counter_vec, IntCounterVec};
use uuid::Uuid;

use crate::links::{self, Link};
use crate::state::AppState;

static CLICKS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "redirect_clicks_total",
        "Link redirects, by whether the click was recorded",
        &["recorded"]
    )
    .expect("registers once")
});

/// The device a user agent describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Ios,
    Android,
    Web,
}

impl Platform {
    pub fn from_user_agent(user_agent: &str) -> Self {
        if ["iPhone", "iPad", "iPod"]
            .iter()
            .any(|d| user_agent.contains(d))
        {
            Platform::Ios
        } else if user_agent.contains("Android") {
            Platform::Android
        } else {
            Platform::Web
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Ios => "ios",
            Platform::Android => "android",
            Platform::Web => "web",
        }
    }
}

/// Follow a link: 302 to the device's URL, recording a click
#[utoipa::path(
    get,
    path = "/l/{shortCode}",
    tag = "redirect",
    operation_id = "followLink",
    params(("shortCode" = ShortCode, Path)),
    responses(
        (status = 302, description = "Redirect; header x-linktrace-click-id"),
        (status = 404, description = "Unknown or expired link (HTML page)"),
        (status = 503, description = "Link store unavailable (HTML page)"),
    ),
)]
pub async fn follow(
    State(state): State<AppState>,
    PathSegment(raw_code): PathSegment,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let Ok(code) = ShortCode::parse(&raw_code) else {
        return not_found_page();
    };
    let link = match cached_link(&state, &code).await {
        Ok(Some(link)) if !link.is_expired(state.clock.now()) => link,
        Ok(_) => return not_found_page(),
        Err(error) => {
            tracing::error!(%error, "redirect look-up failed");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Html("<h1>Temporarily unavailable</h1>"),
            )
                .into_response();
        }
    };
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    let user_agent = header(USER_AGENT).unwrap_or_default();
    let platform = Platform::from_user_agent(&user_agent);
    let target = match platform {
        Platform::Ios => link.ios_url.as_deref(),
        Platform::Android => link.android_url.as_deref(),
        Platform::Web => None,
    }
    .unwrap_or(&link.destination_url)
    .to_owned();
    let ip = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| peer.ip().to_string());
    let click_id = Uuid::new_v4();
    let now = state.clock.now();
    let client = ClientFacts {
        ip: Some(ip),
        user_agent: Some(user_agent),
        referrer: header(REFERER),
        platform: Some(platform.as_str().to_owned()),
        click_id: Some(click_id.to_string()),
    };
    let record = EventRecord::click(link.account_id, &link.short_code, click_id, client, now);
    // The visitor is sent on either way; a click the broker did not take is counted.
    let recorded = state.sink.send(&record).await.is_ok();
    CLICKS
        .with_label_values(&[if recorded { "true" } else { "false" }])
        .inc();
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&target) {
        headers.insert(LOCATION, location);
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(id) = HeaderValue::from_str(&click_id.to_string()) {
        headers.insert("x-linktrace-click-id", id);
    }
    response
}

async fn cached_link(
    state: &AppState,
    code: &ShortCode,
) -> Result<Option<Arc<Link>>, crate::error::ApiError> {
    if let Some(hit) = state.redirect_cache.get(code.as_str()).await {
        return Ok(hit);
    }
    let found = links::find(&state.pool, code.as_str()).await?.map(Arc::new);
    state
        .redirect_cache
        .insert(code.as_str().to_owned(), found.clone())
        .await;
    Ok(found)
}

fn not_found_page() -> Response {
    (
        StatusCode::NOT_FOUND,
        Html("<!doctype html><title>Link not found</title><h1>Link not found</h1><p>This link does not exist or has expired.</p>"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_devices() {
        assert_eq!(
            Platform::from_user_agent("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)"),
            Platform::Ios
        );
        assert_eq!(
            Platform::from_user_agent("Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X)"),
            Platform::Ios
        );
        assert_eq!(
            Platform::from_user_agent("Mozilla/5.0 (Linux; Android 14; Pixel 8)"),
            Platform::Android
        );
        assert_eq!(
            Platform::from_user_agent("Mozilla/5.0 (X11; Linux x86_64)"),
            Platform::Web
        );
        assert_eq!(Platform::from_user_agent(""), Platform::Web);
    }
}
