//! What the engine knows about one order before it looks at any zone: [`OrderFacts`], the
//! order's demands per SKU, its total weight and capabilities, the service level it needs,
//! and the lower bound of what each kg can cost, derived once and shared by every zone the
//! order is tried in; and [`OrderContext`], those facts with the order, the network and the
//! decision time, as one zone's attempt reads them.

use super::rules::RuleEffect;
use crate::catalog::Catalog;
use crate::config::{Network, Policy};
use crate::geo::EARTH_RADIUS_KM;
use crate::ids::{RegionId, SkuId, WarehouseId};
use crate::model::{Capabilities, Order, ServiceLevel};
use crate::time::Millis;
use smallvec::SmallVec;

/// What the engine derives from an order's content, the network and the catalogue alone:
/// the same in every zone the order is tried in, so it is computed once (in the first zone
/// that tries to place the order) and travels with the order's visit to the next.
#[derive(Clone, Debug)]
pub struct OrderFacts {
    /// The order's level, its tier's minimum or the routing rules' `min_service`,
    /// whichever is fastest.
    pub level: ServiceLevel,
    /// Whether the order may ship from several warehouses: it allows it and no routing
    /// rule forbids it.
    pub split_allowed: bool,
    /// What the routing rules do to the order (nothing, when none is configured).
    pub rules: RuleEffect,
    /// Units per SKU, SKUs in first-appearance order (an order may list a SKU twice).
    pub demands: SmallVec<[Demand; 4]>,
    pub capabilities: Capabilities,
    pub weight_g: u64,
    pub units: u64,
    /// The cheapest `per_kg` of any service that could carry to the region at the level:
    /// a lower bound of what each kg costs in any plan.
    pub(super) min_per_kg: f64,
    /// The cosine of the destination's latitude (in radians), a term of the distance from
    /// every warehouse ([`OrderContext::distance_km`]): worked out once, not once a
    /// warehouse. Unused (zero) for an order at its region's centroid.
    pub(super) cos_latitude: f64,
}

/// Units of one SKU the order needs.
#[derive(Clone, Copy, Debug)]
pub struct Demand {
    pub sku: SkuId,
    pub quantity: u32,
    pub unit_weight_g: u32,
    pub capabilities: Capabilities,
}

impl OrderFacts {
    /// The facts of `order` under `network` (the snapshot its chunk was parsed with) and
    /// `catalog`.
    pub fn new(order: &Order, network: &Network, catalog: &Catalog) -> OrderFacts {
        let mut demands: SmallVec<[Demand; 4]> = SmallVec::new();
        let mut capabilities = Capabilities::NONE;
        let (mut weight_g, mut units) = (0u64, 0u64);
        for line in &order.lines {
            let sku = catalog.sku(line.sku);
            capabilities = capabilities.union(sku.capabilities);
            weight_g += u64::from(sku.weight_g) * u64::from(line.quantity);
            units += u64::from(line.quantity);
            match demands.iter_mut().find(|demand| demand.sku == line.sku) {
                Some(demand) => demand.quantity += line.quantity,
                None => demands.push(Demand {
                    sku: line.sku,
                    quantity: line.quantity,
                    unit_weight_g: sku.weight_g,
                    capabilities: sku.capabilities,
                }),
            }
        }
        let rules = if network.policy.rules.is_empty() {
            RuleEffect::default()
        } else {
            RuleEffect::of(order, network, catalog, capabilities)
        };
        let tier_minimum = network.tiers[order.tier.index()].min_service;
        let mut level = order.service.max(tier_minimum);
        if let Some(minimum) = rules.min_service {
            level = level.max(minimum);
        }
        OrderFacts {
            level,
            split_allowed: order.split_allowed && rules.split != Some(false),
            rules,
            demands,
            capabilities,
            weight_g,
            units,
            min_per_kg: network.min_per_kg(order.region, level),
            cos_latitude: if order.at_region_centroid {
                0.0
            } else {
                order.latitude.to_radians().cos()
            },
        }
    }
}

/// Everything the engine reads about one order in one zone: the order, its [`OrderFacts`],
/// the network snapshot and the decision time.
pub struct OrderContext<'a> {
    pub order: &'a Order,
    pub facts: &'a OrderFacts,
    pub network: &'a Network,
    pub now: Millis,
    pub day: i32,
}

impl<'a> OrderContext<'a> {
    /// Prepares `order`, whose `facts` were derived under `network`, for routing at `now`.
    pub fn new(order: &'a Order, facts: &'a OrderFacts, network: &'a Network, now: Millis) -> Self {
        OrderContext {
            order,
            facts,
            network,
            now,
            day: now.utc_day(),
        }
    }

    #[inline]
    pub(super) fn policy(&self) -> &Policy {
        &self.network.policy
    }

    #[inline]
    pub(super) fn region(&self) -> RegionId {
        self.order.region
    }

    /// What any plan pays at least for carrying the order's weight: `cost_weight` times the
    /// cheapest `per_kg` to the region times the kg. Added to warehouse terms it is a floor
    /// under every plan's score, which is what lets the search skip carrier lookups.
    #[inline]
    pub(super) fn weight_cost_floor(&self) -> f64 {
        self.policy().cost_weight * self.facts.min_per_kg * self.facts.weight_g as f64 / 1000.0
    }

    /// Distance from `warehouse` to the order's destination: [`crate::geo::haversine_km`] from the
    /// warehouse, with the cosine of the destination's latitude taken from the facts (the
    /// same operations in the same order as [`crate::geo::haversine_km`], so the same bits).
    #[inline]
    pub(super) fn distance_km(&self, warehouse: WarehouseId) -> f64 {
        if self.order.at_region_centroid {
            self.network.centroid_km(warehouse, self.order.region)
        } else {
            let site = &self.network.warehouses[warehouse.index()];
            haversine_to_km(
                site.latitude,
                site.longitude,
                self.order.latitude,
                self.order.longitude,
                self.facts.cos_latitude,
            )
        }
    }
}

/// [`crate::geo::haversine_km`] from `a` to `b` given `cos_latitude_b`, the cosine of `b`'s latitude in
/// radians: the same operations in the same order, so the same result to the bit.
#[inline]
fn haversine_to_km(
    latitude_a: f64,
    longitude_a: f64,
    latitude_b: f64,
    longitude_b: f64,
    cos_latitude_b: f64,
) -> f64 {
    let (phi_a, phi_b) = (latitude_a.to_radians(), latitude_b.to_radians());
    let delta_phi = phi_b - phi_a;
    let delta_lambda = (longitude_b - longitude_a).to_radians();
    let half_chord = (delta_phi / 2.0).sin().powi(2)
        + phi_a.cos() * cos_latitude_b * (delta_lambda / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * half_chord.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::haversine_km;

    #[test]
    fn the_distance_with_the_cosine_worked_out_once_is_haversine_to_the_bit() {
        let points: [(f64, f64); 8] = [
            (31.23, 121.47),
            (39.9, 116.4),
            (-33.86, 151.21),
            (0.0, 0.0),
            (0.0, 180.0),
            (89.99, -45.0),
            (-89.5, 10.25),
            (22.543_096, 114.057_865),
        ];
        for (latitude_a, longitude_a) in points {
            for (latitude_b, longitude_b) in points {
                let cos_b = latitude_b.to_radians().cos();
                let once = haversine_to_km(latitude_a, longitude_a, latitude_b, longitude_b, cos_b);
                let each = haversine_km(latitude_a, longitude_a, latitude_b, longitude_b);
                assert_eq!(
                    once.to_bits(),
                    each.to_bits(),
                    "{latitude_a},{longitude_a} -> {latitude_b},{longitude_b}"
                );
            }
        }
    }
}
