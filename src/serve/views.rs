//! JSON views of the network (with today's load) and the catalogue for the read endpoints,
//! each zone's share of today's load, and the NDJSON body of `PUT /v1/stock` read into
//! levels. Built on request, off the hot path; serde_json values are fine here.

use crate::catalog::{Catalog, StockLevel};
use crate::config::{CarrierService, Network};
use crate::ids::{CarrierId, SkuId, WarehouseId};
use crate::time::Millis;
use crate::zone::ZoneState;
use serde_json::{Value, json};

/// The names of a set of capabilities, for JSON.
fn names(caps: crate::model::Capabilities) -> Vec<&'static str> {
    caps.names().collect()
}

/// Share of a daily limit used (`null` when unlimited).
fn share(used: u32, limit: u32) -> Value {
    if limit == 0 {
        Value::Null
    } else {
        json!((f64::from(used) / f64::from(limit) * 1000.0).round() / 1000.0)
    }
}

/// Orders shipped from `warehouse` today and pickups of each carrier there.
pub struct WarehouseLoad {
    /// Orders shipped from the warehouse today.
    pub orders: u32,
    /// Pickups there today, indexed by carrier.
    pub pickups: Vec<u32>,
}

/// Today's load (UTC day of `now`) of each of a zone's warehouses.
pub fn zone_loads(
    zone: &ZoneState,
    carriers: usize,
    now: Millis,
) -> Vec<(WarehouseId, WarehouseLoad)> {
    let day = now.utc_day();
    zone.warehouses()
        .iter()
        .enumerate()
        .map(|(local, warehouse)| {
            let load = WarehouseLoad {
                orders: zone.warehouse_orders(local, day),
                pickups: (0..carriers)
                    .map(|carrier| zone.pickups(local, CarrierId(carrier as u16), day))
                    .collect(),
            };
            (*warehouse, load)
        })
        .collect()
}

/// `GET /v1/network`: zones, regions, warehouses with today's load, carriers with today's
/// pickups. `loads` is indexed by warehouse.
pub fn network(network: &Network, loads: &[WarehouseLoad], now: Millis) -> Value {
    let tiers: Vec<Value> = network
        .tiers
        .iter()
        .enumerate()
        .map(|(index, tier)| {
            json!({
                "id": network.tier_ids.name(index as u32),
                "min_service": tier.min_service.name(),
            })
        })
        .collect();
    json!({
        "day": now.utc_day(),
        "tiers": tiers,
        "zones": zones(network),
        "regions": regions(network),
        "warehouses": warehouses(network, loads),
        "carriers": carriers(network, loads),
        "policy": {
            "distance_weight": network.policy.distance_weight,
            "cost_weight": network.policy.cost_weight,
            "split_weight": network.policy.split_weight,
            "load_weight": network.policy.load_weight,
            "rank_weight": network.policy.rank_weight,
            "max_shipments": network.policy.max_shipments,
        },
        "limits": {
            "max_line_bytes": network.limits.max_line_bytes,
            "max_lines_per_order": network.limits.max_lines_per_order,
        },
    })
}

/// Each zone with its fallback chain and its warehouses.
fn zones(network: &Network) -> Vec<Value> {
    network
        .zones
        .iter()
        .enumerate()
        .map(|(index, zone)| {
            json!({
                "id": network.zone_ids.name(index as u32),
                "fallback": zone.fallback.iter().map(|id| network.zone_name(*id)).collect::<Vec<_>>(),
                "warehouses": zone.warehouses.iter().map(|id| network.warehouse_name(*id)).collect::<Vec<_>>(),
            })
        })
        .collect()
}

/// Each region: where it is, its zone and its population.
fn regions(network: &Network) -> Vec<Value> {
    network
        .regions
        .iter()
        .enumerate()
        .map(|(index, region)| {
            json!({
                "id": network.region_ids.name(index as u32),
                "name": region.name,
                "lat": region.latitude,
                "lon": region.longitude,
                "zone": network.zone_name(region.zone),
                "population": region.population_millions,
            })
        })
        .collect()
}

/// Each warehouse as configured, with the orders it has shipped today.
fn warehouses(network: &Network, loads: &[WarehouseLoad]) -> Vec<Value> {
    network
        .warehouses
        .iter()
        .enumerate()
        .map(|(index, warehouse)| {
            let load = &loads[index];
            json!({
                "id": network.warehouse_ids.name(index as u32),
                "name": warehouse.name,
                "zone": network.zone_name(warehouse.zone),
                "lat": warehouse.latitude,
                "lon": warehouse.longitude,
                "capabilities": names(warehouse.capabilities),
                "daily_orders": warehouse.daily_orders,
                "handling_hours": warehouse.handling_hours,
                "rank": warehouse.rank,
                "enabled": warehouse.enabled,
                "today": {
                    "orders": load.orders,
                    "utilisation": share(load.orders, warehouse.daily_orders),
                },
            })
        })
        .collect()
}

/// Each carrier as configured, with today's pickups over all warehouses and the share of
/// its daily limit used at the busiest one.
fn carriers(network: &Network, loads: &[WarehouseLoad]) -> Vec<Value> {
    network
        .carriers
        .iter()
        .enumerate()
        .map(|(index, carrier)| {
            let pickups: u32 = loads.iter().map(|load| load.pickups[index]).sum();
            let busiest = loads
                .iter()
                .map(|load| load.pickups[index])
                .max()
                .unwrap_or(0);
            json!({
                "id": network.carrier_ids.name(index as u32),
                "capabilities": names(carrier.capabilities),
                "regions": match &carrier.regions {
                    None => vec!["*"],
                    Some(regions) => regions.iter().map(|id| network.region_name(*id)).collect(),
                },
                "max_weight_kg": carrier.max_weight_kg,
                "daily_pickups": carrier.daily_pickups,
                "services": carrier.services.iter().map(service).collect::<Vec<_>>(),
                "today": {
                    "pickups": pickups,
                    "busiest_warehouse_utilisation": share(busiest, carrier.daily_pickups),
                },
            })
        })
        .collect()
}

/// One service level of a carrier: its price and speed.
fn service(service: &CarrierService) -> Value {
    json!({
        "level": service.level.name(),
        "base_cost": service.base_cost,
        "per_kg": service.per_kg,
        "per_km": service.per_km,
        "base_hours": service.base_hours,
        "km_per_hour": service.km_per_hour,
        "max_km": service.max_km,
    })
}

/// One SKU of the catalogue as JSON.
pub fn sku(catalog: &Catalog, sku: SkuId) -> Value {
    let entry = catalog.sku(sku);
    json!({
        "sku": catalog.sku_name(sku),
        "weight_g": entry.weight_g,
        "capabilities": names(entry.capabilities),
    })
}

/// Parses absolute stock levels given as NDJSON (`{"warehouse","sku","on_hand"}` a line).
/// All or nothing: the first bad line is the error, naming its line number.
pub fn stock_ndjson(
    body: &[u8],
    network: &Network,
    catalog: &Catalog,
) -> Result<Vec<StockLevel>, String> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Row {
        warehouse: String,
        sku: String,
        on_hand: u32,
    }
    let mut levels = Vec::new();
    for (index, line) in body.split(|byte| *byte == b'\n').enumerate() {
        let number = index + 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let row: Row =
            serde_json::from_slice(line).map_err(|error| format!("line {number}: {error}"))?;
        let warehouse = network.warehouse_ids.get(&row.warehouse).ok_or_else(|| {
            format!(
                "line {number}: warehouse '{}' is not in the network",
                row.warehouse
            )
        })?;
        let sku = catalog
            .lookup(&row.sku)
            .ok_or_else(|| format!("line {number}: sku '{}' is not in the catalogue", row.sku))?;
        levels.push(StockLevel {
            warehouse: WarehouseId(warehouse as u16),
            sku,
            on_hand: row.on_hand,
        });
    }
    Ok(levels)
}
