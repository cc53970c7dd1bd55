//! Deterministic demo orders for a network and catalogue: what benchmarks, tests and the
//! `demo-data` command feed the router. The mix is a sale day's: regions by population,
//! mostly standard customers and service, baskets of one to five lines, popular SKUs far more
//! often than the long tail, a share of promised delivery times and of orders held for
//! review.

use crate::catalog::Catalog;
use crate::config::Network;
use crate::time::Millis;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::Write;

/// Knobs of the generated mix.
#[derive(Debug, Clone)]
pub struct OrderMix {
    /// `created_at` of the first order.
    pub start: Millis,
    /// Milliseconds between consecutive orders' `created_at`.
    pub spacing_ms: i64,
    /// Share of orders that name explicit coordinates instead of the region centroid.
    pub explicit_coordinates: f64,
    /// Share of orders with a `promise_by`.
    pub promised: f64,
    /// Share of orders tagged for review.
    pub review_tagged: f64,
    /// Share of orders with several lines.
    pub multi_line: f64,
}

impl Default for OrderMix {
    fn default() -> Self {
        OrderMix {
            start: Millis::parse_rfc3339("2026-11-11T00:00:00Z").expect("a valid constant"),
            spacing_ms: 50,
            explicit_coordinates: 0.2,
            promised: 0.3,
            review_tagged: 0.005,
            multi_line: 0.4,
        }
    }
}

/// Writes `count` orders as NDJSON to `out`, the same bytes for the same arguments.
pub fn write_orders(
    network: &Network,
    catalog: &Catalog,
    count: u64,
    seed: u64,
    mix: &OrderMix,
    out: &mut impl Write,
) -> std::io::Result<()> {
    // Every choice below draws from this one generator, in a fixed order: reordering the
    // draws would change every order after the first.
    let mut random = ChaCha8Rng::seed_from_u64(seed ^ 0x0dde5);
    let population: Vec<f64> = network
        .regions
        .iter()
        .map(|region| region.population_millions.max(0.01))
        .collect();
    let total: f64 = population.iter().sum();
    let tiers: Vec<&str> = network.tier_ids.names().collect();
    let mut line = String::with_capacity(512);
    for index in 0..count {
        line.clear();
        let region = pick_region(&mut random, &population, total);
        let created = Millis(mix.start.0 + index as i64 * mix.spacing_ms);
        let tier = pick_tier(&mut random, &tiers);
        let service = pick_service(&mut random);
        line.push_str(&format!(
            "{{\"id\":\"T11-{index:08}\",\"customer\":{{\"id\":\"C-{}\",\"tier\":\"{tier}\"}},\"ship_to\":{{\"region\":\"{}\"",
            random.random_range(0..5_000_000u32),
            network.region_name(crate::ids::RegionId(region as u16)),
        ));
        if random.random::<f64>() < mix.explicit_coordinates {
            let centre = &network.regions[region];
            let latitude = centre.latitude + random.random_range(-1.0..1.0);
            let longitude = centre.longitude + random.random_range(-1.0..1.0);
            line.push_str(&format!(",\"lat\":{latitude:.4},\"lon\":{longitude:.4}"));
        }
        line.push_str(&format!("}},\"service\":\"{service}\""));
        if random.random::<f64>() < mix.promised {
            let hours = random.random_range(24..120);
            line.push_str(&format!(
                ",\"promise_by\":\"{}\"",
                created.plus_hours(f64::from(hours))
            ));
        }
        push_lines(&mut line, &mut random, catalog, mix);
        if random.random::<f64>() < mix.review_tagged {
            line.push_str(",\"tags\":[\"fraud_review\"]");
        }
        line.push_str(&format!(",\"created_at\":\"{created}\"}}\n"));
        out.write_all(line.as_bytes())?;
    }
    out.flush()
}

/// A region drawn with probability proportional to its `population` (of `total`).
fn pick_region(random: &mut ChaCha8Rng, population: &[f64], total: f64) -> usize {
    let mut pick = random.random::<f64>() * total;
    let mut region = 0;
    while region + 1 < population.len() && pick >= population[region] {
        pick -= population[region];
        region += 1;
    }
    region
}

/// Mostly `standard` customers; `plus` and `vip` when the network defines them.
fn pick_tier(random: &mut ChaCha8Rng, tiers: &[&str]) -> &'static str {
    match random.random_range(0..100) {
        0..85 => "standard",
        85..95 if tiers.contains(&"plus") => "plus",
        _ if tiers.contains(&"vip") => "vip",
        _ => "standard",
    }
}

/// Mostly `standard` service, some `economy` and `express`, a few `same_day`.
fn pick_service(random: &mut ChaCha8Rng) -> &'static str {
    match random.random_range(0..100) {
        0..15 => "economy",
        15..85 => "standard",
        85..97 => "express",
        _ => "same_day",
    }
}

/// Appends the `lines` array: one line, or (a `multi_line` share of orders) two to five.
fn push_lines(line: &mut String, random: &mut ChaCha8Rng, catalog: &Catalog, mix: &OrderMix) {
    line.push_str(",\"lines\":[");
    let lines = if random.random::<f64>() < mix.multi_line {
        random.random_range(2..=5)
    } else {
        1
    };
    for position in 0..lines {
        // Cubing a uniform number skews towards low indexes: the first few percent of the
        // catalogue gets most of the orders, as best sellers do.
        let skew: f64 = random.random::<f64>().powi(3);
        let sku = ((catalog.len() as f64 * skew) as usize).min(catalog.len().saturating_sub(1));
        let quantity = if random.random_range(0..10) < 8 {
            1
        } else {
            random.random_range(2..=4)
        };
        let price = random.random_range(5.0..500.0);
        if position > 0 {
            line.push(',');
        }
        line.push_str(&format!(
            "{{\"sku\":\"{}\",\"qty\":{quantity},\"unit_price\":{price:.2}}}",
            catalog.sku_name(crate::ids::SkuId(sku as u32))
        ));
    }
    line.push(']');
}

/// The demo's customers file: credit limits for the customers of [`write_risk_orders`] (and
/// the key accounts of `config/router.toml`'s routing rules, which have room to spare).
pub const DEMO_CUSTOMERS: &str = "customer,credit_limit,note
C-RISK-CREDIT,1000.00,three orders of 450.00: the third passes the limit
C-1001,250000.00,key account
C-1002,250000.00,key account
";

/// Writes orders whose customers trip each risk rule of `config/router.toml`, dated from
/// `start` a second apart (with [`DEMO_CUSTOMERS`] as the customers file): a credit limit
/// passed, a basket over 20,000, a new account ordering fast and one shipping far, a line
/// far above its SKU's usual (after 60 ordinary orders that set the usual), a hazmat SKU
/// to Beijing, a promise under seven hours. `docs/rules.md` shows what each gets.
pub fn write_risk_orders(
    network: &Network,
    catalog: &Catalog,
    stock: &[crate::catalog::StockLevel],
    start: Millis,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let orders = risk_orders(network, catalog, stock, start);
    for (index, order) in orders.iter().enumerate() {
        let RiskOrder {
            id,
            customer,
            region,
            sku,
            qty,
            price,
            more,
        } = order;
        let created = Millis(start.0 + index as i64 * 1000);
        writeln!(
            out,
            "{{\"id\":\"{id}\",\"customer\":{{\"id\":\"{customer}\"}},\"ship_to\":{{\"region\":\"{region}\"}},\"lines\":[{{\"sku\":\"{sku}\",\"qty\":{qty},\"unit_price\":{price:.2}}}]{more},\"created_at\":\"{created}\"}}"
        )?;
    }
    out.flush()
}

/// One order of the risk demo, a second after the one before.
struct RiskOrder {
    id: String,
    customer: String,
    region: &'static str,
    sku: String,
    qty: u32,
    price: f64,
    /// More fields, each with its leading comma.
    more: String,
}

/// The families of orders of the risk demo: id prefix, how many, customer (one each when it
/// ends in `-`), the regions they go to in turn, which SKU (0: a best seller, 1: the next,
/// 2: a hazmat SKU), quantity, unit price, whether tagged `new_account`.
type Family = (
    &'static str,
    u32,
    &'static str,
    &'static [&'static str],
    u8,
    u32,
    f64,
    bool,
);
const RISK_FAMILIES: [Family; 7] = [
    (
        "RISK-CREDIT",
        3,
        "C-RISK-CREDIT",
        &["SH"],
        1,
        1,
        450.0,
        false,
    ),
    ("RISK-BIG", 1, "C-RISK-BIG", &["SH"], 1, 10, 2100.0, false),
    ("RISK-FAST", 5, "C-RISK-FAST", &["SH"], 1, 1, 30.0, true),
    ("RISK-FAR", 2, "C-RISK-FAR", &["SN", "XJ"], 1, 1, 30.0, true),
    (
        "RISK-USUAL",
        60,
        "C-RISK-USUAL-",
        &["SH"],
        0,
        1,
        20.0,
        false,
    ),
    ("RISK-BULK", 1, "C-RISK-BULK", &["SH"], 0, 40, 20.0, false),
    (
        "RISK-HAZMAT",
        1,
        "C-RISK-HAZMAT",
        &["BJ"],
        2,
        1,
        80.0,
        false,
    ),
];

/// The orders of [`write_risk_orders`], in order.
fn risk_orders(
    network: &Network,
    catalog: &Catalog,
    stock: &[crate::catalog::StockLevel],
    start: Millis,
) -> Vec<RiskOrder> {
    let name = |index: u32| catalog.sku_name(crate::ids::SkuId(index)).to_owned();
    let skus = [
        name(0),
        name(1),
        name(stocked_hazmat_sku(network, catalog, stock, "BJ")),
    ];
    let mut orders = Vec::new();
    for (prefix, count, customer, regions, sku, qty, price, tagged) in RISK_FAMILIES {
        for index in 1..=count {
            let customer = match customer.ends_with('-') {
                true => format!("{customer}{index}"),
                false => customer.to_owned(),
            };
            orders.push(RiskOrder {
                id: format!("{prefix}-{index}"),
                customer,
                region: regions[(index as usize - 1) % regions.len()],
                sku: skus[usize::from(sku)].clone(),
                qty,
                price,
                more: if tagged {
                    ",\"tags\":[\"new_account\"]"
                } else {
                    ""
                }
                .to_owned(),
            });
        }
    }
    // The rush order comes last: promised six and a half hours after it is created.
    let promise = Millis(start.0 + orders.len() as i64 * 1000).plus_hours(6.5);
    orders.push(RiskOrder {
        id: "RISK-RUSH-1".into(),
        customer: "C-RISK-RUSH".into(),
        region: "SH",
        sku: skus[1].clone(),
        qty: 1,
        price: 30.0,
        more: format!(",\"service\":\"same_day\",\"promise_by\":\"{promise}\""),
    });
    orders
}

/// The first hazmat SKU stocked somewhere in the zone chain of `region` (index 0 if none):
/// an order of it to that region is stopped by a rule, not by stock.
fn stocked_hazmat_sku(
    network: &Network,
    catalog: &Catalog,
    stock: &[crate::catalog::StockLevel],
    region: &str,
) -> u32 {
    let hazmat = crate::model::Capabilities::parse_one("hazmat").expect("a capability");
    let chain: Vec<crate::ids::ZoneId> = network
        .region_ids
        .get(region)
        .map(|region| {
            network
                .zone_order(network.regions[region as usize].zone)
                .collect()
        })
        .unwrap_or_default();
    stock
        .iter()
        .filter(|level| level.on_hand > 0)
        .filter(|level| {
            let warehouse = &network.warehouses[level.warehouse.index()];
            warehouse.capabilities.covers(hazmat) && chain.contains(&warehouse.zone)
        })
        .map(|level| level.sku)
        .filter(|sku| catalog.sku(*sku).capabilities == hazmat)
        .min()
        .map_or(0, |sku| sku.0)
}
