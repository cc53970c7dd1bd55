//! The partial plan of a backorder ([`plan_partial`]): as many units as the zone can ship
//! now, greedily from the warehouse that supplies the most, in at most `max_shipments`
//! shipments; the rest waits for stock.

use super::candidates::{Candidate, collect_candidates};
use super::carrier::choose_carrier;
use super::parcel::{make_shipment, parcel_lines, parcel_needs};
use super::{Failures, OrderContext, Plan, Scratch};
use crate::model::{LineQuantity, Shipment};
use crate::zone::ZoneState;
use smallvec::SmallVec;

/// Places as many units as it can in `zone`, in at most `max_shipments` shipments (one when
/// the order forbids splitting): greedily, the warehouse that can supply the most remaining
/// units first. Units left over are backordered. `Err` with what stopped it when nothing can
/// be placed, or when units in stock find no carrier (those would never ship by waiting).
pub fn plan_partial(
    context: &OrderContext,
    zone: &ZoneState,
    scratch: &mut Scratch,
) -> Result<Plan, Failures> {
    let mut failures = Failures::default();
    collect_candidates(context, zone, &mut scratch.candidates, &mut failures);
    let candidates = &scratch.candidates;
    let max_shipments = if context.facts.split_allowed {
        context.policy().max_shipments as usize
    } else {
        1
    };
    let mut remaining: SmallVec<[u32; 4]> = context
        .facts
        .demands
        .iter()
        .map(|demand| demand.quantity)
        .collect();
    let mut usable: SmallVec<[bool; 8]> = candidates
        .iter()
        .map(|candidate| candidate.holds_any)
        .collect();
    let mut shipments: SmallVec<[Shipment; 1]> = SmallVec::new();
    let mut score = 0.0;
    while shipments.len() < max_shipments {
        let Some(position) = best_supplier(context, zone, candidates, &usable, &remaining) else {
            break;
        };
        usable[position] = false;
        let candidate = candidates[position];
        let taken = units_taken(context, zone, &candidate, &remaining);
        let (capabilities, weight_g) = parcel_needs(&context.facts.demands, &taken);
        let lines = parcel_lines(&context.facts.demands, &taken);
        // Units in stock that no carrier can take do not wait for stock: the order fails on
        // the carrier, and the caller rejects it with that reason.
        let choice = choose_carrier(
            context,
            zone,
            &candidate,
            capabilities,
            weight_g,
            &mut failures,
        )
        .ok_or(failures)?;
        for (index, quantity) in taken.iter().enumerate() {
            remaining[index] -= quantity;
        }
        score += candidate.fixed_score + context.policy().cost_weight * choice.cost;
        shipments.push(make_shipment(context, &candidate, &choice, lines, weight_g));
    }
    if shipments.is_empty() {
        failures.no_stock = true;
        return Err(failures);
    }
    score += context.policy().split_weight * (shipments.len() - 1) as f64;
    Ok(Plan {
        shipments,
        backordered: backordered_lines(context, &remaining),
        score,
    })
}

/// The position of the usable candidate that supplies the most `remaining` units (ties:
/// the lower bound), or `None` when no usable one supplies any.
#[inline]
fn best_supplier(
    context: &OrderContext,
    zone: &ZoneState,
    candidates: &[Candidate],
    usable: &[bool],
    remaining: &[u32],
) -> Option<usize> {
    let mut pick: Option<(usize, u64)> = None;
    for (position, candidate) in candidates.iter().enumerate() {
        if !usable[position] {
            continue;
        }
        let units = suppliable(context, zone, candidate, remaining);
        let better = match pick {
            None => units > 0,
            Some((best_position, best_units)) => {
                units > best_units
                    || (units == best_units
                        && candidate.lower_bound < candidates[best_position].lower_bound)
            }
        };
        if better {
            pick = Some((position, units));
        }
    }
    pick.map(|(position, _)| position)
}

/// Units of `remaining` that `candidate` holds and can handle.
fn suppliable(
    context: &OrderContext,
    zone: &ZoneState,
    candidate: &Candidate,
    remaining: &[u32],
) -> u64 {
    context
        .facts
        .demands
        .iter()
        .zip(remaining)
        .filter(|(demand, _)| candidate.capabilities.covers(demand.capabilities))
        .map(|(demand, quantity)| {
            u64::from((*quantity).min(zone.cell(candidate.local, demand.sku).available()))
        })
        .sum()
}

/// What `candidate` ships of `remaining` (per demand): all it holds and can handle, up to
/// what is still needed.
#[inline]
fn units_taken(
    context: &OrderContext,
    zone: &ZoneState,
    candidate: &Candidate,
    remaining: &[u32],
) -> SmallVec<[u32; 4]> {
    context
        .facts
        .demands
        .iter()
        .zip(remaining)
        .map(|(demand, remaining)| {
            if candidate.capabilities.covers(demand.capabilities) {
                (*remaining).min(zone.cell(candidate.local, demand.sku).available())
            } else {
                0
            }
        })
        .collect()
}

/// The lines of the units no shipment took: they wait for stock.
fn backordered_lines(context: &OrderContext, remaining: &[u32]) -> SmallVec<[LineQuantity; 1]> {
    context
        .facts
        .demands
        .iter()
        .zip(remaining)
        .filter(|(_, quantity)| **quantity > 0)
        .map(|(demand, quantity)| LineQuantity {
            sku: demand.sku,
            quantity: *quantity,
        })
        .collect()
}
