//! Deduplication of entity events: one row per (account, link, event, entity) tuple in
//! Postgres.
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
//! was made while `entity_events` was small, scanned it whole per batch, and on a fresh
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

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityKey {
    pub account_id: Uuid,
    pub link_short_code: String,
    pub event_name: String,
    pub entity_id: String,
}

#[derive(Debug)]
pub enum ClaimOutcome {
    /// This request owns the tuple: produce it with this event time, then `mark_queued`.
    Claimed { event_time: DateTime<Utc> },
    /// The tuple was already accepted.
    Duplicate,
    /// Another request still holds the claim after the produce deadline: try again later.
    StillInFlight,
}

/// One claim attempt of a batch.
struct ClaimRequest {
    key: EntityKey,
    event_id: Uuid,
    event_time: DateTime<Utc>,
}

/// A row of the claim statement: the tuple, the event time if this batch claimed it, and
/// its state before the statement.
type ClaimRow = (
    Uuid,
    String,
    String,
    String,
    Option<DateTime<Utc>>,
    Option<String>,
);

/// What one attempt found: the claim is ours, or the tuple's current state (none: the row
/// went away, a released claim).
#[derive(Debug, Clone, Copy)]
enum Attempt {
    Claimed(DateTime<Utc>),
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
    marks: GroupCommit<EntityKey, ()>,
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
        key: &EntityKey,
        event_id: Uuid,
        event_time: DateTime<Utc>,
    ) -> Result<ClaimOutcome, sqlx::Error> {
        let poll = Duration::from_millis(20);
        let give_up = tokio::time::Instant::now() + self.stale_after + Duration::from_secs(2);
        loop {
            let attempt = self
                .claims
                .submit(ClaimRequest {
                    key: key.clone(),
                    event_id,
                    event_time,
                })
                .await?;
            match attempt {
                Attempt::Claimed(event_time) => return Ok(ClaimOutcome::Claimed { event_time }),
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
    pub async fn mark_queued(&self, key: &EntityKey) -> Result<(), sqlx::Error> {
        self.marks.submit(key.clone()).await
    }

    /// The event was not accepted: free the tuple for a retry.
    pub async fn release(&self, key: &EntityKey) -> Result<(), sqlx::Error> {
        sqlx::query(
            "DELETE FROM entity_events WHERE account_id = $1 AND link_short_code = $2 \
             AND event_name = $3 AND entity_id = $4 AND state = $5",
        )
        .bind(key.account_id)
        .bind(&key.link_short_code)
        .bind(&key.event_name)
        .bind(&key.entity_id)
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
    let mut first: HashMap<&EntityKey, &ClaimRequest> = HashMap::with_capacity(batch.len());
    for request in batch.iter() {
        first.entry(&request.key).or_insert(request);
    }
    let mut unique: Vec<&ClaimRequest> = first.into_values().collect();
    unique.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    let rows: Vec<ClaimRow> =
        sqlx::query_as(
            "WITH input AS ( \
               SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::uuid[], $6::timestamptz[]) \
                 AS t(account_id, link_short_code, event_name, entity_id, event_id, event_time)), \
             claimed AS ( \
               INSERT INTO entity_events \
                 (account_id, link_short_code, event_name, entity_id, event_id, event_time, state, claimed_at) \
               SELECT account_id, link_short_code, event_name, entity_id, event_id, event_time, $8, now() \
               FROM input ORDER BY account_id, link_short_code, event_name, entity_id \
               ON CONFLICT (account_id, link_short_code, event_name, entity_id) DO UPDATE SET claimed_at = now() \
                 WHERE entity_events.state = $8 \
                   AND entity_events.claimed_at < now() - make_interval(secs => $7) \
               RETURNING account_id, link_short_code, event_name, entity_id, event_time) \
             SELECT i.account_id, i.link_short_code, i.event_name, i.entity_id, c.event_time, e.state \
             FROM input i \
             LEFT JOIN claimed c ON (c.account_id, c.link_short_code, c.event_name, c.entity_id) \
                                  = (i.account_id, i.link_short_code, i.event_name, i.entity_id) \
             LEFT JOIN entity_events e ON (e.account_id, e.link_short_code, e.event_name, e.entity_id) \
                                  = (i.account_id, i.link_short_code, i.event_name, i.entity_id)",
        )
        .bind(unique.iter().map(|r| r.key.account_id).collect::<Vec<_>>())
        .bind(unique.iter().map(|r| r.key.link_short_code.as_str()).collect::<Vec<_>>())
        .bind(unique.iter().map(|r| r.key.event_name.as_str()).collect::<Vec<_>>())
        .bind(unique.iter().map(|r| r.key.entity_id.as_str()).collect::<Vec<_>>())
        .bind(unique.iter().map(|r| r.event_id).collect::<Vec<_>>())
        .bind(unique.iter().map(|r| r.event_time).collect::<Vec<_>>())
        .bind(stale_after.as_secs_f64())
        .bind(EntityState::Pending.as_str())
        .fetch_all(&pool)
        .await?;
    let found: HashMap<EntityKey, Attempt> = rows
        .into_iter()
        .map(
            |(account_id, link_short_code, event_name, entity_id, claimed, state)| {
                let key = EntityKey {
                    account_id,
                    link_short_code,
                    event_name,
                    entity_id,
                };
                let attempt = match claimed {
                    Some(event_time) => Attempt::Claimed(event_time),
                    None => Attempt::Held(state.as_deref().and_then(EntityState::parse)),
                };
                (key, attempt)
            },
        )
        .collect();
    let mut answered: HashMap<&EntityKey, ()> = HashMap::with_capacity(batch.len());
    Ok(batch
        .iter()
        .map(|request| {
            let attempt = found
                .get(&request.key)
                .copied()
                .unwrap_or(Attempt::Held(None));
            match (answered.insert(&request.key, ()), attempt) {
                // A second ask of a tuple this batch claimed: it is held by the first.
                (Some(()), Attempt::Claimed(_)) => Attempt::Held(Some(EntityState::Pending)),
                (_, attempt) => attempt,
            }
        })
        .collect())
}

/// One statement for a batch of marks: each tuple still pending becomes queued. The rows
/// are locked in key order first, as the claims lock them.
async fn mark_batch(pool: PgPool, keys: Arc<Vec<EntityKey>>) -> Result<Vec<()>, sqlx::Error> {
    let mut sorted: Vec<&EntityKey> = keys.iter().collect();
    sorted.sort_unstable();
    sorted.dedup();
    sqlx::query(
        "WITH k AS ( \
           SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) \
             AS k(account_id, link_short_code, event_name, entity_id)), \
         locked AS ( \
           SELECT e.account_id, e.link_short_code, e.event_name, e.entity_id \
           FROM entity_events e JOIN k ON (e.account_id, e.link_short_code, e.event_name, e.entity_id) \
                                        = (k.account_id, k.link_short_code, k.event_name, k.entity_id) \
           WHERE e.state = $5 \
           ORDER BY e.account_id, e.link_short_code, e.event_name, e.entity_id \
           FOR UPDATE OF e) \
         UPDATE entity_events e SET state = $6 FROM locked l \
         WHERE (e.account_id, e.link_short_code, e.event_name, e.entity_id) \
             = (l.account_id, l.link_short_code, l.event_name, l.entity_id)",
    )
    .bind(sorted.iter().map(|k| k.account_id).collect::<Vec<_>>())
    .bind(sorted.iter().map(|k| k.link_short_code.as_str()).collect::<Vec<_>>())
    .bind(sorted.iter().map(|k| k.event_name.as_str()).collect::<Vec<_>>())
    .bind(sorted.iter().map(|k| k.entity_id.as_str()).collect::<Vec<_>>())
    .bind(EntityState::Pending.as_str())
    .bind(EntityState::Queued.as_str())
    .execute(&pool)
    .await?;
    Ok(vec![(); keys.len()])
}
