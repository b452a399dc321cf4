//! Where batches are written. ClickHouse in production; a test stands in only to fail.

use async_trait::async_trait;
use clickhouse::Client;

use crate::row::EventRow;

/// Why a write failed, as far as retrying it goes.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// ClickHouse is away, overloaded, or its schema does not fit ours (an operator must
    /// act; the rows are fine): the same rows are retried, with backoff.
    #[error("{0}")]
    Retryable(String),
    /// ClickHouse refused the rows themselves: the same rows would be refused again. The
    /// pipeline isolates the offending rows and dead-letters them.
    #[error("{0}")]
    Refused(String),
}

/// ClickHouse error codes that mean "this data cannot be stored as it is" (parsing,
/// conversion, size and value checks). Everything else — network, timeouts, memory, too
/// many parts, read-only replicas, and schema errors such as an unknown table or column —
/// is retried: those are not the rows' fault.
const REFUSED_DATA_CODES: &[u32] = &[
    6,   // CANNOT_PARSE_TEXT
    26,  // CANNOT_PARSE_QUOTED_STRING
    27,  // CANNOT_PARSE_INPUT_ASSERTION_FAILED
    32,  // ATTEMPT_TO_READ_AFTER_EOF
    33,  // CANNOT_READ_ALL_DATA
    38,  // CANNOT_PARSE_DATE
    41,  // CANNOT_PARSE_DATETIME
    53,  // TYPE_MISMATCH
    69,  // ARGUMENT_OUT_OF_BOUND
    70,  // CANNOT_CONVERT_TYPE
    72,  // CANNOT_PARSE_NUMBER
    117, // INCORRECT_DATA
    131, // TOO_LARGE_STRING_SIZE
    395, // FUNCTION_THROW_IF_VALUE_IS_NON_ZERO
];

impl WriteError {
    /// Sorts a ClickHouse error by the code in its text (`Code: 117, …`).
    pub fn classify(error: clickhouse::error::Error) -> Self {
        let text = error.to_string();
        match error_code(&text) {
            Some(code) if REFUSED_DATA_CODES.contains(&code) => WriteError::Refused(text),
            _ => WriteError::Retryable(text),
        }
    }
}

fn error_code(text: &str) -> Option<u32> {
    let start = text.find("Code: ")? + "Code: ".len();
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[async_trait]
pub trait EventWriter: Send + Sync + 'static {
    /// The highest offset of `partition` at or below `to` that storage holds, read
    /// consistently; `None` when it holds none at or above `from`. Asked only to resolve a
    /// write whose outcome is unknown (see `linktrace_platform::stream_ledger`), never to
    /// decide where to resume.
    async fn stored_through(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        to: i64,
    ) -> Result<Option<i64>, WriteError>;

    /// Writes one run (one partition, increasing offsets, one table partition) as a single
    /// INSERT: every row or none. `tag` names the write on the server (its query id, see
    /// [`write_tag`]), so that whoever resolves it can tell whether it is still running.
    async fn write(&self, rows: &[EventRow], tag: &str) -> Result<(), WriteError>;

    /// Whether a write tagged `tag` is running on the server now.
    async fn in_flight(&self, tag: &str) -> Result<bool, WriteError>;
}

/// Whether the server is running a query of the given id (a write left open by a consumer
/// that died: still running, or over).
pub const RUNNING_WRITE_SQL: &str = "SELECT count() FROM system.processes WHERE query_id = ?";

/// The tag of a partition's write begun under `epoch` from offset `from`: what the stream
/// ledger's intent names, as a ClickHouse query id.
pub fn write_tag(topic: &str, partition: i32, epoch: i64, from: i64) -> String {
    format!("linktrace-write-{topic}-{partition}-{epoch}-{from}")
}

/// The partition a [`write_tag`] names.
pub fn tag_partition(tag: &str) -> Option<i32> {
    let mut parts = tag.rsplitn(4, '-');
    let (_from, _epoch) = (parts.next()?, parts.next()?);
    parts.next()?.parse().ok()
}

pub struct ClickHouseWriter {
    client: Client,
    /// Each shard's replicas, to write a run straight to its shard's local table (cluster
    /// mode with `CLICKHOUSE_SHARDS`); empty: through the Distributed `events`.
    shards: Vec<Vec<Client>>,
    timeout: std::time::Duration,
}

impl ClickHouseWriter {
    /// Every INSERT is given up after `timeout` (the stream ledger's deadline for an open
    /// write is longer).
    pub fn new(client: Client, timeout: std::time::Duration) -> Self {
        Self {
            client,
            shards: Vec::new(),
            timeout,
        }
    }

    /// Writes each run straight to the local table of its partition's shard, on the first
    /// of its replicas that answers. The shard is the Distributed table's choice for the
    /// same row (sharding key `kafka_partition`, shards of equal weight: partition modulo
    /// the number of shards), so reads through it are unchanged.
    pub fn with_shards(mut self, shards: Vec<Vec<Client>>) -> Self {
        self.shards = shards;
        self
    }

    /// Where a run of `partition` is written: (table, the clients to try in order).
    fn targets(&self, partition: u16) -> (&'static str, &[Client]) {
        if self.shards.is_empty() {
            return ("events", std::slice::from_ref(&self.client));
        }
        let shard = usize::from(partition) % self.shards.len();
        ("events_local", &self.shards[shard])
    }

    async fn insert(
        &self,
        client: &Client,
        table: &str,
        rows: &[EventRow],
        tag: &str,
    ) -> Result<(), clickhouse::error::Error> {
        let mut insert = client
            .clone()
            .with_setting("query_id", tag)
            .insert::<EventRow>(table)
            .await?
            .with_timeouts(Some(self.timeout), Some(self.timeout));
        for row in rows {
            insert.write(row).await?;
        }
        insert.end().await
    }
}

/// The server could not be reached at all (so it ran nothing): another replica may be asked.
fn unreachable(error: &clickhouse::error::Error) -> bool {
    matches!(error, clickhouse::error::Error::Network(_))
}

#[async_trait]
impl EventWriter for ClickHouseWriter {
    async fn stored_through(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        to: i64,
    ) -> Result<Option<i64>, WriteError> {
        // A partition is written in offset order, so its highest stored offset, if it is
        // in `from..=to`, is how far the open write got. One server: its answer is current.
        let marks = linktrace_platform::clickhouse::stored_offsets(&self.client, topic)
            .await
            .map_err(|e| WriteError::Retryable(e.to_string()))?;
        Ok(marks
            .get(&partition)
            .copied()
            .filter(|&stored| stored >= from)
            .map(|stored| stored.min(to)))
    }

    async fn in_flight(&self, tag: &str) -> Result<bool, WriteError> {
        // Every server the write may have gone to: its shard's replicas, or the one server.
        let partition = tag_partition(tag).and_then(|p| u16::try_from(p).ok());
        let (_, clients) = self.targets(partition.unwrap_or_default());
        let clients = if partition.is_some() {
            clients
        } else {
            std::slice::from_ref(&self.client)
        };
        for client in clients {
            let running: u64 = client
                .query(RUNNING_WRITE_SQL)
                .bind(tag)
                .fetch_one()
                .await
                .map_err(|e| WriteError::Retryable(e.to_string()))?;
            if running > 0 {
                return Ok(true);
            }
        }
        Ok(false)
    }

    #[tracing::instrument(name = "write", skip_all, fields(rows = rows.len()))]
    async fn write(&self, rows: &[EventRow], tag: &str) -> Result<(), WriteError> {
        let Some(first) = rows.first() else {
            return Ok(());
        };
        let (table, clients) = self.targets(first.kafka_partition);
        let mut last = None;
        for client in clients {
            match self.insert(client, table, rows, tag).await {
                Ok(()) => return Ok(()),
                Err(error) if unreachable(&error) => last = Some(error),
                Err(error) => return Err(WriteError::classify(error)),
            }
        }
        Err(WriteError::classify(last.expect("at least one server")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_names_its_partition_whatever_the_topic() {
        assert_eq!(tag_partition(&write_tag("lt-test-a-b", 7, 3, 100)), Some(7));
        assert_eq!(tag_partition(&write_tag("events", 0, 1, 0)), Some(0));
        assert_eq!(tag_partition("something else"), None);
    }

    #[test]
    fn data_errors_are_refusals_and_the_rest_is_retried() {
        let refused = "bad response: Code: 117, e.displayText() = DB::Exception: Incorrect data";
        let schema = "bad response: Code: 16, e.displayText() = DB::Exception: No such column x";
        let memory = "bad response: Code: 241, e.displayText() = DB::Exception: Memory limit";
        assert_eq!(error_code(refused), Some(117));
        assert!(REFUSED_DATA_CODES.contains(&error_code(refused).unwrap()));
        for retried in [schema, memory, "network error: connection refused"] {
            assert!(error_code(retried).is_none_or(|c| !REFUSED_DATA_CODES.contains(&c)));
        }
    }
}
