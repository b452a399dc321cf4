//! The record's JSON writer: field names, ids, times and enum values copied as they are.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::time_text::rfc3339_micros_text;

/// The record's JSON, written field by field: the same bytes as its `Serialize` derive
/// (a test holds them equal), but the field names, ids, times and enum values, which never
/// need escaping, are copied as they are. Through serde_json every byte of them went
/// through its escaping loop, the largest single cost of ingest above the limit handler
/// (about 2,900 instructions an event: bench/profile.sh). What a caller sent (names, ids,
/// properties, client facts) still goes through serde_json.
pub(super) struct JsonWriter(pub(super) Vec<u8>);

impl JsonWriter {
    pub(super) fn raw(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    /// `key` then `value` through serde_json.
    pub(super) fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) {
        self.raw(key.as_bytes());
        serde_json::to_writer(&mut self.0, value).expect("record fields always serialise");
    }

    pub(super) fn optional<T: Serialize>(&mut self, key: &str, value: &Option<T>) {
        if let Some(value) = value {
            self.field(key, value);
        }
    }

    /// `key"value"`: copied as it is when nothing in it needs escaping (serde_json escapes
    /// exactly the control characters, `"` and `\`), else through serde_json. (The check
    /// looks at every byte, without stopping early, so the compiler can check many a step.)
    pub(super) fn string(&mut self, key: &str, value: &str) {
        let needs_escaping = value.bytes().fold(false, |seen, b| {
            seen | (b < 0x20) | (b == b'"') | (b == b'\\')
        });
        if needs_escaping {
            self.field(key, value);
        } else {
            self.text(key, value);
        }
    }

    pub(super) fn optional_string(&mut self, key: &str, value: &Option<String>) {
        if let Some(value) = value {
            self.string(key, value);
        }
    }

    /// `key"value"`, for a value that needs no escaping.
    pub(super) fn text(&mut self, key: &str, value: &str) {
        self.raw(key.as_bytes());
        self.0.push(b'"');
        self.raw(value.as_bytes());
        self.0.push(b'"');
    }

    pub(super) fn uuid(&mut self, key: &str, id: &Uuid) {
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        self.text(key, id.hyphenated().encode_lower(&mut text));
    }

    pub(super) fn time(&mut self, key: &str, at: &DateTime<Utc>) {
        match rfc3339_micros_text(at) {
            Some(text) => self.text(key, std::str::from_utf8(&text).expect("ASCII digits")),
            None => self.field(key, at),
        }
    }

    /// `eventTime` (where written) and `receivedAt`.
    pub(super) fn times(
        &mut self,
        event_time: Option<&DateTime<Utc>>,
        received_at: &DateTime<Utc>,
    ) {
        if let Some(event_time) = event_time {
            self.time(key!("eventTime"), event_time);
        }
        self.time(key!("receivedAt"), received_at);
    }
}
