use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};

/// A calendar month in UTC: the period a monthly event quota applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BillingMonth {
    first_day: NaiveDate,
}

impl BillingMonth {
    /// The month `instant` falls in. UTC's date is the one the instant holds: no offset is
    /// applied (`year()`/`month()` on the `DateTime` apply one each; this runs on every
    /// production event, `bench/profile.sh`).
    pub fn containing(instant: DateTime<Utc>) -> Self {
        let first_day = instant
            .date_naive()
            .with_day(1)
            .expect("every month has a first day");
        Self { first_day }
    }

    pub fn first_day(self) -> NaiveDate {
        self.first_day
    }

    pub fn next(self) -> Self {
        let (year, month) = match self.first_day.month() {
            12 => (self.first_day.year() + 1, 1),
            m => (self.first_day.year(), m + 1),
        };
        Self {
            first_day: NaiveDate::from_ymd_opt(year, month, 1)
                .expect("the first day of an existing month is a valid date"),
        }
    }

    /// When this month's quota resets: the 1st of the next month at 00:00:00.000Z, in the
    /// documented `resetsOn` format.
    pub fn resets_on(self) -> String {
        let start = Utc.from_utc_datetime(
            &self
                .next()
                .first_day
                .and_hms_opt(0, 0, 0)
                .expect("midnight exists"),
        );
        start.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resets_on_first_of_next_month() {
        let at = Utc.with_ymd_and_hms(2026, 11, 23, 6, 0, 0).unwrap();
        assert_eq!(
            BillingMonth::containing(at).resets_on(),
            "2026-12-01T00:00:00.000Z"
        );
    }

    #[test]
    fn december_rolls_into_next_year() {
        let at = Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).unwrap();
        assert_eq!(
            BillingMonth::containing(at).resets_on(),
            "2027-01-01T00:00:00.000Z"
        );
        let jan = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(
            BillingMonth::containing(jan).first_day(),
            NaiveDate::from_ymd_opt(2027, 1, 1).unwrap()
        );
        let leap = Utc.with_ymd_and_hms(2028, 2, 29, 12, 0, 0).unwrap();
        assert_eq!(
            BillingMonth::containing(leap).first_day(),
            NaiveDate::from_ymd_opt(2028, 2, 1).unwrap()
        );
        assert_eq!(
            BillingMonth::containing(jan),
            BillingMonth::containing(at).next()
        );
    }
}
