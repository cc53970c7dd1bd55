//! The stock check (`--check-stock`): at every (warehouse, SKU), the units reserved during
//! the run must equal the units the run's decisions shipped from there.
//!
//! Connections add up the shipments of every decision they check ([`add_shipments`]); the
//! run reads `GET /v1/stock` before and after and compares the three ([`StockCheck::new`]).
//! Only meaningful when nothing else uses the server while the run lasts.

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
    /// One line per (warehouse, SKU) that does not add up, in their order.
    pub mismatches: Vec<String>,
}

impl StockCheck {
    /// Compares, at every (warehouse, SKU) any of the three names, reserved after minus
    /// reserved before with the units shipped.
    pub fn new(before: &Levels, after: &Levels, shipped: &Levels) -> StockCheck {
        let mut keys: Vec<&(String, String)> = before
            .keys()
            .chain(after.keys())
            .chain(shipped.keys())
            .collect();
        keys.sort();
        keys.dedup();
        let mut mismatches = Vec::new();
        for key in &keys {
            let before = before.get(*key).copied().unwrap_or(0);
            let after = after.get(*key).copied().unwrap_or(0);
            let shipped = shipped.get(*key).copied().unwrap_or(0);
            if after.checked_sub(before) != Some(shipped) {
                mismatches.push(format!(
                    "{} {}: reserved {before} -> {after}, decisions shipped {shipped}",
                    key.0, key.1
                ));
            }
        }
        StockCheck {
            levels_checked: keys.len(),
            units_shipped: shipped.values().sum(),
            mismatches,
        }
    }
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
