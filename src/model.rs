//! The domain model: orders as the engine sees them, and the decisions it makes.
//!
//! Everything here is already interned: an [`Order`] names SKUs, regions and tiers by dense
//! index, a [`Decision`] names warehouses and carriers the same way. Turning names into
//! indexes is [`crate::ingest`]'s job; turning indexes back into JSON is [`crate::render`]'s.

use crate::ids::{CarrierId, RegionId, SkuId, TierId, WarehouseId, ZoneId};
use crate::time::Millis;
use compact_str::CompactString;
use smallvec::SmallVec;
use std::fmt;

/// Carrier service levels, slowest first. The level an order asks for is a minimum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServiceLevel {
    Economy = 0,
    Standard = 1,
    Express = 2,
    SameDay = 3,
}

impl ServiceLevel {
    /// Every level, slowest first.
    pub const ALL: [ServiceLevel; 4] = [
        ServiceLevel::Economy,
        ServiceLevel::Standard,
        ServiceLevel::Express,
        ServiceLevel::SameDay,
    ];

    /// The contract's name of the level.
    pub fn name(self) -> &'static str {
        match self {
            ServiceLevel::Economy => "economy",
            ServiceLevel::Standard => "standard",
            ServiceLevel::Express => "express",
            ServiceLevel::SameDay => "same_day",
        }
    }

    /// The level named `name`, if there is one.
    pub fn parse(name: &str) -> Option<ServiceLevel> {
        ServiceLevel::ALL
            .into_iter()
            .find(|level| level.name() == name)
    }
}

/// A set of handling capabilities (cold chain, hazmat, bulky) as a bit set: a line needs its
/// SKU's, a warehouse and a carrier must have them all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Capabilities(pub u8);

impl Capabilities {
    pub const NONE: Capabilities = Capabilities(0);
    /// The capability names the contract knows, in bit order.
    pub const NAMES: [&'static str; 3] = ["cold_chain", "hazmat", "bulky"];

    /// The single capability named `name`.
    pub fn parse_one(name: &str) -> Option<Capabilities> {
        Self::NAMES
            .iter()
            .position(|known| *known == name)
            .map(|bit| Capabilities(1 << bit))
    }

    /// Whether every capability of `needed` is in `self`.
    #[inline]
    pub fn covers(self, needed: Capabilities) -> bool {
        needed.0 & !self.0 == 0
    }

    /// Both sets together.
    #[inline]
    pub fn union(self, other: Capabilities) -> Capabilities {
        Capabilities(self.0 | other.0)
    }

    /// The names in the set, in bit order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::NAMES
            .iter()
            .enumerate()
            .filter(move |(bit, _)| self.0 & (1 << bit) != 0)
            .map(|(_, name)| *name)
    }
}

impl fmt::Display for Capabilities {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, name) in self.names().enumerate() {
            if position > 0 {
                formatter.write_str(";")?;
            }
            formatter.write_str(name)?;
        }
        Ok(())
    }
}

/// One line of an order: a SKU and how many units of it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OrderLine {
    pub sku: SkuId,
    pub quantity: u32,
    /// The price the storefront charged per unit; used by hold rules, not by routing.
    pub unit_price: f64,
}

/// A validated order, interned. Built by [`crate::ingest::parse_order`].
#[derive(Clone, Debug, PartialEq)]
pub struct Order {
    pub id: CompactString,
    pub customer_id: CompactString,
    pub tier: TierId,
    pub region: RegionId,
    /// Destination coordinates: the order's own, or its region's centroid.
    pub latitude: f64,
    pub longitude: f64,
    /// Whether the coordinates are the region's centroid (lets the engine reuse
    /// per-region precomputed distances).
    pub at_region_centroid: bool,
    /// The service level the customer asked for, before the tier's minimum applies.
    pub service: ServiceLevel,
    pub promise_by: Option<Millis>,
    pub lines: SmallVec<[OrderLine; 4]>,
    /// Whether the order may ship from several warehouses.
    pub split_allowed: bool,
    /// Whether one of the order's tags is among the policy's `hold_tags`.
    pub hold_tagged: bool,
    /// The order's tags that routing rules match on: bit `i` is the snapshot's rule tag `i`
    /// (`policy.rules.tag_ids`). 0 when no rule names a tag the order carries.
    pub rule_tags: u64,
    pub created_at: Option<Millis>,
    /// Hash of the order's content (everything but `created_at` and unknown fields): a
    /// retry with the same id and hash is a duplicate, a different hash an id conflict.
    pub content_hash: u64,
}

/// What happened to an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// Every unit placed and reserved.
    Routed,
    /// Accepted: some units ship now, the rest (`backordered`) wait for stock.
    Backordered,
    /// Placed and reserved, waiting for review.
    Held,
    /// Cannot be served as asked; nothing reserved.
    Rejected,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Routed => "routed",
            Status::Backordered => "backordered",
            Status::Held => "held",
            Status::Rejected => "rejected",
        }
    }
}

/// Why an order was not simply routed. The code is the contract's; it is also a bounded
/// metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReasonCode {
    NoStock,
    NoCarrier,
    PromiseUnmeetable,
    Capacity,
    ServiceUnavailable,
    /// Held because of a hold rule of the policy or a risk rule (`[[risk]]`).
    Review,
    /// Extension (issue 11): rejected by a risk rule whose action is `reject`.
    Risk,
}

impl ReasonCode {
    pub fn name(self) -> &'static str {
        match self {
            ReasonCode::NoStock => "no_stock",
            ReasonCode::NoCarrier => "no_carrier",
            ReasonCode::PromiseUnmeetable => "promise_unmeetable",
            ReasonCode::Capacity => "capacity",
            ReasonCode::ServiceUnavailable => "service_unavailable",
            ReasonCode::Review => "review",
            ReasonCode::Risk => "risk",
        }
    }
}

/// The reason of a decision that is not `routed`.
#[derive(Clone, Debug, PartialEq)]
pub struct Reason {
    pub code: ReasonCode,
    pub message: String,
}

/// Units of one SKU in a shipment or a backorder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineQuantity {
    pub sku: SkuId,
    pub quantity: u32,
}

/// One parcel: a warehouse's part of the order, carried by one carrier service.
#[derive(Clone, Debug, PartialEq)]
pub struct Shipment {
    pub warehouse: WarehouseId,
    pub carrier: CarrierId,
    pub level: ServiceLevel,
    pub lines: SmallVec<[LineQuantity; 2]>,
    pub distance_km: f64,
    pub weight_kg: f64,
    pub cost: f64,
    pub eta: Millis,
}

/// The router's answer for one order.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub order_id: CompactString,
    pub status: Status,
    /// The zone that decided (and journaled) the order.
    pub zone: ZoneId,
    /// The decision's position in its zone's journal.
    pub seq: u64,
    pub decided_at: Millis,
    pub shipments: SmallVec<[Shipment; 1]>,
    pub backordered: SmallVec<[LineQuantity; 1]>,
    /// Boxed: most decisions have none, and every decision is kept for idempotency.
    pub reason: Option<Box<Reason>>,
    /// Extension (issue 11): every risk rule the order tripped, in config order (rendered as
    /// `"risk"` only when there is one). Boxed for the same reason as `reason`.
    pub risk: Option<Box<[RiskHit]>>,
}

/// A risk rule an order tripped: the rule's id and what tripped it, with the figure.
#[derive(Clone, Debug, PartialEq)]
pub struct RiskHit {
    pub rule: CompactString,
    pub message: String,
    /// The distinct approvers a hold of this rule needs (0: the policy's
    /// `review_approvals`, or the rule rejects). Journaled, not rendered.
    pub approvals: u8,
}

impl Decision {
    /// Whether the decision holds reservations (everything but a rejection does).
    pub fn reserves(&self) -> bool {
        self.status != Status::Rejected
    }
}

/// Error codes of `invalid` records: what was wrong with an input line. Bounded, so they
/// double as metric labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InvalidCode {
    BadJson,
    BadUtf8,
    LineTooLong,
    MissingField,
    BadField,
    BadId,
    BadQty,
    TooManyLines,
    UnknownSku,
    UnknownRegion,
    UnknownTier,
    BadService,
    BadCoordinates,
    BadTime,
    IdConflict,
    /// The service could not decide the line (its zone actor stopped): nothing reserved;
    /// send it again.
    Unavailable,
}

impl InvalidCode {
    /// Every code, in declaration order (a code's position is `code as usize`).
    pub const ALL: [InvalidCode; 16] = [
        InvalidCode::BadJson,
        InvalidCode::BadUtf8,
        InvalidCode::LineTooLong,
        InvalidCode::MissingField,
        InvalidCode::BadField,
        InvalidCode::BadId,
        InvalidCode::BadQty,
        InvalidCode::TooManyLines,
        InvalidCode::UnknownSku,
        InvalidCode::UnknownRegion,
        InvalidCode::UnknownTier,
        InvalidCode::BadService,
        InvalidCode::BadCoordinates,
        InvalidCode::BadTime,
        InvalidCode::IdConflict,
        InvalidCode::Unavailable,
    ];

    pub fn name(self) -> &'static str {
        match self {
            InvalidCode::BadJson => "bad_json",
            InvalidCode::BadUtf8 => "bad_utf8",
            InvalidCode::LineTooLong => "line_too_long",
            InvalidCode::MissingField => "missing_field",
            InvalidCode::BadField => "bad_field",
            InvalidCode::BadId => "bad_id",
            InvalidCode::BadQty => "bad_qty",
            InvalidCode::TooManyLines => "too_many_lines",
            InvalidCode::UnknownSku => "unknown_sku",
            InvalidCode::UnknownRegion => "unknown_region",
            InvalidCode::UnknownTier => "unknown_tier",
            InvalidCode::BadService => "bad_service",
            InvalidCode::BadCoordinates => "bad_coordinates",
            InvalidCode::BadTime => "bad_time",
            InvalidCode::IdConflict => "id_conflict",
            InvalidCode::Unavailable => "unavailable",
        }
    }
}

/// What was wrong with one input line.
#[derive(Clone, Debug, PartialEq)]
pub struct Invalid {
    pub code: InvalidCode,
    pub message: String,
    /// The order's id when the line got far enough to have a usable one.
    pub order_id: Option<CompactString>,
}

impl Invalid {
    pub fn new(code: InvalidCode, message: impl Into<String>) -> Invalid {
        Invalid {
            code,
            message: message.into(),
            order_id: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_levels_order_slowest_first() {
        assert!(ServiceLevel::Economy < ServiceLevel::SameDay);
        for level in ServiceLevel::ALL {
            assert_eq!(ServiceLevel::parse(level.name()), Some(level));
        }
        assert_eq!(ServiceLevel::parse("overnight"), None);
    }

    #[test]
    fn capability_sets() {
        let cold = Capabilities::parse_one("cold_chain").unwrap();
        let bulky = Capabilities::parse_one("bulky").unwrap();
        let both = cold.union(bulky);
        assert!(both.covers(cold));
        assert!(!cold.covers(both));
        assert!(cold.covers(Capabilities::NONE));
        assert_eq!(both.to_string(), "cold_chain;bulky");
        assert_eq!(Capabilities::parse_one("fragile"), None);
    }
}

/// Answers counted by outcome: a zone's batch, a stream's chunk, a `route` run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub lines: u64,
    pub routed: u64,
    pub backordered: u64,
    pub held: u64,
    pub rejected: u64,
    pub duplicates: u64,
    pub invalid: u64,
    /// `invalid` by code, indexed by `code as usize`.
    pub invalid_by_code: [u64; InvalidCode::ALL.len()],
}

impl Tally {
    /// Counts one `invalid` answer (`lines` is counted by the caller).
    pub fn count_invalid(&mut self, code: InvalidCode) {
        self.invalid += 1;
        self.invalid_by_code[code as usize] += 1;
    }

    /// Counts one new decision (`lines` is counted by the caller).
    pub fn count_decision(&mut self, status: Status) {
        match status {
            Status::Routed => self.routed += 1,
            Status::Backordered => self.backordered += 1,
            Status::Held => self.held += 1,
            Status::Rejected => self.rejected += 1,
        }
    }

    /// Adds the counts of `other`.
    pub fn add(&mut self, other: &Tally) {
        self.lines += other.lines;
        self.routed += other.routed;
        self.backordered += other.backordered;
        self.held += other.held;
        self.rejected += other.rejected;
        self.duplicates += other.duplicates;
        self.invalid += other.invalid;
        for (total, count) in self.invalid_by_code.iter_mut().zip(other.invalid_by_code) {
            *total += count;
        }
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "{} lines: {} routed, {} backordered, {} held, {} rejected, {} duplicates, {} invalid",
            self.lines,
            self.routed,
            self.backordered,
            self.held,
            self.rejected,
            self.duplicates,
            self.invalid
        )
    }
}
