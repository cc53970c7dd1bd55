//! One zone of the sharded service, and an order's journey along its zone chain as steps
//! taken in one zone at a time.
//!
//! `route` decides an order in one call ([`crate::router::Router`] holds every zone). The
//! service gives each zone its own single writer (an actor, [`crate::serve::shard`]), so
//! deciding becomes a journey: the order arrives at its home zone, which claims its id and
//! tries to place it; a zone that cannot place it whole passes it to the next zone of the
//! chain; when every zone has failed, it goes back home to be backordered or rejected
//! ([`crate::router::settle`]). Each step here reads and writes one zone's state only, so a
//! zone's state needs no lock.
//!
//! **Claims** are the one thing shared across zones: an order's home follows from its
//! content (the region), so a retry with another region (an `id_conflict`) arrives at
//! another home, and only a table of every id catches it. [`Claims`] is that table (a
//! `dashmap` of id to claim). An id is claimed by the ingest worker ([`admit`]), line by
//! line in input order, before its chunk goes to the zones: the first line with an id is
//! the original whatever zone threads do next, and a duplicate or a conflict goes straight
//! to the zone holding the original's record, which answers it behind that record. The
//! claim names the zone and slot of the record once there is one.
//!
//! **Duplicates in flight.** A duplicate has the same content, hence the same home and the
//! same chain as its original. When it finds the original's claim still pending, the
//! original is on its way along the chain ahead of it: the duplicate follows the same chain
//! (without planning) and, since each zone passes orders on in the order it took them,
//! finds the decision in the zone that made it. The one case that breaks the "same chain"
//! (a reload that changed the fallbacks between the two) ends with the duplicate at home
//! with the claim still pending; it waits there ([`Step::Wait`]) until the original is
//! decided.

use crate::catalog::Catalog;
use crate::config::Network;
use crate::engine::{self, Failures, OrderContext, Scratch, ZoneAttempt};
use crate::ids::ZoneId;
use crate::model::{Invalid, InvalidCode, Order, Status};
use crate::render;
use crate::router::{commit, settle};
use crate::shard::ZoneState;
use crate::time::Millis;
use compact_str::CompactString;
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use std::sync::Arc;

/// Where an order id's record is, and the content it was claimed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    pub content_hash: u64,
    /// The zone holding the record; while pending, the home zone that claimed it.
    pub zone: ZoneId,
    /// The record's slot in that zone, or [`Claim::PENDING`].
    pub slot: u32,
}

impl Claim {
    /// The slot of a claim whose order is still on its way along its chain.
    pub const PENDING: u32 = u32::MAX;

    pub fn is_decided(&self) -> bool {
        self.slot != Claim::PENDING
    }
}

/// Every order id the service has taken, across zones.
///
/// A `DashMap` (a hash map split into independently locked shards) rather than a claims
/// actor: a claim is two short critical sections per order (claim, then settle) on one of
/// `4 x cores` shards, which two zone threads almost never contend for, against an extra
/// message hop per order for an actor. Keyed by the id itself (ids of up to 24 bytes are
/// stored inline), so there are no hash collisions to tell apart. Hashed with `foldhash`
/// (hashbrown's own default: a per-process random seed, several times faster than SipHash
/// on short keys; ids come from authenticated storefronts).
pub struct Claims {
    map: DashMap<CompactString, Claim, foldhash::fast::RandomState>,
}

/// Shards of the claims table. A shard grows by doubling, copying every claim it holds
/// while its lock is taken: with millions of claims in `4 x cores` shards (8 here), one such
/// copy stalls every order hashing there for tens of milliseconds. More, smaller shards make
/// each copy proportionally shorter.
const CLAIMS_SHARDS: usize = 256;

impl Default for Claims {
    fn default() -> Self {
        Claims {
            map: DashMap::with_capacity_and_hasher_and_shard_amount(
                0,
                foldhash::fast::RandomState::default(),
                CLAIMS_SHARDS,
            ),
        }
    }
}

impl Claims {
    /// Claims `id` for an order with `content_hash` at its `home` zone. `None` when the id
    /// is now this order's; the existing claim when it was taken before.
    pub fn claim(&self, id: &CompactString, content_hash: u64, home: ZoneId) -> Option<Claim> {
        match self.map.entry(id.clone()) {
            Entry::Occupied(existing) => Some(*existing.get()),
            Entry::Vacant(slot) => {
                slot.insert(Claim {
                    content_hash,
                    zone: home,
                    slot: Claim::PENDING,
                });
                None
            }
        }
    }

    /// Records where the claimed order `id` was decided.
    pub fn settle(&self, id: &str, zone: ZoneId, slot: u32) {
        let mut claim = self
            .map
            .get_mut(id)
            .expect("an order is claimed before it is decided");
        debug_assert!(!claim.is_decided(), "an order is decided once");
        claim.zone = zone;
        claim.slot = slot;
    }

    pub fn get(&self, id: &str) -> Option<Claim> {
        self.map.get(id).map(|claim| *claim)
    }

    /// Puts back the claim of a decision replayed from a journal.
    pub fn restore(&self, id: &CompactString, content_hash: u64, zone: ZoneId, slot: u32) {
        self.map.insert(
            id.clone(),
            Claim {
                content_hash,
                zone,
                slot,
            },
        );
    }

    /// Ids claimed.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// An order on its way: where it is in its chain and what it carries from the zones behind.
#[derive(Debug)]
pub struct Visit {
    /// Its position in the chunk it came in (its answer's place).
    pub index: u32,
    /// Its line number in the stream (for an `invalid` answer).
    pub line: u64,
    pub order: Order,
    pub leg: Leg,
}

/// The leg of the journey a [`Visit`] is on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Leg {
    /// At `position` in the home zone's chain (0 = home, 1 = the first fallback), with the
    /// failures of the zones before.
    Fallback { position: u16, failures: Failures },
    /// Back at home after every zone failed: backorder or reject.
    Settle { failures: Failures },
    /// A duplicate following its pending original: at `position` in the chain, or back at
    /// home once `position` is the chain's length.
    Follow { position: u16 },
    /// At the zone holding the decision: answer it again, as a duplicate.
    Replay,
    /// Same id, other content: answered `id_conflict` by the zone holding the original's
    /// record (waiting there while the original is still on its way).
    Conflict,
}

/// How a visit was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A new decision (it goes on the decision feed and into the journal), and its record's
    /// slot in the zone.
    Decided(Status, u32),
    Duplicate,
    Invalid(InvalidCode),
}

/// Where a new line's order goes first: to this zone, as this visit.
pub type Admitted = (ZoneId, Visit);

/// Claims the id of `order` (line `line`, at `index` in its chunk) and says where it goes:
/// a new id to its home zone; a duplicate to the zone holding its decision (or, while the
/// original is on its way, after it along the same chain); a conflict to the zone of the
/// original's claim, to be answered there (through that zone's journal queue, so never
/// before the original is durable: a crash would otherwise free an id whose conflict was
/// already answered). Called by the ingest worker, in input order.
pub fn admit(claims: &Claims, network: &Network, order: Order, index: u32, line: u64) -> Admitted {
    let home = network.regions[order.region.index()].zone;
    let (to, leg) = match claims.claim(&order.id, order.content_hash, home) {
        None => (
            home,
            Leg::Fallback {
                position: 0,
                failures: Failures::default(),
            },
        ),
        Some(claim) if claim.content_hash != order.content_hash => (claim.zone, Leg::Conflict),
        Some(claim) if claim.is_decided() => (claim.zone, Leg::Replay),
        Some(_) => (home, Leg::Follow { position: 0 }),
    };
    let visit = Visit {
        index,
        line,
        order,
        leg,
    };
    (to, visit)
}

/// The `id_conflict` of `order`.
fn conflict(order: &Order) -> Invalid {
    Invalid {
        code: InvalidCode::IdConflict,
        message: format!(
            "order '{}' was already received with different content",
            order.id
        ),
        order_id: Some(order.id.clone()),
    }
}

/// What became of a visit in one zone.
#[derive(Debug)]
pub enum Step {
    /// Its answer was appended to the output.
    Answered(Outcome),
    /// It goes on to this zone.
    Forward(ZoneId, Visit),
    /// A duplicate whose original is not decided yet: look again a little later, here.
    Wait(Visit),
}

/// One zone's state and what deciding in it needs. Only its owner (one thread) calls it.
pub struct Zone {
    state: ZoneState,
    catalog: Arc<Catalog>,
    claims: Arc<Claims>,
    scratch: Scratch,
}

impl Zone {
    pub fn new(state: ZoneState, catalog: Arc<Catalog>, claims: Arc<Claims>) -> Zone {
        Zone {
            state,
            catalog,
            claims,
            scratch: Scratch::default(),
        }
    }

    pub fn id(&self) -> ZoneId {
        self.state.zone
    }

    pub fn state(&self) -> &ZoneState {
        &self.state
    }

    pub fn state_mut(&mut self) -> &mut ZoneState {
        &mut self.state
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// Starts loading the stock cells and SKU entries `order` will read here.
    pub fn prefetch(&self, order: &Order) {
        for line in &order.lines {
            self.state.prefetch(line.sku);
            self.catalog.prefetch(line.sku);
        }
    }

    /// Takes `visit` one step, under `network` (the snapshot its chunk was parsed with) at
    /// `now`. An answer is appended to `out` as a JSON line.
    pub fn visit(
        &mut self,
        network: &Network,
        mut visit: Visit,
        now: Millis,
        out: &mut Vec<u8>,
    ) -> Step {
        let here = self.state.zone;
        let home = network.regions[visit.order.region.index()].zone;
        let chain = network.zones[home.index()].fallback.len() + 1;
        let chain_zone = |position: usize| network.zone_order(home).nth(position);
        loop {
            match visit.leg {
                Leg::Fallback {
                    position,
                    mut failures,
                } => {
                    let context = OrderContext::new(&visit.order, network, &self.catalog, now);
                    match engine::plan_zone(&context, &self.state, &mut self.scratch) {
                        ZoneAttempt::Placed(plan) => {
                            let decision = commit(&context, &mut self.state, plan, None);
                            return self.decided(network, &visit, decision, out);
                        }
                        ZoneAttempt::Failed(zone_failures) => failures.merge(&zone_failures),
                    }
                    let next = usize::from(position) + 1;
                    visit.leg = match chain_zone(next) {
                        Some(_) => Leg::Fallback {
                            position: next as u16,
                            failures,
                        },
                        None => Leg::Settle { failures },
                    };
                    let to = chain_zone(next).unwrap_or(home);
                    if to != here {
                        return Step::Forward(to, visit);
                    }
                }
                Leg::Settle { failures } => {
                    debug_assert_eq!(here, home, "an order settles at its home zone");
                    let context = OrderContext::new(&visit.order, network, &self.catalog, now);
                    let decision = settle(&context, &mut self.state, failures, &mut self.scratch);
                    return self.decided(network, &visit, decision, out);
                }
                Leg::Follow { position } => {
                    let claim = self
                        .claims
                        .get(&visit.order.id)
                        .expect("a followed order is claimed");
                    return self.claimed(network, visit, claim, position.into(), chain, out);
                }
                Leg::Replay => {
                    let claim = self
                        .claims
                        .get(&visit.order.id)
                        .expect("a replayed order is claimed");
                    return self.claimed(network, visit, claim, chain, chain, out);
                }
                Leg::Conflict => {
                    let claim = self
                        .claims
                        .get(&visit.order.id)
                        .expect("a conflicting id is claimed");
                    if !claim.is_decided() {
                        // The original is on its way; its record will be where its claim
                        // says once it is decided.
                        return Step::Wait(visit);
                    }
                    if claim.zone != here {
                        return Step::Forward(claim.zone, visit);
                    }
                    render::write_invalid(out, visit.line, &conflict(&visit.order));
                    return Step::Answered(Outcome::Invalid(InvalidCode::IdConflict));
                }
            }
        }
    }

    /// Records a new decision made here, settles its claim and renders it.
    fn decided(
        &mut self,
        network: &Network,
        visit: &Visit,
        decision: crate::model::Decision,
        out: &mut Vec<u8>,
    ) -> Step {
        let status = decision.status;
        let slot = self.state.record(decision, visit.order.content_hash);
        self.claims.settle(&visit.order.id, self.state.zone, slot);
        let record = self.state.order(slot);
        render::write_decision(out, &record.decision, false, network, &self.catalog);
        Step::Answered(Outcome::Decided(status, slot))
    }

    /// `visit` is a duplicate of the order that holds `claim`: answered here, or where the
    /// record is, or (the original still on its way) following it from `position` in the
    /// chain of length `chain`.
    fn claimed(
        &self,
        network: &Network,
        mut visit: Visit,
        claim: Claim,
        position: usize,
        chain: usize,
        out: &mut Vec<u8>,
    ) -> Step {
        let here = self.state.zone;
        debug_assert_eq!(
            claim.content_hash, visit.order.content_hash,
            "conflicts take the Conflict leg"
        );
        if claim.is_decided() {
            if claim.zone == here {
                let record = self.state.order(claim.slot);
                render::write_decision(out, &record.decision, true, network, &self.catalog);
                return Step::Answered(Outcome::Duplicate);
            }
            visit.leg = Leg::Replay;
            return Step::Forward(claim.zone, visit);
        }
        // The original is still on its way, ahead of this copy on the same chain.
        let home = network.regions[visit.order.region.index()].zone;
        if position >= chain {
            visit.leg = Leg::Follow {
                position: chain as u16,
            };
            return Step::Wait(visit);
        }
        let next = position + 1;
        let to = network.zone_order(home).nth(next).unwrap_or(home);
        visit.leg = Leg::Follow {
            position: next as u16,
        };
        Step::Forward(to, visit)
    }
}

/// A small two-zone world for the tests of this module.
#[cfg(test)]
mod tests_support {
    use super::*;
    use crate::catalog::read_stock;
    use crate::ingest::parse_order;
    use std::path::Path;

    /// Two zones, each the other's fallback; stock of A only in the south.
    const NETWORK: &str = r#"
[[zones]]
id = "north"
fallback = ["south"]
[[zones]]
id = "south"
fallback = ["north"]
[[regions]]
id = "N"
lat = 40.0
lon = 116.0
zone = "north"
[[regions]]
id = "S"
lat = 23.0
lon = 113.0
zone = "south"
[[warehouses]]
id = "WN"
zone = "north"
lat = 40.1
lon = 116.0
[[warehouses]]
id = "WS"
zone = "south"
lat = 23.1
lon = 113.0
[[carriers]]
id = "c"
regions = ["*"]
max_weight_kg = 100.0
[[carriers.services]]
level = "standard"
base_cost = 1.0
per_kg = 1.0
per_km = 0.001
base_hours = 1.0
km_per_hour = 500.0
"#;

    pub struct World {
        pub network: Arc<Network>,
        pub catalog: Arc<Catalog>,
        pub stock: Vec<crate::catalog::StockLevel>,
    }

    pub fn world(stock: &str) -> World {
        let network = Arc::new(Network::from_toml(NETWORK).unwrap());
        let catalog = Arc::new(
            Catalog::read(
                "sku,weight_g,capabilities\nA,100,\nB,100,\n".as_bytes(),
                Path::new("c"),
            )
            .unwrap(),
        );
        let stock = read_stock(stock.as_bytes(), Path::new("s"), &network, &catalog).unwrap();
        World {
            network,
            catalog,
            stock,
        }
    }

    pub fn zones(world: &World) -> Vec<Zone> {
        let claims = Arc::new(Claims::default());
        let mut zones: Vec<Zone> = (0..world.network.zones.len())
            .map(|index| {
                let state =
                    ZoneState::new(&world.network, ZoneId(index as u16), world.catalog.len());
                Zone::new(state, world.catalog.clone(), claims.clone())
            })
            .collect();
        for level in &world.stock {
            let zone = world.network.warehouses[level.warehouse.index()].zone;
            zones[zone.index()].state_mut().set_on_hand(*level).unwrap();
        }
        zones
    }

    pub fn order(world: &World, id: &str, region: &str, sku: &str, qty: u32) -> Order {
        let line = format!(
            r#"{{"id":"{id}","customer":{{"id":"C"}},"ship_to":{{"region":"{region}"}},"lines":[{{"sku":"{sku}","qty":{qty}}}]}}"#
        );
        parse_order(line.as_bytes(), &world.network, &world.catalog).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::*;
    use super::*;
    use crate::router::Router;
    use std::collections::VecDeque;

    /// Admits the orders in order and delivers every visit, one at a time from per-zone
    /// FIFO mailboxes; `pick(n)` chooses what happens next among admitting the next order
    /// (choice 0, while any are left) and the busy mailboxes. Each answer line by index.
    fn run(
        world: &World,
        zones: &mut [Zone],
        orders: Vec<Order>,
        mut pick: impl FnMut(usize) -> usize,
    ) -> Vec<String> {
        let mut mailboxes: Vec<VecDeque<Visit>> =
            (0..zones.len()).map(|_| VecDeque::new()).collect();
        let claims = zones[0].claims.clone();
        let mut answers = vec![String::new(); orders.len()];
        let mut orders = orders.into_iter().enumerate().peekable();
        loop {
            let busy: Vec<usize> = (0..zones.len())
                .filter(|zone| !mailboxes[*zone].is_empty())
                .collect();
            let admitting = usize::from(orders.peek().is_some());
            if busy.is_empty() && admitting == 0 {
                return answers;
            }
            let choice = pick(busy.len() + admitting);
            if choice < admitting {
                let (index, order) = orders.next().unwrap();
                let line = index as u64 + 1;
                let (zone, visit) = admit(&claims, &world.network, order, index as u32, line);
                mailboxes[zone.index()].push_back(visit);
                continue;
            }
            let zone = busy[choice - admitting];
            let visit = mailboxes[zone].pop_front().unwrap();
            let index = visit.index as usize;
            let mut out = Vec::new();
            match zones[zone].visit(&world.network, visit, Millis(0), &mut out) {
                Step::Answered(_) => answers[index] = String::from_utf8(out).unwrap(),
                Step::Forward(to, visit) => mailboxes[to.index()].push_back(visit),
                Step::Wait(visit) => mailboxes[zone].push_back(visit),
            }
        }
    }

    fn json(line: &str) -> serde_json::Value {
        serde_json::from_str(line).unwrap()
    }

    #[test]
    fn an_order_goes_to_the_fallback_that_holds_the_stock_and_is_found_there_again() {
        let world = world("warehouse,sku,on_hand\nWS,A,5\n");
        let mut zones = zones(&world);
        let first = order(&world, "o1", "N", "A", 2);
        let retry = order(&world, "o1", "N", "A", 2);
        let answers = run(&world, &mut zones, vec![first, retry], |_| 0);
        let (first, retry) = (json(&answers[0]), json(&answers[1]));
        assert_eq!(first["status"], "routed");
        assert_eq!(first["zone"], "south");
        assert_eq!(retry["duplicate"], true);
        assert_eq!(retry["seq"], first["seq"]);
        let cell = zones[1].state().cell(0, crate::ids::SkuId(0));
        assert_eq!(cell.reserved, 2, "the retry reserved nothing more");
    }

    #[test]
    fn a_retry_with_another_region_is_an_id_conflict_wherever_it_lands() {
        let world = world("warehouse,sku,on_hand\nWS,A,5\nWN,A,5\n");
        let mut zones = zones(&world);
        // Whichever zone thread runs first, the first line is the original.
        let first = order(&world, "o1", "S", "A", 1);
        let moved = order(&world, "o1", "N", "A", 1);
        let answers = run(&world, &mut zones, vec![first, moved], |choices| {
            choices - 1
        });
        assert_eq!(json(&answers[0])["status"], "routed");
        let conflict = json(&answers[1]);
        assert_eq!(conflict["status"], "invalid");
        assert_eq!(conflict["error"]["code"], "id_conflict");
        assert_eq!(conflict["line"], 2);
    }

    #[test]
    fn an_order_no_zone_can_place_is_backordered_at_home() {
        let world = world("warehouse,sku,on_hand\nWS,A,1\nWN,B,1\n");
        let mut zones = zones(&world);
        let wanting = order(&world, "o1", "N", "A", 3);
        let answers = run(&world, &mut zones, vec![wanting], |_| 0);
        let answer = json(&answers[0]);
        assert_ne!(answer["status"], "routed");
        assert_eq!(answer["zone"], "north");
    }

    /// Duplicates of an order still on its way (in any delivery order across zones) find
    /// its decision; every answer equals what the one-thread router gives.
    #[test]
    fn every_interleaving_answers_as_the_one_thread_router_does() {
        let world = world("warehouse,sku,on_hand\nWS,A,4\nWN,B,4\n");
        // "a!" is "a" shipped elsewhere: an id conflict, whichever zone runs first.
        let ids = ["a", "b", "a", "c", "a!", "b", "a", "d", "c"];
        let make = |world: &World| -> Vec<Order> {
            ids.iter()
                .map(|id| {
                    let (region, sku) = match *id {
                        "a" => ("N", "A"),
                        "a!" => ("S", "A"),
                        "b" => ("S", "B"),
                        "c" => ("N", "B"),
                        _ => ("S", "A"),
                    };
                    order(world, id.trim_end_matches('!'), region, sku, 1)
                })
                .collect()
        };
        let mut router = Router::new(world.network.clone(), world.catalog.clone(), &world.stock);
        let expected: Vec<serde_json::Value> = make(&world)
            .iter()
            .map(|order| {
                let mut out = Vec::new();
                match router.decide_rendered(order, Millis(0), &mut out) {
                    Ok(_) => json(std::str::from_utf8(&out).unwrap()),
                    Err(invalid) => serde_json::json!({
                        "order_id": invalid.order_id.map(|id| id.to_string()),
                        "status": "invalid",
                    }),
                }
            })
            .collect();
        for seed in 0..64u64 {
            let mut zones = zones(&world);
            let mut state = seed;
            let answers = run(&world, &mut zones, make(&world), |choices| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 33) as usize % choices
            });
            for (answer, expected) in answers.iter().zip(&expected) {
                let answer = json(answer);
                assert_eq!(answer["order_id"], expected["order_id"], "seed {seed}");
                assert_eq!(answer["status"], expected["status"], "seed {seed}");
                assert_eq!(answer["zone"], expected["zone"], "seed {seed}");
                assert_eq!(answer["shipments"], expected["shipments"], "seed {seed}");
                assert_eq!(answer["duplicate"], expected["duplicate"], "seed {seed}");
            }
        }
    }
}

/// Replay (`crate::durable`) against the live state: any sequence of orders (with their
/// fallbacks and duplicates), cancels, shipments and stock levels, journaled per zone as
/// the service journals them, replays into zones equal to the live ones.
#[cfg(test)]
mod replay_tests {
    use super::tests_support::*;
    use super::*;
    use crate::durable;
    use crate::ids::{SkuId, WarehouseId};
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Operation {
        Order {
            id: u8,
            south: bool,
            sku_b: bool,
            qty: u32,
        },
        Cancel {
            id: u8,
        },
        Ship {
            id: u8,
        },
        Stock {
            south: bool,
            sku_b: bool,
            on_hand: u32,
        },
    }

    fn operation() -> impl Strategy<Value = Operation> {
        prop_oneof![
            6 => (0u8..24, any::<bool>(), any::<bool>(), 1u32..5)
                .prop_map(|(id, south, sku_b, qty)| Operation::Order { id, south, sku_b, qty }),
            1 => (0u8..24).prop_map(|id| Operation::Cancel { id }),
            1 => (0u8..24).prop_map(|id| Operation::Ship { id }),
            1 => (any::<bool>(), any::<bool>(), 0u32..12)
                .prop_map(|(south, sku_b, on_hand)| Operation::Stock { south, sku_b, on_hand }),
        ]
    }

    /// Takes one order to its answer through the zones; the answering zone, its answer and
    /// how it was answered.
    fn decide(
        world: &World,
        zones: &mut [Zone],
        order: Order,
    ) -> Option<(usize, Vec<u8>, Outcome)> {
        let claims = zones[0].claims.clone();
        let (mut zone, mut visit) = admit(&claims, &world.network, order, 0, 1);
        loop {
            let mut out = Vec::new();
            match zones[zone.index()].visit(&world.network, visit, Millis(0), &mut out) {
                Step::Answered(outcome) => return Some((zone.index(), out, outcome)),
                Step::Forward(to, next) => (zone, visit) = (to, next),
                Step::Wait(_) => unreachable!("one order at a time never waits"),
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn replaying_the_journals_rebuilds_every_zone(operations in proptest::collection::vec(operation(), 1..60)) {
            let world = world("warehouse,sku,on_hand\nWS,A,6\nWN,B,6\nWN,A,2\n");
            let mut zones = zones(&world);
            let claims = zones[0].claims.clone();
            // Each zone's journal: (kind, payload).
            let mut journals: Vec<Vec<(u8, Vec<u8>)>> = vec![Vec::new(); zones.len()];
            for level in &world.stock {
                let zone = world.network.warehouses[level.warehouse.index()].zone.index();
                let mut payload = Vec::new();
                durable::encode_stock(&mut payload, &world.network, &world.catalog, *level);
                journals[zone].push((durable::KIND_STOCK, payload));
            }
            let name = |id: u8| format!("o{id}");
            for operation in operations {
                match operation {
                    Operation::Order { id, south, sku_b, qty } => {
                        let order = order(&world, &name(id), if south { "S" } else { "N" }, if sku_b { "B" } else { "A" }, qty);
                        if let Some((zone, _, Outcome::Decided(_, slot))) = decide(&world, &mut zones, order) {
                            let record = zones[zone].state().order(slot);
                            let mut payload = Vec::new();
                            durable::encode_decision_record(&mut payload, record.content_hash, &record.decision, &world.network, &world.catalog);
                            journals[zone].push((durable::KIND_DECISION_BINARY, payload));
                        }
                    }
                    Operation::Cancel { id } | Operation::Ship { id } => {
                        let Some(claim) = claims.get(&name(id)) else { continue };
                        let state = zones[claim.zone.index()].state_mut();
                        let closed = match operation {
                            Operation::Cancel { .. } => state.cancel(claim.slot),
                            _ => state.ship(claim.slot),
                        };
                        if let Ok(record) = closed {
                            let mut payload = Vec::new();
                            durable::encode_closed(&mut payload, &name(id), record.lifecycle);
                            journals[claim.zone.index()].push((durable::KIND_CLOSED, payload));
                        }
                    }
                    Operation::Stock { south, sku_b, on_hand } => {
                        let warehouse = WarehouseId(world.network.warehouse_ids.get(if south { "WS" } else { "WN" }).unwrap() as u16);
                        let level = crate::catalog::StockLevel { warehouse, sku: SkuId(u32::from(sku_b)), on_hand };
                        let zone = world.network.warehouses[warehouse.index()].zone.index();
                        if zones[zone].state_mut().set_on_hand(level).is_ok() {
                            let mut payload = Vec::new();
                            durable::encode_stock(&mut payload, &world.network, &world.catalog, level);
                            journals[zone].push((durable::KIND_STOCK, payload));
                        }
                    }
                }
            }
            // Replay every journal into fresh zones and claims; and restore each zone from a
            // snapshot of its live state.
            let replayed_claims = Claims::default();
            let snapshot_claims = Claims::default();
            for (index, journal) in journals.iter().enumerate() {
                let zone = ZoneId(index as u16);
                let mut replayed = ZoneState::new(&world.network, zone, world.catalog.len());
                for (kind, payload) in journal {
                    durable::replay(&mut replayed, &replayed_claims, &world.network, &world.catalog, *kind, payload).unwrap();
                }
                let live = zones[index].state();
                let snapshot = durable::encode_snapshot(live, &world.network, &world.catalog, |_| true);
                let restored = durable::restore_snapshot(&snapshot, &world.network, &world.catalog, zone, &snapshot_claims).unwrap();
                let render = |state: &ZoneState, slot: u32| {
                    let mut out = Vec::new();
                    let record = state.order(slot);
                    render::write_decision(&mut out, &record.decision, false, &world.network, &world.catalog);
                    (out, record.content_hash, record.lifecycle)
                };
                for state in [&replayed, &restored] {
                    prop_assert_eq!(state.order_count(), live.order_count());
                    for slot in 0..live.order_count() as u32 {
                        prop_assert_eq!(render(state, slot), render(live, slot));
                    }
                    for local in 0..live.warehouses().len() {
                        for sku in 0..world.catalog.len() {
                            let sku = SkuId(sku as u32);
                            prop_assert_eq!(state.cell(local, sku), live.cell(local, sku));
                        }
                        prop_assert_eq!(state.warehouse_orders(local, 0), live.warehouse_orders(local, 0));
                        for carrier in 0..world.network.carriers.len() {
                            let carrier = crate::ids::CarrierId(carrier as u16);
                            prop_assert_eq!(state.pickups(local, carrier, 0), live.pickups(local, carrier, 0));
                        }
                    }
                    prop_assert_eq!(state.next_seq(), live.next_seq());
                }
            }
            for id in 0..24 {
                prop_assert_eq!(snapshot_claims.get(&name(id)), claims.get(&name(id)));
            }
            for id in 0..24 {
                prop_assert_eq!(replayed_claims.get(&name(id)), claims.get(&name(id)));
            }
        }
    }
}
