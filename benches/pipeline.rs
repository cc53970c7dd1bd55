//! The whole `route` pipeline (split lines, parse, decide, reserve, render) against the
//! yardstick of issue 2: serde_json alone parsing the same lines into an owned order struct
//! and writing a one-line acknowledgement. Same input, same run; the ratio of the two
//! throughputs is the number `docs/benchmarks.md` tracks.
//!
//! ```sh
//! cargo bench --bench pipeline
//! ```

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use order_router::demo::{OrderMix, write_orders};
use order_router::route::Router;
use order_router::route::route_stream;
use order_router::time::Millis;
use order_router::world::World;
use order_router::yardstick::acknowledge;
use std::hint::black_box;

const ORDERS: u64 = 20_000;

fn bench_pipeline(criterion: &mut Criterion) {
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
    .unwrap();
    let mut group = criterion.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(ORDERS));
    group.sample_size(20);
    group.bench_function("serde_json_baseline", |bencher| {
        let mut out = Vec::with_capacity(4 << 20);
        bencher.iter(|| {
            out.clear();
            for line in input
                .split(|byte| *byte == b'\n')
                .filter(|line| !line.is_empty())
            {
                assert!(acknowledge(line, &mut out), "demo orders parse");
            }
            black_box(out.len())
        });
    });
    group.bench_function("route", |bencher| {
        let mut out = Vec::with_capacity(16 << 20);
        bencher.iter_batched(
            || Router::new(world.network.clone(), world.catalog.clone(), &world.stock),
            |mut router| {
                out.clear();
                let summary =
                    route_stream(&mut router, input.as_slice(), &mut out, Millis(0)).unwrap();
                black_box(summary);
                router
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, bench_pipeline);
criterion_main!(benches);
