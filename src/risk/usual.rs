//! A zone's usual quantity of each SKU: the running mean of the quantities its `routed` and
//! `backordered` decisions placed, one figure per SKU and order (an order that lists a SKU
//! twice counts its total). Held and rejected orders are left out, so an anomaly does not
//! become the usual. The mean weighs every order equally up to [`WINDOW`] orders, then
//! decays like an exponential average over about that many: the usual follows a SKU whose
//! demand changes over a season.
//!
//! Single-writer, like the rest of a zone's state: the zone updates it as it decides (while
//! a risk rule checks quantities: with none, the work is skipped, and a rule added by a
//! reload starts from what the zone counted so far, `usual_after` keeping it quiet until
//! the usual rests on enough orders), and replaying the zone's journal rebuilds it.

use crate::ids::SkuId;
use crate::model::{Decision, Status};

/// Orders after which the mean decays rather than averages.
pub const WINDOW: u32 = 1000;

/// One SKU's usual.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SkuUsual {
    /// Orders counted (at most [`WINDOW`] weigh in).
    pub orders: u32,
    /// The mean quantity per order.
    pub mean: f32,
}

/// The usual quantities of every SKU, in one zone.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Usual {
    skus: Vec<SkuUsual>,
}

impl Usual {
    pub fn new(skus: usize) -> Usual {
        Usual {
            skus: vec![SkuUsual::default(); skus],
        }
    }

    pub fn of(&self, sku: SkuId) -> SkuUsual {
        self.skus.get(sku.index()).copied().unwrap_or_default()
    }

    /// Starts loading `sku`'s entry (the screen and the count read it a few orders later).
    #[inline]
    pub fn prefetch(&self, sku: SkuId) {
        if let Some(entry) = self.skus.get(sku.index()) {
            crate::prefetch::prefetch(entry);
        }
    }

    /// The SKUs counted so far, with their usual.
    pub fn counted(&self) -> impl Iterator<Item = (SkuId, SkuUsual)> + '_ {
        self.skus
            .iter()
            .enumerate()
            .filter(|(_, usual)| usual.orders > 0)
            .map(|(sku, usual)| (SkuId(sku as u32), *usual))
    }

    /// Sets `sku`'s usual as it was (a snapshot restored).
    pub fn set(&mut self, sku: SkuId, usual: SkuUsual) {
        if let Some(slot) = self.skus.get_mut(sku.index()) {
            *slot = usual;
        }
    }

    /// Counts one order's `quantity` of `sku`.
    pub fn count(&mut self, sku: SkuId, quantity: u32) {
        let Some(usual) = self.skus.get_mut(sku.index()) else {
            return;
        };
        usual.orders = usual.orders.saturating_add(1);
        let weight = usual.orders.min(WINDOW) as f32;
        usual.mean += (quantity as f32 - usual.mean) / weight;
    }

    /// Counts a decision, if it is `routed` or `backordered`: its quantity of each SKU, over
    /// its shipments and backorder.
    pub fn count_decision(&mut self, decision: &Decision) {
        if !matches!(decision.status, Status::Routed | Status::Backordered) {
            return;
        }
        let lines = decision
            .shipments
            .iter()
            .flat_map(|shipment| shipment.lines.iter())
            .chain(decision.backordered.iter());
        // Most orders have one or two SKUs: a linear merge beats a map.
        let mut totals: smallvec::SmallVec<[(SkuId, u32); 4]> = smallvec::SmallVec::new();
        for line in lines {
            match totals.iter_mut().find(|(sku, _)| *sku == line.sku) {
                Some((_, total)) => *total += line.quantity,
                None => totals.push((line.sku, line.quantity)),
            }
        }
        for (sku, quantity) in totals {
            self.count(sku, quantity);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mean_averages_then_decays() {
        let mut usual = Usual::new(2);
        for quantity in [1, 2, 3] {
            usual.count(SkuId(1), quantity);
        }
        assert_eq!(usual.of(SkuId(1)).orders, 3);
        assert!((usual.of(SkuId(1)).mean - 2.0).abs() < 1e-6);
        assert_eq!(usual.of(SkuId(0)), SkuUsual::default());
        for _ in 0..10 * WINDOW {
            usual.count(SkuId(1), 10);
        }
        // After many orders of 10 the early ones have decayed away.
        assert!((usual.of(SkuId(1)).mean - 10.0).abs() < 0.01);
    }
}
