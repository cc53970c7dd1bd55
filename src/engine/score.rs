//! Which of two plans wins: the lower score, then the contract's tie-breaks shipment by
//! shipment (warehouse rank, warehouse id, carrier id), then fewer shipments. A candidate
//! plan can be compared by its score and tie keys alone ([`compare_keys`]), before the plan
//! itself (which may allocate) is built.

use super::Plan;
use crate::config::Network;
use crate::ids::{CarrierId, WarehouseId};
use std::cmp::Ordering;

/// Replaces `best` with `plan` if `plan` wins: lower score, then the contract's tie-breaks
/// (rank, warehouse id, carrier id of each shipment in turn), then fewer shipments.
pub(super) fn keep_better(best: &mut Option<Plan>, plan: Plan, network: &Network) {
    let wins = match best {
        None => true,
        Some(current) => compare_plans(&plan, current, network) == Ordering::Less,
    };
    if wins {
        *best = Some(plan);
    }
}

fn compare_plans(a: &Plan, b: &Plan, network: &Network) -> Ordering {
    let keys = a
        .shipments
        .iter()
        .map(|shipment| tie_key(network, shipment.warehouse, shipment.carrier));
    compare_keys(a.score, keys, a.shipments.len(), b, network)
}

/// What breaks a tie between two plans of one score, shipment by shipment: warehouse rank,
/// warehouse id, carrier id (ids are interned in id order).
pub(super) type TieKey = (u32, WarehouseId, CarrierId);

#[inline]
pub(super) fn tie_key(network: &Network, warehouse: WarehouseId, carrier: CarrierId) -> TieKey {
    (
        network.warehouses[warehouse.index()].rank,
        warehouse,
        carrier,
    )
}

/// Compares a plan given by its score, tie keys and shipment count with plan `b`.
#[inline]
pub(super) fn compare_keys(
    score: f64,
    keys: impl Iterator<Item = TieKey>,
    shipments: usize,
    b: &Plan,
    network: &Network,
) -> Ordering {
    score
        .total_cmp(&b.score)
        .then_with(|| {
            keys.cmp(
                b.shipments
                    .iter()
                    .map(|shipment| tie_key(network, shipment.warehouse, shipment.carrier)),
            )
        })
        .then(shipments.cmp(&b.shipments.len()))
}
