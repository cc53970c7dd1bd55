//! Time as the router sees it: UTC milliseconds since the Unix epoch.
//!
//! The routing engine never reads a clock; the decision time is passed in (`route` uses each
//! order's `created_at`, the service its injected clock). Parsing accepts any RFC 3339 offset;
//! output is always UTC with millisecond precision (`2026-11-11T00:00:01.004Z`), which is what
//! the decision contract shows.

use chrono::{DateTime, Datelike, Timelike};
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

impl fmt::Display for Millis {
    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`. Written digit by digit rather than through a chrono format
    /// string: this runs once or twice per decision on the hot path.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(time) = DateTime::from_timestamp_millis(self.0) else {
            return write!(formatter, "{}ms", self.0);
        };
        let year = time.year();
        if !(0..=9999).contains(&year) {
            return formatter.write_str(&time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        }
        let mut text = *b"0000-00-00T00:00:00.000Z";
        put_digits(&mut text[0..4], year as u32);
        put_digits(&mut text[5..7], time.month());
        put_digits(&mut text[8..10], time.day());
        put_digits(&mut text[11..13], time.hour());
        put_digits(&mut text[14..16], time.minute());
        put_digits(&mut text[17..19], time.second());
        put_digits(&mut text[20..23], self.0.rem_euclid(1000) as u32);
        // The buffer holds ASCII digits and punctuation only.
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
    }
}
