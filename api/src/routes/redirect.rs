//! `GET /l/{shortCode}` (and `/{shortCode}` on a link host): a 302 to the URL for the
//! device, recording a `click` through the event stream.

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};

use axum::extract::{ConnectInfo, State};
use axum::http::header::{ACCEPT_LANGUAGE, CACHE_CONTROL, HOST, LOCATION, REFERER, USER_AGENT};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use linktrace_domain::{EventRecord, ShortCode};
use linktrace_platform::request::PathSegment;
use linktrace_platform::request_id;
use prometheus::{register_int_counter, register_int_counter_vec, IntCounter, IntCounterVec};
use uuid::Uuid;

use crate::clicks::{install_referrer, preview, utm, ClickRequest, Platform};
use crate::link_rules::{self, RuleFacts};
use crate::links::{self, Link};
use crate::state::AppState;

static CLICKS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "redirect_clicks_total",
        "Clicks the redirect sent to the stream, by outcome (recorded: the broker took it; lost: it did not) and by whether a bot made it",
        &["recorded", "bot"]
    )
    .expect("registers once")
});

static PREVIEWS: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "redirect_previews_total",
        "Link-preview fetchers answered with the preview page instead of the 302"
    )
    .expect("registers once")
});

/// Registers the redirect's metrics now, every outcome at zero, so that a dashboard reads
/// zeros, not "no data", before the first click.
pub fn register_metrics() {
    for recorded in ["true", "false"] {
        for bot in ["true", "false"] {
            CLICKS.with_label_values(&[recorded, bot]);
        }
    }
    LazyLock::force(&PREVIEWS);
}

/// Follow a link: 302 to the device's URL, recording a click
#[utoipa::path(
    get,
    path = "/l/{shortCode}",
    tag = "redirect",
    operation_id = "followLink",
    params(
        ("shortCode" = ShortCode, Path),
        ("utm_source" = Option<String>, Query, description = "Recorded with the click and passed on to the destination; so are utm_medium, utm_campaign, utm_term and utm_content"),
    ),
    responses(
        (status = 200, description = "A link-preview fetcher: HTML with the link's Open Graph and Twitter card tags", content_type = "text/html"),
        (status = 302, description = "Redirect; header x-linktrace-click-id. Sent without waiting for the broker"),
        (status = 404, description = "Unknown or expired link (HTML page)"),
        (status = 503, description = "Link store unavailable (HTML page)"),
    ),
)]
#[tracing::instrument(level = "debug", skip_all, fields(short_code = %raw_code))]
pub async fn follow(
    State(state): State<AppState>,
    PathSegment(raw_code): PathSegment,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let Ok(code) = ShortCode::parse(&raw_code) else {
        return not_found_page();
    };
    let now = state.clock.now();
    // On an account's verified link domain, only that account's links.
    let host_owner = state
        .domain_owners
        .owner_of(headers.get(HOST).and_then(|v| v.to_str().ok()))
        .await;
    let link = match (cached_link(&state, &code).await, host_owner) {
        (Ok(Some(link)), Ok(owner))
            if !link.is_expired(now) && owner.is_none_or(|owner| owner == link.account_id) =>
        {
            link
        }
        (Ok(_), Ok(_)) => return not_found_page(),
        (Err(error), _) | (_, Err(error)) => {
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
    };
    let user_agent = header(USER_AGENT).unwrap_or_default();
    let utm = utm::from_query(uri.query()).or(&link.utm);
    let click_id = Uuid::new_v4();
    let click = state.clicks.enrich(ClickRequest {
        head: method == Method::HEAD,
        ip: state.clicks.trusted_proxies.client_ip(peer.ip(), &headers),
        user_agent,
        referrer: header(REFERER),
        utm: utm.clone(),
        click_id: click_id.to_string(),
        at: now,
    });
    let (preview, platform) = (click.preview, click.platform);
    let bot = click.client.facts.as_ref().is_some_and(|f| f.bot);
    // The rules are matched after the click goes to its background task: keep its facts.
    let facts = if link.rules.is_empty() {
        None
    } else {
        click.client.facts.clone()
    };
    record(
        &state,
        EventRecord::click(
            link.account_id,
            &link.short_code,
            click_id,
            click.client,
            now,
        )
        .with_request_id(request_id::current()),
        bot,
        link.max_clicks.is_some(),
    );
    if preview {
        PREVIEWS.inc();
        let public_url = link.public_url(&state.settings.public_base_url);
        let mut response = Html(preview::page(&link, &public_url)).into_response();
        stamp(response.headers_mut(), click_id);
        return response;
    }
    let target = link_rules::first_match(
        &link.rules,
        &RuleFacts::of(facts.as_ref(), header(ACCEPT_LANGUAGE)),
    )
    .or(match platform {
        Platform::Ios => link.ios_url.as_deref(),
        Platform::Android => link.android_url.as_deref(),
        Platform::Web => None,
    })
    .unwrap_or(&link.destination_url);
    let target = utm::merge_into(target, &utm);
    let target = install_referrer::add_to_play_url(&target, &click_id.to_string(), &utm);
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&target) {
        headers.insert(LOCATION, location);
    }
    stamp(headers, click_id);
    response
}

/// What every answer to a click carries: never cached (each visit is a click), and its id.
fn stamp(headers: &mut HeaderMap, click_id: Uuid) {
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(id) = HeaderValue::from_str(&click_id.to_string()) {
        headers.insert("x-linktrace-click-id", id);
    }
}

/// The most clicks on their way to the broker at once. Past it (the broker has been
/// unreachable for a while at a high click rate) a click is counted lost at once instead of
/// holding memory: the producer's own queue (`KAFKA_PRODUCER_QUEUE_MAX_MESSAGES`) is full by
/// then anyway.
const MAX_CLICKS_IN_FLIGHT: usize = 100_000;

/// Hands the click to the producer's queue and lets the visitor go: the broker's answer is
/// awaited in the background and counted (a click the broker never took is `lost`; the sink
/// logs why).
/// `capped`: the link has `maxClicks`, so a counted click is also counted towards it.
fn record(state: &AppState, mut click: EventRecord, bot: bool, capped: bool) {
    let bot_label = if bot { "true" } else { "false" };
    if state.clicks_in_flight.len() >= MAX_CLICKS_IN_FLIGHT {
        CLICKS.with_label_values(&["false", bot_label]).inc();
        return;
    }
    let sink = state.sink.clone();
    let repeats = state.repeats.clone();
    let pool = state.pool.clone();
    state.clicks_in_flight.spawn(async move {
        // Whether this visitor clicked this link within the hour (people only: a bot's
        // click is not counted anyway).
        let received_at = click.received_at;
        if let (false, Some(code), Some(facts)) = (
            bot,
            click.link_short_code.clone(),
            click.client.as_mut().and_then(|c| c.facts.as_mut()),
        ) {
            if !facts.visitor.is_empty() {
                match repeats.is_repeat(&code, &facts.visitor, received_at).await {
                    Ok(repeat) => facts.repeat = repeat,
                    Err(error) => tracing::warn!(%error, "repeat check failed; click counted"),
                }
            }
            if capped && !facts.repeat {
                if let Err(error) = links::count_capped_click(&pool, &code).await {
                    tracing::warn!(%error, "counting a capped link's click failed");
                }
            }
        }
        let bot = bot_label;
        let recorded = match sink.send(&click).await {
            Ok(()) => "true",
            Err(_) => "false",
        };
        CLICKS.with_label_values(&[recorded, bot]).inc();
    });
}

async fn cached_link(
    state: &AppState,
    code: &ShortCode,
) -> Result<Option<Arc<Link>>, crate::error::ApiError> {
    state
        .redirect_cache
        .get_or_load(code.as_str(), || async {
            Ok(links::find(&state.pool, code.as_str()).await?.map(Arc::new))
        })
        .await
}

fn not_found_page() -> Response {
    (
        StatusCode::NOT_FOUND,
        Html("<!doctype html><title>Link not found</title><h1>Link not found</h1><p>This link does not exist or has expired.</p>"),
    )
        .into_response()
}
