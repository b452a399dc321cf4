//! Times as the record writes them, `YYYY-MM-DDTHH:MM:SS.ffffffZ`, by arithmetic rather than
//! chrono's formatting machinery (bench/profile.sh measured the difference).

use chrono::{DateTime, Utc};
use serde::Serialize;

/// [`rfc3339_micros`] of a time that is there (`None` is skipped before this is called).
pub(super) fn rfc3339_micros_some<S: serde::Serializer>(
    at: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => rfc3339_micros(at, serializer),
        None => serializer.serialize_none(),
    }
}

/// Writes `at` as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (what chrono reads back; microseconds are
/// finer than anything stored) without the formatting machinery chrono's `Display` goes
/// through: that was a tenth of ingest's own instructions per event (bench/profile.sh).
pub(super) fn rfc3339_micros<S: serde::Serializer>(
    at: &DateTime<Utc>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match rfc3339_micros_text(at) {
        Some(text) => serializer.serialize_str(std::str::from_utf8(&text).expect("ASCII digits")),
        None => at.serialize(serializer),
    }
}

/// `at` as `YYYY-MM-DDTHH:MM:SS.ffffffZ`, for years 0 to 9999 (others: chrono's form).
/// The date from the day number by arithmetic (Hinnant's `civil_from_days`): chrono's
/// calendar accessors cost some 300 instructions a time (bench/profile.sh). A test holds
/// the text equal to chrono's own.
pub(super) fn rfc3339_micros_text(at: &DateTime<Utc>) -> Option<[u8; 27]> {
    let seconds = at.timestamp();
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400) as u32;
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        return None;
    }
    // Two digits a step, from a table: `value % 100` as text.
    const PAIRS: [u8; 200] = {
        let mut pairs = [0u8; 200];
        let mut n = 0;
        while n < 100 {
            pairs[2 * n] = b'0' + (n / 10) as u8;
            pairs[2 * n + 1] = b'0' + (n % 10) as u8;
            n += 1;
        }
        pairs
    };
    fn put2(buffer: &mut [u8], value: u32) {
        let at = (value % 100) as usize * 2;
        buffer.copy_from_slice(&PAIRS[at..at + 2]);
    }
    let year = year as u32;
    // A leap second's nanoseconds run past 1e9: keep it inside its second.
    let micros = at.timestamp_subsec_micros().min(999_999);
    let mut text = *b"0000-00-00T00:00:00.000000Z";
    put2(&mut text[0..2], year / 100);
    put2(&mut text[2..4], year);
    put2(&mut text[5..7], month);
    put2(&mut text[8..10], day);
    put2(&mut text[11..13], of_day / 3600);
    put2(&mut text[14..16], of_day / 60 % 60);
    put2(&mut text[17..19], of_day % 60);
    put2(&mut text[20..22], micros / 10_000);
    put2(&mut text[22..24], micros / 100);
    put2(&mut text[24..26], micros);
    Some(text)
}

/// (year, month 1–12, day 1–31) of the proleptic Gregorian calendar, `days` after
/// 1970-01-01 (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms").
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}
