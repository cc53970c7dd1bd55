//! Parsing alone: the service's parser ([`parse_order`]: UTF-8 check, serde_json walk,
//! validation, interning of regions, tiers and SKUs, content hash) against serde_json
//! parsing the same lines into the yardstick's owned mirror of the order contract
//! ([`MirrorOrder`], `String` fields, no validation). Both read the same 20,000 demo orders,
//! split into lines before the timed part, and drop what they parsed; one group, so the
//! ratio of the two throughputs can be read off one run.
//!
//! ```sh
//! cargo bench --bench parse
//! ```

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use order_router::demo::{OrderMix, write_orders};
use order_router::ingest::parse_order;
use order_router::world::World;
use order_router::yardstick::MirrorOrder;
use std::hint::black_box;

const ORDERS: u64 = 20_000;

fn bench_parse(criterion: &mut Criterion) {
    let world = World::demo().expect("the default world loads");
    let mut input = Vec::new();
    write_orders(
        &world.network,
        &world.catalog,
        ORDERS,
        11,
        &OrderMix::default(),
        &mut input,
    )
    .expect("writing to a Vec cannot fail");
    let lines: Vec<&[u8]> = input
        .split(|byte| *byte == b'\n')
        .filter(|line| !line.is_empty())
        .collect();
    assert_eq!(lines.len() as u64, ORDERS);
    // Both parsers must accept every line, or one of them would be timed on its error path.
    for line in &lines {
        parse_order(line, &world.network, &world.catalog).expect("demo orders are valid");
        serde_json::from_slice::<MirrorOrder>(line).expect("demo orders fit the mirror");
    }
    eprintln!(
        "parse: {} lines, {} bytes ({} bytes a line)",
        lines.len(),
        input.len(),
        input.len() / lines.len()
    );

    let mut group = criterion.benchmark_group("parse");
    group.throughput(Throughput::Elements(ORDERS));
    group.sample_size(20);
    group.bench_function("serde_json_mirror", |bencher| {
        bencher.iter(|| {
            for line in &lines {
                // Dropped as soon as it is parsed, as the yardstick drops it.
                let parsed = serde_json::from_slice::<MirrorOrder>(line);
                black_box(&parsed);
            }
        });
    });
    group.bench_function("parse_order", |bencher| {
        bencher.iter(|| {
            for line in &lines {
                let parsed = parse_order(line, &world.network, &world.catalog);
                black_box(&parsed);
            }
        });
    });
    group.finish();
}

criterion_group!(benches, bench_parse);
criterion_main!(benches);
