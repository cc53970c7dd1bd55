//! The service's zone journey over several zones, checked against the one-thread router.
//!
//! The service admits orders in input order ([`zone::admit`]) into one FIFO mailbox per zone
//! and each zone's actor takes a batch of visits at a time through [`zone::decide`]; which
//! zone runs when is up to the scheduler. Here a random schedule plays the scheduler: it
//! admits the next order or delivers a batch of one or more visits from a busy mailbox,
//! routes `forwards` to their zones' mailboxes in order and puts `waiting` back at the end
//! of the same zone's mailbox, until every line is answered. [`Router`] (every zone in one
//! thread, one order at a time) is the model.
//!
//! The world: zones `a`, `b`, `c` with fallback chains `a -> b, c`, `b -> c` and `c -> a`,
//! two or three warehouses each, unlimited capacity (daily orders and pickups) and no load
//! weight in the score, `max_shipments = 2`. Orders fall back, split, are backordered or
//! rejected at home, repeat (duplicates) and conflict (same id, other region or quantity).
//!
//! When two orders want the same units, the schedule may change which one gets them: the
//! answers then legitimately differ from the router's. So there are two properties:
//!
//! - **No competition** ([`each_order_answers_as_the_one_thread_router_does`]): every order
//!   id has SKUs of its own, so orders of different ids never meet in a stock cell (and no
//!   capacity counter is limited). Every answer then equals the router's (all but `seq`, a
//!   zone's count of its decisions, which follows the order in which the zone decided), and
//!   so does every stock cell at the end.
//! - **Competition** ([`competing_orders_keep_every_invariant`]): a few shared SKUs with
//!   small stock. What must hold whatever the schedule: no cell ever oversold; every line
//!   answered exactly once; whether a line is a new decision, a duplicate or an
//!   `id_conflict` as the router says (that depends on the input order alone); a duplicate
//!   answers its original's decision, `seq` and zone included; every decision obeys the
//!   network (its zone in the order's chain, shipments from that zone's warehouses, every
//!   unit shipped or backordered, backorders and rejections at home); each zone's `seq`
//!   counts its decisions from 1; and the reserved units of every cell are those of the
//!   decisions' shipments.
//!
//! [`the_generated_orders_take_every_turn_of_the_journey`] checks that the generators do
//! produce fallbacks, splits, backorders, rejections, duplicates and both kinds of conflict,
//! and that the shared stock does run out: a property over cases that never reach those
//! would prove nothing about them.

use order_router::catalog::{self, Catalog, StockLevel};
use order_router::config::Network;
use order_router::ids::{SkuId, WarehouseId, ZoneId};
use order_router::ingest::parse_order;
use order_router::model::Order;
use order_router::route::Router;
use order_router::time::Millis;
use order_router::zone::{self, Claims, Decided, Visit, Zone, ZoneState};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;

/// Three zones, each region's home one of them. Distances differ from warehouse to
/// warehouse, so plans do not hang on ties.
const NETWORK: &str = r#"
[policy]
distance_weight = 1.0
cost_weight = 1.0
split_weight = 10.0
load_weight = 0.0
rank_weight = 0.0
max_shipments = 2
backorder = true

[[zones]]
id = "a"
fallback = ["b", "c"]

[[zones]]
id = "b"
fallback = ["c"]

[[zones]]
id = "c"
fallback = ["a"]

[[regions]]
id = "Ra"
lat = 30.0
lon = 120.0
zone = "a"

[[regions]]
id = "Rb"
lat = 34.0
lon = 118.0
zone = "b"

[[regions]]
id = "Rc"
lat = 26.0
lon = 114.0
zone = "c"

[[warehouses]]
id = "A1"
zone = "a"
lat = 30.1
lon = 120.0
daily_orders = 0

[[warehouses]]
id = "A2"
zone = "a"
lat = 30.5
lon = 120.3
daily_orders = 0

[[warehouses]]
id = "B1"
zone = "b"
lat = 34.1
lon = 118.0
daily_orders = 0

[[warehouses]]
id = "B2"
zone = "b"
lat = 34.4
lon = 118.2
daily_orders = 0

[[warehouses]]
id = "B3"
zone = "b"
lat = 33.5
lon = 117.6
daily_orders = 0

[[warehouses]]
id = "C1"
zone = "c"
lat = 26.1
lon = 114.0
daily_orders = 0

[[warehouses]]
id = "C2"
zone = "c"
lat = 26.6
lon = 114.4
daily_orders = 0

[[carriers]]
id = "post"
regions = ["*"]
max_weight_kg = 1000.0
daily_pickups = 0

[[carriers.services]]
level = "standard"
base_cost = 4.0
per_kg = 0.5
per_km = 0.01
base_hours = 24.0
km_per_hour = 60.0
"#;

const REGIONS: [&str; 3] = ["Ra", "Rb", "Rc"];
const WAREHOUSES: [&str; 7] = ["A1", "A2", "B1", "B2", "B3", "C1", "C2"];

/// Order ids of a case; without competition each has [`OWN_SKUS`] SKUs of its own.
const IDS: usize = 6;
const OWN_SKUS: usize = 2;
/// The SKUs every order may want, with competition.
const SHARED_SKUS: usize = 3;

/// Every decision is made at this time (it is not what the properties are about).
fn now() -> Millis {
    Millis::parse_rfc3339("2026-11-11T12:00:00Z").unwrap()
}

/// Whose SKUs an order's lines name.
#[derive(Clone, Copy, Debug)]
enum Skus {
    /// Line `j` of order id `i` wants `P{i}-{j}`: only that id's orders want it.
    OwnPerId,
    /// Line `j` wants `S{j}`, whatever the id.
    Shared,
}

impl Skus {
    fn count(self) -> usize {
        match self {
            Skus::OwnPerId => IDS * OWN_SKUS,
            Skus::Shared => SHARED_SKUS,
        }
    }

    fn name(self, index: usize) -> String {
        match self {
            Skus::OwnPerId => format!("P{}-{}", index / OWN_SKUS, index % OWN_SKUS),
            Skus::Shared => format!("S{index}"),
        }
    }

    /// The SKU (index) line `sku` of order id `id` wants.
    fn of(self, id: usize, sku: usize) -> usize {
        match self {
            Skus::OwnPerId => id * OWN_SKUS + sku,
            Skus::Shared => sku,
        }
    }
}

/// What an order id asks for, the first time and every time it is repeated as it was.
#[derive(Clone, Debug)]
struct Base {
    region: usize,
    /// (SKU of the order's own set, quantity).
    lines: Vec<(usize, u32)>,
    forbid_split: bool,
}

/// How one line of the input uses its id's [`Base`].
#[derive(Clone, Copy, Debug)]
enum Variant {
    /// The base order: a new decision the first time, a duplicate after.
    Same,
    /// Another region (and so, mostly, another home zone): an `id_conflict` after the first.
    OtherRegion,
    /// One more unit on the first line: an `id_conflict` after the first.
    OtherQuantity,
}

#[derive(Clone, Debug)]
struct Case {
    /// On-hand units per (warehouse, SKU), warehouse major.
    stock: Vec<u32>,
    bases: Vec<Base>,
    /// The input: (order id, variant), in order.
    input: Vec<(usize, Variant)>,
    /// Seeds of the schedules the journey is run under.
    schedules: Vec<u64>,
}

/// Cases whose lines name SKUs as `skus` says, want at most `max_quantity` units a line,
/// and have `input` lines.
fn case_strategy(
    skus: Skus,
    max_quantity: u32,
    input: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = Case> {
    let sku_choices = match skus {
        Skus::OwnPerId => OWN_SKUS,
        Skus::Shared => SHARED_SKUS,
    };
    let units = prop_oneof![2 => Just(0u32), 3 => 1u32..=3];
    let base = (
        0..REGIONS.len(),
        prop::collection::vec((0..sku_choices, 1..=max_quantity), 1..=2),
        prop::bool::weighted(0.15),
    )
        .prop_map(|(region, lines, forbid_split)| Base {
            region,
            lines,
            forbid_split,
        });
    let variant = prop_oneof![
        6 => Just(Variant::Same),
        1 => Just(Variant::OtherRegion),
        1 => Just(Variant::OtherQuantity),
    ];
    (
        prop::collection::vec(units, WAREHOUSES.len() * skus.count()),
        prop::collection::vec(base, IDS),
        prop::collection::vec((0..IDS, variant), input),
        prop::collection::vec(any::<u64>(), 3),
    )
        .prop_map(|(stock, bases, input, schedules)| Case {
            stock,
            bases,
            input,
            schedules,
        })
}

/// The network, catalogue and stock of a case.
struct World {
    network: Arc<Network>,
    catalog: Arc<Catalog>,
    stock: Vec<StockLevel>,
    skus: Skus,
}

impl World {
    fn new(skus: Skus, case: &Case) -> World {
        let network = Arc::new(
            Network::from_toml(NETWORK).unwrap_or_else(|problems| panic!("{problems:#?}")),
        );
        let mut catalog = String::from("sku,weight_g,capabilities\n");
        for sku in 0..skus.count() {
            catalog += &format!("{},500,\n", skus.name(sku));
        }
        let catalog =
            Arc::new(Catalog::read(catalog.as_bytes(), Path::new("catalog.csv")).unwrap());
        let mut stock = String::from("warehouse,sku,on_hand\n");
        for (warehouse, name) in WAREHOUSES.iter().enumerate() {
            for sku in 0..skus.count() {
                let units = case.stock[warehouse * skus.count() + sku];
                stock += &format!("{name},{},{units}\n", skus.name(sku));
            }
        }
        let stock =
            catalog::read_stock(stock.as_bytes(), Path::new("stock.csv"), &network, &catalog)
                .unwrap();
        World {
            network,
            catalog,
            stock,
            skus,
        }
    }

    /// The input lines of `case` as JSON.
    fn input(&self, case: &Case) -> Vec<String> {
        case.input
            .iter()
            .map(|&(id, variant)| {
                let base = &case.bases[id];
                let mut region = base.region;
                let mut lines = base.lines.clone();
                match variant {
                    Variant::Same => {}
                    Variant::OtherRegion => region = (region + 1) % REGIONS.len(),
                    Variant::OtherQuantity => lines[0].1 += 1,
                }
                let lines: Vec<String> = lines
                    .iter()
                    .map(|&(sku, qty)| {
                        let sku = self.skus.name(self.skus.of(id, sku));
                        format!(r#"{{"sku":"{sku}","qty":{qty}}}"#)
                    })
                    .collect();
                let split = if base.forbid_split { "forbid" } else { "allow" };
                format!(
                    r#"{{"id":"O-{id}","customer":{{"id":"C-1"}},"ship_to":{{"region":"{}"}},"lines":[{}],"split":"{split}"}}"#,
                    REGIONS[region],
                    lines.join(",")
                )
            })
            .collect()
    }

    fn orders(&self, input: &[String]) -> Vec<Order> {
        input
            .iter()
            .map(|line| {
                parse_order(line.as_bytes(), &self.network, &self.catalog)
                    .unwrap_or_else(|invalid| panic!("{line}: {invalid:?}"))
            })
            .collect()
    }

    /// The zones as the service starts them: empty states with the case's stock, sharing
    /// one claims table.
    fn zones(&self) -> Vec<Zone> {
        let claims = Arc::new(Claims::default());
        let customers = Arc::new(order_router::risk::CustomerBook::new(
            self.network.zones.len(),
        ));
        let mut zones: Vec<Zone> = (0..self.network.zones.len())
            .map(|index| {
                let state = ZoneState::new(&self.network, ZoneId(index as u16), self.catalog.len());
                Zone::new(
                    state,
                    self.catalog.clone(),
                    claims.clone(),
                    customers.clone(),
                )
            })
            .collect();
        for level in &self.stock {
            let zone = self.network.warehouses[level.warehouse.index()].zone;
            zones[zone.index()].state_mut().set_on_hand(*level).unwrap();
        }
        zones
    }

    fn warehouse(&self, name: &str) -> WarehouseId {
        WarehouseId(self.network.warehouse_ids.get(name).unwrap() as u16)
    }

    fn sku(&self, name: &str) -> SkuId {
        self.catalog.lookup(name).unwrap()
    }
}

/// The router's answer to every line, one order at a time.
fn router_answers(world: &World, orders: &[Order]) -> (Router, Vec<Value>) {
    let mut router = Router::new(world.network.clone(), world.catalog.clone(), &world.stock);
    let answers = orders
        .iter()
        .enumerate()
        .map(|(index, order)| {
            let mut out = Vec::new();
            router.answer(order.clone(), index as u64 + 1, now(), &mut out);
            json(&out)
        })
        .collect();
    (router, answers)
}

fn json(line: &[u8]) -> Value {
    serde_json::from_slice(line)
        .unwrap_or_else(|error| panic!("{error}: {}", String::from_utf8_lossy(line)))
}

/// A small deterministic random source for a schedule (SplitMix64).
struct Schedule(u64);

impl Schedule {
    fn below(&mut self, bound: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut mixed = self.0;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        mixed ^= mixed >> 31;
        (mixed % bound as u64) as usize
    }
}

/// More steps than any schedule of a case takes unless a visit goes round for ever.
const STEPS_MAX: usize = 100_000;

/// Runs the journey of `orders` under the schedule of `seed`: each answer by line, and the
/// zones as they are at the end. Checks on the way that no cell is ever oversold and that
/// no line is answered twice.
fn journey(
    world: &World,
    orders: &[Order],
    seed: u64,
) -> Result<(Vec<Value>, Vec<Zone>), TestCaseError> {
    let mut schedule = Schedule(seed);
    let mut zones = world.zones();
    let claims = zones[0].claims().clone();
    let mut mailboxes: Vec<VecDeque<Visit>> = zones.iter().map(|_| VecDeque::new()).collect();
    let mut answers: Vec<Option<Value>> = vec![None; orders.len()];
    let mut input = orders.iter().cloned().enumerate().peekable();
    let (mut batch, mut out, mut decided) = (Vec::new(), Vec::new(), Decided::new(true));
    for _ in 0..STEPS_MAX {
        let busy: Vec<usize> = (0..zones.len())
            .filter(|zone| !mailboxes[*zone].is_empty())
            .collect();
        let admitting = usize::from(input.peek().is_some());
        if busy.is_empty() && admitting == 0 {
            let answers = answers
                .into_iter()
                .enumerate()
                .map(|(line, answer)| answer.ok_or(line + 1))
                .collect::<Result<Vec<Value>, usize>>()
                .map_err(|line| TestCaseError::fail(format!("line {line} was never answered")))?;
            return Ok((answers, zones));
        }
        let choice = schedule.below(busy.len() + admitting);
        if choice < admitting {
            let (index, order) = input.next().unwrap();
            let key = claims.key(&order.id);
            let (to, visit) = zone::admit(
                &claims,
                &world.network,
                order,
                key,
                index as u32,
                index as u64 + 1,
            );
            mailboxes[to.index()].push_back(visit);
            continue;
        }
        // One message: a batch of the visits at the front of one zone's mailbox.
        let at = busy[choice - admitting];
        let size = 1 + schedule.below(mailboxes[at].len());
        batch.extend(mailboxes[at].drain(..size));
        out.clear();
        decided.clear();
        zone::decide(
            &mut zones[at],
            &world.network,
            &mut batch,
            now(),
            &mut out,
            &mut decided,
        );
        for answer in &decided.answers {
            let slot = &mut answers[answer.index as usize];
            prop_assert!(slot.is_none(), "line {} answered twice", answer.index + 1);
            *slot = Some(json(&out[answer.start as usize..answer.end as usize]));
        }
        let onward = decided.onward(&mut batch);
        for (to, visits) in onward.forwards {
            mailboxes[to.index()].extend(visits);
        }
        mailboxes[at].extend(onward.waiting);
        let state = zones[at].state();
        for local in 0..state.warehouses().len() {
            for sku in 0..world.catalog.len() {
                let cell = state.cell(local, SkuId(sku as u32));
                prop_assert!(
                    cell.reserved <= cell.on_hand,
                    "oversold: {} of {} units of {} reserved at {}",
                    cell.reserved,
                    cell.on_hand,
                    world.catalog.sku_name(SkuId(sku as u32)),
                    world.network.warehouse_name(state.warehouses()[local])
                );
            }
        }
    }
    Err(TestCaseError::fail(format!(
        "the journey did not end in {STEPS_MAX} steps"
    )))
}

/// Reserved units per (warehouse, SKU) name, every cell of the network.
fn reserved_cells(world: &World, zones: &[Zone]) -> BTreeMap<(String, String), u32> {
    let mut cells = BTreeMap::new();
    for zone in zones {
        let state = zone.state();
        for (local, warehouse) in state.warehouses().iter().enumerate() {
            for sku in 0..world.catalog.len() {
                let sku = SkuId(sku as u32);
                cells.insert(
                    (
                        world.network.warehouse_name(*warehouse).to_owned(),
                        world.catalog.sku_name(sku).to_owned(),
                    ),
                    state.cell(local, sku).reserved,
                );
            }
        }
    }
    cells
}

/// What kind of answer a line got.
fn kind(answer: &Value) -> &'static str {
    match (answer["status"].as_str(), answer.get("duplicate")) {
        (Some("invalid"), _) => "invalid",
        (_, Some(Value::Bool(true))) => "duplicate",
        _ => "decision",
    }
}

fn without(mut answer: Value, key: &str) -> Value {
    answer.as_object_mut().unwrap().remove(key);
    answer
}

/// Without competition: every answer as the router's, but for `seq`; a duplicate's `seq`
/// its original's; every cell reserved as in the router.
fn check_as_router(case: &Case) -> Result<(), TestCaseError> {
    let world = World::new(Skus::OwnPerId, case);
    let input = world.input(case);
    let orders = world.orders(&input);
    let (router, expected) = router_answers(&world, &orders);
    let router_cells: BTreeMap<(String, String), u32> = WAREHOUSES
        .iter()
        .flat_map(|warehouse| (0..world.skus.count()).map(move |sku| (warehouse, sku)))
        .map(|(warehouse, sku)| {
            let name = world.skus.name(sku);
            let cell = router.stock_of(world.sku(&name))[world.warehouse(warehouse).index()].1;
            ((warehouse.to_string(), name), cell.reserved)
        })
        .collect();
    for &seed in &case.schedules {
        let (answers, zones) = journey(&world, &orders, seed)?;
        let mut originals: HashMap<String, &Value> = HashMap::new();
        for (line, (answer, expected)) in answers.iter().zip(&expected).enumerate() {
            prop_assert_eq!(
                without(answer.clone(), "seq"),
                without(expected.clone(), "seq"),
                "line {} ({}), schedule {}",
                line + 1,
                &input[line],
                seed
            );
            let id = answer["order_id"].as_str().unwrap_or_default().to_owned();
            match kind(answer) {
                "decision" => {
                    originals.insert(id, answer);
                }
                "duplicate" => {
                    let original = originals[&id];
                    prop_assert_eq!(&answer["seq"], &original["seq"], "line {}", line + 1);
                }
                _ => {}
            }
        }
        prop_assert_eq!(
            reserved_cells(&world, &zones),
            router_cells.clone(),
            "schedule {}",
            seed
        );
    }
    Ok(())
}

/// Units per SKU name an answer ships, and those it backorders.
fn units(answer: &Value) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
    let mut shipped = BTreeMap::new();
    for shipment in answer["shipments"].as_array().unwrap() {
        for line in shipment["lines"].as_array().unwrap() {
            *shipped
                .entry(line["sku"].as_str().unwrap().to_owned())
                .or_default() += line["qty"].as_u64().unwrap();
        }
    }
    let mut backordered = BTreeMap::new();
    for line in answer["backordered"].as_array().unwrap() {
        *backordered
            .entry(line["sku"].as_str().unwrap().to_owned())
            .or_default() += line["qty"].as_u64().unwrap();
    }
    (shipped, backordered)
}

/// With competition: the invariants that hold whatever the schedule (see the module doc).
fn check_invariants(case: &Case) -> Result<(), TestCaseError> {
    let world = World::new(Skus::Shared, case);
    let input = world.input(case);
    let orders = world.orders(&input);
    let (_, expected) = router_answers(&world, &orders);
    let network = &world.network;
    for &seed in &case.schedules {
        let (answers, zones) = journey(&world, &orders, seed)?;
        let mut originals: HashMap<&str, &Value> = HashMap::new();
        let mut placed: BTreeMap<(String, String), u32> = BTreeMap::new();
        let mut seqs: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for (line, (answer, order)) in answers.iter().zip(&orders).enumerate() {
            let context = format!(
                "line {} ({}), schedule {seed}: {answer}",
                line + 1,
                input[line]
            );
            let kind = kind(answer);
            prop_assert_eq!(kind, self::kind(&expected[line]), "{}", context);
            prop_assert_eq!(
                answer["order_id"].as_str(),
                Some(order.id.as_str()),
                "{}",
                context
            );
            match kind {
                "invalid" => {
                    prop_assert_eq!(&answer["error"]["code"], "id_conflict", "{}", context);
                    prop_assert_eq!(&answer["line"], line + 1, "{}", context);
                    prop_assert!(originals.contains_key(order.id.as_str()), "{}", context);
                    continue;
                }
                "duplicate" => {
                    let original = originals[order.id.as_str()];
                    prop_assert_eq!(
                        &without(answer.clone(), "duplicate"),
                        original,
                        "{}",
                        context
                    );
                    continue;
                }
                _ => {}
            }
            prop_assert!(
                originals.insert(order.id.as_str(), answer).is_none(),
                "two decisions for one id: {}",
                context
            );
            let home = network.regions[order.region.index()].zone;
            let chain: Vec<&str> = network
                .zone_order(home)
                .map(|zone| network.zone_name(zone))
                .collect();
            let zone = answer["zone"].as_str().unwrap();
            prop_assert!(
                chain.contains(&zone),
                "{} not in {:?}: {}",
                zone,
                chain,
                context
            );
            seqs.entry(zone.to_owned())
                .or_default()
                .push(answer["seq"].as_u64().unwrap());
            let status = answer["status"].as_str().unwrap();
            if status != "routed" {
                prop_assert_eq!(zone, chain[0], "settled away from home: {}", context);
            }
            let shipments = answer["shipments"].as_array().unwrap();
            prop_assert!(
                shipments.len() <= network.policy.max_shipments as usize,
                "{}",
                context
            );
            for shipment in shipments {
                let warehouse = world.warehouse(shipment["warehouse"].as_str().unwrap());
                prop_assert_eq!(
                    network.zone_name(network.warehouses[warehouse.index()].zone),
                    zone,
                    "shipped from another zone: {}",
                    context
                );
                for line in shipment["lines"].as_array().unwrap() {
                    *placed
                        .entry((
                            shipment["warehouse"].as_str().unwrap().to_owned(),
                            line["sku"].as_str().unwrap().to_owned(),
                        ))
                        .or_default() += line["qty"].as_u64().unwrap() as u32;
                }
            }
            let (shipped, backordered) = units(answer);
            let mut asked: BTreeMap<String, u64> = BTreeMap::new();
            for line in &order.lines {
                *asked
                    .entry(world.catalog.sku_name(line.sku).to_owned())
                    .or_default() += u64::from(line.quantity);
            }
            match status {
                "rejected" => {
                    prop_assert!(shipped.is_empty() && backordered.is_empty(), "{}", context)
                }
                "routed" => prop_assert_eq!(&shipped, &asked, "{}", context),
                "backordered" => {
                    prop_assert!(
                        !shipped.is_empty() && !backordered.is_empty(),
                        "{}",
                        context
                    );
                    let mut total = shipped.clone();
                    for (sku, units) in backordered {
                        *total.entry(sku).or_default() += units;
                    }
                    prop_assert_eq!(&total, &asked, "{}", context);
                }
                other => prop_assert!(false, "unexpected status {}: {}", other, context),
            }
        }
        // Each zone numbers its decisions 1, 2, 3, ... in the order it makes them.
        for (zone, mut seqs) in seqs {
            seqs.sort_unstable();
            let counted: Vec<u64> = (1..=seqs.len() as u64).collect();
            prop_assert_eq!(seqs, counted, "zone {}, schedule {}", zone, seed);
        }
        // Every reserved unit is a unit some decision ships, and the other way round.
        let reserved: BTreeMap<(String, String), u32> = reserved_cells(&world, &zones)
            .into_iter()
            .filter(|(_, units)| *units > 0)
            .collect();
        prop_assert_eq!(reserved, placed, "schedule {}", seed);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn each_order_answers_as_the_one_thread_router_does(case in case_strategy(Skus::OwnPerId, 6, 1..=14)) {
        check_as_router(&case)?;
    }

    #[test]
    fn competing_orders_keep_every_invariant(case in case_strategy(Skus::Shared, 4, 1..=18)) {
        check_invariants(&case)?;
    }
}

/// Counts what the router answers over 64 cases of each generator (a fixed random source, so
/// the counts do not change from run to run) and requires every turn of the journey to be
/// taken: without competition, where the answers are compared exactly, every status, a
/// fallback zone deciding, a split, a duplicate and both kinds of conflict; with it, shared
/// stock running out besides.
#[test]
fn the_generated_orders_take_every_turn_of_the_journey() {
    let mut runner = TestRunner::new_with_rng(
        ProptestConfig::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let mut seen: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for (skus, name, strategy) in [
        (
            Skus::OwnPerId,
            "own SKUs",
            case_strategy(Skus::OwnPerId, 6, 1..=14).boxed(),
        ),
        (
            Skus::Shared,
            "shared SKUs",
            case_strategy(Skus::Shared, 4, 1..=18).boxed(),
        ),
    ] {
        let mut count = |what| *seen.entry((name, what)).or_default() += 1;
        for _ in 0..64 {
            let case = strategy.new_tree(&mut runner).unwrap().current();
            let world = World::new(skus, &case);
            let orders = world.orders(&world.input(&case));
            let (router, answers) = router_answers(&world, &orders);
            for ((answer, order), (_, variant)) in answers.iter().zip(&orders).zip(&case.input) {
                let network = &world.network;
                let home = network.zone_name(network.regions[order.region.index()].zone);
                match (kind(answer), variant) {
                    ("invalid", Variant::OtherRegion) => count("id_conflict, other region"),
                    ("invalid", _) => count("id_conflict, other quantity"),
                    ("duplicate", _) => count("duplicate"),
                    _ => {
                        count(match answer["status"].as_str().unwrap() {
                            "routed" => "routed",
                            "backordered" => "backordered",
                            "rejected" => "rejected",
                            _ => "another status",
                        });
                        if answer["zone"] != home {
                            count("decided in a fallback zone");
                        }
                        if answer["shipments"].as_array().unwrap().len() >= 2 {
                            count("split");
                        }
                    }
                }
            }
            let ran_out = world.stock.iter().any(|level| {
                let (state, local) = router.locate(level.warehouse);
                level.on_hand > 0 && state.cell(local, level.sku).available() == 0
            });
            if ran_out {
                count("stock ran out");
            }
        }
    }
    let every = [
        "routed",
        "backordered",
        "rejected",
        "decided in a fallback zone",
        "split",
        "duplicate",
        "id_conflict, other region",
        "id_conflict, other quantity",
    ];
    for (name, wanted) in [
        ("own SKUs", &every[..]),
        ("shared SKUs", &["stock ran out"][..]),
    ] {
        for what in wanted {
            assert!(
                seen.get(&(name, *what)).copied().unwrap_or(0) > 0,
                "{name}: no {what} in {seen:?}"
            );
        }
    }
}
