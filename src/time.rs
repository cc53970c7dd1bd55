//! Time as the router sees it: UTC milliseconds since the Unix epoch.
//!
//! The routing engine never reads a clock; the decision time is passed in (`route` uses each
//! order's `created_at`, the service its injected clock). Parsing accepts any RFC 3339 offset;
//! output is always UTC with millisecond precision (`2026-11-11T00:00:01.004Z`), which is what
//! the decision contract shows.

use crate::rounding::round_to_i64;
use chrono::{DateTime, Datelike};
use std::cell::Cell;
use std::fmt;

/// Milliseconds per UTC day: daily capacities count per UTC day of the decision time.
pub const MILLIS_PER_DAY: i64 = 86_400_000;

/// A point in time, UTC milliseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Millis(pub i64);

impl Millis {
    /// Parses an RFC 3339 timestamp (any offset); `None` when it is not one. Sub-millisecond
    /// digits are truncated.
    ///
    /// ```
    /// use order_router::time::Millis;
    /// let time = Millis::parse_rfc3339("2026-11-11T08:00:01.004+08:00").unwrap();
    /// assert_eq!(time.to_string(), "2026-11-11T00:00:01.004Z");
    /// assert_eq!(Millis::parse_rfc3339("11/11/2026"), None);
    /// ```
    pub fn parse_rfc3339(text: &str) -> Option<Millis> {
        Millis::parse_utc_fast(text.as_bytes()).or_else(|| {
            DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|time| Millis(time.timestamp_millis()))
        })
    }

    /// The common shape, `YYYY-MM-DDTHH:MM:SS[.f...]Z`, without chrono's general parser:
    /// every order carries one or two times, and this is several times cheaper. Anything
    /// else (offsets, odd shapes, invalid dates) returns `None` and goes to chrono, which
    /// also has the last word on what is valid.
    fn parse_utc_fast(text: &[u8]) -> Option<Millis> {
        if text.len() < 20 || *text.last()? != b'Z' {
            return None;
        }
        let digits = |range: std::ops::Range<usize>| -> Option<u32> {
            text.get(range)?.iter().try_fold(0u32, |value, byte| {
                byte.is_ascii_digit()
                    .then(|| value * 10 + u32::from(byte - b'0'))
            })
        };
        if text[4] != b'-'
            || text[7] != b'-'
            || !matches!(text[10], b'T' | b't')
            || text[13] != b':'
            || text[16] != b':'
        {
            return None;
        }
        let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
        let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
        let millis = match text.len() {
            20 => 0,
            length if text[19] == b'.' && length >= 22 => {
                let fraction = &text[20..length - 1];
                if fraction.is_empty() || !fraction.iter().all(u8::is_ascii_digit) {
                    return None;
                }
                // Milliseconds: the first three digits, padded; the rest truncated.
                fraction
                    .iter()
                    .chain(std::iter::repeat(&b'0'))
                    .take(3)
                    .fold(0, |value, byte| value * 10 + u32::from(byte - b'0'))
            }
            _ => return None,
        };
        if hour > 23 || minute > 59 || second > 59 {
            // Leap seconds and the like: chrono decides.
            return None;
        }
        let recent = RECENT_DAYS.get();
        let days = match recent.iter().find(|(_, date)| text[..10] == *date) {
            Some((days, _)) => *days,
            None => {
                let date = chrono::NaiveDate::from_ymd_opt(year as i32, month, day)?;
                let days = i64::from(date.num_days_from_ce()) - 719_163;
                let date = text[..10].try_into().expect("ten bytes");
                RECENT_DAYS.set([(days, date), recent[0]]);
                days
            }
        };
        let seconds = i64::from(hour * 3600 + minute * 60 + second);
        Some(Millis(
            days * MILLIS_PER_DAY + seconds * 1000 + i64::from(millis),
        ))
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
    /// Saturates instead of overflowing: a config may legally ask for absurd hours, and an
    /// ETA at the end of time is then simply late for every promise.
    #[inline]
    pub fn plus_hours(self, hours: f64) -> Millis {
        // Saturates for out-of-range floats (and maps NaN to 0), as `as` does.
        Millis(self.0.saturating_add(round_to_i64(hours * 3_600_000.0)))
    }
}

impl Millis {
    /// Appends `YYYY-MM-DDTHH:MM:SS.mmmZ` to `out`. Runs once or twice per decision, so the
    /// digits are written directly, and the date part comes from the thread's recent days
    /// ([`RECENT_DAYS`]) when it is one of them: chrono does the calendar (days to year, month,
    /// day) a few times a day, and nothing else.
    pub fn write_rfc3339(self, out: &mut Vec<u8>) {
        let days = self.0.div_euclid(MILLIS_PER_DAY);
        let in_day = self.0.rem_euclid(MILLIS_PER_DAY) as u32;
        let mut text = *b"0000-00-00T00:00:00.000Z";
        let recent = RECENT_DAYS.get();
        match recent.iter().find(|(recent, _)| *recent == days) {
            Some((_, date)) => text[..10].copy_from_slice(date),
            None => {
                let Some(date) = date_text(days) else {
                    // Outside what RFC 3339 can write in four digits: say it in milliseconds.
                    out.extend_from_slice(format!("{}ms", self.0).as_bytes());
                    return;
                };
                RECENT_DAYS.set([(days, date), recent[0]]);
                text[..10].copy_from_slice(&date);
            }
        }
        let seconds = in_day / 1000;
        text[11..13].copy_from_slice(two_digits(seconds / 3600));
        text[14..16].copy_from_slice(two_digits(seconds / 60 % 60));
        text[17..19].copy_from_slice(two_digits(seconds % 60));
        let millis = in_day % 1000;
        text[20] = b'0' + (millis / 100) as u8;
        text[21..23].copy_from_slice(two_digits(millis % 100));
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

thread_local! {
    /// The two calendar days this thread last met (days since the epoch, and `YYYY-MM-DD`),
    /// the newer first: a stream's times fall on a few days (an order's creation today, its
    /// promise and ETA a day or two on), so the calendar (chrono's days to year, month and
    /// day, and back) runs a few times a day per thread instead of for every time parsed or
    /// written (measured in `docs/benchmarks.md`). Only valid dates of years 0 to 9999 are
    /// kept; `i64::MIN` is no day.
    static RECENT_DAYS: Cell<[(i64, [u8; 10]); 2]> = const { Cell::new([(i64::MIN, [0; 10]); 2]) };
}

/// `YYYY-MM-DD` of day `days` since the epoch, if its year has four digits.
fn date_text(days: i64) -> Option<[u8; 10]> {
    // 719_163 is the number of days from 0001-01-01 (chrono's day 1) to 1970-01-01.
    let date = i32::try_from(days + 719_163)
        .ok()
        .and_then(chrono::NaiveDate::from_num_days_from_ce_opt)
        .filter(|date| (0..=9999).contains(&date.year()))?;
    let mut text = *b"0000-00-00";
    put_digits(&mut text[0..4], date.year() as u32);
    put_digits(&mut text[5..7], date.month());
    put_digits(&mut text[8..10], date.day());
    Some(text)
}

/// `value` (below 100) as two decimal digits, from a table: a time's six pairs of digits
/// without a division per digit.
#[inline]
fn two_digits(value: u32) -> &'static [u8] {
    const PAIRS: &[u8; 200] = b"\
        0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let at = value as usize * 2;
    &PAIRS[at..at + 2]
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
        assert_eq!(Millis::parse_rfc3339("2026-02-30T00:00:00Z"), None);
        assert_eq!(Millis::parse_rfc3339("2026-11-11T24:00:00Z"), None);
        assert_eq!(Millis::parse_rfc3339("2026-11-11T00:00:00.Z"), None);
        assert_eq!(
            Millis::parse_rfc3339("2026-11-11T00:00:00.1234Z")
                .unwrap()
                .to_string(),
            "2026-11-11T00:00:00.123Z"
        );
        assert_eq!(Millis::parse_rfc3339("yesterday"), None);
    }

    proptest::proptest! {
        /// The hand-written digits agree with chrono's formatter from year 0 to 9999;
        /// outside that range the text is the milliseconds.
        #[test]
        fn writes_what_chrono_writes(millis in -62_200_000_000_000i64..253_500_000_000_000) {
            let mut text = Vec::new();
            Millis(millis).write_rfc3339(&mut text);
            let expected = DateTime::from_timestamp_millis(millis)
                .filter(|time| (0..=9999).contains(&time.year()))
                .map_or_else(|| format!("{millis}ms"), |time| time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
            proptest::prop_assert_eq!(String::from_utf8(text).unwrap(), expected);
        }
    }

    #[test]
    fn writes_the_ends_of_months_years_and_eras() {
        for date in [
            "0000-01-01",
            "0000-02-29",
            "0000-03-01",
            "1969-12-31",
            "1970-01-01",
            "2000-02-29",
            "2000-03-01",
            "2024-02-29",
            "2100-02-28",
            "2100-03-01",
            "2400-02-29",
            "9999-12-31",
        ] {
            let time = Millis::parse_rfc3339(&format!("{date}T23:59:59.999Z")).unwrap();
            assert_eq!(time.to_string(), format!("{date}T23:59:59.999Z"));
        }
        assert_eq!(Millis(-62_167_219_200_001).to_string(), "-62167219200001ms");
        assert_eq!(Millis(253_402_300_800_000).to_string(), "253402300800000ms");
    }

    proptest::proptest! {
        /// The fast parser agrees with chrono on every UTC time it accepts, at every
        /// fraction length.
        #[test]
        fn fast_parse_agrees_with_chrono(millis in -62_135_596_800_000i64..253_402_300_799_999, digits in 0usize..7) {
            let time = DateTime::from_timestamp_millis(millis).unwrap();
            let text = match digits {
                0 => time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                3 => time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
                6 => time.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
                other => format!("{}.{}Z", time.format("%Y-%m-%dT%H:%M:%S"), &format!("{:03}000", millis.rem_euclid(1000))[..other]),
            };
            let chrono_value = DateTime::parse_from_rfc3339(&text).map(|parsed| parsed.timestamp_millis()).ok();
            proptest::prop_assert_eq!(Millis::parse_utc_fast(text.as_bytes()).map(|time| time.0), chrono_value, "{}", text);
        }
    }

    proptest::proptest! {
        /// Times written and parsed in turn on a few neighbouring days, as a stream's are
        /// (the thread's last day answers most of them): every text is chrono's, and parses
        /// back to its instant.
        #[test]
        fn times_of_neighbouring_days_write_and_parse_as_chrono_does(
            first in -62_000_000_000_000i64..253_000_000_000_000,
            steps in proptest::collection::vec(-3 * MILLIS_PER_DAY..3 * MILLIS_PER_DAY, 1..40),
        ) {
            let mut millis = first;
            for step in steps {
                millis += step;
                let mut text = Vec::new();
                Millis(millis).write_rfc3339(&mut text);
                let text = String::from_utf8(text).unwrap();
                let expected = DateTime::from_timestamp_millis(millis).unwrap();
                proptest::prop_assert_eq!(&text, &expected.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
                proptest::prop_assert_eq!(Millis::parse_rfc3339(&text), Some(Millis(millis)));
                // The same day, an hour out of range: refused though the day is the last one.
                let bad = format!("{}T24{}", &text[..10], &text[13..]);
                proptest::prop_assert_eq!(Millis::parse_rfc3339(&bad), None);
            }
        }
    }

    #[test]
    fn a_date_that_does_not_exist_is_refused_after_the_day_before_it() {
        assert!(Millis::parse_rfc3339("2026-02-28T10:00:00Z").is_some());
        assert_eq!(Millis::parse_rfc3339("2026-02-29T10:00:00Z"), None);
        assert!(Millis::parse_rfc3339("2028-02-29T10:00:00Z").is_some());
        assert_eq!(Millis::parse_rfc3339("2028-02-30T10:00:00Z"), None);
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
        assert_eq!(time.plus_hours(1e300), Millis(i64::MAX));
        assert_eq!(time.plus_hours(f64::INFINITY), Millis(i64::MAX));
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
