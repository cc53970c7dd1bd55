//! The one batch decision: a zone takes a batch of visits, at one time, under one config
//! snapshot, and says what became of each.
//!
//! This is the whole of deciding in a zone, whoever drives it: the service's zone actor
//! (`crate::serve::zone_actor`) calls it once per message, `route` (`crate::route::Router`)
//! once per step of each order's journey, and the benches and property tests call it as
//! they do. What it returns, in a [`Decided`]:
//!
//! - every answer, rendered into the caller's output buffer, with its place in the batch;
//! - the new decisions among them (for the decision feed, and the capacity check);
//! - when the caller journals, the journal record of each new decision ([`RecordBatch`]),
//!   in decision order;
//! - the visits that go on to another zone, and those that wait here (a duplicate whose
//!   original is still on its way).
//!
//! No I/O, no clock (the decision time is passed in), no lock beyond the claims table's.

use super::Zone;
use super::journey::{Outcome, Step, Visit};
use super::records::RecordBatch;
use crate::config::Network;
use crate::ids::ZoneId;
use crate::limits::PREFETCH_AHEAD;
use crate::model::Tally;
use crate::time::Millis;
use std::ops::Range;

/// An answer's place: its position in the batch it came in, and where its line is in the
/// output buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placed {
    pub outcome: Outcome,
    pub index: u32,
    pub start: u32,
    pub end: u32,
}

/// A new decision made in the batch: where its answer is in the output, and its record's
/// slot in the zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fresh {
    pub answer: Range<usize>,
    pub slot: u32,
}

/// What one call of [`decide`] made of its batch. Reusable: [`Decided::clear`] keeps the
/// capacity.
#[derive(Debug, Default)]
pub struct Decided {
    /// Every visit answered here, in the order taken.
    pub answers: Vec<Placed>,
    /// The new decisions among the answers.
    pub fresh: Vec<Fresh>,
    /// Visits that go on, each to its next zone, in the order taken (a zone passes orders
    /// on in the order it took them: what keeps a duplicate behind its original).
    pub forwards: Vec<(ZoneId, Visit)>,
    /// Duplicates whose original is not decided yet: to be taken again here a little later.
    pub waiting: Vec<Visit>,
    /// The answers counted by outcome.
    pub tally: Tally,
    /// The journal records of the new decisions, when the caller journals.
    pub records: Option<RecordBatch>,
}

impl Decided {
    /// An empty outcome; `journal` asks for the records of new decisions.
    pub fn new(journal: bool) -> Decided {
        Decided {
            records: journal.then(RecordBatch::default),
            ..Decided::default()
        }
    }

    /// Empties it for another batch, keeping the buffers.
    pub fn clear(&mut self) {
        self.answers.clear();
        self.fresh.clear();
        self.forwards.clear();
        self.waiting.clear();
        self.tally = Tally::default();
        if let Some(records) = &mut self.records {
            records.clear();
        }
    }

    /// Whether anything was answered (a batch that only passed orders on has no record to
    /// wait for and nothing to say).
    pub fn answered(&self) -> bool {
        !self.answers.is_empty()
    }

    /// The forwards grouped by next zone, in the order taken within each zone (one
    /// message per zone, and the order within a zone is what keeps a duplicate behind its
    /// original).
    pub fn forwards_by_zone(&mut self) -> Vec<(ZoneId, Vec<Visit>)> {
        let mut by_zone: Vec<(ZoneId, Vec<Visit>)> = Vec::new();
        for (to, visit) in self.forwards.drain(..) {
            match by_zone.iter_mut().find(|(zone, _)| *zone == to) {
                Some((_, visits)) => visits.push(visit),
                None => by_zone.push((to, vec![visit])),
            }
        }
        by_zone
    }

    /// Whether any new decision reserved stock or capacity (placed, not rejected).
    pub fn placed_any(&self) -> bool {
        self.tally.routed + self.tally.backordered + self.tally.held > 0
    }
}

/// Takes every visit of `visits` one step in `zone`, under `network` at `now`, appending
/// each answer to `out` and what became of each visit to `decided` (which it does not
/// clear). `visits` is left empty, its capacity kept.
pub fn decide(
    zone: &mut Zone,
    network: &Network,
    visits: &mut Vec<Visit>,
    now: Millis,
    out: &mut Vec<u8>,
    decided: &mut Decided,
) {
    for visit in visits.iter().take(PREFETCH_AHEAD) {
        zone.prefetch(&visit.order);
    }
    let mut batch = visits.drain(..);
    while let Some(visit) = batch.next() {
        if let Some(ahead) = batch.as_slice().get(PREFETCH_AHEAD - 1) {
            zone.prefetch(&ahead.order);
        }
        let (index, start) = (visit.index, out.len());
        match zone.visit(network, visit, now, out) {
            Step::Answered(outcome) => {
                decided.tally.lines += 1;
                match outcome {
                    Outcome::Decided(status, slot) => {
                        decided.tally.count_decision(status);
                        decided.fresh.push(Fresh {
                            answer: start..out.len(),
                            slot,
                        });
                        if let Some(records) = &mut decided.records {
                            let record = zone.state().order(slot);
                            records.push_decision(record, network, zone.catalog());
                        }
                    }
                    Outcome::Duplicate => decided.tally.duplicates += 1,
                    Outcome::Invalid(code) => decided.tally.count_invalid(code),
                }
                decided.answers.push(Placed {
                    outcome,
                    index,
                    start: start as u32,
                    end: out.len() as u32,
                });
            }
            Step::Forward(to, visit) => decided.forwards.push((to, visit)),
            Step::Wait(visit) => decided.waiting.push(visit),
        }
    }
}
