//! Step 2 of the search: every plan that ships the whole order from one warehouse, scored
//! exactly ([`best_single_warehouse_plan`]). It runs before the split search, whose pruning
//! needs the best score found here.

use super::candidates::Candidate;
use super::carrier::{CarrierChoice, choose_carrier};
use super::parcel::make_shipment;
use super::score::{compare_keys, tie_key};
use super::{Failures, OrderContext, Plan};
use crate::model::LineQuantity;
use crate::zone::ZoneState;
use smallvec::SmallVec;
use std::cmp::Ordering;

/// The best plan of one shipment from a candidate holding every unit, or `None` (with what
/// stopped the carriers noted in `failures`).
pub(super) fn best_single_warehouse_plan(
    context: &OrderContext,
    zone: &ZoneState,
    candidates: &[Candidate],
    failures: &mut Failures,
) -> Option<Plan> {
    let mut best: Option<Plan> = None;
    for candidate in candidates {
        if !candidate.holds_all {
            continue;
        }
        // No shipment from here can cost less than its warehouse terms plus the cheapest
        // per-kg rate: skip the carrier search when that already loses.
        let floor = candidate.fixed_score + context.weight_cost_floor();
        if best.as_ref().is_some_and(|plan| floor > plan.score) {
            continue;
        }
        let Some(choice) = choose_carrier(
            context,
            zone,
            candidate,
            context.facts.capabilities,
            context.facts.weight_g,
            failures,
        ) else {
            continue;
        };
        let score = candidate.fixed_score + context.policy().cost_weight * choice.cost;
        // Only a plan that wins is built (its lines may need an allocation).
        let key = tie_key(context.network, candidate.warehouse, choice.carrier);
        if best.as_ref().is_some_and(|current| {
            compare_keys(score, [key].into_iter(), 1, current, context.network) != Ordering::Less
        }) {
            continue;
        }
        best = Some(whole_order_plan(context, candidate, &choice, score));
    }
    best
}

/// The plan of one shipment carrying every unit of the order from `candidate`.
fn whole_order_plan(
    context: &OrderContext,
    candidate: &Candidate,
    choice: &CarrierChoice,
    score: f64,
) -> Plan {
    let lines = context
        .facts
        .demands
        .iter()
        .map(|demand| LineQuantity {
            sku: demand.sku,
            quantity: demand.quantity,
        })
        .collect();
    let shipment = make_shipment(context, candidate, choice, lines, context.facts.weight_g);
    Plan {
        score,
        shipments: smallvec::smallvec![shipment],
        backordered: SmallVec::new(),
    }
}
