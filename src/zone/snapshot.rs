//! A zone's whole state as one snapshot: after it, a restart replays only the records that
//! follow. Written off the zone's thread (`crate::serve::snapshotter`) from a copy of the
//! state, read back by [`super::recover`].

use super::cold::ColdError;
use super::records::{Reader, RecordError, decode_decision, encode_decision, head, sku};
use super::state::CHILL_EVERY;
use super::state::{Slot, ZoneError, holds_stock};
use super::{Claims, ColdStore, Lifecycle, OrderRecord, StockCell, ZoneState};
use crate::catalog::Catalog;
use crate::config::Network;
use crate::ids::{SkuId, ZoneId};
use crate::risk::usual::SkuUsual;
use std::path::Path;

/// A zone's whole state, for a journal snapshot: after it, a restart replays only the records
/// that follow. Binary, little-endian, names rather than indexes (like the records):
///
/// ```text
/// "ORZS" version:u8 (5) zone:str next_seq:u64
/// warehouses:u16 (name:str)*           carriers:u16 (name:str)*
/// cells:u32 (local:u16 sku:str on_hand:u32 reserved:u32)*
/// days:u8 (day:i32 orders:u32*warehouses pickups:u32*(warehouses*carriers))*
/// usual:u32 (sku:str orders:u32 mean:f32)*
/// records:u32 (entry:bytes)*, entry = lifecycle:u8 [approvers:u8 (name:str)*] record:bytes
///   (lifecycle: 0 live, 1 cancelled, 2 shipped, 3 released, 4 rejected after review, plus
///   64 when the risk screen noted the order in its customer's history, plus 128 when the
///   approvers of a held order follow; record: as `encode_decision` writes it)
/// str, bytes = len:u32 then the bytes
/// ```
///
/// Version 4 added the usual quantities (`crate::risk::usual`) and the noted flag: with them
/// a restart does not decode a closed record (its order id, status and time are read from
/// its head) but copies it to the cold store. Version 5 puts each entry's length in front of
/// it (the cold store's framing, [`super::cold`]): a restart leaves a closed record where it
/// is, in the snapshot file, which the zone's cold store reads it from
/// ([`super::ColdStore::adopt`]). Versions 2 and 3 are still read: their records are decoded
/// and counted into the usual quantities one by one.
///
/// `state` is a copy of the zone's (it shares the zone's record chunks, [`super::arena`]),
/// given up chunk by chunk as its records are encoded.
///
/// `keep` chooses the records kept: the idempotency window (a record left out is forgotten,
/// its id free again; its reservations, if any, are in the cells all the same);
/// `keep_entry` chooses among the records kept on disk ([`super::cold`]), each as its entry
/// (copied as it is: the cold store writes the snapshot's record format).
///
/// The bytes go to `sink` as they are made, [`FLUSH_BYTES`] at a time: a zone of two million
/// open orders is a 350 MB snapshot, which is never whole in memory
/// (`crate::journal::SnapshotWriter` writes it out as it comes). The record count, known
/// only at the end, is left as the sink's gap; [`Encoded::fill`] holds its bytes.
pub fn encode_snapshot_to<S: SnapshotSink>(
    mut state: ZoneState,
    network: &Network,
    catalog: &Catalog,
    mut keep: impl FnMut(&OrderRecord) -> bool,
    mut keep_entry: impl FnMut(&[u8]) -> bool,
    sink: &mut S,
) -> Result<Encoded, EncodeError<S::Error>> {
    let mut out = Vec::with_capacity(FLUSH_BYTES + 4096);
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
        flush_full(&mut out, sink)?;
    }
    let days: Vec<_> = state.counted_days().collect();
    out.push(days.len() as u8);
    for (day, orders, pickups) in days {
        out.extend_from_slice(&day.to_le_bytes());
        for count in orders.iter().chain(pickups) {
            out.extend_from_slice(&count.to_le_bytes());
        }
    }
    let usual: Vec<_> = state.usual().counted().collect();
    out.extend_from_slice(&(usual.len() as u32).to_le_bytes());
    for (sku, usual) in usual {
        text(&mut out, catalog.sku_name(sku).as_bytes());
        out.extend_from_slice(&usual.orders.to_le_bytes());
        out.extend_from_slice(&usual.mean.to_le_bytes());
        flush_full(&mut out, sink)?;
    }
    sink.write(&out).map_err(EncodeError::Sink)?;
    out.clear();
    // The record count, filled in at the end.
    sink.gap(4).map_err(EncodeError::Sink)?;
    let mut kept = 0u32;
    // Each chunk of records let go of once encoded: the zone's next write into it copies
    // nothing, however long the rest takes to write.
    let slots = state.take_slots();
    let mut cold = state.cold_reader();
    slots.visit_releasing(|_, slot| {
        let kept_now = match slot {
            Slot::Hot(record) => keep(record).then(|| {
                let start = out.len();
                out.extend_from_slice(&[0; 4]);
                encode_entry(&mut out, record, network, catalog);
                let length = (out.len() - start - 4) as u32;
                out[start..start + 4].copy_from_slice(&length.to_le_bytes());
            }),
            Slot::Cold(place) => {
                let entry = cold
                    .as_mut()
                    .expect("a cold slot has a store")
                    .entry(*place)
                    .map_err(EncodeError::Cold)?;
                keep_entry(entry).then(|| {
                    out.extend_from_slice(&(entry.len() as u32).to_le_bytes());
                    out.extend_from_slice(entry);
                })
            }
        };
        kept += u32::from(kept_now.is_some());
        flush_full(&mut out, sink)
    })?;
    sink.write(&out).map_err(EncodeError::Sink)?;
    Ok(Encoded { kept })
}

/// [`encode_snapshot_to`] into memory: the whole snapshot at once (a new zone's, tests').
pub fn encode_snapshot(
    state: &ZoneState,
    network: &Network,
    catalog: &Catalog,
    keep: impl FnMut(&OrderRecord) -> bool,
    keep_entry: impl FnMut(&[u8]) -> bool,
) -> Result<Vec<u8>, ColdError> {
    let mut sink = InMemory::default();
    let encoded = encode_snapshot_to(state.clone(), network, catalog, keep, keep_entry, &mut sink)
        .map_err(|error| match error {
            EncodeError::Cold(error) => error,
            EncodeError::Sink(never) => match never {},
        })?;
    Ok(sink.filled(&encoded.fill()))
}

/// Where [`encode_snapshot_to`] puts a snapshot's bytes, in order.
pub trait SnapshotSink {
    type Error;
    /// Appends `bytes`.
    fn write(&mut self, bytes: &[u8]) -> Result<(), Self::Error>;
    /// Appends `length` bytes given at the end (one gap a snapshot).
    fn gap(&mut self, length: usize) -> Result<(), Self::Error>;
}

/// A snapshot written to its file as it is made.
impl SnapshotSink for crate::journal::SnapshotWriter {
    type Error = crate::journal::JournalError;

    fn write(&mut self, bytes: &[u8]) -> Result<(), Self::Error> {
        crate::journal::SnapshotWriter::write(self, bytes)
    }

    fn gap(&mut self, length: usize) -> Result<(), Self::Error> {
        crate::journal::SnapshotWriter::gap(self, length)
    }
}

/// A snapshot made in memory.
#[derive(Default)]
struct InMemory {
    bytes: Vec<u8>,
    gap: Option<std::ops::Range<usize>>,
}

impl InMemory {
    /// The snapshot, its gap filled with `fill`.
    fn filled(mut self, fill: &[u8]) -> Vec<u8> {
        if let Some(gap) = self.gap {
            self.bytes[gap].copy_from_slice(fill);
        }
        self.bytes
    }
}

impl SnapshotSink for InMemory {
    type Error = std::convert::Infallible;

    fn write(&mut self, bytes: &[u8]) -> Result<(), Self::Error> {
        self.bytes.extend_from_slice(bytes);
        Ok(())
    }

    fn gap(&mut self, length: usize) -> Result<(), Self::Error> {
        assert!(self.gap.is_none(), "one gap a snapshot");
        let at = self.bytes.len();
        self.bytes.resize(at + length, 0);
        self.gap = Some(at..at + length);
        Ok(())
    }
}

/// What [`encode_snapshot_to`] made, for the gap it left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoded {
    /// Records written.
    pub kept: u32,
}

impl Encoded {
    /// The bytes of the gap: the record count.
    pub fn fill(&self) -> [u8; 4] {
        self.kept.to_le_bytes()
    }
}

/// Why a snapshot was not made: a cold record could not be read, or the sink refused.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError<E> {
    #[error("{0}")]
    Cold(ColdError),
    #[error("{0}")]
    Sink(E),
}

/// The bytes an encoding holds before it hands them to its sink.
const FLUSH_BYTES: usize = 64 << 10;

/// Hands `out` to `sink` once it holds [`FLUSH_BYTES`].
fn flush_full<S: SnapshotSink>(
    out: &mut Vec<u8>,
    sink: &mut S,
) -> Result<(), EncodeError<S::Error>> {
    if out.len() >= FLUSH_BYTES {
        sink.write(out).map_err(EncodeError::Sink)?;
        out.clear();
    }
    Ok(())
}

const SNAPSHOT_MAGIC: &[u8; 4] = b"ORZS";
/// 3 since approvals of held orders (issue 11), 4 since the usual quantities and the noted
/// flag, 5 since each entry's length in front of it (issue 12); versions 2 (no approvals, no
/// reviewed orders), 3 and 4 are read as they are.
const SNAPSHOT_VERSION: u8 = 5;

/// The lifecycle byte's flag: the record's approvers follow it.
const APPROVERS: u8 = 128;
/// The lifecycle byte's flag: the risk screen noted the order in its customer's history.
const NOTED: u8 = 64;

/// The bytes of the smallest record entry: its lifecycle, its length, its content hash.
const SMALLEST_ENTRY: usize = 1 + 4 + 8;

/// Closed records a restore copies to the cold store between two writes of it.
const COPIED_BETWEEN_WRITES: usize = CHILL_EVERY;

/// Reads a snapshot written by [`encode_snapshot`] into a new zone state for `zone`, and
/// its records' claims into `claims`; closed records go on to `cold`, when given. From a
/// version 4 snapshot they are not decoded (their head read): left where they are when
/// `on_disk` says where the snapshot's bytes lie (its file, and the offset of `bytes` in
/// it), the store reading them from there, else copied to the store as they are. From an
/// older one they are decoded and then written.
pub fn restore_snapshot(
    bytes: &[u8],
    on_disk: Option<(&Path, u64)>,
    network: &Network,
    catalog: &Catalog,
    zone: ZoneId,
    claims: &Claims,
    cold: Option<ColdStore>,
) -> Result<ZoneState, RecordError> {
    let mut reader = Reader(bytes);
    let (mut state, version) = restore_head(&mut reader, network, catalog, zone, cold)?;
    let with_usual = version >= 4;
    let mut copying = Copying {
        on: with_usual && state.has_cold_store(),
        unwritten: Vec::new(),
    };
    // The snapshot file as a cold file of the zone's: its closed records stay where they are.
    let adopted = on_disk
        .filter(|_| copying.on && version >= 5)
        .and_then(|(path, offset)| match state.adopt_cold_file(path) {
            Ok(number) => Some((number, offset)),
            Err(error) => {
                tracing::warn!(
                    "closed records of {} copied to the cold store: {error}",
                    path.display()
                );
                None
            }
        });
    let count = reader.u32()?;
    // Room for the records the bytes can hold (a damaged count must not ask for more).
    let room = (count as usize).min(reader.0.len() / SMALLEST_ENTRY);
    claims.reserve(room);
    // The records' claims, put back all at once at the end (`Claims::restore_all`).
    let mut restored = Vec::with_capacity(room);
    for number in 0..count {
        let at = bytes.len() - reader.0.len();
        let failed = |source| RecordError::SnapshotRecord {
            number,
            offset: at,
            source: Box::new(source),
        };
        let (head, entry) = next_entry(&mut reader, version).map_err(failed)?;
        let slot = state.next_slot();
        restored.push(claims.restored(head.order_id, slot));
        if let Some((file, offset)) = adopted
            && head.is_closed()
            && state
                .restore_adopted(
                    file,
                    offset + at as u64,
                    head.lifecycle,
                    head.noted,
                    head.decided_at,
                )
                .is_some()
        {
            continue;
        }
        if copying.on && head.is_closed() {
            match state.restore_cold(entry, head.lifecycle, head.noted, head.decided_at) {
                Ok(_) => {
                    // Where the entry is in `bytes`, to decode it if the write fails.
                    let end = bytes.len() - reader.0.len();
                    copying.unwritten.push((slot, end - entry.len()..end));
                    if copying.unwritten.len() >= COPIED_BETWEEN_WRITES {
                        copying.write(&mut state, bytes, network, catalog)?;
                    }
                    continue;
                }
                // This record is decoded below, as the rest will be.
                Err(error) => copying.stop(&mut state, bytes, network, catalog, error)?,
            }
        }
        let record = decode_entry(&mut Reader(entry), network, catalog).map_err(failed)?;
        state.restore_record(record, !with_usual);
        // Not past the window yet (nothing expires in a restore): a chill leaves the claims
        // as they are, and the records' places in them are noted below.
        state.chill_every(CHILL_EVERY, claims);
    }
    reader.finish()?;
    copying.write(&mut state, bytes, network, catalog)?;
    if let Some((file, _)) = adopted {
        state.adopted_done(file);
    }
    claims.restore_all(zone, &mut restored, |slot, place| {
        state.set_claim(slot, place);
    });
    Ok(state)
}

/// A snapshot's head: its magic, version (returned) and zone, then the zone's sequence,
/// shape, stock cells, day counters and (from version 4) usual quantities, into a new state
/// whose closed records go to `cold`.
fn restore_head(
    reader: &mut Reader<'_>,
    network: &Network,
    catalog: &Catalog,
    zone: ZoneId,
    cold: Option<ColdStore>,
) -> Result<(ZoneState, u8), RecordError> {
    if reader.take(4)? != SNAPSHOT_MAGIC {
        return Err(RecordError::NotASnapshot);
    }
    let version = reader.u8()?;
    if !matches!(version, 2..=SNAPSHOT_VERSION) {
        return Err(RecordError::NotASnapshot);
    }
    let name = reader.text32()?;
    if name != network.zone_name(zone) {
        return Err(RecordError::SnapshotOfOtherZone {
            found: name.to_owned(),
            zone: network.zone_name(zone).to_owned(),
        });
    }
    let mut state = ZoneState::new(network, zone, catalog.len());
    if let Some(cold) = cold {
        state.set_cold_store(cold);
    }
    state.restore_sequence(reader.u64()?);
    check_shape(reader, network, &state)?;
    restore_cells(reader, catalog, &mut state)?;
    restore_days(reader, network, &mut state)?;
    if version >= 4 {
        for (sku, usual) in read_usual(reader, catalog)? {
            state.restore_usual(sku, usual);
        }
    }
    Ok((state, version))
}

/// The next record entry of a snapshot of `version`, and its head: from version 5 framed
/// (its length, then the entry), before that as long as its head says.
fn next_entry<'a>(
    reader: &mut Reader<'a>,
    version: u8,
) -> Result<(EntryHead<'a>, &'a [u8]), RecordError> {
    if version >= 5 {
        let entry = reader.bytes32()?;
        let head = EntryHead::read(entry)?;
        if head.length != entry.len() {
            return Err(RecordError::Trailing(entry.len() - head.length));
        }
        Ok((head, entry))
    } else {
        let head = EntryHead::read(reader.0)?;
        let entry = reader.take(head.length)?;
        Ok((head, entry))
    }
}

/// The closed records a restore copies to the cold store, until a write fails (a
/// snapshot's, and the journal's decisions closed from the start: `records::Replaying`).
pub(super) struct Copying {
    pub(super) on: bool,
    /// Slots copied since the last write, with their entries' places in the bytes they are
    /// copied from.
    pub(super) unwritten: Vec<(u32, std::ops::Range<usize>)>,
}

impl Copying {
    /// Writes the copied records; if that fails, they stay in memory ([`Copying::stop`]).
    pub(super) fn write(
        &mut self,
        state: &mut ZoneState,
        bytes: &[u8],
        network: &Network,
        catalog: &Catalog,
    ) -> Result<(), RecordError> {
        match state.flush_cold() {
            Ok(()) => {
                self.unwritten.clear();
                Ok(())
            }
            Err(error) => self.stop(state, bytes, network, catalog, error),
        }
    }

    /// The cold store could not take a record: the records copied since the last write are
    /// decoded into memory instead (the next chill tries the store again), and the rest of
    /// the snapshot is restored as an old one is.
    pub(super) fn stop(
        &mut self,
        state: &mut ZoneState,
        bytes: &[u8],
        network: &Network,
        catalog: &Catalog,
        error: ColdError,
    ) -> Result<(), RecordError> {
        tracing::error!(
            "zone {}: closed records stay in memory: {error}",
            network.zone_name(state.zone)
        );
        self.on = false;
        for (slot, range) in self.unwritten.drain(..) {
            let record = decode_entry(&mut Reader(&bytes[range]), network, catalog)?;
            state.warm(slot, record);
        }
        Ok(())
    }
}

/// What a restore reads of a record before deciding to decode it (a snapshot entry, as
/// [`encode_entry`] writes it).
struct EntryHead<'a> {
    /// The entry's bytes in all.
    length: usize,
    lifecycle: Lifecycle,
    noted: bool,
    order_id: &'a str,
    status: crate::model::Status,
    decided_at: i64,
}

impl<'a> EntryHead<'a> {
    fn read(entry: &'a [u8]) -> Result<EntryHead<'a>, RecordError> {
        let mut reader = Reader(entry);
        let byte = reader.u8()?;
        let lifecycle = lifecycle(byte)?;
        if byte & APPROVERS != 0 {
            for _ in 0..reader.u8()? {
                reader.text32()?;
            }
        }
        // The content hash (eight bytes) is not needed to restore a claim (`zone::Claim`).
        let (_, body) = reader
            .bytes32()?
            .split_first_chunk::<8>()
            .ok_or(RecordError::Truncated)?;
        let (order_id, status, decided_at) = head(body)?;
        Ok(EntryHead {
            length: entry.len() - reader.0.len(),
            lifecycle,
            noted: byte & NOTED != 0,
            order_id,
            status,
            decided_at,
        })
    }

    /// Whether the record holds nothing (see [`OrderRecord::is_open`]).
    fn is_closed(&self) -> bool {
        !holds_stock(self.status, self.lifecycle)
    }
}

/// The lifecycle of an entry's first byte.
fn lifecycle(byte: u8) -> Result<Lifecycle, RecordError> {
    match byte & !(APPROVERS | NOTED) {
        0 => Ok(Lifecycle::Live),
        1 => Ok(Lifecycle::Cancelled),
        2 => Ok(Lifecycle::Shipped),
        3 => Ok(Lifecycle::Released),
        4 => Ok(Lifecycle::RejectedAfterReview),
        value => Err(RecordError::UnknownCode {
            what: "lifecycle",
            value,
        }),
    }
}

/// The zone's warehouses and the carriers, by name, must be those of the config: the
/// counters are laid out by their positions.
fn check_shape(
    reader: &mut Reader<'_>,
    network: &Network,
    state: &ZoneState,
) -> Result<(), RecordError> {
    let warehouses = reader.u16()? as usize;
    for local in 0..warehouses {
        let name = reader.text32()?;
        let expected = state.warehouses().get(local);
        if expected.map(|id| network.warehouse_name(*id)) != Some(name) {
            return Err(RecordError::SnapshotMisfit(format!(
                "warehouse {local} is '{name}', the config's zone differs"
            )));
        }
    }
    let carriers = reader.u16()? as usize;
    for carrier in 0..carriers {
        let name = reader.text32()?;
        if carrier >= network.carriers.len() || network.carrier_ids.name(carrier as u32) != name {
            return Err(RecordError::SnapshotMisfit(format!(
                "carrier {carrier} is '{name}', the config's carriers differ"
            )));
        }
    }
    if warehouses != state.warehouses().len() || carriers != network.carriers.len() {
        return Err(RecordError::SnapshotMisfit(
            "zone has another shape than the config's".to_owned(),
        ));
    }
    Ok(())
}

/// The stock cells that hold anything.
fn restore_cells(
    reader: &mut Reader<'_>,
    catalog: &Catalog,
    state: &mut ZoneState,
) -> Result<(), RecordError> {
    for _ in 0..reader.u32()? {
        let local = reader.u16()? as usize;
        let sku = sku(catalog, reader.text32()?)?;
        let cell = StockCell {
            on_hand: reader.u32()?,
            reserved: reader.u32()?,
        };
        state.restore_cell(local, sku, cell).map_err(misfit)?;
    }
    Ok(())
}

/// A restored part that does not fit the zone's shape.
fn misfit(error: ZoneError) -> RecordError {
    RecordError::SnapshotMisfit(error.to_string())
}

/// The counted days' capacity counters (the shape was checked by [`check_shape`]).
fn restore_days(
    reader: &mut Reader<'_>,
    network: &Network,
    state: &mut ZoneState,
) -> Result<(), RecordError> {
    let (warehouses, carriers) = (state.warehouses().len(), network.carriers.len());
    for _ in 0..reader.u8()? {
        let day = reader.u32()? as i32;
        let mut counts = |count: usize| {
            (0..count)
                .map(|_| reader.u32())
                .collect::<Result<Vec<_>, _>>()
        };
        let orders = counts(warehouses)?;
        let pickups = counts(warehouses * carriers)?;
        state.restore_day(day, orders, pickups).map_err(misfit)?;
    }
    Ok(())
}

/// The usual quantities (a SKU the catalogue no longer has is left out: nothing asks).
fn read_usual(
    reader: &mut Reader<'_>,
    catalog: &Catalog,
) -> Result<Vec<(SkuId, SkuUsual)>, RecordError> {
    let count = reader.u32()?;
    let mut usual = Vec::with_capacity((count as usize).min(catalog.len()));
    for _ in 0..count {
        let name = reader.text32()?;
        let quantities = SkuUsual {
            orders: reader.u32()?,
            mean: reader.f32()?,
        };
        if let Some(sku) = catalog.lookup(name) {
            usual.push((sku, quantities));
        }
    }
    Ok(usual)
}

/// Appends one record as a snapshot holds it:
/// `lifecycle:u8 [approvers:u8 (name:str)*] record:bytes`.
pub fn encode_entry(out: &mut Vec<u8>, record: &OrderRecord, network: &Network, catalog: &Catalog) {
    let approvers = record.approvers();
    let lifecycle = match record.lifecycle {
        Lifecycle::Live => 0,
        Lifecycle::Cancelled => 1,
        Lifecycle::Shipped => 2,
        Lifecycle::Released => 3,
        Lifecycle::RejectedAfterReview => 4,
    };
    out.push(
        lifecycle
            | if approvers.is_empty() { 0 } else { APPROVERS }
            | if record.buyer.noted { NOTED } else { 0 },
    );
    if !approvers.is_empty() {
        out.push(approvers.len().min(255) as u8);
        for name in approvers.iter().take(255) {
            text(out, name.as_bytes());
        }
    }
    let length_at = out.len();
    out.extend_from_slice(&0u32.to_le_bytes());
    encode_decision(out, record, network, catalog);
    let length = (out.len() - length_at - 4) as u32;
    out[length_at..length_at + 4].copy_from_slice(&length.to_le_bytes());
}

/// Appends a decision record as the journal holds it (its content hash, then what
/// `encode_decision` wrote) as the entry of a live record without approvers: what
/// [`encode_entry`] writes for such a record, without decoding and encoding it again.
pub(super) fn push_entry_of_payload(out: &mut Vec<u8>, payload: &[u8], noted: bool) {
    out.push(if noted { NOTED } else { 0 });
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
}

fn text(out: &mut Vec<u8>, text: &[u8]) {
    out.extend_from_slice(&(text.len() as u32).to_le_bytes());
    out.extend_from_slice(text);
}

/// Reads one record written by [`encode_entry`].
pub(super) fn decode_entry(
    reader: &mut Reader<'_>,
    network: &Network,
    catalog: &Catalog,
) -> Result<OrderRecord, RecordError> {
    let byte = reader.u8()?;
    let lifecycle = lifecycle(byte)?;
    let approvers = if byte & APPROVERS != 0 {
        let count = reader.u8()?;
        let names = (0..count)
            .map(|_| reader.text32().map(compact_str::CompactString::from))
            .collect::<Result<Vec<_>, _>>()?;
        Some(Box::new(names))
    } else {
        None
    };
    let (hash, body) = reader
        .bytes32()?
        .split_first_chunk::<8>()
        .ok_or(RecordError::Truncated)?;
    let content_hash = u64::from_le_bytes(*hash);
    let (decision, buyer) = decode_decision(body, network, catalog)?;
    Ok(OrderRecord {
        content_hash,
        decision,
        lifecycle,
        approvers,
        buyer,
        claim: Default::default(),
    })
}

/// The decision time of a record written by [`encode_entry`], read without decoding it.
pub fn entry_decided_at(entry: &[u8]) -> Result<i64, RecordError> {
    EntryHead::read(entry).map(|head| head.decided_at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::test_world::{World, rejected_record, world};

    /// A snapshot of the south zone (1) holding `count` closed records.
    fn closed_snapshot(world: &World, count: u32) -> Vec<u8> {
        let mut state = ZoneState::new(&world.network, ZoneId(1), world.catalog.len());
        for n in 0..count {
            state.restore_record(rejected_record(world, n), true);
        }
        encode_snapshot(&state, &world.network, &world.catalog, |_| true, |_| true).unwrap()
    }

    /// `bytes` restored as the south zone's, closed records to `store`, claims to `claims`.
    fn restore_south(
        world: &World,
        bytes: &[u8],
        on_disk: Option<(&Path, u64)>,
        store: ColdStore,
        claims: &Claims,
    ) -> ZoneState {
        let (network, catalog) = (&world.network, &world.catalog);
        restore_snapshot(
            bytes,
            on_disk,
            network,
            catalog,
            ZoneId(1),
            claims,
            Some(store),
        )
        .unwrap()
    }

    /// A cold store in `dir` whose files hold 1,000 bytes each.
    fn small_file_store(world: &World, dir: &Path) -> ColdStore {
        ColdStore::open(dir, world.network.clone(), world.catalog.clone())
            .unwrap()
            .with_file_bytes(1_000)
    }

    #[test]
    fn a_snapshot_encoded_into_its_file_is_the_one_encoded_in_memory() {
        let world = world("warehouse,sku,on_hand\nWS,A,5\n");
        // Records enough for several of the encoder's flushes and the file's pieces.
        let mut state = ZoneState::new(&world.network, ZoneId(1), world.catalog.len());
        for n in 0..8_000 {
            state.restore_record(rejected_record(&world, n), true);
        }
        let whole =
            encode_snapshot(&state, &world.network, &world.catalog, |_| true, |_| true).unwrap();
        assert!(whole.len() > 2 * (256 << 10), "{} bytes", whole.len());
        let dir = tempfile::tempdir().unwrap();
        let mut file = crate::journal::SnapshotWriter::create(dir.path(), 9).unwrap();
        let encoded = encode_snapshot_to(
            state.clone(),
            &world.network,
            &world.catalog,
            |_| true,
            |_| true,
            &mut file,
        )
        .unwrap();
        assert_eq!(encoded.kept, 8_000);
        let path = file.finish(&encoded.fill()).unwrap();
        let on_disk = std::fs::read(path).unwrap();
        assert!(on_disk[crate::journal::SNAPSHOT_HEADER_BYTES..] == whole[..]);
        // And it restores: every record back.
        let claims = Claims::default();
        let restored = restore_snapshot(
            &whole,
            None,
            &world.network,
            &world.catalog,
            ZoneId(1),
            &claims,
            None,
        )
        .unwrap();
        assert_eq!(restored.order_count(), 8_000);
        assert_eq!(*restored.order(7_999), rejected_record(&world, 7_999));
    }

    #[test]
    fn closed_records_restored_to_a_store_that_fails_stay_in_memory() {
        let world = world("warehouse,sku,on_hand\nWS,A,5\n");
        let bytes = closed_snapshot(&world, 40);
        let dir = tempfile::tempdir().unwrap();
        let store = small_file_store(&world, dir.path());
        // The store's second file cannot be made: its name is taken by a directory.
        std::fs::create_dir(dir.path().join("000001.cold")).unwrap();
        let claims = Claims::default();
        let state = restore_south(&world, &bytes, None, store, &claims);
        assert_eq!((state.order_count(), state.cold_count()), (40, 0));
        for n in 0..40 {
            assert_eq!(*state.order(n), rejected_record(&world, n), "record {n}");
            let claim = claims.get(&format!("order-{n}")).unwrap();
            assert_eq!((claim.zone, claim.slot), (ZoneId(1), n));
        }
    }

    #[test]
    fn closed_records_are_read_where_the_snapshot_file_holds_them() {
        let world = world("warehouse,sku,on_hand\nWS,A,5\n");
        let bytes = closed_snapshot(&world, 40);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("zone.snap");
        let mut whole = b"a header of 11 bytes".to_vec();
        whole.extend_from_slice(&bytes);
        std::fs::write(&file, &whole).unwrap();
        let cold_dir = dir.path().join("cold");
        let store =
            ColdStore::open(&cold_dir, world.network.clone(), world.catalog.clone()).unwrap();
        let claims = Claims::default();
        let mut state = restore_south(&world, &bytes, Some((&file, 20)), store, &claims);
        assert_eq!((state.order_count(), state.cold_count()), (40, 40));
        for n in 0..40 {
            assert_eq!(*state.order(n), rejected_record(&world, n), "record {n}");
        }
        assert_eq!(
            std::fs::read_dir(&cold_dir).unwrap().count(),
            0,
            "nothing copied"
        );
        // Past the window they go, and the snapshot file is the journal's: not deleted.
        state.expire(i64::MAX, &claims);
        assert_eq!(state.order_count(), 0);
        assert!(file.exists());
        assert_eq!(claims.get("order-7"), None);
    }

    #[test]
    fn closed_records_are_copied_to_the_store_as_they_are() {
        let world = world("warehouse,sku,on_hand\nWS,A,5\n");
        let bytes = closed_snapshot(&world, 40);
        let dir = tempfile::tempdir().unwrap();
        let store = small_file_store(&world, dir.path());
        let claims = Claims::default();
        let state = restore_south(&world, &bytes, None, store, &claims);
        assert_eq!((state.order_count(), state.cold_count()), (40, 40));
        for n in 0..40 {
            assert_eq!(*state.order(n), rejected_record(&world, n), "record {n}");
            assert!(state.hot(n).is_none(), "record {n} on disk");
        }
        // And a snapshot of that state copies them back as they were.
        let again = encode_snapshot(&state, &world.network, &world.catalog, |_| true, |_| true);
        assert_eq!(again.unwrap(), bytes);
    }
}
