//! Time as the router sees it: UTC milliseconds since the Unix epoch.
//!
//! The routing engine never reads a clock; the decision time is passed in (`route` uses each
//! order's `created_at`, the service its injected clock). Parsing accepts any RFC 3339 offset;
//! output is always UTC with millisecond precision (`2026-11-11T00:00:01.004Z`), which is what
//! the decision contract shows.

use chrono::{DateTime, Datelike};
use std::fmt;

/// Milliseconds per UTC day: daily capacities count per UTC day of the decision time.
pub const MILLIS_PER_DAY: i64 = 86_400_000;

/// A point in time, UTC milliseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Millis(pub i64);

impl Millis {
    /// Parses an RFC 3339 timestamp (any offset); `None` when it is not one. Sub-millisecond
    /// digits are truncated.
    pub fn parse_rfc3339(text: &str) -> Option<Millis> {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|time| Millis(time.timestamp_millis()))
    }

    /// The wall clock now. Only binaries and the service's clock call this.
    pub fn now() -> Millis {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Millis(i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
    }

    /// The UTC day number (days since the epoch) this instant falls in.
    #[inline]
    pub fn utc_day(self) -> i32 {
        // Any i64 millisecond count divided by a day fits in i32 for the years chrono accepts.
        self.0.div_euclid(MILLIS_PER_DAY) as i32
    }

    /// This instant plus a (possibly fractional) number of hours, rounded to the millisecond.
    #[inline]
    pub fn plus_hours(self, hours: f64) -> Millis {
        Millis(self.0 + (hours * 3_600_000.0).round() as i64)
    }
}

impl Millis {
    /// Appends `YYYY-MM-DDTHH:MM:SS.mmmZ` to `out`. Runs once or twice per decision, so the
    /// digits are written directly: chrono does the calendar (days to year, month, day) and
    /// nothing else.
    pub fn write_rfc3339(self, out: &mut Vec<u8>) {
        let days = self.0.div_euclid(MILLIS_PER_DAY);
        let in_day = self.0.rem_euclid(MILLIS_PER_DAY) as u32;
        // 719_163 is the number of days from 0001-01-01 (chrono's day 1) to 1970-01-01.
        let date = i32::try_from(days + 719_163)
            .ok()
            .and_then(chrono::NaiveDate::from_num_days_from_ce_opt)
            .filter(|date| (0..=9999).contains(&date.year()));
        let Some(date) = date else {
            // Outside what RFC 3339 can write in four digits: say it in milliseconds.
            out.extend_from_slice(format!("{}ms", self.0).as_bytes());
            return;
        };
        let mut text = *b"0000-00-00T00:00:00.000Z";
        put_digits(&mut text[0..4], date.year() as u32);
        put_digits(&mut text[5..7], date.month());
        put_digits(&mut text[8..10], date.day());
        put_digits(&mut text[11..13], in_day / 3_600_000);
        put_digits(&mut text[14..16], in_day / 60_000 % 60);
        put_digits(&mut text[17..19], in_day / 1000 % 60);
        put_digits(&mut text[20..23], in_day % 1000);
        out.extend_from_slice(&text);
    }
}

impl fmt::Display for Millis {
    /// The same text as [`Millis::write_rfc3339`].
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = Vec::with_capacity(24);
        self.write_rfc3339(&mut text);
        formatter.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

/// Writes `value` as zero-padded decimal filling `out`.
fn put_digits(out: &mut [u8], mut value: u32) {
    for byte in out.iter_mut().rev() {
        *byte = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_offsets_and_formats_utc_millis() {
        let time = Millis::parse_rfc3339("2026-11-11T08:00:01.004+08:00").unwrap();
        assert_eq!(time.to_string(), "2026-11-11T00:00:01.004Z");
        assert_eq!(
            Millis::parse_rfc3339("2026-11-11T00:00:01Z")
                .unwrap()
                .to_string(),
            "2026-11-11T00:00:01.000Z"
        );
        assert_eq!(Millis::parse_rfc3339("2026-11-11"), None);
        assert_eq!(Millis::parse_rfc3339("yesterday"), None);
    }

    proptest::proptest! {
        /// The hand-written digits agree with chrono's formatter over years 0001 to 9999.
        #[test]
        fn formats_like_chrono(millis in -62_135_596_800_000i64..253_402_300_799_999) {
            let chrono_text = DateTime::from_timestamp_millis(millis)
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            proptest::prop_assert_eq!(Millis(millis).to_string(), chrono_text);
        }
    }

    #[test]
    fn days_and_hours() {
        let time = Millis::parse_rfc3339("2026-11-11T23:30:00Z").unwrap();
        assert_eq!(time.plus_hours(0.5).utc_day(), time.utc_day() + 1);
        assert_eq!(
            time.plus_hours(1.25).to_string(),
            "2026-11-12T00:45:00.000Z"
        );
        assert_eq!(Millis(-1).utc_day(), -1);
        assert_eq!(Millis(-1).to_string(), "1969-12-31T23:59:59.999Z");
        assert_eq!(Millis(0).to_string(), "1970-01-01T00:00:00.000Z");
        // Leap day, and the same instant through chrono's own formatter.
        let leap = Millis::parse_rfc3339("2028-02-29T13:07:09.123Z").unwrap();
        assert_eq!(leap.to_string(), "2028-02-29T13:07:09.123Z");
        let chrono_text = DateTime::from_timestamp_millis(leap.0)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        assert_eq!(leap.to_string(), chrono_text);
    }
}
