//! The dedup index of entity events in Postgres (`entity_claims`, shared with ingest): which
//! claims' events ClickHouse already holds, so a redelivered or repeated one is dropped
//! before writing. Claims are found by their key ([`EventRecord::claim_key`]), the table's
//! partition column.
//!
//! [`EventRecord::claim_key`]: linktrace_domain::EventRecord::claim_key

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

    /// Which of the claims `keys` have their event stored.
    pub async fn already_stored(&self, keys: &[Uuid]) -> Result<HashSet<Uuid>, sqlx::Error> {
        if keys.is_empty() {
            return Ok(HashSet::new());
        }
        let rows: Vec<Uuid> = sqlx::query_scalar(
            "SELECT event_id FROM entity_claims WHERE event_id = ANY($1) AND state = $2",
        )
        .bind(keys)
        .bind(EntityState::Stored.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// The claims `keys` have their event stored.
    pub async fn mark_stored(&self, keys: &[Uuid]) -> Result<(), sqlx::Error> {
        if keys.is_empty() {
            return Ok(());
        }
        sqlx::query("UPDATE entity_claims SET state = $2 WHERE event_id = ANY($1) AND state <> $2")
            .bind(keys)
            .bind(EntityState::Stored.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
