//! Every zone of one network in one thread: the router of `order-router route`, and of the
//! tests that compare the service against it.
//!
//! It decides through the same [`zone::decide()`] the service's zone actors call: each order
//! is admitted ([`zone::admit`]: its id claimed, its first zone chosen) and then taken from
//! zone to zone, one [`zone::decide()`] step at a time, until it is answered. An order is
//! answered before the next is admitted, so the decisions are those of the zone order in
//! DESIGN section 4 ("home zone first, then its fallbacks in order"), deterministically.

use crate::catalog::{Catalog, StockLevel};
use crate::config::Network;
use crate::ids::{SkuId, WarehouseId, ZoneId};
use crate::limits::CHILL_PENDING;
use crate::model::{Decision, Invalid, Order};
use crate::risk::CustomerBook;
use crate::time::Millis;
use crate::zone::{self, Claims, Decided, Next, OrderRecord, StockCell, Visit, Zone, ZoneError};
use crate::zone::{ColdStore, Lifecycle, ZoneState, cold::ColdError};
use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

/// A decision as answered: the stored one (read from disk if it is cold), and whether this
/// answer is a replay of it.
#[derive(Debug)]
pub struct Answer<'a> {
    pub decision: Cow<'a, Decision>,
    pub duplicate: bool,
}

/// All zones of one network, decided in one thread.
pub struct Router {
    network: Arc<Network>,
    catalog: Arc<Catalog>,
    /// Indexed by zone id.
    zones: Vec<Zone>,
    /// Shared by the zones: order id to the zone and slot of its record.
    claims: Arc<Claims>,
    /// Shared by the zones: the risk screen's customers.
    customers: Arc<CustomerBook>,
    /// The visit of the order on its way, from admission to its answer (reused: no
    /// allocation per order).
    visits: Vec<Visit>,
    decided: Decided,
}

impl Router {
    /// A router with the given on-hand levels and nothing reserved.
    pub fn new(network: Arc<Network>, catalog: Arc<Catalog>, stock: &[StockLevel]) -> Router {
        let claims = Arc::new(Claims::default());
        let customers = Arc::new(CustomerBook::new(network.zones.len()));
        let zones = (0..network.zones.len())
            .map(|zone| {
                let state = ZoneState::new(&network, ZoneId(zone as u16), catalog.len());
                Zone::new(state, catalog.clone(), claims.clone(), customers.clone())
            })
            .collect();
        let mut router = Router {
            network,
            catalog,
            zones,
            claims,
            customers,
            visits: Vec::with_capacity(1),
            decided: Decided::new(false),
        };
        for result in router.set_stock(stock) {
            // Nothing is reserved yet, so no level can fall below its reservations.
            result.expect("initial stock levels always apply");
        }
        router
    }

    pub fn network(&self) -> &Arc<Network> {
        &self.network
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The customer book (credit limits are set on it before the first order).
    pub fn customers(&self) -> &CustomerBook {
        &self.customers
    }

    pub fn zone(&self, zone: ZoneId) -> &ZoneState {
        self.zones[zone.index()].state()
    }

    /// Decides `order` at `now` (line `line` of its input), or answers it as a duplicate, or
    /// refuses it as an id conflict; the answer is appended to `out` as a JSON line. How it
    /// was answered, and the zone that answered.
    #[inline]
    pub fn answer(
        &mut self,
        order: Order,
        line: u64,
        now: Millis,
        out: &mut Vec<u8>,
    ) -> (zone::Outcome, ZoneId) {
        // The visit stays in `visits` from zone to zone: `decide` keeps there what goes on.
        let mut at = zone::admit_into(
            &self.claims,
            &self.network,
            order,
            0,
            line,
            &mut self.visits,
        );
        self.decided.clear();
        loop {
            // Only the last step answers; each says where the order goes next.
            self.decided.next.clear();
            let zone = &mut self.zones[at.index()];
            zone::decide(
                zone,
                &self.network,
                &mut self.visits,
                now,
                out,
                &mut self.decided,
            );
            match self.decided.next.first() {
                None => {
                    zone.chill_every(CHILL_PENDING);
                    return (self.decided.answers[0].outcome, at);
                }
                Some(Next::Forward(to)) => at = *to,
                Some(Next::Wait) => {
                    unreachable!("one order at a time never waits for an original still on its way")
                }
            }
        }
    }

    /// Decides `order` at `now`, or answers it as a duplicate, or refuses it as an id
    /// conflict; the stored decision. It copies the order and renders the answer only to
    /// drop it: for tests and tools that want the decision itself. [`Router::answer`] is
    /// the path of `route`.
    pub fn decide(&mut self, order: &Order, now: Millis) -> Result<Answer<'_>, Invalid> {
        let mut out = Vec::new();
        let (outcome, _) = self.answer(order.clone(), 0, now, &mut out);
        let duplicate = match outcome {
            zone::Outcome::Decided(..) => false,
            zone::Outcome::Duplicate => true,
            zone::Outcome::Invalid(_) => return Err(zone::journey::conflict(order)),
        };
        let decision = match self.order(&order.id).expect("an answered order is claimed") {
            Cow::Borrowed(record) => Cow::Borrowed(&record.decision),
            Cow::Owned(record) => Cow::Owned(record.decision),
        };
        Ok(Answer {
            decision,
            duplicate,
        })
    }

    /// Starts loading what deciding `order` will read first (its lines' stock cells in its
    /// home zone, their SKU entries), so a loop over a batch can call it a few orders ahead.
    pub fn prefetch(&self, order: &Order) {
        let home = self.network.regions[order.region.index()].zone;
        self.zones[home.index()].prefetch(order);
    }

    /// The record of order `id`, wherever it was decided (read from disk if it is cold).
    pub fn order(&self, id: &str) -> Option<Cow<'_, OrderRecord>> {
        let claim = self.claims.get(id).filter(|claim| claim.is_decided())?;
        self.zones[claim.zone.index()].state().order_at(claim.slot)
    }

    /// Keeps closed records on disk, in `dir` (a directory per zone), not in memory, as
    /// the service does: for the tests that check the two keep the same answers.
    pub fn keep_closed_on_disk(&mut self, dir: &Path) -> Result<(), ColdError> {
        for zone in &mut self.zones {
            let name = self.network.zone_name(zone.id());
            let store =
                ColdStore::open(&dir.join(name), self.network.clone(), self.catalog.clone())?;
            zone.state_mut().set_cold_store(store);
        }
        Ok(())
    }

    /// Lets go of the closed records decided before `oldest_kept` in every zone, and of
    /// their ids, as the service's zones do once a second ([`ZoneState::expire`]).
    pub fn expire(&mut self, oldest_kept: Millis) {
        for zone in &mut self.zones {
            zone.expire(oldest_kept);
        }
    }

    /// Order ids claimed (decided or on their way).
    pub fn claimed(&self) -> usize {
        self.claims.len()
    }

    /// Cancels order `id`, releasing its reservations.
    pub fn cancel(&mut self, id: &str) -> Result<OrderRecord, ZoneError> {
        self.close(id, Lifecycle::Cancelled)
    }

    /// Marks order `id` shipped: its reserved units are consumed.
    pub fn ship(&mut self, id: &str) -> Result<OrderRecord, ZoneError> {
        self.close(id, Lifecycle::Shipped)
    }

    fn close(&mut self, id: &str, end: Lifecycle) -> Result<OrderRecord, ZoneError> {
        let claim = self.decided_claim(id)?;
        let zone = &mut self.zones[claim.zone.index()];
        let record = zone.close(claim.slot, end)?.clone();
        zone.chill_every(CHILL_PENDING);
        Ok(record)
    }

    fn decided_claim(&self, id: &str) -> Result<zone::Claim, ZoneError> {
        self.claims
            .get(id)
            .filter(|claim| claim.is_decided())
            .ok_or_else(|| ZoneError::UnknownOrder(id.to_owned()))
    }

    /// Sets absolute on-hand levels; one result per level, in order.
    pub fn set_stock(&mut self, levels: &[StockLevel]) -> Vec<Result<(), ZoneError>> {
        levels
            .iter()
            .map(|level| {
                let zone = self.network.warehouses[level.warehouse.index()].zone;
                self.zones[zone.index()].state_mut().set_on_hand(*level)
            })
            .collect()
    }

    /// The zone state that owns `warehouse`, and the warehouse's index within it.
    pub fn locate(&self, warehouse: WarehouseId) -> (&ZoneState, usize) {
        let zone = self.zone(self.network.warehouses[warehouse.index()].zone);
        let local = zone
            .local(warehouse)
            .expect("a warehouse belongs to its zone");
        (zone, local)
    }

    /// Stock of `sku` at every warehouse, in warehouse id order.
    pub fn stock_of(&self, sku: SkuId) -> Vec<(WarehouseId, StockCell)> {
        (0..self.network.warehouses.len())
            .map(|index| {
                let warehouse = WarehouseId(index as u16);
                let (zone, local) = self.locate(warehouse);
                (warehouse, zone.cell(local, sku))
            })
            .collect()
    }
}
