//! Which events a read counts: one selector for every analytics read and the export, parsed
//! from one parameter syntax.

use linktrace_domain::{EventName, ParseError, SystemEvent};
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

use crate::analytics::sql::Sql;

/// Which events are counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventSelector {
    Clicks,
    Installs,
    /// Opens of an installed app through a link (`POST /api/v1/opens`).
    Opens,
    /// Every custom post-install event (all but clicks, installs and opens).
    Events,
    /// One customer event name.
    Named(String),
}

impl EventSelector {
    /// `clicks`, `installs`, `opens`, `events`; a name the pipeline records (`click`,
    /// `install`, `open`: the same as the plurals); or a customer's event name (lowercased).
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let lower = raw.to_lowercase();
        Ok(match lower.as_str() {
            "clicks" => EventSelector::Clicks,
            "installs" => EventSelector::Installs,
            "opens" => EventSelector::Opens,
            "events" => EventSelector::Events,
            other => match SystemEvent::parse(other) {
                Some(SystemEvent::Click) => EventSelector::Clicks,
                Some(SystemEvent::Install) => EventSelector::Installs,
                Some(SystemEvent::Open) => EventSelector::Opens,
                None => EventSelector::Named(EventName::parse(raw)?.as_str().to_owned()),
            },
        })
    }

    /// The one stored `event_name` this selects (`None`: several, for [`EventSelector::Events`]).
    pub fn stored_name(&self) -> Option<&str> {
        match self {
            EventSelector::Clicks => Some(SystemEvent::Click.as_str()),
            EventSelector::Installs => Some(SystemEvent::Install.as_str()),
            EventSelector::Opens => Some(SystemEvent::Open.as_str()),
            EventSelector::Events => None,
            EventSelector::Named(name) => Some(name),
        }
    }

    /// The condition on `event_name` this selects.
    pub fn condition(&self) -> Sql {
        let mut sql = Sql::default();
        match self.stored_name() {
            Some(name) => {
                sql.push("event_name = ").value(name);
            }
            None => {
                sql.push("event_name NOT IN (").values([
                    SystemEvent::Click.as_str(),
                    SystemEvent::Install.as_str(),
                    SystemEvent::Open.as_str(),
                ]);
                sql.push(")");
            }
        }
        sql
    }
}

/// The `event` parameter: `clicks`, `installs`, `opens`, `events`, or an event name.
#[derive(Debug, Clone)]
pub struct EventParam(pub EventSelector);

impl<'de> Deserialize<'de> for EventParam {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        EventSelector::parse(&raw)
            .map(EventParam)
            .map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for EventParam {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        linktrace_domain::schema::text(
            Some("^[A-Za-z][A-Za-z0-9_]*$"),
            Some(1),
            Some(EventName::MAX_LEN),
            "clicks, installs, opens, events, or one event name",
        )
    }
}
impl ToSchema for EventParam {}

/// The `eventName` parameter of the rollup reports: the same syntax as [`EventParam`], for
/// one stored name only (`events`, which selects several, is refused).
#[derive(Debug, Clone)]
pub struct EventNameParam(pub String);

impl<'de> Deserialize<'de> for EventNameParam {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let EventParam(selector) = EventParam::deserialize(deserializer)?;
        selector
            .stored_name()
            .map(|name| EventNameParam(name.to_owned()))
            .ok_or_else(|| {
                serde::de::Error::custom(
                    "must name one event (events selects several: use GET /api/v1/analytics?event=events)",
                )
            })
    }
}

impl utoipa::PartialSchema for EventNameParam {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        linktrace_domain::schema::text(
            Some("^[A-Za-z][A-Za-z0-9_]*$"),
            Some(1),
            Some(EventName::MAX_LEN),
            "one event name as customers send it (lowercased), or click, install or open",
        )
    }
}
impl ToSchema for EventNameParam {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals_and_recorded_names_select_the_same_events() {
        assert_eq!(
            EventSelector::parse("clicks").unwrap(),
            EventSelector::Clicks
        );
        assert_eq!(
            EventSelector::parse("Click").unwrap(),
            EventSelector::Clicks
        );
        assert_eq!(EventSelector::parse("open").unwrap(), EventSelector::Opens);
        assert_eq!(
            EventSelector::parse("Purchase").unwrap(),
            EventSelector::Named("purchase".into())
        );
        assert!(EventSelector::parse("9lives").is_err());
        assert_eq!(EventSelector::Events.stored_name(), None);
    }

    #[test]
    fn every_condition_binds_its_names() {
        let named = EventSelector::Named("purchase".into()).condition();
        assert_eq!(named.text(), "event_name = ?");
        let events = EventSelector::Events.condition();
        assert_eq!(events.text(), "event_name NOT IN (?, ?, ?)");
        assert_eq!(events.bound_values().len(), 3);
    }
}
