//! The consume loop. At-least-once delivery from Kafka becomes exactly-once storage:
//!
//! 1. gather a batch (size and time bounds);
//! 2. decode; poison messages go to the dead-letter topic (acknowledged) and are skipped;
//! 3. drop events already in the batch or already stored (entity events, via Postgres);
//! 4. write the batch to ClickHouse, retrying with bounded backoff while the partitions are
//!    paused — nothing is committed until the write succeeds;
//! 5. mark entity tuples stored, then commit the batch's offsets.
//!
//! A crash between 4 and 5 redelivers the batch; every event keeps its `event_id`, so the
//! ReplacingMergeTree collapses the copies and reads that count `uniqExact(event_id)` are
//! exact in the meantime.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use linktrace_domain::EventRecord;
use linktrace_platform::kafka::KafkaSink;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};
use rdkafka::{Message, Offset, TopicPartitionList};
use uuid::Uuid;

use crate::context::ObservedContext;
use crate::metrics::{
    BATCH_SIZE, CLICKHOUSE_ERRORS, CONSUMED, DEAD_LETTERED, DEDUPLICATED, WRITE_LATENCY, WRITTEN,
};
use crate::row::EventRow;
use crate::stored::StoredEntities;
use crate::writer::EventWriter;

/// Resolves once shutdown has been asked for (the guard `wait_for` returns is not `Send`,
/// so it is dropped here).
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

pub struct BatchLimits {
    pub max_events: usize,
    pub max_wait: Duration,
    pub max_backoff: Duration,
}

pub struct Pipeline {
    pub consumer: Arc<StreamConsumer<ObservedContext>>,
    pub writer: Arc<dyn EventWriter>,
    pub stored: StoredEntities,
    pub dead_letters: KafkaSink,
    pub limits: BatchLimits,
}

impl Pipeline {
    /// Consumes until `shutdown` resolves; then flushes and commits the batch in hand and
    /// leaves the group. If ClickHouse is down at that moment, the unwritten batch is given
    /// up *uncommitted* (the group's next member reads it again) instead of blocking exit.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let (stop_sender, mut stop) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_sender.send(true);
        });
        let mut stopping = false;
        while !stopping {
            let mut batch: Vec<OwnedMessage> = Vec::new();
            // Wait for the first message of a batch, or for shutdown.
            tokio::select! {
                _ = stopped(&mut stop) => stopping = true,
                message = self.consumer.recv() => match message {
                    Ok(message) => batch.push(message.detach()),
                    Err(error) => {
                        tracing::warn!(%error, "consume error; the client reconnects by itself");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                },
            }
            // Fill it until it is full or old enough.
            let deadline = tokio::time::Instant::now() + self.limits.max_wait;
            while !stopping && !batch.is_empty() && batch.len() < self.limits.max_events {
                tokio::select! {
                    _ = stopped(&mut stop) => stopping = true,
                    _ = tokio::time::sleep_until(deadline) => break,
                    message = self.consumer.recv() => match message {
                        Ok(message) => batch.push(message.detach()),
                        Err(error) => tracing::warn!(%error, "consume error"),
                    },
                }
            }
            if !batch.is_empty() {
                CONSUMED.inc_by(batch.len() as u64);
                if !self.process(batch, &stop).await {
                    tracing::warn!("shutting down with an unwritten batch; it stays uncommitted and is read again");
                    break;
                }
            }
        }
        tracing::info!("consumer leaving the group");
        self.consumer.unsubscribe();
    }

    /// Writes and commits `batch`; `false` when shutdown came while ClickHouse was failing,
    /// in which case nothing was committed.
    async fn process(
        &self,
        batch: Vec<OwnedMessage>,
        stop: &tokio::sync::watch::Receiver<bool>,
    ) -> bool {
        let mut records: Vec<EventRecord> = Vec::with_capacity(batch.len());
        for message in &batch {
            match EventRecord::from_json(message.payload().unwrap_or_default()) {
                Ok(record) => records.push(record),
                Err(error) => {
                    self.dead_letter(message, error.reason(), &error.to_string())
                        .await
                }
            }
        }
        let rows = self.deduplicate(records).await;
        if !rows.is_empty() {
            let rows_only: Vec<EventRow> = rows.iter().map(|(row, _)| row.clone()).collect();
            if !self.write_until_done(&rows_only, stop.clone()).await {
                return false;
            }
            let entity_ids: Vec<Uuid> = rows
                .iter()
                .filter_map(|(_, entity_id)| *entity_id)
                .collect();
            if let Err(error) = self.stored.mark_stored(&entity_ids).await {
                // Ingest still answers "deduplicated" for queued tuples; only the
                // consumer-side pre-write check is weaker until the next mark.
                tracing::warn!(%error, "could not mark entity events stored");
            }
        }
        self.commit(&batch).await;
        true
    }

    /// Drops copies within the batch and entity events already stored. Returns each row with
    /// its event id when it is an entity event.
    async fn deduplicate(&self, records: Vec<EventRecord>) -> Vec<(EventRow, Option<Uuid>)> {
        let mut seen = HashSet::with_capacity(records.len());
        let mut unique = Vec::with_capacity(records.len());
        for record in records {
            if seen.insert(record.event_id) {
                unique.push(record);
            } else {
                DEDUPLICATED.inc();
            }
        }
        let entity_ids: Vec<Uuid> = unique
            .iter()
            .filter(|r| r.entity_id.is_some())
            .map(|r| r.event_id)
            .collect();
        let stored = match self.stored.already_stored(&entity_ids).await {
            Ok(stored) => stored,
            Err(error) => {
                // Writing a copy is safe (it collapses by event id); losing one is not.
                tracing::warn!(%error, "dedup index unavailable; writing without it");
                HashSet::new()
            }
        };
        unique
            .into_iter()
            .filter(|record| {
                let keep = !stored.contains(&record.event_id);
                if !keep {
                    DEDUPLICATED.inc();
                }
                keep
            })
            .map(|record| {
                let entity = record.entity_id.as_ref().map(|_| record.event_id);
                (EventRow::from(&record), entity)
            })
            .collect()
    }

    /// Retries until the write succeeds (`true`) or shutdown is asked for meanwhile (`false`).
    async fn write_until_done(
        &self,
        rows: &[EventRow],
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> bool {
        let mut backoff = Duration::from_millis(100);
        let mut paused = false;
        loop {
            let started = Instant::now();
            match self.writer.write(rows).await {
                Ok(()) => {
                    WRITE_LATENCY.observe(started.elapsed().as_secs_f64());
                    BATCH_SIZE.observe(rows.len() as f64);
                    WRITTEN.inc_by(rows.len() as u64);
                    if paused {
                        self.set_paused(false);
                    }
                    return true;
                }
                Err(error) => {
                    CLICKHOUSE_ERRORS.inc();
                    tracing::warn!(error = %error, retry_in_ms = backoff.as_millis() as u64, rows = rows.len(), "ClickHouse write failed");
                    if !paused {
                        self.set_paused(true);
                        paused = true;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stopped(&mut stop) => return false,
                    }
                    backoff = (backoff * 2).min(self.limits.max_backoff);
                }
            }
        }
    }

    /// Stops (or resumes) fetching for every assigned partition while ClickHouse is down.
    fn set_paused(&self, pause: bool) {
        let Ok(assignment) = self.consumer.assignment() else {
            return;
        };
        let result = if pause {
            self.consumer.pause(&assignment)
        } else {
            self.consumer.resume(&assignment)
        };
        match result {
            Ok(()) => tracing::info!(
                paused = pause,
                partitions = assignment.count(),
                "partitions paused/resumed"
            ),
            Err(error) => tracing::warn!(%error, "could not pause/resume partitions"),
        }
    }

    async fn dead_letter(&self, message: &OwnedMessage, reason: &'static str, detail: &str) {
        let partition = message.partition().to_string();
        let offset = message.offset().to_string();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "dlq-reason",
                value: Some(reason),
            })
            .insert(Header {
                key: "dlq-detail",
                value: Some(detail),
            })
            .insert(Header {
                key: "dlq-source-topic",
                value: Some(message.topic()),
            })
            .insert(Header {
                key: "dlq-source-partition",
                value: Some(partition.as_str()),
            })
            .insert(Header {
                key: "dlq-source-offset",
                value: Some(offset.as_str()),
            });
        let mut backoff = Duration::from_millis(100);
        // The poison message's offset is committed only once the dead-letter topic has it.
        while let Err(error) = self
            .dead_letters
            .send_raw(message.key(), message.payload(), headers.clone())
            .await
        {
            tracing::warn!(%error, "could not dead-letter a message; retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.limits.max_backoff);
        }
        DEAD_LETTERED.with_label_values(&[reason]).inc();
        tracing::warn!(
            reason,
            detail,
            topic = message.topic(),
            partition = message.partition(),
            offset = message.offset(),
            "message dead-lettered"
        );
    }

    async fn commit(&self, batch: &[OwnedMessage]) {
        let mut next: HashMap<(&str, i32), i64> = HashMap::new();
        for message in batch {
            let entry = next
                .entry((message.topic(), message.partition()))
                .or_insert(0);
            *entry = (*entry).max(message.offset() + 1);
        }
        let mut offsets = TopicPartitionList::new();
        for ((topic, partition), offset) in next {
            if let Err(error) =
                offsets.add_partition_offset(topic, partition, Offset::Offset(offset))
            {
                tracing::warn!(%error, "bad offset");
            }
        }
        // A synchronous commit waits for the broker, for as long as it is away: off the
        // async workers, so that only this pipeline waits, not /healthz or /metrics.
        let consumer = Arc::clone(&self.consumer);
        let committed =
            tokio::task::spawn_blocking(move || consumer.commit(&offsets, CommitMode::Sync)).await;
        match committed {
            Ok(Ok(())) => {}
            // After a rebalance the new owner re-reads from the last commit; the copies it
            // writes collapse by event id.
            Ok(Err(error)) => tracing::warn!(%error, "offset commit failed"),
            Err(error) => tracing::warn!(%error, "offset commit task failed"),
        }
    }
}
