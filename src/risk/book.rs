//! The customer book: what the risk screen knows of each customer, shared by every zone.
//!
//! An order's home zone follows from its ship-to, so one customer's orders are decided by
//! several zone threads at once; the book is a `DashMap` keyed by customer id, and each
//! order's whole screen of its customer (velocity, ship-to distance, the credit check and
//! the charge of its value) runs under that one entry's lock ([`CustomerBook::with`]).
//! That makes the credit check exact across zones: two orders of a customer that would
//! each fit under the limit but not together cannot both pass, whichever zones decide
//! them.
//!
//! Exposure is the value of the customer's placed orders (`routed`, `backordered`, `held`)
//! not yet shipped, cancelled or rejected in review, in integer cents. It is charged when an
//! order is placed ([`Entry::charge`]), released when it closes ([`CustomerBook::release`])
//! and, at a restart, rebuilt from the zones' records ([`CustomerBook::restore`]), which
//! carry each order's customer and value (`risk::Buyer`). Credit limits come from the
//! customers file and `PUT /v1/customers` ([`CustomerBook::set_limit`]).

use super::Buyer;
use crate::config::MAX_VELOCITY_ORDERS;
use crate::model::ReasonCode;
use crate::time::Millis;
use crate::zone::OrderRecord;
use compact_str::CompactString;
use dashmap::DashMap;
use smallvec::SmallVec;

/// How many of a customer's latest orders the book keeps (times and ship-tos): enough for
/// the longest velocity rule.
pub const MAX_LATEST: usize = MAX_VELOCITY_ORDERS as usize + 1;

/// One of a customer's latest orders.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Latest {
    pub at: Millis,
    pub ship_to: [f32; 2],
}

/// What the book keeps of one customer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Entry {
    /// The credit limit in cents; `None`: no limit (the credit check passes).
    pub limit_cents: Option<i64>,
    /// The value of the customer's open orders, in cents.
    pub exposure_cents: i64,
    /// How many orders make up the exposure.
    pub open_orders: u32,
    /// The latest orders the screen saw, oldest first, at most [`MAX_LATEST`].
    pub latest: SmallVec<[Latest; 2]>,
}

impl Entry {
    /// Charges an order's value to the exposure.
    pub fn charge(&mut self, value_cents: i64) {
        self.exposure_cents += value_cents;
        self.open_orders += 1;
    }

    /// Notes an order the screen saw, keeping the latest [`MAX_LATEST`] in time order.
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

/// A customer's credit standing, as `GET /v1/customers/{id}` shows it.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Exposure {
    pub customer: String,
    pub credit_limit: Option<f64>,
    pub exposure: f64,
    pub open_orders: u32,
}

/// Every customer the router has seen or been given a limit for.
#[derive(Debug, Default)]
pub struct CustomerBook {
    map: DashMap<CompactString, Entry, foldhash::quality::RandomState>,
}

impl CustomerBook {
    /// Runs `screen` on `customer`'s entry (made if new), under its lock.
    pub fn with<R>(&self, customer: &str, screen: impl FnOnce(&mut Entry) -> R) -> R {
        // One hash and one probe whether the customer is new or not (an id of up to 24
        // bytes makes its key without allocating).
        screen(&mut self.map.entry(customer.into()).or_default())
    }

    /// Releases a closed order's value from its customer's exposure.
    pub fn release(&self, buyer: &Buyer) {
        if !buyer.is_known() {
            return;
        }
        if let Some(mut entry) = self.map.get_mut(buyer.customer.as_str()) {
            entry.exposure_cents -= buyer.value_cents;
            entry.open_orders = entry.open_orders.saturating_sub(1);
        }
    }

    /// Sets (or, with `None`, lifts) `customer`'s credit limit.
    pub fn set_limit(&self, customer: &str, limit_cents: Option<i64>) {
        self.with(customer, |entry| entry.limit_cents = limit_cents);
    }

    /// Every credit limit, by customer id.
    pub fn limits(&self) -> Vec<(CompactString, i64)> {
        let mut limits: Vec<(CompactString, i64)> = self
            .map
            .iter()
            .filter_map(|entry| Some((entry.key().clone(), entry.value().limit_cents?)))
            .collect();
        limits.sort_unstable();
        limits
    }

    /// `customer`'s standing (zero exposure and no limit for a customer never seen).
    pub fn exposure(&self, customer: &str) -> Exposure {
        let entry = self
            .map
            .get(customer)
            .map(|entry| entry.value().clone())
            .unwrap_or_default();
        Exposure {
            customer: customer.to_owned(),
            credit_limit: entry.limit_cents.map(|cents| cents as f64 / 100.0),
            exposure: entry.exposure_cents as f64 / 100.0,
            open_orders: entry.open_orders,
        }
    }

    /// How many customers the book holds.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Takes in a record rebuilt from a zone's journal or snapshot: the order is noted if it
    /// reached the screen, and charged if it is still open. Records journaled before the
    /// risk screen name no customer and are left out.
    pub fn restore(&self, record: &OrderRecord) {
        let buyer = &record.buyer;
        if !buyer.is_known() || !reached_screen(record) {
            return;
        }
        self.with(&buyer.customer, |entry| {
            entry.note(record.decision.decided_at, buyer.ship_to);
            if record.decision.reserves() && record.lifecycle.holds() {
                entry.charge(buyer.value_cents);
            }
        });
    }
}

/// Whether the order of `record` went through the risk screen: it was placed (and so
/// reserved), or a risk rule rejected it.
fn reached_screen(record: &OrderRecord) -> bool {
    record.decision.reserves()
        || record
            .decision
            .reason
            .as_ref()
            .is_some_and(|reason| reason.code == ReasonCode::Risk)
}
