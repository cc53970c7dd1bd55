//! The actor that owns the routing state: the single writer of every zone's stock, daily
//! counters and order records. It runs on an arbiter (a thread) of its own; ingest workers
//! parse on theirs and send it one message per parsed chunk.
//!
//! Today one actor holds all zones (the [`Router`]); splitting it into one actor per zone,
//! with fallbacks passed between them by message, is the next step (see
//! `docs/architecture.md`).

use super::feed::{Append, FeedChunk, FeedLog};
use crate::catalog::StockLevel;
use crate::model::{InvalidCode, Status};
use crate::render;
use crate::route::{Clock, Parsed, RouteSummary, answer_batch};
use crate::router::Router;
use crate::shard::{OrderRecord, ShardError};
use crate::time::Millis;
use actix::{Actor, Addr, Context, Handler, Message, MessageResult};
use std::time::Instant;

/// The routing state as an actor.
pub struct RouterShard {
    router: Router,
    mailbox: usize,
    /// Where new decisions, cancels, shipments and warnings go.
    feed: Addr<FeedLog>,
    /// The cursor of the next feed entry.
    next_cursor: u64,
    /// The UTC day each warehouse was last warned about, and each (warehouse, carrier)
    /// pickup limit, `[warehouse * carriers + carrier]`: one warning a day each.
    warned_orders: Vec<i32>,
    warned_pickups: Vec<i32>,
    /// When utilisation gauges were last set (they are set at most once a second).
    gauges_set: Option<Instant>,
}

impl RouterShard {
    /// `mailbox`: how many messages may wait for it (senders wait beyond that).
    pub fn new(router: Router, mailbox: usize, feed: Addr<FeedLog>) -> Self {
        let network = router.network();
        let warehouses = network.warehouses.len();
        let carriers = network.carriers.len();
        RouterShard {
            router,
            mailbox,
            feed,
            next_cursor: 0,
            warned_orders: vec![i32::MIN; warehouses],
            warned_pickups: vec![i32::MIN; warehouses * carriers],
            gauges_set: None,
        }
    }

    /// Sends the feed entries of one message's work.
    fn publish(&mut self, chunk: FeedChunk) {
        if chunk.is_empty() {
            return;
        }
        self.next_cursor = chunk.end();
        self.feed.do_send(Append(chunk));
    }

    /// Warns (log, counter, feed) about every warehouse or carrier pickup limit that has
    /// passed `alerts.bottleneck_share` of today's capacity and was not warned about today;
    /// sets the utilisation gauges at most once a second. Runs after every decided chunk, so
    /// it reads the day counters in place (no per-chunk allocation) and looks only at the
    /// limits that are set.
    fn check_capacity(&mut self, now: Millis, feed: &mut FeedChunk) {
        let network = self.router.network().clone();
        let day = now.utc_day();
        let share = network.alerts.bottleneck_share;
        let set_gauges = self
            .gauges_set
            .is_none_or(|last| last.elapsed() >= std::time::Duration::from_secs(1));
        if set_gauges {
            self.gauges_set = Some(Instant::now());
        }
        let carriers = network.carriers.len();
        for (index, warehouse) in network.warehouses.iter().enumerate() {
            let id = crate::ids::WarehouseId(index as u16);
            let (zone, local) = self.router.locate(id);
            let name = network.warehouse_ids.name(index as u32);
            if warehouse.daily_orders > 0 {
                let orders = zone.warehouse_orders(local, day);
                let used = f64::from(orders) / f64::from(warehouse.daily_orders);
                if set_gauges {
                    metrics::gauge!("router_warehouse_utilisation", "warehouse" => name.to_owned())
                        .set(used);
                }
                if used >= share && self.warned_orders[index] != day {
                    self.warned_orders[index] = day;
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
                let pickups = zone.pickups(local, crate::ids::CarrierId(carrier_index as u16), day);
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
                let slot = index * carriers + carrier_index;
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

impl Actor for RouterShard {
    type Context = Context<Self>;

    fn started(&mut self, context: &mut Self::Context) {
        context.set_mailbox_capacity(self.mailbox);
    }
}

/// Decide a parsed chunk, in order, under the config snapshot it was parsed with, at the
/// time the shard takes it (so decision times never go backwards within the shard).
/// Sent with `do_send`, so chunks enter the mailbox in the order they were sent and the
/// shard decides an admitted chunk even if its client has gone (the mailbox is bounded by
/// the admission permits the chunks carry).
pub struct DecideBatch {
    pub batch: Vec<Parsed>,
    pub network: std::sync::Arc<crate::config::Network>,
    /// Given back once the chunk is decided.
    pub permit: super::admission::Permit,
    /// Where the answer goes; nobody may be listening any more.
    pub reply: tokio::sync::oneshot::Sender<BatchAnswer>,
    /// When the batch was sent, for the queue-wait histogram.
    pub sent: Instant,
}

/// The answers of a batch: one NDJSON line per parsed line, in order.
pub struct BatchAnswer {
    pub bytes: bytes::Bytes,
    pub summary: RouteSummary,
    /// When the shard finished it (for the `answer` stage: the hop back to the worker).
    pub decided: Instant,
}

impl Message for DecideBatch {
    type Result = ();
}

impl Handler<DecideBatch> for RouterShard {
    type Result = ();

    fn handle(&mut self, message: DecideBatch, _: &mut Self::Context) {
        let started = Instant::now();
        let now = Millis::now();
        metrics::counter!("router_shard_queue_popped_total", "shard" => "all").increment(1);
        metrics::histogram!("router_stage_latency_seconds", "stage" => "queue_wait")
            .record(started.duration_since(message.sent).as_secs_f64());
        let mut batch = message.batch;
        let mut bytes = Vec::with_capacity(batch.len() * 400);
        let mut summary = RouteSummary::default();
        let mut fresh = Vec::new();
        self.router.with_network(&message.network, |router| {
            answer_batch(
                router,
                &mut batch,
                Clock::Fixed(now),
                &mut bytes,
                &mut summary,
                |range| fresh.push(range),
            )
        });
        // The feed shares the answers' bytes.
        let bytes = bytes::Bytes::from(bytes);
        let mut feed = FeedChunk::new(self.next_cursor);
        if !fresh.is_empty() {
            let sliced: usize = fresh.iter().map(|range| range.len()).sum();
            feed.count_backing(bytes.len() - sliced);
        }
        for range in fresh {
            feed.push("decision", bytes.slice(range));
        }
        if summary.routed + summary.backordered + summary.held > 0 {
            self.check_capacity(now, &mut feed);
        }
        self.publish(feed);
        metrics::histogram!("router_stage_latency_seconds", "stage" => "decide")
            .record(started.elapsed().as_secs_f64());
        record_summary(&summary);
        drop(message.permit);
        let _ = message.reply.send(BatchAnswer {
            bytes,
            summary,
            decided: Instant::now(),
        });
    }
}

/// Counts a batch's outcomes, once per batch.
fn record_summary(summary: &RouteSummary) {
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

/// What to do with one known order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderAction {
    Read,
    Cancel,
    Ship,
}

/// Read, cancel or mark shipped order `id`; answers its state as JSON.
pub struct OrderRequest {
    pub id: String,
    pub action: OrderAction,
}

impl Message for OrderRequest {
    type Result = Result<Vec<u8>, ShardError>;
}

impl Handler<OrderRequest> for RouterShard {
    type Result = Result<Vec<u8>, ShardError>;

    fn handle(&mut self, request: OrderRequest, _: &mut Self::Context) -> Self::Result {
        let router = &mut self.router;
        let record = match request.action {
            OrderAction::Read => router
                .order(&request.id)
                .ok_or_else(|| ShardError::UnknownOrder(request.id.clone()))?,
            OrderAction::Cancel => router.cancel(&request.id)?,
            OrderAction::Ship => router.ship(&request.id)?,
        }
        .clone();
        let answer = order_json(router, &record);
        if request.action != OrderAction::Read {
            // The state change goes on the feed: `{"cursor":..,"event":"cancelled",...}`.
            let mut feed = FeedChunk::new(self.next_cursor);
            feed.push(
                record.lifecycle.name(),
                bytes::Bytes::copy_from_slice(&answer),
            );
            self.publish(feed);
        }
        Ok(answer)
    }
}

/// `{"order_id":..,"state":..,"decision":{..}}`.
fn order_json(router: &Router, record: &OrderRecord) -> Vec<u8> {
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
    render::write_decision(
        &mut out,
        &record.decision,
        false,
        router.network(),
        router.catalog(),
    );
    if out.last() == Some(&b'\n') {
        out.pop();
    }
    out.extend_from_slice(b"}\n");
    out
}

/// Stock of one SKU at every warehouse, as JSON; `None` if the SKU is not in the catalogue.
pub struct StockRequest {
    pub sku: String,
}

impl Message for StockRequest {
    type Result = Option<serde_json::Value>;
}

impl Handler<StockRequest> for RouterShard {
    type Result = Option<serde_json::Value>;

    fn handle(&mut self, request: StockRequest, _: &mut Self::Context) -> Self::Result {
        let router = &self.router;
        let sku = router.catalog().lookup(&request.sku)?;
        let network = router.network();
        let cells = router.stock_of(sku);
        let warehouses: Vec<serde_json::Value> = cells
            .iter()
            .map(|(warehouse, cell)| {
                serde_json::json!({
                    "warehouse": network.warehouse_ids.name(warehouse.0.into()),
                    "on_hand": cell.on_hand,
                    "reserved": cell.reserved,
                    "available": cell.available(),
                })
            })
            .collect();
        let totals = cells
            .iter()
            .fold((0u64, 0u64), |(on_hand, reserved), (_, cell)| {
                (
                    on_hand + u64::from(cell.on_hand),
                    reserved + u64::from(cell.reserved),
                )
            });
        Some(serde_json::json!({
            "sku": request.sku,
            "on_hand": totals.0,
            "reserved": totals.1,
            "available": totals.0 - totals.1,
            "warehouses": warehouses,
        }))
    }
}

/// `GET /v1/network`: the network with today's load.
pub struct NetworkRequest {
    pub now: Millis,
}

impl Message for NetworkRequest {
    type Result = serde_json::Value;
}

impl Handler<NetworkRequest> for RouterShard {
    type Result = MessageResult<NetworkRequest>;

    fn handle(&mut self, request: NetworkRequest, _: &mut Self::Context) -> Self::Result {
        let loads = super::views::loads(&self.router, request.now);
        MessageResult(super::views::network(
            self.router.network(),
            &loads,
            request.now,
        ))
    }
}

/// Absolute on-hand levels from the WMS. Each level applies unless it would fall below
/// what is already reserved; the refused ones come back with the reason.
pub struct SetStock {
    pub levels: Vec<StockLevel>,
}

impl Message for SetStock {
    type Result = Vec<(StockLevel, ShardError)>;
}

impl Handler<SetStock> for RouterShard {
    type Result = MessageResult<SetStock>;

    fn handle(&mut self, request: SetStock, _: &mut Self::Context) -> Self::Result {
        let results = self.router.set_stock(&request.levels);
        MessageResult(
            request
                .levels
                .into_iter()
                .zip(results)
                .filter_map(|(level, result)| result.err().map(|error| (level, error)))
                .collect(),
        )
    }
}

/// Every stock cell with units on hand or reserved, as CSV rows
/// `warehouse,sku,on_hand,reserved,available`.
pub struct StockExport;

impl Message for StockExport {
    type Result = Vec<u8>;
}

impl Handler<StockExport> for RouterShard {
    type Result = MessageResult<StockExport>;

    fn handle(&mut self, _: StockExport, _: &mut Self::Context) -> Self::Result {
        let router = &self.router;
        let (network, catalog) = (router.network(), router.catalog());
        let mut out = b"warehouse,sku,on_hand,reserved,available\n".to_vec();
        for index in 0..network.warehouses.len() {
            let id = crate::ids::WarehouseId(index as u16);
            let (zone, local) = router.locate(id);
            for sku in 0..catalog.len() {
                let sku = crate::ids::SkuId(sku as u32);
                let cell = zone.cell(local, sku);
                if cell.on_hand == 0 && cell.reserved == 0 {
                    continue;
                }
                use std::io::Write;
                let _ = writeln!(
                    out,
                    "{},{},{},{},{}",
                    network.warehouse_name(id),
                    catalog.sku_name(sku),
                    cell.on_hand,
                    cell.reserved,
                    cell.available()
                );
            }
        }
        MessageResult(out)
    }
}

/// Makes a new config snapshot the one in force (already checked compatible).
pub struct SetNetwork(pub std::sync::Arc<crate::config::Network>);

impl Message for SetNetwork {
    type Result = ();
}

impl Handler<SetNetwork> for RouterShard {
    type Result = ();

    fn handle(&mut self, message: SetNetwork, _: &mut Self::Context) {
        self.router.set_network(message.0);
    }
}
