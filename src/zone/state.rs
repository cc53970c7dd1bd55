//! The state of one zone, owned by exactly one writer (its actor in the service, the one
//! thread in `route`).
//!
//! A [`ZoneState`] holds, for the zone's warehouses only: on-hand and reserved units per
//! SKU, the daily counters that capacities are checked against, and the record of every order
//! the zone decided (its content hash, decision and lifecycle). The routing engine reads it
//! through `&ZoneState`; only the owner changes it, through the operations below, so no lock
//! is ever taken on stock.
//!
//! Invariant (checked on every change, panicking if broken, since only a bug can break it):
//! for every warehouse and SKU, `reserved <= on_hand`.

use super::arena::Arena;
use super::claims::{ClaimPlace, Claims};
use super::cold::{ColdError, ColdPlace, ColdStore};
use crate::catalog::StockLevel;
use crate::config::Network;
use crate::ids::{CarrierId, SkuId, WarehouseId, ZoneId};
use crate::limits::COUNTED_DAYS;
use crate::model::{Decision, Shipment, Status};
use crate::risk::usual::SkuUsual;
use crate::risk::{Buyer, Usual};
use compact_str::CompactString;
use std::borrow::Cow;
use std::collections::BTreeSet;

/// Stock of one SKU at one warehouse.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StockCell {
    pub on_hand: u32,
    pub reserved: u32,
}

impl StockCell {
    /// Units that can still be reserved.
    #[inline]
    pub fn available(self) -> u32 {
        self.on_hand - self.reserved
    }
}

/// Capacity used on one UTC day.
#[derive(Clone, Debug)]
struct DayCounters {
    day: i32,
    /// Shipments per local warehouse.
    warehouse_orders: Vec<u32>,
    /// Pickups per local warehouse and carrier: `[local * carriers + carrier]`.
    pickups: Vec<u32>,
}

/// Where an order is in its life after the decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Lifecycle {
    /// Decided; its reservations (if any) hold. A `held` order here waits for review: it
    /// keeps its reservations but cannot ship until it is approved.
    Live,
    /// Cancelled: reservations released.
    Cancelled,
    /// Shipped: reserved units consumed (taken off on-hand).
    Shipped,
    /// A `held` order approved by enough reviewers: live, free to ship.
    Released,
    /// A `held` order rejected in review: reservations released, as a cancel does.
    RejectedAfterReview,
}

impl Lifecycle {
    /// Every lifecycle, in declaration order (`ALL[lifecycle as usize]`).
    pub const ALL: [Lifecycle; 5] = [
        Lifecycle::Live,
        Lifecycle::Cancelled,
        Lifecycle::Shipped,
        Lifecycle::Released,
        Lifecycle::RejectedAfterReview,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Lifecycle::Live => "live",
            Lifecycle::Cancelled => "cancelled",
            Lifecycle::Shipped => "shipped",
            Lifecycle::Released => "released",
            Lifecycle::RejectedAfterReview => "rejected_after_review",
        }
    }

    /// Whether the order still holds what it reserved.
    pub fn holds(self) -> bool {
        matches!(self, Lifecycle::Live | Lifecycle::Released)
    }
}

/// Whether an order decided with `status`, now in `lifecycle`, still holds stock (see
/// [`OrderRecord::is_open`]; a restore asks it of a record it has not decoded).
pub fn holds_stock(status: Status, lifecycle: Lifecycle) -> bool {
    status != Status::Rejected && lifecycle.holds()
}

/// What the zone remembers of an order it decided.
#[derive(Clone, Debug)]
pub struct OrderRecord {
    pub content_hash: u64,
    pub decision: Decision,
    pub lifecycle: Lifecycle,
    /// Who approved a held order so far, in order (boxed: only held orders that someone
    /// approved pay for it).
    pub approvers: Option<Box<Vec<CompactString>>>,
    /// Its customer, value and ship-to, for the risk screen's customer book.
    pub buyer: Buyer,
    /// Where its id's claim stands in the claims table (released when the record leaves).
    pub claim: ClaimPlace,
}

/// Records are equal by what they say; where a claim stands is the claims table's business.
impl PartialEq for OrderRecord {
    fn eq(&self, other: &OrderRecord) -> bool {
        self.content_hash == other.content_hash
            && self.decision == other.decision
            && self.lifecycle == other.lifecycle
            && self.approvers == other.approvers
            && self.buyer == other.buyer
    }
}

impl OrderRecord {
    /// Whether it still holds stock (a decision that reserved, not yet closed): such a
    /// record stays in memory whatever its age.
    pub fn is_open(&self) -> bool {
        holds_stock(self.decision.status, self.lifecycle)
    }

    /// Whether it is a held order waiting for review.
    pub fn in_review(&self) -> bool {
        self.decision.status == Status::Held && self.lifecycle == Lifecycle::Live
    }

    /// Its approvers so far.
    pub fn approvers(&self) -> &[CompactString] {
        self.approvers.as_deref().map_or(&[], Vec::as_slice)
    }

    /// The distinct approvers that release it: `policy` (the policy's `review_approvals`),
    /// or more when a risk rule that held it asks for more.
    pub fn approvals_needed(&self, policy: usize) -> usize {
        let hits = self.decision.risk.as_deref().unwrap_or_default();
        hits.iter()
            .map(|hit| usize::from(hit.approvals))
            .fold(policy, usize::max)
    }
}

/// What an approval did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Approval {
    /// Counted; more approvers are needed.
    Counted,
    /// Counted, and enough: the order is released.
    Released,
    /// This approver had approved already: nothing changed.
    Again,
}

/// Why an operation on an order or a stock level was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ZoneError {
    #[error("order '{0}' is not known to this zone")]
    UnknownOrder(String),
    #[error("order '{order}' is already {state}")]
    NotLive { order: String, state: &'static str },
    /// Approve or reject: the order is not waiting for review.
    #[error("order '{order}' is not waiting for review: it is {state}")]
    NotInReview { order: String, state: &'static str },
    /// Ship: a held order must be approved first.
    #[error("order '{order}' is held for review: approve it before it ships")]
    AwaitingReview { order: String },
    /// The order's record left with the retention window after the order was looked up.
    #[error("the order is past the retention window")]
    Forgotten,
    /// A closed order's record could not be read back from disk.
    #[error("its record could not be read back from disk: {0}")]
    Unreadable(String),
    #[error("warehouse is not in this zone")]
    WrongZone,
    #[error("on_hand {on_hand} would be below the {reserved} units already reserved")]
    BelowReserved { on_hand: u32, reserved: u32 },
    /// Restoring from a journal or snapshot: the record does not follow the zone's sequence.
    #[error("seq {found} where the zone's next is {expected}")]
    OutOfSequence { found: u64, expected: u64 },
    /// Restoring: the record reserves more than the zone holds.
    #[error("{wanted} units reserved where {available} are available")]
    NotAvailable { wanted: u32, available: u32 },
    /// Restoring: a stock cell, day or SKU that does not fit this zone's shape.
    #[error("{0} does not fit the zone")]
    Misfit(String),
}

/// A record's slot: the record in memory, or where it is on disk.
#[derive(Clone, Debug)]
pub enum Slot {
    /// An open order, or one closed since the last [`ZoneState::chill`].
    Hot(Box<OrderRecord>),
    /// A closed order, in the zone's [`ColdStore`].
    Cold(ColdPlace),
}

const _: () = assert!(
    std::mem::size_of::<Slot>() == 16,
    "a retained closed decision costs its slot and its claim (docs/architecture.md)"
);

/// Why an order is not waiting for review.
fn not_in_review(record: &OrderRecord) -> ZoneError {
    let state = match (record.decision.status, record.lifecycle) {
        (Status::Held, lifecycle) => lifecycle.name(),
        (status, Lifecycle::Live) => status.name(),
        (_, lifecycle) => lifecycle.name(),
    };
    ZoneError::NotInReview {
        order: record.decision.order_id.to_string(),
        state,
    }
}

/// Records closed and waiting for [`ZoneState::chill`] when a restore chills them.
pub const CHILL_EVERY: usize = 4_096;

/// One zone's single-writer state.
#[derive(Clone, Debug)]
pub struct ZoneState {
    pub zone: ZoneId,
    /// The zone's warehouses; a warehouse's position here is its local index.
    warehouses: Vec<WarehouseId>,
    /// Global warehouse index to local index (`u16::MAX` for other zones' warehouses).
    local_index: Vec<u16>,
    carriers: usize,
    /// `[sku * warehouses + local]`: dense, since every warehouse may stock any SKU, and SKU
    /// major, so the cells of one SKU at all the zone's warehouses share a cache line.
    stock: Vec<StockCell>,
    /// The most recent [`COUNTED_DAYS`] days with any capacity used, oldest first.
    days: Vec<DayCounters>,
    /// Every order this zone decided and keeps, in decision order; a record's position is
    /// its slot. Ids map to slots outside the zone (the claims), so this is an arena: one
    /// append per decision, no hashing. Chunked and shared on clone, so a snapshot copies
    /// the state in microseconds ([`Arena`]). A closed record's slot points to disk
    /// ([`Slot::Cold`]); a chunk past the retention window keeps only its open orders.
    records: Arena<Slot>,
    /// Where closed records go ([`ZoneState::chill`]); without one, they stay in memory.
    cold: Option<ColdStore>,
    /// Slots of records closed (or decided holding nothing) since the last chill.
    closing: Vec<u32>,
    /// The latest decision time in each chunk of `records`.
    newest: Vec<i64>,
    /// Chunks of `records` before this one are past the retention window.
    expired: usize,
    /// Records kept, in memory or on disk.
    kept: usize,
    /// Of them, on disk.
    cold_kept: usize,
    /// The slots of held orders waiting for review, oldest first.
    in_review: BTreeSet<u32>,
    /// The position the next record takes in the zone's journal.
    next_seq: u64,
    /// The usual quantity of each SKU in the zone's orders (the risk screen's statistic).
    usual: Usual,
}

impl ZoneState {
    /// An empty zone (no stock) for `zone` of `network`, sized for `skus` SKUs.
    pub fn new(network: &Network, zone: ZoneId, skus: usize) -> ZoneState {
        let warehouses = network.zones[zone.index()].warehouses.clone();
        let mut local_index = vec![u16::MAX; network.warehouses.len()];
        for (local, warehouse) in warehouses.iter().enumerate() {
            local_index[warehouse.index()] = local as u16;
        }
        ZoneState {
            zone,
            stock: vec![StockCell::default(); skus * warehouses.len()],
            warehouses,
            local_index,
            carriers: network.carriers.len(),
            days: Vec::with_capacity(COUNTED_DAYS),
            records: Arena::default(),
            cold: None,
            closing: Vec::new(),
            newest: Vec::new(),
            expired: 0,
            kept: 0,
            cold_kept: 0,
            in_review: BTreeSet::new(),
            next_seq: 1,
            usual: Usual::new(skus),
        }
    }

    /// The zone's warehouses, in local-index order.
    #[inline]
    pub fn warehouses(&self) -> &[WarehouseId] {
        &self.warehouses
    }

    /// The local index of `warehouse`, if it belongs to this zone.
    #[inline]
    pub fn local(&self, warehouse: WarehouseId) -> Option<usize> {
        match self.local_index.get(warehouse.index()) {
            Some(&local) if local != u16::MAX => Some(local as usize),
            _ => None,
        }
    }

    /// Stock of `sku` at the zone's `local`-th warehouse.
    #[inline]
    pub fn cell(&self, local: usize, sku: SkuId) -> StockCell {
        self.stock[sku.index() * self.warehouses.len() + local]
    }

    /// Asks the CPU to start loading the cells of `sku` (all of the zone's warehouses share a
    /// cache line or two) and its usual quantity (the risk screen's). The route loop calls
    /// it a few orders ahead, so the engine finds them in cache instead of waiting on memory.
    #[inline]
    pub fn prefetch(&self, sku: SkuId) {
        if let Some(cell) = self.stock.get(sku.index() * self.warehouses.len()) {
            crate::prefetch::prefetch(cell);
        }
        self.usual.prefetch(sku);
    }

    #[inline]
    fn cell_mut(&mut self, local: usize, sku: SkuId) -> &mut StockCell {
        &mut self.stock[sku.index() * self.warehouses.len() + local]
    }

    /// Shipments the `local`-th warehouse has made on `day`.
    #[inline]
    pub fn warehouse_orders(&self, local: usize, day: i32) -> u32 {
        self.day(day)
            .map_or(0, |counters| counters.warehouse_orders[local])
    }

    /// Pickups `carrier` has made at the `local`-th warehouse on `day`.
    #[inline]
    pub fn pickups(&self, local: usize, carrier: CarrierId, day: i32) -> u32 {
        self.day(day).map_or(0, |counters| {
            counters.pickups[local * self.carriers + carrier.index()]
        })
    }

    #[inline]
    fn day(&self, day: i32) -> Option<&DayCounters> {
        self.days.iter().rev().find(|counters| counters.day == day)
    }

    fn day_mut(&mut self, day: i32) -> &mut DayCounters {
        if let Some(position) = self.days.iter().position(|counters| counters.day == day) {
            return &mut self.days[position];
        }
        if self.days.len() == COUNTED_DAYS {
            self.days.remove(0);
        }
        let counters = DayCounters {
            day,
            warehouse_orders: vec![0; self.warehouses.len()],
            pickups: vec![0; self.warehouses.len() * self.carriers],
        };
        let position = self.days.partition_point(|counters| counters.day < day);
        self.days.insert(position, counters);
        &mut self.days[position]
    }

    /// The record in `slot` (read from disk if it is cold). Only for a slot known to be
    /// kept: one the zone's claim names, read on the zone's thread.
    pub fn order(&self, slot: u32) -> Cow<'_, OrderRecord> {
        match self.find(slot) {
            Ok(record) => record,
            Err(error) => panic!("record {slot} of zone {:?}: {error}", self.zone),
        }
    }

    /// The record in `slot`, if it is kept.
    pub fn order_at(&self, slot: u32) -> Option<Cow<'_, OrderRecord>> {
        self.find(slot).ok()
    }

    /// The record in `slot`: [`ZoneError::Forgotten`] when it is not kept (any more),
    /// [`ZoneError::Unreadable`] when it is on disk and cannot be read.
    pub fn find(&self, slot: u32) -> Result<Cow<'_, OrderRecord>, ZoneError> {
        match self.records.get(slot as usize) {
            Some(Slot::Hot(record)) => Ok(Cow::Borrowed(record)),
            Some(Slot::Cold(place)) => self.read_cold(*place).map(Cow::Owned),
            None => Err(ZoneError::Forgotten),
        }
    }

    /// The record in `slot` if it is in memory.
    #[inline]
    pub fn hot(&self, slot: u32) -> Option<&OrderRecord> {
        match self.records.get(slot as usize) {
            Some(Slot::Hot(record)) => Some(record),
            _ => None,
        }
    }

    fn hot_mut(&mut self, slot: u32) -> Option<&mut OrderRecord> {
        match self.records.get_mut(slot as usize) {
            Some(Slot::Hot(record)) => Some(record),
            _ => None,
        }
    }

    fn read_cold(&self, place: ColdPlace) -> Result<OrderRecord, ZoneError> {
        let cold = self.cold.as_ref().expect("a cold slot has a store");
        cold.read(place)
            .map_err(|error| ZoneError::Unreadable(error.to_string()))
    }

    /// A reader of the cold records as a snapshot holds them (for the snapshot, which
    /// copies them), `None` without a cold store.
    pub fn cold_reader(&self) -> Option<super::cold::ColdReader<'_>> {
        self.cold.as_ref().map(ColdStore::reader)
    }

    /// Orders kept (in memory or on disk).
    pub fn order_count(&self) -> usize {
        self.kept
    }

    /// Orders kept on disk.
    pub fn cold_count(&self) -> usize {
        self.cold_kept
    }

    /// Every order record kept, in decision order (the cold ones read from disk).
    #[cfg(test)]
    pub fn orders(&self) -> impl Iterator<Item = Cow<'_, OrderRecord>> {
        self.records.iter().map(|(slot, _)| self.order(slot as u32))
    }

    /// The records in memory: every open order, and those closed since the last chill.
    pub fn hot_orders(&self) -> impl Iterator<Item = &OrderRecord> {
        self.records.iter().filter_map(|(_, slot)| match slot {
            Slot::Hot(record) => Some(&**record),
            Slot::Cold(_) => None,
        })
    }

    /// Takes every slot out, leaving the state without records: for a snapshot's copy,
    /// which walks them once and lets go of each chunk after it
    /// ([`Arena::visit_releasing`]).
    pub fn take_slots(&mut self) -> Arena<Slot> {
        std::mem::take(&mut self.records)
    }

    /// Every slot kept, with its number, in decision order.
    pub fn slots(&self) -> impl Iterator<Item = (u32, &Slot)> {
        self.records.iter().map(|(slot, item)| (slot as u32, item))
    }

    /// Where closed records go from now on: `store` (a zone without one keeps them in
    /// memory).
    pub fn set_cold_store(&mut self, store: ColdStore) {
        self.cold = Some(store);
    }

    /// Whether closed records leave memory: to a cold store, or (past the window) away.
    fn lets_go(&self) -> bool {
        self.cold.is_some() || self.expired > 0
    }

    /// Where the claim of the record in `slot` stands, as the zone notes it.
    #[cfg(test)]
    pub fn claim_of(&self, slot: u32) -> Option<ClaimPlace> {
        match self.records.get(slot as usize)? {
            Slot::Hot(record) => Some(record.claim),
            Slot::Cold(place) => Some(place.claim()),
        }
    }

    /// Notes where the claim of the record in `slot` (in memory or on disk) stands.
    pub fn set_claim(&mut self, slot: u32, claim: ClaimPlace) {
        match self.records.get_mut(slot as usize) {
            Some(Slot::Hot(record)) => record.claim = claim,
            Some(Slot::Cold(place)) => *place = place.with_claim(claim),
            None => {}
        }
    }

    /// Takes the next journal position.
    pub fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// Reserves the units of a plan's (or a replayed decision's) shipments and counts them
    /// against `day`'s capacities. Only what is available is planned (and replay checks it
    /// first), so running short here is a bug.
    pub fn reserve(&mut self, shipments: &[Shipment], day: i32) {
        for shipment in shipments {
            let local = self
                .local(shipment.warehouse)
                .expect("plans use the zone's own warehouses");
            for line in &shipment.lines {
                let cell = self.cell_mut(local, line.sku);
                cell.reserved += line.quantity;
                assert!(
                    cell.reserved <= cell.on_hand,
                    "oversold {:?}: {cell:?}",
                    line.sku
                );
            }
            let carriers = self.carriers;
            let counters = self.day_mut(day);
            counters.warehouse_orders[local] += 1;
            counters.pickups[local * carriers + shipment.carrier.index()] += 1;
        }
    }

    /// Rebuilds a journaled decision: reserves its shipments, counts them against the day
    /// it was decided, and records it; its slot. Refused (nothing changed) when its `seq`
    /// is not the zone's next or its units are not available: the journal does not match
    /// the zone.
    pub fn restore(
        &mut self,
        decision: Decision,
        content_hash: u64,
        buyer: Buyer,
    ) -> Result<u32, ZoneError> {
        if decision.seq != self.next_seq {
            return Err(ZoneError::OutOfSequence {
                found: decision.seq,
                expected: self.next_seq,
            });
        }
        for shipment in &decision.shipments {
            let local = self.local(shipment.warehouse).ok_or(ZoneError::WrongZone)?;
            for line in &shipment.lines {
                let cell = self.cell(local, line.sku);
                if cell.available() < line.quantity {
                    return Err(ZoneError::NotAvailable {
                        wanted: line.quantity,
                        available: cell.available(),
                    });
                }
            }
        }
        self.reserve(&decision.shipments, decision.decided_at.utc_day());
        self.take_seq();
        self.usual.count_decision(&decision);
        Ok(self.record(decision, content_hash, buyer))
    }

    /// The position the next state change takes (for snapshots).
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The counted days, oldest first: `(day, shipments per local warehouse, pickups per
    /// [local * carriers + carrier])` (for snapshots).
    pub fn counted_days(&self) -> impl Iterator<Item = (i32, &[u32], &[u32])> {
        self.days.iter().map(|counters| {
            (
                counters.day,
                counters.warehouse_orders.as_slice(),
                counters.pickups.as_slice(),
            )
        })
    }

    /// Every stock cell that holds anything: `(local warehouse, sku, cell)` (for snapshots).
    pub fn held_cells(&self) -> impl Iterator<Item = (usize, SkuId, StockCell)> + '_ {
        let warehouses = self.warehouses.len().max(1);
        self.stock
            .iter()
            .enumerate()
            .filter(|(_, cell)| cell.on_hand > 0 || cell.reserved > 0)
            .map(move |(index, cell)| {
                (
                    index % warehouses,
                    SkuId((index / warehouses) as u32),
                    *cell,
                )
            })
    }

    /// Puts back a snapshot's state: the sequence, the day counters, a stock cell at a
    /// time, a record at a time. Only on a new zone, before it serves.
    pub fn restore_sequence(&mut self, next_seq: u64) {
        self.next_seq = next_seq;
    }

    /// See [`ZoneState::restore_sequence`]. `orders` and `pickups` must have this zone's
    /// shape.
    pub fn restore_day(
        &mut self,
        day: i32,
        orders: Vec<u32>,
        pickups: Vec<u32>,
    ) -> Result<(), ZoneError> {
        if orders.len() != self.warehouses.len()
            || pickups.len() != self.warehouses.len() * self.carriers
        {
            return Err(ZoneError::Misfit(format!("the counters of day {day}")));
        }
        let counters = self.day_mut(day);
        counters.warehouse_orders = orders;
        counters.pickups = pickups;
        Ok(())
    }

    /// See [`ZoneState::restore_sequence`].
    pub fn restore_cell(
        &mut self,
        local: usize,
        sku: SkuId,
        cell: StockCell,
    ) -> Result<(), ZoneError> {
        if local >= self.warehouses.len() || cell.reserved > cell.on_hand {
            return Err(ZoneError::Misfit(format!("the stock cell {cell:?}")));
        }
        let slot = self
            .stock
            .get_mut(sku.index() * self.warehouses.len() + local)
            .ok_or_else(|| ZoneError::Misfit(format!("a stock cell of SKU {}", sku.index())))?;
        *slot = cell;
        Ok(())
    }

    /// See [`ZoneState::restore_sequence`]: a record as it was, its reservations already
    /// in the restored cells, counted into the usual quantities unless those were restored
    /// as they were ([`ZoneState::restore_usual`]); its slot.
    pub fn restore_record(&mut self, record: OrderRecord, count_usual: bool) -> u32 {
        if count_usual {
            self.usual.count_decision(&record.decision);
        }
        self.push(record)
    }

    /// The slot the next record will take (a restore claims the id with it first).
    pub fn next_slot(&self) -> u32 {
        u32::try_from(self.records.len()).expect("fewer than 2^32 orders per zone")
    }

    /// Whether closed records go to a cold store.
    pub fn has_cold_store(&self) -> bool {
        self.cold.is_some()
    }

    /// A closed record restored straight to the cold store, as `entry` (a snapshot entry),
    /// its id's claim at `claim`: staged, readable once [`ZoneState::flush_cold`] has
    /// written it; its slot. Not to be read before that, and given back to memory with
    /// [`ZoneState::warm`] if the write fails.
    pub fn restore_cold(
        &mut self,
        entry: &[u8],
        lifecycle: Lifecycle,
        noted: bool,
        decided_at: i64,
    ) -> Result<u32, ColdError> {
        let cold = self.cold.as_mut().expect("restored to a cold store");
        // Its claim's place is noted once the claims are back (`ZoneState::set_claim`).
        let place = cold.put_entry(entry, lifecycle, noted, ClaimPlace::default())?;
        Ok(self.push_cold(place, decided_at))
    }

    /// Takes the snapshot file at `path` as a cold file whose records stay where they are
    /// ([`ColdStore::adopt`]): its number.
    pub fn adopt_cold_file(&mut self, path: &std::path::Path) -> Result<u16, ColdError> {
        self.cold
            .as_mut()
            .expect("restored to a cold store")
            .adopt(path)
    }

    /// The restore is over: an adopted file none of whose records was kept is let go
    /// ([`ColdStore::let_go_if_unused`]).
    pub fn adopted_done(&mut self, file: u16) {
        if let Some(cold) = self.cold.as_mut() {
            cold.let_go_if_unused(file);
        }
    }

    /// A closed record restored where it is: framed at `offset` of the adopted file `file`
    /// ([`ZoneState::adopt_cold_file`]); its slot, or `None` if no place can say that offset.
    /// Its claim's place is noted once the claims are back.
    pub fn restore_adopted(
        &mut self,
        file: u16,
        offset: u64,
        lifecycle: Lifecycle,
        noted: bool,
        decided_at: i64,
    ) -> Option<u32> {
        let cold = self.cold.as_mut()?;
        let place = cold.adopted(file, offset, lifecycle, noted)?;
        Some(self.push_cold(place, decided_at))
    }

    /// Writes the records [`ZoneState::restore_cold`] staged.
    pub fn flush_cold(&mut self) -> Result<(), ColdError> {
        self.cold.as_mut().map_or(Ok(()), ColdStore::flush)
    }

    /// Puts `record` back in memory in place of its unwritten cold copy in `slot` (its claim
    /// where that copy said), to be tried again at the next chill.
    pub fn warm(&mut self, slot: u32, mut record: OrderRecord) {
        let Some(item) = self.records.get_mut(slot as usize) else {
            return;
        };
        let Slot::Cold(place) = *item else {
            return;
        };
        record.claim = place.claim();
        *item = Slot::Hot(Box::new(record));
        if let Some(cold) = self.cold.as_mut() {
            cold.forget(place);
        }
        self.cold_kept -= 1;
        self.closing.push(slot);
    }

    /// Sets a SKU's usual quantity as a snapshot holds it.
    pub fn restore_usual(&mut self, sku: SkuId, usual: SkuUsual) {
        self.usual.set(sku, usual);
    }

    /// Remembers a decision (made by this zone) for idempotency and lookups; returns its slot.
    pub fn record(&mut self, decision: Decision, content_hash: u64, buyer: Buyer) -> u32 {
        self.push(OrderRecord {
            content_hash,
            decision,
            lifecycle: Lifecycle::Live,
            approvers: None,
            buyer,
            claim: ClaimPlace::default(),
        })
    }

    fn push(&mut self, record: OrderRecord) -> u32 {
        let decided_at = record.decision.decided_at.0;
        let (in_review, open) = (record.in_review(), record.is_open());
        let slot = self.push_slot(Slot::Hot(Box::new(record)), decided_at);
        if in_review {
            self.in_review.insert(slot);
        }
        if !open && self.lets_go() {
            self.closing.push(slot);
        }
        slot
    }

    /// Appends the slot of a closed record restored to disk at `place`; its number.
    fn push_cold(&mut self, place: ColdPlace, decided_at: i64) -> u32 {
        self.cold_kept += 1;
        self.push_slot(Slot::Cold(place), decided_at)
    }

    /// Appends a slot of a record decided at `decided_at`; its number.
    fn push_slot(&mut self, item: Slot, decided_at: i64) -> u32 {
        let slot = self.records.push(item);
        let slot = u32::try_from(slot).expect("fewer than 2^32 orders per zone");
        let chunk = self.records.chunks() - 1;
        if self.newest.len() == chunk {
            self.newest.push(decided_at);
        }
        self.newest[chunk] = self.newest[chunk].max(decided_at);
        self.kept += 1;
        slot
    }

    /// Whether more than `pending` closed records wait for [`ZoneState::chill`].
    pub fn chill_due(&self, pending: usize) -> bool {
        self.closing.len() > pending
    }

    /// [`ZoneState::chill`] once more than `pending` records wait for it (a restore calls it
    /// as it goes, so that a closed record does not stay in memory until the end); a store
    /// that cannot write is reported, and the records stay in memory.
    pub fn chill_every(&mut self, pending: usize, claims: &Claims) {
        if self.chill_due(pending)
            && let Err(error) = self.chill(claims)
        {
            tracing::error!(
                "zone {:?}: closed records stay in memory: {error}",
                self.zone
            );
        }
    }

    /// Moves the records closed since the last chill to disk, each leaving a 16-byte slot;
    /// a record whose chunk is already past the retention window leaves altogether, its id's
    /// claim released. The zone's owner calls it after each batch of changes (the records
    /// answered and journaled first). A store that cannot write keeps them in memory (they
    /// are tried again at the next chill) and says why.
    pub fn chill(&mut self, claims: &Claims) -> Result<(), ColdError> {
        if self.closing.is_empty() {
            return Ok(());
        }
        let closing = std::mem::take(&mut self.closing);
        let mut placed = Vec::with_capacity(closing.len());
        let mut failed = None;
        for &slot in &closing {
            let Some(Slot::Hot(record)) = self.records.get(slot as usize) else {
                continue;
            };
            if record.is_open() {
                continue;
            }
            let claim = record.claim;
            if (slot as usize) / crate::limits::ARENA_CHUNK_RECORDS < self.expired {
                claims.release(claim, self.zone, slot);
                self.records.remove(slot as usize);
                self.kept -= 1;
            } else if let Some(cold) = self.cold.as_mut() {
                match cold.put(record, claim) {
                    Ok(place) => placed.push((slot, place)),
                    Err(error) => {
                        failed = Some(error);
                        break;
                    }
                }
            }
        }
        let Some(cold) = self.cold.as_mut() else {
            return Ok(());
        };
        match failed.map_or_else(|| cold.flush(), Err) {
            Ok(()) => {
                self.cold_kept += placed.len();
                for (slot, place) in placed {
                    if let Some(item) = self.records.get_mut(slot as usize) {
                        *item = Slot::Cold(place);
                    }
                }
                Ok(())
            }
            Err(error) => {
                // Nothing staged is read: the records stay in memory, tried again later.
                for (_, place) in placed {
                    cold.forget(place);
                }
                self.closing = closing;
                Err(error)
            }
        }
    }

    /// Lets go of every record decided before `oldest_kept` (ms since the epoch) that holds
    /// nothing: its memory, its disk space and its id's claim (a later order with the id is
    /// new). Whole chunks at a time, oldest first, once their latest decision is that old;
    /// an open order stays (its claim moves to the claims' end, so that the claims' chunk
    /// can go) and leaves once it is closed ([`ZoneState::chill`]).
    pub fn expire(&mut self, oldest_kept: i64, claims: &Claims) {
        while self.expired < self.newest.len() && self.newest[self.expired] < oldest_kept {
            let chunk = self.expired;
            if chunk + 1 == self.records.chunks() {
                self.records.seal();
            }
            let mut moved = Vec::new();
            for (slot, item) in self.records.chunk_items(chunk) {
                let slot = slot as u32;
                match item {
                    Slot::Cold(place) => {
                        claims.release(place.claim(), self.zone, slot);
                        if let Some(cold) = self.cold.as_mut() {
                            cold.forget(*place);
                        }
                        self.cold_kept -= 1;
                    }
                    Slot::Hot(record) if record.is_open() => {
                        if let Some(claim) = claims.relocate(record.claim, self.zone, slot) {
                            moved.push((slot, claim));
                        }
                        continue;
                    }
                    Slot::Hot(record) => {
                        claims.release(record.claim, self.zone, slot);
                    }
                }
                self.kept -= 1;
            }
            self.records.sparsify(
                chunk,
                |_, item| matches!(item, Slot::Hot(record) if record.is_open()),
            );
            for (slot, claim) in moved {
                self.set_claim(slot, claim);
            }
            self.expired += 1;
        }
    }

    /// The usual quantities of the SKUs in this zone's orders.
    pub fn usual(&self) -> &Usual {
        &self.usual
    }

    /// Counts a new decision in the usual quantities (see [`Usual`]): the zone does when a
    /// risk rule checks quantities; a replay always does.
    pub fn count_usual(&mut self, decision: &Decision) {
        self.usual.count_decision(decision);
    }

    /// How many held orders wait for review.
    pub fn reviews_pending(&self) -> usize {
        self.in_review.len()
    }

    /// The slots of the held orders waiting for review, oldest first.
    pub fn in_review_slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.in_review.iter().copied()
    }

    /// The held orders waiting for review, oldest first.
    pub fn in_review(&self) -> impl Iterator<Item = &OrderRecord> {
        self.in_review.iter().filter_map(|slot| self.hot(*slot))
    }

    /// Counts `approver`'s approval of a held order waiting for review; with `needed`
    /// distinct approvers it is released. An approver who approved already changes nothing
    /// (`Again`, whatever the order's state now).
    pub fn approve(
        &mut self,
        slot: u32,
        approver: &str,
        needed: usize,
    ) -> Result<(Cow<'_, OrderRecord>, Approval), ZoneError> {
        // An approver's approval asked for again (a retry) is answered as it was, whatever
        // came of it since.
        let again = match self.hot(slot) {
            Some(record) => record.approvers().iter().any(|name| name == approver),
            None => {
                let record = self.find(slot)?;
                if record.approvers().iter().any(|name| name == approver) {
                    return Ok((record, Approval::Again));
                }
                return Err(not_in_review(&record));
            }
        };
        if again {
            return Ok((self.order(slot), Approval::Again));
        }
        self.review_order(slot)?;
        self.take_seq();
        let record = self.hot_mut(slot).expect("in review, so in memory");
        record
            .approvers
            .get_or_insert_with(Box::default)
            .push(approver.into());
        let approval = if record.approvers().len() >= needed {
            record.lifecycle = Lifecycle::Released;
            self.in_review.remove(&slot);
            Approval::Released
        } else {
            Approval::Counted
        };
        Ok((self.order(slot), approval))
    }

    /// Rejects a held order waiting for review: its reservations are released as a cancel
    /// releases them.
    pub fn reject(&mut self, slot: u32) -> Result<&OrderRecord, ZoneError> {
        self.review_order(slot)?;
        self.close(slot, Lifecycle::RejectedAfterReview)
    }

    fn review_order(&self, slot: u32) -> Result<(), ZoneError> {
        let record = self.find(slot)?;
        if record.in_review() {
            return Ok(());
        }
        Err(not_in_review(&record))
    }

    /// Cancels a live order: releases its reserved units and the capacity its shipments took
    /// on their day (if that day is still counted).
    pub fn cancel(&mut self, slot: u32) -> Result<&OrderRecord, ZoneError> {
        self.close(slot, Lifecycle::Cancelled)
    }

    /// Marks a live order shipped: its reserved units leave the warehouse (on-hand and
    /// reserved both drop by them).
    pub fn ship(&mut self, slot: u32) -> Result<&OrderRecord, ZoneError> {
        if let Some(record) = self.hot(slot).filter(|record| record.in_review()) {
            return Err(ZoneError::AwaitingReview {
                order: record.decision.order_id.to_string(),
            });
        }
        self.close(slot, Lifecycle::Shipped)
    }

    /// Ends a live order's reservations: released (`Cancelled` or `RejectedAfterReview`,
    /// with its day's capacity given back) or consumed (`Shipped`, taken off on-hand too).
    /// Its record goes to disk (or, past the window, away) at the next [`ZoneState::chill`].
    fn close(&mut self, slot: u32, end: Lifecycle) -> Result<&OrderRecord, ZoneError> {
        self.live_order(slot)?;
        let record = self.hot(slot).expect("a live order is in memory");
        let shipments = record.decision.shipments.clone();
        let day = record.decision.decided_at.utc_day();
        for shipment in &shipments {
            let local = self
                .local(shipment.warehouse)
                .expect("decisions use the zone's own warehouses");
            for line in &shipment.lines {
                let cell = self.cell_mut(local, line.sku);
                cell.reserved = cell
                    .reserved
                    .checked_sub(line.quantity)
                    .expect("a live decision's units are reserved");
                if end == Lifecycle::Shipped {
                    cell.on_hand -= line.quantity;
                }
            }
            let carriers = self.carriers;
            let counted = self.days.iter_mut().find(|counters| counters.day == day);
            let releases = matches!(end, Lifecycle::Cancelled | Lifecycle::RejectedAfterReview);
            if let (true, Some(counters)) = (releases, counted) {
                counters.warehouse_orders[local] =
                    counters.warehouse_orders[local].saturating_sub(1);
                let pickups = &mut counters.pickups[local * carriers + shipment.carrier.index()];
                *pickups = pickups.saturating_sub(1);
            }
        }
        self.take_seq();
        self.in_review.remove(&slot);
        if self.lets_go() {
            self.closing.push(slot);
        }
        let record = self.hot_mut(slot).expect("a live order is in memory");
        record.lifecycle = end;
        Ok(record)
    }

    /// Refuses an order that holds nothing (rejected, or closed already).
    fn live_order(&self, slot: u32) -> Result<(), ZoneError> {
        let record = self.find(slot)?;
        if !record.decision.reserves() {
            // A rejected order holds nothing: there is nothing to cancel or ship.
            return Err(ZoneError::NotLive {
                order: record.decision.order_id.to_string(),
                state: "rejected",
            });
        }
        if !record.lifecycle.holds() {
            return Err(ZoneError::NotLive {
                order: record.decision.order_id.to_string(),
                state: record.lifecycle.name(),
            });
        }
        Ok(())
    }

    /// Sets an absolute on-hand level. Refused when it would fall below what is already
    /// reserved: that would oversell, and the units' orders must be cancelled first.
    pub fn set_on_hand(&mut self, level: StockLevel) -> Result<(), ZoneError> {
        let local = self.local(level.warehouse).ok_or(ZoneError::WrongZone)?;
        let cell = self.cell_mut(local, level.sku);
        if level.on_hand < cell.reserved {
            return Err(ZoneError::BelowReserved {
                on_hand: level.on_hand,
                reserved: cell.reserved,
            });
        }
        cell.on_hand = level.on_hand;
        Ok(())
    }
}
