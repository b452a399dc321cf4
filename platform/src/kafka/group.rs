//! What a consumer-group member does around its own work: gather a batch (bounded in size
//! and time, interrupted by shutdown), know which partitions it owns, and commit a batch's
//! offsets for those only, once the work is done.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::message::OwnedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::watch;

use crate::shutdown::stopped;

/// A batch, and whether shutdown came while it was gathered.
pub struct Gathered {
    pub messages: Vec<OwnedMessage>,
    pub stopping: bool,
}

/// Waits for a first message (or shutdown), then gathers until the batch holds
/// `max_events` or its first message has waited `max_wait`.
pub async fn gather<C: ConsumerContext + 'static>(
    consumer: &StreamConsumer<C>,
    max_events: usize,
    max_wait: Duration,
    stop: &mut watch::Receiver<bool>,
) -> Gathered {
    let mut messages: Vec<OwnedMessage> = Vec::new();
    let mut stopping = false;
    tokio::select! {
        _ = stopped(stop) => stopping = true,
        message = consumer.recv() => match message {
            Ok(message) => messages.push(message.detach()),
            Err(error) => {
                tracing::warn!(%error, "consume error; the client reconnects by itself");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        },
    }
    let deadline = tokio::time::Instant::now() + max_wait;
    while !stopping && !messages.is_empty() && messages.len() < max_events {
        tokio::select! {
            _ = stopped(stop) => stopping = true,
            _ = tokio::time::sleep_until(deadline) => break,
            message = consumer.recv() => match message {
                Ok(message) => messages.push(message.detach()),
                Err(error) => tracing::warn!(%error, "consume error"),
            },
        }
    }
    Gathered { messages, stopping }
}

/// The partitions of `topic` assigned to this member now.
pub fn owned_partitions<C: ConsumerContext>(
    consumer: &StreamConsumer<C>,
    topic: &str,
) -> HashSet<i32> {
    consumer
        .assignment()
        .map(|list| {
            list.elements()
                .iter()
                .filter(|e| e.topic() == topic)
                .map(|e| e.partition())
                .collect()
        })
        .unwrap_or_default()
}

/// Commits `batch`'s offsets for the partitions of `topic` this member still owns (a
/// revoked partition's messages are its new owner's to commit). A failed commit only means
/// the batch is read again.
pub async fn commit<C: ConsumerContext + 'static>(
    consumer: &Arc<StreamConsumer<C>>,
    topic: &str,
    batch: &[OwnedMessage],
) {
    let owned = owned_partitions(consumer, topic);
    let mut next: HashMap<(&str, i32), i64> = HashMap::new();
    for message in batch.iter().filter(|m| owned.contains(&m.partition())) {
        let entry = next
            .entry((message.topic(), message.partition()))
            .or_insert(0);
        *entry = (*entry).max(message.offset() + 1);
    }
    let mut offsets = TopicPartitionList::new();
    for ((topic, partition), offset) in next {
        if let Err(error) = offsets.add_partition_offset(topic, partition, Offset::Offset(offset)) {
            tracing::warn!(%error, "bad offset");
        }
    }
    // A synchronous commit waits for the broker, for as long as it is away: off the async
    // workers, so that only this member's loop waits, not /healthz or /metrics.
    let consumer = Arc::clone(consumer);
    let committed =
        tokio::task::spawn_blocking(move || consumer.commit(&offsets, CommitMode::Sync)).await;
    match committed {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(%error, "offset commit failed"),
        Err(error) => tracing::warn!(%error, "offset commit task failed"),
    }
}
