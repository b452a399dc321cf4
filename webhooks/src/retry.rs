//! When a failed delivery is tried again: exponential backoff with jitter, capped, for at
//! least the configured window; after it the delivery is given up and shown as failed.

use std::time::Duration;

use chrono::{DateTime, Utc};
use envconfig::Envconfig;
use rand::Rng;

#[derive(Envconfig, Clone, Copy, Debug)]
pub struct RetryConfig {
    /// The pause after the first failed attempt; each later one doubles it…
    #[envconfig(from = "WEBHOOK_RETRY_INITIAL_MS", default = "10000")]
    pub initial_ms: u64,
    /// …up to this.
    #[envconfig(from = "WEBHOOK_RETRY_MAX_INTERVAL_MS", default = "3600000")]
    pub max_interval_ms: u64,
    /// Failed attempts are retried until the delivery is this old (24 h and more).
    #[envconfig(from = "WEBHOOK_RETRY_FOR_SECS", default = "86400")]
    pub retry_for_secs: u64,
}

/// What follows a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    RetryAt(DateTime<Utc>),
    GiveUp,
}

impl RetryConfig {
    /// After the `attempts`-th failed attempt (1-based) of a delivery created at `created`.
    pub fn after_failure(
        &self,
        attempts: u32,
        created: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> AfterFailure {
        let age = now
            .signed_duration_since(created)
            .to_std()
            .unwrap_or_default();
        if age >= Duration::from_secs(self.retry_for_secs) {
            return AfterFailure::GiveUp;
        }
        let pause = self.pause(attempts);
        // ±20% so that the deliveries an outage failed together do not return together.
        let jittered = pause.mul_f64(rand::thread_rng().gen_range(0.8..=1.2));
        AfterFailure::RetryAt(now + chrono::Duration::from_std(jittered).unwrap_or_default())
    }

    /// The pause before the next attempt, without jitter.
    pub fn pause(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(32);
        let pause = self.initial_ms.saturating_mul(1u64 << doublings);
        Duration::from_millis(pause.min(self.max_interval_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> RetryConfig {
        RetryConfig::init_from_hashmap(&Default::default()).unwrap()
    }

    #[test]
    fn pauses_double_up_to_the_cap() {
        let retry = defaults();
        let pauses: Vec<u64> = (1..=12).map(|n| retry.pause(n).as_secs()).collect();
        assert_eq!(
            pauses,
            [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600, 3600]
        );
        assert_eq!(retry.pause(1000).as_secs(), 3600, "no overflow");
    }

    #[test]
    fn retries_go_on_for_a_day_then_stop() {
        let retry = defaults();
        let created = Utc::now();
        // Simulate a dead endpoint: every attempt fails at its scheduled time.
        let mut now = created;
        let mut attempts = 0;
        loop {
            attempts += 1;
            match retry.after_failure(attempts, created, now) {
                AfterFailure::RetryAt(next) => {
                    assert!(next > now);
                    now = next;
                }
                AfterFailure::GiveUp => break,
            }
        }
        let span = now - created;
        assert!(span >= chrono::Duration::hours(24), "{span}");
        assert!(span <= chrono::Duration::hours(26), "{span}");
        assert!((25..=45).contains(&attempts), "{attempts} attempts");
    }
}
