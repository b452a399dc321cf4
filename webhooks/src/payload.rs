//! The body of a delivery: `{"id", "type", "createdAt", "data"}`, `data` being the event as
//! stored (the fields a customer sent, what LinkTrace added: link, revenue, click facts).

use chrono::{DateTime, SecondsFormat, Utc};
use linktrace_domain::{ClickFacts, EventRecord};
use serde::Serialize;
use uuid::Uuid;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Delivery<'a> {
    id: Uuid,
    #[serde(rename = "type")]
    event_type: &'a str,
    /// When LinkTrace accepted the event.
    created_at: String,
    data: EventData<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventData<'a> {
    event_id: Uuid,
    event: &'a str,
    /// `live` or `test`.
    environment: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    short_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entity_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    properties: Option<&'a serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revenue: Option<Money<'a>>,
    source: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    click: Option<&'a ClickFacts>,
    occurred_at: String,
    received_at: String,
}

#[derive(Serialize)]
struct Money<'a> {
    /// Major units (12.5 is twelve and a half euros).
    amount: f64,
    currency: &'a str,
}

fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The exact bytes POSTed for `record` (every attempt sends these; the signature covers
/// them).
pub fn body(record: &EventRecord) -> String {
    let client = record.client.as_deref();
    let delivery = Delivery {
        id: record.event_id,
        event_type: &record.event_name,
        created_at: iso(record.received_at),
        data: EventData {
            event_id: record.event_id,
            event: &record.event_name,
            environment: record.environment.as_str(),
            short_code: record.link_short_code.as_deref(),
            entity_id: record.entity_id.as_deref(),
            user_id: record.user_id.as_deref(),
            properties: record.properties.as_ref(),
            revenue: record.revenue.as_ref().map(|r| Money {
                amount: r.micros as f64 / 1e6,
                currency: r.currency.as_str(),
            }),
            source: record.source.as_str(),
            platform: client.and_then(|c| c.platform.as_deref()),
            click: client.and_then(|c| c.facts.as_ref()),
            occurred_at: iso(record.occurred_at()),
            received_at: iso(record.received_at),
        },
    };
    serde_json::to_string(&delivery).expect("serialisable")
}

#[cfg(test)]
mod tests {
    use super::*;
    use linktrace_domain::{Currency, Environment, EventSource, Revenue};
    use serde_json::json;

    #[test]
    fn the_documented_envelope_with_the_event_inside() {
        let at: DateTime<Utc> = "2026-11-24T10:00:00.250Z".parse().unwrap();
        let mut record = EventRecord::new(
            Uuid::nil(),
            Uuid::nil(),
            Environment::Test,
            "purchase",
            EventSource::Api,
            at,
        );
        record.link_short_code = Some("spring24".into());
        record.entity_id = Some("order-1".into());
        record.revenue = Some(Revenue::new(12.5, Currency::parse("EUR").unwrap()).unwrap());
        record.properties = Some(json!({ "sku": "A1" }));
        let body: serde_json::Value = serde_json::from_str(&body(&record)).unwrap();
        assert_eq!(
            body,
            json!({
                "id": Uuid::nil(),
                "type": "purchase",
                "createdAt": "2026-11-24T10:00:00.250Z",
                "data": {
                    "eventId": Uuid::nil(),
                    "event": "purchase",
                    "environment": "test",
                    "shortCode": "spring24",
                    "entityId": "order-1",
                    "properties": { "sku": "A1" },
                    "revenue": { "amount": 12.5, "currency": "EUR" },
                    "source": "api",
                    "occurredAt": "2026-11-24T10:00:00.250Z",
                    "receivedAt": "2026-11-24T10:00:00.250Z",
                }
            })
        );
    }

    #[test]
    fn occurred_at_is_the_events_own_time_where_it_has_one() {
        let received: DateTime<Utc> = "2026-11-24T10:00:00.250Z".parse().unwrap();
        let earlier: DateTime<Utc> = "2026-11-24T09:58:30Z".parse().unwrap();
        let record = EventRecord::new(
            Uuid::nil(),
            Uuid::nil(),
            Environment::Live,
            "purchase",
            EventSource::Api,
            received,
        )
        .happened_at(earlier);
        // Through the wire, as the worker reads it.
        let read = EventRecord::from_json(&record.to_json()).unwrap();
        let body: serde_json::Value = serde_json::from_str(&body(&read)).unwrap();
        assert_eq!(body["data"]["occurredAt"], "2026-11-24T09:58:30.000Z");
        assert_eq!(body["data"]["receivedAt"], "2026-11-24T10:00:00.250Z");
        assert_eq!(body["createdAt"], "2026-11-24T10:00:00.250Z");
    }
}
