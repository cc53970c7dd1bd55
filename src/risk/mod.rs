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
    /// The order's value (sum of unit price times quantity) in cents, rounded, and held to
    /// 0..=[`MAX_ORDER_CENTS`]: exposure is summed in integers, so adding and taking away
    /// orders in any order is exact, and cannot overflow.
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
            value_cents: cents(crate::zone::verdict::order_value(order)).clamp(0, MAX_ORDER_CENTS),
            ship_to: [order.latitude as f32, order.longitude as f32],
            noted: false,
        }
    }

    /// Whether the decision's record names its customer (journaled with the risk screen).
    pub fn is_known(&self) -> bool {
        !self.customer.is_empty()
    }
}

/// The most an order counts for against a credit limit, in cents (ten trillion): a price
/// the parser accepts (any finite number) cannot take a customer's exposure past what
/// `i128` sums hold, nor wrap it.
pub const MAX_ORDER_CENTS: i64 = 1_000_000_000_000_000;

/// An amount in cents, rounded to the nearest (saturating at the ends of `i64`).
pub fn cents(amount: f64) -> i64 {
    crate::rounding::round_to_i64(amount * 100.0)
}

/// Cents as an amount with two decimals (for messages).
pub fn amount(cents: impl Into<i128>) -> String {
    let cents: i128 = cents.into();
    let sign = if cents < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:02}",
        cents.unsigned_abs() / 100,
        cents.unsigned_abs() % 100
    )
}
