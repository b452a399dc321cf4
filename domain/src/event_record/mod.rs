//! The event record: what ingest and the api produce to the events topic and the consumer
//! writes to ClickHouse. JSON on the wire, versioned by `v`:
//!
//! - **1**: `eventTime` always written.
//! - **2**: `eventTime` written only where it differs from `receivedAt` (an event without a
//!   time of its own, most of them, was received when it happened): 42 of a plain event's
//!   329 bytes less on the stream, in the broker and through every reader.
//!
//! Readers take both. Writers write 2 unless `KAFKA_RECORD_SCHEMA_VERSION` says 1 (a rolling
//! upgrade whose older readers are still running; see the sink).

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    AttributionMatch, ClickFacts, EntityId, Environment, EventName, Revenue, ShortCode, SystemEvent,
};

/// A field's key as the writer takes it, `,"name":`, made at compile time (one copy a field
/// rather than three).
macro_rules! key {
    ($name:literal) => {
        concat!(",\"", $name, "\":")
    };
}

mod json;
mod layout;
mod time_text;

use json::JsonWriter;
pub use layout::{WriteLayout, OLDEST_SCHEMA_VERSION, SCHEMA_VERSION};
#[cfg(test)]
use time_text::rfc3339_micros_text;
use time_text::{rfc3339_micros, rfc3339_micros_some};

/// The namespace of deterministic event ids (UUID v5) for events that carry an entity id.
const ENTITY_EVENT_NAMESPACE: Uuid = Uuid::from_u128(0x6c69_6e6b_7472_6163_6500_0000_0000_0001);

/// Where an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventSource {
    /// `POST /api/v1/events` (and its batch form).
    Api,
    /// `POST /api/v1/capture-event`.
    Capture,
    /// The link redirect (`click`).
    Redirect,
    /// `POST /api/v1/attributions` (`install`).
    Attribution,
}

impl EventSource {
    pub fn as_str(self) -> &'static str {
        match self {
            EventSource::Api => "api",
            EventSource::Capture => "capture",
            EventSource::Redirect => "redirect",
            EventSource::Attribution => "attribution",
        }
    }
}

/// What a device told us when it followed a link.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientFacts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub click_id: Option<String>,
    /// Country, device, UTM and the rest, worked out by the redirect (clicks only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<ClickFacts>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRecord {
    #[serde(rename = "v")]
    pub schema_version: u32,
    /// Unique per stored event. Deterministic for entity events, so that any number of
    /// deliveries of the same tuple collapse into one stored event.
    pub event_id: Uuid,
    pub account_id: Uuid,
    pub environment: Environment,
    /// `None` for organic events (a capture-event from a user no link drove).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_short_code: Option<String>,
    pub event_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Free-form JSON the customer sent (`properties`, capture-event's `event_data`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<serde_json::Value>,
    /// What a conversion earned (`revenue`, capture-event's `event_data.amount`/`currency`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revenue: Option<Revenue>,
    /// The event holds a dedup claim in Postgres under its id although it has no entity id
    /// (an event of a request with an `Idempotency-Key`): the consumer checks and marks it
    /// stored by its id, as it does entity events. Written only when true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub claimed: bool,
    pub source: EventSource,
    /// Boxed: only clicks and installs carry it, and inline it more than doubled every
    /// record (and every future holding one: `bench/load-profile.sh`'s memcpy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<Box<ClientFacts>>,
    /// The id of the request that produced the event (`X-Request-Id`, given or made at the
    /// gateway or the service), so an event can be followed from a log line to the stream.
    /// In the value, not a Kafka header: a durable tansu stores each header as a row of its
    /// own, which cost it half again its CPU per event (bench/load-profile.sh).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// When the event happened, where that is not when it was received (an entity event's
    /// retry keeps its first attempt's time); `None`: it happened when it was received
    /// ([`Self::occurred_at`]). Readers make a written time equal to `receivedAt` `None`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "rfc3339_micros_some"
    )]
    pub event_time: Option<DateTime<Utc>>,
    #[serde(serialize_with = "rfc3339_micros")]
    pub received_at: DateTime<Utc>,
}

/// The key of an entity tuple's dedup claim, a v5 uuid of `(environment, account, link,
/// event, entity)`: Postgres's `entity_claim_key()` (migration 0011) computes the same, and
/// [`EventRecord::entity_event_id`] gives it to the tuple's event.
pub fn entity_claim_key(
    account_id: Uuid,
    environment: Environment,
    link: &str,
    event: &str,
    entity: &str,
) -> Uuid {
    // Unit separators keep ("ab","c") and ("a","bc") apart.
    let key = format!(
        "{}\u{1f}{account_id}\u{1f}{link}\u{1f}{event}\u{1f}{entity}",
        environment.as_str()
    );
    Uuid::new_v5(&ENTITY_EVENT_NAMESPACE, key.as_bytes())
}

impl EventRecord {
    /// An event that happened, and was received, `at`: no link, entity, user, properties or
    /// client facts yet (the other constructors, or the caller, add them).
    pub fn new(
        event_id: Uuid,
        account_id: Uuid,
        environment: Environment,
        event_name: impl Into<String>,
        source: EventSource,
        at: DateTime<Utc>,
    ) -> Self {
        let at = at.trunc_subsecs(6);
        Self {
            schema_version: SCHEMA_VERSION,
            event_id,
            account_id,
            environment,
            link_short_code: None,
            event_name: event_name.into(),
            entity_id: None,
            user_id: None,
            properties: None,
            revenue: None,
            claimed: false,
            source,
            client: None,
            request_id: None,
            event_time: None,
            received_at: at,
        }
    }

    /// A click on a link, recorded by the redirect: its id is the click id. Clicks are
    /// live events (a link has no test environment).
    pub fn click(
        account_id: Uuid,
        link: &str,
        click_id: Uuid,
        client: ClientFacts,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            link_short_code: Some(link.to_owned()),
            client: Some(Box::new(client)),
            ..Self::new(
                click_id,
                account_id,
                Environment::Live,
                SystemEvent::Click.as_str(),
                EventSource::Redirect,
                at,
            )
        }
    }

    /// An installed app opened through `link` by `user_id` (re-engagement): each open is its
    /// own occurrence, `event_id` its id.
    pub fn open(
        event_id: Uuid,
        account_id: Uuid,
        environment: Environment,
        user_id: &str,
        link: &str,
        client: ClientFacts,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            link_short_code: Some(link.to_owned()),
            user_id: Some(user_id.to_owned()),
            client: Some(Box::new(client)),
            ..Self::new(
                event_id,
                account_id,
                environment,
                SystemEvent::Open.as_str(),
                EventSource::Attribution,
                at,
            )
        }
    }

    /// A user's install, as attributed (to `link`, or organic when `None`): one per user and
    /// account, so its id is derived from them.
    pub fn install(
        account_id: Uuid,
        environment: Environment,
        user_id: &str,
        link: Option<String>,
        matched: AttributionMatch,
        client: ClientFacts,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            link_short_code: link,
            user_id: Some(user_id.to_owned()),
            properties: Some(serde_json::json!({ "matchType": matched.as_str() })),
            client: Some(Box::new(client)),
            ..Self::new(
                Self::install_event_id(account_id, environment, user_id),
                account_id,
                environment,
                SystemEvent::Install.as_str(),
                EventSource::Attribution,
                at,
            )
        }
    }

    /// The one id every delivery of `(account, environment, link, event, entity)` gets. The
    /// environment is part of it, so a test event never shares an id (and so a row that
    /// ClickHouse collapses) with a live one. It is also the key of the tuple's dedup claim
    /// in Postgres ([`entity_claim_key`]); a claim made before the environment was part of
    /// it keeps the id its event was stored with (`entity_claims.stored_event_id`).
    pub fn entity_event_id(
        account_id: Uuid,
        environment: Environment,
        link: &ShortCode,
        event: &EventName,
        entity: &EntityId,
    ) -> Uuid {
        entity_claim_key(
            account_id,
            environment,
            link.as_str(),
            event.as_str(),
            entity.as_str(),
        )
    }

    /// The key of the Postgres dedup claim this record's event holds (`entity_claims`): its
    /// entity tuple's ([`entity_claim_key`]), or, for an event of an idempotent request
    /// (`claimed`), its own id. A record of a claim made before the environment was part of
    /// the id has another id than its tuple's key; the key is what the claim is found by.
    pub fn claim_key(&self) -> Uuid {
        match (&self.link_short_code, &self.entity_id) {
            (Some(link), Some(entity)) if !self.claimed => entity_claim_key(
                self.account_id,
                self.environment,
                link,
                &self.event_name,
                entity,
            ),
            _ => self.event_id,
        }
    }

    /// The one id of a user's install in an account's environment (first attribution wins,
    /// so there is only ever one).
    pub fn install_event_id(account_id: Uuid, environment: Environment, user_id: &str) -> Uuid {
        let key = format!(
            "{}\u{1f}{account_id}\u{1f}install\u{1f}{user_id}",
            environment.as_str()
        );
        Uuid::new_v5(&ENTITY_EVENT_NAMESPACE, key.as_bytes())
    }

    /// The Kafka message key: the link's short code, so one link's events stay in order on
    /// one partition; organic events spread by account.
    pub fn partition_key(&self) -> std::borrow::Cow<'_, str> {
        match &self.link_short_code {
            Some(code) => code.as_str().into(),
            None => format!("organic:{}", self.account_id).into(),
        }
    }

    /// When the event happened: its own time, or when it was received.
    pub fn occurred_at(&self) -> DateTime<Utc> {
        self.event_time.unwrap_or(self.received_at)
    }

    /// The same record, which happened `at` (microseconds, as the record keeps them).
    pub fn happened_at(self, at: DateTime<Utc>) -> Self {
        let at = at.trunc_subsecs(6);
        Self {
            event_time: (at != self.received_at).then_some(at),
            ..self
        }
    }

    /// The same record, produced by the request `request_id` (see [`Self::request_id`]).
    pub fn with_request_id(self, request_id: Option<String>) -> Self {
        Self { request_id, ..self }
    }

    /// The record as it goes on the wire, in its own layout (`schema_version`; see
    /// [`JsonWriter`]).
    pub fn to_json(&self) -> Vec<u8> {
        self.write(self.schema_version)
    }

    /// The record in `layout` (1 writes `eventTime` always, 2 only where it differs from
    /// `receivedAt`).
    pub fn to_json_as(&self, layout: WriteLayout) -> Vec<u8> {
        self.write(layout.get())
    }

    fn write(&self, version: u32) -> Vec<u8> {
        // Room for a typical record up front: growing from an empty buffer reallocates
        // twice (bench/profile.sh).
        let mut out = JsonWriter(Vec::with_capacity(512));
        out.raw(b"{\"v\":");
        serde_json::to_writer(&mut out.0, &version).expect("a number serialises");
        out.uuid(key!("eventId"), &self.event_id);
        out.uuid(key!("accountId"), &self.account_id);
        out.text(key!("environment"), self.environment.as_str());
        out.optional_string(key!("linkShortCode"), &self.link_short_code);
        out.string(key!("eventName"), &self.event_name);
        out.optional_string(key!("entityId"), &self.entity_id);
        out.optional_string(key!("userId"), &self.user_id);
        out.optional(key!("properties"), &self.properties);
        out.optional(key!("revenue"), &self.revenue);
        if self.claimed {
            out.raw(key!("claimed").as_bytes());
            out.raw(b"true");
        }
        out.text(key!("source"), self.source.as_str());
        out.optional(key!("client"), &self.client);
        out.optional_string(key!("requestId"), &self.request_id);
        let event_time = match version {
            1 => Some(self.event_time.as_ref().unwrap_or(&self.received_at)),
            _ => self.event_time.as_ref(),
        };
        out.times(event_time, &self.received_at);
        out.raw(b"}");
        out.0
    }

    /// Reads a record from the wire, refusing layouts this build does not know.
    pub fn from_json(bytes: &[u8]) -> Result<Self, DecodeError> {
        #[derive(Deserialize)]
        struct Version {
            v: u32,
        }
        let version: Version =
            serde_json::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        if !(OLDEST_SCHEMA_VERSION..=SCHEMA_VERSION).contains(&version.v) {
            return Err(DecodeError::UnknownSchemaVersion(version.v));
        }
        let mut record: Self =
            serde_json::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        // One value for one meaning, whichever layout wrote it.
        if record.event_time == Some(record.received_at) {
            record.event_time = None;
        }
        Ok(record)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("malformed event record: {0}")]
    Malformed(String),
    #[error("unknown schema version {0}")]
    UnknownSchemaVersion(u32),
}

impl DecodeError {
    /// A short label for metrics and the dead-letter header.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::Malformed(_) => "malformed",
            DecodeError::UnknownSchemaVersion(_) => "unknown_schema_version",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn layout(version: u32) -> WriteLayout {
        version.to_string().parse().unwrap()
    }

    #[test]
    fn layouts_this_build_can_write() {
        assert_eq!(layout(1).get(), 1);
        assert_eq!(layout(SCHEMA_VERSION), WriteLayout::CURRENT);
        for refused in ["0", "3", "", "two", "-1"] {
            assert!(refused.parse::<WriteLayout>().is_err(), "{refused}");
        }
    }

    fn sample() -> EventRecord {
        EventRecord {
            schema_version: SCHEMA_VERSION,
            event_id: Uuid::new_v4(),
            account_id: Uuid::new_v4(),
            environment: Environment::Live,
            link_short_code: Some("abcd1234".into()),
            event_name: "purchase".into(),
            entity_id: None,
            user_id: None,
            properties: Some(serde_json::json!({"amount": 3})),
            revenue: Some(Revenue {
                currency: crate::Currency::parse("EUR").unwrap(),
                micros: 3_000_000,
            }),
            claimed: true,
            source: EventSource::Api,
            client: None,
            request_id: Some("req-1".into()),
            event_time: Some(Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()),
            received_at: Utc::now().trunc_subsecs(6),
        }
    }

    #[test]
    fn round_trips_through_json() {
        let record = sample();
        assert_eq!(EventRecord::from_json(&record.to_json()).unwrap(), record);
    }

    #[test]
    fn times_are_written_as_rfc3339_microseconds_and_read_back() {
        let at = DateTime::parse_from_rfc3339("2026-03-04T05:06:07.089123456Z")
            .unwrap()
            .with_timezone(&Utc);
        let record = EventRecord::new(
            Uuid::nil(),
            Uuid::nil(),
            Environment::Live,
            "x",
            EventSource::Api,
            at,
        );
        let json: serde_json::Value = serde_json::from_slice(&record.to_json()).unwrap();
        assert_eq!(json["v"], 2);
        assert_eq!(json.get("eventTime"), None, "received when it happened");
        assert_eq!(json["receivedAt"], "2026-03-04T05:06:07.089123Z");
        // Constructors keep microseconds, so what is produced is what is read back.
        assert_eq!(EventRecord::from_json(&record.to_json()).unwrap(), record);
        assert_eq!(record.occurred_at(), record.received_at);

        let earlier = record
            .clone()
            .happened_at(at - chrono::Duration::seconds(90));
        let json: serde_json::Value = serde_json::from_slice(&earlier.to_json()).unwrap();
        assert_eq!(json["eventTime"], "2026-03-04T05:04:37.089123Z");
        assert_eq!(json["receivedAt"], "2026-03-04T05:06:07.089123Z");
        assert_eq!(EventRecord::from_json(&earlier.to_json()).unwrap(), earlier);
        assert_eq!(
            record.clone().happened_at(at),
            record,
            "the same instant is no time of its own"
        );

        // Layout 1 (what builds before layout 2 wrote and read) always has both times.
        let json: serde_json::Value =
            serde_json::from_slice(&record.to_json_as(layout(1))).unwrap();
        assert_eq!(json["v"], 1);
        assert_eq!(json["eventTime"], "2026-03-04T05:06:07.089123Z");
        assert_eq!(json["receivedAt"], "2026-03-04T05:06:07.089123Z");
        let leap = Utc.with_ymd_and_hms(2016, 12, 31, 23, 59, 59).unwrap()
            + chrono::Duration::nanoseconds(1_500_000_000);
        assert!(EventRecord::from_json(
            &EventRecord::new(
                Uuid::nil(),
                Uuid::nil(),
                Environment::Live,
                "x",
                EventSource::Api,
                leap
            )
            .to_json()
        )
        .is_ok());
    }

    mod wire {
        use super::*;
        use proptest::prelude::*;

        fn text() -> impl Strategy<Value = String> {
            prop_oneof![
                "[a-z0-9_-]{1,12}",
                any::<String>(),
                Just("quote \" backslash \\ newline \n nul \u{0} tab \t é 😀".to_owned()),
            ]
        }

        fn time() -> impl Strategy<Value = DateTime<Utc>> {
            // Microseconds from before year 0 to past 9999 (chrono's own form there).
            (-70_000_000_000_000_000i64..300_000_000_000_000_000i64)
                .prop_map(|micros| DateTime::from_timestamp_micros(micros).unwrap())
        }

        fn record() -> impl Strategy<Value = EventRecord> {
            let ids = (
                any::<u128>(),
                any::<u128>(),
                any::<bool>(),
                0usize..4,
                any::<bool>(),
            );
            let names = (
                proptest::option::of(text()),
                text(),
                proptest::option::of(text()),
                proptest::option::of(text()),
                proptest::option::of(text()),
            );
            let extras = (
                proptest::option::of((text(), text(), any::<i64>())),
                proptest::option::of((
                    -1_000_000i64..1_000_000,
                    prop::sample::select(vec!["EUR", "USD", "JPY"]),
                )),
                proptest::option::of((proptest::option::of(text()), proptest::option::of(text()))),
                // None: it happened when it was received (the usual event).
                proptest::option::of(time()),
                time(),
            );
            (ids, names, extras).prop_map(
                |(
                    (event, account, live, source, claimed),
                    (link, name, entity, user, request_id),
                    (properties, revenue, client, event_time, received_at),
                )| EventRecord {
                    schema_version: SCHEMA_VERSION,
                    event_id: Uuid::from_u128(event),
                    account_id: Uuid::from_u128(account),
                    environment: if live { Environment::Live } else { Environment::Test },
                    link_short_code: link,
                    event_name: name,
                    entity_id: entity,
                    user_id: user,
                    properties: properties
                        .map(|(key, value, n)| serde_json::json!({ key: value, "n": n, "nested": [1.5, null, true] })),
                    revenue: revenue.map(|(micros, currency)| Revenue {
                        currency: crate::Currency::parse(currency).unwrap(),
                        micros,
                    }),
                    claimed,
                    source: [
                        EventSource::Api,
                        EventSource::Capture,
                        EventSource::Redirect,
                        EventSource::Attribution,
                    ][source],
                    client: client.map(|(ip, user_agent)| {
                        Box::new(ClientFacts {
                            ip,
                            user_agent,
                            ..ClientFacts::default()
                        })
                    }),
                    request_id,
                    event_time: event_time.filter(|at| *at != received_at),
                    received_at,
                },
            )
        }

        proptest! {
            #[test]
            fn time_text_is_chronos_own_for_years_0_to_9999(at in time()) {
                let chronos = at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
                match rfc3339_micros_text(&at) {
                    Some(text) => prop_assert_eq!(std::str::from_utf8(&text).unwrap(), chronos),
                    None => prop_assert!(!(0..=9999).contains(&chrono::Datelike::year(&at))),
                }
            }

            #[test]
            fn to_json_writes_exactly_what_the_serde_derive_writes(record in record()) {
                let written = record.to_json();
                let derived = serde_json::to_vec(&record).unwrap();
                prop_assert_eq!(
                    String::from_utf8(written.clone()).unwrap(),
                    String::from_utf8(derived).unwrap()
                );
                let read: EventRecord = serde_json::from_slice(&written).unwrap();
                prop_assert_eq!(&read.event_name, &record.event_name);
            }

            #[test]
            fn both_layouts_read_back_as_the_record_they_were(record in record()) {
                for version in OLDEST_SCHEMA_VERSION..=SCHEMA_VERSION {
                    let written = record.to_json_as(layout(version));
                    let mut read = EventRecord::from_json(&written).unwrap();
                    prop_assert_eq!(read.schema_version, version);
                    read.schema_version = record.schema_version;
                    prop_assert_eq!(&read, &record);
                    let json: serde_json::Value = serde_json::from_slice(&written).unwrap();
                    prop_assert_eq!(
                        json.get("eventTime").is_some(),
                        version == 1 || record.event_time.is_some()
                    );
                }
            }
        }
    }

    #[test]
    fn time_text_at_the_calendars_edges() {
        let text = |at: &str| {
            let at = DateTime::parse_from_rfc3339(at)
                .unwrap()
                .with_timezone(&Utc);
            rfc3339_micros_text(&at).map(|t| String::from_utf8(t.to_vec()).unwrap())
        };
        for at in [
            "0000-01-01T00:00:00.000000Z",
            "0000-02-29T12:00:00.000001Z",
            "1900-02-28T23:59:59.999999Z",
            "1900-03-01T00:00:00.000000Z",
            "1969-12-31T23:59:59.500000Z",
            "1970-01-01T00:00:00.000000Z",
            "2000-02-29T01:02:03.040506Z",
            "2024-12-31T23:59:59.999999Z",
            "9999-12-31T23:59:59.999999Z",
        ] {
            assert_eq!(text(at).as_deref(), Some(at));
        }
        for year in [-1, 10_000] {
            let outside = chrono::NaiveDate::from_ymd_opt(year, 6, 1)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap()
                .and_utc();
            assert_eq!(rfc3339_micros_text(&outside), None);
        }
        // A leap second stays inside its second, as it always has.
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
            .unwrap()
            .and_utc();
        assert_eq!(
            rfc3339_micros_text(&leap).map(|t| t.to_vec()),
            Some(b"2016-12-31T23:59:59.999999Z".to_vec())
        );
    }

    #[test]
    fn reads_layout_1_as_builds_before_layout_2_wrote_it() {
        // Bytes of a plain event as ingest wrote it before layout 2.
        let written = br#"{"v":1,"eventId":"0b0a5c6e-4f7e-4a51-9d4e-3f1f0c1d2e3f","accountId":"5f0e1d2c-3b4a-4958-8776-655443322110","environment":"live","linkShortCode":"abcd1234","eventName":"purchase","source":"api","requestId":"7d8e9f00-1a2b-4c3d-8e4f-5a6b7c8d9e0f","eventTime":"2026-11-24T21:00:50.123456Z","receivedAt":"2026-11-24T21:00:50.123456Z"}"#;
        let read = EventRecord::from_json(written).unwrap();
        assert_eq!(read.schema_version, 1);
        assert_eq!(read.event_time, None, "the same instant as receivedAt");
        assert_eq!(
            read.occurred_at()
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "2026-11-24T21:00:50.123456Z"
        );
        assert_eq!(
            read.to_json_as(layout(1)),
            written.to_vec(),
            "layout 1 writes what it read"
        );
        assert_eq!(
            read.to_json_as(WriteLayout::CURRENT).len(),
            written.len() - 42
        );
    }

    #[test]
    fn refuses_unknown_versions_and_garbage() {
        for version in [0, SCHEMA_VERSION + 1, 99] {
            let mut value = serde_json::to_value(sample()).unwrap();
            value["v"] = version.into();
            let bytes = serde_json::to_vec(&value).unwrap();
            assert_eq!(
                EventRecord::from_json(&bytes),
                Err(DecodeError::UnknownSchemaVersion(version))
            );
        }
        assert!(matches!(
            EventRecord::from_json(b"\xff\x00"),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn entity_event_ids_are_deterministic_and_distinct() {
        let account = Uuid::new_v4();
        let link = ShortCode::parse("abcd1234").unwrap();
        let event = EventName::parse("purchase").unwrap();
        let id = |account, environment, entity: &str| {
            EventRecord::entity_event_id(
                account,
                environment,
                &link,
                &event,
                &EntityId::parse(entity).unwrap(),
            )
        };
        let a = id(account, Environment::Live, "o-1");
        assert_eq!(a, id(account, Environment::Live, "o-1"));
        assert_ne!(a, id(account, Environment::Live, "o-2"));
        assert_ne!(a, id(account, Environment::Test, "o-1"));
        assert_ne!(a, id(Uuid::new_v4(), Environment::Live, "o-1"));
        assert_ne!(
            EventRecord::install_event_id(account, Environment::Live, "u"),
            EventRecord::install_event_id(account, Environment::Test, "u")
        );
    }
}
