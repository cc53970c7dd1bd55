//! The checker that builds a [`Network`](super::Network) from the raw file: [`Checker`]
//! collects every problem instead of stopping at the first, and its checks of single values
//! (numbers, hours, integers, coordinates, capabilities, service levels, ids and references
//! to ids) each report a located problem and hand back a harmless stand-in, so the build
//! goes on and finds the next one.

use super::{ConfigProblem, MAX_HOURS, MAX_NUMBER, line_column};
use crate::ids::Interner;
use crate::model::{Capabilities, ServiceLevel};
use std::ops::Range;
use toml::Spanned;

/// Collects problems while building a [`Network`](super::Network) from the raw file.
pub(super) struct Checker<'a> {
    /// The file's text, to turn byte spans into lines and columns.
    pub(super) text: &'a str,
    pub(super) problems: Vec<ConfigProblem>,
}

impl Checker<'_> {
    pub(super) fn report(
        &mut self,
        span: Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) {
        let (line, column) = line_column(self.text, span.start);
        self.problems.push(ConfigProblem {
            line,
            column,
            key: key.into(),
            message: message.into(),
        });
    }

    /// A finite number >= 0 (> 0 when `positive`), or a problem and 0.
    pub(super) fn non_negative(
        &mut self,
        value: &Spanned<f64>,
        key: String,
        positive: bool,
    ) -> f64 {
        self.bounded(value, key, positive, MAX_NUMBER)
    }

    /// Hours: at most a year, so an ETA always stays a date.
    pub(super) fn hours(&mut self, value: &Spanned<f64>, key: String) -> f64 {
        self.bounded(value, key, false, MAX_HOURS)
    }

    /// A finite number >= 0 (> 0 when `positive`) and at most `max`, or a problem and 0.
    fn bounded(&mut self, value: &Spanned<f64>, key: String, positive: bool, max: f64) -> f64 {
        let number = *value.get_ref();
        let ok = number.is_finite()
            && if positive {
                number > 0.0
            } else {
                number >= 0.0
            };
        if !ok {
            let wanted = if positive { "> 0" } else { ">= 0" };
            self.report(
                value.span(),
                key,
                format!("must be a finite number {wanted}, got {number}"),
            );
            return 0.0;
        }
        if number > max {
            self.report(
                value.span(),
                key,
                format!("must be at most {max}, got {number}"),
            );
            return 0.0;
        }
        number
    }

    /// An integer within `range`, or a problem and the range's start.
    pub(super) fn integer(&mut self, value: &Spanned<i64>, key: String, range: Range<i64>) -> i64 {
        let number = *value.get_ref();
        if !range.contains(&number) {
            let message = format!(
                "must be between {} and {}, got {number}",
                range.start,
                range.end - 1
            );
            self.report(value.span(), key, message);
            return range.start;
        }
        number
    }

    /// `latitude` within -90..=90 and `longitude` within -180..=180 (`key` is the entry's).
    pub(super) fn coordinates(
        &mut self,
        latitude: &Spanned<f64>,
        longitude: &Spanned<f64>,
        key: &str,
    ) {
        if !(-90.0..=90.0).contains(latitude.get_ref()) {
            let message = format!(
                "latitude must be within -90..=90, got {}",
                latitude.get_ref()
            );
            self.report(latitude.span(), format!("{key}.lat"), message);
        }
        if !(-180.0..=180.0).contains(longitude.get_ref()) {
            let message = format!(
                "longitude must be within -180..=180, got {}",
                longitude.get_ref()
            );
            self.report(longitude.span(), format!("{key}.lon"), message);
        }
    }

    /// The capabilities `names`, each of which must be known (`key` is the entry's).
    pub(super) fn capabilities(&mut self, names: &[Spanned<String>], key: &str) -> Capabilities {
        let mut set = Capabilities::NONE;
        for name in names {
            match Capabilities::parse_one(name.get_ref()) {
                Some(capability) => set = set.union(capability),
                None => self.report(
                    name.span(),
                    format!("{key}.capabilities"),
                    format!(
                        "unknown capability '{}'; known: {}",
                        name.get_ref(),
                        Capabilities::NAMES.join(", ")
                    ),
                ),
            }
        }
        set
    }

    /// The service level `name`, or a problem listing the known ones and `standard`.
    pub(super) fn service_level(&mut self, name: &Spanned<String>, key: String) -> ServiceLevel {
        ServiceLevel::parse(name.get_ref()).unwrap_or_else(|| {
            let known: Vec<_> = ServiceLevel::ALL.iter().map(|level| level.name()).collect();
            let message = format!(
                "unknown service level '{}'; known, slowest first: {}",
                name.get_ref(),
                known.join(", ")
            );
            self.report(name.span(), key, message);
            ServiceLevel::Standard
        })
    }

    /// Interns ids of one kind in the order given, reporting empty and repeated ones. (A
    /// config with a repeated id is refused, so the vectors built beside the interner may
    /// disagree with it in length only in a network that is thrown away.)
    pub(super) fn intern<'b>(
        &mut self,
        kind: &str,
        ids: impl Iterator<Item = &'b Spanned<String>>,
    ) -> Interner {
        let ids: Vec<_> = ids.collect();
        let mut interner = Interner::with_capacity(ids.len());
        for (index, id) in ids.into_iter().enumerate() {
            let key = format!("{kind}[{index}].id");
            if id.get_ref().trim().is_empty() {
                self.report(id.span(), key, "id must not be empty");
            } else if interner.insert(id.get_ref()).is_err() {
                let noun = kind.trim_end_matches('s');
                let message = format!("{noun} '{}' is defined twice", id.get_ref());
                self.report(id.span(), key, message);
            }
        }
        interner
    }

    /// The index of the `kind` id `name` in `interner`, or a problem listing the defined
    /// ones and 0.
    pub(super) fn lookup(
        &mut self,
        interner: &Interner,
        kind: &str,
        name: &Spanned<String>,
        key: String,
    ) -> u16 {
        match interner.get(name.get_ref()) {
            Some(index) => index as u16,
            None => {
                let known: Vec<_> = interner.names().take(40).collect();
                let message = format!(
                    "{kind} '{}' is not defined; defined {kind}s: {}",
                    name.get_ref(),
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                );
                self.report(name.span(), key, message);
                0
            }
        }
    }
}
