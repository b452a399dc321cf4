//! Storage first, then webhooks. An event is delivered only once storage has settled it and
//! only if it was stored *at its own position* on the stream: a producer retry's copy at a
//! later offset, or an entity event that was already stored, is dropped by the consumer
//! and so is never delivered as a new event; a message ClickHouse refused (dead-lettered)
//! is not delivered either.
//!
//! Both facts come from the stream ledger in Postgres, which the storage consumer settles
//! after each write ([`linktrace_platform::stream_ledger`]): an offset is settled once it is
//! at or below its partition's `settled_through`, and it was stored unless the ledger lists
//! it as skipped. No replica of ClickHouse is asked, so one that lags cannot make a stored
//! event look unstored.

use std::collections::{HashMap, HashSet};

use linktrace_platform::stream_ledger::{LedgerError, StreamLedger};
use uuid::Uuid;

/// A message's place on the events topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    pub partition: i32,
    pub offset: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum SettlementError {
    #[error("stream ledger: {0}")]
    Ledger(#[from] LedgerError),
}

pub struct Settlement {
    ledger: StreamLedger,
}

impl Settlement {
    pub fn new(ledger: StreamLedger) -> Self {
        Self { ledger }
    }

    /// The partitions of `highest` (partition → highest offset wanted) that storage has not
    /// settled up to that offset yet.
    pub async fn unsettled(
        &self,
        highest: &HashMap<i32, i64>,
    ) -> Result<Vec<i32>, SettlementError> {
        let settled = self.ledger.settled().await?;
        Ok(highest
            .iter()
            .filter(|(partition, offset)| settled.get(partition).is_none_or(|s| s < offset))
            .map(|(partition, _)| *partition)
            .collect())
    }

    /// Which of `events` (id, position), all settled, were stored at their position.
    pub async fn stored_at_position(
        &self,
        events: &[(Uuid, Position)],
    ) -> Result<HashSet<(Uuid, Position)>, SettlementError> {
        let positions: Vec<(i32, i64)> = events
            .iter()
            .map(|(_, at)| (at.partition, at.offset))
            .collect();
        let skipped = self.ledger.skipped(&positions).await?;
        Ok(events
            .iter()
            .filter(|(_, at)| !skipped.contains(&(at.partition, at.offset)))
            .copied()
            .collect())
    }
}
