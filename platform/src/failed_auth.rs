//! Failed authentication throttled per client address (spec, "Keys, limits and abuse"):
//! after `AUTH_FAILURES_PER_MINUTE` failures (a wrong admin token, a wrong or revoked API
//! key) from one address in a minute, that address gets `429 RATE_LIMITED` with
//! `Retry-After` until the minute is over, whatever it presents: a guesser learns nothing
//! from a late hit. Per instance. The client address is the TCP peer, or what the trusted
//! gateway says (`TRUSTED_PROXIES`).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use linktrace_domain::{ErrorCode, ErrorEnvelope};

use crate::client_ip::TrustedProxies;

const WINDOW: Duration = Duration::from_secs(60);

pub struct FailedAuthentications {
    failures: moka::sync::Cache<IpAddr, Arc<(Instant, AtomicU32)>>,
    per_minute: u32,
    proxies: TrustedProxies,
}

impl FailedAuthentications {
    pub fn new(per_minute: u32, proxies: TrustedProxies) -> Self {
        Self {
            failures: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(WINDOW)
                .build(),
            per_minute: per_minute.max(1),
            proxies,
        }
    }

    /// The client address of `request` (its peer, or what a trusted proxy says).
    pub fn client_ip(&self, request: &Request) -> IpAddr {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
        self.proxies.client_ip(peer, request.headers())
    }

    /// `Some(seconds to wait)` when `ip` has failed too often this window.
    pub fn throttled(&self, ip: IpAddr) -> Option<u64> {
        let entry = self.failures.get(&ip)?;
        let (since, count) = &*entry;
        (count.load(Ordering::Relaxed) >= self.per_minute)
            .then(|| WINDOW.saturating_sub(since.elapsed()).as_secs().max(1))
    }

    pub fn failed(&self, ip: IpAddr) {
        let entry = self
            .failures
            .get_with(ip, || Arc::new((Instant::now(), AtomicU32::new(0))));
        entry.1.fetch_add(1, Ordering::Relaxed);
    }

    /// Runs `next` unless `ip` is throttled, and counts a failure if it answers 401.
    pub async fn guard(&self, ip: IpAddr, request: Request, next: Next) -> Response {
        if let Some(retry_after) = self.throttled(ip) {
            // Read before answering, or the gateway may answer 503 for us.
            crate::body_limit::discard(request.into_body()).await;
            return too_many(retry_after);
        }
        let response = next.run(request).await;
        if response.status() == StatusCode::UNAUTHORIZED {
            self.failed(ip);
        }
        response
    }
}

/// The layer (`axum::middleware::from_fn_with_state`) over routes that authenticate a key.
pub async fn layer(
    axum::extract::State(failures): axum::extract::State<Arc<FailedAuthentications>>,
    request: Request,
    next: Next,
) -> Response {
    let ip = failures.client_ip(&request);
    failures.guard(ip, request, next).await
}

fn too_many(retry_after: u64) -> Response {
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        Json(ErrorEnvelope::new(
            ErrorCode::RateLimited,
            format!(
                "too many failed authentications from this address; retry after {retry_after} s"
            ),
        )),
    )
        .into_response();
    response
        .headers_mut()
        .insert(axum::http::header::RETRY_AFTER, retry_after.into());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_past_the_limit_are_throttled_per_address() {
        let failed = FailedAuthentications::new(3, TrustedProxies::default());
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        for _ in 0..3 {
            assert_eq!(failed.throttled(a), None);
            failed.failed(a);
        }
        assert!(failed.throttled(a).is_some_and(|s| (1..=60).contains(&s)));
        assert_eq!(failed.throttled(b), None);
    }
}
