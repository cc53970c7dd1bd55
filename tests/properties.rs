//! Property tests: random networks, catalogues, stock and sequences of orders, cancels,
//! shipments and stock updates, checked against a simple model of what must hold
//! (DESIGN section 3): no oversell, reserved stock equal to what the live decisions placed,
//! every shipment obeying the network, capacities respected, duplicates and conflicts
//! answered, determinism, and a plan never worse than the best single-warehouse plan of the
//! zone that decided it (checked by brute force with one-weight policies).

mod common;

use order_router::catalog::{self, Catalog, StockLevel};
use order_router::config::Network;
use order_router::geo::haversine_km;
use order_router::ids::{SkuId, WarehouseId};
use order_router::ingest::parse_order;
use order_router::model::{Capabilities, Decision, Order, ServiceLevel, Status};
use order_router::render::write_decision;
use order_router::route::Router;
use order_router::time::Millis;
use proptest::prelude::*;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

const CAPABILITIES: [&str; 3] = ["cold_chain", "hazmat", "bulky"];
const LEVELS: [&str; 4] = ["economy", "standard", "express", "same_day"];

#[derive(Debug, Clone)]
struct WarehouseSpec {
    zone: usize,
    latitude: f64,
    longitude: f64,
    capabilities: u8,
    daily_orders: u32,
    handling_hours: f64,
    rank: u32,
    enabled: bool,
}

#[derive(Debug, Clone)]
struct CarrierSpec {
    capabilities: u8,
    /// Bit set of regions served; 0 = all.
    regions: u8,
    max_weight_kg: f64,
    daily_pickups: u32,
    /// (level, base_cost, per_kg, per_km, base_hours, km_per_hour, max_km)
    services: Vec<(usize, f64, f64, f64, f64, f64, f64)>,
}

#[derive(Debug, Clone)]
struct World {
    zones: usize,
    /// (lat, lon, zone) per region.
    regions: Vec<(f64, f64, usize)>,
    warehouses: Vec<WarehouseSpec>,
    carriers: Vec<CarrierSpec>,
    /// (weight_g, capabilities) per SKU.
    skus: Vec<(u32, u8)>,
    /// (warehouse, sku, on_hand).
    stock: Vec<(usize, usize, u32)>,
}

#[derive(Debug, Clone)]
enum Op {
    Order {
        id: u8,
        region: usize,
        lines: Vec<(usize, u32)>,
        level: usize,
        vip: bool,
        split: bool,
        promise_hours: Option<u32>,
        day: u8,
    },
    Cancel(u8),
    Ship(u8),
    SetStock(usize, usize, u32),
}

fn caps_names(bits: u8) -> String {
    let names: Vec<String> = (0..3)
        .filter(|bit| bits & (1 << bit) != 0)
        .map(|bit| format!("\"{}\"", CAPABILITIES[bit]))
        .collect();
    format!("[{}]", names.join(", "))
}

/// The TOML of `world` under the given weights (distance, cost, split, load, rank).
fn config_text(world: &World, weights: [f64; 5], max_shipments: u32) -> String {
    let mut text = format!(
        "[policy]\ndistance_weight = {}\ncost_weight = {}\nsplit_weight = {}\nload_weight = {}\nrank_weight = {}\nmax_shipments = {max_shipments}\nhold_tags = [\"review\"]\n\n[[tiers]]\nid = \"vip\"\nmin_service = \"express\"\n",
        weights[0], weights[1], weights[2], weights[3], weights[4]
    );
    for zone in 0..world.zones {
        let fallback: Vec<String> = (0..world.zones)
            .filter(|other| *other != zone)
            .map(|other| format!("\"Z{other}\""))
            .collect();
        text += &format!(
            "\n[[zones]]\nid = \"Z{zone}\"\nfallback = [{}]\n",
            fallback.join(", ")
        );
    }
    for (index, (latitude, longitude, zone)) in world.regions.iter().enumerate() {
        text += &format!(
            "\n[[regions]]\nid = \"R{index}\"\nlat = {latitude}\nlon = {longitude}\nzone = \"Z{zone}\"\n"
        );
    }
    for (index, warehouse) in world.warehouses.iter().enumerate() {
        text += &format!(
            "\n[[warehouses]]\nid = \"W{index}\"\nzone = \"Z{}\"\nlat = {}\nlon = {}\ncapabilities = {}\ndaily_orders = {}\nhandling_hours = {}\nrank = {}\nenabled = {}\n",
            warehouse.zone,
            warehouse.latitude,
            warehouse.longitude,
            caps_names(warehouse.capabilities),
            warehouse.daily_orders,
            warehouse.handling_hours,
            warehouse.rank,
            warehouse.enabled
        );
    }
    for (index, carrier) in world.carriers.iter().enumerate() {
        let regions: Vec<String> = if carrier.regions == 0 {
            vec!["\"*\"".into()]
        } else {
            (0..world.regions.len())
                .filter(|region| carrier.regions & (1 << region) != 0)
                .map(|region| format!("\"R{region}\""))
                .collect()
        };
        let regions = if regions.is_empty() {
            vec!["\"*\"".to_owned()]
        } else {
            regions
        };
        text += &format!(
            "\n[[carriers]]\nid = \"C{index}\"\ncapabilities = {}\nregions = [{}]\nmax_weight_kg = {}\ndaily_pickups = {}\n",
            caps_names(carrier.capabilities),
            regions.join(", "),
            carrier.max_weight_kg,
            carrier.daily_pickups
        );
        for (level, base, per_kg, per_km, hours, speed, max_km) in &carrier.services {
            text += &format!(
                "\n[[carriers.services]]\nlevel = \"{}\"\nbase_cost = {base}\nper_kg = {per_kg}\nper_km = {per_km}\nbase_hours = {hours}\nkm_per_hour = {speed}\nmax_km = {max_km}\n",
                LEVELS[*level]
            );
        }
    }
    text
}

fn world_strategy() -> impl Strategy<Value = World> {
    (1usize..=3, 1usize..=4).prop_flat_map(|(zones, regions)| {
        let region = (28.0f64..32.0, 118.0f64..122.0, 0..zones);
        let warehouse = (
            0..zones,
            28.0f64..32.0,
            118.0f64..122.0,
            0u8..8,
            prop_oneof![Just(0u32), 1u32..4],
            0.0f64..6.0,
            0u32..4,
            prop::bool::weighted(0.9),
        )
            .prop_map(
                |(
                    zone,
                    latitude,
                    longitude,
                    capabilities,
                    daily_orders,
                    handling_hours,
                    rank,
                    enabled,
                )| WarehouseSpec {
                    zone,
                    latitude,
                    longitude,
                    capabilities,
                    daily_orders,
                    handling_hours,
                    rank,
                    enabled,
                },
            );
        let service = (
            0usize..4,
            1.0f64..20.0,
            0.0f64..3.0,
            0.0f64..0.05,
            1.0f64..72.0,
            20.0f64..200.0,
            prop_oneof![Just(0.0f64), 50.0f64..400.0],
        );
        let carrier = (
            0u8..8,
            0u8..16,
            5.0f64..60.0,
            prop_oneof![Just(0u32), 1u32..4],
            prop::collection::vec(service, 1..=3),
        )
            .prop_map(
                |(capabilities, regions, max_weight_kg, daily_pickups, mut services)| {
                    services.sort_by_key(|service| service.0);
                    services.dedup_by_key(|service| service.0);
                    CarrierSpec {
                        capabilities,
                        regions,
                        max_weight_kg,
                        daily_pickups,
                        services,
                    }
                },
            );
        let sku = (100u32..20_000, prop_oneof![3 => Just(0u8), 1 => 0u8..8]);
        (
            prop::collection::vec(region, regions),
            prop::collection::vec(warehouse, zones..=6),
            prop::collection::vec(carrier, 1..=3),
            prop::collection::vec(sku, 2..=5),
        )
            .prop_flat_map(move |(regions, mut warehouses, carriers, skus)| {
                // Every zone gets at least one warehouse.
                for (zone, warehouse) in warehouses.iter_mut().take(zones).enumerate() {
                    warehouse.zone = zone;
                }
                let stock_row = (0..warehouses.len(), 0..skus.len(), 0u32..8);
                prop::collection::vec(stock_row, 0..25).prop_map(move |stock| World {
                    zones,
                    regions: regions.clone(),
                    warehouses: warehouses.clone(),
                    carriers: carriers.clone(),
                    skus: skus.clone(),
                    stock,
                })
            })
    })
}

fn ops_strategy(regions: usize, skus: usize, warehouses: usize) -> impl Strategy<Value = Vec<Op>> {
    let order = (
        0u8..12,
        0..regions,
        prop::collection::vec((0..skus, 1u32..4), 1..=3),
        0usize..4,
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.8),
        prop::option::weighted(0.3, 1u32..60),
        0u8..2,
    )
        .prop_map(
            |(id, region, lines, level, vip, split, promise_hours, day)| Op::Order {
                id,
                region,
                lines,
                level,
                vip,
                split,
                promise_hours,
                day,
            },
        );
    let op = prop_oneof![
        6 => order,
        1 => (0u8..12).prop_map(Op::Cancel),
        1 => (0u8..12).prop_map(Op::Ship),
        1 => (0..warehouses, 0..skus, 0u32..8).prop_map(|(warehouse, sku, level)| Op::SetStock(warehouse, sku, level)),
    ];
    prop::collection::vec(op, 1..40)
}

fn order_json(op: &Op) -> Option<String> {
    let Op::Order {
        id,
        region,
        lines,
        level,
        vip,
        split,
        promise_hours,
        ..
    } = op
    else {
        return None;
    };
    let lines: Vec<String> = lines
        .iter()
        .map(|(sku, qty)| format!(r#"{{"sku":"S{sku}","qty":{qty}}}"#))
        .collect();
    let tier = if *vip { r#","tier":"vip""# } else { "" };
    let promise = promise_hours.map_or(String::new(), |hours| {
        format!(r#","promise_by":"2026-11-11T{:02}:00:00Z""#, hours.min(23))
    });
    let split = if *split { "allow" } else { "forbid" };
    Some(format!(
        r#"{{"id":"O-{id}","customer":{{"id":"C"{tier}}},"ship_to":{{"region":"R{region}"}},"service":"{}","lines":[{}],"split":"{split}"{promise}}}"#,
        LEVELS[*level],
        lines.join(",")
    ))
}

fn build(world: &World, config: &str) -> Router {
    let network = Arc::new(
        Network::from_toml(config).unwrap_or_else(|problems| panic!("{problems:#?}\n{config}")),
    );
    let mut csv = String::from("sku,weight_g,capabilities\n");
    for (index, (weight, capabilities)) in world.skus.iter().enumerate() {
        csv += &format!(
            "S{index},{weight},{}\n",
            caps_names(*capabilities)
                .replace(['[', ']', '"', ' '], "")
                .replace(',', ";")
        );
    }
    let catalog = Arc::new(Catalog::read(csv.as_bytes(), Path::new("catalog.csv")).unwrap());
    let mut stock_csv = String::from("warehouse,sku,on_hand\n");
    for (warehouse, sku, on_hand) in &world.stock {
        stock_csv += &format!("W{warehouse},S{sku},{on_hand}\n");
    }
    let stock = catalog::read_stock(
        stock_csv.as_bytes(),
        Path::new("stock.csv"),
        &network,
        &catalog,
    )
    .unwrap();
    Router::new(network, catalog, &stock)
}

fn decision_time(op: &Op) -> Millis {
    let day = match op {
        Op::Order { day, .. } => i64::from(*day),
        _ => 0,
    };
    Millis(Millis::parse_rfc3339("2026-11-11T00:00:00Z").unwrap().0 + day * 86_400_000)
}

/// The order's requested level after its tier's minimum.
fn level_of(router: &Router, order: &Order) -> ServiceLevel {
    order
        .service
        .max(router.network().tiers[order.tier.index()].min_service)
}

/// Checks one decision against the network (invariant 5) and the formulas of section 4.
fn check_shipments(
    router: &Router,
    order: &Order,
    decision: &Decision,
) -> Result<(), TestCaseError> {
    let network = router.network();
    let catalog = router.catalog();
    let level = level_of(router, order);
    for shipment in &decision.shipments {
        let warehouse = &network.warehouses[shipment.warehouse.index()];
        let carrier = &network.carriers[shipment.carrier.index()];
        prop_assert!(warehouse.enabled);
        prop_assert_eq!(
            warehouse.zone,
            decision.zone,
            "a zone ships from its own warehouses"
        );
        let mut capabilities = Capabilities::NONE;
        let mut weight_g = 0u64;
        for line in &shipment.lines {
            let sku = catalog.sku(line.sku);
            capabilities = capabilities.union(sku.capabilities);
            weight_g += u64::from(sku.weight_g) * u64::from(line.quantity);
        }
        prop_assert!(warehouse.capabilities.covers(capabilities));
        prop_assert!(carrier.capabilities.covers(capabilities));
        prop_assert!(
            carrier
                .regions
                .as_ref()
                .is_none_or(|regions| regions.contains(&order.region))
        );
        let weight_kg = weight_g as f64 / 1000.0;
        prop_assert!((shipment.weight_kg - weight_kg).abs() < 1e-9);
        prop_assert!(weight_kg <= carrier.max_weight_kg);
        prop_assert!(shipment.level >= level);
        let service = carrier
            .services
            .iter()
            .find(|service| service.level == shipment.level)
            .expect("the carrier offers the level");
        let distance = haversine_km(
            warehouse.latitude,
            warehouse.longitude,
            order.latitude,
            order.longitude,
        );
        prop_assert!((shipment.distance_km - distance).abs() < 1e-6);
        prop_assert!(service.max_km == 0.0 || distance <= service.max_km);
        let cost = service.base_cost + service.per_kg * weight_kg + service.per_km * distance;
        prop_assert!((shipment.cost - cost).abs() < 1e-6);
        let eta = decision.decided_at.plus_hours(
            warehouse.handling_hours + service.base_hours + distance / service.km_per_hour,
        );
        prop_assert!((shipment.eta.0 - eta.0).abs() <= 1);
        if let Some(promise) = order.promise_by {
            prop_assert!(shipment.eta <= promise);
        }
    }
    // Every unit is either shipped or backordered, exactly.
    let mut asked: HashMap<SkuId, u32> = HashMap::new();
    for line in &order.lines {
        *asked.entry(line.sku).or_default() += line.quantity;
    }
    let mut answered: HashMap<SkuId, u32> = HashMap::new();
    for line in decision
        .shipments
        .iter()
        .flat_map(|shipment| shipment.lines.iter())
        .chain(decision.backordered.iter())
    {
        *answered.entry(line.sku).or_default() += line.quantity;
    }
    match decision.status {
        Status::Rejected => {
            prop_assert!(decision.shipments.is_empty() && decision.backordered.is_empty())
        }
        _ => prop_assert_eq!(answered, asked),
    }
    prop_assert!(decision.shipments.len() <= network.policy.max_shipments as usize);
    Ok(())
}

/// The model's view of stock, kept from the ops alone.
struct Model {
    on_hand: HashMap<(WarehouseId, SkuId), u32>,
    /// Live and shipped decisions by order id; `true` once shipped or cancelled.
    decisions: HashMap<String, (Decision, u64, bool)>,
}

fn check_stock(router: &Router, model: &Model) -> Result<(), TestCaseError> {
    let mut expected: HashMap<(WarehouseId, SkuId), u32> = HashMap::new();
    for (decision, _, closed) in model.decisions.values() {
        if *closed {
            continue;
        }
        for shipment in &decision.shipments {
            for line in &shipment.lines {
                *expected.entry((shipment.warehouse, line.sku)).or_default() += line.quantity;
            }
        }
    }
    for sku in 0..router.catalog().len() {
        let sku = SkuId(sku as u32);
        for (warehouse, cell) in router.stock_of(sku) {
            prop_assert!(cell.reserved <= cell.on_hand, "oversold");
            prop_assert_eq!(
                cell.reserved,
                expected.get(&(warehouse, sku)).copied().unwrap_or(0)
            );
            prop_assert_eq!(
                cell.on_hand,
                model.on_hand.get(&(warehouse, sku)).copied().unwrap_or(0)
            );
        }
    }
    Ok(())
}

/// Brute force: the best single-warehouse score in `zone` for `order`, under a one-weight
/// policy (`distance` or `cost`), from the router's state before it decides.
fn best_single(
    router: &Router,
    order: &Order,
    zone: order_router::ids::ZoneId,
    now: Millis,
    distance_only: bool,
) -> Option<f64> {
    let network = router.network();
    let catalog = router.catalog();
    let state = router.zone(zone);
    let level = level_of(router, order);
    let day = now.utc_day();
    let mut needed: HashMap<SkuId, u32> = HashMap::new();
    let (mut capabilities, mut weight_g) = (Capabilities::NONE, 0u64);
    for line in &order.lines {
        *needed.entry(line.sku).or_default() += line.quantity;
        capabilities = capabilities.union(catalog.sku(line.sku).capabilities);
        weight_g += u64::from(catalog.sku(line.sku).weight_g) * u64::from(line.quantity);
    }
    let weight_kg = weight_g as f64 / 1000.0;
    let mut best: Option<f64> = None;
    for (local, &warehouse_id) in state.warehouses().iter().enumerate() {
        let warehouse = &network.warehouses[warehouse_id.index()];
        if !warehouse.enabled || !warehouse.capabilities.covers(capabilities) {
            continue;
        }
        if warehouse.daily_orders > 0
            && state.warehouse_orders(local, day) >= warehouse.daily_orders
        {
            continue;
        }
        if needed
            .iter()
            .any(|(sku, quantity)| state.cell(local, *sku).available() < *quantity)
        {
            continue;
        }
        let distance = haversine_km(
            warehouse.latitude,
            warehouse.longitude,
            order.latitude,
            order.longitude,
        );
        for (carrier_index, carrier) in network.carriers.iter().enumerate() {
            let carrier_id = order_router::ids::CarrierId(carrier_index as u16);
            let serves = carrier
                .regions
                .as_ref()
                .is_none_or(|regions| regions.contains(&order.region));
            let pickups_left = carrier.daily_pickups == 0
                || state.pickups(local, carrier_id, day) < carrier.daily_pickups;
            if !serves
                || !pickups_left
                || !carrier.capabilities.covers(capabilities)
                || weight_kg > carrier.max_weight_kg
            {
                continue;
            }
            for service in &carrier.services {
                if service.level < level || (service.max_km > 0.0 && distance > service.max_km) {
                    continue;
                }
                let eta = now.plus_hours(
                    warehouse.handling_hours + service.base_hours + distance / service.km_per_hour,
                );
                if order.promise_by.is_some_and(|promise| eta > promise) {
                    continue;
                }
                let cost =
                    service.base_cost + service.per_kg * weight_kg + service.per_km * distance;
                let score = if distance_only { distance } else { cost };
                best = Some(best.map_or(score, |seen: f64| seen.min(score)));
            }
        }
    }
    best
}

/// Runs `ops`, checking every invariant after every step; returns the rendered answers.
fn run(
    world: &World,
    config: &str,
    ops: &[Op],
    one_weight: Option<bool>,
) -> Result<Vec<String>, TestCaseError> {
    let mut router = build(world, config);
    let mut model = Model {
        on_hand: HashMap::new(),
        decisions: HashMap::new(),
    };
    for (warehouse, sku, on_hand) in &world.stock {
        model.on_hand.insert(
            (WarehouseId(*warehouse as u16), SkuId(*sku as u32)),
            *on_hand,
        );
    }
    let mut answers = Vec::new();
    for op in ops {
        match op {
            Op::Order { .. } => {
                let json = order_json(op).unwrap();
                let order = parse_order(json.as_bytes(), router.network(), router.catalog())
                    .map_err(|invalid| TestCaseError::fail(format!("{invalid:?}")))?;
                let now = decision_time(op);
                let home = router.network().regions[order.region.index()].zone;
                let zones: Vec<_> = router.network().zone_order(home).collect();
                let singles: Vec<Option<f64>> = match one_weight {
                    Some(distance_only) => zones
                        .iter()
                        .map(|zone| best_single(&router, &order, *zone, now, distance_only))
                        .collect(),
                    None => Vec::new(),
                };
                let previous = model
                    .decisions
                    .get(order.id.as_str())
                    .map(|(decision, hash, _)| (decision.clone(), *hash));
                let result = router
                    .decide(&order, now)
                    .map(|answer| (answer.decision.into_owned(), answer.duplicate));
                match result {
                    Ok((decision, duplicate)) => {
                        let mut text = Vec::new();
                        write_decision(
                            &mut text,
                            &decision,
                            duplicate,
                            router.network(),
                            router.catalog(),
                        );
                        answers.push(String::from_utf8(text).unwrap());
                        if let Some((original, hash)) = previous {
                            prop_assert!(duplicate);
                            prop_assert_eq!(hash, order.content_hash);
                            prop_assert_eq!(decision, original);
                        } else {
                            prop_assert!(!duplicate);
                            check_shipments(&router, &order, &decision)?;
                            if let Some(distance_only) = one_weight {
                                let position = zones
                                    .iter()
                                    .position(|zone| *zone == decision.zone)
                                    .unwrap();
                                if decision.status == Status::Routed {
                                    // No earlier zone had any single-warehouse plan...
                                    for earlier in &singles[..position] {
                                        prop_assert!(
                                            earlier.is_none(),
                                            "an earlier zone could ship it whole"
                                        );
                                    }
                                    // ...and the plan is no worse than this zone's best one.
                                    let score: f64 = decision
                                        .shipments
                                        .iter()
                                        .map(|shipment| {
                                            if distance_only {
                                                shipment.distance_km
                                            } else {
                                                shipment.cost
                                            }
                                        })
                                        .sum();
                                    if let Some(best) = singles[position] {
                                        prop_assert!(
                                            score <= best + 1e-6,
                                            "plan {score} worse than single {best}"
                                        );
                                    }
                                } else if matches!(
                                    decision.status,
                                    Status::Rejected | Status::Backordered
                                ) {
                                    prop_assert!(
                                        singles.iter().all(Option::is_none),
                                        "rejected though a single warehouse could ship it"
                                    );
                                }
                            }
                            let closed = decision.status == Status::Rejected;
                            model.decisions.insert(
                                order.id.to_string(),
                                (decision, order.content_hash, closed),
                            );
                        }
                    }
                    Err(invalid) => {
                        prop_assert_eq!(invalid.code.name(), "id_conflict");
                        let (_, hash) = previous.expect("a conflict needs an earlier order");
                        prop_assert_ne!(hash, order.content_hash);
                        answers.push(format!("conflict {}", order.id));
                    }
                }
            }
            Op::Cancel(id) | Op::Ship(id) => {
                let id = format!("O-{id}");
                let shipping = matches!(op, Op::Ship(_));
                let result = if shipping {
                    router.ship(&id).map(|_| ())
                } else {
                    router.cancel(&id).map(|_| ())
                };
                let entry = model.decisions.get_mut(&id);
                match (result, entry) {
                    (Ok(()), Some((decision, _, closed))) => {
                        prop_assert!(!*closed);
                        *closed = true;
                        if shipping {
                            for shipment in &decision.shipments {
                                for line in &shipment.lines {
                                    *model
                                        .on_hand
                                        .get_mut(&(shipment.warehouse, line.sku))
                                        .unwrap() -= line.quantity;
                                }
                            }
                        }
                        answers.push(format!("{id} closed"));
                    }
                    (Ok(()), None) => prop_assert!(false, "an unknown order was closed"),
                    (Err(_), entry) => {
                        prop_assert!(
                            entry.is_none_or(|(_, _, closed)| *closed),
                            "a live order was refused"
                        );
                        answers.push(format!("{id} refused"));
                    }
                }
            }
            Op::SetStock(warehouse, sku, level) => {
                let level = StockLevel {
                    warehouse: WarehouseId(*warehouse as u16),
                    sku: SkuId(*sku as u32),
                    on_hand: *level,
                };
                let reserved = router.stock_of(level.sku)[*warehouse].1.reserved;
                let result = router.set_stock(&[level]).remove(0);
                prop_assert_eq!(result.is_ok(), level.on_hand >= reserved);
                if result.is_ok() {
                    model
                        .on_hand
                        .insert((level.warehouse, level.sku), level.on_hand);
                }
                answers.push(format!("stock {result:?}"));
            }
        }
        check_stock(&router, &model)?;
    }
    Ok(answers)
}

fn case() -> impl Strategy<Value = (World, Vec<Op>)> {
    world_strategy().prop_flat_map(|world| {
        let ops = ops_strategy(
            world.regions.len(),
            world.skus.len(),
            world.warehouses.len(),
        );
        (Just(world), ops)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Invariants 1-3 and 5 under the default weights, and determinism (invariant 6).
    #[test]
    fn invariants_hold_and_runs_repeat(case in case()) {
        let (world, ops) = case;
        let config = config_text(&world, [1.0, 1.0, 40.0, 30.0, 5.0], 3);
        let first = run(&world, &config, &ops, None)?;
        let second = run(&world, &config, &ops, None)?;
        prop_assert_eq!(first, second);
    }

    /// With only cost_weight non-zero, the plan is never worse than the best single-warehouse
    /// plan of the zone that decided, and no earlier zone could ship it whole.
    #[test]
    fn cost_only_is_never_worse_than_the_best_single_plan(case in case()) {
        let (world, ops) = case;
        run(&world, &config_text(&world, [0.0, 1.0, 0.0, 0.0, 0.0], 3), &ops, Some(false))?;
    }

    /// The same with only distance_weight non-zero.
    #[test]
    fn distance_only_is_never_worse_than_the_best_single_plan(case in case()) {
        let (world, ops) = case;
        run(&world, &config_text(&world, [1.0, 0.0, 0.0, 0.0, 0.0], 2), &ops, Some(true))?;
    }
}
