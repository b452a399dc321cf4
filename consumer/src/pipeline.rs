//! The consume loop. At-least-once delivery from Kafka becomes exactly-once rows:
//!
//! 1. gather a batch (size and time bounds);
//! 2. decode; poison messages go to the dead-letter topic (acknowledged) and are skipped;
//! 3. take a lease on each partition new to this consumer in the stream ledger (Postgres),
//!    which fences its previous owner, and start its window of recent ids from the
//!    messages before the batch (see [`crate::recent`]);
//! 4. drop copies: within the batch, seen lately on the partition (a producer retry's copy
//!    at a later offset), or entity events already stored (Postgres dedup index);
//! 5. per partition: resolve a write left open (by us after an error, or by a previous
//!    owner that died), record the intent to write the rows above the ledger's settled
//!    offset — in the statement that checks the lease — and write them as runs of one
//!    INSERT each (see [`crate::exactly_once`]), then settle the ledger through the batch's
//!    last offset with the offsets it skipped. Failed writes are retried with bounded
//!    backoff while the partitions are paused. A run that ClickHouse refuses for its data
//!    is split in halves, in offset order, until the refused rows stand alone; they are
//!    dead-lettered with the reason and the rest is written;
//! 6. mark entity tuples stored, then commit the offsets of the partitions it wrote.
//!
//! A crash between 5 and 6 redelivers the batch; its rows are at or below the ledger's
//! settled offset then, so they are not written again: `count()` over `events` stays exact.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate};
use linktrace_domain::EventRecord;
use linktrace_platform::kafka::{group, KafkaConfig, KafkaSink, ObservedContext};
use linktrace_platform::shutdown;
use linktrace_platform::stream_ledger::{Lease, LedgerError, SkipReason, StreamLedger};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};
use rdkafka::Message;
use uuid::Uuid;

use crate::exactly_once;
use crate::metrics::{
    ALREADY_STORED, BATCH_LATENCY, BATCH_SIZE, CLICKHOUSE_ERRORS, COMMIT_LATENCY, CONSUMED,
    DEAD_LETTERED, DEDUPLICATED, FENCED, WRITE_LATENCY, WRITTEN,
};
use crate::recent::{self, RecentEvents};
use crate::reconcile::RollupChecks;
use crate::row::{EventRow, StreamPosition};
use crate::stored::StoredEntities;
use crate::writer::{write_tag, EventWriter, WriteError};

/// The batch's messages by where they sit on the stream (to dead-letter a refused row).
type Messages<'a> = HashMap<StreamPosition, &'a OwnedMessage>;

pub struct BatchLimits {
    pub max_events: usize,
    pub max_wait: Duration,
    pub max_backoff: Duration,
}

pub struct Pipeline {
    pub consumer: Arc<StreamConsumer<ObservedContext>>,
    pub kafka: KafkaConfig,
    pub topic: String,
    pub writer: Arc<dyn EventWriter>,
    pub stored: StoredEntities,
    pub recent: RecentEvents,
    pub ledger: StreamLedger,
    /// This consumer's name in the ledger.
    pub owner: String,
    /// The partitions this consumer holds a lease on.
    pub leases: HashMap<i32, Lease>,
    /// How long a write may take: the ClickHouse client gives up by then, and a write
    /// left open longer is resolved by whoever owns the partition next.
    pub write_deadline: Duration,
    pub dead_letters: KafkaSink,
    pub limits: BatchLimits,
    pub fault: FaultHook,
    /// Days a failed or resolved write touched, for the rollup reconciler.
    pub rollup_checks: RollupChecks,
}

/// One partition's share of a batch: every offset it holds, and which were dead-lettered
/// before writing (undecodable).
#[derive(Debug, Default, Clone)]
struct Span {
    offsets: Vec<i64>,
    dead_lettered: HashSet<i64>,
}

impl Span {
    fn first(&self) -> i64 {
        self.offsets.iter().copied().min().unwrap_or(-1)
    }

    fn last(&self) -> i64 {
        self.offsets.iter().copied().max().unwrap_or(-1)
    }
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
        let mut spans: HashMap<i32, Span> = HashMap::new();
        let mut records = Vec::with_capacity(batch.len());
        for message in &batch {
            let at = position(message);
            let span = spans.entry(at.partition).or_default();
            span.offsets.push(at.offset);
            match EventRecord::from_json(message.payload().unwrap_or_default()) {
                Ok(record) => records.push((record, at)),
                Err(error) => {
                    span.dead_lettered.insert(at.offset);
                    self.dead_letter(message, error.reason(), &error.to_string())
                        .await
                }
            }
        }
        if !self.take_leases(&spans, stop.clone()).await {
            return false;
        }
        let rows = self.deduplicate(records).await;
        let entities: Vec<(StreamPosition, Uuid)> = rows
            .iter()
            .filter_map(|(row, entity)| entity.map(|id| (row.position(), id)))
            .collect();
        let mut rows: Vec<EventRow> = rows.into_iter().map(|(row, _)| row).collect();
        let messages: Messages = batch.iter().map(|m| (position(m), m)).collect();
        let Some(outcome) = self
            .write_until_done(&mut rows, &spans, &messages, stop.clone())
            .await
        else {
            return false;
        };
        for partition in &outcome.revoked {
            self.leases.remove(partition);
            self.recent.forget(*partition);
        }
        let claim_keys: Vec<Uuid> = entities
            .into_iter()
            .filter(|(at, _)| {
                !outcome.revoked.contains(&at.partition) && !outcome.refused.contains(at)
            })
            .map(|(_, id)| id)
            .collect();
        if let Err(error) = self.stored.mark_stored(&claim_keys).await {
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

    /// Takes a lease on every partition of the batch that this consumer owns and holds no
    /// lease on, and forgets those it no longer owns. A partition new to this consumer
    /// starts its window of recent ids from the broker. `false` when shutdown came while
    /// Postgres was failing.
    async fn take_leases(
        &mut self,
        spans: &HashMap<i32, Span>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> bool {
        let owned = self.owned_partitions();
        self.leases.retain(|partition, _| owned.contains(partition));
        for partition in spans.keys() {
            if !owned.contains(partition) {
                self.recent.forget(*partition);
            }
        }
        let mut backoff = Duration::from_millis(100);
        for (&partition, span) in spans {
            if !owned.contains(&partition) || self.leases.contains_key(&partition) {
                continue;
            }
            loop {
                match self.take_lease(partition).await {
                    Ok(lease) => {
                        tracing::info!(
                            partition,
                            epoch = lease.epoch,
                            settled_through = lease.settled_through,
                            "partition leased"
                        );
                        self.leases.insert(partition, lease);
                        break;
                    }
                    Err(error) => {
                        tracing::warn!(%error, partition, "could not lease a partition; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = shutdown::stopped(&mut stop) => return false,
                        }
                        backoff = (backoff * 2).min(self.limits.max_backoff);
                    }
                }
            }
            if !self.recent.remembers(partition) {
                self.seed_recent(partition, span.first()).await;
            }
        }
        true
    }

    async fn take_lease(&self, partition: i32) -> anyhow::Result<Lease> {
        // A deployment that predates the ledger starts from what ClickHouse holds.
        let initial = if self.ledger.knows(partition).await? {
            -1
        } else {
            self.writer
                .stored_through(&self.topic, partition, 0, i64::MAX)
                .await?
                .unwrap_or(-1)
        };
        Ok(self.ledger.acquire(partition, &self.owner, initial).await?)
    }

    /// Starts `partition`'s window with the ids of the messages before `first`.
    async fn seed_recent(&mut self, partition: i32, first: i64) {
        let kafka = self.kafka.clone();
        let topic = self.topic.clone();
        let count = self.recent.capacity();
        let read = tokio::task::spawn_blocking(move || {
            recent::read_ids_before(
                &kafka,
                &topic,
                partition,
                first,
                count,
                Duration::from_secs(15),
            )
        })
        .await;
        match read {
            Ok(Ok(ids)) => {
                tracing::info!(
                    partition,
                    ids = ids.len(),
                    "recent ids read from before the hand-over"
                );
                self.recent.seed(partition, ids);
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, partition, "could not read the ids before the hand-over")
            }
            Err(error) => {
                tracing::warn!(%error, partition, "could not read the ids before the hand-over")
            }
        }
    }

    /// Drops copies within the batch, copies seen lately on the same partition, and entity
    /// events already stored. Returns each row with its claim key when it holds a claim.
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
        let claim_keys: Vec<Uuid> = unique
            .iter()
            .filter(|(r, _)| holds_claim(r))
            .map(|(r, _)| r.claim_key())
            .collect();
        let stored = match self.stored.already_stored(&claim_keys).await {
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
                let keep = !(holds_claim(record) && stored.contains(&record.claim_key()));
                if !keep {
                    DEDUPLICATED.inc();
                }
                keep
            })
            .map(|(record, at)| {
                let entity = holds_claim(&record).then(|| record.claim_key());
                (EventRow::new(&record, &self.topic, at), entity)
            })
            .collect()
    }

    /// Retries until the write succeeds or shutdown is asked for meanwhile (`None`).
    async fn write_until_done(
        &mut self,
        rows: &mut [EventRow],
        spans: &HashMap<i32, Span>,
        messages: &Messages<'_>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Option<WriteOutcome> {
        let mut backoff = Duration::from_millis(100);
        let mut paused = false;
        loop {
            let started = Instant::now();
            match self.write_new_rows(rows, spans, messages).await {
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
                    tracing::warn!(error = %error, retry_in_ms = backoff.as_millis() as u64, rows = rows.len(), "write failed");
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

    /// One attempt: every partition of the batch this consumer still owns and holds a
    /// lease on is written above its settled offset and settled (see
    /// [`Self::write_partition`]). Partitions are written at the same time (their ledger
    /// rows are their own), each one's runs in offset order: a batch takes its slowest
    /// partition's time, not the sum (the 202 → visible delay under the batch endpoint's
    /// peak, bench/run.sh).
    async fn write_new_rows(
        &mut self,
        rows: &mut [EventRow],
        spans: &HashMap<i32, Span>,
        messages: &Messages<'_>,
    ) -> Result<WriteOutcome, WriteError> {
        let owned = self.owned_partitions();
        let mut outcome = WriteOutcome::default();
        let mut by_partition: HashMap<i32, Vec<&[EventRow]>> = HashMap::new();
        for run in exactly_once::runs(rows) {
            by_partition
                .entry(i32::from(run[0].kafka_partition))
                .or_default()
                .push(run);
        }
        let mut work = Vec::new();
        for (&partition, span) in spans {
            match self.leases.get(&partition) {
                Some(lease) if owned.contains(&partition) => work.push((
                    lease.clone(),
                    span,
                    by_partition.remove(&partition).unwrap_or_default(),
                )),
                // Revoked (or never leased): its owner reads these again from the last commit.
                _ => {
                    outcome.revoked.insert(partition);
                }
            }
        }
        let this = &*self;
        let results = futures::future::join_all(
            work.into_iter()
                .map(|(lease, span, runs)| this.write_partition(lease, span, runs, messages)),
        )
        .await;
        let mut failure = None;
        for result in results {
            match result {
                Ok(PartitionOutcome::Settled {
                    lease,
                    written,
                    refused,
                }) => {
                    outcome.written += written;
                    outcome.refused.extend(refused);
                    self.leases.insert(lease.partition, lease);
                }
                Ok(PartitionOutcome::Fenced(partition)) => {
                    tracing::warn!(
                        partition,
                        "fenced: another consumer owns the partition now; not writing it"
                    );
                    FENCED.inc();
                    outcome.revoked.insert(partition);
                }
                Err(error) => failure = Some(error),
            }
        }
        match failure {
            // Settled partitions stay settled: the retry writes only what is left.
            Some(error) => Err(error),
            None => Ok(outcome),
        }
    }

    /// Writes one partition's share of the batch under `lease`:
    ///
    /// 1. reads the lease back from the ledger (fenced: stop here);
    /// 2. resolves a write left open — by this lease after an error (it may have landed
    ///    even so), or by an earlier owner whose deadline has passed — by asking storage
    ///    how far it got; an earlier owner's write still within its deadline is waited for;
    /// 3. begins the intent for the rows above the settled offset, writes them, and
    ///    settles through the span's last offset, naming the offsets skipped.
    async fn write_partition(
        &self,
        lease: Lease,
        span: &Span,
        runs: Vec<&[EventRow]>,
        messages: &Messages<'_>,
    ) -> Result<PartitionOutcome, WriteError> {
        let partition = lease.partition;
        let mut lease = match self.ledger.refresh(&lease).await {
            Ok(lease) => lease,
            Err(LedgerError::Fenced(_)) => return Ok(PartitionOutcome::Fenced(partition)),
            Err(error) => return Err(ledger_failed(error)),
        };
        if let Some(intent) = lease.intent.clone() {
            // The open write may have reached `events` without every rollup: its rows are
            // this span's (redelivered), so their days are checked.
            self.mark_rollup_days(runs.iter().flat_map(|run| run.iter()))
                .await?;
            if intent.epoch != lease.epoch && !intent.expired {
                // Its writer may be gone (SIGKILL): if the server is not running its INSERT,
                // the write is over, landed or not, and can be resolved now.
                let tag = write_tag(&self.topic, partition, intent.epoch, intent.from);
                if self.writer.in_flight(&tag).await? {
                    return Err(WriteError::Retryable(format!(
                        "partition {partition}: waiting for the previous owner's write of offsets {}..={} to settle",
                        intent.from, intent.to
                    )));
                }
            }
            let stored = self
                .writer
                .stored_through(&self.topic, partition, intent.from, intent.to)
                .await?;
            tracing::info!(
                partition,
                from = intent.from,
                to = intent.to,
                ?stored,
                "resolving an open write"
            );
            match self.ledger.resolve(&lease, &intent, stored).await {
                Ok(settled_through) => {
                    lease.settled_through = settled_through;
                    lease.intent = None;
                }
                Err(LedgerError::Fenced(_)) => return Ok(PartitionOutcome::Fenced(partition)),
                Err(error) => return Err(ledger_failed(error)),
            }
        }
        let last = span.last();
        if last <= lease.settled_through {
            ALREADY_STORED.inc_by(runs.iter().map(|run| run.len() as u64).sum());
            return Ok(PartitionOutcome::Settled {
                lease,
                written: 0,
                refused: HashSet::new(),
            });
        }
        let fresh: Vec<&[EventRow]> = runs
            .iter()
            .map(|run| exactly_once::above(run, lease.settled_through))
            .filter(|run| !run.is_empty())
            .collect();
        ALREADY_STORED.inc_by(
            (runs.iter().map(|r| r.len()).sum::<usize>()
                - fresh.iter().map(|r| r.len()).sum::<usize>()) as u64,
        );
        let mut outcome = WriteOutcome::default();
        if let Some(first) = fresh.first().map(|run| run[0].kafka_offset as i64) {
            match self
                .ledger
                .begin(&lease, first, last, self.write_deadline)
                .await
            {
                Ok(()) => {}
                Err(LedgerError::Fenced(_)) => return Ok(PartitionOutcome::Fenced(partition)),
                Err(error) => return Err(ledger_failed(error)),
            }
            let tag = write_tag(&self.topic, partition, lease.epoch, first);
            for run in &fresh {
                if let Err(error) = self
                    .write_isolating(run, &tag, messages, &mut outcome)
                    .await
                {
                    // It may have reached `events` and not every rollup.
                    if let Err(mark) = self.mark_rollup_days(run.iter()).await {
                        tracing::warn!(error = %mark, "could not mark the failed write's days for a rollup check");
                    }
                    self.close_after_failure(&lease, first, last).await;
                    return Err(error);
                }
            }
        }
        let written: HashSet<i64> = fresh
            .iter()
            .flat_map(|run| run.iter().map(|row| row.kafka_offset as i64))
            .filter(|offset| {
                !outcome.refused.contains(&StreamPosition {
                    partition,
                    offset: *offset,
                })
            })
            .collect();
        let mut skipped: Vec<(i64, SkipReason)> = span
            .offsets
            .iter()
            .filter(|&&offset| offset > lease.settled_through && !written.contains(&offset))
            .map(|&offset| {
                let dead = span.dead_lettered.contains(&offset)
                    || outcome
                        .refused
                        .contains(&StreamPosition { partition, offset });
                (
                    offset,
                    if dead {
                        SkipReason::DeadLettered
                    } else {
                        SkipReason::Copy
                    },
                )
            })
            .collect();
        skipped.sort_unstable_by_key(|(offset, _)| *offset);
        match self
            .ledger
            .settle(partition, lease.epoch, last, &skipped)
            .await
        {
            Ok(()) => {}
            // Our open write was resolved by the partition's next owner (we overran the
            // deadline): what it decided stands.
            Err(LedgerError::Fenced(_)) => return Ok(PartitionOutcome::Fenced(partition)),
            Err(error) => return Err(ledger_failed(error)),
        }
        lease.settled_through = last;
        lease.intent = None;
        Ok(PartitionOutcome::Settled {
            lease,
            written: outcome.written,
            refused: outcome.refused,
        })
    }

    /// Writes `rows` (contiguous, in offset order); when ClickHouse refuses them for their
    /// data, writes each half in turn the same way, down to single rows, which are
    /// dead-lettered. Order is kept, so the high-water mark only ever covers rows that were
    /// written or dead-lettered before it.
    fn write_isolating<'a>(
        &'a self,
        rows: &'a [EventRow],
        tag: &'a str,
        messages: &'a Messages<'_>,
        outcome: &'a mut WriteOutcome,
    ) -> Pin<Box<dyn Future<Output = Result<(), WriteError>> + Send + 'a>> {
        Box::pin(async move {
            match self.writer.write(rows, tag).await {
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
                    self.write_isolating(left, tag, messages, outcome).await?;
                    self.write_isolating(right, tag, messages, outcome).await
                }
                Err(retryable) => Err(retryable),
            }
        })
    }

    /// Marks the UTC days of `rows` for the rollup reconciler ([`crate::reconcile`]).
    async fn mark_rollup_days(
        &self,
        rows: impl Iterator<Item = &EventRow>,
    ) -> Result<(), WriteError> {
        let mut days: Vec<NaiveDate> = rows
            .filter_map(|row| DateTime::from_timestamp(row.event_time.into(), 0))
            .map(|at| at.date_naive())
            .collect();
        days.sort_unstable();
        days.dedup();
        self.rollup_checks.mark(&days).await.map_err(|error| {
            WriteError::Retryable(format!("marking days for a rollup check: {error}"))
        })
    }

    /// After a failed write, asks storage at once how far it got and closes the intent, so
    /// that no write is left open while this consumer backs off or leaves: the partition's
    /// next owner would wait for its deadline. When storage cannot answer (it is down), the
    /// intent stays open and is resolved later, by this consumer or the next owner.
    async fn close_after_failure(&self, lease: &Lease, from: i64, to: i64) {
        let stored = match self
            .writer
            .stored_through(&self.topic, lease.partition, from, to)
            .await
        {
            Ok(stored) => stored,
            Err(error) => {
                tracing::debug!(%error, partition = lease.partition, "storage cannot say how far the failed write got");
                return;
            }
        };
        let intent = linktrace_platform::stream_ledger::Intent {
            epoch: lease.epoch,
            from,
            to,
            expired: false,
        };
        if let Err(error) = self.ledger.resolve(lease, &intent, stored).await {
            tracing::debug!(%error, partition = lease.partition, "could not close the failed write's intent");
        }
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

/// How one partition's share of a batch ended.
enum PartitionOutcome {
    Settled {
        lease: Lease,
        written: usize,
        refused: HashSet<StreamPosition>,
    },
    /// Another consumer holds the partition now: nothing was written.
    Fenced(i32),
}

fn ledger_failed(error: LedgerError) -> WriteError {
    WriteError::Retryable(format!("stream ledger: {error}"))
}

/// What one successful write did.
#[derive(Debug, Default)]
struct WriteOutcome {
    written: usize,
    /// Partitions skipped because they were revoked or fenced meanwhile.
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

/// Whether `record` has a dedup claim in Postgres under its id: an entity event, or an
/// event of an idempotent request.
fn holds_claim(record: &EventRecord) -> bool {
    record.entity_id.is_some() || record.claimed
}
