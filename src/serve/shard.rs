//! Zone shards: one actor per zone, the single writer of its warehouses' stock, daily
//! counters and order records. Zones are spread over a few arbiters (threads, one per core
//! by default); the HTTP workers parse on theirs.
//!
//! ```text
//! worker: a parsed chunk --one Visits message per home zone--> ZoneShard (home)
//!         ZoneShard: claim, try to place; a zone that cannot --Visits--> next zone of the
//!                    chain ... --> back home to backorder or reject
//!         every ZoneShard that answers a part of the chunk --Part--> the chunk's gatherer
//! worker: the parts, put back in input order --> the client's response
//! ```
//!
//! A chunk's [`Ticket`] (its admission permits and the channel its answers go back on) is
//! shared by every message carrying its orders; the permits come back when the last of them
//! is done, whether or not the client still listens. The journey of one order is
//! [`crate::zone`].

use super::durability::{After, Commit, SnapshotJob, SnapshotStep, Snapshotter};
use super::feed::{FeedChunk, FeedSender};
use crate::catalog::{Catalog, StockLevel};
use crate::config::Network;
use crate::durable;
use crate::ids::{CarrierId, SkuId, WarehouseId, ZoneId};
use crate::model::{InvalidCode, Status};
use crate::render;
use crate::route::RouteSummary;
use crate::shard::{OrderRecord, ShardError, StockCell};
use crate::time::Millis;
use crate::zone::{Claims, Outcome, Step, Visit, Zone};
use actix::{Actor, Addr, AsyncContext, Context, Handler, Message, MessageResult};
use anyhow::Context as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Messages a zone's mailbox holds before senders of requests (not orders) wait. Orders
/// are bounded by the admission permits their chunks carry.
pub const SHARD_MAILBOX: usize = 256;

/// How long a duplicate whose original is not decided yet waits before it looks again.
const FOLLOW_RETRY: Duration = Duration::from_millis(1);

/// Every zone shard, by zone id, and the claims they share.
pub struct Shards {
    zones: Vec<Addr<ZoneShard>>,
    /// `router_shard_queue_pushed_total{shard}` of each zone.
    pushed: Vec<metrics::Counter>,
    pub claims: Arc<Claims>,
}

impl Shards {
    /// Starts one shard per zone of `network`, zones spread over `threads` arbiters (the
    /// busiest zones, by the population of their regions, first, each to the least loaded
    /// arbiter), with the initial `stock`. Returns the shards and the arbiters (stop them
    /// to end the shards).
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        network: &Network,
        catalog: &Arc<Catalog>,
        stock: &[StockLevel],
        threads: usize,
        feed: &FeedSender,
        journals: &super::durability::Journals,
        hold_while: Option<std::path::PathBuf>,
    ) -> anyhow::Result<(Arc<Shards>, Vec<actix::Arbiter>)> {
        let threads = threads.clamp(1, network.zones.len().max(1));
        let placement = place_zones(network, threads);
        let claims = Arc::new(Claims::default());
        let peers: Arc<OnceLock<Arc<Shards>>> = Arc::new(OnceLock::new());
        // Every zone recovers from its journal (or starts from `stock` and journals it)
        // before any shard runs; zones replay in parallel, a thread each.
        let recovered = std::thread::scope(|scope| {
            let replays: Vec<_> = (0..network.zones.len())
                .map(|index| {
                    let zone = ZoneId(index as u16);
                    let claims = &claims;
                    scope.spawn(move || journals.recover(network, catalog, stock, zone, claims))
                })
                .collect();
            replays
                .into_iter()
                .map(|replay| replay.join().expect("a zone's replay panicked"))
                .collect::<anyhow::Result<Vec<_>>>()
        })?;
        let arbiters: Vec<actix::Arbiter> = (0..threads).map(|_| actix::Arbiter::new()).collect();
        // One journal writer per arbiter, for the journals of the zones placed on it.
        let mut states = Vec::with_capacity(recovered.len());
        let mut on_arbiter: Vec<Vec<(usize, String, crate::journal::Journal)>> =
            (0..threads).map(|_| Vec::new()).collect();
        for (index, (state, journal)) in recovered.into_iter().enumerate() {
            states.push(state);
            if let Some(journal) = journal {
                let name = network.zone_ids.name(index as u32).to_owned();
                on_arbiter[placement[index]].push((index, name, journal));
            }
        }
        let mut writers: Vec<Option<super::durability::Writer>> =
            (0..states.len()).map(|_| None).collect();
        let snapshotter = if on_arbiter.iter().any(|journals| !journals.is_empty())
            && journals.snapshot_every > 0
        {
            Some(Snapshotter::start().context("starting the snapshot thread")?)
        } else {
            None
        };
        for (arbiter, journals) in on_arbiter.into_iter().enumerate() {
            if journals.is_empty() {
                continue;
            }
            let zones: Vec<usize> = journals.iter().map(|(zone, _, _)| *zone).collect();
            let handles = super::durability::Writer::start(
                &arbiter.to_string(),
                journals
                    .into_iter()
                    .map(|(_, name, journal)| (name, journal))
                    .collect(),
                feed.clone(),
            )
            .context("starting a journal writer thread")?;
            for (zone, handle) in zones.into_iter().zip(handles) {
                writers[zone] = Some(handle);
            }
        }
        let mut zones = Vec::with_capacity(states.len());
        let mut pushed = Vec::with_capacity(states.len());
        for (index, (state, writer)) in states.into_iter().zip(writers).enumerate() {
            let name = network.zone_ids.name(index as u32).to_owned();
            pushed.push(
                metrics::counter!("router_shard_queue_pushed_total", "shard" => name.clone()),
            );
            let zone = Zone::new(state, catalog.clone(), claims.clone());
            let mut shard = ZoneShard::new(zone, name, network, peers.clone(), feed.clone());
            shard.hold_while = hold_while.clone();
            shard.snapshotter = writer.as_ref().and(snapshotter.clone());
            shard.writer = writer;
            shard.snapshot_every = journals.snapshot_every;
            shard.retention = journals.retention;
            let arbiter = &arbiters[placement[index]];
            zones.push(ZoneShard::start_in_arbiter(&arbiter.handle(), move |_| {
                shard
            }));
        }
        let shards = Arc::new(Shards {
            zones,
            pushed,
            claims,
        });
        // Set before any order can be sent: the shards read it only while handling one.
        let _ = peers.set(shards.clone());
        Ok((shards, arbiters))
    }

    pub fn len(&self) -> usize {
        self.zones.len()
    }

    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }

    pub fn zone(&self, zone: ZoneId) -> &Addr<ZoneShard> {
        &self.zones[zone.index()]
    }

    pub fn all(&self) -> &[Addr<ZoneShard>] {
        &self.zones
    }

    /// Hands orders to `zone`: never waits (the chunk's permits bound them).
    pub fn send(&self, zone: ZoneId, visits: Visits) {
        self.pushed[zone.index()].increment(1);
        self.zones[zone.index()].do_send(visits);
    }
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

/// Where a chunk's answers gather. Zones push their parts onto a lock-free queue (a
/// `crossbeam` `SegQueue`) and count down the lines still missing; only the part that
/// completes the chunk (or the end of its last message) wakes the worker, so a chunk split
/// over seven zones costs the worker one wake-up, not seven.
pub struct Answers {
    parts: crossbeam::queue::SegQueue<Part>,
    /// Lines of the chunk not yet answered by a zone.
    missing: AtomicUsize,
    /// Set when every message of the chunk is done (the ticket is dropped): nothing more
    /// will come, even if lines are missing (a stopped shard dropped them).
    closed: AtomicBool,
    done: tokio::sync::Notify,
}

impl Answers {
    pub fn new(missing: usize) -> Arc<Answers> {
        Arc::new(Answers {
            parts: crossbeam::queue::SegQueue::new(),
            missing: AtomicUsize::new(missing),
            closed: AtomicBool::new(false),
            done: tokio::sync::Notify::new(),
        })
    }

    /// Hands over one part; wakes the worker if it completes the chunk.
    fn deliver(&self, part: Part) {
        let lines = part.slots.len();
        self.parts.push(part);
        if self.missing.fetch_sub(lines, Ordering::AcqRel) == lines {
            self.done.notify_one();
        }
    }

    /// Waits until every line is answered or nothing more can come; then the parts.
    pub async fn gather(&self) -> Vec<Part> {
        while self.missing.load(Ordering::Acquire) > 0 && !self.closed.load(Ordering::Acquire) {
            // A notification sent between the check and this wait is kept (`notify_one`
            // stores a permit), so none is lost.
            self.done.notified().await;
        }
        std::iter::from_fn(|| self.parts.pop()).collect()
    }
}

/// What a chunk's messages share: its permits and where its answers go. Dropped (permits
/// back, the gatherer told) when the last message carrying its orders is done.
pub struct Ticket {
    _permit: super::admission::Permit,
    answers: Arc<Answers>,
}

impl Ticket {
    pub fn new(permit: super::admission::Permit, answers: Arc<Answers>) -> Arc<Ticket> {
        Arc::new(Ticket {
            _permit: permit,
            answers,
        })
    }
}

impl Ticket {
    /// Hands over one part of the chunk's answers.
    pub fn deliver(&self, part: Part) {
        self.answers.deliver(part);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.answers.closed.store(true, Ordering::Release);
        self.answers.done.notify_one();
    }
}

/// Some answers of a chunk, made by one zone (or by the worker, for `invalid` lines).
pub struct Part {
    /// The answers, one JSON line each.
    pub bytes: bytes::Bytes,
    /// `(index in the chunk, start, end)` of each answer in `bytes`.
    pub slots: Vec<(u32, u32, u32)>,
    pub summary: RouteSummary,
    /// When it was made (for the `answer` stage: the hop back to the worker).
    pub made: Instant,
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
pub struct ZoneShard {
    zone: Zone,
    /// Every shard (set once all are started), to pass orders on.
    peers: Arc<OnceLock<Arc<Shards>>>,
    /// Where new decisions, cancels, shipments and warnings go.
    feed: FeedSender,
    popped: metrics::Counter,
    /// The UTC day each local warehouse was last warned about, and each (local warehouse,
    /// carrier) pickup limit, `[local * carriers + carrier]`: one warning a day each.
    warned_orders: Vec<i32>,
    warned_pickups: Vec<i32>,
    /// When utilisation gauges were last set (at most once a second).
    gauges_set: Option<Instant>,
    /// Fault injection: hold every message of orders while this file exists.
    hold_while: Option<std::path::PathBuf>,
    /// The zone's journal writer; `None` when nothing is journaled (`--sync none`).
    writer: Option<super::durability::Writer>,
    /// Where the zone's snapshots are encoded and written (with the writer).
    snapshotter: Option<Snapshotter>,
    /// Records handed to the writer since the last snapshot, and the snapshot policy.
    since_snapshot: u64,
    snapshot_every: u64,
    retention: Duration,
}

impl ZoneShard {
    fn new(
        zone: Zone,
        name: String,
        network: &Network,
        peers: Arc<OnceLock<Arc<Shards>>>,
        feed: FeedSender,
    ) -> ZoneShard {
        let warehouses = zone.state().warehouses().len();
        let carriers = network.carriers.len();
        ZoneShard {
            zone,
            peers,
            feed,
            popped: metrics::counter!("router_shard_queue_popped_total", "shard" => name),
            warned_orders: vec![i32::MIN; warehouses],
            warned_pickups: vec![i32::MIN; warehouses * carriers],
            gauges_set: None,
            hold_while: None,
            writer: None,
            snapshotter: None,
            since_snapshot: 0,
            snapshot_every: 0,
            retention: Duration::ZERO,
        }
    }

    fn peers(&self) -> &Shards {
        self.peers
            .get()
            .expect("the shards are all started before orders arrive")
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
                    metrics::gauge!("router_warehouse_utilisation", "warehouse" => name.to_owned())
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
                        "router_carrier_pickup_utilisation",
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
    metrics::counter!("router_bottleneck_warnings_total", "kind" => kind.to_owned()).increment(1);
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

impl Actor for ZoneShard {
    type Context = Context<Self>;

    fn started(&mut self, context: &mut Self::Context) {
        context.set_mailbox_capacity(SHARD_MAILBOX);
    }
}

/// How many orders ahead the stock cells are prefetched (as in `route`).
const PREFETCH_AHEAD: usize = 4;

impl Handler<Visits> for ZoneShard {
    type Result = ();

    fn handle(&mut self, message: Visits, context: &mut Self::Context) {
        if let Some(file) = &self.hold_while {
            // Blocks the zone's thread, as a stalled shard would.
            while file.exists() {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let started = Instant::now();
        let now = Millis::now();
        self.popped.increment(1);
        metrics::histogram!("router_stage_latency_seconds", "stage" => "queue_wait")
            .record(started.duration_since(message.sent).as_secs_f64());
        let Visits {
            network,
            ticket,
            visits,
            ..
        } = message;
        // About 400 bytes an answer; a forwarded handful must not get a whole chunk's room.
        let mut out = Vec::with_capacity(visits.len() * 400);
        let mut slots = Vec::with_capacity(visits.len());
        let mut summary = RouteSummary::default();
        let mut fresh = Vec::new();
        let mut forwards: Vec<(ZoneId, Vec<Visit>)> = Vec::new();
        let mut waiting = Vec::new();
        for visit in visits.iter().take(PREFETCH_AHEAD) {
            self.zone.prefetch(&visit.order);
        }
        let mut visits = visits.into_iter();
        while let Some(visit) = visits.next() {
            if let Some(ahead) = visits.as_slice().get(PREFETCH_AHEAD - 1) {
                self.zone.prefetch(&ahead.order);
            }
            let (index, start) = (visit.index, out.len());
            match self.zone.visit(&network, visit, now, &mut out) {
                Step::Answered(outcome) => {
                    summary.lines += 1;
                    match outcome {
                        Outcome::Decided(status, slot) => {
                            summary.count_decision(status);
                            fresh.push((start..out.len(), slot));
                        }
                        Outcome::Duplicate => summary.duplicates += 1,
                        Outcome::Invalid(code) => summary.count_invalid(code),
                    }
                    slots.push((index, start as u32, out.len() as u32));
                }
                Step::Forward(to, visit) => match forwards.iter_mut().find(|(zone, _)| *zone == to)
                {
                    Some((_, visits)) => visits.push(visit),
                    None => forwards.push((to, vec![visit])),
                },
                Step::Wait(visit) => waiting.push(visit),
            }
        }
        // The journal gets each new decision as a binary record.
        let mut commit = self.writer.as_ref().map(|writer| Commit {
            snapshot: None,
            journal: writer.journal(),
            payloads: Vec::with_capacity(fresh.len() * 128),
            records: Vec::with_capacity(fresh.len()),
            after: After::Ack {
                feed: FeedChunk::new(),
                done: tokio::sync::oneshot::channel().0,
            },
        });
        if let Some(commit) = commit.as_mut() {
            let (state, catalog) = (self.zone.state(), self.zone.catalog());
            for (_, slot) in &fresh {
                let record = state.order(*slot);
                let start = commit.payloads.len() as u32;
                durable::encode_decision_record(
                    &mut commit.payloads,
                    record.content_hash,
                    &record.decision,
                    &network,
                    catalog,
                );
                let end = commit.payloads.len() as u32;
                commit
                    .records
                    .push((durable::KIND_DECISION_BINARY, start, end));
            }
        }
        let bytes = bytes::Bytes::from(out);
        // The feed shares the answers' bytes; what the slices keep alive counts too.
        let mut feed = FeedChunk::new();
        if !fresh.is_empty() {
            let sliced: usize = fresh.iter().map(|(range, _)| range.len()).sum();
            feed.count_backing(bytes.len() - sliced);
        }
        for (range, _) in fresh {
            feed.push("decision", bytes.slice(range));
        }
        if summary.routed + summary.backordered + summary.held > 0 {
            self.check_capacity(&network, now, &mut feed);
        }
        let part = (!slots.is_empty()).then(|| Part {
            bytes,
            slots,
            summary,
            made: Instant::now(),
        });
        // A message that answered nothing (it only passed orders on, or waits) has no
        // record and nothing to hold back: it skips the writer. Every answer (a decision,
        // a duplicate, a conflict) rests on a record that may still be in the queue.
        let waits = summary.lines > 0;
        match (commit.filter(|_| waits), &self.writer) {
            // Answers (duplicates and conflicts too: their original may still be in the
            // queue) and feed entries go out once the writer has made the records durable.
            (Some(mut commit), Some(writer)) => {
                self.since_snapshot += commit.records.len() as u64;
                commit.after = After::Answers {
                    ticket: ticket.clone(),
                    part: part.map(Box::new),
                    feed,
                };
                writer.send(commit);
                self.snapshot_if_due(&network);
            }
            _ => {
                self.publish(feed);
                if let Some(part) = part {
                    // Nobody may be listening any more: the chunk is decided all the same.
                    ticket.deliver(part);
                }
            }
        }
        let sent = Instant::now();
        for (to, visits) in forwards {
            self.peers().send(
                to,
                Visits {
                    network: network.clone(),
                    ticket: ticket.clone(),
                    visits,
                    sent,
                },
            );
        }
        if !waiting.is_empty() {
            let again = Visits {
                network: network.clone(),
                ticket: ticket.clone(),
                visits: waiting,
                sent,
            };
            context.notify_later(again, FOLLOW_RETRY);
        }
        metrics::histogram!("router_stage_latency_seconds", "stage" => "decide")
            .record(started.elapsed().as_secs_f64());
    }
}

/// What to do with one known order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderAction {
    Read,
    Cancel,
    Ship,
}

/// Read, cancel or mark shipped the order whose record is in `slot` of this zone; answers
/// its state as JSON.
pub struct OrderRequest {
    pub slot: u32,
    pub action: OrderAction,
    pub network: Arc<Network>,
}

impl Message for OrderRequest {
    type Result = Result<Vec<u8>, ShardError>;
}

impl ZoneShard {
    /// Journals `records` (cut from `payloads`) and publishes `feed` once they are durable;
    /// what to wait on before answering (`None`: nothing is journaled, done already).
    fn make_durable(
        &mut self,
        payloads: Vec<u8>,
        records: Vec<(u8, u32, u32)>,
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
            payloads,
            records,
            after: After::Ack { feed, done },
        });
        // Stock uploads and cancels count towards the replay bound as decisions do.
        self.snapshot_if_due(network);
        Some(durable)
    }
}

impl ZoneShard {
    /// Once enough records have gone to the journal since the last snapshot, hands the
    /// writer a snapshot of the zone (behind those records), keeping the decisions of the
    /// idempotency window and every one that holds reservations. It blocks the zone while
    /// it is encoded (0.67 s for 1M records kept, 1 s for 2.5M, measured): the price of a bounded restart.
    /// A snapshot that could not start now is tried again after a sixteenth of the interval.
    fn put_off_snapshot(&mut self) {
        self.since_snapshot = self.snapshot_every - self.snapshot_every / 16;
    }

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
            payloads: Vec::new(),
            records: Vec::new(),
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

impl Handler<OrderRequest> for ZoneShard {
    type Result = actix::ResponseFuture<Result<Vec<u8>, ShardError>>;

    fn handle(&mut self, request: OrderRequest, _: &mut Self::Context) -> Self::Result {
        let state = self.zone.state_mut();
        let record = match request.action {
            OrderAction::Read => Ok(state.order(request.slot)),
            OrderAction::Cancel => state.cancel(request.slot),
            OrderAction::Ship => state.ship(request.slot),
        }
        .cloned();
        let record = match record {
            Ok(record) => record,
            Err(problem) => return after_durable(None, Err(problem)),
        };
        let answer = order_json(&request.network, self.zone.catalog(), &record);
        if request.action == OrderAction::Read {
            // Answered behind everything the zone has handed its writer: the decision read
            // may have been made a moment ago, and is shown only once it is durable.
            let durable =
                self.make_durable(Vec::new(), Vec::new(), FeedChunk::new(), &request.network);
            return after_durable(durable, Ok(answer));
        }
        // The state change goes into the journal and on the feed:
        // `{"cursor":..,"event":"cancelled",...}`; it is answered once durable.
        let mut feed = FeedChunk::new();
        feed.push(
            record.lifecycle.name(),
            bytes::Bytes::copy_from_slice(&answer),
        );
        let mut payloads = Vec::new();
        durable::encode_closed(&mut payloads, &record.decision.order_id, record.lifecycle);
        let records = vec![(durable::KIND_CLOSED, 0, payloads.len() as u32)];
        let durable = self.make_durable(payloads, records, feed, &request.network);
        after_durable(durable, Ok(answer))
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
    out.extend_from_slice(b"\",\"decision\":");
    render::write_decision(&mut out, &record.decision, false, network, catalog);
    if out.last() == Some(&b'\n') {
        out.pop();
    }
    out.extend_from_slice(b"}\n");
    out
}

/// Stock of one SKU at each of the zone's warehouses.
pub struct StockRequest {
    pub sku: SkuId,
}

impl Message for StockRequest {
    type Result = Vec<(WarehouseId, StockCell)>;
}

impl Handler<StockRequest> for ZoneShard {
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

impl Handler<LoadRequest> for ZoneShard {
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
    type Result = Vec<(usize, StockLevel, ShardError)>;
}

impl Handler<SetStock> for ZoneShard {
    type Result = actix::ResponseFuture<Vec<(usize, StockLevel, ShardError)>>;

    fn handle(&mut self, request: SetStock, _: &mut Self::Context) -> Self::Result {
        let catalog = self.zone.catalog().clone();
        let state = self.zone.state_mut();
        let (mut payloads, mut records, mut refused) = (Vec::new(), Vec::new(), Vec::new());
        for (position, level) in request.levels.into_iter().enumerate() {
            match state.set_on_hand(level) {
                Ok(()) => {
                    let start = payloads.len() as u32;
                    durable::encode_stock(&mut payloads, &request.network, &catalog, level);
                    records.push((durable::KIND_STOCK, start, payloads.len() as u32));
                }
                Err(error) => refused.push((position, level, error)),
            }
        }
        // Answered once the applied levels are durable.
        let durable = self.make_durable(payloads, records, FeedChunk::new(), &request.network);
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

impl Handler<StockExport> for ZoneShard {
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

/// Counts a chunk's outcomes, once per chunk.
pub fn record_summary(summary: &RouteSummary) {
    for (status, count) in [
        (Status::Routed, summary.routed),
        (Status::Backordered, summary.backordered),
        (Status::Held, summary.held),
        (Status::Rejected, summary.rejected),
    ] {
        if count > 0 {
            metrics::counter!("router_orders_decided_total", "status" => status.name())
                .increment(count);
        }
    }
    if summary.duplicates > 0 {
        metrics::counter!("router_orders_duplicate_total").increment(summary.duplicates);
    }
    for (code, count) in InvalidCode::ALL.iter().zip(summary.invalid_by_code) {
        if count > 0 {
            metrics::counter!("router_lines_invalid_total", "code" => code.name()).increment(count);
        }
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
