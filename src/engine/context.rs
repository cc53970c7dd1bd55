//! What the engine knows about one order before it looks at any zone: [`OrderFacts`], the
//! order's demands per SKU, its total weight and capabilities, the service level it needs,
//! and the lower bound of what each kg can cost, derived once and shared by every zone the
//! order is tried in; and [`OrderContext`], those facts with the order, the network and the
//! decision time, as one zone's attempt reads them.

use crate::catalog::Catalog;
use crate::config::{Network, Policy};
use crate::geo::haversine_km;
use crate::ids::{RegionId, SkuId, WarehouseId};
use crate::model::{Capabilities, Order, ServiceLevel};
use crate::time::Millis;
use smallvec::SmallVec;

/// What the engine derives from an order's content, the network and the catalogue alone:
/// the same in every zone the order is tried in, so it is computed once (in the first zone
/// that tries to place the order) and travels with the order's visit to the next.
#[derive(Clone, Debug)]
pub struct OrderFacts {
    /// The order's level or its tier's minimum, whichever is faster.
    pub level: ServiceLevel,
    /// Units per SKU, SKUs in first-appearance order (an order may list a SKU twice).
    pub demands: SmallVec<[Demand; 4]>,
    pub capabilities: Capabilities,
    pub weight_g: u64,
    pub units: u64,
    /// The cheapest `per_kg` of any service that could carry to the region at the level:
    /// a lower bound of what each kg costs in any plan.
    pub(super) min_per_kg: f64,
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
        let tier_minimum = network.tiers[order.tier.index()].min_service;
        let level = order.service.max(tier_minimum);
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
        OrderFacts {
            level,
            demands,
            capabilities,
            weight_g,
            units,
            min_per_kg: network.min_per_kg(order.region, level),
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

    /// Distance from `warehouse` to the order's destination.
    #[inline]
    pub(super) fn distance_km(&self, warehouse: WarehouseId) -> f64 {
        if self.order.at_region_centroid {
            self.network.centroid_km(warehouse, self.order.region)
        } else {
            let site = &self.network.warehouses[warehouse.index()];
            haversine_km(
                site.latitude,
                site.longitude,
                self.order.latitude,
                self.order.longitude,
            )
        }
    }
}
