//! The router: every zone's state plus the order-id claims, deciding orders one after the
//! other. This is the whole of `order-router route`, and what each shard of the service
//! wraps.
//!
//! Deciding an order (DESIGN section 4, "Zone order"):
//! 1. Its id is looked up among the claims. The same id with the same content hash is a
//!    duplicate: the original decision is answered again, nothing more is reserved. The same
//!    id with other content is an `id_conflict`. Claims live here rather than in one zone:
//!    an order's home zone follows from its content (the region), and a fallback zone may be
//!    the one that decides, so no single zone could see every conflict.
//! 2. The home zone, then its fallbacks in order, are asked for a plan that places every
//!    unit; the first that has one decides and reserves.
//! 3. If none can, the home zone places what it can and backorders the rest (when the policy
//!    allows backorders and anything can be placed), or the order is rejected with the most
//!    informative reason any zone gave.
//! 4. Hold rules (tags, order value) turn a placement into `held`: reserved, awaiting review.

use crate::catalog::{Catalog, StockLevel};
use crate::config::Network;
use crate::engine::{self, Failures, OrderContext, Plan, Scratch, ZoneAttempt};
use crate::ids::{SkuId, WarehouseId, ZoneId};
use crate::model::{Decision, Invalid, InvalidCode, Order, Reason, ReasonCode, Status};
use crate::render;
use crate::shard::{OrderRecord, ShardError, StockCell, ZoneState};
use crate::time::Millis;
use compact_str::CompactString;
use rustc_hash::FxHashMap;
use smallvec::SmallVec;
use std::sync::Arc;

/// Which zone holds an order's record (the record has the content hash it was decided for).
#[derive(Clone, Copy, Debug)]
struct Claim {
    zone: ZoneId,
    /// The record's slot in its zone.
    slot: u32,
}

/// Order id to claim. The table is keyed by a 64-bit hash of the id, so an entry is 16
/// bytes and the id is not copied; the record the claim points at holds the id, and a hit is
/// checked against it. Two ids with the same hash (about one pair in 10^7 at a million
/// orders) are told apart by `exact`, which holds the later one by its full id.
struct Claims {
    by_hash: FxHashMap<u64, Claim>,
    exact: FxHashMap<CompactString, Claim>,
    /// The id hash: xxh3, or a degenerate one in the tests that exercise collisions.
    hash: fn(&str) -> u64,
}

impl Default for Claims {
    fn default() -> Self {
        Claims {
            by_hash: FxHashMap::default(),
            exact: FxHashMap::default(),
            hash: |id| xxhash_rust::xxh3::xxh3_64(id.as_bytes()),
        }
    }
}

impl Claims {
    fn get(&self, id: &str, zones: &[ZoneState]) -> Option<Claim> {
        let claim = self.by_hash.get(&(self.hash)(id))?;
        let record = zones[claim.zone.index()].order(claim.slot);
        if record.decision.order_id == id {
            Some(*claim)
        } else {
            self.exact.get(id).copied()
        }
    }

    /// Adds the claim of an id that [`Claims::get`] did not find.
    fn insert(&mut self, id: &CompactString, claim: Claim) {
        match self.by_hash.entry((self.hash)(id)) {
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(claim);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.exact.insert(id.clone(), claim);
            }
        }
    }
}

/// A decision as answered: the stored one, and whether this answer is a replay of it.
#[derive(Debug)]
pub struct Answer<'a> {
    pub decision: &'a Decision,
    pub duplicate: bool,
}

/// All zones of one network, decided in one thread.
pub struct Router {
    network: Arc<Network>,
    catalog: Arc<Catalog>,
    /// Indexed by zone id.
    zones: Vec<ZoneState>,
    /// Order id to the zone that decided it.
    claims: Claims,
    scratch: Scratch,
}

impl Router {
    /// A router with the given on-hand levels and nothing reserved.
    pub fn new(network: Arc<Network>, catalog: Arc<Catalog>, stock: &[StockLevel]) -> Router {
        let zones = (0..network.zones.len())
            .map(|zone| ZoneState::new(&network, ZoneId(zone as u16), catalog.len()))
            .collect();
        let mut router = Router {
            network,
            catalog,
            zones,
            claims: Claims::default(),
            scratch: Scratch::default(),
        };
        for result in router.set_stock(stock) {
            // Nothing is reserved yet, so no level can fall below its reservations.
            result.expect("initial stock levels always apply");
        }
        router
    }

    pub fn network(&self) -> &Arc<Network> {
        &self.network
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    pub fn zone(&self, zone: ZoneId) -> &ZoneState {
        &self.zones[zone.index()]
    }

    /// Decides `order` at `now`, or answers it as a duplicate, or refuses it as an id
    /// conflict.
    pub fn decide(&mut self, order: &Order, now: Millis) -> Result<Answer<'_>, Invalid> {
        let (claim, duplicate) = self.decide_located(order, now)?;
        let record = self.zones[claim.zone.index()].order(claim.slot);
        Ok(Answer {
            decision: &record.decision,
            duplicate,
        })
    }

    /// [`Router::decide`], with the answer appended to `out` as a JSON line.
    pub fn decide_rendered(
        &mut self,
        order: &Order,
        now: Millis,
        out: &mut Vec<u8>,
    ) -> Result<(Status, bool), Invalid> {
        let (claim, duplicate) = self.decide_located(order, now)?;
        let record = self.zones[claim.zone.index()].order(claim.slot);
        render::write_decision(
            out,
            &record.decision,
            duplicate,
            &self.network,
            &self.catalog,
        );
        Ok((record.decision.status, duplicate))
    }

    /// Decides (or finds) `order`: where its record is, and whether it is a duplicate.
    fn decide_located(&mut self, order: &Order, now: Millis) -> Result<(Claim, bool), Invalid> {
        if let Some(claim) = self.claims.get(&order.id, &self.zones) {
            let record = self.zones[claim.zone.index()].order(claim.slot);
            if record.content_hash != order.content_hash {
                return Err(Invalid {
                    code: InvalidCode::IdConflict,
                    message: format!(
                        "order '{}' was already received with different content",
                        order.id
                    ),
                    order_id: Some(order.id.clone()),
                });
            }
            return Ok((claim, true));
        }
        let (zone, decision) = self.decide_fresh(order, now);
        let slot = self.zones[zone.index()].record(decision, order.content_hash);
        let claim = Claim { zone, slot };
        self.claims.insert(&order.id, claim);
        Ok((claim, false))
    }

    fn decide_fresh(&mut self, order: &Order, now: Millis) -> (ZoneId, Decision) {
        let network = Arc::clone(&self.network);
        let context = OrderContext::new(order, &network, &self.catalog, now);
        let home = network.regions[order.region.index()].zone;
        let mut failures = Failures::default();
        for zone in network.zone_order(home) {
            let state = &mut self.zones[zone.index()];
            match engine::plan_zone(&context, state, &mut self.scratch) {
                ZoneAttempt::Placed(plan) => return (zone, commit(&context, state, plan, None)),
                ZoneAttempt::Failed(zone_failures) => failures.merge(&zone_failures),
            }
        }
        let state = &mut self.zones[home.index()];
        (home, settle(&context, state, failures, &mut self.scratch))
    }

    /// Starts loading what deciding and answering `order` will read first (its lines' stock
    /// cells in its home zone, their SKU entries and names), so a loop over a batch can call
    /// it a few orders ahead.
    pub fn prefetch(&self, order: &Order) {
        let home = self.network.regions[order.region.index()].zone;
        let zone = &self.zones[home.index()];
        for line in &order.lines {
            zone.prefetch(line.sku);
            self.catalog.prefetch(line.sku);
        }
    }

    /// The record of order `id`, wherever it was decided.
    pub fn order(&self, id: &str) -> Option<&OrderRecord> {
        let claim = self.claims.get(id, &self.zones)?;
        Some(self.zones[claim.zone.index()].order(claim.slot))
    }

    /// Cancels order `id`, releasing its reservations.
    pub fn cancel(&mut self, id: &str) -> Result<&OrderRecord, ShardError> {
        let claim = self
            .claims
            .get(id, &self.zones)
            .ok_or_else(|| ShardError::UnknownOrder(id.to_owned()))?;
        self.zones[claim.zone.index()].cancel(claim.slot)
    }

    /// Marks order `id` shipped: its reserved units are consumed.
    pub fn ship(&mut self, id: &str) -> Result<&OrderRecord, ShardError> {
        let claim = self
            .claims
            .get(id, &self.zones)
            .ok_or_else(|| ShardError::UnknownOrder(id.to_owned()))?;
        self.zones[claim.zone.index()].ship(claim.slot)
    }

    /// Sets absolute on-hand levels; one result per level, in order.
    pub fn set_stock(&mut self, levels: &[StockLevel]) -> Vec<Result<(), ShardError>> {
        levels
            .iter()
            .map(|level| {
                let zone = self.network.warehouses[level.warehouse.index()].zone;
                self.zones[zone.index()].set_on_hand(*level)
            })
            .collect()
    }

    /// The zone state that owns `warehouse`, and the warehouse's index within it.
    pub fn locate(&self, warehouse: WarehouseId) -> (&ZoneState, usize) {
        let zone = &self.zones[self.network.warehouses[warehouse.index()].zone.index()];
        let local = zone
            .local(warehouse)
            .expect("a warehouse belongs to its zone");
        (zone, local)
    }

    /// Stock of `sku` at every warehouse, in warehouse id order.
    pub fn stock_of(&self, sku: SkuId) -> Vec<(WarehouseId, StockCell)> {
        (0..self.network.warehouses.len())
            .map(|index| {
                let warehouse = WarehouseId(index as u16);
                let (zone, local) = self.locate(warehouse);
                (warehouse, zone.cell(local, sku))
            })
            .collect()
    }
}

/// Every zone of the order's chain failed to place it whole: `home` (the order's home zone)
/// places what it can and backorders the rest, when the policy allows backorders and what
/// stops the order is stock; otherwise the order is rejected with the most informative
/// reason any zone gave. Both the `route` loop and the zone shards of the service end here.
pub fn settle(
    context: &OrderContext,
    home: &mut ZoneState,
    mut failures: Failures,
    scratch: &mut Scratch,
) -> Decision {
    let order = context.order;
    let mut reason = reason_for(&failures, context);
    // A backorder is for units that wait for stock. When what stops the order is a
    // carrier, a service level, a promise or capacity, waiting would not help: reject.
    if context.network.policy.backorder && reason.code == ReasonCode::NoStock {
        match engine::plan_partial(context, home, scratch) {
            Ok(plan) => {
                let waiting: u32 = plan.backordered.iter().map(|line| line.quantity).sum();
                let reason = Reason {
                    code: ReasonCode::NoStock,
                    message: format!("{waiting} of {} units wait for stock", context.units),
                };
                return commit(context, home, plan, Some(reason));
            }
            Err(partial_failures) => {
                failures.merge(&partial_failures);
                reason = reason_for(&failures, context);
            }
        }
    }
    Decision {
        order_id: order.id.clone(),
        status: Status::Rejected,
        zone: home.zone,
        seq: home.take_seq(),
        decided_at: context.now,
        shipments: SmallVec::new(),
        backordered: SmallVec::new(),
        reason: Some(Box::new(reason)),
    }
}

/// Reserves `plan` in `state` (the zone it was planned in) and builds its decision;
/// `shortfall` is the reason when the plan backorders units.
pub fn commit(
    context: &OrderContext,
    state: &mut ZoneState,
    plan: Plan,
    shortfall: Option<Reason>,
) -> Decision {
    let order = context.order;
    let policy = &context.network.policy;
    state.reserve(&plan.shipments, context.day);
    let value: f64 = order
        .lines
        .iter()
        .map(|line| line.unit_price * f64::from(line.quantity))
        .sum();
    let over_value = policy.hold_order_value_over > 0.0 && value > policy.hold_order_value_over;
    let (status, reason) = if order.hold_tagged || over_value {
        let message = if order.hold_tagged {
            "a tag of the order is held for review".to_owned()
        } else {
            format!(
                "order value {value:.2} is over the review threshold {:.2}",
                policy.hold_order_value_over
            )
        };
        (
            Status::Held,
            Some(Box::new(Reason {
                code: ReasonCode::Review,
                message,
            })),
        )
    } else if let Some(reason) = shortfall {
        (Status::Backordered, Some(Box::new(reason)))
    } else {
        (Status::Routed, None)
    };
    Decision {
        order_id: order.id.clone(),
        status,
        zone: state.zone,
        seq: state.take_seq(),
        decided_at: context.now,
        shipments: plan.shipments,
        backordered: plan.backordered,
        reason,
    }
}

/// The most informative reason among `failures` (the deepest stage any zone reached).
fn reason_for(failures: &Failures, context: &OrderContext) -> Reason {
    let network = context.network;
    let region = network.region_name(context.order.region);
    let zones = {
        let home = network.regions[context.order.region.index()].zone;
        network
            .zone_order(home)
            .map(|zone| network.zone_name(zone))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (code, message) = if let Some(eta) = failures.earliest_late_eta {
        let promise = context.order.promise_by.unwrap_or_default();
        (
            ReasonCode::PromiseUnmeetable,
            format!("no plan delivers by {promise}; the earliest possible arrival is {eta}"),
        )
    } else if failures.pickup_capacity {
        (
            ReasonCode::Capacity,
            "the carriers that fit have used today's pickups at the warehouses holding the stock"
                .to_owned(),
        )
    } else if failures.service_unavailable {
        (
            ReasonCode::ServiceUnavailable,
            format!(
                "no carrier offers {} or faster to {region} from the warehouses holding the stock",
                context.level.name()
            ),
        )
    } else if failures.no_carrier {
        (
            ReasonCode::NoCarrier,
            format!(
                "no carrier delivers these goods to {region} from the warehouses holding them (capabilities [{}], {:.3} kg in all)",
                context.capabilities,
                context.weight_g as f64 / 1000.0
            ),
        )
    } else if failures.warehouse_capacity {
        (
            ReasonCode::Capacity,
            "the warehouses holding the stock have used today's capacity".to_owned(),
        )
    } else {
        (
            ReasonCode::NoStock,
            format!("not enough stock for every unit in zones {zones}"),
        )
    };
    Reason { code, message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::parse_order;
    use std::path::Path;

    const NETWORK: &str = r#"
[[zones]]
id = "z"
[[regions]]
id = "R"
lat = 30.0
lon = 120.0
zone = "z"
[[warehouses]]
id = "W"
zone = "z"
lat = 30.1
lon = 120.0
[[carriers]]
id = "c"
regions = ["*"]
max_weight_kg = 100.0
[[carriers.services]]
level = "standard"
base_cost = 1.0
per_kg = 1.0
per_km = 0.0
base_hours = 1.0
km_per_hour = 50.0
"#;

    /// With every id hashing alike, every claim after the first collides: ids must still be
    /// told apart, duplicates found and conflicts refused.
    #[test]
    fn colliding_id_hashes_are_told_apart() {
        let network = Arc::new(Network::from_toml(NETWORK).unwrap());
        let catalog = Arc::new(
            Catalog::read(
                "sku,weight_g,capabilities\nA,100,\n".as_bytes(),
                Path::new("c"),
            )
            .unwrap(),
        );
        let stock = crate::catalog::read_stock(
            "warehouse,sku,on_hand\nW,A,100\n".as_bytes(),
            Path::new("s"),
            &network,
            &catalog,
        )
        .unwrap();
        let mut router = Router::new(Arc::clone(&network), Arc::clone(&catalog), &stock);
        router.claims.hash = |_| 7;
        let order = |id: &str, qty: u32| {
            let line = format!(
                r#"{{"id":"{id}","customer":{{"id":"C"}},"ship_to":{{"region":"R"}},"lines":[{{"sku":"A","qty":{qty}}}]}}"#
            );
            parse_order(line.as_bytes(), &network, &catalog).unwrap()
        };
        let (one, two, three) = (order("one", 1), order("two", 2), order("three", 3));
        let now = Millis(0);
        for order in [&one, &two, &three] {
            assert!(!router.decide(order, now).unwrap().duplicate);
        }
        assert_eq!(router.claims.exact.len(), 2);
        for order in [&one, &two, &three] {
            let answer = router.decide(order, now).unwrap();
            assert!(answer.duplicate);
            assert_eq!(answer.decision.order_id, order.id);
        }
        let conflict = order("two", 5);
        assert_eq!(
            router.decide(&conflict, now).unwrap_err().code,
            InvalidCode::IdConflict
        );
        assert_eq!(
            router.order("three").unwrap().decision.shipments[0].lines[0].quantity,
            3
        );
        assert!(router.order("four").is_none());
        router.cancel("two").unwrap();
        assert_eq!(router.stock_of(SkuId(0))[0].1.reserved, 4);
    }
}
