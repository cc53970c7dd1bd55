//! The customer book: what the risk screen knows of customers, shared by every zone.
//!
//! An order's home zone follows from its ship-to, so one customer's orders are decided by
//! several zone threads at once. The book is two `DashMap`s keyed by customer id, each
//! entry changed under its own lock, and it holds only the customers a rule needs:
//!
//! - **Credit** ([`Credit`]): the customers with a credit limit (from the customers file or
//!   `PUT /v1/customers`), and their open exposure: the value of their placed orders
//!   (`routed`, `backordered`, `held`) not yet shipped, cancelled or rejected in review, in
//!   integer cents. The credit check and the charge of the order's value run in one step
//!   under the customer's lock ([`CustomerBook::credit`]): two orders that would each fit
//!   under the limit but not together cannot both pass, whichever zones decide them.
//!   Released when the order closes ([`CustomerBook::release`]); at a restart, rebuilt from
//!   the zones' records ([`CustomerBook::restore`]), which keep each order's customer and
//!   value (`risk::Buyer`).
//!
//!   A customer given a limit while the router runs has open orders in zones that never
//!   charged them. Its entry starts with no zone *synced*: every zone adds up its own open
//!   orders of that customer on its thread ([`CustomerBook::sync_zone`]) and from then on
//!   charges and releases them live; the limit is checked once every zone has synced (the
//!   API answers after that). Each zone's orders are counted exactly once: those decided
//!   before its sync by the sum, those after by the charge.
//! - **History** ([`History`]): the latest orders (time and ship-to) of the customers whose
//!   orders a velocity or distance rule matched, for those rules; rebuilt at a restart
//!   from the records marked as noted.
//!
//! Customers no rule needs cost nothing here: a demo stream of a million orders from
//! random customers adds no entry.

use super::Buyer;
use crate::config::MAX_VELOCITY_ORDERS;
use crate::ids::ZoneId;
use crate::time::Millis;
use crate::zone::OrderRecord;
use compact_str::CompactString;
use dashmap::DashMap;
use smallvec::SmallVec;
use std::sync::atomic::{AtomicBool, Ordering};

/// How many of a customer's latest orders the history keeps (times and ship-tos): enough
/// for the longest velocity rule.
pub const MAX_LATEST: usize = MAX_VELOCITY_ORDERS as usize + 1;

/// One of a customer's latest orders.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Latest {
    pub at: Millis,
    pub ship_to: [f32; 2],
}

/// The latest orders of one customer, oldest first, at most [`MAX_LATEST`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    pub latest: SmallVec<[Latest; 2]>,
}

impl History {
    /// Notes an order, keeping the latest [`MAX_LATEST`] in time order.
    pub fn note(&mut self, at: Millis, ship_to: [f32; 2]) {
        let position = self.latest.partition_point(|latest| latest.at <= at);
        self.latest.insert(position, Latest { at, ship_to });
        if self.latest.len() > MAX_LATEST {
            self.latest.remove(0);
        }
    }

    /// How many of the latest orders were at or after `since`.
    pub fn orders_since(&self, since: Millis) -> usize {
        self.latest.len() - self.latest.partition_point(|latest| latest.at < since)
    }
}

/// The credit standing of a customer with a limit.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Credit {
    /// The credit limit in cents; `None`: lifted (the check passes).
    pub limit_cents: Option<i64>,
    /// The value of the customer's open orders in the synced zones, in cents (`i128`: no
    /// number of orders of at most `MAX_ORDER_CENTS` each can overflow it).
    pub exposure_cents: i128,
    /// How many orders make up the exposure.
    pub open_orders: u32,
    /// The zones that count this customer's orders (bit per zone id).
    synced: SmallVec<[u64; 1]>,
}

impl Credit {
    fn is_synced(&self, zone: ZoneId) -> bool {
        self.synced
            .get(zone.index() / 64)
            .is_some_and(|word| word & (1 << (zone.index() % 64)) != 0)
    }

    fn mark_synced(&mut self, zone: ZoneId) {
        let word = zone.index() / 64;
        if self.synced.len() <= word {
            self.synced.resize(word + 1, 0);
        }
        self.synced[word] |= 1 << (zone.index() % 64);
    }

    /// The limit, once every zone counts the customer's orders.
    fn limit(&self, zones: usize) -> Option<i64> {
        (0..zones)
            .all(|zone| self.is_synced(ZoneId(zone as u16)))
            .then_some(self.limit_cents)
            .flatten()
    }
}

/// A customer's credit standing, as `GET /v1/customers/{id}` shows it.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Exposure {
    pub customer: String,
    pub credit_limit: Option<f64>,
    pub exposure: f64,
    pub open_orders: u32,
}

/// What the credit check found, under the customer's lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreditCheck {
    pub exposure_cents: i128,
    pub limit_cents: i64,
}

/// The customers the risk rules need, shared by the zones of one network.
#[derive(Debug)]
pub struct CustomerBook {
    zones: usize,
    /// Whether any customer has a credit entry: until one has, no order looks the table up.
    any_credit: AtomicBool,
    credit: DashMap<CompactString, Credit, foldhash::quality::RandomState>,
    history: DashMap<CompactString, History, foldhash::quality::RandomState>,
}

impl CustomerBook {
    /// An empty book for a network of `zones` zones.
    pub fn new(zones: usize) -> CustomerBook {
        CustomerBook {
            zones,
            any_credit: AtomicBool::new(false),
            credit: DashMap::default(),
            history: DashMap::default(),
        }
    }

    /// Sets `customer`'s credit limit before any order is decided (at start, or in `route`):
    /// every zone counts the customer's orders from the first. `None` lifts it.
    pub fn set_limit(&self, customer: &str, limit_cents: Option<i64>) {
        self.any_credit.store(true, Ordering::Release);
        let mut entry = self.credit.entry(customer.into()).or_default();
        entry.limit_cents = limit_cents;
        for zone in 0..self.zones {
            entry.mark_synced(ZoneId(zone as u16));
        }
    }

    /// Sets `customer`'s limit while orders are being decided: whether some zone has yet
    /// to sync the customer ([`CustomerBook::sync_zone`], which skips a zone that has, so
    /// asking again is safe; `false`: every zone has, the new limit holds at once).
    pub fn track(&self, customer: &str, limit_cents: Option<i64>) -> bool {
        self.any_credit.store(true, Ordering::Release);
        let mut entry = self.credit.entry(customer.into()).or_default();
        entry.limit_cents = limit_cents;
        !(0..self.zones).all(|zone| entry.is_synced(ZoneId(zone as u16)))
    }

    /// Zone `zone`, on its own thread, takes `customers` into the credit it counts: adds
    /// its open orders of each (`records`) and charges and releases them from now on.
    pub fn sync_zone<'a>(
        &self,
        zone: ZoneId,
        customers: &[CompactString],
        records: impl Iterator<Item = &'a OrderRecord>,
    ) {
        let wanted: std::collections::HashSet<&str> =
            customers.iter().map(CompactString::as_str).collect();
        let mut sums: std::collections::HashMap<&str, (i128, u32)> = Default::default();
        for record in records {
            if is_open(record) && wanted.contains(record.buyer.customer.as_str()) {
                let sum = sums.entry(record.buyer.customer.as_str()).or_default();
                sum.0 += i128::from(record.buyer.value_cents);
                sum.1 += 1;
            }
        }
        for customer in customers {
            let Some(mut entry) = self.credit.get_mut(customer.as_str()) else {
                continue;
            };
            if entry.is_synced(zone) {
                continue;
            }
            let (value, orders) = sums.get(customer.as_str()).copied().unwrap_or_default();
            entry.exposure_cents += value;
            entry.open_orders += orders;
            entry.mark_synced(zone);
        }
    }

    /// The credit step of the screen for an order of `buyer` decided in `zone`, under the
    /// customer's lock: `charge` decides, from the check's finding (`Some` when a limit
    /// applies: the exposure before the order and the limit), whether the order is charged
    /// (it is not when it will be rejected). Customers without an entry are not looked at.
    pub fn credit(
        &self,
        zone: ZoneId,
        buyer: &Buyer,
        charge: impl FnOnce(Option<CreditCheck>) -> bool,
    ) {
        // A zone that has not seen the flag yet has not synced the new customer either: it
        // would not charge it.
        if !self.any_credit.load(Ordering::Acquire) {
            charge(None);
            return;
        }
        let Some(mut entry) = self.credit.get_mut(buyer.customer.as_str()) else {
            charge(None);
            return;
        };
        let check = entry.limit(self.zones).map(|limit_cents| CreditCheck {
            exposure_cents: entry.exposure_cents,
            limit_cents,
        });
        if charge(check) && entry.is_synced(zone) {
            entry.exposure_cents += i128::from(buyer.value_cents);
            entry.open_orders += 1;
        }
    }

    /// Releases a closed order's value (decided in `zone`) from its customer's exposure.
    pub fn release(&self, zone: ZoneId, buyer: &Buyer) {
        if !buyer.is_known() || !self.any_credit.load(Ordering::Acquire) {
            return;
        }
        if let Some(mut entry) = self.credit.get_mut(buyer.customer.as_str())
            && entry.is_synced(zone)
        {
            entry.exposure_cents -= i128::from(buyer.value_cents);
            entry.open_orders = entry.open_orders.saturating_sub(1);
        }
    }

    /// Runs `screen` on `customer`'s history (made if new), under its lock.
    pub fn history<R>(&self, customer: &str, screen: impl FnOnce(&mut History) -> R) -> R {
        screen(&mut self.history.entry(customer.into()).or_default())
    }

    /// Every credit limit, by customer id.
    pub fn limits(&self) -> Vec<(CompactString, i64)> {
        let mut limits: Vec<(CompactString, i64)> = self
            .credit
            .iter()
            .filter_map(|entry| Some((entry.key().clone(), entry.value().limit_cents?)))
            .collect();
        limits.sort_unstable();
        limits
    }

    /// `customer`'s standing (zero exposure and no limit for a customer without one).
    pub fn exposure(&self, customer: &str) -> Exposure {
        let credit = self
            .credit
            .get(customer)
            .map(|entry| entry.value().clone())
            .unwrap_or_default();
        Exposure {
            customer: customer.to_owned(),
            credit_limit: credit.limit_cents.map(|cents| cents as f64 / 100.0),
            exposure: credit.exposure_cents as f64 / 100.0,
            open_orders: credit.open_orders,
        }
    }

    /// Takes in a record rebuilt from a zone's journal or snapshot (every zone's, before
    /// any order is decided): charged if its customer has a credit entry and it is open,
    /// noted in the history if the screen noted it.
    pub fn restore(&self, record: &OrderRecord) {
        let buyer = &record.buyer;
        if !buyer.is_known() {
            return;
        }
        if is_open(record)
            && self.any_credit.load(Ordering::Acquire)
            && let Some(mut entry) = self.credit.get_mut(buyer.customer.as_str())
        {
            entry.exposure_cents += i128::from(buyer.value_cents);
            entry.open_orders += 1;
        }
        if buyer.noted {
            self.history(&buyer.customer, |history| {
                history.note(record.decision.decided_at, buyer.ship_to);
            });
        }
    }
}

/// Whether the order of `record` counts against its customer's exposure: it reserved and
/// is neither shipped, cancelled nor rejected in review.
fn is_open(record: &OrderRecord) -> bool {
    record.decision.reserves() && record.lifecycle.holds()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_keeps_the_latest_in_time_order() {
        let mut history = History::default();
        for at in (0..40).rev() {
            history.note(Millis(at * 1000), [0.0, 0.0]);
        }
        assert_eq!(history.latest.len(), MAX_LATEST);
        assert_eq!(history.latest[0].at, Millis(8000), "the oldest left");
        assert_eq!(history.orders_since(Millis(30_000)), 10);
    }

    #[test]
    fn a_limit_applies_once_every_zone_synced() {
        let book = CustomerBook::new(2);
        assert!(book.track("c", Some(100)));
        let check = |book: &CustomerBook, zone: u16| {
            let mut found = None;
            let buyer = Buyer {
                customer: "c".into(),
                value_cents: 10,
                ..Buyer::default()
            };
            book.credit(ZoneId(zone), &buyer, |check| {
                found = check;
                true
            });
            found
        };
        assert_eq!(check(&book, 0), None, "no zone synced: no check, no charge");
        book.sync_zone(ZoneId(0), &["c".into()], std::iter::empty());
        assert_eq!(check(&book, 0), None, "one of two zones synced");
        assert_eq!(
            book.exposure("c").exposure,
            0.1,
            "zone 0 charges from its sync"
        );
        book.sync_zone(ZoneId(1), &["c".into()], std::iter::empty());
        let found = check(&book, 1).expect("both synced");
        assert_eq!(found.exposure_cents, 10);
        assert_eq!(book.exposure("c").open_orders, 2);
        assert!(
            !book.track("c", Some(5)),
            "already tracked: the new limit holds at once"
        );
    }
}
