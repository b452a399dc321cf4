//! Claims due deliveries and makes their attempts. Each webhook has its own slots
//! (`WEBHOOK_CONCURRENCY_PER_ENDPOINT`): the claim offers every webhook only its free ones,
//! so an endpoint that hangs until the timeout holds its own slots and no one else's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{watch, Notify};
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::delivery::{AttemptResult, Deliverer, DeliveryConfig};
use crate::metrics::{ATTEMPTS, ATTEMPT_DURATION, DELIVERY_DELAY};
use crate::outbox::{Claimed, Outbox, Outcome};
use crate::retry::{AfterFailure, RetryConfig};
use crate::subscriptions::Subscriptions;

/// How often the dispatcher looks for retries that came due when nothing woke it.
const IDLE_POLL: Duration = Duration::from_millis(250);

pub struct Dispatcher {
    pub outbox: Outbox,
    pub deliverer: Arc<Deliverer>,
    pub delivery: DeliveryConfig,
    pub retry: RetryConfig,
    pub subscriptions: Arc<Subscriptions>,
    /// Rung by the intake (new rows) and by finished attempts (free slots).
    pub wake: Arc<Notify>,
}

type InFlight = Arc<Mutex<HashMap<Uuid, u16>>>;

impl Dispatcher {
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let in_flight: InFlight = Arc::default();
        let tasks = TaskTracker::new();
        while !*stop.borrow() {
            let claimed = match self.claim(&in_flight).await {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::warn!(%error, "could not claim deliveries; retrying");
                    Vec::new()
                }
            };
            for delivery in claimed {
                *in_flight
                    .lock()
                    .expect("not poisoned")
                    .entry(delivery.webhook_id)
                    .or_default() += 1;
                tasks.spawn(attempt(
                    delivery,
                    self.deliverer.clone(),
                    self.outbox.clone(),
                    self.retry,
                    in_flight.clone(),
                    self.wake.clone(),
                ));
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
                _ = linktrace_platform::shutdown::stopped(&mut stop) => {}
            }
        }
        tasks.close();
        // Attempts in flight end within their timeout; a row left unrecorded is leased and
        // is tried again once its lease runs out.
        if tokio::time::timeout(self.delivery.lease(), tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(in_flight = tasks.len(), "stopped with attempts in flight");
        }
    }

    async fn claim(&self, in_flight: &InFlight) -> Result<Vec<Claimed>, sqlx::Error> {
        self.subscriptions.refresh().await?;
        let per_endpoint = self.delivery.concurrency_per_endpoint.max(1);
        let budgets: Vec<(Uuid, i32)> = {
            let busy = in_flight.lock().expect("not poisoned");
            self.subscriptions
                .webhook_ids()
                .into_iter()
                .filter_map(|id| {
                    let free = per_endpoint.saturating_sub(busy.get(&id).copied().unwrap_or(0));
                    (free > 0).then_some((id, i32::from(free)))
                })
                .collect()
        };
        self.outbox.claim(&budgets, self.delivery.lease()).await
    }
}

async fn attempt(
    claimed: Claimed,
    deliverer: Arc<Deliverer>,
    outbox: Outbox,
    retry: RetryConfig,
    in_flight: InFlight,
    wake: Arc<Notify>,
) {
    let result = deliverer.attempt(&claimed).await;
    ATTEMPT_DURATION.observe(result.took.as_secs_f64());
    let outcome = outcome(&claimed, &result, &retry);
    match outcome {
        Outcome::Delivered => {
            ATTEMPTS.with_label_values(&["delivered"]).inc();
            let delay = Utc::now() - claimed.received_at;
            DELIVERY_DELAY.observe(delay.num_milliseconds().max(0) as f64 / 1000.0);
        }
        Outcome::RetryAt(at) => {
            ATTEMPTS.with_label_values(&["retried"]).inc();
            tracing::info!(webhook = %claimed.webhook_id, event = %claimed.event_id, attempt = claimed.attempts, error = result.error.as_deref(), next_attempt = %at, "delivery failed; retrying later");
        }
        Outcome::Failed => {
            ATTEMPTS.with_label_values(&["failed"]).inc();
            tracing::warn!(webhook = %claimed.webhook_id, event = %claimed.event_id, attempts = claimed.attempts, error = result.error.as_deref(), "delivery given up");
        }
    }
    let mut pause = Duration::from_millis(100);
    for _ in 0..5 {
        match outbox
            .record(
                &claimed,
                outcome,
                result.response_code,
                result.error.as_deref(),
                result.took,
            )
            .await
        {
            Ok(()) => break,
            Err(error) => {
                // Unrecorded, the row stays leased and is tried again when the lease ends:
                // at least once, never lost.
                tracing::warn!(%error, "could not record an attempt; retrying");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
        }
    }
    if let Some(count) = in_flight
        .lock()
        .expect("not poisoned")
        .get_mut(&claimed.webhook_id)
    {
        *count = count.saturating_sub(1);
    }
    wake.notify_one();
}

fn outcome(claimed: &Claimed, result: &AttemptResult, retry: &RetryConfig) -> Outcome {
    if result.delivered {
        return Outcome::Delivered;
    }
    match retry.after_failure(
        u32::try_from(claimed.attempts).unwrap_or(1),
        claimed.created_at,
        Utc::now(),
    ) {
        AfterFailure::RetryAt(at) => Outcome::RetryAt(at),
        AfterFailure::GiveUp => Outcome::Failed,
    }
}
