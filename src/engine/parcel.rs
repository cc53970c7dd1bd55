//! From units to a shipment: what a parcel needs of a carrier ([`parcel_needs`]), its lines
//! ([`parcel_lines`]), and the [`Shipment`] a priced parcel becomes ([`make_shipment`]).
//! Every plan, whole, split or partial, builds its shipments here.

use super::OrderContext;
use super::candidates::Candidate;
use super::carrier::CarrierChoice;
use super::context::Demand;
use crate::model::{Capabilities, LineQuantity, Shipment};
use smallvec::SmallVec;

/// What a parcel of `units` (per demand) needs of a carrier: capabilities and weight.
#[inline]
pub(super) fn parcel_needs(demands: &[Demand], units: &[u32]) -> (Capabilities, u64) {
    let (mut capabilities, mut weight_g) = (Capabilities::NONE, 0u64);
    for (demand, &quantity) in demands.iter().zip(units) {
        if quantity > 0 {
            capabilities = capabilities.union(demand.capabilities);
            weight_g += u64::from(demand.unit_weight_g) * u64::from(quantity);
        }
    }
    (capabilities, weight_g)
}

/// The lines of a parcel of `units` (per demand).
#[inline]
pub(super) fn parcel_lines(demands: &[Demand], units: &[u32]) -> SmallVec<[LineQuantity; 2]> {
    demands
        .iter()
        .zip(units)
        .filter(|(_, quantity)| **quantity > 0)
        .map(|(demand, &quantity)| LineQuantity {
            sku: demand.sku,
            quantity,
        })
        .collect()
}

/// The shipment of `lines` (`weight_g` grams) from `candidate` with the carrier service
/// `choice`.
#[inline]
pub(super) fn make_shipment(
    context: &OrderContext,
    candidate: &Candidate,
    choice: &CarrierChoice,
    lines: SmallVec<[LineQuantity; 2]>,
    weight_g: u64,
) -> Shipment {
    let carrier = &context.network.carriers[choice.carrier.index()];
    Shipment {
        warehouse: candidate.warehouse,
        carrier: choice.carrier,
        level: carrier.services[choice.service].level,
        lines,
        distance_km: candidate.distance_km,
        weight_kg: weight_g as f64 / 1000.0,
        cost: choice.cost,
        eta: choice.eta,
    }
}
