//! The routing engine alone: nanoseconds to plan one order in its home zone on the default
//! world (demo catalogue and stock), for three kinds of orders. Nothing is reserved, so every
//! iteration sees the same state.
//!
//! ```sh
//! cargo bench --bench engine
//! ```

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use order_router::engine::{OrderContext, OrderFacts, Scratch, ZoneAttempt, plan_zone};
use order_router::ingest::parse_order;
use order_router::model::Order;
use order_router::route::Router;
use order_router::time::Millis;
use order_router::world::World;
use std::hint::black_box;

/// Orders of one shape: `lines` lines of SKUs drawn from `sku_range`, `quantity` each.
fn orders(
    router: &Router,
    count: usize,
    lines: usize,
    sku_range: (usize, usize),
    quantity: u32,
) -> Vec<Order> {
    let network = router.network();
    let regions = network.regions.len();
    (0..count)
        .map(|index| {
            let lines: Vec<String> = (0..lines)
                .map(|line| {
                    let span = sku_range.1 - sku_range.0;
                    let sku = sku_range.0 + (index * 7919 + line * 104_729) % span;
                    format!(r#"{{"sku":"SKU-{sku:06}","qty":{quantity}}}"#)
                })
                .collect();
            let region = network.region_name(order_router::ids::RegionId((index % regions) as u16));
            let json = format!(
                r#"{{"id":"B-{index}","customer":{{"id":"C"}},"ship_to":{{"region":"{region}"}},"lines":[{}]}}"#,
                lines.join(",")
            );
            parse_order(json.as_bytes(), network, router.catalog()).expect("bench orders are valid")
        })
        .collect()
}

fn bench_engine(criterion: &mut Criterion) {
    let world = World::demo().expect("the default world loads");
    let router = Router::new(world.network.clone(), world.catalog.clone(), &world.stock);
    let now = Millis::parse_rfc3339("2026-11-11T10:00:00Z").unwrap();
    let shapes = [
        ("single_line", orders(&router, 1024, 1, (0, 2000), 1)),
        ("multi_line", orders(&router, 1024, 4, (0, 2000), 1)),
        // Long-tail SKUs, each carried by about a third of the warehouses: few warehouses
        // hold all four, so most orders go through the split search.
        ("split_heavy", orders(&router, 1024, 4, (20_000, 50_000), 2)),
    ];
    let mut group = criterion.benchmark_group("engine_plan_home_zone");
    for (name, orders) in &shapes {
        let placed = orders
            .iter()
            .filter(|order| {
                let facts = OrderFacts::new(order, &world.network, &world.catalog);
                let context = OrderContext::new(order, &facts, &world.network, now);
                let home = world.network.regions[order.region.index()].zone;
                matches!(plan_zone(&context, router.zone(home), &mut Scratch::default()), ZoneAttempt::Placed(plan) if plan.shipments.len() > 1)
            })
            .count();
        eprintln!(
            "{name}: {placed} of {} orders split in their home zone",
            orders.len()
        );
        group.throughput(Throughput::Elements(orders.len() as u64));
        group.bench_function(*name, |bencher| {
            let mut scratch = Scratch::default();
            bencher.iter(|| {
                for order in orders {
                    let facts = OrderFacts::new(order, &world.network, &world.catalog);
                    let context = OrderContext::new(order, &facts, &world.network, now);
                    let home = world.network.regions[order.region.index()].zone;
                    black_box(plan_zone(&context, router.zone(home), &mut scratch));
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench_engine);
criterion_main!(benches);
