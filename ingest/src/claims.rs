//! Deduplication of entity events: one row per (account, environment, link, event, entity)
//! tuple in Postgres `entity_claims`, under the tuple's claim key (test and live never
//! deduplicate each other: the environment is part of the key). The key is the id the
//! tuple's event is produced with (`EventRecord::entity_event_id`; for an idempotent
//! request's event, its id from the request's nonce), so every statement names the table's
//! one key, which is also its hash-partition column (migration 0011).
//!
//! A request first *claims* the tuple ([`EntityState::Pending`]), then produces, then marks
//! it `Queued`; the consumer marks it `Stored` once ClickHouse has it. A tuple already `queued` or
//! `stored` answers "deduplicated". If the produce fails the claim is released, so a retry
//! is not wrongly told "deduplicated". A claim left `pending` by a crashed instance is taken
//! over once it is older than the produce deadline; the event id is deterministic, so a
//! second produce of the same tuple still ends as one stored event.
//!
//! Claims and marks are group-committed ([`GroupCommit`]): concurrent requests' claims are
//! one `INSERT … SELECT FROM unnest(…) ON CONFLICT … RETURNING`, their marks one `UPDATE`.
//! Rows are locked in key order in both, so two batches cannot deadlock on each other
//! (and a batch that still loses one is run again).
//!
//! Both are prepared once per connection (a run is then one round trip, not a parse and
//! describe first) and planned for their parameters at every run: ingest's pool sets
//! `plan_cache_mode = force_custom_plan` (`startup`). A plan Postgres cached for all runs
//! was made while `entity_events` (now `entity_claims`) was small, scanned it whole per batch, and on a fresh
//! database slowed the dedup path run after run as the table grew (`bench/run.sh` starts
//! each run on a fresh database); unprepared statements avoided that at a round trip each.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use linktrace_domain::EntityState;
use sqlx::PgPool;
use uuid::Uuid;

use crate::group_commit::GroupCommit;

/// A dedup claim: its key (the id of the event that holds it, one per tuple) and the
/// account it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClaimKey {
    pub event_id: Uuid,
    pub account_id: Uuid,
}

#[derive(Debug)]
pub enum ClaimOutcome {
    /// This request owns the tuple: produce it with this id and event time (the row's: a
    /// claim taken over keeps the abandoned one's), then `mark_queued`.
    Claimed {
        event_id: Uuid,
        event_time: DateTime<Utc>,
    },
    /// The tuple was already accepted.
    Duplicate,
    /// Another request still holds the claim after the produce deadline: try again later.
    StillInFlight,
}

/// One claim attempt of a batch.
struct ClaimRequest {
    key: ClaimKey,
    event_time: DateTime<Utc>,
}

/// A row of the claim statement: the claim's key, the event id and time if this batch
/// claimed it, and its state before the statement.
type ClaimRow = (Uuid, Option<Uuid>, Option<DateTime<Utc>>, Option<String>);

/// What one attempt found: the claim is ours, or the tuple's current state (none: the row
/// went away, a released claim).
#[derive(Debug, Clone, Copy)]
enum Attempt {
    Claimed(Uuid, DateTime<Utc>),
    Held(Option<EntityState>),
}

/// How many claims or marks one statement carries at most, and how many statements of
/// each kind may be in flight at once: one, the classic group commit (whatever queues up
/// while a statement runs goes in the next). Allowing 2, 4 or 8 at once made batches
/// smaller and Postgres busier, and the dedup path slower at 32 connections.
const MAX_BATCH: usize = 256;
const MAX_IN_FLIGHT: usize = 1;

pub struct EntityClaims {
    pool: PgPool,
    stale_after: Duration,
    claims: GroupCommit<ClaimRequest, Attempt>,
    marks: GroupCommit<ClaimKey, ()>,
}

impl EntityClaims {
    /// A `pending` claim older than `stale_after` is presumed abandoned. Starts the batch
    /// workers (call inside the runtime).
    pub fn new(pool: PgPool, stale_after: Duration) -> Self {
        let claims = GroupCommit::spawn("entity_claims", MAX_BATCH, MAX_IN_FLIGHT, {
            let pool = pool.clone();
            move |batch| claim_batch(pool.clone(), batch, stale_after)
        });
        let marks = GroupCommit::spawn("entity_marks", MAX_BATCH, MAX_IN_FLIGHT, {
            let pool = pool.clone();
            move |batch| mark_batch(pool.clone(), batch)
        });
        Self {
            pool,
            stale_after,
            claims,
            marks,
        }
    }

    #[tracing::instrument(name = "claim", skip_all)]
    pub async fn claim(
        &self,
        key: ClaimKey,
        event_time: DateTime<Utc>,
    ) -> Result<ClaimOutcome, sqlx::Error> {
        let poll = Duration::from_millis(20);
        let give_up = tokio::time::Instant::now() + self.stale_after + Duration::from_secs(2);
        loop {
            let attempt = self.claims.submit(ClaimRequest { key, event_time }).await?;
            match attempt {
                Attempt::Claimed(event_id, event_time) => {
                    return Ok(ClaimOutcome::Claimed {
                        event_id,
                        event_time,
                    })
                }
                Attempt::Held(Some(state)) if state.is_accepted() => {
                    return Ok(ClaimOutcome::Duplicate)
                }
                // Another request is producing this tuple right now (or its claim was just
                // released): wait for its outcome, then look again.
                Attempt::Held(_) if tokio::time::Instant::now() < give_up => {
                    tokio::time::sleep(poll).await
                }
                Attempt::Held(_) => return Ok(ClaimOutcome::StillInFlight),
            }
        }
    }

    /// How many claim statements went to Postgres (each carries one or more claims).
    pub fn claim_statements(&self) -> u64 {
        self.claims.statements()
    }

    /// The broker has the event.
    pub async fn mark_queued(&self, key: ClaimKey) -> Result<(), sqlx::Error> {
        self.marks.submit(key).await
    }

    /// The event was not accepted: free the tuple for a retry.
    pub async fn release(&self, key: ClaimKey) -> Result<(), sqlx::Error> {
        sqlx::query(sql::RELEASE)
            .bind(key.event_id)
            .bind(EntityState::Pending.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// One statement for a batch of claims. A tuple asked for twice in one batch is claimed
/// once: the later asks see it held (pending) and wait for its outcome like any other
/// concurrent ask.
async fn claim_batch(
    pool: PgPool,
    batch: Arc<Vec<ClaimRequest>>,
    stale_after: Duration,
) -> Result<Vec<Attempt>, sqlx::Error> {
    let mut first: HashMap<&ClaimKey, &ClaimRequest> = HashMap::with_capacity(batch.len());
    for request in batch.iter() {
        first.entry(&request.key).or_insert(request);
    }
    let mut unique: Vec<&ClaimRequest> = first.into_values().collect();
    unique.sort_unstable_by_key(|r| r.key);
    let rows: Vec<ClaimRow> = sqlx::query_as(sql::CLAIM)
        .bind(unique.iter().map(|r| r.key.event_id).collect::<Vec<_>>())
        .bind(unique.iter().map(|r| r.key.account_id).collect::<Vec<_>>())
        .bind(unique.iter().map(|r| r.event_time).collect::<Vec<_>>())
        .bind(stale_after.as_secs_f64())
        .bind(EntityState::Pending.as_str())
        .fetch_all(&pool)
        .await?;
    let found: HashMap<Uuid, Attempt> = rows
        .into_iter()
        .map(|(key, claimed_id, claimed_time, state)| {
            let attempt = match (claimed_id, claimed_time) {
                (Some(event_id), Some(event_time)) => Attempt::Claimed(event_id, event_time),
                _ => Attempt::Held(state.as_deref().and_then(EntityState::parse)),
            };
            (key, attempt)
        })
        .collect();
    let mut answered: HashMap<&ClaimKey, ()> = HashMap::with_capacity(batch.len());
    Ok(batch
        .iter()
        .map(|request| {
            let attempt = found
                .get(&request.key.event_id)
                .copied()
                .unwrap_or(Attempt::Held(None));
            match (answered.insert(&request.key, ()), attempt) {
                // A second ask of a tuple this batch claimed: it is held by the first.
                (Some(()), Attempt::Claimed(..)) => Attempt::Held(Some(EntityState::Pending)),
                (_, attempt) => attempt,
            }
        })
        .collect())
}

/// One statement for a batch of marks: each claim still pending becomes queued. The rows
/// are locked in key order first, as the claims lock them.
async fn mark_batch(pool: PgPool, keys: Arc<Vec<ClaimKey>>) -> Result<Vec<()>, sqlx::Error> {
    let mut sorted: Vec<Uuid> = keys.iter().map(|k| k.event_id).collect();
    sorted.sort_unstable();
    sorted.dedup();
    sqlx::query(sql::MARK_QUEUED)
        .bind(sorted)
        .bind(EntityState::Pending.as_str())
        .bind(EntityState::Queued.as_str())
        .execute(&pool)
        .await?;
    Ok(vec![(); keys.len()])
}

/// The statements, each by the claims' keys alone (the partition column).
pub mod sql {
    /// A batch of claims ($1 keys, $2 accounts, $3 event times, in key order): a key not
    /// claimed yet, or pending for longer than $4 seconds (abandoned), is claimed ($5 =
    /// pending). Returns, per key asked, the id and time the event is to be produced with if
    /// this statement claimed it (a taken-over claim keeps the abandoned one's; a claim from
    /// before the environment was in the key, the id its event was stored with), and the
    /// state it found.
    pub const CLAIM: &str = "\
        WITH input AS ( \
          SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[]) AS t(event_id, account_id, event_time)), \
        claimed AS ( \
          INSERT INTO entity_claims (event_id, account_id, event_time, state, claimed_at) \
          SELECT event_id, account_id, event_time, $5, now() FROM input ORDER BY event_id \
          ON CONFLICT (event_id) DO UPDATE SET claimed_at = now() \
            WHERE entity_claims.state = $5 \
              AND entity_claims.claimed_at < now() - make_interval(secs => $4) \
          RETURNING event_id, coalesce(stored_event_id, event_id) AS produce_id, event_time) \
        SELECT i.event_id, c.produce_id, c.event_time, e.state \
        FROM input i \
        LEFT JOIN claimed c ON c.event_id = i.event_id \
        LEFT JOIN entity_claims e ON e.event_id = i.event_id";

    /// Pending claims ($1, keys in order) become queued ($2 pending, $3 queued).
    pub const MARK_QUEUED: &str = "\
        WITH locked AS ( \
          SELECT event_id FROM entity_claims \
          WHERE event_id = ANY($1) AND state = $2 \
          ORDER BY event_id FOR UPDATE) \
        UPDATE entity_claims e SET state = $3 FROM locked l WHERE e.event_id = l.event_id";

    /// A claim whose event was not accepted ($1) is freed, if still pending ($2).
    pub const RELEASE: &str = "DELETE FROM entity_claims WHERE event_id = $1 AND state = $2";
}
