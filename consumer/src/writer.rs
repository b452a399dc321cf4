//! Where batches are written. ClickHouse in production; a test stands in only to fail.

use async_trait::async_trait;
use clickhouse::{Client, Row};
use serde::Deserialize;

use crate::exactly_once::HighWaterMarks;
use crate::row::EventRow;

#[async_trait]
pub trait EventWriter: Send + Sync + 'static {
    /// The highest offset stored per partition of `topic`.
    async fn high_water_marks(&self, topic: &str) -> anyhow::Result<HighWaterMarks>;

    /// Writes one run (one partition, increasing offsets, one table partition) as a single
    /// INSERT: every row or none.
    async fn write(&self, rows: &[EventRow]) -> anyhow::Result<()>;
}

pub struct ClickHouseWriter {
    client: Client,
}

impl ClickHouseWriter {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

#[derive(Row, Deserialize)]
struct PartitionMark {
    kafka_partition: u16,
    max_offset: u64,
}

#[async_trait]
impl EventWriter for ClickHouseWriter {
    async fn high_water_marks(&self, topic: &str) -> anyhow::Result<HighWaterMarks> {
        let marks = self
            .client
            .query(
                "SELECT kafka_partition, maxMerge(max_offset) AS max_offset FROM events_kafka_offsets \
                 WHERE kafka_topic = ? GROUP BY kafka_partition",
            )
            .bind(topic)
            .fetch_all::<PartitionMark>()
            .await?;
        Ok(marks
            .into_iter()
            .map(|mark| (i32::from(mark.kafka_partition), mark.max_offset as i64))
            .collect())
    }

    async fn write(&self, rows: &[EventRow]) -> anyhow::Result<()> {
        let mut insert = self.client.insert::<EventRow>("events").await?;
        for row in rows {
            insert.write(row).await?;
        }
        insert.end().await?;
        Ok(())
    }
}
