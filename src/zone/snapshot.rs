//! A zone's whole state as one snapshot: after it, a restart replays only the records that
//! follow. Written off the zone's thread (`crate::serve::snapshotter`) from a copy of the
//! state, read back by [`super::recover`].

use super::cold::ColdError;
use super::records::{Reader, RecordError, decided_at, decode_decision, encode_decision, sku};
use super::state::CHILL_EVERY;
use super::state::Slot;
use super::{Claims, ColdStore, Lifecycle, OrderRecord, StockCell, ZoneState};
use crate::catalog::Catalog;
use crate::config::Network;
use crate::ids::ZoneId;

/// A zone's whole state, for a journal snapshot: after it, a restart replays only the records
/// that follow. Binary, little-endian, names rather than indexes (like the records):
///
/// ```text
/// "ORZS" version:u8 (2) zone:str next_seq:u64
/// warehouses:u16 (name:str)*           carriers:u16 (name:str)*
/// cells:u32 (local:u16 sku:str on_hand:u32 reserved:u32)*
/// days:u8 (day:i32 orders:u32*warehouses pickups:u32*(warehouses*carriers))*
/// records:u32 (lifecycle:u8 [approvers:u8 (name:str)*] record:bytes)*
///   (lifecycle: 0 live, 1 cancelled, 2 shipped, 3 released, 4 rejected after review, plus
///   128 when the approvers of a held order follow; record: as `encode_decision` writes it)
/// str, bytes = len:u32 then the bytes
/// ```
///
/// `keep` chooses the records kept: the idempotency window (a record left out is forgotten,
/// its id free again; its reservations, if any, are in the cells all the same);
/// `keep_entry` chooses among the records kept on disk ([`super::cold`]), each as its entry
/// (copied as it is: the cold store writes the snapshot's record format).
pub fn encode_snapshot(
    state: &ZoneState,
    network: &Network,
    catalog: &Catalog,
    mut keep: impl FnMut(&OrderRecord) -> bool,
    mut keep_entry: impl FnMut(&[u8]) -> bool,
) -> Result<Vec<u8>, ColdError> {
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
    for (_, slot) in state.slots() {
        let kept_now = match slot {
            Slot::Hot(record) => {
                keep(record).then(|| encode_entry(&mut out, record, network, catalog))
            }
            Slot::Cold(place) => {
                let entry = state.cold_entry(*place)?;
                keep_entry(&entry).then(|| out.extend_from_slice(&entry))
            }
        };
        kept += u32::from(kept_now.is_some());
    }
    out[count_at..count_at + 4].copy_from_slice(&kept.to_le_bytes());
    Ok(out)
}

const SNAPSHOT_MAGIC: &[u8; 4] = b"ORZS";
/// 3 since approvals of held orders (issue 11); version 2 snapshots (no approvals, no
/// reviewed orders) are read as they are.
const SNAPSHOT_VERSION: u8 = 3;

/// The lifecycle byte's flag: the record's approvers follow it.
const APPROVERS: u8 = 128;

/// Reads a snapshot written by [`encode_snapshot`] into a new zone state for `zone`, and
/// its records' claims into `claims`; closed records go on to `cold`, when given, as they
/// are read.
pub fn restore_snapshot(
    bytes: &[u8],
    network: &Network,
    catalog: &Catalog,
    zone: ZoneId,
    claims: &Claims,
    cold: Option<ColdStore>,
) -> Result<ZoneState, RecordError> {
    let mut reader = Reader(bytes);
    if reader.take(4)? != SNAPSHOT_MAGIC || !matches!(reader.u8()?, 2 | SNAPSHOT_VERSION) {
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
    check_shape(&mut reader, network, &state)?;
    restore_cells(&mut reader, catalog, &mut state)?;
    restore_days(&mut reader, network, &mut state)?;
    for number in 0..reader.u32()? {
        let at = bytes.len() - reader.0.len();
        let (id, content_hash, slot) = restore_record(&mut reader, network, catalog, &mut state)
            .map_err(|source| RecordError::SnapshotRecord {
                number,
                offset: at,
                source: Box::new(source),
            })?;
        let place = claims.restore(&id, content_hash, zone, slot);
        state.set_claim(slot, place);
        state.chill_every(CHILL_EVERY, claims);
    }
    reader.finish()?;
    Ok(state)
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
        state
            .restore_cell(local, sku, cell)
            .map_err(|source| RecordError::SnapshotMisfit(source.to_string()))?;
    }
    Ok(())
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
        state
            .restore_day(day, orders, pickups)
            .map_err(|source| RecordError::SnapshotMisfit(source.to_string()))?;
    }
    Ok(())
}

/// One record of a snapshot into `state`: its id, content hash and slot, for the claims.
fn restore_record(
    reader: &mut Reader<'_>,
    network: &Network,
    catalog: &Catalog,
    state: &mut ZoneState,
) -> Result<(compact_str::CompactString, u64, u32), RecordError> {
    let record = decode_entry(reader, network, catalog)?;
    let (id, content_hash) = (record.decision.order_id.clone(), record.content_hash);
    let slot = state.restore_record(record);
    Ok((id, content_hash, slot))
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
    out.push(lifecycle | if approvers.is_empty() { 0 } else { APPROVERS });
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
    let lifecycle = match byte & !APPROVERS {
        0 => Lifecycle::Live,
        1 => Lifecycle::Cancelled,
        2 => Lifecycle::Shipped,
        3 => Lifecycle::Released,
        4 => Lifecycle::RejectedAfterReview,
        value => {
            return Err(RecordError::UnknownCode {
                what: "lifecycle",
                value,
            });
        }
    };
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
    let mut reader = Reader(entry);
    if reader.u8()? & APPROVERS != 0 {
        for _ in 0..reader.u8()? {
            reader.text32()?;
        }
    }
    let (_, record) = reader
        .bytes32()?
        .split_first_chunk::<8>()
        .ok_or(RecordError::Truncated)?;
    decided_at(record)
}
