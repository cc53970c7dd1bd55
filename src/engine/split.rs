//! Step 3 of the search: plans of 2 to `max_shipments` shipments, by branch and bound over
//! subsets of the best `split_candidates` candidates ([`search_splits`]).
//!
//! Candidates are ranked by a lower bound of any shipment's score from them; subsets are
//! enumerated depth-first in that order, and a subset whose bound cannot beat the best plan
//! so far is pruned with everything after it. A subset is priced by [`evaluate_subset`]:
//! units go to its warehouses in the order given, each parcel gets its carrier, and the plan
//! is built only if it wins.

use super::candidates::Candidate;
use super::carrier::{CarrierChoice, choose_carrier};
use super::context::Demand;
use super::parcel::{make_shipment, parcel_lines, parcel_needs};
use super::score::{compare_keys, keep_better, tie_key};
use super::{Failures, OrderContext, Plan, Scratch};
use crate::config::Policy;
use crate::model::Shipment;
use crate::zone::ZoneState;
use smallvec::SmallVec;
use std::cmp::Ordering;

/// Branch-and-bound over warehouse subsets of size 2..=max_shipments (see the module docs).
pub(super) fn search_splits(
    context: &OrderContext,
    zone: &ZoneState,
    scratch: &mut Scratch,
    best: &mut Option<Plan>,
    failures: &mut Failures,
) {
    let Scratch {
        candidates,
        split_candidates,
        assignment,
    } = scratch;
    split_candidates.clear();
    split_candidates.extend(
        candidates
            .iter()
            .filter(|candidate| candidate.holds_any)
            .copied(),
    );
    if split_candidates.len() < 2 {
        return;
    }
    let weight_bound = context.weight_cost_floor();
    if let Some(plan) = best.as_ref()
        && two_best_cannot_beat(context.policy(), split_candidates, weight_bound, plan)
    {
        return;
    }
    rank_split_candidates(context, split_candidates);
    let search = SubsetSearch {
        context,
        zone,
        candidates: split_candidates,
        weight_bound,
    };
    search.run(assignment, best, failures);
}

/// A cheap pre-check on the warehouse terms alone: if even the two best warehouses plus the
/// split penalty cannot beat the plan in hand, no split can.
fn two_best_cannot_beat(
    policy: &Policy,
    candidates: &[Candidate],
    weight_bound: f64,
    plan: &Plan,
) -> bool {
    let (mut first, mut second) = (f64::INFINITY, f64::INFINITY);
    for candidate in candidates {
        if candidate.fixed_score < first {
            second = first;
            first = candidate.fixed_score;
        } else if candidate.fixed_score < second {
            second = candidate.fixed_score;
        }
    }
    first + second + policy.split_weight + weight_bound > plan.score
}

/// Fills in each candidate's `lower_bound` (its warehouse terms plus the cheapest fixed
/// charge of any service to the region from it), sorts the candidates by it (ties on
/// warehouse id) and keeps the `split_candidates` best.
fn rank_split_candidates(context: &OrderContext, candidates: &mut Vec<Candidate>) {
    let policy = context.policy();
    let network = context.network;
    for candidate in candidates.iter_mut() {
        let cheapest_fixed_cost = network.carriers_by_region[context.region().index()]
            .iter()
            .flat_map(|carrier| network.carriers[carrier.index()].services.iter())
            .filter(|service| service.level >= context.facts.level)
            .map(|service| service.base_cost + service.per_km * candidate.distance_km)
            .fold(f64::INFINITY, f64::min);
        if cheapest_fixed_cost.is_finite() {
            candidate.lower_bound =
                candidate.fixed_score + policy.cost_weight * cheapest_fixed_cost;
        }
    }
    candidates.sort_by(|a, b| {
        a.lower_bound
            .total_cmp(&b.lower_bound)
            .then(a.warehouse.cmp(&b.warehouse))
    });
    candidates.truncate(policy.split_candidates as usize);
}

/// The depth-first walk over subsets of ranked candidates: what every subset is priced
/// against.
struct SubsetSearch<'s, 'a> {
    context: &'s OrderContext<'a>,
    zone: &'s ZoneState,
    /// The split candidates, ranked by lower bound.
    candidates: &'s [Candidate],
    /// [`OrderContext::weight_cost_floor`]: added to a subset's bound, a floor of its score.
    weight_bound: f64,
}

impl SubsetSearch<'_, '_> {
    /// Walks subsets in lower-bound order, keeping the best plan in `best`.
    fn run(&self, assignment: &mut Vec<u32>, best: &mut Option<Plan>, failures: &mut Failures) {
        let policy = self.context.policy();
        let max_size = (policy.max_shipments as usize).min(self.candidates.len());
        let mut chosen: SmallVec<[usize; 8]> = SmallVec::new();
        // Depth-first over subsets in lower-bound order; `stack` holds the next position to try at
        // each depth, so the search needs no recursion and no allocation.
        let mut stack: SmallVec<[usize; 8]> = smallvec::smallvec![0];
        let mut bound_sum: SmallVec<[f64; 8]> = smallvec::smallvec![0.0];
        while let Some(next) = stack.pop() {
            let depth = stack.len();
            chosen.truncate(depth);
            bound_sum.truncate(depth + 1);
            if next >= self.candidates.len() {
                continue;
            }
            // Lower bound of any subset that extends `chosen` with `next`.
            let penalty = if depth >= 1 { policy.split_weight } else { 0.0 };
            let bound = bound_sum[depth] + self.candidates[next].lower_bound + penalty;
            let best_score = best.as_ref().map_or(f64::INFINITY, |plan| plan.score);
            if depth >= 1 && bound + self.weight_bound > best_score {
                // Candidates are sorted by bound: every later one is no better. Backtrack.
                continue;
            }
            stack.push(next + 1);
            chosen.push(next);
            bound_sum.push(bound);
            if chosen.len() >= 2
                && let Some(plan) = self.any_fill(&chosen, assignment, failures, best.as_ref())
            {
                keep_better(best, plan, self.context.network);
            }
            if chosen.len() < max_size {
                stack.push(next + 1);
            }
        }
    }

    /// [`evaluate_subset`] with the chosen warehouses filled lowest bound first; if that
    /// leaves a parcel no carrier takes (too heavy, say), the other fill orders are tried too
    /// (all of them up to three warehouses, the reverse beyond), and the best plan found wins.
    fn any_fill(
        &self,
        chosen: &[usize],
        assignment: &mut Vec<u32>,
        failures: &mut Failures,
        rival: Option<&Plan>,
    ) -> Option<Plan> {
        match self.evaluate(chosen, assignment, failures, rival) {
            Ok(plan) => return Some(plan),
            Err(SubsetFailure::NoCarrier) => {}
            Err(_) => return None,
        }
        let mut best: Option<Plan> = None;
        let mut order: SmallVec<[usize; 8]> = chosen.iter().copied().collect();
        let try_order = |order: &[usize], best: &mut Option<Plan>, assignment: &mut Vec<u32>| {
            let rival = best.as_ref().or(rival);
            if let Ok(plan) = self.evaluate(order, assignment, &mut Failures::default(), rival) {
                keep_better(best, plan, self.context.network);
            }
        };
        if order.len() <= 3 {
            // The other permutations, in lexicographic order after the first.
            while next_permutation(&mut order) {
                try_order(&order, &mut best, assignment);
            }
        } else {
            order.reverse();
            try_order(&order, &mut best, assignment);
        }
        best
    }

    fn evaluate(
        &self,
        chosen: &[usize],
        assignment: &mut Vec<u32>,
        failures: &mut Failures,
        rival: Option<&Plan>,
    ) -> Result<Plan, SubsetFailure> {
        evaluate_subset(
            self.context,
            self.zone,
            self.candidates,
            chosen,
            assignment,
            failures,
            rival,
        )
    }
}

/// Rearranges `items` into the next lexicographic permutation; `false` after the last.
fn next_permutation(items: &mut [usize]) -> bool {
    let Some(pivot) = (1..items.len())
        .rev()
        .find(|&index| items[index - 1] < items[index])
    else {
        return false;
    };
    let successor = (pivot..items.len())
        .rev()
        .find(|&index| items[index] > items[pivot - 1])
        .expect("the pivot has a successor");
    items.swap(pivot - 1, successor);
    items[pivot..].reverse();
    true
}

/// Why a subset gave no plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SubsetFailure {
    /// Together they do not hold every unit.
    Uncovered,
    /// A warehouse would ship nothing: a smaller subset covers this plan.
    Redundant,
    /// A parcel found no carrier.
    NoCarrier,
    /// It makes a plan, but not one better than the plan it had to beat.
    Beaten,
}

/// Each parcel's carrier service and weight in grams, in the order of the chosen warehouses.
type PricedParcels = SmallVec<[(CarrierChoice, u64); 4]>;

/// Assigns the order's units to the chosen warehouses (in the order given) and prices the
/// shipments. `Err` when they cannot hold every unit, when a warehouse would get nothing
/// (a smaller subset covers that plan), when a shipment finds no carrier, or when the plan
/// does not beat `rival`.
fn evaluate_subset(
    context: &OrderContext,
    zone: &ZoneState,
    candidates: &[Candidate],
    chosen: &[usize],
    assignment: &mut Vec<u32>,
    failures: &mut Failures,
    rival: Option<&Plan>,
) -> Result<Plan, SubsetFailure> {
    assign_units(context, zone, candidates, chosen, assignment)?;
    // Price every parcel first; the plan (which allocates) is built only if it beats `rival`.
    let (score, parcels) = price_parcels(context, zone, candidates, chosen, assignment, failures)?;
    if let Some(rival) = rival {
        let keys = chosen.iter().zip(&parcels).map(|(&position, (choice, _))| {
            tie_key(
                context.network,
                candidates[position].warehouse,
                choice.carrier,
            )
        });
        if compare_keys(score, keys, chosen.len(), rival, context.network) != Ordering::Less {
            return Err(SubsetFailure::Beaten);
        }
    }
    let demands = &context.facts.demands;
    let mut shipments: SmallVec<[Shipment; 1]> = SmallVec::with_capacity(chosen.len());
    for (slot, (&position, (choice, weight_g))) in chosen.iter().zip(&parcels).enumerate() {
        let lines = parcel_lines(demands, slot_units(demands, assignment, slot));
        let candidate = &candidates[position];
        shipments.push(make_shipment(context, candidate, choice, lines, *weight_g));
    }
    Ok(Plan {
        shipments,
        backordered: SmallVec::new(),
        score,
    })
}

/// Fills `assignment` (`[slot * demands + demand]`) with the units each chosen warehouse
/// ships: each demand from the first warehouse in `chosen` that can handle it, as much as it
/// has, then the next.
#[inline]
fn assign_units(
    context: &OrderContext,
    zone: &ZoneState,
    candidates: &[Candidate],
    chosen: &[usize],
    assignment: &mut Vec<u32>,
) -> Result<(), SubsetFailure> {
    let demands = &context.facts.demands;
    assignment.clear();
    assignment.resize(chosen.len() * demands.len(), 0);
    for (demand_index, demand) in demands.iter().enumerate() {
        let mut remaining = demand.quantity;
        for (slot, &position) in chosen.iter().enumerate() {
            let candidate = &candidates[position];
            if remaining == 0 {
                break;
            }
            if !candidate.capabilities.covers(demand.capabilities) {
                continue;
            }
            let quantity = remaining.min(zone.cell(candidate.local, demand.sku).available());
            assignment[slot * demands.len() + demand_index] = quantity;
            remaining -= quantity;
        }
        if remaining > 0 {
            return Err(SubsetFailure::Uncovered);
        }
    }
    Ok(())
}

/// The score of the split plan `assignment` describes and each parcel's carrier service
/// and weight; `Err` when a warehouse ships nothing or a parcel finds no carrier.
#[inline]
fn price_parcels(
    context: &OrderContext,
    zone: &ZoneState,
    candidates: &[Candidate],
    chosen: &[usize],
    assignment: &[u32],
    failures: &mut Failures,
) -> Result<(f64, PricedParcels), SubsetFailure> {
    let policy = context.policy();
    let demands = &context.facts.demands;
    let mut parcels = PricedParcels::new();
    let mut score = policy.split_weight * (chosen.len() - 1) as f64;
    for (slot, &position) in chosen.iter().enumerate() {
        let candidate = &candidates[position];
        let units = slot_units(demands, assignment, slot);
        if units.iter().all(|quantity| *quantity == 0) {
            return Err(SubsetFailure::Redundant);
        }
        let (capabilities, weight_g) = parcel_needs(demands, units);
        let choice = choose_carrier(context, zone, candidate, capabilities, weight_g, failures)
            .ok_or(SubsetFailure::NoCarrier)?;
        score += candidate.fixed_score + policy.cost_weight * choice.cost;
        parcels.push((choice, weight_g));
    }
    Ok((score, parcels))
}

/// The units (per demand) of chosen warehouse `slot` in `assignment`.
#[inline]
fn slot_units<'a>(demands: &[Demand], assignment: &'a [u32], slot: usize) -> &'a [u32] {
    &assignment[slot * demands.len()..(slot + 1) * demands.len()]
}
