//! The ClickHouse row an event record becomes, with where it was read from on the stream.

use clickhouse::Row;
use linktrace_domain::EventRecord;
use serde::Serialize;

#[derive(Debug, Clone, Default, Row, Serialize)]
pub struct EventRow {
    pub event_id: String,
    pub account_id: String,
    pub environment: String,
    pub link_short_code: String,
    pub event_name: String,
    pub entity_id: String,
    pub user_id: String,
    pub properties: String,
    pub source: String,
    pub ip: String,
    pub user_agent: String,
    pub referrer: String,
    pub platform: String,
    pub click_id: String,
    pub country: String,
    pub city: String,
    pub device: String,
    pub os: String,
    pub browser: String,
    pub referrer_host: String,
    pub utm_source: String,
    pub utm_medium: String,
    pub utm_campaign: String,
    pub utm_term: String,
    pub utm_content: String,
    pub bot: u8,
    /// A repeated click (`ClickFacts::repeat`).
    pub is_repeat: u8,
    pub visitor: String,
    pub revenue_currency: String,
    pub revenue_micros: i64,
    /// `DateTime`: seconds since the epoch.
    pub event_time: u32,
    pub event_time_ms: u64,
    pub received_at: u32,
    pub kafka_topic: String,
    pub kafka_partition: u16,
    pub kafka_offset: u64,
}

/// Where a message sits on the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamPosition {
    pub partition: i32,
    pub offset: i64,
}

impl EventRow {
    pub fn new(record: &EventRecord, topic: &str, position: StreamPosition) -> Self {
        let client = record.client.as_deref().cloned().unwrap_or_default();
        let facts = client.facts.unwrap_or_default();
        let occurred_at = record.occurred_at();
        Self {
            event_id: record.event_id.to_string(),
            account_id: record.account_id.to_string(),
            environment: record.environment.storage_name().to_owned(),
            link_short_code: record.link_short_code.clone().unwrap_or_default(),
            event_name: record.event_name.clone(),
            entity_id: record.entity_id.clone().unwrap_or_default(),
            user_id: record.user_id.clone().unwrap_or_default(),
            properties: record
                .properties
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            source: record.source.as_str().to_owned(),
            ip: client.ip.unwrap_or_default(),
            user_agent: client.user_agent.unwrap_or_default(),
            referrer: client.referrer.unwrap_or_default(),
            platform: client.platform.unwrap_or_default(),
            click_id: client.click_id.unwrap_or_default(),
            country: facts.country,
            city: facts.city,
            device: facts
                .device
                .map(|d| d.as_str().to_owned())
                .unwrap_or_default(),
            os: facts.os,
            browser: facts.browser,
            referrer_host: facts.referrer_host,
            utm_source: facts.utm.source,
            utm_medium: facts.utm.medium,
            utm_campaign: facts.utm.campaign,
            utm_term: facts.utm.term,
            utm_content: facts.utm.content,
            bot: u8::from(facts.bot),
            is_repeat: u8::from(facts.repeat),
            visitor: facts.visitor,
            revenue_currency: record
                .revenue
                .as_ref()
                .map(|r| r.currency.as_str().to_owned())
                .unwrap_or_default(),
            revenue_micros: record.revenue.as_ref().map_or(0, |r| r.micros),
            event_time: seconds(occurred_at),
            event_time_ms: occurred_at.timestamp_millis().max(0) as u64,
            received_at: seconds(record.received_at),
            kafka_topic: topic.to_owned(),
            kafka_partition: u16::try_from(position.partition).unwrap_or_default(),
            kafka_offset: u64::try_from(position.offset).unwrap_or_default(),
        }
    }

    pub fn position(&self) -> StreamPosition {
        StreamPosition {
            partition: self.kafka_partition.into(),
            offset: self.kafka_offset as i64,
        }
    }
}

fn seconds(at: chrono::DateTime<chrono::Utc>) -> u32 {
    at.timestamp().clamp(0, u32::MAX.into()) as u32
}
