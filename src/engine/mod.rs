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

use crate::catalog::Catalog;
use crate::config::{Network, Policy};
use crate::geo::haversine_km;
use crate::ids::{CarrierId, RegionId, SkuId, WarehouseId};
use crate::model::{Capabilities, LineQuantity, Order, ServiceLevel, Shipment};
use crate::time::Millis;
use crate::zone::ZoneState;
use smallvec::SmallVec;
use std::cmp::Ordering;

/// A plan for one order in one zone: the shipments to reserve and what waits for stock.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub shipments: SmallVec<[Shipment; 1]>,
    pub backordered: SmallVec<[LineQuantity; 1]>,
    pub score: f64,
}

/// Why a zone could not place an order, as flags gathered over every warehouse and carrier
/// looked at. `router::reason_for` picks the most informative one.
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

/// Per-order inputs derived once and shared by every zone the order is tried in.
pub struct OrderContext<'a> {
    pub order: &'a Order,
    pub network: &'a Network,
    pub now: Millis,
    pub day: i32,
    /// The order's level or its tier's minimum, whichever is faster.
    pub level: ServiceLevel,
    /// Units per SKU, SKUs in first-appearance order (an order may list a SKU twice).
    pub demands: SmallVec<[Demand; 4]>,
    pub capabilities: Capabilities,
    pub weight_g: u64,
    pub units: u64,
    /// The cheapest `per_kg` of any service that could carry to the region at the level:
    /// a lower bound of what each kg costs in any plan.
    min_per_kg: f64,
}

/// Units of one SKU the order needs.
#[derive(Clone, Copy, Debug)]
pub struct Demand {
    pub sku: SkuId,
    pub quantity: u32,
    pub unit_weight_g: u32,
    pub capabilities: Capabilities,
}

impl<'a> OrderContext<'a> {
    /// Prepares `order` for routing at `now`.
    pub fn new(order: &'a Order, network: &'a Network, catalog: &Catalog, now: Millis) -> Self {
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
        OrderContext {
            order,
            network,
            now,
            day: now.utc_day(),
            level,
            demands,
            capabilities,
            weight_g,
            units,
            min_per_kg: network.min_per_kg(order.region, level),
        }
    }

    fn policy(&self) -> &Policy {
        &self.network.policy
    }

    fn region(&self) -> RegionId {
        self.order.region
    }

    /// Distance from `warehouse` to the order's destination.
    #[inline]
    fn distance_km(&self, warehouse: WarehouseId) -> f64 {
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

/// A warehouse of the zone that can take shipments today.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    local: usize,
    warehouse: WarehouseId,
    capabilities: Capabilities,
    distance_km: f64,
    /// The plan-score terms that depend on the warehouse alone.
    fixed_score: f64,
    /// `fixed_score` plus the least `cost_weight * (base_cost + per_km * km)` any service to
    /// the region could charge from here: no shipment from here scores less (before kg).
    /// Only the split search needs it, so it is `fixed_score` until that search fills it in.
    lower_bound: f64,
    /// Whether it holds every unit of the order.
    holds_all: bool,
    /// Whether it holds any unit of the order it can handle.
    holds_any: bool,
}

/// The carrier service picked for one shipment.
#[derive(Clone, Copy, Debug)]
struct CarrierChoice {
    carrier: CarrierId,
    service: usize,
    cost: f64,
    eta: Millis,
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
    let mut best: Option<Plan> = None;

    // Single-warehouse plans, scored exactly.
    for candidate in &scratch.candidates {
        if !candidate.holds_all {
            continue;
        }
        // No shipment from here can cost less than its warehouse terms plus the cheapest
        // per-kg rate: skip the carrier search when that already loses.
        let floor = candidate.fixed_score
            + context.policy().cost_weight * context.min_per_kg * context.weight_g as f64 / 1000.0;
        if best.as_ref().is_some_and(|plan| floor > plan.score) {
            continue;
        }
        let Some(choice) = choose_carrier(
            context,
            zone,
            candidate,
            context.capabilities,
            context.weight_g,
            &mut failures,
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
        let lines = context
            .demands
            .iter()
            .map(|demand| LineQuantity {
                sku: demand.sku,
                quantity: demand.quantity,
            })
            .collect();
        let shipment = make_shipment(context, candidate, &choice, lines, context.weight_g);
        best = Some(Plan {
            score,
            shipments: smallvec::smallvec![shipment],
            backordered: SmallVec::new(),
        });
    }
    if !scratch
        .candidates
        .iter()
        .any(|candidate| candidate.holds_all)
    {
        failures.no_stock = true;
    }

    let split_allowed =
        context.order.split_allowed && context.policy().max_shipments >= 2 && context.units >= 2;
    if split_allowed && zone_covers(context, zone, &scratch.candidates) {
        // What stopped a split is only worth reporting when splitting was the only way: a
        // subset that failed on, say, one parcel's promise says little about an order a
        // single warehouse could have shipped but for its carrier.
        let mut split_failures = Failures::default();
        search_splits(context, zone, scratch, &mut best, &mut split_failures);
        if !scratch
            .candidates
            .iter()
            .any(|candidate| candidate.holds_all)
        {
            failures.merge(&split_failures);
        }
    }
    match best {
        Some(plan) => ZoneAttempt::Placed(plan),
        None => ZoneAttempt::Failed(failures),
    }
}

/// Whether the zone's candidates together hold every unit of the order (each unit at a
/// warehouse that can handle it). When they do not, no split can place the order and the
/// search is skipped: this is what keeps orders that fail on stock cheap, even though they
/// are tried in every zone of their zone order.
fn zone_covers(context: &OrderContext, zone: &ZoneState, candidates: &[Candidate]) -> bool {
    context.demands.iter().all(|demand| {
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
    let max_shipments = if context.order.split_allowed {
        context.policy().max_shipments as usize
    } else {
        1
    };
    let mut remaining: SmallVec<[u32; 4]> = context
        .demands
        .iter()
        .map(|demand| demand.quantity)
        .collect();
    let mut usable: SmallVec<[bool; 8]> = scratch
        .candidates
        .iter()
        .map(|candidate| candidate.holds_any)
        .collect();
    let mut shipments: SmallVec<[Shipment; 1]> = SmallVec::new();
    let mut score = 0.0;
    while shipments.len() < max_shipments {
        // The usable warehouse that supplies the most remaining units (ties: lower bound).
        let mut pick: Option<(usize, u64)> = None;
        for (position, candidate) in scratch.candidates.iter().enumerate() {
            if !usable[position] {
                continue;
            }
            let units = suppliable(context, zone, candidate, &remaining);
            let better = match pick {
                None => units > 0,
                Some((best_position, best_units)) => {
                    units > best_units
                        || (units == best_units
                            && candidate.lower_bound
                                < scratch.candidates[best_position].lower_bound)
                }
            };
            if better {
                pick = Some((position, units));
            }
        }
        let Some((position, _)) = pick else { break };
        usable[position] = false;
        let candidate = scratch.candidates[position];
        let taken: SmallVec<[u32; 4]> = context
            .demands
            .iter()
            .zip(&remaining)
            .map(|(demand, remaining)| {
                if candidate.capabilities.covers(demand.capabilities) {
                    (*remaining).min(zone.cell(candidate.local, demand.sku).available())
                } else {
                    0
                }
            })
            .collect();
        let (capabilities, weight_g) = parcel_needs(&context.demands, &taken);
        let lines = parcel_lines(&context.demands, &taken);
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
    let backordered = context
        .demands
        .iter()
        .zip(&remaining)
        .filter(|(_, quantity)| **quantity > 0)
        .map(|(demand, quantity)| LineQuantity {
            sku: demand.sku,
            quantity: *quantity,
        })
        .collect();
    Ok(Plan {
        shipments,
        backordered,
        score,
    })
}

/// Units of `remaining` that `candidate` holds and can handle.
fn suppliable(
    context: &OrderContext,
    zone: &ZoneState,
    candidate: &Candidate,
    remaining: &[u32],
) -> u64 {
    context
        .demands
        .iter()
        .zip(remaining)
        .filter(|(demand, _)| candidate.capabilities.covers(demand.capabilities))
        .map(|(demand, quantity)| {
            u64::from((*quantity).min(zone.cell(candidate.local, demand.sku).available()))
        })
        .sum()
}

/// The zone's enabled warehouses with capacity left today, with their per-warehouse terms.
fn collect_candidates(
    context: &OrderContext,
    zone: &ZoneState,
    out: &mut Vec<Candidate>,
    failures: &mut Failures,
) {
    out.clear();
    let network = context.network;
    let policy = context.policy();
    for (local, &warehouse) in zone.warehouses().iter().enumerate() {
        let site = &network.warehouses[warehouse.index()];
        if !site.enabled {
            continue;
        }
        let (mut holds_all, mut holds_any) = (true, false);
        for demand in &context.demands {
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
        let used = zone.warehouse_orders(local, context.day);
        if site.daily_orders > 0 && used >= site.daily_orders {
            if holds_all {
                failures.warehouse_capacity = true;
            }
            continue;
        }
        let utilisation = if site.daily_orders == 0 {
            0.0
        } else {
            f64::from(used) / f64::from(site.daily_orders)
        };
        let distance_km = context.distance_km(warehouse);
        let fixed_score = policy.distance_weight * distance_km
            + policy.load_weight * utilisation
            + policy.rank_weight * f64::from(site.rank);
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

/// The best carrier service for a shipment of `weight_g` grams needing `capabilities` from
/// `candidate`, or `None` (with the reasons noted in `failures`).
fn choose_carrier(
    context: &OrderContext,
    zone: &ZoneState,
    candidate: &Candidate,
    capabilities: Capabilities,
    weight_g: u64,
    failures: &mut Failures,
) -> Option<CarrierChoice> {
    let network = context.network;
    let cost_weight = context.policy().cost_weight;
    let weight_kg = weight_g as f64 / 1000.0;
    let handling_hours = network.warehouses[candidate.warehouse.index()].handling_hours;
    let mut best: Option<(f64, CarrierChoice, ServiceLevel)> = None;
    // What stopped the carriers that fit: noted only if no service is found at all.
    let (mut fitting_carrier, mut late, mut pickups_full) = (false, false, false);
    for &carrier_id in &network.carriers_by_region[context.region().index()] {
        let carrier = &network.carriers[carrier_id.index()];
        if !carrier.capabilities.covers(capabilities) || weight_kg > carrier.max_weight_kg {
            continue;
        }
        fitting_carrier = true;
        if carrier.daily_pickups > 0
            && zone.pickups(candidate.local, carrier_id, context.day) >= carrier.daily_pickups
        {
            pickups_full = true;
            continue;
        }
        for (service_index, service) in carrier.services.iter().enumerate() {
            if service.level < context.level
                || (service.max_km > 0.0 && candidate.distance_km > service.max_km)
            {
                continue;
            }
            let cost = service.base_cost
                + service.per_kg * weight_kg
                + service.per_km * candidate.distance_km;
            let key = cost_weight * cost;
            let better = match &best {
                None => true,
                Some((best_key, best_choice, best_level)) => key
                    .total_cmp(best_key)
                    .then(carrier_id.cmp(&best_choice.carrier))
                    .then(cost.total_cmp(&best_choice.cost))
                    .then(service.level.cmp(best_level))
                    .is_lt(),
            };
            // The ETA is only worked out for a service that would win: one that loses to a
            // feasible service already found cannot matter, late or not.
            if !better {
                continue;
            }
            let eta = context.now.plus_hours(
                handling_hours + service.base_hours + candidate.distance_km / service.km_per_hour,
            );
            if let Some(promise) = context.order.promise_by
                && eta > promise
            {
                late = true;
                failures.earliest_late_eta =
                    Some(failures.earliest_late_eta.map_or(eta, |seen| seen.min(eta)));
                continue;
            }
            if better {
                best = Some((
                    key,
                    CarrierChoice {
                        carrier: carrier_id,
                        service: service_index,
                        cost,
                        eta,
                    },
                    service.level,
                ));
            }
        }
    }
    if best.is_none() {
        if !fitting_carrier {
            failures.no_carrier = true;
        } else if pickups_full {
            failures.pickup_capacity = true;
        } else if !late {
            failures.service_unavailable = true;
        }
    }
    best.map(|(_, choice, _)| choice)
}

/// What a parcel of `units` (per demand) needs of a carrier: capabilities and weight.
fn parcel_needs(demands: &[Demand], units: &[u32]) -> (Capabilities, u64) {
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
fn parcel_lines(demands: &[Demand], units: &[u32]) -> SmallVec<[LineQuantity; 2]> {
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

fn make_shipment(
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

/// Replaces `best` with `plan` if `plan` wins: lower score, then the contract's tie-breaks
/// (rank, warehouse id, carrier id of each shipment in turn), then fewer shipments.
fn keep_better(best: &mut Option<Plan>, plan: Plan, network: &Network) {
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
type TieKey = (u32, WarehouseId, CarrierId);

fn tie_key(network: &Network, warehouse: WarehouseId, carrier: CarrierId) -> TieKey {
    (
        network.warehouses[warehouse.index()].rank,
        warehouse,
        carrier,
    )
}

/// Compares a plan given by its score, tie keys and shipment count with plan `b`.
fn compare_keys(
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

/// Branch-and-bound over warehouse subsets of size 2..=max_shipments (see the module docs).
fn search_splits(
    context: &OrderContext,
    zone: &ZoneState,
    scratch: &mut Scratch,
    best: &mut Option<Plan>,
    failures: &mut Failures,
) {
    let policy = context.policy();
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
    let weight_bound = policy.cost_weight * context.min_per_kg * context.weight_g as f64 / 1000.0;
    if let Some(plan) = best.as_ref() {
        // Cheap pre-check on the warehouse terms alone: if even the two best warehouses plus
        // the split penalty cannot beat the plan in hand, no split can.
        let (mut first, mut second) = (f64::INFINITY, f64::INFINITY);
        for candidate in split_candidates.iter() {
            if candidate.fixed_score < first {
                second = first;
                first = candidate.fixed_score;
            } else if candidate.fixed_score < second {
                second = candidate.fixed_score;
            }
        }
        if first + second + policy.split_weight + weight_bound > plan.score {
            return;
        }
    }
    let network = context.network;
    for candidate in split_candidates.iter_mut() {
        let cheapest_fixed_cost = network.carriers_by_region[context.region().index()]
            .iter()
            .flat_map(|carrier| network.carriers[carrier.index()].services.iter())
            .filter(|service| service.level >= context.level)
            .map(|service| service.base_cost + service.per_km * candidate.distance_km)
            .fold(f64::INFINITY, f64::min);
        if cheapest_fixed_cost.is_finite() {
            candidate.lower_bound =
                candidate.fixed_score + policy.cost_weight * cheapest_fixed_cost;
        }
    }
    split_candidates.sort_by(|a, b| {
        a.lower_bound
            .total_cmp(&b.lower_bound)
            .then(a.warehouse.cmp(&b.warehouse))
    });
    split_candidates.truncate(policy.split_candidates as usize);
    let max_size = (policy.max_shipments as usize).min(split_candidates.len());
    let mut chosen: SmallVec<[usize; 8]> = SmallVec::new();
    // Depth-first over subsets in lower-bound order; `stack` holds the next position to try at
    // each depth, so the search needs no recursion and no allocation.
    let mut stack: SmallVec<[usize; 8]> = smallvec::smallvec![0];
    let mut bound_sum: SmallVec<[f64; 8]> = smallvec::smallvec![0.0];
    while let Some(next) = stack.pop() {
        let depth = stack.len();
        chosen.truncate(depth);
        bound_sum.truncate(depth + 1);
        if next >= split_candidates.len() {
            continue;
        }
        // Lower bound of any subset that extends `chosen` with `next`.
        let penalty = if depth >= 1 { policy.split_weight } else { 0.0 };
        let bound = bound_sum[depth] + split_candidates[next].lower_bound + penalty;
        let best_score = best.as_ref().map_or(f64::INFINITY, |plan| plan.score);
        if depth >= 1 && bound + weight_bound > best_score {
            // Candidates are sorted by bound: every later one is no better. Backtrack.
            continue;
        }
        stack.push(next + 1);
        chosen.push(next);
        bound_sum.push(bound);
        if chosen.len() >= 2
            && let Some(plan) = evaluate_subset_any_fill(
                context,
                zone,
                split_candidates,
                &chosen,
                assignment,
                failures,
                best.as_ref(),
            )
        {
            keep_better(best, plan, context.network);
        }
        if chosen.len() < max_size {
            stack.push(next + 1);
        }
    }
}

/// [`evaluate_subset`] with the chosen warehouses filled lowest bound first; if that leaves
/// a parcel no carrier takes (too heavy, say), the other fill orders are tried too (all of
/// them up to three warehouses, the reverse beyond), and the best plan found wins.
fn evaluate_subset_any_fill(
    context: &OrderContext,
    zone: &ZoneState,
    candidates: &[Candidate],
    chosen: &[usize],
    assignment: &mut Vec<u32>,
    failures: &mut Failures,
    rival: Option<&Plan>,
) -> Option<Plan> {
    match evaluate_subset(
        context, zone, candidates, chosen, assignment, failures, rival,
    ) {
        Ok(plan) => return Some(plan),
        Err(SubsetFailure::NoCarrier) => {}
        Err(_) => return None,
    }
    let mut best: Option<Plan> = None;
    let mut order: SmallVec<[usize; 8]> = chosen.iter().copied().collect();
    let try_order = |order: &[usize], best: &mut Option<Plan>, assignment: &mut Vec<u32>| {
        if let Ok(plan) = evaluate_subset(
            context,
            zone,
            candidates,
            order,
            assignment,
            &mut Failures::default(),
            best.as_ref().or(rival),
        ) {
            keep_better(best, plan, context.network);
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

/// Assigns the order's units to the chosen warehouses (in the order given) and prices the
/// shipments. `None` when they cannot hold every unit, when a warehouse would get nothing
/// (a smaller subset covers that plan), or when a shipment finds no carrier.
fn evaluate_subset(
    context: &OrderContext,
    zone: &ZoneState,
    candidates: &[Candidate],
    chosen: &[usize],
    assignment: &mut Vec<u32>,
    failures: &mut Failures,
    rival: Option<&Plan>,
) -> Result<Plan, SubsetFailure> {
    let demands = &context.demands;
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
    let policy = context.policy();
    // Price every parcel first; the plan (which allocates) is built only if it beats `rival`.
    let mut choices: SmallVec<[(CarrierChoice, u64); 4]> = SmallVec::new();
    let mut score = policy.split_weight * (chosen.len() - 1) as f64;
    for (slot, &position) in chosen.iter().enumerate() {
        let candidate = &candidates[position];
        let units = &assignment[slot * demands.len()..(slot + 1) * demands.len()];
        if units.iter().all(|quantity| *quantity == 0) {
            return Err(SubsetFailure::Redundant);
        }
        let (capabilities, weight_g) = parcel_needs(demands, units);
        let choice = choose_carrier(context, zone, candidate, capabilities, weight_g, failures)
            .ok_or(SubsetFailure::NoCarrier)?;
        score += candidate.fixed_score + policy.cost_weight * choice.cost;
        choices.push((choice, weight_g));
    }
    if let Some(rival) = rival {
        let keys = chosen.iter().zip(&choices).map(|(&position, (choice, _))| {
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
    let mut shipments: SmallVec<[Shipment; 1]> = SmallVec::with_capacity(chosen.len());
    for (slot, (&position, (choice, weight_g))) in chosen.iter().zip(&choices).enumerate() {
        let units = &assignment[slot * demands.len()..(slot + 1) * demands.len()];
        let lines = parcel_lines(demands, units);
        shipments.push(make_shipment(
            context,
            &candidates[position],
            choice,
            lines,
            *weight_g,
        ));
    }
    Ok(Plan {
        shipments,
        backordered: SmallVec::new(),
        score,
    })
}
