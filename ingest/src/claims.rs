//! Deduplication of entity events: one row per (account, link, event, entity) tuple in
//! Postgres.
//!
//! A request first *claims* the tuple ([`EntityState::Pending`]), then produces, then marks
//! it `Queued`; the consumer marks it `Stored` once ClickHouse has it. A tuple already `queued` or
//! `stored` answers "deduplicated". If the produce fails the claim is released, so a retry
//! is not wrongly told "deduplicated". A claim left `pending` by a crashed instance is taken
//! over once it is older than the produce deadline; the event id is deterministic, so a
//! second produce of the same tuple still ends as one stored event.

use std::time::Duration;

use chrono::{DateTime, Utc};
use linktrace_domain::EntityState;
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, Clone)]
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

pub struct EntityClaims {
    pool: PgPool,
    /// A `pending` claim older than this is presumed abandoned.
    stale_after: Duration,
}

impl EntityClaims {
    pub fn new(pool: PgPool, stale_after: Duration) -> Self {
        Self { pool, stale_after }
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
            let claimed: Option<DateTime<Utc>> = sqlx::query_scalar(
                "INSERT INTO entity_events \
                   (account_id, link_short_code, event_name, entity_id, event_id, event_time, state, claimed_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $8, now()) \
                 ON CONFLICT (account_id, link_short_code, event_name, entity_id) DO UPDATE SET claimed_at = now() \
                   WHERE entity_events.state = $8 \
                     AND entity_events.claimed_at < now() - make_interval(secs => $7) \
                 RETURNING event_time",
            )
            .bind(key.account_id)
            .bind(&key.link_short_code)
            .bind(&key.event_name)
            .bind(&key.entity_id)
            .bind(event_id)
            .bind(event_time)
            .bind(self.stale_after.as_secs_f64())
            .bind(EntityState::Pending.as_str())
            .fetch_optional(&self.pool)
            .await?;
            if let Some(event_time) = claimed {
                return Ok(ClaimOutcome::Claimed { event_time });
            }
            let state: Option<String> = sqlx::query_scalar(
                "SELECT state FROM entity_events \
                 WHERE account_id = $1 AND link_short_code = $2 AND event_name = $3 AND entity_id = $4",
            )
            .bind(key.account_id)
            .bind(&key.link_short_code)
            .bind(&key.event_name)
            .bind(&key.entity_id)
            .fetch_optional(&self.pool)
            .await?;
            match state.as_deref().and_then(EntityState::parse) {
                Some(state) if state.is_accepted() => return Ok(ClaimOutcome::Duplicate),
                // Another request is producing this tuple right now (or its claim was just
                // released): wait for its outcome, then look again.
                _ if tokio::time::Instant::now() < give_up => tokio::time::sleep(poll).await,
                _ => return Ok(ClaimOutcome::StillInFlight),
            }
        }
    }

    /// The broker has the event.
    pub async fn mark_queued(&self, key: &EntityKey) -> Result<(), sqlx::Error> {
        self.on_pending_claim(
            "UPDATE entity_events SET state = $6",
            key,
            Some(EntityState::Queued),
        )
        .await
    }

    /// The event was not accepted: free the tuple for a retry.
    pub async fn release(&self, key: &EntityKey) -> Result<(), sqlx::Error> {
        self.on_pending_claim("DELETE FROM entity_events", key, None)
            .await
    }

    /// Runs `statement` on the tuple's row while it is still pending (`$6`, when given, is
    /// the state it sets).
    async fn on_pending_claim(
        &self,
        statement: &'static str,
        key: &EntityKey,
        new_state: Option<EntityState>,
    ) -> Result<(), sqlx::Error> {
        let sql = format!(
            "{statement} WHERE account_id = $1 AND link_short_code = $2 AND event_name = $3 AND entity_id = $4 \
             AND state = $5"
        );
        let query = sqlx::query(&sql)
            .bind(key.account_id)
            .bind(&key.link_short_code)
            .bind(&key.event_name)
            .bind(&key.entity_id)
            .bind(EntityState::Pending.as_str());
        match new_state {
            Some(state) => query.bind(state.as_str()),
            None => query,
        }
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
