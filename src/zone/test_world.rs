//! A small two-zone world for the zone tests: each zone the other's fallback.

use super::*;
use crate::catalog::Catalog;
use crate::catalog::read_stock;
use crate::config::Network;
use crate::ids::ZoneId;
use crate::ingest::parse_order;
use crate::model::Order;
use std::path::Path;
use std::sync::Arc;

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
    world_with("", stock)
}

/// The same world, with `extra` appended to its config (rules, a `[[risk]]`).
pub fn world_with(extra: &str, stock: &str) -> World {
    let network = Arc::new(Network::from_toml(&format!("{NETWORK}{extra}")).unwrap());
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
    let customers = Arc::new(crate::risk::CustomerBook::new(world.network.zones.len()));
    let mut zones: Vec<Zone> = (0..world.network.zones.len())
        .map(|index| {
            let state = ZoneState::new(&world.network, ZoneId(index as u16), world.catalog.len());
            Zone::new(
                state,
                world.catalog.clone(),
                claims.clone(),
                customers.clone(),
            )
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

/// A rejected order's record, `order-{n}`, in lifecycle `n % 5` (decided at `n` ms).
pub fn rejected_record(world: &World, n: u32) -> OrderRecord {
    let order = order(world, &format!("order-{n}"), "S", "A", n % 5 + 1);
    let decision = crate::model::Decision {
        order_id: order.id.clone(),
        status: crate::model::Status::Rejected,
        zone: crate::ids::ZoneId(1),
        seq: u64::from(n) + 1,
        decided_at: crate::time::Millis(i64::from(n)),
        shipments: Default::default(),
        backordered: Default::default(),
        reason: None,
        risk: None,
    };
    OrderRecord {
        content_hash: u64::from(n) * 7,
        decision,
        lifecycle: Lifecycle::ALL[n as usize % 5],
        approvers: None,
        buyer: crate::risk::Buyer::of(&order),
        claim: Default::default(),
    }
}
