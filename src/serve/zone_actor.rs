//! Zone actors: one actix actor per zone, the single writer of its warehouses' stock,
//! daily counters and order records. Zones are spread over a few arbiters of their own
//! (threads, one per core by default; the HTTP workers parse on theirs), or seated on the
//! HTTP workers' own threads ([`Seating::Workers`], `--zone-threads 0`), where a chunk's
//! orders for a zone of the same thread reach it without waking another thread.
//!
//! A `Visits` message is a batch of one chunk's orders for one zone. The actor decides it
//! with [`zone::decide()`] (the one batch decision `route` runs too), hands the answers to its
//! journal writer (they go to the chunk's [`Ticket`] once durable), sends the orders it
//! could not place whole to their next zones (one message per zone) and looks at waiting
//! duplicates again a little later. Requests (read, cancel, ship, stock levels, exports,
//! today's load) are messages too, answered behind everything the zone journaled before.
//! The way of a chunk from the worker and back is `super::pipeline`.

use super::admission::Admission;
use super::answers::{Part, Ticket};
use super::feed::{FeedChunk, FeedSender};
use super::group_commit::{After, Commit, Hold, Journals, SnapshotStep, Stopped, Writer};
use super::metrics::{self as router_metrics, Stage, names};
use super::snapshotter::{SnapshotJob, Snapshotter};
use crate::catalog::{Catalog, StockLevel};
use crate::config::Network;
use crate::ids::{CarrierId, SkuId, WarehouseId, ZoneId};
use crate::journal::wal::{self, Wal};
use crate::journal::{Record, SyncMode};
use crate::limits::{CHILL_PENDING, FOLLOW_RETRY, ZONE_MAILBOX};
use crate::render;
use crate::risk::CustomerBook;
use crate::time::Millis;
use crate::world::World;
use crate::zone::ColdStore;
use crate::zone::Lifecycle;
use crate::zone::records::RecordBatch;
use crate::zone::recover;
use crate::zone::{
    self, Approval, Claims, Decided, OrderRecord, StockCell, Visit, Zone, ZoneError, ZoneState,
};
use actix::{Actor, Addr, AsyncContext, Context, Handler, Message, MessageResult};
use anyhow::Context as _;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Every zone actor, by zone id, and the claims they share.
pub struct ZoneActors {
    zones: Vec<Addr<ZoneActor>>,
    /// `router_zone_queue_pushed_total{zone}` of each zone.
    pushed: Vec<metrics::Counter>,
    pub claims: Arc<Claims>,
    /// The risk screen's customers, shared by the zones (and the customers endpoints).
    pub customers: Arc<CustomerBook>,
}

impl ZoneActors {
    /// Starts one actor per zone of `network`, zones spread over the threads `seating` names
    /// (the busiest zones, by the population of their regions, first, each to the least
    /// loaded thread), each zone recovered from its journal or started from `stock`.
    /// Returns the actors and their threads (stop those to end the actors). Seated on the
    /// HTTP workers, the actors run once each worker has taken its seat
    /// ([`ZoneThreads::seats`]); messages sent before wait in their mailboxes.
    pub fn start(
        world: &World,
        seating: Seating,
        feed: &FeedSender,
        journals: &Journals,
        hold_while: Option<std::path::PathBuf>,
        customers: Arc<CustomerBook>,
        admission: &Arc<Admission>,
    ) -> anyhow::Result<(Arc<ZoneActors>, ZoneThreads)> {
        let (network, catalog) = (&*world.network, &world.catalog);
        let threads = seating.threads().clamp(1, network.zones.len().max(1));
        let placement = place_zones(network, threads);
        let claims = Arc::new(Claims::default());
        let recovered = recover_zones(world, journals, &claims)?;
        let arbiters: Vec<actix::Arbiter> = match seating {
            Seating::Threads(_) => (0..threads).map(|_| actix::Arbiter::new()).collect(),
            Seating::Workers(_) => Vec::new(),
        };
        let mut seats: Vec<Vec<Seated>> = match seating {
            Seating::Threads(_) => Vec::new(),
            Seating::Workers(_) => (0..threads).map(|_| Vec::new()).collect(),
        };
        let (states, journals_by_zone): (Vec<_>, Vec<_>) = recovered.into_iter().unzip();
        let (writers, writer_stopped) =
            start_writers(network, journals, journals_by_zone, feed, admission)?;
        let snapshotter = if writers.iter().any(Option::is_some) && journals.snapshot_every > 0 {
            Some(Snapshotter::start().context("starting the snapshot thread")?)
        } else {
            None
        };
        let peers: Arc<OnceLock<Arc<ZoneActors>>> = Arc::new(OnceLock::new());
        let mut zones = Vec::with_capacity(states.len());
        let mut pushed = Vec::with_capacity(states.len());
        for (index, (state, writer)) in states.into_iter().zip(writers).enumerate() {
            let name = network.zone_ids.name(index as u32).to_owned();
            pushed.push(metrics::counter!(names::ZONE_QUEUE_PUSHED, "zone" => name.clone()));
            let zone = Zone::new(state, catalog.clone(), claims.clone(), customers.clone());
            zone.restore_customers();
            let mut actor = ZoneActor::new(zone, name, network, peers.clone(), feed.clone());
            actor.hold_while = hold_while.clone();
            actor.snapshotter = writer.as_ref().and(snapshotter.clone());
            actor.writer = writer;
            actor.snapshot_every = journals.snapshot_every;
            actor.retention = journals.retention;
            if let Some(arbiter) = arbiters.get(placement[index]) {
                zones.push(ZoneActor::start_in_arbiter(&arbiter.handle(), move |_| {
                    actor
                }));
            } else {
                let (sender, receiver) = actix::dev::channel::channel(ZONE_MAILBOX);
                seats[placement[index]].push((receiver, actor));
                zones.push(Addr::new(sender));
            }
        }
        let actors = Arc::new(ZoneActors {
            zones,
            pushed,
            claims,
            customers,
        });
        // Set before any order can be sent: the actors read it only while handling one.
        let _ = peers.set(actors.clone());
        Ok((
            actors,
            ZoneThreads {
                arbiters,
                seats: (!seats.is_empty()).then(|| {
                    Arc::new(ZoneSeats {
                        waiting: std::sync::Mutex::new(seats.into_iter().collect()),
                    })
                }),
                writer: writer_stopped,
                snapshotter,
            },
        ))
    }

    pub fn len(&self) -> usize {
        self.zones.len()
    }

    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }

    pub fn zone(&self, zone: ZoneId) -> &Addr<ZoneActor> {
        &self.zones[zone.index()]
    }

    pub fn all(&self) -> &[Addr<ZoneActor>] {
        &self.zones
    }

    /// Hands orders to `zone`: never waits (the chunk's permits bound them).
    pub fn send(&self, zone: ZoneId, visits: Visits) {
        self.pushed[zone.index()].increment(1);
        self.zones[zone.index()].do_send(visits);
    }
}

/// Every zone recovered from its journal (or started from `stock` and journaled), claims
/// included, before any actor runs; zones replay in parallel, a thread each. Each zone's
/// state and its journal (`None` when nothing is journaled).
fn recover_zones(
    world: &World,
    journals: &Journals,
    claims: &Claims,
) -> anyhow::Result<Vec<(ZoneState, Option<crate::journal::Journal>)>> {
    let (network, catalog, stock) = (&*world.network, &*world.catalog, &world.stock);
    // What the last run's journal writers logged ahead of the zones' journals: each zone
    // adds what its journal lacks, and the logs go once every zone has.
    let wal_root = wal::root(&journals.data_dir);
    let mut tails = if journals.options.mode == SyncMode::None {
        HashMap::new()
    } else {
        wal::read_tails(&wal_root).context("reading the journal writers' write-ahead logs")?
    };
    let mut zone_tails: Vec<Vec<Record>> = (0..network.zones.len())
        .map(|index| {
            tails
                .remove(network.zone_name(ZoneId(index as u16)))
                .unwrap_or_default()
        })
        .collect();
    for (name, tail) in tails {
        fold_unconfigured(journals, &name, tail)?;
    }
    let recovered = std::thread::scope(|scope| {
        let replays: Vec<_> = (0..network.zones.len())
            .map(|index| {
                let zone = ZoneId(index as u16);
                let tail = std::mem::take(&mut zone_tails[index]);
                scope.spawn(move || {
                    let dir = journals.dir(network, zone);
                    let cold_dir = journals.cold_dir(network, zone);
                    let cold =
                        ColdStore::open(&cold_dir, world.network.clone(), world.catalog.clone())
                            .with_context(|| format!("zone {}", network.zone_name(zone)))?;
                    recover::open(
                        &dir,
                        &journals.options,
                        network,
                        catalog,
                        stock,
                        recover::Target {
                            zone,
                            claims,
                            cold: Some(cold),
                        },
                        tail,
                    )
                    .map_err(anyhow::Error::from)
                })
            })
            .collect();
        replays
            .into_iter()
            .map(|replay| replay.join().expect("a zone's replay panicked"))
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    // An id decided again in another zone once its first record had left with the window
    // is claimed by both zones' records when the first zone replays that record: the later
    // decision keeps the claim, whichever zone recovered last.
    let contests = claims.settle_contests(|claim| {
        let (state, _) = recovered.get(claim.zone.index())?;
        let record = state.order_at(claim.slot)?;
        Some(record.decision.decided_at.0)
    });
    if !contests.is_empty() {
        tracing::info!(
            "{} order id(s) claimed by records of two zones after the restart (decided again after the window): each claimed by its later decision",
            contests.len()
        );
    }
    if journals.options.mode != SyncMode::None {
        wal::retire(&wal_root).context("removing the write-ahead logs once folded")?;
    }
    Ok(recovered)
}

/// Adds a write-ahead log's records of a zone the config no longer has to that zone's
/// journal, so that nothing acknowledged is lost if the zone comes back.
fn fold_unconfigured(journals: &Journals, name: &str, tail: Vec<Record>) -> anyhow::Result<()> {
    let dir = journals.data_dir.join("zones").join(name);
    let (mut journal, _) = crate::journal::Journal::open(&dir, journals.options.clone())
        .with_context(|| format!("opening the journal of zone {name}"))?;
    let folded = wal::fold(&mut journal, tail)
        .with_context(|| format!("adding the write-ahead log's records of zone {name}"))?;
    tracing::warn!(
        "zone {name} is not in the config; its {} records in the write-ahead log were added to its journal in {}",
        folded.len(),
        dir.display()
    );
    Ok(())
}

/// Where the zone actors run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seating {
    /// On this many arbiters of their own (at most one per zone).
    Threads(usize),
    /// On the threads of this many HTTP workers: a worker's chunk reaches the zones seated
    /// on its own thread without a thread switch (orders for the other workers' zones
    /// still cross). Fewer threads to hand orders between on a small machine; a zone's
    /// decisions then share the thread with that worker's connections.
    Workers(usize),
}

impl Seating {
    fn threads(self) -> usize {
        match self {
            Seating::Threads(threads) | Seating::Workers(threads) => threads,
        }
    }
}

/// A zone actor made, not yet running, and the receiving end of its mailbox.
type Seated = (actix::dev::channel::AddressReceiver<ZoneActor>, ZoneActor);

/// Zone actors waiting for the HTTP workers that will run them, a seat (a worker's share of
/// the zones) each.
pub struct ZoneSeats {
    waiting: std::sync::Mutex<std::collections::VecDeque<Vec<Seated>>>,
}

impl ZoneSeats {
    /// Runs the next seat's zone actors on the calling thread's arbiter; an HTTP worker
    /// calls it as it starts (each worker once; a worker started again after a fault finds
    /// no seat left).
    pub fn sit_here(&self) {
        let seat = self
            .waiting
            .lock()
            .expect("no panics while the seats are held")
            .pop_front()
            .unwrap_or_default();
        for (receiver, actor) in seat {
            Context::with_receiver(receiver).run(actor);
        }
    }

    /// Zones whose worker has not started yet.
    fn unseated(&self) -> usize {
        let waiting = self
            .waiting
            .lock()
            .expect("no panics while the seats are held");
        waiting.iter().map(Vec::len).sum()
    }
}

/// The threads of the zone actors and of their journal writer.
pub struct ZoneThreads {
    arbiters: Vec<actix::Arbiter>,
    /// Zones seated on the HTTP workers, until each worker takes its seat.
    seats: Option<Arc<ZoneSeats>>,
    writer: Option<Stopped>,
    /// Stopped with the zones: a snapshot under way would keep the writer running.
    snapshotter: Option<Snapshotter>,
}

impl ZoneThreads {
    /// Where the zone actors run, for the log.
    pub fn describe(&self) -> String {
        match &self.seats {
            Some(_) => "the HTTP workers' threads".to_owned(),
            None => format!("{} threads", self.arbiters.len()),
        }
    }

    /// The zones waiting for the HTTP workers' threads, when they are seated there: each
    /// worker calls [`ZoneSeats::sit_here`] as it starts.
    pub fn seats(&self) -> Option<Arc<ZoneSeats>> {
        self.seats.clone()
    }

    /// Stops the zone actors (and abandons a snapshot under way, which holds a handle on the
    /// writer too), then waits (at most `timeout`) for the journal writer to finish: it
    /// ends once the last handle on it is dropped, after writing and syncing every zone's
    /// journal. Zones seated on the HTTP workers stop with their
    /// workers (the server has stopped before this is called).
    pub fn stop(self, timeout: std::time::Duration) {
        if let Some(seats) = &self.seats {
            let unseated = seats.unseated();
            if unseated > 0 {
                tracing::warn!("{unseated} zones never found an HTTP worker to run on");
            }
        }
        drop(self.seats);
        if let Some(snapshotter) = &self.snapshotter {
            snapshotter.stop();
        }
        for arbiter in self.arbiters {
            arbiter.stop();
        }
        if let Some(writer) = self.writer
            && !writer.wait(timeout)
        {
            tracing::warn!(
                "the journal writer did not finish within {timeout:?}: the zones' journals \
                 may lack records that only its write-ahead log holds; the next start adds them"
            );
        }
    }
}

/// One journal writer thread for the journals of every zone, whatever the arbiter it runs
/// on; each zone's handle to it (`None` for a zone without a journal). One writer rather
/// than one per arbiter: under `--sync fsync` a round costs one write and one `fdatasync`
/// of its write-ahead log for every zone at once, so one writer syncs half as often as two
/// for the same answers, with groups twice the size, and leaves the cores to the zones and
/// the HTTP workers (steady at 20k orders/s on two cores: 4.8 s less system time in 30 s,
/// p50 0.95 ms against 1.08; docs/benchmarks.md).
fn start_writers(
    network: &Network,
    config: &Journals,
    journals: Vec<Option<crate::journal::Journal>>,
    feed: &FeedSender,
    admission: &Arc<Admission>,
) -> anyhow::Result<(Vec<Option<Writer>>, Option<Stopped>)> {
    let mut writers: Vec<Option<Writer>> = (0..journals.len()).map(|_| None).collect();
    let (zones, mut named): (Vec<usize>, Vec<(String, crate::journal::Journal)>) = journals
        .into_iter()
        .enumerate()
        .filter_map(|(index, journal)| {
            let name = network.zone_ids.name(index as u32).to_owned();
            journal.map(|journal| (index, (name, journal)))
        })
        .unzip();
    if named.is_empty() {
        return Ok((writers, None));
    }
    // A writer of several zones syncs one log a round instead of each zone's journal; the
    // log's segments are made ahead, the zones' journals are appended to.
    let wal = if named.len() > 1 && config.options.mode == SyncMode::Fsync {
        for (_, journal) in named.iter_mut() {
            journal.stop_preallocating();
        }
        let dir = wal::root(&config.data_dir).join("0");
        Some(
            Wal::create(&dir, &config.options)
                .context("starting the journal writer's write-ahead log")?
                .with_checkpoint_bytes(config.wal_checkpoint_bytes),
        )
    } else {
        None
    };
    let hold = Hold {
        longest: config.commit_hold,
        admission: admission.clone(),
    };
    let (handles, stopped) = Writer::start("0", named, wal, feed.clone(), hold)
        .context("starting the journal writer thread")?;
    for (zone, handle) in zones.into_iter().zip(handles) {
        writers[zone] = Some(handle);
    }
    Ok((writers, Some(stopped)))
}

/// Which arbiter each zone runs on: the zones with the most people in their regions first,
/// each to the arbiter with the fewest so far (ties: the lower arbiter). Demo traffic, like
/// real traffic, follows population, so this spreads the work better than round robin.
fn place_zones(network: &Network, threads: usize) -> Vec<usize> {
    let mut weight = vec![0.0f64; network.zones.len()];
    for region in &network.regions {
        weight[region.zone.index()] += region.population_millions.max(0.0);
    }
    let mut zones: Vec<usize> = (0..network.zones.len()).collect();
    zones.sort_by(|a, b| weight[*b].total_cmp(&weight[*a]).then(a.cmp(b)));
    let mut load = vec![0.0f64; threads];
    let mut placement = vec![0; network.zones.len()];
    for zone in zones {
        let arbiter = (0..threads)
            .min_by(|a, b| load[*a].total_cmp(&load[*b]).then(a.cmp(b)))
            .expect("at least one arbiter");
        // A zone without population still costs something: count it as a little.
        load[arbiter] += weight[zone].max(0.001);
        placement[zone] = arbiter;
    }
    placement
}

/// Orders of one chunk for one zone, decided under the config snapshot the chunk was parsed
/// with, at the time the zone takes the message.
pub struct Visits {
    pub network: Arc<Network>,
    pub ticket: Arc<Ticket>,
    pub visits: Vec<Visit>,
    /// When it was sent, for the queue-wait histogram.
    pub sent: Instant,
}

impl Message for Visits {
    type Result = ();
}

/// One zone as an actor.
pub struct ZoneActor {
    zone: Zone,
    /// Every zone actor (set once all are started), to pass orders on.
    peers: Arc<OnceLock<Arc<ZoneActors>>>,
    /// Where new decisions, cancels, shipments and warnings go.
    feed: FeedSender,
    popped: metrics::Counter,
    /// Held orders of this zone waiting for review.
    reviews_pending: metrics::Gauge,
    /// How long the oldest of them has waited (set once a second).
    review_age: metrics::Gauge,
    /// The zone's records in memory and on disk (set once a second).
    records_hot: metrics::Gauge,
    records_cold: metrics::Gauge,
    /// The UTC day each local warehouse was last warned about, and each (local warehouse,
    /// carrier) pickup limit, `[local * carriers + carrier]`: one warning a day each.
    warned_orders: Vec<i32>,
    warned_pickups: Vec<i32>,
    /// When utilisation gauges were last set (at most once a second).
    gauges_set: Option<Instant>,
    /// Fault injection: hold every message of orders while this file exists.
    hold_while: Option<std::path::PathBuf>,
    /// The zone's journal writer; `None` when nothing is journaled (`--sync none`).
    writer: Option<Writer>,
    /// Where the zone's snapshots are encoded and written (with the writer).
    snapshotter: Option<Snapshotter>,
    /// Records handed to the writer since the last snapshot, and the snapshot policy.
    since_snapshot: u64,
    snapshot_every: u64,
    /// Whether a snapshot fell due and could not start (the snapshot thread was busy).
    snapshot_put_off: bool,
    retention: Duration,
}

impl ZoneActor {
    fn new(
        zone: Zone,
        name: String,
        network: &Network,
        peers: Arc<OnceLock<Arc<ZoneActors>>>,
        feed: FeedSender,
    ) -> ZoneActor {
        let warehouses = zone.state().warehouses().len();
        let carriers = network.carriers.len();
        let reviews_pending = metrics::gauge!(names::REVIEWS_PENDING, "zone" => name.clone());
        let review_age = metrics::gauge!(names::REVIEW_AGE, "zone" => name.clone());
        let records_hot =
            metrics::gauge!(names::ZONE_RECORDS, "zone" => name.clone(), "kept" => "memory");
        let records_cold =
            metrics::gauge!(names::ZONE_RECORDS, "zone" => name.clone(), "kept" => "disk");
        // Recovered holds are pending from the start; recovered records are kept from it.
        reviews_pending.set(zone.state().reviews_pending() as f64);
        let (kept, cold) = (zone.state().order_count(), zone.state().cold_count());
        records_hot.set(kept.saturating_sub(cold) as f64);
        records_cold.set(cold as f64);
        ZoneActor {
            zone,
            peers,
            feed,
            popped: metrics::counter!(names::ZONE_QUEUE_POPPED, "zone" => name),
            reviews_pending,
            review_age,
            records_hot,
            records_cold,
            warned_orders: vec![i32::MIN; warehouses],
            warned_pickups: vec![i32::MIN; warehouses * carriers],
            gauges_set: None,
            hold_while: None,
            writer: None,
            snapshotter: None,
            since_snapshot: 0,
            snapshot_put_off: false,
            snapshot_every: 0,
            retention: Duration::ZERO,
        }
    }

    fn peers(&self) -> &ZoneActors {
        self.peers
            .get()
            .expect("the zone actors are all started before orders arrive")
    }

    fn publish(&self, chunk: FeedChunk) {
        self.feed.publish(chunk);
    }

    /// Warns (log, counter, feed) about every warehouse of this zone, or carrier pickup
    /// limit at one, that has passed `alerts.bottleneck_share` of today's capacity and was
    /// not warned about today; sets the utilisation gauges at most once a second. Runs
    /// after every message that reserved anything, so it reads the day counters in place.
    fn check_capacity(&mut self, network: &Network, now: Millis, feed: &mut FeedChunk) {
        let day = now.utc_day();
        let share = network.alerts.bottleneck_share;
        let set_gauges = self
            .gauges_set
            .is_none_or(|last| last.elapsed() >= Duration::from_secs(1));
        if set_gauges {
            self.gauges_set = Some(Instant::now());
        }
        let carriers = network.carriers.len();
        let state = self.zone.state();
        for (local, warehouse_id) in state.warehouses().iter().enumerate() {
            let warehouse = &network.warehouses[warehouse_id.index()];
            let name = network.warehouse_name(*warehouse_id);
            if warehouse.daily_orders > 0 {
                let orders = state.warehouse_orders(local, day);
                let used = f64::from(orders) / f64::from(warehouse.daily_orders);
                if set_gauges {
                    metrics::gauge!(names::WAREHOUSE_UTILISATION, "warehouse" => name.to_owned())
                        .set(used);
                }
                if used >= share && self.warned_orders[local] != day {
                    self.warned_orders[local] = day;
                    warn(
                        feed,
                        "warehouse",
                        name,
                        None,
                        orders,
                        warehouse.daily_orders,
                        day,
                    );
                }
            }
            for (carrier_index, carrier) in network.carriers.iter().enumerate() {
                if carrier.daily_pickups == 0 {
                    continue;
                }
                let pickups = state.pickups(local, CarrierId(carrier_index as u16), day);
                let used = f64::from(pickups) / f64::from(carrier.daily_pickups);
                let carrier_name = network.carrier_ids.name(carrier_index as u32);
                if set_gauges && pickups > 0 {
                    metrics::gauge!(
                        names::CARRIER_PICKUP_UTILISATION,
                        "carrier" => carrier_name.to_owned(),
                        "warehouse" => name.to_owned()
                    )
                    .set(used);
                }
                let slot = local * carriers + carrier_index;
                if used >= share && self.warned_pickups[slot] != day {
                    self.warned_pickups[slot] = day;
                    warn(
                        feed,
                        "carrier",
                        carrier_name,
                        Some(name),
                        pickups,
                        carrier.daily_pickups,
                        day,
                    );
                }
            }
        }
    }
}

/// `YYYY-MM-DD` of a UTC day number.
fn utc_date(day: i32) -> String {
    let mut text = Vec::new();
    Millis(i64::from(day) * 86_400_000).write_rfc3339(&mut text);
    String::from_utf8_lossy(&text[..10.min(text.len())]).into_owned()
}

/// One bottleneck warning: logged, counted, and put on the feed.
fn warn(
    feed: &mut FeedChunk,
    kind: &str,
    id: &str,
    warehouse: Option<&str>,
    used: u32,
    capacity: u32,
    day: i32,
) {
    let share = f64::from(used) / f64::from(capacity);
    tracing::warn!(
        "bottleneck: {kind} {id}{} has used {used} of its {capacity} daily {} ({:.0}%)",
        warehouse.map_or(String::new(), |warehouse| format!(" at {warehouse}")),
        if kind == "warehouse" {
            "orders"
        } else {
            "pickups"
        },
        share * 100.0
    );
    metrics::counter!(names::BOTTLENECK_WARNINGS, "kind" => kind.to_owned()).increment(1);
    let fields = serde_json::json!({
        "kind": kind,
        "id": id,
        "warehouse": warehouse,
        "day": utc_date(day),
        "used": used,
        "capacity": capacity,
        "share": (share * 1000.0).round() / 1000.0,
    })
    .to_string();
    feed.push("bottleneck", bytes::Bytes::from(fields));
}

impl Actor for ZoneActor {
    type Context = Context<Self>;

    fn started(&mut self, context: &mut Self::Context) {
        context.set_mailbox_capacity(ZONE_MAILBOX);
    }
}

impl Handler<Visits> for ZoneActor {
    type Result = ();

    /// Decides the message's visits ([`zone::decide()`]), then hands the answers on (through
    /// the journal writer when they rest on records) and passes on what goes on.
    fn handle(&mut self, message: Visits, context: &mut Self::Context) {
        self.hold_while_asked();
        let started = Instant::now();
        let now = Millis::now();
        self.popped.increment(1);
        router_metrics::stage_latency(Stage::QueueWait)
            .record(started.duration_since(message.sent).as_secs_f64());
        let Visits {
            network,
            ticket,
            mut visits,
            ..
        } = message;
        // Room for an answer of up to 512 bytes each (the demo world's average 450): one
        // allocation, never doubled, so the spare room a batch's feed entries keep alive is
        // small (FeedChunk::decisions); a forwarded handful must not get a whole chunk's.
        let mut out = Vec::with_capacity(visits.len() * 512);
        let mut decided = Decided::for_batch(self.writer.is_some(), visits.len());
        zone::decide(
            &mut self.zone,
            &network,
            &mut visits,
            now,
            &mut out,
            &mut decided,
        );
        if decided.tally.held > 0 {
            self.count_reviews();
            self.count_holds(&decided);
        }
        self.hand_on(&network, &ticket, out, &mut decided, now);
        self.pass_on(&network, &ticket, decided.onward(&mut visits), context);
        self.zone.chill_every(CHILL_PENDING);
        router_metrics::stage_latency(Stage::Decide).record(started.elapsed().as_secs_f64());
    }
}

impl ZoneActor {
    /// Counts the new holds of a message by the rule that held them.
    fn count_holds(&self, decided: &Decided) {
        for fresh in &decided.fresh {
            let decision = &self.zone.state().order(fresh.slot).decision;
            if decision.status == crate::model::Status::Held {
                for rule in zone::verdict::hold_rules(decision) {
                    metrics::counter!(names::HOLDS, "rule" => rule.to_owned()).increment(1);
                }
            }
        }
    }

    /// Sets the gauge of held orders waiting for review.
    fn count_reviews(&self) {
        self.reviews_pending
            .set(self.zone.state().reviews_pending() as f64);
    }

    /// Fault injection: blocks the zone's thread while the `hold_while` file exists, as a
    /// stalled zone would.
    fn hold_while_asked(&self) {
        if let Some(file) = &self.hold_while {
            while file.exists() {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// Hands the answers of a decided message to the chunk, and its new decisions to the
    /// feed: through the journal writer once their records are durable when journaling
    /// (duplicates and conflicts too: their original may still be in the writer's queue),
    /// at once otherwise. A message that answered nothing (it only passed orders on, or
    /// waits) has no record and nothing to hold back: it skips the writer.
    fn hand_on(
        &mut self,
        network: &Arc<Network>,
        ticket: &Arc<Ticket>,
        out: Vec<u8>,
        decided: &mut Decided,
        now: Millis,
    ) {
        // The feed keeps these bytes alive for its retention: room no answer took (answers
        // shorter than estimated, visits passed on) is given back, in place (a realloc that
        // shrinks does not copy).
        let mut out = out;
        if out.capacity() - out.len() > out.len() / 8 {
            out.shrink_to_fit();
        }
        let spare = out.capacity() - out.len();
        let bytes = bytes::Bytes::from(out);
        let fresh = decided.fresh.iter().map(|fresh| fresh.answer.clone());
        let mut feed = FeedChunk::decisions(&bytes, spare, fresh);
        if decided.placed_any() {
            self.check_capacity(network, now, &mut feed);
        }
        let part = decided.answered().then(|| Part {
            bytes,
            slots: decided
                .answers
                .iter()
                .map(|answer| (answer.index, answer.start, answer.end))
                .collect(),
            tally: decided.tally,
            made: Instant::now(),
        });
        match (decided.records.take(), &self.writer) {
            (Some(records), Some(writer)) if part.is_some() => {
                self.since_snapshot += records.len() as u64;
                writer.send(Commit {
                    journal: writer.journal(),
                    records,
                    snapshot: None,
                    after: After::Answers {
                        ticket: ticket.clone(),
                        part: part.map(Box::new),
                        feed,
                    },
                });
                self.snapshot_if_due(network);
            }
            _ => {
                self.publish(feed);
                if let Some(part) = part {
                    // Nobody may be listening any more: the chunk is decided all the same.
                    ticket.deliver(part);
                }
            }
        }
    }

    /// Sends the visits that go on to their next zones (one message per zone, in the order
    /// taken) and looks at the waiting ones again a little later.
    fn pass_on(
        &self,
        network: &Arc<Network>,
        ticket: &Arc<Ticket>,
        onward: zone::Onward,
        context: &mut Context<Self>,
    ) {
        let sent = Instant::now();
        let message = |visits| Visits {
            network: network.clone(),
            ticket: ticket.clone(),
            visits,
            sent,
        };
        for (to, visits) in onward.forwards {
            self.peers().send(to, message(visits));
        }
        if !onward.waiting.is_empty() {
            context.notify_later(message(onward.waiting), FOLLOW_RETRY);
        }
    }
}

/// What to do with one known order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderAction {
    Read,
    Cancel,
    Ship,
    /// A held order's approval, by this approver.
    Approve(compact_str::CompactString),
    /// A held order's rejection in review.
    Reject,
}

/// Read, cancel or mark shipped the order whose record is in `slot` of this zone; answers
/// its state as JSON.
pub struct OrderRequest {
    pub slot: u32,
    pub action: OrderAction,
    pub network: Arc<Network>,
}

impl Message for OrderRequest {
    type Result = Result<bytes::Bytes, ZoneError>;
}

impl ZoneActor {
    /// Journals `records` (cut from `payloads`) and publishes `feed` once they are durable;
    /// what to wait on before answering (`None`: nothing is journaled, done already).
    fn make_durable(
        &mut self,
        records: RecordBatch,
        feed: FeedChunk,
        network: &Arc<Network>,
    ) -> Option<tokio::sync::oneshot::Receiver<()>> {
        let Some(writer) = &self.writer else {
            self.publish(feed);
            return None;
        };
        let (done, durable) = tokio::sync::oneshot::channel();
        self.since_snapshot += records.len() as u64;
        writer.send(Commit {
            snapshot: None,
            journal: writer.journal(),
            records,
            after: After::Ack { feed, done },
        });
        // Stock uploads and cancels count towards the replay bound as decisions do.
        self.snapshot_if_due(network);
        Some(durable)
    }
}

impl ZoneActor {
    /// A snapshot that could not start now is tried again after a sixteenth of the interval,
    /// or at the next tick ([`ZoneActor::retry_put_off_snapshot`]), whichever comes first.
    fn put_off_snapshot(&mut self) {
        self.since_snapshot = self.snapshot_every - self.snapshot_every / 16;
        self.snapshot_put_off = true;
    }

    /// Tries a put-off snapshot again, once a second: a zone whose orders stop (the end of
    /// a burst, when every zone's snapshot falls due at once and the snapshot thread writes
    /// one at a time) would otherwise keep a journal tail over `--snapshot-every` records
    /// until its next orders, for a restart to replay (measured in `docs/benchmarks.md`).
    fn retry_put_off_snapshot(&mut self, network: &Arc<Network>) {
        if self.snapshot_put_off {
            self.since_snapshot = self.since_snapshot.max(self.snapshot_every);
            self.snapshot_if_due(network);
        }
    }

    /// Once enough records have gone to the journal since the last snapshot, hands the
    /// snapshot thread a copy of the zone's state (the zone's one stall for a snapshot: the
    /// records' chunks are shared, so about 1 ms for 500,000 orders) and the writer a mark
    /// behind those records; the snapshot keeps the decisions of the idempotency window and
    /// every one that holds reservations, and is encoded and written off this thread.
    fn snapshot_if_due(&mut self, network: &Arc<Network>) {
        let (Some(writer), Some(snapshotter)) = (&self.writer, &self.snapshotter) else {
            return;
        };
        if self.snapshot_every == 0 || self.since_snapshot < self.snapshot_every {
            return;
        }
        let name = network.zone_name(self.zone.id());
        if !snapshotter.is_free() {
            // Another zone's snapshot is being written: try again a little later.
            self.put_off_snapshot();
            tracing::debug!("zone {name}: snapshot put off, the snapshot thread is busy");
            return;
        }
        self.since_snapshot = 0;
        self.snapshot_put_off = false;
        let started = Instant::now();
        // The zone's one stall for a snapshot: a copy of its state, encoded and written on
        // the snapshot thread while the zone goes on.
        let state = self.zone.state().clone();
        let (lsn_to, lsn) = crossbeam::channel::bounded(1);
        let job = SnapshotJob {
            zone: name.to_owned(),
            state,
            network: network.clone(),
            catalog: self.zone.catalog().clone(),
            oldest_kept: Millis::now().0 - self.retention.as_millis() as i64,
            lsn,
            writer: writer.clone(),
        };
        if !snapshotter.submit(job) {
            self.put_off_snapshot();
            return;
        }
        tracing::info!(
            "zone {name}: state of {} orders copied for a snapshot in {:.0?}",
            self.zone.state().order_count(),
            started.elapsed()
        );
        writer.send(Commit {
            journal: writer.journal(),
            records: RecordBatch::default(),
            snapshot: Some(SnapshotStep::Mark(lsn_to)),
            after: After::Ack {
                feed: FeedChunk::new(),
                done: tokio::sync::oneshot::channel().0,
            },
        });
    }
}

/// Waits for a change to be durable, then answers `answer`.
fn after_durable<T: 'static>(
    durable: Option<tokio::sync::oneshot::Receiver<()>>,
    answer: T,
) -> actix::ResponseFuture<T> {
    Box::pin(async move {
        if let Some(durable) = durable {
            // The writer ends the process rather than drop an acknowledgement.
            let _ = durable.await;
        }
        answer
    })
}

impl Handler<OrderRequest> for ZoneActor {
    type Result = actix::ResponseFuture<Result<bytes::Bytes, ZoneError>>;

    fn handle(&mut self, request: OrderRequest, _: &mut Self::Context) -> Self::Result {
        let needed = self.approvals_needed(request.slot, &request.action, &request.network);
        match self.act(request.slot, &request.action, &request.network, needed) {
            Ok((answer, durable)) => after_durable(durable, Ok(answer)),
            // A refusal says what the state is ("already released"): shown, like a read,
            // only behind everything the zone has handed its writer.
            Err(problem) => {
                let durable =
                    self.make_durable(RecordBatch::default(), FeedChunk::new(), &request.network);
                after_durable(durable, Err(problem))
            }
        }
    }
}

/// A durable state change to wait for before answering (`None`: nothing to wait for).
type Durable = Option<tokio::sync::oneshot::Receiver<()>>;

impl ZoneActor {
    /// The distinct approvers that release the order in `slot` when `action` approves it:
    /// the policy's, or more when a risk rule that held the order asks for more. The record
    /// is looked at only for an approval (a shipped order's is on disk: a read each).
    fn approvals_needed(&self, slot: u32, action: &OrderAction, network: &Network) -> usize {
        let policy = network.policy.review_approvals as usize;
        if !matches!(action, OrderAction::Approve(_)) {
            return policy;
        }
        match self.zone.state().order_at(slot) {
            Some(record) => record.approvals_needed(policy),
            None => policy,
        }
    }

    /// Does `action` to the order in `slot` (an approval releasing it with `needed`
    /// distinct approvers): its state's JSON, and what to wait on before showing it. The
    /// state change goes into the journal and (most) on the feed:
    /// `{"cursor":..,"event":"cancelled",...}`. A read, or an approval the approver gave
    /// already, changes nothing: it is shown behind everything the zone has handed its
    /// writer (what it shows may have been made a moment ago, and is shown only once it is
    /// durable).
    fn act(
        &mut self,
        slot: u32,
        action: &OrderAction,
        network: &Arc<Network>,
        needed: usize,
    ) -> Result<(bytes::Bytes, Durable), ZoneError> {
        let mut feed = FeedChunk::new();
        let mut records = RecordBatch::default();
        let (answer, _) = self.apply(slot, action, network, needed, &mut records, &mut feed)?;
        let durable = self.make_durable(records, feed, network);
        self.zone.chill_every(CHILL_PENDING);
        Ok((answer, durable))
    }

    /// [`ZoneActor::act`] without the journal: the change's record goes onto `records` and
    /// its feed entry onto `feed`, for the caller to make durable (one commit for a batch).
    /// The order's state JSON (shared with its feed entry, not copied) and the name of its
    /// state after the action.
    fn apply(
        &mut self,
        slot: u32,
        action: &OrderAction,
        network: &Arc<Network>,
        needed: usize,
        records: &mut RecordBatch,
        feed: &mut FeedChunk,
    ) -> Result<(bytes::Bytes, &'static str), ZoneError> {
        let mut approval = None;
        let closed = |record: &OrderRecord| Cow::Owned(record.clone());
        let record = match action {
            OrderAction::Read => self.zone.state().find(slot),
            OrderAction::Cancel => self.zone.close(slot, Lifecycle::Cancelled).map(closed),
            OrderAction::Ship => self.zone.close(slot, Lifecycle::Shipped).map(closed),
            OrderAction::Reject => self
                .zone
                .close(slot, Lifecycle::RejectedAfterReview)
                .map(closed),
            OrderAction::Approve(approver) => self
                .zone
                .state_mut()
                .approve(slot, approver, needed)
                .map(|(record, counted)| {
                    approval = Some(counted);
                    record
                }),
        }?
        .into_owned();
        if record.decision.status == crate::model::Status::Held {
            self.count_reviews();
            let outcome = match (action, approval) {
                (_, Some(Approval::Released)) => Some("approved"),
                (OrderAction::Reject, _) => Some("rejected"),
                _ => None,
            };
            if let Some(outcome) = outcome {
                metrics::counter!(names::REVIEWS, "outcome" => outcome).increment(1);
            }
        }
        let answer = bytes::Bytes::from(order_json(network, self.zone.catalog(), &record));
        let id = &record.decision.order_id;
        match (action, approval) {
            (OrderAction::Read, _) | (_, Some(Approval::Again)) => {}
            (OrderAction::Approve(approver), Some(counted)) => {
                let released = counted == Approval::Released;
                records.push_approved(id, approver, released);
                if released {
                    feed.push("approved", answer.clone());
                }
            }
            _ => {
                feed.push(record.lifecycle.name(), answer.clone());
                records.push_closed(id, record.lifecycle);
            }
        }
        Ok((answer, record.lifecycle.name()))
    }
}

/// One action (ship or cancel) for many orders of one zone, as `POST /v1/shipments` sends
/// them: each `(position, slot)` is done in turn, all their changes go into the journal as
/// one commit, and the outcomes are answered, by position, once that commit is durable.
pub struct OrderBatch {
    pub items: Vec<(u32, u32)>,
    pub action: OrderAction,
    pub network: Arc<Network>,
}

/// An order's state after a batch's action (`shipped`), or why the action was refused.
pub type BatchOutcome = Result<&'static str, ZoneError>;

impl Message for OrderBatch {
    type Result = Vec<(u32, BatchOutcome)>;
}

impl Handler<OrderBatch> for ZoneActor {
    type Result = actix::ResponseFuture<Vec<(u32, BatchOutcome)>>;

    fn handle(&mut self, batch: OrderBatch, _: &mut Self::Context) -> Self::Result {
        let mut feed = FeedChunk::new();
        let mut records = RecordBatch::default();
        let mut outcomes = Vec::with_capacity(batch.items.len());
        for &(position, slot) in &batch.items {
            let needed = self.approvals_needed(slot, &batch.action, &batch.network);
            let outcome = self
                .apply(
                    slot,
                    &batch.action,
                    &batch.network,
                    needed,
                    &mut records,
                    &mut feed,
                )
                .map(|(_, state)| state);
            outcomes.push((position, outcome));
        }
        // Refusals too are answered only behind what the zone handed its writer, as
        // [`OrderRequest`]'s are.
        let durable = self.make_durable(records, feed, &batch.network);
        self.zone.chill_every(CHILL_PENDING);
        after_durable(durable, outcomes)
    }
}

/// The review clock's tick, sent to every zone once a second: the age of the oldest hold
/// waiting for review goes on its gauge, and holds whose review timed out at `now` under
/// `network`'s policy are rejected or approved (by `review_timeout`), as the policy says.
/// The zone also lets go of what left the idempotency window, and tries again a snapshot
/// it had to put off.
pub struct ReviewClock {
    pub network: Arc<Network>,
    pub now: Millis,
}

impl Message for ReviewClock {
    type Result = ();
}

/// The approver a review timeout approves as.
pub const TIMEOUT_APPROVER: &str = "review_timeout";

impl Handler<ReviewClock> for ZoneActor {
    type Result = ();

    fn handle(&mut self, request: ReviewClock, _: &mut Self::Context) {
        self.review_timeouts(&request);
        self.retry_put_off_snapshot(&request.network);
        // The zone's records of orders closed (and decided) before the window leave.
        let window = i64::try_from(self.retention.as_millis()).unwrap_or(i64::MAX);
        self.zone
            .expire(Millis(request.now.0.saturating_sub(window)));
        self.count_records();
    }
}

impl ZoneActor {
    /// Sets the gauges of the zone's records: kept in memory, kept on disk.
    fn count_records(&self) {
        let state = self.zone.state();
        self.records_cold.set(state.cold_count() as f64);
        self.records_hot
            .set(state.order_count().saturating_sub(state.cold_count()) as f64);
    }

    /// Ages the review queue on its gauge, and decides the holds whose review timed out.
    fn review_timeouts(&mut self, request: &ReviewClock) {
        let oldest = self.zone.state().in_review().next();
        let age = oldest.map_or(0, |record| request.now.0 - record.decision.decided_at.0);
        self.review_age.set(age.max(0) as f64 / 1000.0);
        let policy = &request.network.policy;
        if policy.review_timeout_s == 0 {
            return;
        }
        let deadline = request.now.0 - (policy.review_timeout_s * 1000) as i64;
        let expired: Vec<u32> = self
            .zone
            .state()
            .in_review_slots()
            .filter(|slot| self.zone.state().order(*slot).decision.decided_at.0 <= deadline)
            .collect();
        let approve = OrderAction::Approve(TIMEOUT_APPROVER.into());
        for slot in expired {
            // A timeout approval releases the order, whatever the policy's approvals; but
            // never a hold a risk rule asked several approvers for (two-person approval
            // is not left to a clock): that one is rejected. Journaled and on the feed like
            // any change; nobody waits for it.
            let asks_people = self.zone.state().order(slot).approvals_needed(0) > 1;
            let action = if policy.review_timeout_rejects || asks_people {
                &OrderAction::Reject
            } else {
                &approve
            };
            if let Err(problem) = self.act(slot, action, &request.network, 1) {
                tracing::warn!("review timeout: {problem}");
            }
        }
    }
}

/// `{"order_id":..,"state":..,"decision":{..}}`.
fn order_json(network: &Network, catalog: &Catalog, record: &OrderRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(b"{\"order_id\":");
    out.extend_from_slice(
        serde_json::to_string(record.decision.order_id.as_str())
            .expect("a string serialises")
            .as_bytes(),
    );
    out.extend_from_slice(b",\"state\":\"");
    out.extend_from_slice(record.lifecycle.name().as_bytes());
    out.push(b'"');
    if !record.approvers().is_empty() {
        out.extend_from_slice(b",\"approvers\":");
        let names: Vec<&str> = record
            .approvers()
            .iter()
            .map(|name| name.as_str())
            .collect();
        serde_json::to_writer(&mut out, &names).expect("strings serialise");
    }
    if record.in_review() {
        let needed = record.approvals_needed(network.policy.review_approvals as usize);
        out.extend_from_slice(b",\"approvals_needed\":");
        out.extend_from_slice(itoa::Buffer::new().format(needed).as_bytes());
    }
    out.extend_from_slice(b",\"decision\":");
    render::write_decision(&mut out, &record.decision, false, network, catalog);
    if out.last() == Some(&b'\n') {
        out.pop();
    }
    out.extend_from_slice(b"}\n");
    out
}

/// The held orders of this zone waiting for review, oldest first: each as its decision
/// time and its state's JSON (as `GET /v1/orders/{id}` shows it).
pub struct ReviewsRequest {
    pub network: Arc<Network>,
    /// Only the holds of this rule (`hold_tags`, `hold_order_value_over`), when given.
    pub rule: Option<String>,
}

impl Message for ReviewsRequest {
    type Result = Vec<(Millis, Vec<u8>)>;
}

impl Handler<ReviewsRequest> for ZoneActor {
    type Result = actix::ResponseFuture<Vec<(Millis, Vec<u8>)>>;

    fn handle(&mut self, request: ReviewsRequest, _: &mut Self::Context) -> Self::Result {
        let catalog = self.zone.catalog();
        let held = self
            .zone
            .state()
            .in_review()
            .filter(|record| {
                request
                    .rule
                    .as_deref()
                    .is_none_or(|wanted| zone::verdict::held_by(&record.decision, wanted))
            })
            .map(|record| {
                let json = order_json(&request.network, catalog, record);
                (record.decision.decided_at, json)
            })
            .collect();
        // Shown once durable: a hold made a moment ago is listed behind its record.
        let durable = self.make_durable(RecordBatch::default(), FeedChunk::new(), &request.network);
        after_durable(durable, held)
    }
}

/// Customers given a credit limit while orders are decided: the zone adds up its open
/// orders of each and charges them from now on (`risk::CustomerBook::sync_zone`).
pub struct SyncCustomers {
    pub customers: Arc<[compact_str::CompactString]>,
}

impl Message for SyncCustomers {
    type Result = ();
}

impl Handler<SyncCustomers> for ZoneActor {
    type Result = ();

    fn handle(&mut self, request: SyncCustomers, _: &mut Self::Context) {
        let zone = self.zone.id();
        let book = self.zone.customers().clone();
        // Open orders are in memory: the cold records hold nothing to charge.
        book.sync_zone(zone, &request.customers, self.zone.state().hot_orders());
    }
}

/// Stock of one SKU at each of the zone's warehouses.
pub struct StockRequest {
    pub sku: SkuId,
}

impl Message for StockRequest {
    type Result = Vec<(WarehouseId, StockCell)>;
}

impl Handler<StockRequest> for ZoneActor {
    type Result = MessageResult<StockRequest>;

    fn handle(&mut self, request: StockRequest, _: &mut Self::Context) -> Self::Result {
        let state = self.zone.state();
        MessageResult(
            state
                .warehouses()
                .iter()
                .enumerate()
                .map(|(local, warehouse)| (*warehouse, state.cell(local, request.sku)))
                .collect(),
        )
    }
}

/// Today's load of each of the zone's warehouses.
pub struct LoadRequest {
    pub now: Millis,
    pub carriers: usize,
}

impl Message for LoadRequest {
    type Result = Vec<(WarehouseId, super::views::WarehouseLoad)>;
}

impl Handler<LoadRequest> for ZoneActor {
    type Result = MessageResult<LoadRequest>;

    fn handle(&mut self, request: LoadRequest, _: &mut Self::Context) -> Self::Result {
        MessageResult(super::views::zone_loads(
            self.zone.state(),
            request.carriers,
            request.now,
        ))
    }
}

/// Absolute on-hand levels for the zone's warehouses. Each applies unless it would fall
/// below what is already reserved; the refused ones come back with their position in
/// `levels` and the reason.
pub struct SetStock {
    pub levels: Vec<StockLevel>,
    /// For the names the journal records.
    pub network: Arc<Network>,
}

impl Message for SetStock {
    type Result = Vec<(usize, StockLevel, ZoneError)>;
}

impl Handler<SetStock> for ZoneActor {
    type Result = actix::ResponseFuture<Vec<(usize, StockLevel, ZoneError)>>;

    fn handle(&mut self, request: SetStock, _: &mut Self::Context) -> Self::Result {
        let catalog = self.zone.catalog().clone();
        let state = self.zone.state_mut();
        let (mut records, mut refused) = (RecordBatch::default(), Vec::new());
        for (position, level) in request.levels.into_iter().enumerate() {
            match state.set_on_hand(level) {
                Ok(()) => records.push_stock(&request.network, &catalog, level),
                Err(error) => refused.push((position, level, error)),
            }
        }
        // Answered once the applied levels are durable.
        let durable = self.make_durable(records, FeedChunk::new(), &request.network);
        after_durable(durable, refused)
    }
}

/// Every stock cell of the zone with units on hand or reserved, as CSV rows
/// `warehouse,sku,on_hand,reserved,available`, per warehouse.
pub struct StockExport {
    pub network: Arc<Network>,
}

impl Message for StockExport {
    type Result = Vec<(WarehouseId, Vec<u8>)>;
}

impl Handler<StockExport> for ZoneActor {
    type Result = MessageResult<StockExport>;

    fn handle(&mut self, request: StockExport, _: &mut Self::Context) -> Self::Result {
        use std::io::Write;
        let (state, catalog) = (self.zone.state(), self.zone.catalog());
        let network = &request.network;
        let mut rows = Vec::with_capacity(state.warehouses().len());
        for (local, warehouse) in state.warehouses().iter().enumerate() {
            let mut out = Vec::new();
            for sku in 0..catalog.len() {
                let sku = SkuId(sku as u32);
                let cell = state.cell(local, sku);
                if cell.on_hand == 0 && cell.reserved == 0 {
                    continue;
                }
                let _ = writeln!(
                    out,
                    "{},{},{},{},{}",
                    network.warehouse_name(*warehouse),
                    catalog.sku_name(sku),
                    cell.on_hand,
                    cell.reserved,
                    cell.available()
                );
            }
            rows.push((*warehouse, out));
        }
        MessageResult(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_are_spread_by_population_over_the_arbiters() {
        let network = crate::world::default_network().unwrap();
        let placement = place_zones(&network, 2);
        assert_eq!(placement.len(), network.zones.len());
        let mut load = [0.0f64; 2];
        for region in &network.regions {
            load[placement[region.zone.index()]] += region.population_millions;
        }
        let total = load[0] + load[1];
        // Greedy placement of the demo's seven zones keeps each thread within a third of
        // an even split.
        assert!(
            load.iter().all(|share| (share / total - 0.5).abs() < 0.17),
            "{load:?}"
        );
        assert!(place_zones(&network, 1).iter().all(|arbiter| *arbiter == 0));
    }
}
