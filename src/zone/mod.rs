//! One zone: the routing partition, and everything that decides in it.
//!
//! A zone owns its warehouses' stock, their daily capacity counters and the record of every
//! order it decided ([`ZoneState`]); exactly one writer changes it (in the service, the
//! zone's actor; in `route`, the one thread), so no lock is ever taken on stock. What the
//! zones share is the table of order-id [`Claims`].
//!
//! In the order an order meets them:
//!
//! - [`journey`]: [`admit`] claims the id and picks the first zone; [`Zone::visit`] takes
//!   one step in one zone (try here, pass on, settle at home, answer a duplicate).
//! - [`mod@decide`]: [`decide()`], the one batch decision: a zone takes a batch of visits at one
//!   time under one config snapshot and returns the answers, the new decisions, the visits
//!   that go on and, when journaling, the records to write. The service's zone actor,
//!   `route`, the benches and the property tests all call it.
//! - [`verdict`]: a plan becomes a decision: reserve it, then the review (hold) and
//!   backorder rules give its status; an order no zone can place settles at home.
//! - [`state`]: the zone's single-writer state; [`arena`] the chunked, shared-on-clone
//!   storage of its records; [`cold`] where its closed records wait out the retention window
//!   on disk.
//! - [`records`]: the journal records a zone writes (decision, close, stock) and their
//!   replay; [`snapshot`]: the zone's whole state as one snapshot; [`recover`]: a zone
//!   rebuilt from its journal, for `serve`, `journal verify` and the tests alike.

pub mod arena;
pub mod claims;
pub mod cold;
pub mod decide;
pub mod journey;
pub mod records;
pub mod recover;
pub mod snapshot;
pub mod state;
#[cfg(test)]
pub(crate) mod test_world;
pub mod verdict;

pub use claims::{Claim, ClaimKey, ClaimPlace, Claims};
pub use cold::{ColdPlace, ColdStore};
pub use decide::{Decided, Fresh, Next, Onward, Placed, decide};
pub use journey::{Leg, Outcome, Step, Visit, admit, admit_into};
pub use state::{Approval, Lifecycle, OrderRecord, Slot, StockCell, ZoneError, ZoneState};

use crate::catalog::Catalog;
use crate::engine::Scratch;
use crate::ids::ZoneId;
use crate::model::Order;
use crate::risk::CustomerBook;
use std::sync::Arc;

/// One zone's state and what deciding in it needs. Only its owner (one thread) calls it.
pub struct Zone {
    state: ZoneState,
    /// The catalogue the zone's state is sized for (SKU weights, capabilities, names).
    catalog: Arc<Catalog>,
    /// Shared with every other zone: settled here when this zone decides an order.
    claims: Arc<Claims>,
    /// Shared with every other zone: the risk screen's customers (exposure, latest orders).
    customers: Arc<CustomerBook>,
    /// The engine's working memory, reused from order to order.
    scratch: Scratch,
}

impl Zone {
    pub fn new(
        state: ZoneState,
        catalog: Arc<Catalog>,
        claims: Arc<Claims>,
        customers: Arc<CustomerBook>,
    ) -> Zone {
        Zone {
            state,
            catalog,
            claims,
            customers,
            scratch: Scratch::default(),
        }
    }

    pub fn id(&self) -> ZoneId {
        self.state.zone
    }

    pub fn state(&self) -> &ZoneState {
        &self.state
    }

    pub fn state_mut(&mut self) -> &mut ZoneState {
        &mut self.state
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    pub fn claims(&self) -> &Arc<Claims> {
        &self.claims
    }

    pub fn customers(&self) -> &Arc<CustomerBook> {
        &self.customers
    }

    /// Closes the live order in `slot` (`end`: cancelled, shipped or rejected in review)
    /// and releases its value from its customer's exposure.
    pub fn close(&mut self, slot: u32, end: Lifecycle) -> Result<&OrderRecord, ZoneError> {
        let zone = self.state.zone;
        let record = match end {
            Lifecycle::Shipped => self.state.ship(slot),
            Lifecycle::RejectedAfterReview => self.state.reject(slot),
            Lifecycle::Cancelled => self.state.cancel(slot),
            Lifecycle::Live | Lifecycle::Released => {
                unreachable!("a close ends an order: cancelled, shipped or rejected")
            }
        }?;
        self.customers.release(zone, &record.buyer);
        Ok(record)
    }

    /// Moves the records closed since the last time to disk once more than `pending` wait
    /// ([`ZoneState::chill`]; 0: now).
    pub fn chill_every(&mut self, pending: usize) {
        self.state.chill_every(pending, &self.claims);
    }

    /// Lets go of the closed records decided before `oldest_kept` and of their ids
    /// ([`ZoneState::expire`]).
    pub fn expire(&mut self, oldest_kept: crate::time::Millis) {
        self.state.chill_every(0, &self.claims);
        self.state.expire(oldest_kept.0, &self.claims);
    }

    /// Takes the zone's records (rebuilt from its journal) into the customer book: every
    /// open order's value charged, every screened order noted. Once, after recovery.
    pub fn restore_customers(&self) {
        for (slot, item) in self.state.slots() {
            match item {
                Slot::Hot(record) => self.customers.restore(record),
                // Closed: only a history (a noted order) takes it in.
                Slot::Cold(place) if place.noted() => {
                    self.customers.restore(&self.state.order(slot));
                }
                Slot::Cold(_) => {}
            }
        }
    }

    /// Starts loading the stock cells and SKU entries `order` will read here, so a loop over
    /// a batch can call it a few orders ahead ([`crate::limits::PREFETCH_AHEAD`]).
    pub fn prefetch(&self, order: &Order) {
        for line in &order.lines {
            self.state.prefetch(line.sku);
            self.catalog.prefetch(line.sku);
        }
    }
}
