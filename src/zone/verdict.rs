//! From a plan to a decision: the rules that give a decision its status.
//!
//! Every decision is made here, in the zone that reserves it:
//! - [`commit`]: a zone placed the order (whole, or in part at home); the **risk screen**
//!   (`crate::risk::screen`, the `[[risk]]` rules) runs first: a `reject` hit makes it
//!   `rejected` (reason `risk`) with nothing reserved. Otherwise it reserves the plan, then
//!   a risk `hold` hit or the **review rule** ([`review`]: a held tag, or an order value
//!   over the review threshold) makes it `held`, else a shortfall makes it `backordered`,
//!   else `routed`.
//! - [`settle`]: no zone of the chain placed it whole; at home, the **backorder rule**
//!   ([`may_backorder`]: the policy allows backorders and what stops the order is stock)
//!   places what it can and backorders the rest, or the order is `rejected` with the most
//!   informative reason any zone gave (`reason_for`).
//!
//! Review outranks the shortfall: a held order keeps its backordered units listed, and
//! someone looks at it first.

use super::ZoneState;
use crate::catalog::Catalog;
use crate::config::Policy;
use crate::engine::{self, Failures, OrderContext, Plan, Scratch};
use crate::model::{Decision, Order, Reason, ReasonCode, Status};
use crate::risk::{self, Buyer, CustomerBook};
use smallvec::SmallVec;

/// What the risk screen needs besides the order's context and its zone.
pub struct Screen<'a> {
    pub catalog: &'a Catalog,
    /// The customer book every zone shares.
    pub book: &'a CustomerBook,
    /// The order's buyer (the screen marks it noted when it notes the order).
    pub buyer: &'a mut Buyer,
}

/// Every zone of the order's chain failed to place it whole: `home` (the order's home zone)
/// places what it can and backorders the rest when [`may_backorder`]; otherwise the order
/// is rejected with the most informative reason any zone gave.
pub fn settle(
    context: &OrderContext,
    home: &mut ZoneState,
    mut failures: Failures,
    scratch: &mut Scratch,
    screen: Screen,
) -> Decision {
    let mut reason = reason_for(&failures, context);
    if may_backorder(&context.network.policy, &reason) {
        match engine::plan_partial(context, home, scratch) {
            Ok(plan) => {
                let waiting: u32 = plan.backordered.iter().map(|line| line.quantity).sum();
                let reason = Reason {
                    code: ReasonCode::NoStock,
                    message: format!("{waiting} of {} units wait for stock", context.facts.units),
                };
                return commit(context, home, plan, Some(reason), screen);
            }
            Err(partial_failures) => {
                failures.merge(&partial_failures);
                reason = reason_for(&failures, context);
            }
        }
    }
    Decision {
        order_id: context.order.id.clone(),
        status: Status::Rejected,
        zone: home.zone,
        seq: home.take_seq(),
        decided_at: context.now,
        shipments: SmallVec::new(),
        backordered: SmallVec::new(),
        reason: Some(Box::new(reason)),
        risk: None,
    }
}

/// The backorder rule: an order no zone can place whole waits for stock only when the
/// policy allows backorders and what stops it is stock. When what stops it is a carrier, a
/// service level, a promise or capacity, waiting would not help: it is rejected.
pub fn may_backorder(policy: &Policy, reason: &Reason) -> bool {
    policy.backorder && reason.code == ReasonCode::NoStock
}

/// The message of a hold for a tag of `policy.hold_tags` (see [`hold_rules`]).
const HELD_FOR_A_TAG: &str = "a tag of the order is held for review";

/// The review rule: why `order` must be held for review, if it must (a tag the policy
/// holds, or an order value over `hold_order_value_over`).
pub fn review(order: &Order, policy: &Policy) -> Option<Reason> {
    let message = if order.hold_tagged {
        HELD_FOR_A_TAG.to_owned()
    } else {
        let threshold = policy.hold_order_value_over;
        let value = order_value(order);
        if threshold <= 0.0 || value <= threshold {
            return None;
        }
        format!("order value {value:.2} is over the review threshold {threshold:.2}")
    };
    Some(Reason {
        code: ReasonCode::Review,
        message,
    })
}

/// The rules that held a decision held for review: every risk rule it tripped (a held
/// decision's hits all hold), else the policy key's name, `hold_tags` or
/// `hold_order_value_over`. Labels for metrics.
pub fn hold_rules(decision: &Decision) -> impl Iterator<Item = &str> {
    let hits = decision.risk.as_deref().unwrap_or_default();
    let policy = hits.is_empty().then(|| match &decision.reason {
        Some(reason) if reason.message == HELD_FOR_A_TAG => "hold_tags",
        _ => "hold_order_value_over",
    });
    hits.iter().map(|hit| hit.rule.as_str()).chain(policy)
}

/// Whether `rule` is one of the rules that held `decision` (the review queue's filter).
pub fn held_by(decision: &Decision, rule: &str) -> bool {
    hold_rules(decision).any(|held| held == rule)
}

/// The order's value: the sum of its lines' unit price times quantity.
pub fn order_value(order: &Order) -> f64 {
    order
        .lines
        .iter()
        .map(|line| line.unit_price * f64::from(line.quantity))
        .sum()
}

/// Screens the order against the risk rules, then reserves `plan` in `state` (the zone it
/// was planned in) and builds its decision; `shortfall` is the reason when the plan
/// backorders units. The status: `rejected` when a risk rule rejects it (nothing reserved),
/// `held` when a risk rule or the review rule holds it, else `backordered` with a
/// shortfall, else `routed`.
pub fn commit(
    context: &OrderContext,
    state: &mut ZoneState,
    plan: Plan,
    shortfall: Option<Reason>,
    screen: Screen,
) -> Decision {
    let screening = risk::screen(
        context,
        state.zone,
        screen.catalog,
        state.usual(),
        screen.book,
        screen.buyer,
    );
    let mut decision = Decision {
        order_id: context.order.id.clone(),
        status: Status::Routed,
        zone: state.zone,
        seq: state.take_seq(),
        decided_at: context.now,
        shipments: SmallVec::new(),
        backordered: SmallVec::new(),
        reason: None,
        risk: None,
    };
    let hit = |index: usize| {
        let hit = &screening.hits[index];
        format!("risk rule '{}': {}", hit.rule, hit.message)
    };
    if let Some(index) = screening.rejects {
        decision.status = Status::Rejected;
        decision.reason = Some(Box::new(Reason {
            code: ReasonCode::Risk,
            message: format!("rejected by {}", hit(index)),
        }));
    } else {
        state.reserve(&plan.shipments, context.day);
        let (status, reason) = if let Some(index) = screening.holds {
            let message = format!("held for review by {}", hit(index));
            let reason = Reason {
                code: ReasonCode::Review,
                message,
            };
            (Status::Held, Some(Box::new(reason)))
        } else {
            match (review(context.order, &context.network.policy), shortfall) {
                (Some(review), _) => (Status::Held, Some(Box::new(review))),
                (None, Some(shortfall)) => (Status::Backordered, Some(Box::new(shortfall))),
                (None, None) => (Status::Routed, None),
            }
        };
        decision.status = status;
        decision.reason = reason;
        decision.shipments = plan.shipments;
        decision.backordered = plan.backordered;
    }
    if !screening.hits.is_empty() {
        decision.risk = Some(screening.hits.into_boxed_slice());
    }
    decision
}

/// The most informative reason among `failures` (the deepest stage any zone reached).
fn reason_for(failures: &Failures, context: &OrderContext) -> Reason {
    let network = context.network;
    let region = network.region_name(context.order.region);
    let zones = {
        let home = network.regions[context.order.region.index()].zone;
        network
            .zone_order(home)
            .map(|zone| network.zone_name(zone))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (code, message) = if let Some(eta) = failures.earliest_late_eta {
        let promise = context.order.promise_by.unwrap_or_default();
        (
            ReasonCode::PromiseUnmeetable,
            format!("no plan delivers by {promise}; the earliest possible arrival is {eta}"),
        )
    } else if failures.pickup_capacity {
        (
            ReasonCode::Capacity,
            "the carriers that fit have used today's pickups at the warehouses holding the stock"
                .to_owned(),
        )
    } else if failures.service_unavailable {
        (
            ReasonCode::ServiceUnavailable,
            format!(
                "no carrier offers {} or faster to {region} from the warehouses holding the stock",
                context.facts.level.name()
            ),
        )
    } else if failures.no_carrier {
        (
            ReasonCode::NoCarrier,
            format!(
                "no carrier delivers these goods to {region} from the warehouses holding them (capabilities [{}], {:.3} kg in all)",
                context.facts.capabilities,
                context.facts.weight_g as f64 / 1000.0
            ),
        )
    } else if failures.warehouse_capacity {
        (
            ReasonCode::Capacity,
            "the warehouses holding the stock have used today's capacity".to_owned(),
        )
    } else {
        (
            ReasonCode::NoStock,
            format!("not enough stock for every unit in zones {zones}"),
        )
    };
    Reason { code, message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::test_world::{order, world};

    fn policy(hold_over: f64, backorder: bool) -> Policy {
        Policy {
            hold_order_value_over: hold_over,
            backorder,
            ..Policy::default()
        }
    }

    fn decision_with(reason: Reason) -> Decision {
        Decision {
            order_id: "o1".into(),
            status: Status::Held,
            zone: crate::ids::ZoneId(0),
            seq: 1,
            decided_at: crate::time::Millis(0),
            shipments: SmallVec::new(),
            backordered: SmallVec::new(),
            reason: Some(Box::new(reason)),
            risk: None,
        }
    }

    fn reason(code: ReasonCode) -> Reason {
        Reason {
            code,
            message: String::new(),
        }
    }

    #[test]
    fn the_review_rule_holds_a_tagged_order_or_one_over_the_value_threshold() {
        let world = world("warehouse,sku,on_hand\nWS,A,5\n");
        let mut priced = order(&world, "o1", "S", "A", 3);
        priced.lines[0].unit_price = 40.0;
        // 3 x 40 = 120: over 100, not over 120 or 200; no threshold holds nothing.
        let held = review(&priced, &policy(100.0, true)).expect("over the threshold");
        assert_eq!(held.code, ReasonCode::Review);
        assert_eq!(
            held.message,
            "order value 120.00 is over the review threshold 100.00"
        );
        let decision = decision_with(held);
        assert_eq!(
            hold_rules(&decision).collect::<Vec<_>>(),
            ["hold_order_value_over"]
        );
        assert!(review(&priced, &policy(120.0, true)).is_none());
        assert!(review(&priced, &policy(0.0, true)).is_none());
        let mut tagged = priced.clone();
        tagged.hold_tagged = true;
        let held = review(&tagged, &policy(0.0, true)).expect("a held tag");
        assert_eq!(held.message, "a tag of the order is held for review");
        let decision = decision_with(held);
        assert_eq!(hold_rules(&decision).collect::<Vec<_>>(), ["hold_tags"]);
        assert_eq!(order_value(&tagged), 120.0);
    }

    #[test]
    fn the_backorder_rule_waits_only_for_stock_and_only_when_the_policy_allows() {
        assert!(may_backorder(
            &policy(0.0, true),
            &reason(ReasonCode::NoStock)
        ));
        assert!(!may_backorder(
            &policy(0.0, false),
            &reason(ReasonCode::NoStock)
        ));
        for code in [
            ReasonCode::NoCarrier,
            ReasonCode::PromiseUnmeetable,
            ReasonCode::Capacity,
            ReasonCode::ServiceUnavailable,
        ] {
            assert!(
                !may_backorder(&policy(0.0, true), &reason(code)),
                "{code:?}"
            );
        }
    }

    #[test]
    fn a_held_order_keeps_its_reservation_and_review_outranks_the_shortfall() {
        use crate::engine::{OrderContext, OrderFacts, ZoneAttempt, plan_zone};
        use crate::time::Millis;
        let world = world("warehouse,sku,on_hand\nWS,A,5\n");
        let mut network = (*world.network).clone();
        network.policy.hold_order_value_over = 10.0;
        let mut priced = order(&world, "o1", "S", "A", 2);
        priced.lines[0].unit_price = 6.0;
        let mut zones = crate::zone::test_world::zones(&world);
        let south = &mut zones[1];
        let facts = OrderFacts::new(&priced, &network, south.catalog());
        let context = OrderContext::new(&priced, &facts, &network, Millis(0));
        let mut scratch = Scratch::default();
        let ZoneAttempt::Placed(plan) = plan_zone(&context, south.state(), &mut scratch) else {
            panic!("the south holds the stock");
        };
        let shortfall = reason(ReasonCode::NoStock);
        let book = crate::risk::CustomerBook::new(2);
        let mut buyer = crate::risk::Buyer::of(&priced);
        let screen = Screen {
            catalog: &world.catalog,
            book: &book,
            buyer: &mut buyer,
        };
        let decision = commit(&context, south.state_mut(), plan, Some(shortfall), screen);
        assert_eq!(decision.status, Status::Held);
        assert_eq!(decision.reason.as_ref().unwrap().code, ReasonCode::Review);
        let cell = south.state().cell(0, crate::ids::SkuId(0));
        assert_eq!(cell.reserved, 2, "a held order's units are reserved");
    }
}
