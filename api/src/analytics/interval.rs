//! A series' bucket, for every read that answers a series: hour, day, week (from Monday) or
//! month, in a time zone, exact across DST changes.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// The longest range of an hourly series.
pub const MAX_HOURLY_DAYS: i64 = 31;

/// A series' bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    /// Ranges of up to 31 days.
    Hour,
    #[default]
    Day,
    /// Starting Monday.
    Week,
    Month,
}

impl Interval {
    /// Refuses an hourly series over more than [`MAX_HOURLY_DAYS`].
    pub fn check_range(self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<(), ApiError> {
        if self == Interval::Hour && to - from > Duration::days(MAX_HOURLY_DAYS) {
            return Err(ApiError::validation(format!(
                "interval: hourly series may cover at most {MAX_HOURLY_DAYS} days"
            )));
        }
        Ok(())
    }

    /// The start of the bucket holding `at`, in `at`'s zone.
    pub fn bucket_start(self, at: DateTime<Tz>) -> DateTime<Tz> {
        let zone = at.timezone();
        let date = at.date_naive();
        let day = match self {
            Interval::Hour => {
                // Local hours can repeat or vanish at DST changes: step in UTC, truncate locally.
                let seconds = i64::from(at.minute()) * 60 + i64::from(at.second());
                return at
                    - Duration::seconds(seconds)
                    - Duration::nanoseconds(at.nanosecond().into());
            }
            Interval::Day => date,
            Interval::Week => date - Duration::days(date.weekday().num_days_from_monday().into()),
            Interval::Month => date.with_day(1).unwrap_or(date),
        };
        local_midnight(zone, day)
    }

    /// The start of the bucket after the one starting at `start`.
    fn next_bucket(self, start: DateTime<Tz>) -> DateTime<Tz> {
        let zone = start.timezone();
        let date = start.date_naive();
        match self {
            Interval::Hour => self.bucket_start(start + Duration::hours(1)),
            Interval::Day => local_midnight(zone, date + Duration::days(1)),
            Interval::Week => local_midnight(zone, date + Duration::days(7)),
            Interval::Month => {
                let (year, month) = if date.month() == 12 {
                    (date.year() + 1, 1)
                } else {
                    (date.year(), date.month() + 1)
                };
                local_midnight(
                    zone,
                    NaiveDate::from_ymd_opt(year, month, 1).unwrap_or(date),
                )
            }
        }
    }

    /// The start of every bucket `[from, to)` touches, in `zone`, in time order.
    pub fn buckets_between(
        self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        zone: Tz,
    ) -> Vec<DateTime<Tz>> {
        let mut starts = vec![];
        let mut start = self.bucket_start(from.with_timezone(&zone));
        while start.with_timezone(&Utc) < to {
            starts.push(start);
            let next = self.next_bucket(start);
            if next <= start {
                break;
            }
            start = next;
        }
        starts
    }
}

/// Midnight of `day` in `zone` (or the first instant of the day where DST skips midnight).
fn local_midnight(zone: Tz, day: NaiveDate) -> DateTime<Tz> {
    let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists");
    (0..=4)
        .find_map(|quarter| {
            zone.from_local_datetime(&(midnight + Duration::minutes(15 * quarter)))
                .earliest()
        })
        .unwrap_or_else(|| zone.from_utc_datetime(&midnight))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn starts(buckets: Vec<DateTime<Tz>>) -> Vec<String> {
        buckets.iter().map(|b| b.to_rfc3339()).collect()
    }

    #[test]
    fn buckets_follow_the_zone() {
        let kolkata: Tz = "Asia/Kolkata".parse().unwrap();
        let days = Interval::Day.buckets_between(
            at("2026-11-01T00:00:00Z"),
            at("2026-11-03T00:00:00Z"),
            kolkata,
        );
        assert_eq!(
            starts(days),
            [
                "2026-11-01T00:00:00+05:30",
                "2026-11-02T00:00:00+05:30",
                "2026-11-03T00:00:00+05:30"
            ]
        );
        let months = Interval::Month.buckets_between(
            at("2026-01-15T00:00:00Z"),
            at("2026-03-02T00:00:00Z"),
            Tz::UTC,
        );
        assert_eq!(months.len(), 3);
        let weeks = Interval::Week.buckets_between(
            at("2026-11-04T00:00:00Z"),
            at("2026-11-10T00:00:00Z"),
            Tz::UTC,
        );
        assert_eq!(
            starts(weeks),
            ["2026-11-02T00:00:00+00:00", "2026-11-09T00:00:00+00:00"]
        );
    }

    #[test]
    fn dst_days_are_23_and_25_hours() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let days = Interval::Day.buckets_between(
            at("2026-03-28T12:00:00Z"),
            at("2026-03-30T12:00:00Z"),
            berlin,
        );
        assert_eq!(
            days[2].timestamp() - days[1].timestamp(),
            23 * 3600,
            "29 March 2026 has 23 hours in Berlin"
        );
        let hours = Interval::Hour.buckets_between(
            at("2026-10-25T00:00:00Z"),
            at("2026-10-25T03:00:00Z"),
            berlin,
        );
        assert_eq!(hours.len(), 3, "a repeated local hour is two buckets");
    }

    #[test]
    fn only_hourly_series_are_bounded_to_31_days() {
        let (from, to) = (at("2026-01-01T00:00:00Z"), at("2026-02-15T00:00:00Z"));
        assert!(Interval::Hour.check_range(from, to).is_err());
        assert!(Interval::Day.check_range(from, to).is_ok());
        assert!(Interval::Hour
            .check_range(from, from + Duration::days(31))
            .is_ok());
    }
}
