//! The stream ledger: per partition of the events topic, in Postgres, how far storage has
//! settled it and which consumer may write it (migration `0010_stream_ledger.sql`).
//!
//! ClickHouse is never asked where to resume: on a replicated cluster a lagging replica
//! would answer with an old mark and rows above it would be written again. The consumer
//! writes a partition only under a lease:
//!
//! 1. [`StreamLedger::acquire`] bumps the partition's epoch. Every older lease is fenced
//!    from then on.
//! 2. [`StreamLedger::begin`] records the intent to write offsets `from..=to`, in the same
//!    statement that checks the epoch. A fenced consumer cannot begin, so it cannot write.
//! 3. [`StreamLedger::settle`] moves `settled_through` to `to` and records the offsets that
//!    were skipped (copies, dead letters). A settle is a fact about a write that happened,
//!    so it is accepted for the intent it ends even after the lease was fenced.
//!
//! A new owner that finds an intent of another epoch waits until that writer settles it or
//! its deadline passes (its own time limit for the write), then asks ClickHouse once, with
//! a consistent read, what of `from..=to` landed ([`StreamLedger::resolve`]). The webhook
//! worker settles events from this ledger too ([`StreamLedger::settled`]).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use sqlx::PgPool;

/// A consumer's right to write one partition, as of one epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub partition: i32,
    pub epoch: i64,
    /// Every offset at or below is settled; -1 when nothing is.
    pub settled_through: i64,
    /// A write begun and not settled, when the lease was taken or last checked.
    pub intent: Option<Intent>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    pub epoch: i64,
    pub from: i64,
    pub to: i64,
    /// Whether its writer's time limit has run out (its write can no longer land).
    pub expired: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Another consumer took the partition since this lease was granted.
    #[error("partition {0} is fenced: another consumer owns it now")]
    Fenced(i32),
    #[error("postgres: {0}")]
    Postgres(#[from] sqlx::Error),
}

/// Why a settled offset was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The same event was already stored or seen (a producer retry, a replay, a repeat).
    Copy,
    /// Dead-lettered: undecodable, or refused by ClickHouse.
    DeadLettered,
}

impl SkipReason {
    fn as_str(self) -> &'static str {
        match self {
            SkipReason::Copy => "copy",
            SkipReason::DeadLettered => "dead_lettered",
        }
    }
}

#[derive(Clone)]
pub struct StreamLedger {
    pool: PgPool,
    topic: String,
}

type LeaseRow = (
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<bool>,
);

const LEASE_COLUMNS: &str = "epoch, settled_through, intent_epoch, intent_from, intent_to, \
     intent_deadline < now() AS expired";

impl StreamLedger {
    pub fn new(pool: PgPool, topic: &str) -> Self {
        Self {
            pool,
            topic: topic.to_owned(),
        }
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Whether the ledger has a row for `partition` yet (a deployment that predates it
    /// seeds the row from what ClickHouse holds; see [`Self::acquire`]).
    pub async fn knows(&self, partition: i32) -> Result<bool, LedgerError> {
        Ok(sqlx::query_scalar::<_, i32>(
            "SELECT 1 FROM stream_partitions WHERE topic = $1 AND kafka_partition = $2",
        )
        .bind(&self.topic)
        .bind(partition)
        .fetch_optional(&self.pool)
        .await?
        .is_some())
    }

    /// Takes `partition` for `owner`: bumps its epoch, which fences every earlier lease.
    /// `initial_settled_through` is used only when the partition has no row yet.
    pub async fn acquire(
        &self,
        partition: i32,
        owner: &str,
        initial_settled_through: i64,
    ) -> Result<Lease, LedgerError> {
        let row: LeaseRow = sqlx::query_as(&format!(
            "INSERT INTO stream_partitions AS p (topic, kafka_partition, epoch, owner, settled_through) \
             VALUES ($1, $2, 1, $3, $4) \
             ON CONFLICT (topic, kafka_partition) DO UPDATE SET epoch = p.epoch + 1, owner = EXCLUDED.owner \
             RETURNING {LEASE_COLUMNS}"
        ))
        .bind(&self.topic)
        .bind(partition)
        .bind(owner)
        .bind(initial_settled_through)
        .fetch_one(&self.pool)
        .await?;
        Ok(lease_at(partition, row))
    }

    /// The partition as `lease` would see it now; `Fenced` when another epoch took it.
    pub async fn refresh(&self, lease: &Lease) -> Result<Lease, LedgerError> {
        let row: Option<LeaseRow> = sqlx::query_as(&format!(
            "SELECT {LEASE_COLUMNS} FROM stream_partitions \
             WHERE topic = $1 AND kafka_partition = $2 AND epoch = $3"
        ))
        .bind(&self.topic)
        .bind(lease.partition)
        .bind(lease.epoch)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| lease_at(lease.partition, row))
            .ok_or(LedgerError::Fenced(lease.partition))
    }

    /// Records the intent to write offsets `from..=to`, if `lease` is still current and no
    /// write is open on the partition (an open one is resolved first). `deadline` is the writer's own limit for the
    /// write: after it, the write can no longer land.
    pub async fn begin(
        &self,
        lease: &Lease,
        from: i64,
        to: i64,
        deadline: Duration,
    ) -> Result<(), LedgerError> {
        let begun = sqlx::query(
            "UPDATE stream_partitions SET intent_epoch = epoch, intent_from = $4, intent_to = $5, \
                 intent_deadline = now() + make_interval(secs => $6) \
             WHERE topic = $1 AND kafka_partition = $2 AND epoch = $3 \
               AND intent_epoch IS NULL AND settled_through < $4",
        )
        .bind(&self.topic)
        .bind(lease.partition)
        .bind(lease.epoch)
        .bind(from)
        .bind(to)
        .bind(deadline.as_secs_f64())
        .execute(&self.pool)
        .await?;
        if begun.rows_affected() == 1 {
            Ok(())
        } else {
            Err(LedgerError::Fenced(lease.partition))
        }
    }

    /// Settles offsets up to `through`: everything at or below is stored or in `skipped`.
    /// Closes the intent of `epoch` if one is open; without one, only the current epoch may
    /// settle (a batch whose every message was skipped writes nothing, and begins nothing).
    pub async fn settle(
        &self,
        partition: i32,
        epoch: i64,
        through: i64,
        skipped: &[(i64, SkipReason)],
    ) -> Result<(), LedgerError> {
        let mut tx = self.pool.begin().await?;
        let settled = sqlx::query(
            "UPDATE stream_partitions SET settled_through = GREATEST(settled_through, $4), \
                 intent_epoch = NULL, intent_from = NULL, intent_to = NULL, intent_deadline = NULL \
             WHERE topic = $1 AND kafka_partition = $2 \
               AND (intent_epoch = $3 OR (intent_epoch IS NULL AND epoch = $3))",
        )
        .bind(&self.topic)
        .bind(partition)
        .bind(epoch)
        .bind(through)
        .execute(&mut *tx)
        .await?;
        if settled.rows_affected() != 1 {
            return Err(LedgerError::Fenced(partition));
        }
        if !skipped.is_empty() {
            let offsets: Vec<i64> = skipped.iter().map(|(offset, _)| *offset).collect();
            let reasons: Vec<&str> = skipped.iter().map(|(_, why)| why.as_str()).collect();
            sqlx::query(
                "INSERT INTO stream_skips (topic, kafka_partition, kafka_offset, reason) \
                 SELECT $1, $2, o, r FROM UNNEST($3::BIGINT[], $4::TEXT[]) AS s(o, r) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(&self.topic)
            .bind(partition)
            .bind(&offsets)
            .bind(&reasons)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Ends an open intent whose outcome was read back from storage: offsets up to
    /// `stored_through` (the highest of the intent's offsets that storage holds, if any)
    /// are settled, the rest is written again. Only the current lease may resolve. Returns
    /// the partition's settled offset now.
    pub async fn resolve(
        &self,
        lease: &Lease,
        intent: &Intent,
        stored_through: Option<i64>,
    ) -> Result<i64, LedgerError> {
        sqlx::query_scalar(
            "UPDATE stream_partitions SET settled_through = GREATEST(settled_through, $5), \
                 intent_epoch = NULL, intent_from = NULL, intent_to = NULL, intent_deadline = NULL \
             WHERE topic = $1 AND kafka_partition = $2 AND epoch = $3 AND intent_epoch = $4 \
             RETURNING settled_through",
        )
        .bind(&self.topic)
        .bind(lease.partition)
        .bind(lease.epoch)
        .bind(intent.epoch)
        .bind(stored_through.unwrap_or(-1))
        .fetch_optional(&self.pool)
        .await?
        .ok_or(LedgerError::Fenced(lease.partition))
    }

    /// How far each partition of the topic is settled.
    pub async fn settled(&self) -> Result<HashMap<i32, i64>, LedgerError> {
        let rows: Vec<(i32, i64)> = sqlx::query_as(
            "SELECT kafka_partition, settled_through FROM stream_partitions WHERE topic = $1",
        )
        .bind(&self.topic)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// Which of `positions` (partition, offset) were settled without being stored.
    pub async fn skipped(
        &self,
        positions: &[(i32, i64)],
    ) -> Result<HashSet<(i32, i64)>, LedgerError> {
        if positions.is_empty() {
            return Ok(HashSet::new());
        }
        let partitions: Vec<i32> = positions.iter().map(|(p, _)| *p).collect();
        let offsets: Vec<i64> = positions.iter().map(|(_, o)| *o).collect();
        let rows: Vec<(i32, i64)> = sqlx::query_as(
            "SELECT s.kafka_partition, s.kafka_offset FROM stream_skips s \
             JOIN UNNEST($2::INT[], $3::BIGINT[]) AS w(p, o) \
               ON s.kafka_partition = w.p AND s.kafka_offset = w.o \
             WHERE s.topic = $1",
        )
        .bind(&self.topic)
        .bind(&partitions)
        .bind(&offsets)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// Forgets skips older than `age` (the webhook worker reads only recent ones).
    pub async fn forget_skips_older_than(&self, age: Duration) -> Result<u64, LedgerError> {
        Ok(sqlx::query(
            "DELETE FROM stream_skips WHERE skipped_at < now() - make_interval(secs => $1)",
        )
        .bind(age.as_secs_f64())
        .execute(&self.pool)
        .await?
        .rows_affected())
    }
}

fn lease_at(partition: i32, row: LeaseRow) -> Lease {
    let (epoch, settled_through, intent_epoch, from, to, expired) = row;
    let intent = match (intent_epoch, from, to) {
        (Some(epoch), Some(from), Some(to)) => Some(Intent {
            epoch,
            from,
            to,
            expired: expired.unwrap_or(true),
        }),
        _ => None,
    };
    Lease {
        partition,
        epoch,
        settled_through,
        intent,
    }
}
