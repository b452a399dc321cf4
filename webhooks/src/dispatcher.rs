//! Claims due deliveries and makes their attempts. Each webhook has its own slots
//! (`WEBHOOK_CONCURRENCY_PER_ENDPOINT`): the claim offers every webhook only its free ones,
//! so an endpoint that hangs until the timeout holds its own slots and no one else's. The
//! worker as a whole has `WEBHOOK_MAX_IN_FLIGHT`: what is free of it is offered to the
//! webhooks in turn, starting from a different one each time, so no tenant's endpoints can
//! take every slot for good.

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
        let mut turn = 0;
        let tasks = TaskTracker::new();
        while !*stop.borrow() {
            let claimed = match self.claim(&in_flight, &mut turn).await {
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

    async fn claim(
        &self,
        in_flight: &InFlight,
        turn: &mut usize,
    ) -> Result<Vec<Claimed>, sqlx::Error> {
        self.subscriptions.refresh().await?;
        let budgets = {
            let busy = in_flight.lock().expect("not poisoned");
            budgets(
                self.subscriptions.webhook_ids(),
                &busy,
                self.delivery.concurrency_per_endpoint,
                self.delivery.max_in_flight,
                turn,
            )
        };
        if budgets.is_empty() {
            return Ok(Vec::new());
        }
        self.outbox.claim(&budgets, self.delivery.lease()).await
    }
}

/// What each webhook may claim now: its free slots, within what is free of the worker's
/// `max_in_flight`, handed out from a different webhook each call (`turn`).
fn budgets(
    mut webhooks: Vec<Uuid>,
    busy: &HashMap<Uuid, u16>,
    per_endpoint: u16,
    max_in_flight: u32,
    turn: &mut usize,
) -> Vec<(Uuid, i32)> {
    let in_flight: u32 = busy.values().map(|&n| u32::from(n)).sum();
    let mut free = max_in_flight.max(1).saturating_sub(in_flight);
    if webhooks.is_empty() || free == 0 {
        return Vec::new();
    }
    webhooks.sort_unstable();
    let start = *turn % webhooks.len();
    webhooks.rotate_left(start);
    *turn = turn.wrapping_add(1);
    let mut out = Vec::new();
    for id in webhooks {
        if free == 0 {
            break;
        }
        let own = per_endpoint
            .max(1)
            .saturating_sub(busy.get(&id).copied().unwrap_or(0));
        let take = u32::from(own).min(free);
        if take > 0 {
            free -= take;
            out.push((id, take as i32));
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_stay_within_each_endpoint_and_the_worker() {
        let ids: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
        let mut busy = HashMap::new();
        let mut turn = 0;
        let total = |b: &[(Uuid, i32)]| b.iter().map(|(_, n)| n).sum::<i32>();
        let all = budgets(ids.clone(), &busy, 16, 1000, &mut turn);
        assert_eq!((all.len(), total(&all)), (4, 64));
        let capped = budgets(ids.clone(), &busy, 16, 20, &mut turn);
        assert_eq!(total(&capped), 20);
        busy.insert(ids[0], 16);
        busy.insert(ids[1], 3);
        let rest = budgets(ids.clone(), &busy, 16, 20, &mut turn);
        assert_eq!(total(&rest), 1, "19 of 20 in flight");
        assert!(
            !rest.iter().any(|(id, _)| *id == ids[0]),
            "a full endpoint gets none"
        );
        busy.insert(ids[2], 1);
        assert!(budgets(ids.clone(), &busy, 16, 20, &mut turn).is_empty());
        // Turns: with room for one at a time, every webhook gets its turn.
        let mut seen = std::collections::HashSet::new();
        let mut turn = 0;
        for _ in 0..4 {
            let one = budgets(ids.clone(), &HashMap::new(), 16, 1, &mut turn);
            seen.insert(one[0].0);
        }
        assert_eq!(seen.len(), 4);
    }
}
