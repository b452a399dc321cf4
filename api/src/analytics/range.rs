//! The time range of every read (the analytics reports and breakdowns, the export): its
//! bounds as the caller writes them, its time zone, and one rule for defaults and limits.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

use crate::error::ApiError;

/// A range bound: an instant, or a calendar date read in the request's time zone.
#[derive(Debug, Clone, Copy)]
pub enum RangeBound {
    At(DateTime<Utc>),
    Date(NaiveDate),
}

impl<'de> Deserialize<'de> for RangeBound {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        if let Ok(at) = DateTime::parse_from_rfc3339(&raw) {
            return Ok(RangeBound::At(at.with_timezone(&Utc)));
        }
        NaiveDate::parse_from_str(&raw, "%Y-%m-%d")
            .map(RangeBound::Date)
            .map_err(|_| serde::de::Error::custom("must be an ISO-8601 date-time or date"))
    }
}

impl RangeBound {
    /// The instant: a date is its midnight in `zone` (`end`: the next midnight).
    pub fn resolve(self, zone: Tz, end: bool) -> DateTime<Utc> {
        match self {
            RangeBound::At(at) => at,
            RangeBound::Date(day) => {
                let day = if end {
                    day.succ_opt().unwrap_or(day)
                } else {
                    day
                };
                let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists");
                zone.from_local_datetime(&midnight)
                    .earliest()
                    .map(|at| at.with_timezone(&Utc))
                    .unwrap_or_else(|| Utc.from_utc_datetime(&midnight))
            }
        }
    }
}

impl utoipa::PartialSchema for RangeBound {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        linktrace_domain::schema::text(
            None,
            Some(10),
            Some(64),
            "an ISO-8601 date-time (2026-11-01T00:00:00Z) or date (2026-11-01)",
        )
    }
}
impl ToSchema for RangeBound {}

/// An IANA time-zone name.
#[derive(Debug, Clone, Copy)]
pub struct Zone(pub Tz);

impl<'de> Deserialize<'de> for Zone {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        raw.parse::<Tz>().map(Zone).map_err(|_| {
            serde::de::Error::custom("must be an IANA time-zone name (e.g. Europe/Berlin)")
        })
    }
}

impl utoipa::PartialSchema for Zone {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        linktrace_domain::schema::text(
            None,
            Some(1),
            Some(64),
            "an IANA time-zone name, e.g. Asia/Kolkata",
        )
    }
}
impl ToSchema for Zone {}

/// How a read takes its `from` and `to`: the span `from` defaults to, the longest range, and
/// what the refusal calls the range.
pub struct RangeRule {
    pub default_days: i64,
    pub max_days: i64,
    pub noun: &'static str,
}

impl RangeRule {
    /// `[from, to)` as asked (dates read in `zone`), `to` defaulting to `default_to` and
    /// `from` to `default_days` before it; refused when empty or longer than `max_days`.
    pub fn resolve(
        &self,
        from: Option<RangeBound>,
        to: Option<RangeBound>,
        zone: Tz,
        default_to: DateTime<Utc>,
    ) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
        let to = to.map_or(default_to, |b| b.resolve(zone, true));
        let from = from.map_or(to - Duration::days(self.default_days), |b| {
            b.resolve(zone, false)
        });
        if from >= to {
            return Err(ApiError::validation("from must be before to"));
        }
        if to - from > Duration::days(self.max_days) {
            return Err(ApiError::validation(format!(
                "from: {} may cover at most {} days",
                self.noun, self.max_days
            )));
        }
        Ok((from, to))
    }
}
