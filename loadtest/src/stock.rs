//! The stock check (`--check-stock`): at every (warehouse, SKU), the units reserved during
//! the run must equal the units the run's decisions shipped from there.
//!
//! Connections add up the shipments of every decision they check ([`add_shipments`]); the
//! run reads `GET /v1/stock` before and after and compares the three ([`StockCheck::new`]).
//! Only meaningful when nothing else uses the server while the run lasts.
//!
//! With shipping on (`[ship]`), a shipped order's units leave reserved and on-hand alike, so
//! the check reads on-hand too: at every level, the reserved units gained plus the on-hand
//! units consumed must equal the units the decisions placed there.

use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Mutex;

/// Units per (warehouse, SKU).
pub type Levels = HashMap<(String, String), u64>;

/// The parts of a decision the stock check reads.
#[derive(Deserialize)]
struct Decision {
    #[serde(default)]
    shipments: Vec<Shipment>,
}

#[derive(Deserialize)]
struct Shipment {
    warehouse: String,
    lines: Vec<ShipmentLine>,
}

#[derive(Deserialize)]
struct ShipmentLine {
    sku: String,
    qty: u64,
}

/// Adds the units the decision `answer` ships to `shipped`; an error when its shipments are
/// not in the contract's form (nothing is added then).
pub fn add_shipments(answer: &[u8], shipped: &Mutex<Levels>) -> Result<(), serde_json::Error> {
    let decision: Decision = serde_json::from_slice(answer)?;
    let mut shipped = shipped
        .lock()
        .expect("no panics while the shipped levels are held");
    for shipment in decision.shipments {
        for line in shipment.lines {
            *shipped
                .entry((shipment.warehouse.clone(), line.sku))
                .or_default() += line.qty;
        }
    }
    Ok(())
}

/// The outcome of the stock check.
#[derive(Debug, Clone)]
pub struct StockCheck {
    pub levels_checked: usize,
    pub units_shipped: u64,
    /// On-hand units consumed during the run (orders shipped): `None` when not read.
    pub units_consumed: Option<u64>,
    /// One line per (warehouse, SKU) that does not add up, in their order.
    pub mismatches: Vec<String>,
}

impl StockCheck {
    /// Compares, at every (warehouse, SKU) any of the three names, reserved after minus
    /// reserved before with the units shipped.
    pub fn new(before: &Levels, after: &Levels, shipped: &Levels) -> StockCheck {
        StockCheck::compare(before, after, shipped, None)
    }

    /// As [`StockCheck::new`], for a run that marked orders shipped: `consumed` holds the
    /// on-hand units that left each level (on-hand before minus after), which left its
    /// reserved units too.
    pub fn with_consumed(
        before: &Levels,
        after: &Levels,
        shipped: &Levels,
        consumed: &Levels,
    ) -> StockCheck {
        StockCheck::compare(before, after, shipped, Some(consumed))
    }

    fn compare(
        before: &Levels,
        after: &Levels,
        shipped: &Levels,
        consumed: Option<&Levels>,
    ) -> StockCheck {
        let mut keys: Vec<&(String, String)> = before
            .keys()
            .chain(after.keys())
            .chain(shipped.keys())
            .chain(consumed.into_iter().flat_map(|consumed| {
                consumed
                    .iter()
                    .filter(|(_, units)| **units > 0)
                    .map(|(key, _)| key)
            }))
            .collect();
        keys.sort();
        keys.dedup();
        let mut mismatches = Vec::new();
        for key in &keys {
            let before = before.get(*key).copied().unwrap_or(0);
            let after = after.get(*key).copied().unwrap_or(0);
            let shipped = shipped.get(*key).copied().unwrap_or(0);
            match consumed {
                None if after.checked_sub(before) != Some(shipped) => {
                    mismatches.push(format!(
                        "{} {}: reserved {before} -> {after}, decisions shipped {shipped}",
                        key.0, key.1
                    ));
                }
                Some(consumed) => {
                    let consumed = consumed.get(*key).copied().unwrap_or(0);
                    if (after + consumed).checked_sub(before) != Some(shipped) {
                        mismatches.push(format!(
                            "{} {}: reserved {before} -> {after} and {consumed} consumed (orders shipped), decisions shipped {shipped}",
                            key.0, key.1
                        ));
                    }
                }
                None => {}
            }
        }
        StockCheck {
            levels_checked: keys.len(),
            units_shipped: shipped.values().sum(),
            units_consumed: consumed.map(|consumed| consumed.values().sum()),
            mismatches,
        }
    }
}

/// On-hand units consumed at each level: `before` minus `after` (0 where it grew: stock
/// put in by someone else, which the check then reports where it matters).
pub fn consumed(before: &Levels, after: &Levels) -> Levels {
    before
        .iter()
        .map(|(key, units)| {
            let left = after.get(key).copied().unwrap_or(0);
            (key.clone(), units.saturating_sub(left))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(warehouse: &str, sku: &str) -> (String, String) {
        (warehouse.to_owned(), sku.to_owned())
    }

    #[test]
    fn stock_check_flags_every_level_that_does_not_add_up() {
        let before = HashMap::from([(key("W", "A"), 5)]);
        let after = HashMap::from([(key("W", "A"), 7), (key("W", "B"), 1)]);
        let shipped = HashMap::from([(key("W", "A"), 2), (key("W", "B"), 2)]);
        let check = StockCheck::new(&before, &after, &shipped);
        assert_eq!(check.levels_checked, 2);
        assert_eq!(check.units_shipped, 4);
        assert_eq!(check.mismatches.len(), 1);
        assert!(
            check.mismatches[0].starts_with("W B"),
            "{:?}",
            check.mismatches
        );
    }

    #[test]
    fn with_orders_shipped_the_units_consumed_count_as_reserved() {
        // W A: 5 reserved before; the run placed 4 and shipped 3 of them (on-hand 10 -> 7),
        // so 6 are reserved after. W B: placed 2, shipped 2, but reserved still shows 1.
        let before = HashMap::from([(key("W", "A"), 5)]);
        let after = HashMap::from([(key("W", "A"), 6), (key("W", "B"), 1)]);
        let placed = HashMap::from([(key("W", "A"), 4), (key("W", "B"), 2)]);
        let on_hand_before = HashMap::from([(key("W", "A"), 10), (key("W", "B"), 8)]);
        let on_hand_after = HashMap::from([(key("W", "A"), 7), (key("W", "B"), 6)]);
        let consumed = consumed(&on_hand_before, &on_hand_after);
        let check = StockCheck::with_consumed(&before, &after, &placed, &consumed);
        assert_eq!(check.units_consumed, Some(5));
        assert_eq!(check.mismatches.len(), 1, "{:?}", check.mismatches);
        assert!(
            check.mismatches[0].starts_with("W B"),
            "{:?}",
            check.mismatches
        );
        // Without the consumption, W A would not add up either.
        assert_eq!(
            StockCheck::new(&before, &after, &placed).mismatches.len(),
            2
        );
    }

    #[test]
    fn shipments_of_decisions_add_up_by_warehouse_and_sku() {
        let shipped = Mutex::new(Levels::new());
        let decision = br#"{"order_id":"T-1","status":"routed","shipments":[
            {"warehouse":"W","carrier":"c","lines":[{"sku":"A","qty":2},{"sku":"B","qty":1}]},
            {"warehouse":"V","carrier":"c","lines":[{"sku":"A","qty":3}]}]}"#;
        add_shipments(decision, &shipped).unwrap();
        add_shipments(decision, &shipped).unwrap();
        add_shipments(br#"{"status":"backordered"}"#, &shipped).unwrap();
        assert!(add_shipments(br#"{"shipments":[{"lines":[]}]}"#, &shipped).is_err());
        let shipped = shipped.into_inner().unwrap();
        assert_eq!(
            shipped,
            HashMap::from([(key("W", "A"), 4), (key("W", "B"), 2), (key("V", "A"), 6)])
        );
    }
}
