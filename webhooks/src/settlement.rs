//! Storage first, then webhooks. An event is delivered only once storage has settled it and
//! only if it was stored *at its own position* on the stream: a producer retry's copy at a
//! later offset, or an entity event that was already stored, is dropped by the consumer
//! and so is never delivered as a new event; a message ClickHouse refused (dead-lettered)
//! is not delivered either.
//!
//! Settled: ClickHouse holds an offset at or above the message's on its partition (the
//! consumer writes each partition in offset order), or the storage group has committed
//! past it (which also covers a dead-lettered message at the end of a partition).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use clickhouse::{Client, Row};
use linktrace_platform::kafka::KafkaConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde::Deserialize;
use uuid::Uuid;

/// A message's place on the events topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    pub partition: i32,
    pub offset: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum SettlementError {
    #[error("ClickHouse: {0}")]
    ClickHouse(#[from] clickhouse::error::Error),
}

pub struct Settlement {
    clickhouse: Client,
    topic: String,
    /// Not a member of the storage group: only reads its committed offsets.
    storage_group: Arc<BaseConsumer>,
}

impl Settlement {
    pub fn new(
        clickhouse: Client,
        kafka: &KafkaConfig,
        storage_group_id: &str,
    ) -> anyhow::Result<Self> {
        let storage_group: BaseConsumer = kafka
            .client_config()
            .set("group.id", storage_group_id)
            .set("enable.auto.commit", "false")
            .create()?;
        Ok(Self {
            clickhouse,
            topic: kafka.events_topic.clone(),
            storage_group: Arc::new(storage_group),
        })
    }

    /// The partitions of `highest` (partition → highest offset wanted) that storage has not
    /// settled up to that offset yet. ClickHouse's offsets answer at once and settle almost
    /// every event; the storage group's committed offsets (a broker round trip) are asked
    /// only when `ask_storage_group`, for the one case ClickHouse cannot settle: a message
    /// dead-lettered at the end of a partition.
    pub async fn unsettled(
        &self,
        highest: &HashMap<i32, i64>,
        ask_storage_group: bool,
    ) -> Result<Vec<i32>, SettlementError> {
        let stored =
            linktrace_platform::clickhouse::stored_offsets(&self.clickhouse, &self.topic).await?;
        let mut waiting: Vec<i32> = highest
            .iter()
            .filter(|(partition, offset)| stored.get(partition).is_none_or(|s| s < offset))
            .map(|(partition, _)| *partition)
            .collect();
        if waiting.is_empty() || !ask_storage_group {
            return Ok(waiting);
        }
        let committed = self.storage_committed(&waiting).await;
        waiting.retain(|partition| {
            committed
                .get(partition)
                .is_none_or(|next| *next <= highest[partition])
        });
        Ok(waiting)
    }

    /// The storage group's committed offsets (the next offset it will read) of
    /// `partitions`; empty when the broker cannot say right now.
    async fn storage_committed(&self, partitions: &[i32]) -> HashMap<i32, i64> {
        let mut list = TopicPartitionList::new();
        for partition in partitions {
            list.add_partition(&self.topic, *partition);
        }
        let consumer = self.storage_group.clone();
        let answer = tokio::task::spawn_blocking(move || {
            consumer.committed_offsets(list, Duration::from_secs(5))
        })
        .await;
        match answer {
            Ok(Ok(list)) => list
                .elements()
                .iter()
                .filter_map(|e| match e.offset() {
                    Offset::Offset(next) => Some((e.partition(), next)),
                    _ => None,
                })
                .collect(),
            Ok(Err(error)) => {
                tracing::debug!(%error, "storage group's offsets unavailable");
                HashMap::new()
            }
            Err(_) => HashMap::new(),
        }
    }

    /// Which of `events` ClickHouse holds at exactly the given position (the same id at
    /// another position is a copy, and not delivered again).
    pub async fn stored_at_position(
        &self,
        events: &[(Uuid, Uuid, Position)],
    ) -> Result<HashSet<(Uuid, Position)>, SettlementError> {
        if events.is_empty() {
            return Ok(HashSet::new());
        }
        let accounts: Vec<String> = events
            .iter()
            .map(|(_, account, _)| account.to_string())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let ids: Vec<String> = events.iter().map(|(id, _, _)| id.to_string()).collect();
        let query = stored_query(&self.clickhouse, &self.topic, &accounts, &ids);
        let rows: Vec<StoredRow> = query.fetch_all().await?;
        let wanted: HashSet<(Uuid, Position)> =
            events.iter().map(|(id, _, at)| (*id, *at)).collect();
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let id = Uuid::parse_str(&row.event_id).ok()?;
                let at = Position {
                    partition: i32::from(row.kafka_partition),
                    offset: row.kafka_offset as i64,
                };
                wanted.contains(&(id, at)).then_some((id, at))
            })
            .collect())
    }
}

#[derive(Row, Deserialize)]
struct StoredRow {
    event_id: String,
    kafka_partition: u16,
    kafka_offset: u64,
}

/// Where `event_ids` (of `accounts`) are stored on `topic`: narrowed by account first (the
/// table's sort key starts with it).
pub fn stored_query(
    client: &Client,
    topic: &str,
    accounts: &[String],
    event_ids: &[String],
) -> clickhouse::query::Query {
    let sql = format!(
        "SELECT event_id, kafka_partition, kafka_offset FROM events \
         WHERE account_id IN ({}) AND event_id IN ({}) AND kafka_topic = ?",
        placeholders(accounts.len()),
        placeholders(event_ids.len()),
    );
    let mut query = client.query(&sql);
    for bound in accounts.iter().chain(event_ids) {
        query = query.bind(bound.as_str());
    }
    query.bind(topic)
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}
