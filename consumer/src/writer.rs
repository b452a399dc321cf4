//! Where batches are written. ClickHouse in production; a test stands in only to fail.

use async_trait::async_trait;
use clickhouse::Client;

use crate::row::EventRow;

#[async_trait]
pub trait EventWriter: Send + Sync + 'static {
    /// Writes every row or fails as a whole (the batch is then retried).
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

#[async_trait]
impl EventWriter for ClickHouseWriter {
    async fn write(&self, rows: &[EventRow]) -> anyhow::Result<()> {
        let mut insert = self.client.insert::<EventRow>("events").await?;
        for row in rows {
            insert.write(row).await?;
        }
        insert.end().await?;
        Ok(())
    }
}
