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
//! - where each visit that was not answered goes next: on to another zone, or waiting here
//!   (a duplicate whose original is still on its way). Those visits stay in the caller's
//!   batch, in the order taken, so that an order's visit is moved once per zone at most
//!   ([`Decided::onward`] takes them out, grouped by next zone).
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

/// Where a visit that was not answered goes next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// On to this zone.
    Forward(ZoneId),
    /// A duplicate whose original is not decided yet: to be taken again here a little later.
    Wait,
}

/// The visits of a decided batch that were not answered, taken out of it
/// ([`Decided::onward`]).
#[derive(Debug, Default)]
pub struct Onward {
    /// The visits that go on, grouped by next zone (one message per zone), each group in
    /// the order taken (a zone passes orders on in the order it took them: what keeps a
    /// duplicate behind its original).
    pub forwards: Vec<(ZoneId, Vec<Visit>)>,
    /// Duplicates whose original is not decided yet, in the order taken.
    pub waiting: Vec<Visit>,
}

/// About the bytes of one decision's journal record in the demo world (one shipment, one
/// or two lines, the buyer: 130 to 160): what [`Decided::for_batch`] reserves a record.
const DECISION_RECORD_BYTES: usize = 160;

/// What one call of [`decide`] made of its batch. Reusable: [`Decided::clear`] keeps the
/// capacity.
#[derive(Debug, Default)]
pub struct Decided {
    /// Every visit answered here, in the order taken.
    pub answers: Vec<Placed>,
    /// The new decisions among the answers.
    pub fresh: Vec<Fresh>,
    /// Where each visit left in the batch goes next: `next[i]` is that of the batch's
    /// `i`-th visit after [`decide`] (which leaves there, in the order taken, exactly the
    /// visits it did not answer).
    pub next: Vec<Next>,
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

    /// An empty outcome with room for a batch of `visits` answered: no buffer grows while
    /// the batch is decided (a caller that makes one per batch, as the zone actor does,
    /// would otherwise grow each from nothing, copying as it doubles).
    pub fn for_batch(journal: bool, visits: usize) -> Decided {
        Decided {
            answers: Vec::with_capacity(visits),
            fresh: Vec::with_capacity(visits),
            next: Vec::with_capacity(visits),
            records: journal
                .then(|| RecordBatch::with_capacity(visits, visits * DECISION_RECORD_BYTES)),
            ..Decided::default()
        }
    }

    /// Empties it for another batch, keeping the buffers.
    pub fn clear(&mut self) {
        self.answers.clear();
        self.fresh.clear();
        self.next.clear();
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

    /// Takes the visits [`decide`] left in `visits` (the batch it decided, emptied here,
    /// its capacity kept): those that go on, grouped by next zone, and those that wait.
    pub fn onward(&mut self, visits: &mut Vec<Visit>) -> Onward {
        debug_assert_eq!(visits.len(), self.next.len(), "the batch as decide left it");
        // Each group sized first (a visit is a few hundred bytes: a Vec grown by doubling
        // copies them again at each step).
        let mut counts: Vec<(ZoneId, usize)> = Vec::new();
        let mut waiting = 0;
        for next in &self.next {
            match *next {
                Next::Forward(to) => match counts.iter_mut().find(|(zone, _)| *zone == to) {
                    Some((_, count)) => *count += 1,
                    None => counts.push((to, 1)),
                },
                Next::Wait => waiting += 1,
            }
        }
        let mut onward = Onward {
            forwards: counts
                .into_iter()
                .map(|(zone, count)| (zone, Vec::with_capacity(count)))
                .collect(),
            waiting: Vec::with_capacity(waiting),
        };
        for (visit, next) in visits.drain(..).zip(self.next.drain(..)) {
            match next {
                Next::Forward(to) => onward
                    .forwards
                    .iter_mut()
                    .find(|(zone, _)| *zone == to)
                    .expect("every zone counted above")
                    .1
                    .push(visit),
                Next::Wait => onward.waiting.push(visit),
            }
        }
        onward
    }

    /// Whether any new decision reserved stock or capacity (placed, not rejected).
    pub fn placed_any(&self) -> bool {
        self.tally.routed + self.tally.backordered + self.tally.held > 0
    }
}

/// Takes every visit of `visits` one step in `zone`, under `network` at `now`, appending
/// each answer to `out` and what became of each visit to `decided` (which it does not
/// clear). The answered visits leave `visits`; the others stay, updated for their next
/// step, in the order taken, and `decided.next` (cleared by the caller) says where each
/// goes.
pub fn decide(
    zone: &mut Zone,
    network: &Network,
    visits: &mut Vec<Visit>,
    now: Millis,
    out: &mut Vec<u8>,
    decided: &mut Decided,
) {
    // Two stages ahead: a visit was written on the HTTP worker's core, so reading one to
    // learn its SKUs is a miss of its own; the visit `2 * PREFETCH_AHEAD` on is loaded
    // whole, the one `PREFETCH_AHEAD` on (loaded by then) has its stock cells and SKU
    // entries loaded. The first visits are read at once: loading them ahead gains nothing.
    for visit in visits.iter().skip(PREFETCH_AHEAD).take(PREFETCH_AHEAD) {
        crate::prefetch::prefetch_whole(visit);
    }
    for visit in visits.iter().skip(1).take(PREFETCH_AHEAD - 1) {
        zone.prefetch(&visit.order);
    }
    // The visits that go on are kept at the front, in the order taken; each stays where it
    // is unless an answered one before it left a gap.
    let mut kept = 0;
    for taken in 0..visits.len() {
        if let Some(far) = visits.get(taken + 2 * PREFETCH_AHEAD) {
            crate::prefetch::prefetch_whole(far);
        }
        if let Some(ahead) = visits.get(taken + PREFETCH_AHEAD) {
            zone.prefetch(&ahead.order);
        }
        let visit = &mut visits[taken];
        let (index, start) = (visit.index, out.len());
        let next = match zone.visit(network, visit, now, out) {
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
                            let record = zone.state().hot(slot).expect("decided just now");
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
                continue;
            }
            Step::Forward(to) => Next::Forward(to),
            Step::Wait => Next::Wait,
        };
        decided.next.push(next);
        if kept != taken {
            visits.swap(kept, taken);
        }
        kept += 1;
    }
    visits.truncate(kept);
}
