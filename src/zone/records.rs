//! What a zone writes to its journal, and how replaying it rebuilds the zone.
//!
//! Every state change of a zone is one record ([`crate::journal`] frames, checksums and
//! syncs them; the payloads are defined here, encoder beside decoder):
//!
//! | kind | payload | replay |
//! |---|---|---|
//! | [`RecordKind::Decision`] (4) | content hash (8 bytes, little-endian), then the decision in binary with names ([`encode_decision`]) | reserve its shipments, count them against the day of `decided_at`, keep the record, claim its id |
//! | [`RecordKind::Closed`] (2) | 1 (cancelled), 2 (shipped) or 3 (rejected after review), then the order id | cancel, ship or reject that order's record again |
//! | [`RecordKind::Approved`] (5) | 1 if it released the order else 0, the approver's length (1 byte) and name, then the order id | count the approval again (releasing the order if it did) |
//! | [`RecordKind::Stock`] (3) | `{"warehouse":..,"sku":..,"on_hand":..}` | set the level |
//!
//! A decision is journaled in binary, about a quarter of its contract JSON: a quarter of the
//! bytes to checksum, write and sync on the hot path, and several times faster to read back
//! at a restart. `journal dump` prints it as JSON. Names, not interned indexes, are written,
//! so a journal outlives a reordered catalogue; a name the current config or catalogue does
//! not know stops the start with the record's position. Floats are written exactly (the
//! JSON rounds them).
//!
//! Replay is exact because reserving is a function of the decision alone: the shipments say
//! which units and which warehouse, carrier and day they count against. Each replayed
//! decision must take the `seq` it took when it was made (checked), so the records of a zone
//! and its sequence agree after a restart.

use super::snapshot::{Copying, push_entry_of_payload};
use super::{Claims, Lifecycle, OrderRecord, ZoneError, ZoneState};
use crate::catalog::{Catalog, StockLevel};
use crate::config::Network;
use crate::ids::{CarrierId, SkuId, WarehouseId, ZoneId};
use crate::model::{
    Decision, LineQuantity, Reason, ReasonCode, RiskHit, ServiceLevel, Shipment, Status,
};
use crate::risk::Buyer;
use crate::time::Millis;
use smallvec::SmallVec;
use std::ops::Range;

/// The kinds of record a zone journals, as the journal stores them (one byte).
///
/// Kind 1 is not used: it held decisions as JSON in development builds that never landed.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// A cancel or a shipment of a recorded order.
    Closed = 2,
    /// An absolute stock level.
    Stock = 3,
    /// A new decision, binary ([`encode_decision`]).
    Decision = 4,
    /// An approval of a held order ([`encode_approved`]).
    Approved = 5,
}

impl RecordKind {
    /// The kind stored as `byte`, if it is one.
    pub fn from_byte(byte: u8) -> Option<RecordKind> {
        match byte {
            2 => Some(RecordKind::Closed),
            3 => Some(RecordKind::Stock),
            4 => Some(RecordKind::Decision),
            5 => Some(RecordKind::Approved),
            _ => None,
        }
    }
}

/// Records for one journal commit: payloads back to back, and each record's kind and place.
/// One allocation per batch, none per record.
#[derive(Debug, Default)]
pub struct RecordBatch {
    payloads: Vec<u8>,
    records: Vec<(RecordKind, Range<u32>)>,
}

impl RecordBatch {
    /// Room for `records` records of about `bytes` bytes in all.
    pub fn with_capacity(records: usize, bytes: usize) -> RecordBatch {
        RecordBatch {
            payloads: Vec::with_capacity(bytes),
            records: Vec::with_capacity(records),
        }
    }

    /// A new decision's record.
    pub fn push_decision(&mut self, record: &OrderRecord, network: &Network, catalog: &Catalog) {
        let start = self.payloads.len();
        encode_decision(&mut self.payloads, record, network, catalog);
        self.close(RecordKind::Decision, start);
    }

    /// A cancel or shipment of order `order_id`.
    pub fn push_closed(&mut self, order_id: &str, end: Lifecycle) {
        let start = self.payloads.len();
        encode_closed(&mut self.payloads, order_id, end);
        self.close(RecordKind::Closed, start);
    }

    /// `approver`'s approval of held order `order_id`, and whether it released the order.
    pub fn push_approved(&mut self, order_id: &str, approver: &str, released: bool) {
        let start = self.payloads.len();
        encode_approved(&mut self.payloads, order_id, approver, released);
        self.close(RecordKind::Approved, start);
    }

    /// An absolute stock level.
    pub fn push_stock(&mut self, network: &Network, catalog: &Catalog, level: StockLevel) {
        let start = self.payloads.len();
        encode_stock(&mut self.payloads, network, catalog, level);
        self.close(RecordKind::Stock, start);
    }

    fn close(&mut self, kind: RecordKind, start: usize) {
        self.records
            .push((kind, start as u32..self.payloads.len() as u32));
    }

    /// Each record's kind and payload, in order.
    pub fn iter(&self) -> impl Iterator<Item = (RecordKind, &[u8])> {
        self.records.iter().map(|(kind, range)| {
            (
                *kind,
                &self.payloads[range.start as usize..range.end as usize],
            )
        })
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn clear(&mut self) {
        self.payloads.clear();
        self.records.clear();
    }
}

/// What is wrong with a record (or a snapshot) that cannot be replayed. Recovery adds where
/// it is: the zone, the file and the byte offset (`super::recover::RecoverError`).
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("the record ends early")]
    Truncated,
    #[error("{0} bytes after the end of the record")]
    Trailing(usize),
    #[error("a name that is not UTF-8")]
    NotUtf8,
    #[error("unknown {what} {value}")]
    UnknownCode { what: &'static str, value: u8 },
    #[error("{what} '{name}' is not in the {source_of}")]
    UnknownName {
        what: &'static str,
        name: String,
        source_of: &'static str,
    },
    #[error("unknown record kind {0}")]
    UnknownKind(u8),
    #[error("a stock record: {0}")]
    Stock(#[from] serde_json::Error),
    #[error("a stock record: {0}")]
    StockName(String),
    #[error("decision of order '{order}' names zone '{named}', this journal is zone '{zone}'")]
    OtherZone {
        order: String,
        named: String,
        zone: String,
    },
    #[error("a close of order '{0}', which this zone never decided")]
    UnknownClose(String),
    #[error("order '{order}': {source}")]
    Refused {
        order: String,
        #[source]
        source: ZoneError,
    },
    #[error("a stock level: {0}")]
    RefusedStock(#[source] ZoneError),
    #[error("not a zone snapshot of this version")]
    NotASnapshot,
    #[error("a snapshot of zone '{found}' in the journal of zone '{zone}'")]
    SnapshotOfOtherZone { found: String, zone: String },
    #[error("the snapshot's {0}")]
    SnapshotMisfit(String),
    #[error("snapshot record {number} (byte {offset}): {source}")]
    SnapshotRecord {
        number: u32,
        offset: usize,
        #[source]
        source: Box<RecordError>,
    },
}

/// Appends a binary decision record's payload: the record's content hash, then its
/// decision, then (since the risk screen, issue 11) its buyer and risk hits:
///
/// ```text
/// order_id:str status:u8 zone:str seq:u64 decided_at:i64
/// shipments:u8 (warehouse:str carrier:str level:u8 distance_km:f64 weight_kg:f64
///               cost:f64 eta:i64 lines)*
/// backordered:lines  reason:u8 (0 none, else code+1 then message:str)
/// customer:str32 value_cents:i64 latitude:f32 longitude:f32 flags:u8 (1: noted)
/// hits:u8 (rule:str message:str approvals:u8)*
/// lines = count:u16 (sku:str qty:u32)*      str = len:u16 then UTF-8, str32 = len:u32 then UTF-8
/// ```
///
/// A record written before the risk screen ends after the reason: it reads back with no
/// customer (left out of the customer book) and no hits.
pub fn encode_decision(
    out: &mut Vec<u8>,
    record: &OrderRecord,
    network: &Network,
    catalog: &Catalog,
) {
    let decision = &record.decision;
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
    out.extend_from_slice(&record.content_hash.to_le_bytes());
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
    let buyer = &record.buyer;
    // Customer ids are not bounded by the order's validation: a 4-byte length.
    out.extend_from_slice(&(buyer.customer.len() as u32).to_le_bytes());
    out.extend_from_slice(buyer.customer.as_bytes());
    out.extend_from_slice(&buyer.value_cents.to_le_bytes());
    out.extend_from_slice(&buyer.ship_to[0].to_le_bytes());
    out.extend_from_slice(&buyer.ship_to[1].to_le_bytes());
    out.push(u8::from(buyer.noted));
    let hits = decision.risk.as_deref().unwrap_or_default();
    out.push(hits.len().min(255) as u8);
    for hit in hits.iter().take(255) {
        text(out, &hit.rule);
        text(out, &hit.message);
        out.push(hit.approvals);
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
const REASONS: [ReasonCode; 7] = [
    ReasonCode::NoStock,
    ReasonCode::NoCarrier,
    ReasonCode::PromiseUnmeetable,
    ReasonCode::Capacity,
    ReasonCode::ServiceUnavailable,
    ReasonCode::Review,
    ReasonCode::Risk,
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
    /// `None` in a record written before the risk screen.
    screened: Option<RawScreened<'a>>,
}

/// The buyer and risk hits of a binary decision.
struct RawScreened<'a> {
    customer: &'a str,
    value_cents: i64,
    ship_to: [f32; 2],
    noted: bool,
    hits: Vec<(&'a str, &'a str, u8)>,
}

struct RawShipment<'a> {
    warehouse: &'a str,
    carrier: &'a str,
    level: ServiceLevel,
    numbers: [f64; 3],
    eta: i64,
    lines: Vec<(&'a str, u32)>,
}

/// Reads what [`encode_decision`] wrote after the content hash.
/// The fields a decision record starts with: order id, status, zone, seq, decision time.
fn read_head<'a>(
    reader: &mut Reader<'a>,
) -> Result<(&'a str, Status, &'a str, u64, i64), RecordError> {
    let order_id = reader.text()?;
    let status = reader.code(&STATUSES, "status")?;
    let zone = reader.text()?;
    let seq = reader.u64()?;
    let decided_at = reader.u64()? as i64;
    Ok((order_id, status, zone, seq, decided_at))
}

/// The order id, status and decision time of a decision record (`bytes`: after its content
/// hash), read without decoding the rest: what a restart needs of a closed record it copies
/// to disk as it is.
pub(super) fn head(bytes: &[u8]) -> Result<(&str, Status, i64), RecordError> {
    read_head(&mut Reader(bytes)).map(|(id, status, _, _, decided_at)| (id, status, decided_at))
}

fn read_decision_record(bytes: &[u8]) -> Result<RawDecision<'_>, RecordError> {
    let mut reader = Reader(bytes);
    let (order_id, status, zone, seq, decided_at) = read_head(&mut reader)?;
    let mut shipments = Vec::new();
    for _ in 0..reader.u8()? {
        let warehouse = reader.text()?;
        let carrier = reader.text()?;
        let level = reader.code(&LEVELS, "service level")?;
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
                .ok_or(RecordError::UnknownCode {
                    what: "reason code",
                    value: code,
                })?,
            reader.text()?,
        )),
    };
    let screened = if reader.0.is_empty() {
        None
    } else {
        let customer = reader.text32()?;
        let value_cents = reader.u64()? as i64;
        let ship_to = [reader.f32()?, reader.f32()?];
        let noted = match reader.u8()? {
            0 => false,
            1 => true,
            value => {
                return Err(RecordError::UnknownCode {
                    what: "buyer flags",
                    value,
                });
            }
        };
        let hits = (0..reader.u8()?)
            .map(|_| Ok((reader.text()?, reader.text()?, reader.u8()?)))
            .collect::<Result<Vec<_>, RecordError>>()?;
        Some(RawScreened {
            customer,
            value_cents,
            ship_to,
            noted,
            hits,
        })
    };
    reader.finish()?;
    Ok(RawDecision {
        order_id,
        status,
        zone,
        seq,
        decided_at,
        shipments,
        backordered,
        reason,
        screened,
    })
}

/// A little-endian reader of record bytes.
pub(super) struct Reader<'a>(pub(super) &'a [u8]);

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, count: usize) -> Result<&'a [u8], RecordError> {
        if self.0.len() < count {
            return Err(RecordError::Truncated);
        }
        let (head, rest) = self.0.split_at(count);
        self.0 = rest;
        Ok(head)
    }
    pub(super) fn u8(&mut self) -> Result<u8, RecordError> {
        Ok(self.take(1)?[0])
    }
    pub(super) fn u16(&mut self) -> Result<u16, RecordError> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    pub(super) fn u32(&mut self) -> Result<u32, RecordError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    pub(super) fn u64(&mut self) -> Result<u64, RecordError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    pub(super) fn f32(&mut self) -> Result<f32, RecordError> {
        Ok(f32::from_bits(self.u32()?))
    }
    pub(super) fn f64(&mut self) -> Result<f64, RecordError> {
        Ok(f64::from_bits(self.u64()?))
    }
    pub(super) fn text(&mut self) -> Result<&'a str, RecordError> {
        let count = self.u16()? as usize;
        std::str::from_utf8(self.take(count)?).map_err(|_| RecordError::NotUtf8)
    }
    /// Bytes after a 4-byte length (snapshots).
    pub(super) fn bytes32(&mut self) -> Result<&'a [u8], RecordError> {
        let count = self.u32()? as usize;
        self.take(count)
    }
    /// Text after a 4-byte length (snapshots).
    pub(super) fn text32(&mut self) -> Result<&'a str, RecordError> {
        std::str::from_utf8(self.bytes32()?).map_err(|_| RecordError::NotUtf8)
    }
    /// A one-byte code, an index into `codes`.
    pub(super) fn code<T: Copy>(
        &mut self,
        codes: &[T],
        what: &'static str,
    ) -> Result<T, RecordError> {
        let value = self.u8()?;
        codes
            .get(value as usize)
            .copied()
            .ok_or(RecordError::UnknownCode { what, value })
    }
    /// Nothing may follow the end of what was read.
    pub(super) fn finish(&self) -> Result<(), RecordError> {
        match self.0.len() {
            0 => Ok(()),
            left => Err(RecordError::Trailing(left)),
        }
    }
    pub(super) fn lines(&mut self) -> Result<Vec<(&'a str, u32)>, RecordError> {
        (0..self.u16()?)
            .map(|_| Ok((self.text()?, self.u32()?)))
            .collect()
    }
}

/// A binary decision record, names resolved against `network` and `catalog`, and its buyer
/// (a default, unknown one for a record written before the risk screen).
pub(super) fn decode_decision(
    bytes: &[u8],
    network: &Network,
    catalog: &Catalog,
) -> Result<(Decision, Buyer), RecordError> {
    resolve_decision(read_decision_record(bytes)?, network, catalog)
}

/// A decision record read ([`read_decision_record`]), its names resolved.
fn resolve_decision(
    raw: RawDecision<'_>,
    network: &Network,
    catalog: &Catalog,
) -> Result<(Decision, Buyer), RecordError> {
    let lines = |lines: &[(&str, u32)]| -> Result<SmallVec<[LineQuantity; 2]>, RecordError> {
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
    let (buyer, risk) = match &raw.screened {
        None => (Buyer::default(), None),
        Some(screened) => (
            Buyer {
                customer: screened.customer.into(),
                value_cents: screened.value_cents,
                ship_to: screened.ship_to,
                noted: screened.noted,
            },
            (!screened.hits.is_empty()).then(|| {
                screened
                    .hits
                    .iter()
                    .map(|(rule, message, approvals)| RiskHit {
                        rule: (*rule).into(),
                        message: (*message).to_owned(),
                        approvals: *approvals,
                    })
                    .collect()
            }),
        ),
    };
    let decision = Decision {
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
        risk,
    };
    Ok((decision, buyer))
}

fn zone(network: &Network, name: &str) -> Result<ZoneId, RecordError> {
    network
        .zone_ids
        .get(name)
        .map(|index| ZoneId(index as u16))
        .ok_or_else(|| unknown("zone", name, "config"))
}

fn carrier(network: &Network, name: &str) -> Result<CarrierId, RecordError> {
    network
        .carrier_ids
        .get(name)
        .map(|index| CarrierId(index as u16))
        .ok_or_else(|| unknown("carrier", name, "config"))
}

/// Appends a close record's payload. The order is named by its id, not its slot: slots are
/// positions in memory, which a snapshot that leaves old records out would renumber.
pub fn encode_closed(out: &mut Vec<u8>, order_id: &str, end: Lifecycle) {
    out.push(match end {
        Lifecycle::Shipped => 2,
        Lifecycle::RejectedAfterReview => 3,
        _ => 1,
    });
    out.extend_from_slice(order_id.as_bytes());
}

/// Appends an approval record's payload: whether it released the order, the approver (at
/// most 255 bytes: longer names are cut at a character boundary), the order id.
pub fn encode_approved(out: &mut Vec<u8>, order_id: &str, approver: &str, released: bool) {
    let mut end = approver.len().min(255);
    while !approver.is_char_boundary(end) {
        end -= 1;
    }
    out.push(u8::from(released));
    out.push(end as u8);
    out.extend_from_slice(&approver.as_bytes()[..end]);
    out.extend_from_slice(order_id.as_bytes());
}

/// Reads an approval record: whether it released the order, the approver, the order id.
fn decode_approved(payload: &[u8]) -> Result<(bool, &str, &str), RecordError> {
    let [released, length, rest @ ..] = payload else {
        return Err(RecordError::Truncated);
    };
    let length = usize::from(*length);
    if rest.len() < length {
        return Err(RecordError::Truncated);
    }
    let released = match released {
        0 => false,
        1 => true,
        value => {
            return Err(RecordError::UnknownCode {
                what: "approval",
                value: *value,
            });
        }
    };
    let text = |bytes| std::str::from_utf8(bytes).map_err(|_| RecordError::NotUtf8);
    Ok((released, text(&rest[..length])?, text(&rest[length..])?))
}

/// Reads a close record: how the order ended, and its id.
fn decode_closed(payload: &[u8]) -> Result<(Lifecycle, &str), RecordError> {
    let (end, id) = payload.split_first().ok_or(RecordError::Truncated)?;
    let end = match end {
        1 => Lifecycle::Cancelled,
        2 => Lifecycle::Shipped,
        3 => Lifecycle::RejectedAfterReview,
        value => {
            return Err(RecordError::UnknownCode {
                what: "close",
                value: *value,
            });
        }
    };
    Ok((
        end,
        std::str::from_utf8(id).map_err(|_| RecordError::NotUtf8)?,
    ))
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
    match (RecordKind::from_byte(kind), payload) {
        (Some(RecordKind::Decision), payload) if payload.len() >= 8 => {
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
                        "risk": raw.screened.as_ref().map(|screened| screened.hits.iter().map(|(rule, message, approvals)| json!({"rule": rule, "message": message, "approvals": approvals})).collect::<Vec<_>>()),
                    },
                    "buyer": raw.screened.as_ref().map(|screened| json!({
                        "customer": screened.customer,
                        "value_cents": screened.value_cents,
                        "ship_to": screened.ship_to,
                        "noted": screened.noted,
                    })),
                }),
                Err(why) => json!({"kind": "decision", "unreadable": why.to_string()}),
            }
        }
        (Some(RecordKind::Closed), [end, id @ ..]) => json!({
            "kind": match end { 2 => "shipped", 3 => "rejected_after_review", _ => "cancelled" },
            "order_id": String::from_utf8_lossy(id),
        }),
        (Some(RecordKind::Approved), payload) => match decode_approved(payload) {
            Ok((released, approver, id)) => json!({
                "kind": "approved", "order_id": id, "approver": approver, "released": released,
            }),
            Err(why) => json!({"kind": "approved", "unreadable": why.to_string()}),
        },
        (Some(RecordKind::Stock), payload) => json!({"kind": "stock", "level": json(payload)}),
        (_, payload) => json!({"kind": kind, "bytes": payload.len()}),
    }
}

fn unknown(what: &'static str, name: &str, source_of: &'static str) -> RecordError {
    RecordError::UnknownName {
        what,
        name: name.to_owned(),
        source_of,
    }
}

/// The claims of a zone's replayed decisions, put back in batches: each replayed decision
/// claimed one by one probed an index spread over every segment (80 MB for 10M ids), a cache
/// miss each, and the claims were a quarter of a restart's time after a burst (the
/// journal's tail replayed, docs/benchmarks.md "Replay after a burst").
/// Waiting claims are put back grouped by segment ([`Claims::restore_all`], as one by one
/// would) before any record that looks an id up, and at the end ([`Replaying::settle`]).
///
/// A decision closed from the start (rejected: most of a sale day's journal once the stock
/// runs out) goes straight to the zone's cold store as the journal holds it, its head and
/// buyer read but not decoded into a record and encoded again ([`replay_closed`]).
pub struct Replaying<'c> {
    claims: &'c Claims,
    waiting: Vec<super::claims::Restored>,
    /// The entries of the closed decisions copied since the cold store's last write, kept
    /// to be decoded into memory should the write fail.
    entries: Vec<u8>,
    copying: Copying,
}

/// Closed decisions copied to the cold store between two writes of it.
const COPIED_BETWEEN_WRITES: usize = super::state::CHILL_EVERY;

impl<'c> Replaying<'c> {
    pub fn new(claims: &'c Claims) -> Replaying<'c> {
        Replaying {
            claims,
            waiting: Vec::new(),
            entries: Vec::new(),
            copying: Copying {
                on: true,
                unwritten: Vec::new(),
            },
        }
    }

    /// [`ZoneState::chill_every`], the closed decisions copied to the cold store written
    /// first (a chill writes whatever the store holds staged, and a failed write would lose
    /// the copies staged with its records without their knowing), and those copies written
    /// every [`COPIED_BETWEEN_WRITES`] in any case.
    pub fn chill_every(
        &mut self,
        state: &mut ZoneState,
        pending: usize,
        network: &Network,
        catalog: &Catalog,
    ) -> Result<(), RecordError> {
        let chill = state.chill_due(pending);
        if chill || self.copying.unwritten.len() >= COPIED_BETWEEN_WRITES {
            self.write_copies(state, network, catalog)?;
        }
        if chill {
            state.chill_every(pending, self.claims);
        }
        Ok(())
    }

    /// Writes the closed decisions copied to the cold store (if that fails they stay in
    /// memory), then [`Replaying::settle`]s.
    pub fn finish(
        &mut self,
        state: &mut ZoneState,
        network: &Network,
        catalog: &Catalog,
    ) -> Result<(), RecordError> {
        self.write_copies(state, network, catalog)?;
        self.settle(state);
        Ok(())
    }

    fn write_copies(
        &mut self,
        state: &mut ZoneState,
        network: &Network,
        catalog: &Catalog,
    ) -> Result<(), RecordError> {
        if self.copying.unwritten.is_empty() {
            return Ok(());
        }
        self.copying.write(state, &self.entries, network, catalog)?;
        self.entries.clear();
        Ok(())
    }

    /// The claims, every replayed decision's put back.
    pub fn claims(&mut self, state: &mut ZoneState) -> &'c Claims {
        self.settle(state);
        self.claims
    }

    /// Puts the waiting claims back and notes each record's place in them.
    pub fn settle(&mut self, state: &mut ZoneState) {
        if self.waiting.is_empty() {
            return;
        }
        let zone = state.zone;
        self.claims
            .restore_all(zone, &mut self.waiting, |slot, place| {
                state.set_claim(slot, place);
            });
        self.waiting.clear();
    }
}

/// Applies one journal record to `state` (and, for decisions, to the claims: put back once
/// `replaying` settles).
pub fn replay(
    state: &mut ZoneState,
    replaying: &mut Replaying<'_>,
    network: &Network,
    catalog: &Catalog,
    kind: u8,
    payload: &[u8],
) -> Result<(), RecordError> {
    match RecordKind::from_byte(kind).ok_or(RecordError::UnknownKind(kind))? {
        RecordKind::Decision => {
            let (hash, body) = payload
                .split_first_chunk::<8>()
                .ok_or(RecordError::Truncated)?;
            // Read once: copied as it is when closed from the start, else resolved.
            let raw = read_decision_record(body)?;
            if replay_closed(state, replaying, network, catalog, payload, &raw)? {
                return Ok(());
            }
            let content_hash = u64::from_le_bytes(*hash);
            let (decision, buyer) = resolve_decision(raw, network, catalog)?;
            if decision.zone != state.zone {
                return Err(RecordError::OtherZone {
                    order: decision.order_id.to_string(),
                    named: network.zone_name(decision.zone).to_owned(),
                    zone: network.zone_name(state.zone).to_owned(),
                });
            }
            let restored = replaying
                .claims
                .restored(&decision.order_id, state.next_slot());
            let id = decision.order_id.clone();
            state
                .restore(decision, content_hash, buyer)
                .map_err(|source| RecordError::Refused {
                    order: id.to_string(),
                    source,
                })?;
            replaying.waiting.push(restored);
            Ok(())
        }
        RecordKind::Closed => {
            let (end, id) = decode_closed(payload)?;
            let slot = match replaying.claims(state).get(id) {
                Some(claim) if claim.zone == state.zone && claim.is_decided() => claim.slot,
                _ => return Err(RecordError::UnknownClose(id.to_owned())),
            };
            let closed = match end {
                Lifecycle::Shipped => state.ship(slot),
                Lifecycle::RejectedAfterReview => state.reject(slot),
                _ => state.cancel(slot),
            };
            closed.map(|_| ()).map_err(|source| RecordError::Refused {
                order: id.to_owned(),
                source,
            })
        }
        RecordKind::Approved => {
            let (released, approver, id) = decode_approved(payload)?;
            let slot = match replaying.claims(state).get(id) {
                Some(claim) if claim.zone == state.zone && claim.is_decided() => claim.slot,
                _ => return Err(RecordError::UnknownClose(id.to_owned())),
            };
            // As it was: released by this approval or not, whatever the config says now.
            let needed = if released { 0 } else { usize::MAX };
            match state.approve(slot, approver, needed) {
                Ok(_) => Ok(()),
                Err(source) => Err(RecordError::Refused {
                    order: id.to_owned(),
                    source,
                }),
            }
        }
        RecordKind::Stock => {
            let level = decode_stock(payload, network, catalog)?;
            state.set_on_hand(level).map_err(RecordError::RefusedStock)
        }
    }
}

/// Replays a decision that holds nothing from the start (rejected, no shipment, nothing
/// backordered) straight to the zone's cold store, as [`replay`] would have it after its
/// next chill: `true` when done. Anything else (a zone without a store, another status, a
/// record that is not the zone's next, one the store cannot take) is left to the whole
/// decoding, which also names what is wrong.
fn replay_closed(
    state: &mut ZoneState,
    replaying: &mut Replaying<'_>,
    network: &Network,
    catalog: &Catalog,
    payload: &[u8],
    raw: &RawDecision<'_>,
) -> Result<bool, RecordError> {
    if !replaying.copying.on || !state.has_cold_store() {
        return Ok(false);
    }
    if raw.status != Status::Rejected
        || !raw.shipments.is_empty()
        || !raw.backordered.is_empty()
        || raw.zone != network.zone_name(state.zone)
        || raw.seq != state.next_seq()
    {
        return Ok(false);
    }
    let noted = raw.screened.as_ref().is_some_and(|screened| screened.noted);
    let start = replaying.entries.len();
    push_entry_of_payload(&mut replaying.entries, payload, noted);
    let entry = &replaying.entries[start..];
    let slot = match state.restore_cold(entry, Lifecycle::Live, noted, raw.decided_at) {
        Ok(slot) => slot,
        Err(error) => {
            replaying.entries.truncate(start);
            replaying
                .copying
                .stop(state, &replaying.entries, network, catalog, error)?;
            replaying.entries.clear();
            return Ok(false);
        }
    };
    state.take_seq();
    replaying
        .copying
        .unwritten
        .push((slot, start..replaying.entries.len()));
    replaying
        .waiting
        .push(replaying.claims.restored(raw.order_id, slot));
    Ok(true)
}

pub(super) fn sku(catalog: &Catalog, name: &str) -> Result<SkuId, RecordError> {
    catalog
        .lookup(name)
        .ok_or_else(|| unknown("SKU", name, "catalogue"))
}

fn warehouse(network: &Network, name: &str) -> Result<WarehouseId, RecordError> {
    network
        .warehouse_ids
        .get(name)
        .map(|index| WarehouseId(index as u16))
        .ok_or_else(|| unknown("warehouse", name, "config"))
}

fn decode_stock(
    payload: &[u8],
    network: &Network,
    catalog: &Catalog,
) -> Result<StockLevel, RecordError> {
    #[derive(serde::Deserialize)]
    struct Row<'a> {
        warehouse: &'a str,
        sku: &'a str,
        on_hand: u32,
    }
    let row: Row = serde_json::from_slice(payload)?;
    StockLevel::from_names(network, catalog, row.warehouse, row.sku, row.on_hand)
        .map_err(RecordError::StockName)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::test_world::{order, world};

    #[test]
    fn a_decision_reads_back_with_its_buyer_and_hits_and_an_older_one_without() {
        let world = world("warehouse,sku,on_hand\nWS,A,5\n");
        let decision = Decision {
            order_id: "o1".into(),
            status: Status::Held,
            zone: crate::ids::ZoneId(1),
            seq: 7,
            decided_at: Millis(1_000),
            shipments: SmallVec::new(),
            backordered: SmallVec::new(),
            reason: Some(Box::new(Reason {
                code: ReasonCode::Review,
                message: "held".into(),
            })),
            risk: Some(Box::new([RiskHit {
                rule: "big".into(),
                message: "order value 3.00 is over 2.00".into(),
                approvals: 2,
            }])),
        };
        // A customer id longer than a 2-byte length holds (orders do not bound it).
        let mut buyer = Buyer::of(&order(&world, "o1", "S", "A", 1));
        buyer.customer = "c".repeat(70_000).into();
        buyer.value_cents = 300;
        buyer.noted = true;
        let record = OrderRecord {
            content_hash: 42,
            decision,
            lifecycle: Lifecycle::Live,
            approvers: None,
            buyer,
            claim: Default::default(),
        };
        let mut out = Vec::new();
        encode_decision(&mut out, &record, &world.network, &world.catalog);
        let (decision, buyer) = decode_decision(&out[8..], &world.network, &world.catalog).unwrap();
        assert_eq!(decision, record.decision);
        assert_eq!(buyer, record.buyer);
        // A record written before the risk screen ends after the reason.
        let end = out.len() - (4 + 70_000 + 8 + 8 + 1) - (1 + 2 + 3 + 2 + 29 + 1);
        let (old, unknown) = decode_decision(&out[8..end], &world.network, &world.catalog).unwrap();
        assert_eq!(old.risk, None);
        assert_eq!(unknown, Buyer::default());
    }
}
