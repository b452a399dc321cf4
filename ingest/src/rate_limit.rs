//! Per-key request rate limiting: a burst-tolerant token bucket per API key (account and
//! environment), in process. Over the limit answers `429 RATE_LIMITED` with `Retry-After`.
//! Distinct from the monthly quota, which is about stored events, not request rate.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use linktrace_domain::Environment;
use uuid::Uuid;

pub struct KeyRateLimiter {
    limiter: Option<DefaultKeyedRateLimiter<(Uuid, Environment)>>,
    clock: DefaultClock,
}

impl KeyRateLimiter {
    /// `per_second == 0` turns limiting off; the bucket holds `burst` requests.
    pub fn new(per_second: u32, burst: u32) -> Self {
        let limiter = NonZeroU32::new(per_second).map(|rate| {
            let burst = NonZeroU32::new(burst.max(per_second)).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Self {
            limiter,
            clock: DefaultClock::default(),
        }
    }

    /// `Err(wait)` when this key must wait before its next request.
    pub fn check(&self, account_id: Uuid, environment: Environment) -> Result<(), Duration> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter
            .check_key(&(account_id, environment))
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}
