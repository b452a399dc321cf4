//! Where batches are written. ClickHouse in production; a test stands in only to fail.

use async_trait::async_trait;
use clickhouse::Client;

use crate::exactly_once::HighWaterMarks;
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
    /// The highest offset stored per partition of `topic`.
    async fn high_water_marks(&self, topic: &str) -> Result<HighWaterMarks, WriteError>;

    /// Writes one run (one partition, increasing offsets, one table partition) as a single
    /// INSERT: every row or none.
    async fn write(&self, rows: &[EventRow]) -> Result<(), WriteError>;
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
    async fn high_water_marks(&self, topic: &str) -> Result<HighWaterMarks, WriteError> {
        linktrace_platform::clickhouse::stored_offsets(&self.client, topic)
            .await
            .map_err(|e| WriteError::Retryable(e.to_string()))
    }

    #[tracing::instrument(name = "write", skip_all, fields(rows = rows.len()))]
    async fn write(&self, rows: &[EventRow]) -> Result<(), WriteError> {
        let mut insert = self
            .client
            .insert::<EventRow>("events")
            .await
            .map_err(WriteError::classify)?;
        for row in rows {
            insert.write(row).await.map_err(WriteError::classify)?;
        }
        insert.end().await.map_err(WriteError::classify)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
