//! The webhook worker's consumer group: stored events that match a webhook become outbox
//! rows, written before the batch's offsets are committed. A crash in between reads the
//! batch again; its rows are there already and the outbox's key collapses them.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use linktrace_domain::EventRecord;
use linktrace_platform::kafka::{group, ObservedContext};
use linktrace_platform::shutdown;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::OwnedMessage;
use rdkafka::Message;
use tokio::sync::{watch, Notify};
use uuid::Uuid;

use crate::metrics::{ENQUEUED, NOT_STORED, SETTLE_WAIT};
use crate::outbox::{NewDelivery, Outbox};
use crate::payload;
use crate::settlement::{Position, Settlement};
use crate::subscriptions::Subscriptions;

/// How long to wait between looks at whether storage has caught up.
const SETTLE_POLL: Duration = Duration::from_millis(25);
/// The longest pause between retries of a failed Postgres step.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub struct Intake {
    pub consumer: Arc<StreamConsumer<ObservedContext>>,
    pub topic: String,
    pub settlement: Settlement,
    pub subscriptions: Arc<Subscriptions>,
    pub outbox: Outbox,
    pub wake: Arc<Notify>,
    pub max_events: usize,
    pub max_wait: Duration,
}

/// A matching event at its place on the stream, and the webhooks it goes to.
struct Matched {
    record: EventRecord,
    at: Position,
    webhooks: Vec<Uuid>,
}

impl Intake {
    /// Reads until `stop` says so; a batch in hand is left uncommitted (read again).
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            let gathered =
                group::gather(&self.consumer, self.max_events, self.max_wait, &mut stop).await;
            if !gathered.messages.is_empty() && !self.process(&gathered.messages, &mut stop).await {
                break;
            }
            if gathered.stopping {
                break;
            }
        }
        tracing::info!("webhook intake leaving the group");
        self.consumer.unsubscribe();
    }

    /// `false` when shutdown came before the batch was in the outbox (nothing committed).
    async fn process(&self, batch: &[OwnedMessage], stop: &mut watch::Receiver<bool>) -> bool {
        let started = std::time::Instant::now();
        let records = decode(batch);
        // The webhooks are read after the newest event of the batch was received, so a
        // webhook created (201) before an event was sent is always matched with it.
        let newest = records.iter().map(|(record, _)| record.received_at).max();
        if let Some(newest) = newest {
            let subscriptions = &self.subscriptions;
            if retry(stop, "read webhooks", || subscriptions.cover(newest))
                .await
                .is_none()
            {
                return false;
            }
        }
        let matched = self.matching(records);
        let mut settled_ms = 0;
        if !matched.is_empty() {
            let Some(deliveries) = self.stored_deliveries(&matched, stop).await else {
                return false;
            };
            settled_ms = started.elapsed().as_millis() as u64;
            let outbox = &self.outbox;
            let Some(new) = retry(stop, "write the outbox", || outbox.enqueue(&deliveries)).await
            else {
                return false;
            };
            ENQUEUED.inc_by(new);
            self.wake.notify_one();
        }
        let enqueued_ms = started.elapsed().as_millis() as u64;
        group::commit(&self.consumer, &self.topic, batch).await;
        tracing::debug!(
            messages = batch.len(),
            matched = matched.len(),
            settled_ms,
            enqueued_ms,
            committed_ms = started.elapsed().as_millis() as u64,
            "batch taken"
        );
        true
    }

    /// The batch's events some webhook subscribes to (undecodable messages are the storage
    /// consumer's to dead-letter; here they match nothing).
    fn matching(&self, records: Vec<(EventRecord, Position)>) -> Vec<Matched> {
        records
            .into_iter()
            .filter_map(|(record, at)| {
                // A repeated click is stored but not counted, and fires no webhook.
                let repeat = record
                    .client
                    .as_ref()
                    .and_then(|c| c.facts.as_ref())
                    .is_some_and(|f| f.repeat);
                if repeat {
                    return None;
                }
                let webhooks = self.subscriptions.matching(&record);
                (!webhooks.is_empty()).then_some(Matched {
                    record,
                    at,
                    webhooks,
                })
            })
            .collect()
    }

    /// Waits until storage has settled the matched events, then makes a delivery of each
    /// one stored at its own position, for each of its webhooks.
    async fn stored_deliveries(
        &self,
        matched: &[Matched],
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Vec<NewDelivery>> {
        let mut highest: HashMap<i32, i64> = HashMap::new();
        for m in matched {
            let entry = highest.entry(m.at.partition).or_insert(m.at.offset);
            *entry = (*entry).max(m.at.offset);
        }
        let waiting_since = std::time::Instant::now();
        loop {
            let waiting = retry(stop, "check storage", || {
                self.settlement.unsettled(&highest)
            })
            .await?;
            if waiting.is_empty() {
                SETTLE_WAIT.observe(waiting_since.elapsed().as_secs_f64());
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(SETTLE_POLL) => {}
                _ = shutdown::stopped(stop) => return None,
            }
        }
        let keys: Vec<(Uuid, Position)> =
            matched.iter().map(|m| (m.record.event_id, m.at)).collect();
        let stored = retry(stop, "read stored events", || {
            self.settlement.stored_at_position(&keys)
        })
        .await?;
        let mut deliveries = Vec::new();
        for m in matched {
            if !stored.contains(&(m.record.event_id, m.at)) {
                NOT_STORED.inc();
                continue;
            }
            let body = payload::body(&m.record);
            deliveries.extend(m.webhooks.iter().map(|webhook_id| NewDelivery {
                webhook_id: *webhook_id,
                event_id: m.record.event_id,
                event_name: m.record.event_name.clone(),
                body: body.clone(),
                received_at: m.record.received_at,
            }));
        }
        Some(deliveries)
    }
}

/// The batch's events and their places (undecodable messages are the storage consumer's to
/// dead-letter; here they are skipped).
fn decode(batch: &[OwnedMessage]) -> Vec<(EventRecord, Position)> {
    batch
        .iter()
        .filter_map(|message| {
            let record = EventRecord::from_json(message.payload().unwrap_or_default()).ok()?;
            Some((
                record,
                Position {
                    partition: message.partition(),
                    offset: message.offset(),
                },
            ))
        })
        .collect()
}

/// Runs `step` until it succeeds (transient failures of Postgres or ClickHouse: nothing is
/// committed meanwhile), with backoff; `None` when shutdown comes first.
async fn retry<T, E: std::fmt::Display, F, Fut>(
    stop: &mut watch::Receiver<bool>,
    what: &str,
    mut step: F,
) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut pause = Duration::from_millis(100);
    loop {
        match step().await {
            Ok(value) => return Some(value),
            Err(error) => {
                tracing::warn!(%error, step = what, retry_in_ms = pause.as_millis() as u64, "webhook intake step failed");
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = shutdown::stopped(stop) => return None,
                }
                pause = (pause * 2).min(MAX_BACKOFF);
            }
        }
    }
}
