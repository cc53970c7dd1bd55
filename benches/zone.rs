//! One zone batch as the service decides it: the zone actor's `Visits` handler without the
//! actors around it. A parsed chunk of demo orders is admitted line by line ([`admit`]: the
//! id is claimed in the shared claims table and the order goes to its home zone, as the
//! ingest worker does); each zone then takes its visits through [`decide`], the one batch
//! decision the handler calls (plan, reserve, record, settle the claim, render the answer;
//! stock cells prefetched ahead), and the orders a zone cannot place are gathered per next
//! zone. Those forwards are taken by their next zone in the same thread, one message after
//! another, until every order of the chunk is answered. Elements are orders, so the
//! throughput is orders per second.
//!
//! Left out: the actor mailboxes and the wakes between threads, the feed, the capacity
//! warnings, and the journal's write and sync (`benches/journal.rs`); the
//! `with_journal_records` case adds the encoding of the binary decision records the handler
//! hands the journal writer (the service's default, durable, configuration).
//!
//! Groups: `zone_batch`, a chunk of 470 orders (the ~470-order batches the service was
//! measured with, `docs/benchmarks.md`); `zone_batch_size`, chunks of 1, 64 and 470
//! orders, for the cost per chunk (admission, one message per home zone and per forward,
//! buffers) beside the cost per order.
//!
//! ```sh
//! cargo bench --bench zone
//! ```

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use order_router::catalog::Catalog;
use order_router::config::Network;
use order_router::demo::{OrderMix, write_orders};
use order_router::ids::ZoneId;
use order_router::ingest::parse_order;
use order_router::model::{Order, Tally};
use order_router::time::Millis;
use order_router::world::World;
use order_router::zone::{Claims, Decided, Next, Visit, Zone, ZoneState, admit, decide};
use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The size of the service's batches as measured (`docs/benchmarks.md`: ~470 orders).
const SERVICE_BATCH: usize = 470;
const BATCH_SIZES: [usize; 3] = [1, 64, SERVICE_BATCH];

/// Orders decided on one copy of the zones before it is replaced by a fresh one.
///
/// How stock exhaustion is avoided: every generation starts from a copy of the demo world's
/// zones (the full demo stock, nothing reserved, no capacity used) and a new, empty claims
/// table, and decides each order of the pool at most once. The demo stock and the
/// warehouses' daily capacities are sized for a sale day of a million orders; 9,400 orders
/// (20 chunks of 470, under 1% of that day) leave both far from binding: on 2026-11-27,
/// 89% of a generation was routed, and the 5% backordered were backordered at the same rate
/// from the first chunk (on the untouched stock) to the last, so they come from gaps in the
/// demo stock itself, not from stock this bench used up. The untimed first pass prints these outcomes
/// per run. Ids are fresh for the same reason: the claims table is new with each
/// generation and the pool's ids are distinct.
const POOL_ORDERS: usize = 20 * SERVICE_BATCH;

/// Zones as the service starts them: one [`ZoneState`] per zone with the initial stock.
fn template_zones(world: &World) -> Vec<ZoneState> {
    let network = &world.network;
    let mut zones: Vec<ZoneState> = (0..network.zones.len())
        .map(|zone| ZoneState::new(network, ZoneId(zone as u16), world.catalog.len()))
        .collect();
    for level in &world.stock {
        let zone = network.warehouses[level.warehouse.index()].zone;
        zones[zone.index()]
            .set_on_hand(*level)
            .expect("nothing is reserved yet, so every initial level applies");
    }
    zones
}

/// A fresh copy of the zones, sharing a new claims table, and where the next batch starts
/// in the pool.
struct Generation {
    zones: Vec<Zone>,
    claims: Arc<Claims>,
    next: usize,
}

impl Generation {
    fn new(template: &[ZoneState], catalog: &Arc<Catalog>) -> Generation {
        let claims = Arc::new(Claims::default());
        let customers = Arc::new(order_router::risk::CustomerBook::new(template.len()));
        let zones = template
            .iter()
            .map(|state| {
                Zone::new(
                    state.clone(),
                    catalog.clone(),
                    claims.clone(),
                    customers.clone(),
                )
            })
            .collect();
        Generation {
            zones,
            claims,
            next: 0,
        }
    }
}

/// What deciding one chunk came to.
#[derive(Default)]
struct ChunkOutcome {
    tally: Tally,
    /// Zone messages: one per home zone of the chunk, one per forward.
    messages: usize,
    /// Orders passed on to another zone (an order can be passed on more than once).
    forwarded: usize,
    answer_bytes: usize,
    journal_bytes: usize,
}

/// Admits `orders` (lines `first_line..` of the stream) and takes every one through its
/// zones until it is answered, as the worker and the zone shards do; with
/// `journal_records`, each zone message also encodes its new decisions as the journal's
/// binary records.
fn decide_chunk(
    network: &Network,
    generation: &mut Generation,
    orders: Vec<Order>,
    first_line: u64,
    journal_records: bool,
) -> ChunkOutcome {
    // The service decides a message at its arrival; the demo orders are dated as they
    // arrive, so the chunk is decided at its first order's time.
    let now = orders
        .first()
        .and_then(|order| order.created_at)
        .unwrap_or(Millis(0));
    let mut outcome = ChunkOutcome::default();
    // The worker: claims, line by line, then one message per home zone.
    let mut by_zone: Vec<Vec<Visit>> = (0..generation.zones.len()).map(|_| Vec::new()).collect();
    for (index, order) in orders.into_iter().enumerate() {
        let line = first_line + index as u64;
        let key = generation.claims.key(&order.id);
        let (zone, visit) = admit(&generation.claims, network, order, key, index as u32, line);
        by_zone[zone.index()].push(visit);
    }
    let mut messages: VecDeque<(ZoneId, Vec<Visit>)> = by_zone
        .into_iter()
        .enumerate()
        .filter(|(_, visits)| !visits.is_empty())
        .map(|(zone, visits)| (ZoneId(zone as u16), visits))
        .collect();
    // The zone actors: each message through the one batch decision, as the `Visits`
    // handler takes it.
    let mut decided = Decided::new(journal_records);
    while let Some((to, mut visits)) = messages.pop_front() {
        outcome.messages += 1;
        let zone = &mut generation.zones[to.index()];
        let mut out = Vec::with_capacity(visits.len() * 400);
        decided.clear();
        decide(zone, network, &mut visits, now, &mut out, &mut decided);
        // Only a duplicate whose original is undecided waits; the pool's ids are distinct
        // and the claims table is fresh with each generation.
        assert!(
            !decided.next.contains(&Next::Wait),
            "no order of the pool is a duplicate"
        );
        outcome.tally.add(&decided.tally);
        outcome.forwarded += decided.next.len();
        if let Some(records) = &decided.records {
            outcome.journal_bytes += records
                .iter()
                .map(|(_, payload)| payload.len())
                .sum::<usize>();
        }
        outcome.answer_bytes += out.len();
        // Grouped per next zone, as the handler does.
        messages.extend(decided.onward(&mut visits).forwards);
    }
    outcome
}

fn bench_zone(criterion: &mut Criterion) {
    let world = World::demo().expect("the default world loads");
    let mut input = Vec::new();
    write_orders(
        &world.network,
        &world.catalog,
        POOL_ORDERS as u64,
        11,
        &OrderMix::default(),
        &mut input,
    )
    .expect("writing to a Vec cannot fail");
    let pool: Vec<Order> = input
        .split(|byte| *byte == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| {
            parse_order(line, &world.network, &world.catalog).expect("demo orders are valid")
        })
        .collect();
    assert_eq!(pool.len(), POOL_ORDERS);
    let template = template_zones(&world);

    // One pass over a generation, untimed: what the measured path decides.
    let mut generation = Generation::new(&template, &world.catalog);
    let mut total = ChunkOutcome::default();
    let mut backordered_per_chunk = Vec::new();
    for (number, chunk) in pool.chunks(SERVICE_BATCH).enumerate() {
        let first_line = (number * SERVICE_BATCH) as u64 + 1;
        let outcome = decide_chunk(
            &world.network,
            &mut generation,
            chunk.to_vec(),
            first_line,
            true,
        );
        backordered_per_chunk.push(outcome.tally.backordered);
        total.tally.add(&outcome.tally);
        total.messages += outcome.messages;
        total.forwarded += outcome.forwarded;
        total.answer_bytes += outcome.answer_bytes;
        total.journal_bytes += outcome.journal_bytes;
    }
    let summary = &total.tally;
    assert_eq!(
        summary.lines as usize, POOL_ORDERS,
        "every order is answered"
    );
    let chunks = POOL_ORDERS / SERVICE_BATCH;
    // Backorders from the first chunk on, at the same rate to the last, come from SKUs the
    // demo stock does not hold anywhere near, not from stock this bench used up.
    eprintln!(
        "zone: backordered per chunk of {SERVICE_BATCH}, first to last: {backordered_per_chunk:?}"
    );
    eprintln!(
        "zone: one generation of {POOL_ORDERS} orders in chunks of {SERVICE_BATCH}: {} routed, \
         {} backordered, {} held, {} rejected, {} duplicate, {} invalid; {} forwards, {:.1} zone \
         messages a chunk, {} answer bytes and {} journal bytes an order",
        summary.routed,
        summary.backordered,
        summary.held,
        summary.rejected,
        summary.duplicates,
        summary.invalid,
        total.forwarded,
        total.messages as f64 / chunks as f64,
        total.answer_bytes / POOL_ORDERS,
        total.journal_bytes / POOL_ORDERS,
    );
    drop(generation);

    // A benchmark's closure runs once per sample; each starts a generation of its own and
    // replaces it, outside the timed part, when the pool has no room for another batch.
    let measure = |bencher: &mut criterion::Bencher<'_>, size: usize, journal: bool| {
        let mut generation = Generation::new(&template, &world.catalog);
        bencher.iter_custom(|iterations| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iterations {
                if generation.next + size > pool.len() {
                    generation = Generation::new(&template, &world.catalog);
                }
                let first = generation.next;
                generation.next += size;
                // The worker hands its parsed orders over; the copy is made untimed.
                let orders = pool[first..first + size].to_vec();
                let start = Instant::now();
                let outcome = decide_chunk(
                    &world.network,
                    &mut generation,
                    orders,
                    first as u64 + 1,
                    journal,
                );
                elapsed += start.elapsed();
                black_box(outcome.tally);
            }
            elapsed
        });
    };

    let mut group = criterion.benchmark_group("zone_batch");
    group.throughput(Throughput::Elements(SERVICE_BATCH as u64));
    group.bench_function("zone_step", |bencher| {
        measure(bencher, SERVICE_BATCH, false)
    });
    group.bench_function("zone_step_with_journal_records", |bencher| {
        measure(bencher, SERVICE_BATCH, true)
    });
    group.finish();

    let mut group = criterion.benchmark_group("zone_batch_size");
    for size in BATCH_SIZES {
        group.throughput(Throughput::Elements(size as u64));
        group.bench_function(BenchmarkId::from_parameter(size), |bencher| {
            measure(bencher, size, false)
        });
    }
    group.finish();
}

/// Claiming fresh ids into an empty table, as a stream's first orders of the day do: every
/// segment's index grows (doubling) several times on the way, and past a few hundred
/// thousand claims the table no longer fits the caches.
fn bench_claims(criterion: &mut Criterion) {
    const IDS: usize = 1 << 20;
    let ids: Vec<String> = (0..IDS).map(|number| format!("T11-{number:08}")).collect();
    let mut group = criterion.benchmark_group("claims");
    group.sample_size(10);
    group.throughput(Throughput::Elements(IDS as u64));
    group.bench_function("claim_fresh_ids_into_an_empty_table", |bencher| {
        bencher.iter_custom(|iterations| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iterations {
                let claims = Claims::default();
                let mut keys: Vec<_> = ids.iter().map(|id| claims.key(id)).collect();
                let start = Instant::now();
                for key in &mut keys {
                    black_box(claims.claim(key, ZoneId(0)));
                }
                elapsed += start.elapsed();
            }
            elapsed
        });
    });
    group.finish();
}

criterion_group!(benches, bench_zone, bench_claims);
criterion_main!(benches);
