//! A query's text and its bound values, built together: each `?` is written by the same call
//! that binds its value, so no read keeps placeholders and values in step by hand.

use chrono::{DateTime, Utc};
use clickhouse::query::Query;
use clickhouse::Client;

/// A value bound to one `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(String),
    UInt32(u32),
    UInt64(u64),
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Value::Text(text.to_owned())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Self {
        Value::Text(text)
    }
}

impl From<u32> for Value {
    fn from(n: u32) -> Self {
        Value::UInt32(n)
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Self {
        Value::UInt64(n)
    }
}

/// SQL text with its values. Caller input only ever enters through [`Sql::value`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sql {
    text: String,
    values: Vec<Value>,
}

impl Sql {
    /// Text without placeholders (a `?` in it would have no value).
    pub fn new(text: &str) -> Self {
        let mut sql = Sql::default();
        sql.push(text);
        sql
    }

    /// Appends text without placeholders.
    pub fn push(&mut self, text: &str) -> &mut Self {
        debug_assert!(!text.contains('?'), "a placeholder without a value: {text}");
        self.text.push_str(text);
        self
    }

    /// Appends one placeholder and binds `value` to it.
    pub fn value(&mut self, value: impl Into<Value>) -> &mut Self {
        self.text.push('?');
        self.values.push(value.into());
        self
    }

    /// Appends `?, ?, …`, one per value.
    pub fn values<V: Into<Value>>(&mut self, values: impl IntoIterator<Item = V>) -> &mut Self {
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.value(value);
        }
        self
    }

    /// Appends another piece, its values after this one's.
    pub fn append(&mut self, other: &Sql) -> &mut Self {
        self.text.push_str(&other.text);
        self.values.extend(other.values.iter().cloned());
        self
    }

    /// `before`, then `inner` (its values), then `after`.
    pub fn wrap(inner: &Sql, before: &str, after: &str) -> Sql {
        let mut sql = Sql::new(before);
        sql.append(inner).push(after);
        sql
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn bound_values(&self) -> &[Value] {
        &self.values
    }

    /// The query to run, every value bound.
    pub fn query(&self, client: &Client) -> Query {
        self.values
            .iter()
            .fold(client.query(&self.text), |query, value| match value {
                Value::Text(text) => query.bind(text.as_str()),
                Value::UInt32(n) => query.bind(*n),
                Value::UInt64(n) => query.bind(*n),
            })
    }

    /// The SQL as sent, values inlined (for the catalog the SQL tests run).
    pub fn display(&self, client: &Client) -> String {
        self.query(client).sql_display().to_string()
    }
}

/// A `DateTime` bound: seconds since the epoch, clamped to what ClickHouse's `DateTime` holds.
pub fn secs(at: DateTime<Utc>) -> u32 {
    at.timestamp().clamp(0, u32::MAX.into()) as u32
}

/// An `event_time_ms` bound: milliseconds since the epoch.
pub fn millis(at: DateTime<Utc>) -> u64 {
    at.timestamp_millis().max(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_placeholder_is_written_with_its_value() {
        let mut inner = Sql::new("SELECT 1 WHERE a = ");
        inner.value("x");
        let mut sql = Sql::wrap(&inner, "SELECT * FROM (", ") WHERE b IN (");
        sql.values([1u32, 2]).push(") AND c = ").value(7u64);
        assert_eq!(
            sql.text(),
            "SELECT * FROM (SELECT 1 WHERE a = ?) WHERE b IN (?, ?) AND c = ?"
        );
        assert_eq!(
            sql.bound_values(),
            [
                Value::from("x"),
                Value::UInt32(1),
                Value::UInt32(2),
                Value::UInt64(7)
            ]
        );
        assert_eq!(sql.text().matches('?').count(), sql.bound_values().len());
    }
}
