//! The risk screen (issue 11): whether an order the engine placed should ship.
//!
//! After a zone finds a plan for an order and before it reserves anything
//! (`zone::verdict::commit`), [`screen()`] runs the `[[risk]]` rules of the config snapshot
//! against the order: each rule that matches checks one thing (credit limit, order value,
//! velocity, a quantity far above the SKU's usual, a ship-to far from the customer's
//! previous ones, a block, a promise too close) and a hit holds the order for review or
//! rejects it. Every hit is listed in the decision (`"risk"`).
//!
//! - [`book`]: the customer book every zone shares: the credit limits and open exposure of
//!   the customers with a limit (kept exactly: charged under the customer's entry lock when
//!   an order is placed, released when it is cancelled, shipped or rejected in review,
//!   rebuilt from the zones' records at a restart), and the latest orders (times and
//!   ship-tos) of the customers a velocity or distance rule looks at.
//! - [`usual`]: a zone's running per-SKU statistic of ordered quantities.
//! - [`customers`]: the customers file (`--customers`, `PUT /v1/customers`).

pub mod book;
pub mod customers;
pub mod screen;
pub mod usual;

pub use book::{CustomerBook, Exposure};
pub use customers::{CustomerLimit, CustomersError};
pub use screen::{Screening, screen};
pub use usual::Usual;

use crate::model::Order;
use compact_str::CompactString;

/// What the risk screen keeps of an order beyond its decision: who ordered, what it is
/// worth and where it goes. Kept with the order's record (its exposure is released when the
/// order closes) and journaled with its decision (a restart rebuilds the book from it).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Buyer {
    /// The customer's id; empty for a decision journaled before the risk screen existed.
    pub customer: CompactString,
    /// The order's value (sum of unit price times quantity) in cents, rounded: exposure is
    /// summed in integers, so adding and taking away orders in any order is exact.
    pub value_cents: i64,
    /// The ship-to's latitude and longitude.
    pub ship_to: [f32; 2],
    /// Whether the screen noted the order in its customer's history (a velocity or distance
    /// rule matched it): a restart notes it again.
    pub noted: bool,
}

impl Buyer {
    pub fn of(order: &Order) -> Buyer {
        Buyer {
            customer: order.customer_id.clone(),
            value_cents: cents(crate::zone::verdict::order_value(order)),
            ship_to: [order.latitude as f32, order.longitude as f32],
            noted: false,
        }
    }

    /// Whether the decision's record names its customer (journaled with the risk screen).
    pub fn is_known(&self) -> bool {
        !self.customer.is_empty()
    }
}

/// An amount in cents, rounded to the nearest.
pub fn cents(amount: f64) -> i64 {
    (amount * 100.0).round() as i64
}

/// Cents as an amount with two decimals (for messages).
pub fn amount(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:02}",
        cents.unsigned_abs() / 100,
        cents.unsigned_abs() % 100
    )
}
