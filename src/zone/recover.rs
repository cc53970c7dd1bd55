//! A zone rebuilt from its journal: its newest snapshot, then every record after it.
//!
//! [`open`] is the service's start: it opens (and so repairs: a torn tail is cut) the
//! zone's journal, or starts a new one from the stock file. [`verify`] rebuilds a zone from
//! a journal without changing a byte, for `order-router journal verify --replay`, which
//! checks a journal against a config and catalogue before a restart depends on it. Both
//! replay through [`rebuild`]; a record that cannot be replayed stops them with the zone,
//! the file and the byte offset where it is.

use super::records::{RecordError, Replaying, replay};
use super::snapshot::{encode_snapshot, restore_snapshot};
use super::state::CHILL_EVERY;
use super::{Claims, ColdStore, ZoneState};
use crate::catalog::{Catalog, StockLevel};
use crate::config::Network;
use crate::ids::ZoneId;
use crate::journal::{
    self, Journal, JournalError, JournalOptions, Record, Snapshot, SyncMode, wal,
};
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Why a zone could not be rebuilt.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error("zone {zone}: {source}")]
    Journal {
        zone: String,
        #[source]
        source: Box<JournalError>,
    },
    #[error("zone {zone}: restoring the snapshot {}: {source}", path.display())]
    Snapshot {
        zone: String,
        path: PathBuf,
        #[source]
        source: Box<RecordError>,
    },
    #[error("zone {zone}: record {lsn} in {} at byte {offset}: {source}", segment.display())]
    Record {
        zone: String,
        lsn: u64,
        segment: PathBuf,
        offset: u64,
        #[source]
        source: Box<RecordError>,
    },
    /// A closed decision copied to the cold store as the journal holds it, decoded into
    /// memory after the store failed to write it, did not decode.
    #[error(
        "zone {zone}: a closed decision of the journal, kept in memory after the cold store failed: {source}"
    )]
    Copied {
        zone: String,
        #[source]
        source: Box<RecordError>,
    },
}

/// One record to replay: its lsn, kind and payload, and where it is when that is known.
pub struct Replayed<'a> {
    pub lsn: u64,
    pub kind: u8,
    pub payload: Cow<'a, [u8]>,
    /// The segment file and byte offset (recovery reads records without them, and finds
    /// them again only for a record that fails).
    pub at: Option<(PathBuf, u64)>,
}

/// The zone a rebuild makes: its id, the claims table its orders' ids go to, and where its
/// closed records go (`None`: they stay in memory).
pub struct Target<'a> {
    pub zone: ZoneId,
    pub claims: &'a Claims,
    pub cold: Option<ColdStore>,
}

impl<'a> Target<'a> {
    /// A zone whose records stay in memory.
    pub fn in_memory(zone: ZoneId, claims: &'a Claims) -> Target<'a> {
        Target {
            zone,
            claims,
            cold: None,
        }
    }
}

/// Rebuilds the zone of `target` from `snapshot` (or from nothing) and then `records`, in
/// order, claiming its orders' ids in the target's claims. A record that fails is reported with its place: its own, or
/// what `locate` finds for its lsn.
pub fn rebuild<'a>(
    network: &Network,
    catalog: &Catalog,
    target: Target<'_>,
    snapshot: Option<&Snapshot>,
    records: impl IntoIterator<Item = Result<Replayed<'a>, RecoverError>>,
    locate: impl Fn(u64) -> (PathBuf, u64),
) -> Result<ZoneState, RecoverError> {
    let Target { zone, claims, cold } = target;
    let name = network.zone_name(zone);
    let mut state = match snapshot {
        Some(snapshot) => restore_snapshot(
            &snapshot.bytes,
            Some((&snapshot.path, journal::SNAPSHOT_PAYLOAD_OFFSET)),
            network,
            catalog,
            zone,
            claims,
            cold,
        )
        .map_err(|source| RecoverError::Snapshot {
            zone: name.to_owned(),
            path: snapshot.path.clone(),
            source: Box::new(source),
        })?,
        None => {
            let mut state = ZoneState::new(network, zone, catalog.len());
            if let Some(cold) = cold {
                state.set_cold_store(cold);
            }
            state
        }
    };
    let mut replaying = Replaying::new(claims);
    for record in records {
        let record = record?;
        let copied = replaying.chill_every(&mut state, CHILL_EVERY, network, catalog);
        copied.map_err(|source| RecoverError::Copied {
            zone: name.to_owned(),
            source: Box::new(source),
        })?;
        replay(
            &mut state,
            &mut replaying,
            network,
            catalog,
            record.kind,
            &record.payload,
        )
        .map_err(|source| {
            let (segment, offset) = record.at.unwrap_or_else(|| locate(record.lsn));
            RecoverError::Record {
                zone: name.to_owned(),
                lsn: record.lsn,
                segment,
                offset,
                source: Box::new(source),
            }
        })?;
    }
    replaying
        .finish(&mut state, network, catalog)
        .map_err(|source| RecoverError::Copied {
            zone: name.to_owned(),
            source: Box::new(source),
        })?;
    state.chill_every(0, claims);
    Ok(state)
}

/// Rebuilds `zone` from its journal in `dir`, claims included; a zone with an empty journal
/// starts from the levels of `stock` for its warehouses and journals them first. `tail`:
/// the zone's records in the journal writers' write-ahead logs ([`wal::read_tails`]); those
/// past the journal's end are added to it first ([`wal::fold`]). The zone's state, and its
/// journal (`None` when nothing is journaled: `SyncMode::None`).
pub fn open(
    dir: &Path,
    options: &JournalOptions,
    network: &Network,
    catalog: &Catalog,
    stock: &[StockLevel],
    target: Target<'_>,
    tail: Vec<Record>,
) -> Result<(ZoneState, Option<Journal>), RecoverError> {
    let Target { zone, claims, cold } = target;
    let name = network.zone_name(zone);
    let failed = |source| RecoverError::Journal {
        zone: name.to_owned(),
        source: Box::new(source),
    };
    let own = stock
        .iter()
        .filter(|level| network.warehouses[level.warehouse.index()].zone == zone);
    if options.mode == SyncMode::None {
        let mut state = stocked(network, catalog, zone, own);
        if let Some(cold) = cold {
            state.set_cold_store(cold);
        }
        return Ok((state, None));
    }
    std::fs::create_dir_all(dir)
        .map_err(|source| failed(JournalError::io("creating", dir, source)))?;
    let started = Instant::now();
    let (mut journal, mut recovered) = Journal::open(dir, options.clone()).map_err(failed)?;
    if let Some(torn) = &recovered.torn_tail {
        tracing::warn!("zone {name}: {torn}");
    }
    let folded = wal::fold(&mut journal, tail).map_err(failed)?;
    if !folded.is_empty() {
        tracing::info!(
            "zone {name}: {} records (lsn {} to {}) added to its journal from the write-ahead log",
            folded.len(),
            folded[0].lsn,
            folded[folded.len() - 1].lsn
        );
        recovered.records.extend(folded);
    }
    if recovered.records.is_empty() && recovered.snapshot.is_none() {
        let mut state = start_new(&mut journal, network, catalog, zone, own).map_err(failed)?;
        if let Some(cold) = cold {
            state.set_cold_store(cold);
        }
        tracing::info!(
            "zone {name}: new journal in {}, stock levels from the stock file",
            dir.display()
        );
        return Ok((state, Some(journal)));
    }
    claims.reserve(recovered.records.len());
    let records = recovered.records.iter().map(|record| {
        Ok(Replayed {
            lsn: record.lsn,
            kind: record.kind,
            payload: Cow::Borrowed(&record.payload),
            at: None,
        })
    });
    let state = rebuild(
        network,
        catalog,
        Target { zone, claims, cold },
        recovered.snapshot.as_ref(),
        records,
        |lsn| locate(dir, lsn),
    )?;
    tracing::info!(
        "zone {name}: {}{} records replayed in {:.0?} ({} orders); the stock file is not read again",
        recovered
            .snapshot
            .as_ref()
            .map_or(String::new(), |snapshot| format!(
                "snapshot at lsn {} restored, ",
                snapshot.lsn
            )),
        recovered.records.len(),
        started.elapsed(),
        state.order_count()
    );
    Ok((state, Some(journal)))
}

/// Rebuilds `zone` from the journal in `dir` without changing it: the state the next start
/// would have (a torn tail is left out, as the start would cut it).
pub fn verify(
    dir: &Path,
    network: &Network,
    catalog: &Catalog,
    zone: ZoneId,
    claims: &Claims,
) -> Result<ZoneState, RecoverError> {
    let failed = |source| RecoverError::Journal {
        zone: network.zone_name(zone).to_owned(),
        source: Box::new(source),
    };
    let snapshot = journal::read_newest_snapshot(dir).map_err(failed)?;
    let after = snapshot.as_ref().map_or(0, |snapshot| snapshot.lsn);
    // Each record is replayed as it is read: one segment in memory at a time.
    let records = journal::read_records(dir)
        .map_err(failed)?
        .map(|entry| {
            let entry = entry.map_err(failed)?;
            Ok(Replayed {
                lsn: entry.lsn,
                kind: entry.kind,
                payload: Cow::Owned(entry.payload),
                at: Some((entry.segment, entry.offset)),
            })
        })
        .filter(|record| record.as_ref().map_or(true, |record| record.lsn > after));
    rebuild(
        network,
        catalog,
        Target::in_memory(zone, claims),
        snapshot.as_ref(),
        records,
        |_| (dir.to_path_buf(), 0),
    )
}

/// A new zone starts from the stock file. Its levels go in as one snapshot at lsn 0,
/// written whole or not at all (a temporary file renamed into place): a crash halfway
/// leaves a journal that is still new, never one with half the stock.
fn start_new<'a>(
    journal: &mut Journal,
    network: &Network,
    catalog: &Catalog,
    zone: ZoneId,
    stock: impl Iterator<Item = &'a StockLevel>,
) -> Result<ZoneState, JournalError> {
    let state = stocked(network, catalog, zone, stock);
    // A new zone's state has no records, on disk or elsewhere: nothing to read.
    let snapshot = encode_snapshot(&state, network, catalog, |_| true, |_| true)
        .expect("a new zone has no cold records");
    journal.write_snapshot(0, &snapshot)?;
    Ok(state)
}

/// A new zone holding the levels of `stock` (all of them its own).
fn stocked<'a>(
    network: &Network,
    catalog: &Catalog,
    zone: ZoneId,
    stock: impl Iterator<Item = &'a StockLevel>,
) -> ZoneState {
    let mut state = ZoneState::new(network, zone, catalog.len());
    for level in stock {
        // Nothing is reserved yet, so no level can fall below its reservations.
        state
            .set_on_hand(*level)
            .expect("initial stock levels always apply");
    }
    state
}

/// The segment file holding record `lsn` of the journal in `dir`, and the record's byte
/// offset in it; read again only when a record failed to replay.
fn locate(dir: &Path, lsn: u64) -> (PathBuf, u64) {
    journal::read_records(dir)
        .ok()
        .and_then(|mut records| {
            records.find_map(|entry| entry.ok().filter(|entry| entry.lsn == lsn))
        })
        .map_or((dir.to_path_buf(), 0), |entry| {
            (entry.segment, entry.offset)
        })
}

/// Recovery against the live state: any sequence of orders (with their fallbacks and
/// duplicates), cancels, shipments and stock levels, journaled per zone as the service
/// journals them (the records [`crate::zone::decide`] returns), rebuilds zones equal to the
/// live ones, both by replaying the journals and by restoring snapshots of the live state.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{CarrierId, SkuId, WarehouseId};
    use crate::render;
    use crate::risk::CustomerBook;
    use crate::time::Millis;
    use crate::zone::records::RecordBatch;
    use crate::zone::test_world::*;
    use crate::zone::{Decided, Next, Zone, admit, decide};
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Operation {
        Order {
            id: u8,
            south: bool,
            sku_b: bool,
            qty: u32,
            held: bool,
            customer: u8,
            price: u32,
        },
        Cancel {
            id: u8,
        },
        Approve {
            id: u8,
            approver: u8,
            needed: usize,
        },
        Reject {
            id: u8,
        },
        Ship {
            id: u8,
        },
        Stock {
            south: bool,
            sku_b: bool,
            on_hand: u32,
        },
    }

    fn operation() -> impl Strategy<Value = Operation> {
        prop_oneof![
            6 => (0u8..24, any::<bool>(), any::<bool>(), 1u32..5, proptest::bool::weighted(0.3), 0u8..3, 1u32..8)
                .prop_map(|(id, south, sku_b, qty, held, customer, price)| Operation::Order { id, south, sku_b, qty, held, customer, price }),
            1 => (0u8..24).prop_map(|id| Operation::Cancel { id }),
            2 => (0u8..24, 0u8..3, 1usize..3)
                .prop_map(|(id, approver, needed)| Operation::Approve { id, approver, needed }),
            1 => (0u8..24).prop_map(|id| Operation::Reject { id }),
            1 => (0u8..24).prop_map(|id| Operation::Ship { id }),
            1 => (any::<bool>(), any::<bool>(), 0u32..12)
                .prop_map(|(south, sku_b, on_hand)| Operation::Stock { south, sku_b, on_hand }),
        ]
    }

    /// Each zone's journal: `(lsn, kind, payload)`.
    type Journals = Vec<Vec<(u64, u8, Vec<u8>)>>;

    fn journal(journals: &mut Journals, zone: usize, batch: &RecordBatch) {
        for (kind, payload) in batch.iter() {
            let lsn = journals[zone].len() as u64 + 1;
            journals[zone].push((lsn, kind as u8, payload.to_vec()));
        }
    }

    fn name(id: u8) -> String {
        format!("o{id}")
    }

    /// Takes one order to its answer, one batch decision a step, journaling what each step
    /// returns to its zone, as the zone actors do.
    fn decide_one(
        world: &World,
        zones: &mut [Zone],
        order: crate::model::Order,
        journals: &mut Journals,
    ) {
        let claims = zones[0].claims().clone();
        let key = claims.key(&order.id);
        let (mut zone, visit) = admit(&claims, &world.network, order, key, 0, 1);
        let mut visits = vec![visit];
        loop {
            let mut decided = Decided::new(true);
            let mut out = Vec::new();
            decide(
                &mut zones[zone.index()],
                &world.network,
                &mut visits,
                Millis(0),
                &mut out,
                &mut decided,
            );
            journal(journals, zone.index(), decided.records.as_ref().unwrap());
            // What goes on stays in `visits`.
            match decided.next.pop() {
                Some(Next::Forward(to)) => zone = to,
                Some(Next::Wait) => unreachable!("one order at a time never waits"),
                None => return,
            }
        }
    }

    /// The customers' open exposure as a plain model: open orders by id, with their
    /// customer and value in cents.
    type Exposures = std::collections::BTreeMap<String, (String, i64)>;

    /// A credit rule that rejects: customer `k0` may have 10.00 open, `k1` 25.00, `k2` any.
    /// The credit rule, and two rules that never trip but make the zones keep what a restart
    /// must rebuild: histories (orders noted) and the usual quantities.
    const CREDIT: &str = "\n[[risk]]\nid = \"credit\"\ncredit_limit = true\naction = \"reject\"\n\
        \n[[risk]]\nid = \"far\"\ndistance_km_over = 100000.0\naction = \"hold\"\n\
        \n[[risk]]\nid = \"bulk\"\nquantity_over_usual = 1000.0\nusual_after = 1000\naction = \"hold\"\n";
    const LIMITS: [(&str, Option<i64>); 3] = [("k0", Some(1000)), ("k1", Some(2500)), ("k2", None)];

    /// Decides an `Operation::Order`, journaling what it changed; a new decision that
    /// reserved joins `open`, the exposure model.
    fn place(
        world: &World,
        zones: &mut [Zone],
        operation: Operation,
        journals: &mut Journals,
        open: &mut Exposures,
    ) {
        let Operation::Order {
            id,
            south,
            sku_b,
            qty,
            held,
            customer,
            price,
        } = operation
        else {
            unreachable!("an order")
        };
        let claims = zones[0].claims().clone();
        let (region, sku) = (if south { "S" } else { "N" }, if sku_b { "B" } else { "A" });
        let mut order = order(world, &name(id), region, sku, qty);
        // As if tagged with one of the policy's hold tags: held for review.
        order.hold_tagged = held;
        order.customer_id = LIMITS[usize::from(customer)].0.into();
        order.lines[0].unit_price = f64::from(price);
        let new = claims.get(&name(id)).is_none();
        let value = i64::from(price * qty) * 100;
        decide_one(world, zones, order, journals);
        let claim = claims.get(&name(id)).unwrap();
        let record = zones[claim.zone.index()].state().order(claim.slot);
        if new && record.decision.reserves() {
            let customer = LIMITS[usize::from(customer)].0.to_owned();
            open.insert(name(id), (customer, value));
        }
    }

    /// Applies `operation` to the live zones and journals what it changed; keeps `open`,
    /// the model of what is charged to each customer.
    fn apply(
        world: &World,
        zones: &mut [Zone],
        operation: Operation,
        journals: &mut Journals,
        open: &mut Exposures,
    ) {
        let claims = zones[0].claims().clone();
        let mut batch = RecordBatch::default();
        match operation {
            Operation::Order { .. } => place(world, zones, operation, journals, open),
            Operation::Approve {
                id,
                approver,
                needed,
            } => {
                let Some(claim) = claims.get(&name(id)).filter(|claim| claim.is_decided()) else {
                    return;
                };
                let state = zones[claim.zone.index()].state_mut();
                let approver = format!("ops-{approver}");
                match state.approve(claim.slot, &approver, needed) {
                    Ok((_, crate::zone::Approval::Again)) | Err(_) => {}
                    Ok((_, approval)) => {
                        let released = approval == crate::zone::Approval::Released;
                        batch.push_approved(&name(id), &approver, released);
                        journal(journals, claim.zone.index(), &batch);
                    }
                }
            }
            Operation::Reject { id } => {
                let Some(claim) = claims.get(&name(id)).filter(|claim| claim.is_decided()) else {
                    return;
                };
                let end = crate::zone::Lifecycle::RejectedAfterReview;
                if let Ok(record) = zones[claim.zone.index()].close(claim.slot, end) {
                    batch.push_closed(&name(id), record.lifecycle);
                    journal(journals, claim.zone.index(), &batch);
                    open.remove(&name(id));
                }
            }
            Operation::Cancel { id } | Operation::Ship { id } => {
                let Some(claim) = claims.get(&name(id)) else {
                    return;
                };
                let end = match operation {
                    Operation::Cancel { .. } => crate::zone::Lifecycle::Cancelled,
                    _ => crate::zone::Lifecycle::Shipped,
                };
                if let Ok(record) = zones[claim.zone.index()].close(claim.slot, end) {
                    batch.push_closed(&name(id), record.lifecycle);
                    journal(journals, claim.zone.index(), &batch);
                    open.remove(&name(id));
                }
            }
            Operation::Stock {
                south,
                sku_b,
                on_hand,
            } => {
                let id = world
                    .network
                    .warehouse_ids
                    .get(if south { "WS" } else { "WN" })
                    .unwrap();
                let warehouse = WarehouseId(id as u16);
                let level = StockLevel {
                    warehouse,
                    sku: SkuId(u32::from(sku_b)),
                    on_hand,
                };
                let zone = world.network.warehouses[warehouse.index()].zone.index();
                if zones[zone].state_mut().set_on_hand(level).is_ok() {
                    batch.push_stock(&world.network, &world.catalog, level);
                    journal(journals, zone, &batch);
                }
            }
        }
    }

    /// Fails unless `state` holds what `live` holds: records, stock, counters, sequence.
    fn assert_same(
        world: &World,
        state: &ZoneState,
        live: &ZoneState,
    ) -> Result<(), TestCaseError> {
        let render = |state: &ZoneState, slot: u32| {
            let mut out = Vec::new();
            let record = state.order(slot);
            render::write_decision(
                &mut out,
                &record.decision,
                false,
                &world.network,
                &world.catalog,
            );
            let approvers = record.approvers().to_vec();
            (out, record.content_hash, record.lifecycle, approvers)
        };
        let in_review = |state: &ZoneState| -> Vec<String> {
            state
                .in_review()
                .map(|record| record.decision.order_id.to_string())
                .collect()
        };
        prop_assert_eq!(in_review(state), in_review(live));
        prop_assert_eq!(state.order_count(), live.order_count());
        for slot in 0..live.order_count() as u32 {
            prop_assert_eq!(render(state, slot), render(live, slot));
            // The buyer too (its noted flag rebuilds the histories at a restart).
            prop_assert_eq!(&*state.order(slot), &*live.order(slot));
        }
        for local in 0..live.warehouses().len() {
            for sku in 0..world.catalog.len() {
                let sku = SkuId(sku as u32);
                prop_assert_eq!(state.cell(local, sku), live.cell(local, sku));
            }
            prop_assert_eq!(
                state.warehouse_orders(local, 0),
                live.warehouse_orders(local, 0)
            );
            for carrier in 0..world.network.carriers.len() {
                let carrier = CarrierId(carrier as u16);
                prop_assert_eq!(
                    state.pickups(local, carrier, 0),
                    live.pickups(local, carrier, 0)
                );
            }
        }
        prop_assert_eq!(state.next_seq(), live.next_seq());
        Ok(())
    }

    /// Restores `snapshot` with its closed records left where they are, in the snapshot's
    /// file, read from there by the cold store (not decoded, not copied); checks that what
    /// the zone answers and rebuilds needs no cold record read.
    fn restore_to_cold(
        world: &World,
        zone: ZoneId,
        claims: &Claims,
        snapshot: &Snapshot,
        dir: &std::path::Path,
        live: &ZoneState,
    ) -> Result<ZoneState, TestCaseError> {
        let index = zone.index();
        let nowhere = |lsn| (PathBuf::from("journal"), lsn);
        let store = ColdStore::open(
            &dir.join(index.to_string()),
            world.network.clone(),
            world.catalog.clone(),
        )
        .unwrap();
        let file = dir.join(format!("snapshot-{index}"));
        let mut whole = vec![0; crate::journal::SNAPSHOT_PAYLOAD_OFFSET as usize];
        whole.extend_from_slice(&snapshot.bytes);
        std::fs::write(&file, whole).unwrap();
        let on_disk = Snapshot {
            path: file,
            ..snapshot.clone()
        };
        let target = Target {
            zone,
            claims,
            cold: Some(store),
        };
        let cold = rebuild(
            &world.network,
            &world.catalog,
            target,
            Some(&on_disk),
            std::iter::empty(),
            nowhere,
        )
        .unwrap();
        let written = std::fs::read_dir(dir.join(index.to_string()))
            .unwrap()
            .count();
        prop_assert_eq!(written, 0, "nothing copied to the cold store's own files");
        let closed = live.hot_orders().filter(|record| !record.is_open()).count();
        prop_assert_eq!(cold.cold_count(), closed, "every closed record on disk");
        for (slot, item) in cold.slots() {
            if let crate::zone::state::Slot::Cold(place) = item {
                let record = cold.order(slot);
                prop_assert_eq!(place.lifecycle(), record.lifecycle);
                prop_assert_eq!(place.noted(), record.buyer.noted);
            }
        }
        Ok(cold)
    }

    /// Replays `journal` into a zone with a cold store: its decisions closed from the start
    /// go there as the journal holds them (`records::Replaying`), the other closed records
    /// at the chills; each closed record's entry on disk is the one its live record encodes.
    fn replay_to_cold(
        world: &World,
        zone: ZoneId,
        claims: &Claims,
        journal: &[(u64, u8, Vec<u8>)],
        dir: &std::path::Path,
        live: &ZoneState,
    ) -> Result<ZoneState, TestCaseError> {
        let store = ColdStore::open(
            &dir.join(format!("replayed-{}", zone.index())),
            world.network.clone(),
            world.catalog.clone(),
        )
        .unwrap();
        let records = journal.iter().map(|(lsn, kind, payload)| {
            Ok(Replayed {
                lsn: *lsn,
                kind: *kind,
                payload: Cow::Borrowed(payload),
                at: None,
            })
        });
        let target = Target {
            zone,
            claims,
            cold: Some(store),
        };
        let nowhere = |lsn| (PathBuf::from("journal"), lsn);
        let state = rebuild(
            &world.network,
            &world.catalog,
            target,
            None,
            records,
            nowhere,
        )
        .unwrap();
        let closed = live.hot_orders().filter(|record| !record.is_open()).count();
        prop_assert_eq!(state.cold_count(), closed, "every closed record on disk");
        let mut reader = state.cold_reader().expect("a store");
        for (slot, item) in state.slots() {
            if let crate::zone::state::Slot::Cold(place) = item {
                let mut encoded = Vec::new();
                let record = live.order(slot);
                crate::zone::snapshot::encode_entry(
                    &mut encoded,
                    &record,
                    &world.network,
                    &world.catalog,
                );
                prop_assert_eq!(reader.entry(*place).unwrap(), &encoded[..], "slot {}", slot);
                prop_assert_eq!(place.noted(), record.buyer.noted);
                prop_assert_eq!(place.lifecycle(), record.lifecycle);
            }
        }
        drop(reader);
        Ok(state)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn replaying_the_journals_rebuilds_every_zone(operations in proptest::collection::vec(operation(), 1..60)) {
            let world = world_with(CREDIT, "warehouse,sku,on_hand\nWS,A,6\nWN,B,6\nWN,A,2\n");
            let mut zones = zones(&world);
            let claims = zones[0].claims().clone();
            let book = zones[0].customers().clone();
            for (customer, limit) in LIMITS {
                book.set_limit(customer, limit);
            }
            let mut open = Exposures::new();
            let mut journals: Journals = vec![Vec::new(); zones.len()];
            for level in &world.stock {
                let zone = world.network.warehouses[level.warehouse.index()].zone.index();
                let mut batch = RecordBatch::default();
                batch.push_stock(&world.network, &world.catalog, *level);
                journal(&mut journals, zone, &batch);
            }
            for operation in operations {
                apply(&world, &mut zones, operation, &mut journals, &mut open);
            }
            let (replayed_claims, snapshot_claims, cold_claims) = (Claims::default(), Claims::default(), Claims::default());
            let replayed_cold_claims = Claims::default();
            let (replayed_book, snapshot_book, cold_book) = (CustomerBook::new(zones.len()), CustomerBook::new(zones.len()), CustomerBook::new(zones.len()));
            for (customer, limit) in LIMITS {
                replayed_book.set_limit(customer, limit);
                snapshot_book.set_limit(customer, limit);
                cold_book.set_limit(customer, limit);
            }
            let cold_dir = tempfile::tempdir().unwrap();
            for (index, journal) in journals.iter().enumerate() {
                let zone = ZoneId(index as u16);
                let records = journal.iter().map(|(lsn, kind, payload)| {
                    Ok(Replayed { lsn: *lsn, kind: *kind, payload: Cow::Borrowed(payload), at: None })
                });
                let nowhere = |lsn| (PathBuf::from("journal"), lsn);
                let replayed = rebuild(&world.network, &world.catalog, Target::in_memory(zone, &replayed_claims), None, records, nowhere).unwrap();
                let live = zones[index].state();
                let snapshot = Snapshot {
                    lsn: journal.len() as u64,
                    bytes: encode_snapshot(live, &world.network, &world.catalog, |_| true, |_| true).unwrap(),
                    path: PathBuf::from("snapshot"),
                };
                let restored = rebuild(&world.network, &world.catalog, Target::in_memory(zone, &snapshot_claims), Some(&snapshot), std::iter::empty(), nowhere).unwrap();
                let cold = restore_to_cold(&world, zone, &cold_claims, &snapshot, cold_dir.path(), live)?;
                let replayed_cold = replay_to_cold(&world, zone, &replayed_cold_claims, journal, cold_dir.path(), live)?;
                assert_same(&world, &replayed_cold, live)?;
                assert_same(&world, &replayed, live)?;
                assert_same(&world, &restored, live)?;
                assert_same(&world, &cold, live)?;
                // Each record notes where its id's claim stands (released or moved by that
                // place when it leaves), however it was restored.
                for (state, claims) in [(&replayed, &replayed_claims), (&restored, &snapshot_claims), (&cold, &cold_claims), (&replayed_cold, &replayed_cold_claims)] {
                    for slot in 0..state.order_count() as u32 {
                        let claim = state.claim_of(slot).and_then(|place| claims.at(place));
                        prop_assert_eq!(claim.map(|claim| (claim.zone, claim.slot)), Some((zone, slot)));
                    }
                }
                prop_assert_eq!(restored.usual(), live.usual());
                prop_assert_eq!(cold.usual(), live.usual());
                for record in replayed.orders() {
                    replayed_book.restore(&record);
                }
                for record in restored.orders() {
                    snapshot_book.restore(&record);
                }
                for record in cold.orders() {
                    cold_book.restore(&record);
                }
            }
            // Exposure: exact live (charged and released as orders come and close), never
            // past a limit the rule rejects at, and the same once rebuilt from the journals
            // or a snapshot.
            for (customer, limit) in LIMITS {
                let model: i64 = open.values().filter(|(owner, _)| owner == customer).map(|(_, cents)| cents).sum();
                let cents = |book: &CustomerBook| (book.exposure(customer).exposure * 100.0).round() as i64;
                prop_assert_eq!(cents(&book), model, "live, customer {}", customer);
                prop_assert!(limit.is_none_or(|limit| model <= limit), "{} over its limit", customer);
                prop_assert_eq!(cents(&replayed_book), model, "replayed, customer {}", customer);
                prop_assert_eq!(cents(&snapshot_book), model, "from a snapshot, customer {}", customer);
                prop_assert_eq!(cents(&cold_book), model, "from a snapshot to disk, customer {}", customer);
            }
            for id in 0..24 {
                prop_assert_eq!(snapshot_claims.get(&name(id)), claims.get(&name(id)));
                prop_assert_eq!(replayed_claims.get(&name(id)), claims.get(&name(id)));
                prop_assert_eq!(cold_claims.get(&name(id)), claims.get(&name(id)));
            }
        }
    }

    /// The zones after one order, "h1" (2 units of A in the north, where WN is the only
    /// warehouse: local 0), held for review; and its claim.
    fn one_held_order() -> (Vec<Zone>, crate::zone::Claim) {
        let world = world("warehouse,sku,on_hand\nWN,A,6\n");
        let mut zones = zones(&world);
        let mut journals: Journals = vec![Vec::new(); zones.len()];
        let mut held = order(&world, "h1", "N", "A", 2);
        held.hold_tagged = true;
        decide_one(&world, &mut zones, held, &mut journals);
        let claim = zones[0].claims().get("h1").unwrap();
        (zones, claim)
    }

    #[test]
    fn a_held_order_needs_distinct_approvers_and_cannot_ship_before() {
        use crate::zone::{Approval, Lifecycle, ZoneError};
        let (mut zones, claim) = one_held_order();
        let state = zones[claim.zone.index()].state_mut();
        assert_eq!(state.in_review().count(), 1);
        let refused = state.ship(claim.slot).unwrap_err();
        assert!(
            matches!(refused, ZoneError::AwaitingReview { .. }),
            "{refused}"
        );
        let approve = |state: &mut ZoneState, who: &str| {
            let (record, approval) = state.approve(claim.slot, who, 2).unwrap();
            (approval, record.lifecycle, record.approvers().len())
        };
        assert_eq!(
            approve(state, "ann"),
            (Approval::Counted, Lifecycle::Live, 1)
        );
        assert_eq!(approve(state, "ann"), (Approval::Again, Lifecycle::Live, 1));
        assert_eq!(
            approve(state, "bob"),
            (Approval::Released, Lifecycle::Released, 2)
        );
        assert_eq!(state.in_review().count(), 0);
        let late = state.reject(claim.slot).unwrap_err();
        assert_eq!(
            late.to_string(),
            "order 'h1' is not waiting for review: it is released"
        );
        assert_eq!(
            state.cell(0, SkuId(0)).reserved,
            2,
            "kept while held and after"
        );
        assert_eq!(
            state.ship(claim.slot).unwrap().lifecycle,
            Lifecycle::Shipped
        );
    }

    #[test]
    fn a_rejected_order_gives_its_units_back() {
        use crate::zone::Lifecycle;
        let (mut zones, claim) = one_held_order();
        let state = zones[claim.zone.index()].state_mut();
        let day = state.order(claim.slot).decision.decided_at.utc_day();
        assert_eq!(state.warehouse_orders(0, day), 1);
        let record = state.reject(claim.slot).unwrap();
        assert_eq!(record.lifecycle, Lifecycle::RejectedAfterReview);
        assert_eq!(state.cell(0, SkuId(0)).reserved, 0);
        assert_eq!(
            state.warehouse_orders(0, day),
            0,
            "the day's capacity is given back"
        );
        assert!(
            state.approve(claim.slot, "ann", 1).is_err(),
            "no approval after"
        );
    }

    #[test]
    fn a_record_that_cannot_be_replayed_is_named_by_zone_file_and_offset() {
        let world = world("warehouse,sku,on_hand\nWS,A,6\n");
        let claims = Claims::default();
        let records = [Ok(Replayed {
            lsn: 7,
            kind: 99,
            payload: Cow::Borrowed(&b"?"[..]),
            at: None,
        })];
        let error = rebuild(
            &world.network,
            &world.catalog,
            Target::in_memory(ZoneId(0), &claims),
            None,
            records,
            |lsn| (PathBuf::from("zones/north/journal-1.seg"), lsn * 100),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "zone north: record 7 in zones/north/journal-1.seg at byte 700: unknown record kind 99"
        );
    }
}
