//! The dedup index of entity events in Postgres (shared with ingest): which tuples
//! ClickHouse already holds, so a redelivered or repeated one is dropped before writing.

use std::collections::HashSet;

use linktrace_domain::EntityState;
use sqlx::PgPool;
use uuid::Uuid;

pub struct StoredEntities {
    pool: PgPool,
}

impl StoredEntities {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Which of `event_ids` are already stored.
    pub async fn already_stored(&self, event_ids: &[Uuid]) -> Result<HashSet<Uuid>, sqlx::Error> {
        if event_ids.is_empty() {
            return Ok(HashSet::new());
        }
        let rows: Vec<Uuid> = sqlx::query_scalar(
            "SELECT event_id FROM entity_events WHERE event_id = ANY($1) AND state = $2",
        )
        .bind(event_ids)
        .bind(EntityState::Stored.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().collect())
    }

    pub async fn mark_stored(&self, event_ids: &[Uuid]) -> Result<(), sqlx::Error> {
        if event_ids.is_empty() {
            return Ok(());
        }
        sqlx::query("UPDATE entity_events SET state = $2 WHERE event_id = ANY($1) AND state <> $2")
            .bind(event_ids)
            .bind(EntityState::Stored.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
