//! Risk rules (`[[risk]]`, issue 11): the compiled form the risk screen reads
//! ([`RiskRules`]) and its build from the file.
//!
//! A risk rule matches as a routing rule does (the same keys, compiled by the same
//! `Checker::rule_match`, sharing the routing rules' tag and category names), plus `skus`;
//! it checks exactly one thing ([`RiskCheck`]) and holds the orders that fail it for review
//! or rejects them. Every rule is screened, in config order, and every hit is listed in the
//! decision: there is no precedence among risk rules, a `reject` outranks a `hold`.
//! `docs/rules.md` has a worked example of each check.

use super::check::Checker;
use super::line_column;
use super::raw::{RawConfig, RawRisk};
use super::rules::{CategoryReference, RoutingRules, RuleMatch, RuleNames};
use compact_str::CompactString;
use toml::Spanned;

/// Most orders a velocity rule may count (`velocity_orders`): the customer book keeps this
/// many of a customer's latest orders.
pub const MAX_VELOCITY_ORDERS: u32 = 31;
/// Longest velocity window, in minutes (a day).
pub const MAX_VELOCITY_MINUTES: i64 = 1440;
/// Furthest a promise may be for `promise_within_minutes`, in minutes (a week).
pub const MAX_PROMISE_MINUTES: i64 = 7 * 1440;
/// Most approvers a risk hold may ask for (as `policy.review_approvals`).
pub const MAX_APPROVALS: i64 = 5;

/// What a risk rule checks. Each names the figure that trips it in the hit's message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RiskCheck {
    /// The customer's open exposure plus this order's value would pass the customer's credit
    /// limit (`credit_limit = true`; customers without a limit are never held by it).
    CreditLimit,
    /// The order's value is over this (`order_value_over`).
    OrderValueOver(f64),
    /// The customer would have more than `orders` orders within `window_ms`
    /// (`velocity_orders`, `velocity_minutes`), this one included.
    Velocity { orders: u32, window_ms: i64 },
    /// A line's quantity is over `factor` times the SKU's usual quantity in the zone, once
    /// the usual rests on at least `after` orders (`quantity_over_usual`, `usual_after`).
    QuantityOverUsual { factor: f64, after: u32 },
    /// The ship-to is more than this many km from the nearest of the customer's previous
    /// ship-tos (`distance_km_over`); a first order never trips it.
    DistanceOver(f64),
    /// Every order the rule matches (`block = true`): a SKU or category blocked for a region.
    Block,
    /// The order's `promise_by` is less than this many ms after the decision
    /// (`promise_within_minutes`).
    PromiseWithin(i64),
}

/// One compiled risk rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RiskRule {
    pub id: CompactString,
    pub matches: RuleMatch,
    /// SKU ids (names, sorted) any line of the order is one of; `None`: any.
    pub skus: Option<Vec<CompactString>>,
    pub check: RiskCheck,
    /// `action = "reject"` (else `"hold"`).
    pub rejects: bool,
    /// Distinct approvers a hold of this rule needs; 0: `policy.review_approvals`.
    pub approvals: u8,
}

/// The risk rules of one config snapshot, in config order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RiskRules {
    pub rules: Vec<RiskRule>,
    /// The SKUs the rules name, where they stand in the file: checked against the catalogue
    /// when the two are loaded together (as the routing rules' categories are).
    pub sku_references: Vec<CategoryReference>,
}

impl RiskRules {
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether some rule checks the SKUs' usual quantities.
    pub fn checks_quantities(&self) -> bool {
        self.rules
            .iter()
            .any(|rule| matches!(rule.check, RiskCheck::QuantityOverUsual { .. }))
    }
}

/// The check keys, one of which a risk rule must give.
const CHECKS: &str = "credit_limit, order_value_over, velocity_orders (with velocity_minutes), \
                      quantity_over_usual, distance_km_over, block, promise_within_minutes";

impl Checker<'_> {
    /// The `[[risk]]` rules of `raw`, every name resolved; their tag and category names join
    /// those of the routing rules in `routing`.
    pub(super) fn risk_rules(
        &mut self,
        raw: &RawConfig,
        names: &RuleNames,
        routing: &mut RoutingRules,
    ) -> RiskRules {
        let mut risk = RiskRules::default();
        let _ids = self.intern("risk", raw.risk.iter().map(|rule| &rule.get_ref().id));
        for (position, rule) in raw.risk.iter().enumerate() {
            let key = format!("risk[{position}]");
            let compiled = self.risk_rule(&key, rule, names, routing, &mut risk);
            risk.rules.push(compiled);
        }
        risk
    }

    fn risk_rule(
        &mut self,
        key: &str,
        rule: &Spanned<RawRisk>,
        names: &RuleNames,
        routing: &mut RoutingRules,
        risk: &mut RiskRules,
    ) -> RiskRule {
        let raw = rule.get_ref();
        if ["hold_tags", "hold_order_value_over"].contains(&raw.id.get_ref().as_str()) {
            let message = format!(
                "'{}' names the policy's own hold in the review queue's filter and the holds \
                 metric: give the risk rule another id",
                raw.id.get_ref()
            );
            self.report(raw.id.span(), format!("{key}.id"), message);
        }
        let matches = self.rule_match(key, &raw.match_fields(), names, routing);
        let skus = self.non_empty(&raw.skus, key, "skus").map(|skus| {
            for (position, sku) in skus.iter().enumerate() {
                let (line, column) = line_column(self.text, sku.span().start);
                risk.sku_references.push(CategoryReference {
                    name: sku.get_ref().clone(),
                    line,
                    column,
                    key: format!("{key}.skus[{position}]"),
                });
            }
            let mut ids: Vec<CompactString> = skus
                .iter()
                .map(|sku| CompactString::new(sku.get_ref()))
                .collect();
            ids.sort_unstable();
            ids.dedup();
            ids
        });
        let check = self.risk_check(key, rule);
        if check == Some(RiskCheck::Block) && skus.is_none() && matches == RuleMatch::default() {
            let message = "a block with no condition would reject or hold every order: say what \
                           it blocks (skus, categories, capabilities) and where (regions, zones)";
            self.report(rule.span(), key, message);
        }
        let rejects = match raw.action.get_ref().as_str() {
            "hold" => false,
            "reject" => true,
            other => {
                let message = format!("must be \"hold\" or \"reject\", got \"{other}\"");
                self.report(raw.action.span(), format!("{key}.action"), message);
                false
            }
        };
        let approvals = raw.approvals.as_ref().map_or(0, |approvals| {
            if rejects {
                let message = "approvals applies to a hold; a rejected order is not reviewed";
                self.report(approvals.span(), format!("{key}.approvals"), message);
            }
            self.integer(approvals, format!("{key}.approvals"), 1..MAX_APPROVALS + 1) as u8
        });
        RiskRule {
            id: CompactString::new(raw.id.get_ref()),
            matches,
            skus,
            check: check.unwrap_or(RiskCheck::Block),
            rejects,
            approvals,
        }
    }

    /// The one check of risk rule `key`.
    fn risk_check(&mut self, key: &str, rule: &Spanned<RawRisk>) -> Option<RiskCheck> {
        let raw = rule.get_ref();
        let mut checks: Vec<(&str, RiskCheck)> = Vec::new();
        if let Some(flag) = &raw.credit_limit {
            self.must_be_true(flag, key, "credit_limit");
            checks.push(("credit_limit", RiskCheck::CreditLimit));
        }
        if let Some(value) = &raw.order_value_over {
            let value = self.non_negative(value, format!("{key}.order_value_over"), true);
            checks.push(("order_value_over", RiskCheck::OrderValueOver(value)));
        }
        match (&raw.velocity_orders, &raw.velocity_minutes) {
            (Some(orders), Some(minutes)) => {
                let orders = self.integer(
                    orders,
                    format!("{key}.velocity_orders"),
                    1..i64::from(MAX_VELOCITY_ORDERS) + 1,
                ) as u32;
                let minutes = self.integer(
                    minutes,
                    format!("{key}.velocity_minutes"),
                    1..MAX_VELOCITY_MINUTES + 1,
                );
                let window_ms = minutes * 60_000;
                checks.push(("velocity_orders", RiskCheck::Velocity { orders, window_ms }));
            }
            (Some(orders), None) => {
                let message = "velocity_orders needs velocity_minutes (the window)";
                self.report(orders.span(), format!("{key}.velocity_minutes"), message);
            }
            (None, Some(minutes)) => {
                let message = "velocity_minutes needs velocity_orders (how many orders)";
                self.report(minutes.span(), format!("{key}.velocity_orders"), message);
            }
            (None, None) => {}
        }
        if let Some(factor) = &raw.quantity_over_usual {
            let value = self.non_negative(factor, format!("{key}.quantity_over_usual"), true);
            if value <= 1.0 {
                let message = format!("must be above 1 (a multiple of the usual), got {value}");
                self.report(factor.span(), format!("{key}.quantity_over_usual"), message);
            }
            let after = raw.usual_after.as_ref().map_or(20, |after| {
                self.integer(after, format!("{key}.usual_after"), 1..1_000_001) as u32
            });
            checks.push((
                "quantity_over_usual",
                RiskCheck::QuantityOverUsual {
                    factor: value,
                    after,
                },
            ));
        } else if let Some(after) = &raw.usual_after {
            let message = "usual_after goes with quantity_over_usual";
            self.report(after.span(), format!("{key}.quantity_over_usual"), message);
        }
        if let Some(km) = &raw.distance_km_over {
            let km = self.non_negative(km, format!("{key}.distance_km_over"), true);
            checks.push(("distance_km_over", RiskCheck::DistanceOver(km)));
        }
        if let Some(flag) = &raw.block {
            self.must_be_true(flag, key, "block");
            checks.push(("block", RiskCheck::Block));
        }
        if let Some(minutes) = &raw.promise_within_minutes {
            let key = format!("{key}.promise_within_minutes");
            let minutes = self.integer(minutes, key, 1..MAX_PROMISE_MINUTES + 1);
            checks.push((
                "promise_within_minutes",
                RiskCheck::PromiseWithin(minutes * 60_000),
            ));
        }
        match checks.as_slice() {
            [(_, check)] => Some(*check),
            [] => {
                let message = format!("a risk rule needs one check: {CHECKS}");
                self.report(rule.span(), key, message);
                None
            }
            [_, ..] => {
                let names: Vec<&str> = checks.iter().map(|(name, _)| *name).collect();
                let message = format!(
                    "a risk rule checks one thing, this one gives {}: write one rule each",
                    names.join(", ")
                );
                self.report(rule.span(), key, message);
                None
            }
        }
    }

    fn must_be_true(&mut self, flag: &Spanned<bool>, key: &str, field: &str) {
        if !flag.get_ref() {
            let message = format!("{field} = false checks nothing: leave the rule out instead");
            self.report(flag.span(), format!("{key}.{field}"), message);
        }
    }
}
