//! Step 1 of the search: the zone's warehouses that can take a shipment today
//! ([`Candidate`]), each with the score terms that depend on the warehouse alone and what
//! it holds of the order; and [`zone_covers`], the check that lets an order the zone cannot
//! stock skip the split search.

use super::{Failures, OrderContext};
use crate::config::{Policy, Warehouse};
use crate::ids::WarehouseId;
use crate::model::Capabilities;
use crate::zone::ZoneState;

/// A warehouse of the zone that can take shipments today.
#[derive(Clone, Copy, Debug)]
pub(super) struct Candidate {
    /// The warehouse's position in the zone (what [`ZoneState`] indexes its cells by).
    pub(super) local: usize,
    pub(super) warehouse: WarehouseId,
    pub(super) capabilities: Capabilities,
    pub(super) distance_km: f64,
    /// The plan-score terms that depend on the warehouse alone.
    pub(super) fixed_score: f64,
    /// `fixed_score` plus the least `cost_weight * (base_cost + per_km * km)` any service to
    /// the region could charge from here: no shipment from here scores less (before kg).
    /// Only the split search needs it, so it is `fixed_score` until that search fills it in.
    pub(super) lower_bound: f64,
    /// Whether it holds every unit of the order.
    pub(super) holds_all: bool,
    /// Whether it holds any unit of the order it can handle.
    pub(super) holds_any: bool,
}

/// The zone's enabled warehouses with capacity left today, with their per-warehouse terms.
pub(super) fn collect_candidates(
    context: &OrderContext,
    zone: &ZoneState,
    out: &mut Vec<Candidate>,
    failures: &mut Failures,
) {
    out.clear();
    let network = context.network;
    // Read once: with no rule in force, the loop below does no rule work at all.
    let rules = context.facts.rules.active.then_some(&context.facts.rules);
    for (local, &warehouse) in zone.warehouses().iter().enumerate() {
        let site = &network.warehouses[warehouse.index()];
        let rules_allow =
            rules.is_none_or(|effect| effect.allows_warehouse(&context.policy().rules, warehouse));
        if !site.enabled || !rules_allow {
            continue;
        }
        let (holds_all, holds_any) = holdings(context, zone, local, site);
        let used = zone.warehouse_orders(local, context.day);
        if site.daily_orders > 0 && used >= site.daily_orders {
            if holds_all {
                failures.warehouse_capacity = true;
            }
            continue;
        }
        let distance_km = context.distance_km(warehouse);
        let mut fixed_score = fixed_score(context.policy(), site, used, distance_km);
        if let Some(effect) = rules {
            // A preferred warehouse's shipments score `prefer_bonus` less (docs/rules.md).
            fixed_score -= effect.bonus(&context.policy().rules, warehouse);
        }
        out.push(Candidate {
            local,
            warehouse,
            capabilities: site.capabilities,
            distance_km,
            fixed_score,
            lower_bound: fixed_score,
            holds_all,
            holds_any,
        });
    }
}

/// Whether warehouse `local` of the zone holds every unit of the order, and whether it
/// holds any, counting only stock it can handle.
#[inline]
fn holdings(
    context: &OrderContext,
    zone: &ZoneState,
    local: usize,
    site: &Warehouse,
) -> (bool, bool) {
    let (mut holds_all, mut holds_any) = (true, false);
    for demand in &context.facts.demands {
        // Stock a warehouse cannot handle (cold-chain goods in a plain warehouse) is not
        // stock it can ship.
        let available = if site.capabilities.covers(demand.capabilities) {
            zone.cell(local, demand.sku).available()
        } else {
            0
        };
        holds_all &= available >= demand.quantity;
        holds_any |= available > 0;
    }
    (holds_all, holds_any)
}

/// The score terms of a shipment from `site` that do not depend on the carrier: distance,
/// today's load (`used` of its daily orders) and rank.
#[inline]
fn fixed_score(policy: &Policy, site: &Warehouse, used: u32, distance_km: f64) -> f64 {
    let utilisation = if site.daily_orders == 0 {
        0.0
    } else {
        f64::from(used) / f64::from(site.daily_orders)
    };
    policy.distance_weight * distance_km
        + policy.load_weight * utilisation
        + policy.rank_weight * f64::from(site.rank)
}

/// Whether the zone's candidates together hold every unit of the order (each unit at a
/// warehouse that can handle it). When they do not, no split can place the order and the
/// search is skipped: this is what keeps orders that fail on stock cheap, even though they
/// are tried in every zone of their zone order.
pub(super) fn zone_covers(
    context: &OrderContext,
    zone: &ZoneState,
    candidates: &[Candidate],
) -> bool {
    context.facts.demands.iter().all(|demand| {
        let mut held = 0u32;
        for candidate in candidates {
            if candidate.capabilities.covers(demand.capabilities) {
                held = held.saturating_add(zone.cell(candidate.local, demand.sku).available());
                if held >= demand.quantity {
                    return true;
                }
            }
        }
        false
    })
}
