//! Helpers shared by the integration tests: small networks written out by hand, a router
//! built from them, and waiting for what a server does in the background.

#![allow(dead_code)] // Each test file uses its own subset.

use order_router::catalog::{self, Catalog};
use order_router::config::Network;
use order_router::ingest::parse_order;
use order_router::model::{Decision, Invalid, Order};
use order_router::route::Router;
use order_router::time::Millis;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub mod server;

/// `order-router check-config path`: its exit code and what it wrote to stderr.
pub fn check_config(path: &Path) -> (Option<i32>, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_order-router"))
        .arg("check-config")
        .arg(path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), stderr)
}

/// 2026-11-11T00:00:00Z, midnight (UTC) at the start of the golden tests' day: the time
/// [`decide`] decides at, from which the golden ETAs and promises are worked out.
pub fn midnight() -> Millis {
    Millis::parse_rfc3339("2026-11-11T00:00:00Z").unwrap()
}

/// 2026-11-11T12:00:00Z, noon (UTC) of the same day: twelve hours after [`midnight`].
pub fn noon() -> Millis {
    Millis::parse_rfc3339("2026-11-11T12:00:00Z").unwrap()
}

/// How long a test waits for something a server does in the background. Generous, since
/// tests run on shared, noisy machines; a passing test waits only as long as it takes.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Polls `condition` until it holds (true) or `deadline` passes (false): at once, then
/// every few milliseconds, backing off to every 50 ms so that a condition that costs a
/// request (or places an order) is not asked hundreds of times.
pub fn wait_until(deadline: Instant, mut condition: impl FnMut() -> bool) -> bool {
    let mut pause = Duration::from_millis(2);
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Waits up to [`PATIENCE`] for `condition`; fails the test saying that `what` did not
/// happen in time.
#[track_caller]
pub fn wait_for(what: &str, condition: impl FnMut() -> bool) {
    let held = wait_until(Instant::now() + PATIENCE, condition);
    assert!(held, "{what} did not happen within {PATIENCE:?}");
}

/// A router over `config` (TOML), `catalog` (CSV) and `stock` (CSV).
pub fn router(config: &str, catalog: &str, stock: &str) -> Router {
    let network =
        Arc::new(Network::from_toml(config).unwrap_or_else(|problems| panic!("{problems:#?}")));
    let catalog = Arc::new(Catalog::read(catalog.as_bytes(), Path::new("catalog.csv")).unwrap());
    let stock =
        catalog::read_stock(stock.as_bytes(), Path::new("stock.csv"), &network, &catalog).unwrap();
    Router::new(network, catalog, &stock)
}

/// Parses `json` as an order for `router`'s network, panicking if it is invalid.
pub fn order(router: &Router, json: &str) -> Order {
    parse_order(json.as_bytes(), router.network(), router.catalog())
        .unwrap_or_else(|invalid| panic!("{invalid:?}"))
}

/// Decides `json` at `now`: the decision (cloned) and whether it was a duplicate.
pub fn decide_at(
    router: &mut Router,
    json: &str,
    now: Millis,
) -> Result<(Decision, bool), Invalid> {
    let order = order(router, json);
    router
        .decide(&order, now)
        .map(|answer| (answer.decision.into_owned(), answer.duplicate))
}

/// Decides `json` at [`midnight`] (the golden tests' decision time), expecting a fresh
/// decision.
pub fn decide(router: &mut Router, json: &str) -> Decision {
    let (decision, duplicate) =
        decide_at(router, json, midnight()).unwrap_or_else(|invalid| panic!("{invalid:?}"));
    assert!(!duplicate);
    decision
}

/// `(warehouse, carrier, service)` of each shipment, by name.
pub fn placements(router: &Router, decision: &Decision) -> Vec<(String, String, String)> {
    let network = router.network();
    decision
        .shipments
        .iter()
        .map(|shipment| {
            (
                network.warehouse_name(shipment.warehouse).to_owned(),
                network.carrier_name(shipment.carrier).to_owned(),
                shipment.level.name().to_owned(),
            )
        })
        .collect()
}

/// Reserved units of `sku` at `warehouse`.
pub fn reserved(router: &Router, warehouse: &str, sku: &str) -> u32 {
    let sku = router.catalog().lookup(sku).unwrap();
    let warehouse = router.network().warehouse_ids.get(warehouse).unwrap() as usize;
    router.stock_of(sku)[warehouse].1.reserved
}

/// On-hand units of `sku` at `warehouse`.
pub fn on_hand(router: &Router, warehouse: &str, sku: &str) -> u32 {
    let sku = router.catalog().lookup(sku).unwrap();
    let warehouse = router.network().warehouse_ids.get(warehouse).unwrap() as usize;
    router.stock_of(sku)[warehouse].1.on_hand
}

/// A one-line order for `sku` x `qty` to `region`, with extra JSON fields appended.
pub fn simple_order(id: &str, region: &str, lines: &[(&str, u32)], extra: &str) -> String {
    let lines: Vec<String> = lines
        .iter()
        .map(|(sku, qty)| format!(r#"{{"sku":"{sku}","qty":{qty}}}"#))
        .collect();
    format!(
        r#"{{"id":"{id}","customer":{{"id":"C-1"}},"ship_to":{{"region":"{region}"}},"lines":[{}]{extra}}}"#,
        lines.join(",")
    )
}

/// The golden network: two zones on a line of longitude 120 E. Distances from the region
/// centroid R1 (30.0 N, 120.0 E): NEAR 11.1 km, FAR 111.2 km (0.1 and 1.0 degree of
/// latitude); WEST in zone `west`, 222.4 km from R1. Carrier `cheap` is slow and cheap,
/// `fast` is express and dear; `cold` is the only cold-chain carrier.
pub const GOLDEN: &str = r#"
[policy]
distance_weight = 1.0
cost_weight = 1.0
split_weight = 40.0
load_weight = 0.0
rank_weight = 0.0
max_shipments = 3

[[tiers]]
id = "vip"
min_service = "express"

[[zones]]
id = "east"
fallback = ["west"]

[[zones]]
id = "west"

[[regions]]
id = "R1"
lat = 30.0
lon = 120.0
zone = "east"

[[regions]]
id = "R2"
lat = 28.0
lon = 120.0
zone = "west"

[[warehouses]]
id = "NEAR"
zone = "east"
lat = 30.1
lon = 120.0
capabilities = []
daily_orders = 0
handling_hours = 2.0
rank = 2

[[warehouses]]
id = "FAR"
zone = "east"
lat = 31.0
lon = 120.0
capabilities = ["cold_chain"]
daily_orders = 0
handling_hours = 1.0
rank = 1

[[warehouses]]
id = "WEST"
zone = "west"
lat = 28.0
lon = 120.0
capabilities = ["cold_chain"]
daily_orders = 0
handling_hours = 1.0
rank = 1

[[carriers]]
id = "cheap"
regions = ["*"]
max_weight_kg = 20.0
daily_pickups = 0

[[carriers.services]]
level = "standard"
base_cost = 5.0
per_kg = 1.0
per_km = 0.01
base_hours = 24.0
km_per_hour = 50.0

[[carriers]]
id = "fast"
regions = ["*"]
max_weight_kg = 20.0
daily_pickups = 0

[[carriers.services]]
level = "express"
base_cost = 20.0
per_kg = 2.0
per_km = 0.02
base_hours = 6.0
km_per_hour = 100.0

[[carriers]]
id = "cold"
capabilities = ["cold_chain"]
regions = ["R1", "R2"]
max_weight_kg = 50.0
daily_pickups = 0

[[carriers.services]]
level = "standard"
base_cost = 9.0
per_kg = 1.5
per_km = 0.01
base_hours = 20.0
km_per_hour = 60.0
"#;

/// SKUs of the golden network: `A` 1 kg, `B` 2 kg, `ICE` 1 kg cold chain, `HEAVY` 15 kg.
pub const GOLDEN_CATALOG: &str =
    "sku,weight_g,capabilities\nA,1000,\nB,2000,\nICE,1000,cold_chain\nHEAVY,15000,\n";
