//! The consume loop. At-least-once delivery from Kafka becomes exactly-once rows:
//!
//! 1. gather a batch (size and time bounds);
//! 2. decode; poison messages go to the dead-letter topic (acknowledged) and are skipped;
//! 3. drop copies: within the batch, seen lately on the partition (a producer retry's copy
//!    at a later offset), or entity events already stored (Postgres dedup index);
//! 4. write each partition's rows above ClickHouse's high-water mark for it, as runs of one
//!    INSERT each (see [`crate::exactly_once`]), retrying with bounded backoff while the
//!    partitions are paused — nothing is committed until the write succeeds. A run that
//!    ClickHouse refuses for its data is split in halves, in offset order, until the
//!    refused rows stand alone; they are dead-lettered with the reason and the rest is
//!    written, so one bad row never stalls a partition;
//! 5. mark entity tuples stored, then commit the offsets of the partitions it wrote.
//!
//! A crash between 4 and 5 redelivers the batch; its rows are at or below the high-water
//! mark then, so they are not written again: `count()` over `events` stays exact.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use linktrace_domain::EventRecord;
use linktrace_platform::kafka::{group, KafkaSink, ObservedContext};
use linktrace_platform::shutdown;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};
use rdkafka::Message;
use uuid::Uuid;

use crate::exactly_once::{self, HighWaterMarks};
use crate::metrics::{
    ALREADY_STORED, BATCH_LATENCY, BATCH_SIZE, CLICKHOUSE_ERRORS, COMMIT_LATENCY, CONSUMED,
    DEAD_LETTERED, DEDUPLICATED, WRITE_LATENCY, WRITTEN,
};
use crate::recent::RecentEvents;
use crate::row::{EventRow, StreamPosition};
use crate::stored::StoredEntities;
use crate::writer::{EventWriter, WriteError};

/// The batch's messages by where they sit on the stream (to dead-letter a refused row).
type Messages<'a> = HashMap<StreamPosition, &'a OwnedMessage>;

pub struct BatchLimits {
    pub max_events: usize,
    pub max_wait: Duration,
    pub max_backoff: Duration,
}

pub struct Pipeline {
    pub consumer: Arc<StreamConsumer<ObservedContext>>,
    pub topic: String,
    pub writer: Arc<dyn EventWriter>,
    pub stored: StoredEntities,
    pub recent: RecentEvents,
    pub dead_letters: KafkaSink,
    pub limits: BatchLimits,
    pub fault: FaultHook,
}

/// For tests of crash safety only: where the pipeline stops dead on purpose.
#[derive(Debug, Clone, Default)]
pub struct FaultHook {
    /// When set, after its first write the pipeline creates this file and then waits
    /// forever instead of committing, so that a test can SIGKILL it between the ClickHouse
    /// write and the offset commit.
    pub hold_before_commit: Option<std::path::PathBuf>,
}

impl Pipeline {
    /// Consumes until `shutdown` resolves; then flushes and commits the batch in hand and
    /// leaves the group. If ClickHouse is down at that moment, the unwritten batch is given
    /// up *uncommitted* (the group's next member reads it again) instead of blocking exit.
    pub async fn run(mut self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let (stop_sender, mut stop) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_sender.send(true);
        });
        let mut stopping = false;
        while !stopping {
            let gathered = group::gather(
                &self.consumer,
                self.limits.max_events,
                self.limits.max_wait,
                &mut stop,
            )
            .await;
            stopping = gathered.stopping;
            let batch = gathered.messages;
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
        &mut self,
        batch: Vec<OwnedMessage>,
        stop: &tokio::sync::watch::Receiver<bool>,
    ) -> bool {
        let started = Instant::now();
        let mut records = Vec::with_capacity(batch.len());
        for message in &batch {
            match EventRecord::from_json(message.payload().unwrap_or_default()) {
                Ok(record) => records.push((record, position(message))),
                Err(error) => {
                    self.dead_letter(message, error.reason(), &error.to_string())
                        .await
                }
            }
        }
        let rows = self.deduplicate(records).await;
        let entities: Vec<(StreamPosition, Uuid)> = rows
            .iter()
            .filter_map(|(row, entity)| entity.map(|id| (row.position(), id)))
            .collect();
        let mut rows: Vec<EventRow> = rows.into_iter().map(|(row, _)| row).collect();
        let messages: Messages = batch.iter().map(|m| (position(m), m)).collect();
        let Some(outcome) = self
            .write_until_done(&mut rows, &messages, stop.clone())
            .await
        else {
            return false;
        };
        let entity_ids: Vec<Uuid> = entities
            .into_iter()
            .filter(|(at, _)| {
                !outcome.revoked.contains(&at.partition) && !outcome.refused.contains(at)
            })
            .map(|(_, id)| id)
            .collect();
        if let Err(error) = self.stored.mark_stored(&entity_ids).await {
            // Ingest still answers "deduplicated" for queued tuples; only the
            // consumer-side pre-write check is weaker until the next mark.
            tracing::warn!(%error, "could not mark entity events stored");
        }
        if let Some(marker) = &self.fault.hold_before_commit {
            tracing::warn!(marker = %marker.display(), "fault hook: written, holding before the commit");
            let _ = std::fs::write(marker, b"written, not committed");
            std::future::pending::<()>().await;
        }
        let committing = Instant::now();
        self.commit(&batch).await;
        COMMIT_LATENCY.observe(committing.elapsed().as_secs_f64());
        BATCH_LATENCY.observe(started.elapsed().as_secs_f64());
        true
    }

    /// Drops copies within the batch, copies seen lately on the same partition, and entity
    /// events already stored. Returns each row with its event id when it is an entity event.
    async fn deduplicate(
        &mut self,
        records: Vec<(EventRecord, StreamPosition)>,
    ) -> Vec<(EventRow, Option<Uuid>)> {
        let mut unique = Vec::with_capacity(records.len());
        for (record, at) in records {
            if self.recent.first_sighting(at.partition, record.event_id) {
                unique.push((record, at));
            } else {
                DEDUPLICATED.inc();
            }
        }
        let entity_ids: Vec<Uuid> = unique
            .iter()
            .filter(|(r, _)| r.entity_id.is_some())
            .map(|(r, _)| r.event_id)
            .collect();
        let stored = match self.stored.already_stored(&entity_ids).await {
            Ok(stored) => stored,
            Err(error) => {
                // The offset high-water mark still keeps redeliveries out; losing an event
                // is worse than storing a repeat a client sent.
                tracing::warn!(%error, "dedup index unavailable; writing without it");
                HashSet::new()
            }
        };
        unique
            .into_iter()
            .filter(|(record, _)| {
                let keep = !stored.contains(&record.event_id);
                if !keep {
                    DEDUPLICATED.inc();
                }
                keep
            })
            .map(|(record, at)| {
                let entity = record.entity_id.as_ref().map(|_| record.event_id);
                (EventRow::new(&record, &self.topic, at), entity)
            })
            .collect()
    }

    /// Retries until the write succeeds or shutdown is asked for meanwhile (`None`).
    async fn write_until_done(
        &mut self,
        rows: &mut [EventRow],
        messages: &Messages<'_>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Option<WriteOutcome> {
        if rows.is_empty() {
            return Some(WriteOutcome::default());
        }
        let mut backoff = Duration::from_millis(100);
        let mut paused = false;
        loop {
            let started = Instant::now();
            match self.write_new_rows(rows, messages).await {
                Ok(outcome) => {
                    WRITE_LATENCY.observe(started.elapsed().as_secs_f64());
                    BATCH_SIZE.observe(outcome.written as f64);
                    WRITTEN.inc_by(outcome.written as u64);
                    if paused {
                        self.set_paused(false);
                    }
                    return Some(outcome);
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
                        _ = shutdown::stopped(&mut stop) => return None,
                    }
                    backoff = (backoff * 2).min(self.limits.max_backoff);
                }
            }
        }
    }

    /// One attempt: reads the high-water marks afresh (an earlier attempt may have stored
    /// some runs, or timed out here and succeeded on the server), then writes every run of
    /// a partition this consumer still owns above its mark. Partitions are written at the
    /// same time (their marks are their own), each one's runs in offset order (its mark
    /// must only ever cover rows written before it): a batch takes its slowest partition's
    /// time, not the sum (the 202 → visible delay under the batch endpoint's peak,
    /// bench/run.sh).
    async fn write_new_rows(
        &mut self,
        rows: &mut [EventRow],
        messages: &Messages<'_>,
    ) -> Result<WriteOutcome, WriteError> {
        let marks: HighWaterMarks = self.writer.high_water_marks(&self.topic).await?;
        let owned = self.owned_partitions();
        let mut outcome = WriteOutcome::default();
        let mut by_partition: Vec<(i32, Vec<&[EventRow]>)> = Vec::new();
        for run in exactly_once::runs(rows) {
            let partition = i32::from(run[0].kafka_partition);
            if !owned.contains(&partition) {
                // Revoked meanwhile: its new owner reads these again from the last commit.
                self.recent.forget(partition);
                outcome.revoked.insert(partition);
                continue;
            }
            let fresh = exactly_once::above_high_water(run, &marks);
            ALREADY_STORED.inc_by((run.len() - fresh.len()) as u64);
            if fresh.is_empty() {
                continue;
            }
            match by_partition.last_mut() {
                Some((last, runs)) if *last == partition => runs.push(fresh),
                _ => by_partition.push((partition, vec![fresh])),
            }
        }
        let this = &*self;
        let written =
            futures::future::try_join_all(by_partition.into_iter().map(|(_, runs)| async move {
                let mut outcome = WriteOutcome::default();
                for run in runs {
                    this.write_isolating(run, messages, &mut outcome).await?;
                }
                Ok::<_, WriteError>(outcome)
            }))
            .await?;
        for partition in written {
            outcome.written += partition.written;
            outcome.refused.extend(partition.refused);
        }
        Ok(outcome)
    }

    /// Writes `rows` (contiguous, in offset order); when ClickHouse refuses them for their
    /// data, writes each half in turn the same way, down to single rows, which are
    /// dead-lettered. Order is kept, so the high-water mark only ever covers rows that were
    /// written or dead-lettered before it.
    fn write_isolating<'a>(
        &'a self,
        rows: &'a [EventRow],
        messages: &'a Messages<'_>,
        outcome: &'a mut WriteOutcome,
    ) -> Pin<Box<dyn Future<Output = Result<(), WriteError>> + Send + 'a>> {
        Box::pin(async move {
            match self.writer.write(rows).await {
                Ok(()) => {
                    outcome.written += rows.len();
                    Ok(())
                }
                Err(WriteError::Refused(reason)) if rows.len() == 1 => {
                    let at = rows[0].position();
                    if let Some(message) = messages.get(&at) {
                        self.dead_letter(message, "clickhouse_refused", &reason)
                            .await;
                    }
                    outcome.refused.insert(at);
                    Ok(())
                }
                Err(WriteError::Refused(reason)) => {
                    tracing::warn!(%reason, rows = rows.len(), "ClickHouse refused rows; isolating them");
                    let (left, right) = rows.split_at(rows.len() / 2);
                    self.write_isolating(left, messages, outcome).await?;
                    self.write_isolating(right, messages, outcome).await
                }
                Err(retryable) => Err(retryable),
            }
        })
    }

    /// The partitions of our topic assigned to this member now.
    fn owned_partitions(&self) -> HashSet<i32> {
        group::owned_partitions(&self.consumer, &self.topic)
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

    /// Commits the batch's offsets for the partitions this member still owns. A failed
    /// commit means the batch is read again; its rows are at or below the high-water mark
    /// by then, so none is written twice.
    async fn commit(&self, batch: &[OwnedMessage]) {
        group::commit(&self.consumer, &self.topic, batch).await;
    }
}

/// What one successful write did.
#[derive(Debug, Default)]
struct WriteOutcome {
    written: usize,
    /// Partitions skipped because they were revoked meanwhile.
    revoked: HashSet<i32>,
    /// Rows ClickHouse refused, dead-lettered.
    refused: HashSet<StreamPosition>,
}

fn position(message: &OwnedMessage) -> StreamPosition {
    StreamPosition {
        partition: message.partition(),
        offset: message.offset(),
    }
}
