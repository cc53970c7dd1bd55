//! The routing engine: a pure function from (order, a zone's state, policy, decision time)
//! to a plan. No I/O, no clock, no locks, no await; it only reads the zone's state. The
//! caller (a shard) commits the plan it returns.
//!
//! For one zone, [`plan_zone`] finds the lowest-scoring plan that places every unit, or says
//! why there is none; [`plan_partial`] places as many units as it can (for backorders). The
//! search, and why its cost per order is bounded, is written up in `docs/routing.md`:
//!
//! 1. Candidates: the zone's enabled warehouses with daily capacity left.
//! 2. Every single-warehouse plan (a candidate holding every unit, able to handle every
//!    capability, with a carrier service that fits) is scored exactly.
//! 3. Split plans (when the order and the policy allow) enumerate subsets of 2 to
//!    `max_shipments` warehouses among the `split_candidates` best candidates that hold any
//!    of the units, in order of a lower bound of their score; a subset whose lower bound
//!    cannot beat the best plan so far is pruned with everything after it. Within a subset
//!    units go to the warehouse with the lowest bound first.
//! 4. For each shipment the carrier service is chosen exactly: the cheapest feasible one by
//!    `cost_weight * cost`, ties on carrier id, then cost, then the slower level.
//!
//! Score of a plan (lower wins): for each shipment, `distance_weight * km + cost_weight *
//! cost + load_weight * utilisation + rank_weight * rank`, plus `split_weight` for every
//! shipment beyond the first. Ties break on warehouse rank, then warehouse id, then carrier
//! id (of each shipment in turn), then fewer shipments.
//!
//! ## The files, step by step
//!
//! This file holds the public types and [`plan_zone`], which runs the steps in order.
//! `context.rs` is [`OrderContext`], what is derived from the order once. Then one file per
//! step: `candidates.rs` (1), `single.rs` (2), `split.rs` (3), `carrier.rs` (4).
//! `parcel.rs` turns units into a priced shipment and `score.rs` decides which of two plans
//! wins; every step uses both. `partial.rs` is [`plan_partial`], the backorder's plan.

mod candidates;
mod carrier;
mod context;
mod parcel;
mod partial;
mod rules;
mod score;
mod single;
mod split;

pub use context::{Demand, OrderContext, OrderFacts};
pub use partial::plan_partial;
pub use rules::{RuleEffect, Subject};

use crate::model::{LineQuantity, Shipment};
use crate::time::Millis;
use crate::zone::ZoneState;
use candidates::{Candidate, collect_candidates, zone_covers};
use single::best_single_warehouse_plan;
use smallvec::SmallVec;
use split::search_splits;

/// A plan for one order in one zone: the shipments to reserve and what waits for stock.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub shipments: SmallVec<[Shipment; 1]>,
    pub backordered: SmallVec<[LineQuantity; 1]>,
    pub score: f64,
}

/// Why a zone could not place an order, as flags gathered over every warehouse and carrier
/// looked at. `zone::verdict::reason_for` picks the most informative one.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Failures {
    /// No warehouse (with capacity, able to handle the goods) holds the units.
    pub no_stock: bool,
    /// A warehouse holding the units has used its daily capacity.
    pub warehouse_capacity: bool,
    /// No carrier serves the region with the capabilities and weight.
    pub no_carrier: bool,
    /// Carriers fit, but none offers the level asked for (within its `max_km`).
    pub service_unavailable: bool,
    /// A fitting carrier service has used its daily pickups at the warehouse.
    pub pickup_capacity: bool,
    /// Services fit but none arrives by `promise_by`; the earliest ETA seen.
    pub earliest_late_eta: Option<Millis>,
}

impl Failures {
    /// Combines two sets of flags.
    pub fn merge(&mut self, other: &Failures) {
        self.no_stock |= other.no_stock;
        self.warehouse_capacity |= other.warehouse_capacity;
        self.no_carrier |= other.no_carrier;
        self.service_unavailable |= other.service_unavailable;
        self.pickup_capacity |= other.pickup_capacity;
        self.earliest_late_eta = match (self.earliest_late_eta, other.earliest_late_eta) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

/// Reusable buffers, so routing an order allocates nothing but its plan.
#[derive(Default)]
pub struct Scratch {
    candidates: Vec<Candidate>,
    split_candidates: Vec<Candidate>,
    /// Units of each demand per chosen warehouse: `[chosen * demands + demand]`.
    assignment: Vec<u32>,
}

/// What a zone can do with an order.
#[derive(Debug)]
pub enum ZoneAttempt {
    /// Every unit placed.
    Placed(Plan),
    /// Not every unit: why.
    Failed(Failures),
}

/// Finds the best plan that places every unit of the order in `zone`, or why there is none.
pub fn plan_zone(context: &OrderContext, zone: &ZoneState, scratch: &mut Scratch) -> ZoneAttempt {
    let mut failures = Failures::default();
    collect_candidates(context, zone, &mut scratch.candidates, &mut failures);
    let mut best = best_single_warehouse_plan(context, zone, &scratch.candidates, &mut failures);
    let one_warehouse_holds_all = scratch
        .candidates
        .iter()
        .any(|candidate| candidate.holds_all);
    if !one_warehouse_holds_all {
        failures.no_stock = true;
    }

    let split_allowed = context.facts.split_allowed
        && context.policy().max_shipments >= 2
        && context.facts.units >= 2;
    if split_allowed && zone_covers(context, zone, &scratch.candidates) {
        // What stopped a split is only worth reporting when splitting was the only way: a
        // subset that failed on, say, one parcel's promise says little about an order a
        // single warehouse could have shipped but for its carrier.
        let mut split_failures = Failures::default();
        search_splits(context, zone, scratch, &mut best, &mut split_failures);
        if !one_warehouse_holds_all {
            failures.merge(&split_failures);
        }
    }
    match best {
        Some(plan) => ZoneAttempt::Placed(plan),
        None => ZoneAttempt::Failed(failures),
    }
}
