//! Per-key request rate limiting: a burst-tolerant token bucket per API key (account and
//! environment), in process, for ingest (events) and the api (requests). Over the limit
//! answers `429 RATE_LIMITED` with `Retry-After`. Distinct from the monthly quota, which is
//! about stored events, not rate.
//!
//! Approximate across instances: each instance keeps its own buckets, so N instances behind
//! a balancer allow up to N times the rate (what a token bucket in Postgres or Redis would
//! make exact, at a round trip per request).

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
    /// `per_second == 0` turns limiting off; the bucket holds `burst` units.
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
        self.check_n(account_id, environment, 1)
    }

    /// As [`Self::check`], for `n` units at once (a batch's events). More than the bucket
    /// can ever hold waits a second, as an empty bucket would.
    pub fn check_n(
        &self,
        account_id: Uuid,
        environment: Environment,
        n: u32,
    ) -> Result<(), Duration> {
        let (Some(limiter), Some(n)) = (&self.limiter, NonZeroU32::new(n)) else {
            return Ok(());
        };
        match limiter.check_key_n(&(account_id, environment), n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(not_until.wait_time_from(self.clock.now())),
            Err(_insufficient) => Err(Duration::from_secs(1)),
        }
    }

    /// Seconds for a `Retry-After` header: at least one.
    pub fn retry_after_secs(wait: Duration) -> u64 {
        wait.as_secs_f64().ceil().max(1.0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_takes_as_many_units_as_it_has_events() {
        let limiter = KeyRateLimiter::new(10, 10);
        let key = (Uuid::new_v4(), Environment::Live);
        assert!(limiter.check_n(key.0, key.1, 8).is_ok());
        assert!(limiter.check_n(key.0, key.1, 3).is_err(), "8 + 3 > 10");
        assert!(limiter.check_n(key.0, key.1, 2).is_ok());
        assert!(limiter.check(key.0, key.1).is_err());
        assert!(
            limiter.check_n(key.0, key.1, 11).is_err(),
            "more than a bucket"
        );
        assert!(
            limiter.check(Uuid::new_v4(), Environment::Live).is_ok(),
            "per key"
        );
        assert!(KeyRateLimiter::new(0, 0)
            .check_n(key.0, key.1, 1_000_000)
            .is_ok());
    }
}
