//! What a zone writes to its journal, and how replaying it rebuilds the zone.
//!
//! Every state change of a zone is one record ([`crate::journal`] frames, checksums and
//! syncs them; the payloads are defined here):
//!
//! | kind | payload | replay |
//! |---|---|---|
//! | [`KIND_DECISION_BINARY`] | content hash (8 bytes, little-endian), then the decision in binary with names ([`encode_decision_record`]) | reserve its shipments, count them against the day of `decided_at`, keep the record, claim its id |
//! | [`KIND_CLOSED`] | 1 (cancelled) or 2 (shipped), then the order id | cancel or ship that order's record again |
//! | [`KIND_STOCK`] | `{"warehouse":..,"sku":..,"on_hand":..}` | set the level |
//!
//! A decision is journaled in binary, about a quarter of its contract JSON: a quarter of the
//! bytes to checksum, write and sync on the hot path, and several times faster to read back
//! at a restart. `journal dump` prints it as JSON. Names,
//! not interned indexes, are written, so a journal outlives a reordered catalogue; a name
//! the current config or catalogue does not know stops the start with the record's
//! position. Floats are written exactly (the JSON rounds them).
//!
//! Replay is exact because reserving is a function of the decision alone: the shipments say
//! which units and which warehouse, carrier and day they count against. Each replayed
//! decision and close must take the `seq` it took when it was made (checked), so the
//! records of a zone and its sequence agree after a restart.

use crate::catalog::{Catalog, StockLevel};
use crate::config::Network;
use crate::ids::{CarrierId, SkuId, WarehouseId, ZoneId};
use crate::model::{Decision, LineQuantity, Reason, ReasonCode, ServiceLevel, Shipment, Status};
use crate::shard::{Lifecycle, ZoneState};
use crate::time::Millis;
use crate::zone::Claims;
use smallvec::SmallVec;

// Kind 1 is not used: it held decisions as JSON in development builds that never landed.
/// A new decision, binary ([`encode_decision_record`]): what the service writes.
pub const KIND_DECISION_BINARY: u8 = 4;
/// A cancel or a shipment of a recorded order.
pub const KIND_CLOSED: u8 = 2;
/// An absolute stock level.
pub const KIND_STOCK: u8 = 3;

/// Appends a binary decision record's payload: `content_hash`, then the decision:
///
/// ```text
/// order_id:str status:u8 zone:str seq:u64 decided_at:i64
/// shipments:u8 (warehouse:str carrier:str level:u8 distance_km:f64 weight_kg:f64
///               cost:f64 eta:i64 lines)*
/// backordered:lines  reason:u8 (0 none, else code+1 then message:str)
/// lines = count:u16 (sku:str qty:u32)*      str = len:u16 then UTF-8
/// ```
pub fn encode_decision_record(
    out: &mut Vec<u8>,
    content_hash: u64,
    decision: &Decision,
    network: &Network,
    catalog: &Catalog,
) {
    fn text(out: &mut Vec<u8>, text: &str) {
        out.extend_from_slice(&(text.len() as u16).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
    }
    fn lines(out: &mut Vec<u8>, lines: &[LineQuantity], catalog: &Catalog) {
        out.extend_from_slice(&(lines.len() as u16).to_le_bytes());
        for line in lines {
            text(out, catalog.sku_name(line.sku));
            out.extend_from_slice(&line.quantity.to_le_bytes());
        }
    }
    out.extend_from_slice(&content_hash.to_le_bytes());
    text(out, &decision.order_id);
    out.push(
        STATUSES
            .iter()
            .position(|status| *status == decision.status)
            .expect("a status") as u8,
    );
    text(out, network.zone_name(decision.zone));
    out.extend_from_slice(&decision.seq.to_le_bytes());
    out.extend_from_slice(&decision.decided_at.0.to_le_bytes());
    out.push(decision.shipments.len() as u8);
    for shipment in &decision.shipments {
        text(out, network.warehouse_name(shipment.warehouse));
        text(out, network.carrier_name(shipment.carrier));
        out.push(
            LEVELS
                .iter()
                .position(|level| *level == shipment.level)
                .expect("a level") as u8,
        );
        for value in [shipment.distance_km, shipment.weight_kg, shipment.cost] {
            out.extend_from_slice(&value.to_le_bytes());
        }
        out.extend_from_slice(&shipment.eta.0.to_le_bytes());
        lines(out, &shipment.lines, catalog);
    }
    lines(out, &decision.backordered, catalog);
    match &decision.reason {
        None => out.push(0),
        Some(reason) => {
            out.push(
                REASONS
                    .iter()
                    .position(|code| *code == reason.code)
                    .expect("a code") as u8
                    + 1,
            );
            text(out, &reason.message);
        }
    }
}

const STATUSES: [Status; 4] = [
    Status::Routed,
    Status::Backordered,
    Status::Held,
    Status::Rejected,
];
const LEVELS: [ServiceLevel; 4] = [
    ServiceLevel::Economy,
    ServiceLevel::Standard,
    ServiceLevel::Express,
    ServiceLevel::SameDay,
];
const REASONS: [ReasonCode; 6] = [
    ReasonCode::NoStock,
    ReasonCode::NoCarrier,
    ReasonCode::PromiseUnmeetable,
    ReasonCode::Capacity,
    ReasonCode::ServiceUnavailable,
    ReasonCode::Review,
];

/// A binary decision as names and numbers, before they are resolved against a config.
struct RawDecision<'a> {
    order_id: &'a str,
    status: Status,
    zone: &'a str,
    seq: u64,
    decided_at: i64,
    shipments: Vec<RawShipment<'a>>,
    backordered: Vec<(&'a str, u32)>,
    reason: Option<(ReasonCode, &'a str)>,
}

struct RawShipment<'a> {
    warehouse: &'a str,
    carrier: &'a str,
    level: ServiceLevel,
    numbers: [f64; 3],
    eta: i64,
    lines: Vec<(&'a str, u32)>,
}

/// Reads what [`encode_decision_record`] wrote after the content hash.
fn read_decision_record(bytes: &[u8]) -> Result<RawDecision<'_>, ReplayError> {
    let mut reader = Bytes(bytes);
    let order_id = reader.text()?;
    let status = *STATUSES
        .get(reader.u8()? as usize)
        .ok_or_else(|| bad("unknown status"))?;
    let zone = reader.text()?;
    let seq = reader.u64()?;
    let decided_at = reader.u64()? as i64;
    let mut shipments = Vec::new();
    for _ in 0..reader.u8()? {
        let warehouse = reader.text()?;
        let carrier = reader.text()?;
        let level = *LEVELS
            .get(reader.u8()? as usize)
            .ok_or_else(|| bad("unknown service level"))?;
        let numbers = [reader.f64()?, reader.f64()?, reader.f64()?];
        let eta = reader.u64()? as i64;
        let lines = reader.lines()?;
        shipments.push(RawShipment {
            warehouse,
            carrier,
            level,
            numbers,
            eta,
            lines,
        });
    }
    let backordered = reader.lines()?;
    let reason = match reader.u8()? {
        0 => None,
        code => Some((
            *REASONS
                .get(code as usize - 1)
                .ok_or_else(|| bad("unknown reason code"))?,
            reader.text()?,
        )),
    };
    if !reader.0.is_empty() {
        return Err(bad("bytes after a decision record"));
    }
    Ok(RawDecision {
        order_id,
        status,
        zone,
        seq,
        decided_at,
        shipments,
        backordered,
        reason,
    })
}

/// A little-endian reader of record bytes.
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], ReplayError> {
        if self.0.len() < count {
            return Err(bad("a record that ends early"));
        }
        let (head, rest) = self.0.split_at(count);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, ReplayError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, ReplayError> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    fn u32(&mut self) -> Result<u32, ReplayError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, ReplayError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn f64(&mut self) -> Result<f64, ReplayError> {
        Ok(f64::from_bits(self.u64()?))
    }
    fn text(&mut self) -> Result<&'a str, ReplayError> {
        let count = self.u16()? as usize;
        std::str::from_utf8(self.take(count)?).map_err(|_| bad("a name that is not UTF-8"))
    }
    /// Bytes after a 4-byte length (snapshots).
    fn bytes32(&mut self) -> Result<&'a [u8], ReplayError> {
        let count = self.u32()? as usize;
        self.take(count)
    }
    /// Text after a 4-byte length (snapshots).
    fn text32(&mut self) -> Result<&'a str, ReplayError> {
        std::str::from_utf8(self.bytes32()?).map_err(|_| bad("a name that is not UTF-8"))
    }
    fn lines(&mut self) -> Result<Vec<(&'a str, u32)>, ReplayError> {
        (0..self.u16()?)
            .map(|_| Ok((self.text()?, self.u32()?)))
            .collect()
    }
}

/// A binary decision record, names resolved against `network` and `catalog`.
fn parse_decision_record(
    bytes: &[u8],
    network: &Network,
    catalog: &Catalog,
) -> Result<Decision, ReplayError> {
    let raw = read_decision_record(bytes)?;
    let lines = |lines: &[(&str, u32)]| -> Result<SmallVec<[LineQuantity; 2]>, ReplayError> {
        lines
            .iter()
            .map(|(name, quantity)| {
                Ok(LineQuantity {
                    sku: sku(catalog, name)?,
                    quantity: *quantity,
                })
            })
            .collect()
    };
    let mut shipments = SmallVec::new();
    for shipment in &raw.shipments {
        shipments.push(Shipment {
            warehouse: warehouse(network, shipment.warehouse)?,
            carrier: carrier(network, shipment.carrier)?,
            level: shipment.level,
            lines: lines(&shipment.lines)?,
            distance_km: shipment.numbers[0],
            weight_kg: shipment.numbers[1],
            cost: shipment.numbers[2],
            eta: Millis(shipment.eta),
        });
    }
    Ok(Decision {
        order_id: raw.order_id.into(),
        status: raw.status,
        zone: zone(network, raw.zone)?,
        seq: raw.seq,
        decided_at: Millis(raw.decided_at),
        shipments,
        backordered: lines(&raw.backordered)?.into_iter().collect(),
        reason: raw.reason.map(|(code, message)| {
            Box::new(Reason {
                code,
                message: message.to_owned(),
            })
        }),
    })
}

fn zone(network: &Network, name: &str) -> Result<ZoneId, ReplayError> {
    network
        .zone_ids
        .get(name)
        .map(|index| ZoneId(index as u16))
        .ok_or_else(|| bad(format!("zone '{name}' is not in the config")))
}

fn carrier(network: &Network, name: &str) -> Result<CarrierId, ReplayError> {
    network
        .carrier_ids
        .get(name)
        .map(|index| CarrierId(index as u16))
        .ok_or_else(|| bad(format!("carrier '{name}' is not in the config")))
}

/// Appends a close record's payload. The order is named by its id, not its slot: slots are
/// positions in memory, which a snapshot that leaves old records out would renumber.
pub fn encode_closed(out: &mut Vec<u8>, order_id: &str, end: Lifecycle) {
    out.push(match end {
        Lifecycle::Shipped => 2,
        _ => 1,
    });
    out.extend_from_slice(order_id.as_bytes());
}

/// Appends a stock record's payload.
pub fn encode_stock(out: &mut Vec<u8>, network: &Network, catalog: &Catalog, level: StockLevel) {
    let row = serde_json::json!({
        "warehouse": network.warehouse_name(level.warehouse),
        "sku": catalog.sku_name(level.sku),
        "on_hand": level.on_hand,
    });
    serde_json::to_writer(out, &row).expect("JSON into a Vec");
}

/// One record for people (`order-router journal dump`): its kind's name and its content as
/// JSON. Needs no config: decisions and stock levels are JSON already, and carry names.
pub fn describe(kind: u8, payload: &[u8]) -> serde_json::Value {
    use serde_json::json;
    let json = |bytes: &[u8]| {
        serde_json::from_slice::<serde_json::Value>(bytes)
            .unwrap_or_else(|_| json!({"unreadable": String::from_utf8_lossy(bytes)}))
    };
    match (kind, payload) {
        (KIND_DECISION_BINARY, payload) if payload.len() >= 8 => {
            let (hash, body) = payload.split_at(8);
            let hash = u64::from_le_bytes(hash.try_into().expect("8 bytes"));
            match read_decision_record(body) {
                Ok(raw) => json!({
                    "kind": "decision",
                    "content_hash": format!("{hash:016x}"),
                    "decision": {
                        "order_id": raw.order_id,
                        "status": raw.status.name(),
                        "zone": raw.zone,
                        "seq": raw.seq,
                        "decided_at": Millis(raw.decided_at).to_string(),
                        "shipments": raw.shipments.iter().map(|shipment| json!({
                            "warehouse": shipment.warehouse,
                            "carrier": shipment.carrier,
                            "service": shipment.level.name(),
                            "lines": shipment.lines.iter().map(|(sku, qty)| json!({"sku": sku, "qty": qty})).collect::<Vec<_>>(),
                            "distance_km": shipment.numbers[0],
                            "weight_kg": shipment.numbers[1],
                            "cost": shipment.numbers[2],
                            "eta": Millis(shipment.eta).to_string(),
                        })).collect::<Vec<_>>(),
                        "backordered": raw.backordered.iter().map(|(sku, qty)| json!({"sku": sku, "qty": qty})).collect::<Vec<_>>(),
                        "reason": raw.reason.map(|(code, message)| json!({"code": code.name(), "message": message})),
                    },
                }),
                Err(why) => json!({"kind": "decision", "unreadable": why.to_string()}),
            }
        }
        (KIND_CLOSED, [end, id @ ..]) => json!({
            "kind": if *end == 2 { "shipped" } else { "cancelled" },
            "order_id": String::from_utf8_lossy(id),
        }),
        (KIND_STOCK, payload) => json!({"kind": "stock", "level": json(payload)}),
        (kind, payload) => json!({"kind": kind, "bytes": payload.len()}),
    }
}

/// Why a record could not be replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{0}")]
    Bad(String),
}

fn bad(why: impl Into<String>) -> ReplayError {
    ReplayError::Bad(why.into())
}

/// Applies one journal record to `state` (and, for decisions, to `claims`).
pub fn replay(
    state: &mut ZoneState,
    claims: &Claims,
    network: &Network,
    catalog: &Catalog,
    kind: u8,
    payload: &[u8],
) -> Result<(), ReplayError> {
    match kind {
        KIND_DECISION_BINARY => {
            let (hash, body) = payload
                .split_first_chunk::<8>()
                .ok_or_else(|| bad("a decision record shorter than its content hash"))?;
            let content_hash = u64::from_le_bytes(*hash);
            let decision = parse_decision_record(body, network, catalog)?;
            if decision.zone != state.zone {
                return Err(bad(format!(
                    "decision of order '{}' names zone '{}', this journal is zone '{}'",
                    decision.order_id,
                    network.zone_name(decision.zone),
                    network.zone_name(state.zone)
                )));
            }
            let id = decision.order_id.clone();
            let slot = state
                .restore(decision, content_hash)
                .map_err(|why| bad(format!("order '{id}': {why}")))?;
            claims.restore(&id, content_hash, state.zone, slot);
            Ok(())
        }
        KIND_CLOSED => {
            let (end, id) = payload
                .split_first()
                .ok_or_else(|| bad("an empty close record"))?;
            let id =
                std::str::from_utf8(id).map_err(|_| bad("a close record's id is not UTF-8"))?;
            let slot = match claims.get(id) {
                Some(claim) if claim.zone == state.zone && claim.is_decided() => claim.slot,
                _ => {
                    return Err(bad(format!(
                        "a close of order '{id}', which this zone never decided"
                    )));
                }
            };
            let closed = match end {
                1 => state.cancel(slot),
                2 => state.ship(slot),
                _ => return Err(bad("a close record that is neither cancel nor ship")),
            };
            closed
                .map(|_| ())
                .map_err(|why| bad(format!("a close of order '{id}': {why}")))
        }
        KIND_STOCK => {
            let level = parse_stock(payload, network, catalog)?;
            state
                .set_on_hand(level)
                .map_err(|why| bad(format!("a stock level: {why}")))
        }
        other => Err(bad(format!("unknown record kind {other}"))),
    }
}

fn sku(catalog: &Catalog, name: &str) -> Result<SkuId, ReplayError> {
    catalog
        .lookup(name)
        .ok_or_else(|| bad(format!("SKU '{name}' is not in the catalogue")))
}

fn warehouse(network: &Network, name: &str) -> Result<WarehouseId, ReplayError> {
    network
        .warehouse_ids
        .get(name)
        .map(|index| WarehouseId(index as u16))
        .ok_or_else(|| bad(format!("warehouse '{name}' is not in the config")))
}

fn parse_stock(
    payload: &[u8],
    network: &Network,
    catalog: &Catalog,
) -> Result<StockLevel, ReplayError> {
    #[derive(serde::Deserialize)]
    struct Row<'a> {
        warehouse: &'a str,
        sku: &'a str,
        on_hand: u32,
    }
    let row: Row =
        serde_json::from_slice(payload).map_err(|why| bad(format!("a stock record: {why}")))?;
    Ok(StockLevel {
        warehouse: warehouse(network, row.warehouse)?,
        sku: sku(catalog, row.sku)?,
        on_hand: row.on_hand,
    })
}

/// A zone's whole state, for a journal snapshot: after it, a restart replays only the records
/// that follow. Binary, little-endian, names rather than indexes (like the records):
///
/// ```text
/// "ORZS" version:u8 (2) zone:str next_seq:u64
/// warehouses:u16 (name:str)*           carriers:u16 (name:str)*
/// cells:u32 (local:u16 sku:str on_hand:u32 reserved:u32)*
/// days:u8 (day:i32 orders:u32*warehouses pickups:u32*(warehouses*carriers))*
/// records:u32 (lifecycle:u8 record:bytes)*   (record: as encode_decision_record writes it)
/// str, bytes = len:u32 then the bytes
/// ```
///
/// `keep` chooses the records kept: the idempotency window (a record left out is forgotten,
/// its id free again; its reservations, if any, are in the cells all the same).
pub fn encode_snapshot(
    state: &ZoneState,
    network: &Network,
    catalog: &Catalog,
    mut keep: impl FnMut(&crate::shard::OrderRecord) -> bool,
) -> Vec<u8> {
    fn text(out: &mut Vec<u8>, text: &[u8]) {
        out.extend_from_slice(&(text.len() as u32).to_le_bytes());
        out.extend_from_slice(text);
    }
    let mut out = Vec::with_capacity(64 + state.order_count() * 420);
    out.extend_from_slice(SNAPSHOT_MAGIC);
    out.push(SNAPSHOT_VERSION);
    text(&mut out, network.zone_name(state.zone).as_bytes());
    out.extend_from_slice(&state.next_seq().to_le_bytes());
    out.extend_from_slice(&(state.warehouses().len() as u16).to_le_bytes());
    for warehouse in state.warehouses() {
        text(&mut out, network.warehouse_name(*warehouse).as_bytes());
    }
    out.extend_from_slice(&(network.carriers.len() as u16).to_le_bytes());
    for carrier in 0..network.carriers.len() {
        text(
            &mut out,
            network.carrier_ids.name(carrier as u32).as_bytes(),
        );
    }
    let cells: Vec<_> = state.held_cells().collect();
    out.extend_from_slice(&(cells.len() as u32).to_le_bytes());
    for (local, sku, cell) in cells {
        out.extend_from_slice(&(local as u16).to_le_bytes());
        text(&mut out, catalog.sku_name(sku).as_bytes());
        out.extend_from_slice(&cell.on_hand.to_le_bytes());
        out.extend_from_slice(&cell.reserved.to_le_bytes());
    }
    let days: Vec<_> = state.counted_days().collect();
    out.push(days.len() as u8);
    for (day, orders, pickups) in days {
        out.extend_from_slice(&day.to_le_bytes());
        for count in orders.iter().chain(pickups) {
            out.extend_from_slice(&count.to_le_bytes());
        }
    }
    let count_at = out.len();
    out.extend_from_slice(&0u32.to_le_bytes());
    let mut kept = 0u32;
    let mut encoded = Vec::with_capacity(256);
    for record in state.orders().filter(|record| keep(record)) {
        out.push(match record.lifecycle {
            Lifecycle::Live => 0,
            Lifecycle::Cancelled => 1,
            Lifecycle::Shipped => 2,
        });
        encoded.clear();
        encode_decision_record(
            &mut encoded,
            record.content_hash,
            &record.decision,
            network,
            catalog,
        );
        text(&mut out, &encoded);
        kept += 1;
    }
    out[count_at..count_at + 4].copy_from_slice(&kept.to_le_bytes());
    out
}

const SNAPSHOT_MAGIC: &[u8; 4] = b"ORZS";
const SNAPSHOT_VERSION: u8 = 2;

/// Reads a snapshot written by [`encode_snapshot`] into a new zone state for `zone`, and
/// its records' claims into `claims`.
pub fn restore_snapshot(
    bytes: &[u8],
    network: &Network,
    catalog: &Catalog,
    zone: ZoneId,
    claims: &Claims,
) -> Result<ZoneState, ReplayError> {
    let mut reader = Bytes(bytes);
    if reader.take(4)? != SNAPSHOT_MAGIC || reader.u8()? != SNAPSHOT_VERSION {
        return Err(bad("not a zone snapshot of this version"));
    }
    let name = reader.text32()?;
    if name != network.zone_name(zone) {
        return Err(bad(format!(
            "a snapshot of zone '{name}' in the journal of zone '{}'",
            network.zone_name(zone)
        )));
    }
    let mut state = ZoneState::new(network, zone, catalog.len());
    state.restore_sequence(reader.u64()?);
    // The zone's warehouses and the carriers, by name, must be those of the config.
    let warehouses = reader.u16()? as usize;
    for local in 0..warehouses {
        let name = reader.text32()?;
        if state
            .warehouses()
            .get(local)
            .map(|id| network.warehouse_name(*id))
            != Some(name)
        {
            return Err(bad(format!(
                "the snapshot's warehouse {local} is '{name}', the config's zone differs"
            )));
        }
    }
    let carriers = reader.u16()? as usize;
    for carrier in 0..carriers {
        let name = reader.text32()?;
        if carrier >= network.carriers.len() || network.carrier_ids.name(carrier as u32) != name {
            return Err(bad(format!(
                "the snapshot's carrier {carrier} is '{name}', the config's carriers differ"
            )));
        }
    }
    if warehouses != state.warehouses().len() || carriers != network.carriers.len() {
        return Err(bad(
            "the snapshot's zone has another shape than the config's",
        ));
    }
    for _ in 0..reader.u32()? {
        let local = reader.u16()? as usize;
        let sku = sku(catalog, reader.text32()?)?;
        let cell = crate::shard::StockCell {
            on_hand: reader.u32()?,
            reserved: reader.u32()?,
        };
        state.restore_cell(local, sku, cell).map_err(bad)?;
    }
    for _ in 0..reader.u8()? {
        let day = reader.u32()? as i32;
        let mut counts = |count: usize| {
            (0..count)
                .map(|_| reader.u32())
                .collect::<Result<Vec<_>, _>>()
        };
        let orders = counts(warehouses)?;
        let pickups = counts(warehouses * carriers)?;
        state.restore_day(day, orders, pickups).map_err(bad)?;
    }
    for number in 0..reader.u32()? {
        let at = bytes.len() - reader.0.len();
        let (id, content_hash, slot) = restore_record(&mut reader, network, catalog, &mut state)
            .map_err(|why| bad(format!("snapshot record {number} (byte {at}): {why}")))?;
        claims.restore(&id, content_hash, zone, slot);
    }
    if !reader.0.is_empty() {
        return Err(bad("bytes after the snapshot's last record"));
    }
    Ok(state)
}

/// One record of a snapshot into `state`: its id, content hash and slot, for the claims.
fn restore_record(
    reader: &mut Bytes<'_>,
    network: &Network,
    catalog: &Catalog,
    state: &mut ZoneState,
) -> Result<(compact_str::CompactString, u64, u32), ReplayError> {
    let lifecycle = match reader.u8()? {
        0 => Lifecycle::Live,
        1 => Lifecycle::Cancelled,
        2 => Lifecycle::Shipped,
        other => return Err(bad(format!("unknown lifecycle {other}"))),
    };
    let (hash, body) = reader
        .bytes32()?
        .split_first_chunk::<8>()
        .ok_or_else(|| bad("a snapshot record shorter than its content hash"))?;
    let content_hash = u64::from_le_bytes(*hash);
    let decision = parse_decision_record(body, network, catalog)?;
    let id = decision.order_id.clone();
    let slot = state.restore_record(crate::shard::OrderRecord {
        content_hash,
        decision,
        lifecycle,
    });
    Ok((id, content_hash, slot))
}
