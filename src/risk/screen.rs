//! The screen itself: the `[[risk]]` rules of the order's config snapshot, against an order
//! the engine placed ([`screen`]).

use super::book::{CreditCheck, CustomerBook, History};
use super::{Buyer, Usual, amount};
use crate::catalog::Catalog;
use crate::config::{RiskCheck, RiskRule};
use crate::engine::{OrderContext, Subject};
use crate::geo::haversine_km;
use crate::ids::ZoneId;
use crate::model::{Order, RiskHit};
use crate::time::Millis;
use smallvec::SmallVec;

/// What the screen found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Screening {
    /// Every hit, in config order of the rules.
    pub hits: Vec<RiskHit>,
    /// The first hit (its index in `hits`) that rejects the order: nothing is reserved,
    /// its value is not charged.
    pub rejects: Option<usize>,
    /// The first hit that holds it for review.
    pub holds: Option<usize>,
}

/// Screens the order of `context` (the engine placed it; nothing is reserved yet), decided
/// in `zone` whose usual quantities are `usual`, against the risk rules of its snapshot.
/// Under the customer's locks in `book`: the velocity and distance checks run on its
/// history (and the order is noted there, `buyer.noted`), then the credit check, and the
/// order's value is charged to a customer with a credit entry unless a hit rejects it.
pub fn screen(
    context: &OrderContext,
    zone: ZoneId,
    catalog: &Catalog,
    usual: &Usual,
    book: &CustomerBook,
    buyer: &mut Buyer,
) -> Screening {
    let rules = &context.network.policy.risk.rules;
    if rules.is_empty() {
        // Nothing to screen: a customer with a credit entry is still charged.
        book.credit(zone, buyer, |_| true);
        return Screening::default();
    }
    let order = context.order;
    let mut found: Vec<(usize, RiskHit, bool)> = Vec::new();
    // The matching rules that look at the customer's history, and the credit rule.
    let mut history_rules: SmallVec<[usize; 2]> = SmallVec::new();
    let mut credit_rule = None;
    let value = buyer.value_cents as f64 / 100.0;
    let subject = Subject::new(
        order,
        context.network,
        catalog,
        context.facts.capabilities,
        value,
    );
    for (index, rule) in rules.iter().enumerate() {
        if !subject.matches(&rule.matches) || !has_sku(rule, order, catalog) {
            continue;
        }
        let message = match rule.check {
            RiskCheck::CreditLimit => {
                credit_rule.get_or_insert(index);
                None
            }
            RiskCheck::Velocity { .. } | RiskCheck::DistanceOver(_) => {
                history_rules.push(index);
                None
            }
            RiskCheck::OrderValueOver(over) => (value > over).then(|| {
                format!(
                    "order value {} is over {}",
                    amount(buyer.value_cents),
                    amount(super::cents(over))
                )
            }),
            RiskCheck::QuantityOverUsual { factor, after } => {
                unusual_quantity(context, catalog, usual, factor, after)
            }
            RiskCheck::Block => Some(blocked(rule, order, context, catalog)),
            RiskCheck::PromiseWithin(within) => promise_too_close(order, context.now, within),
        };
        if let Some(message) = message {
            found.push((index, hit(rule, message), rule.rejects));
        }
    }
    if !history_rules.is_empty() {
        book.history(&buyer.customer, |history| {
            for &index in &history_rules {
                if let Some(message) = history_check(&rules[index], history, context.now, buyer) {
                    found.push((index, hit(&rules[index], message), rules[index].rejects));
                }
            }
            history.note(context.now, buyer.ship_to);
        });
        buyer.noted = true;
    }
    // The credit check comes last: whether the order is charged depends on the others.
    book.credit(zone, buyer, |check| {
        if let (Some(index), Some(check)) = (credit_rule, check)
            && let Some(message) = over_limit(check, buyer.value_cents)
        {
            found.push((index, hit(&rules[index], message), rules[index].rejects));
        }
        !found.iter().any(|(_, _, rejects)| *rejects)
    });
    found.sort_by_key(|(index, _, _)| *index);
    let rejects = found.iter().position(|(_, _, rejects)| *rejects);
    let holds = found.iter().position(|(_, _, rejects)| !*rejects);
    Screening {
        hits: found.into_iter().map(|(_, hit, _)| hit).collect(),
        rejects,
        holds,
    }
}

/// What a velocity or distance rule finds in the customer's `history` (this order not in
/// it yet), decided at `now`.
fn history_check(rule: &RiskRule, history: &History, now: Millis, buyer: &Buyer) -> Option<String> {
    match rule.check {
        RiskCheck::Velocity { orders, window_ms } => {
            let count = history.orders_since(Millis(now.0 - window_ms)) + 1;
            (count > orders as usize).then(|| {
                format!(
                    "{count} orders in {} minutes (more than {orders})",
                    window_ms / 60_000
                )
            })
        }
        RiskCheck::DistanceOver(km) => far_ship_to(history, buyer.ship_to, km),
        _ => None,
    }
}

/// The message when an order worth `value_cents` takes the customer past its limit.
fn over_limit(check: CreditCheck, value_cents: i64) -> Option<String> {
    let after = check.exposure_cents + i128::from(value_cents);
    (after > i128::from(check.limit_cents)).then(|| {
        format!(
            "exposure {} plus this order's {} is {}, over the credit limit {}",
            amount(check.exposure_cents),
            amount(value_cents),
            amount(after),
            amount(check.limit_cents)
        )
    })
}

fn hit(rule: &RiskRule, message: String) -> RiskHit {
    RiskHit {
        rule: rule.id.clone(),
        message,
        approvals: rule.approvals,
    }
}

/// Whether the order has a line of the rule's `skus` (or the rule names none).
fn has_sku(rule: &RiskRule, order: &Order, catalog: &Catalog) -> bool {
    rule.skus.as_ref().is_none_or(|skus| {
        order.lines.iter().any(|line| {
            skus.binary_search_by(|sku| sku.as_str().cmp(catalog.sku_name(line.sku)))
                .is_ok()
        })
    })
}

/// The first SKU whose quantity is over `factor` times its usual (once the usual rests on
/// `after` orders).
fn unusual_quantity(
    context: &OrderContext,
    catalog: &Catalog,
    usual: &Usual,
    factor: f64,
    after: u32,
) -> Option<String> {
    context.facts.demands.iter().find_map(|demand| {
        let usual = usual.of(demand.sku);
        let mean = f64::from(usual.mean);
        (usual.orders >= after && mean > 0.0 && f64::from(demand.quantity) > factor * mean).then(
            || {
                format!(
                    "{} units of {}, {:.1}x its usual {:.1} (over {factor}x)",
                    demand.quantity,
                    catalog.sku_name(demand.sku),
                    f64::from(demand.quantity) / mean,
                    mean
                )
            },
        )
    })
}

/// The message of a block: what it blocks (the lines its `skus`, `capabilities` and
/// `categories` name; the rule matched, so there is one), and where to.
fn blocked(rule: &RiskRule, order: &Order, context: &OrderContext, catalog: &Catalog) -> String {
    let region = context.network.region_name(order.region);
    let names_goods =
        rule.skus.is_some() || rule.matches.capabilities.0 != 0 || rule.matches.categories != 0;
    if !names_goods {
        // A block of customers, tiers, tags or values: say so, not what is in the basket.
        return format!("orders matching this block may not ship to region {region}");
    }
    let categories = &context.network.policy.rules.category_ids;
    let named = |line: &crate::model::OrderLine| {
        let sku = catalog.sku(line.sku);
        let name = catalog.sku_name(line.sku);
        rule.skus
            .as_ref()
            .is_none_or(|skus| skus.binary_search_by(|sku| sku.as_str().cmp(name)).is_ok())
            && (rule.matches.capabilities.0 == 0
                || rule.matches.capabilities.0 & sku.capabilities.0 != 0)
            && (rule.matches.categories == 0
                || (sku.category != 0
                    && categories
                        .get(catalog.category_name(sku.category))
                        .is_some_and(|index| rule.matches.categories & (1 << index) != 0)))
    };
    let mut skus: Vec<&str> = order
        .lines
        .iter()
        .filter(|line| named(line))
        .map(|line| catalog.sku_name(line.sku))
        .collect();
    skus.sort_unstable();
    skus.dedup();
    let more = skus.len().saturating_sub(5);
    skus.truncate(5);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    format!("{}{more} may not ship to region {region}", skus.join(", "))
}

fn promise_too_close(order: &Order, now: Millis, within: i64) -> Option<String> {
    let promise = order.promise_by?;
    let ahead = promise.0 - now.0;
    (ahead < within).then(|| {
        format!(
            "promise_by is {} minutes after the decision (under {})",
            ahead.div_euclid(60_000),
            within / 60_000
        )
    })
}

/// The message when `ship_to` is more than `km` from the nearest of the customer's latest
/// ship-tos (none when the customer has none yet).
fn far_ship_to(history: &History, ship_to: [f32; 2], km: f64) -> Option<String> {
    let nearest = history
        .latest
        .iter()
        .map(|latest| {
            haversine_km(
                f64::from(latest.ship_to[0]),
                f64::from(latest.ship_to[1]),
                f64::from(ship_to[0]),
                f64::from(ship_to[1]),
            )
        })
        .min_by(f64::total_cmp)?;
    (nearest > km).then(|| {
        format!(
            "ship-to {nearest:.0} km from the nearest of the customer's last {} (over {km} km)",
            history.latest.len()
        )
    })
}
