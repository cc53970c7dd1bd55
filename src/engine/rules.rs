//! Routing rules applied to one order ([`RuleEffect::of`]): which rules match, and for each
//! kind of action which rule's setting holds. Worked out once per order with its
//! [`OrderFacts`](super::OrderFacts) (the order's content, the snapshot and the catalogue
//! decide it, not the zone), then read by every step of the search: candidates
//! (`only_warehouses`, `exclude_warehouses`, `prefer_group`), carriers (`only_carriers`,
//! `exclude_carriers`), the level (`min_service`) and the split search (`split`).
//!
//! Precedence: `config::RoutingRules` keeps the rules most specific first, then in config
//! order, so the first matching rule that sets an action is the one whose setting holds.
//! With no rules configured nothing here runs: [`RuleEffect::of`] is not called and every
//! check in the engine is one test of [`RuleEffect::active`].

use crate::catalog::Catalog;
use crate::config::{IdSet, Network, RoutingRules, Rule, RuleActions, RuleMatch};
use crate::ids::{CarrierId, WarehouseId};
use crate::model::{Capabilities, Order, ServiceLevel};

/// What the routing rules do to one order: for each kind of action, the rule (its index in
/// `policy.rules.rules`) whose setting holds, if any.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RuleEffect {
    /// Whether some rule restricts or prefers warehouses or carriers: when not, the
    /// engine's per-warehouse and per-carrier checks are skipped.
    pub active: bool,
    pub only_warehouses: Option<u16>,
    pub exclude_warehouses: Option<u16>,
    pub prefer: Option<u16>,
    pub only_carriers: Option<u16>,
    pub exclude_carriers: Option<u16>,
    /// The level the rules raise the order to (folded into the facts' level).
    pub min_service: Option<ServiceLevel>,
    /// Whether the rules allow splitting (folded into the facts' split flag).
    pub split: Option<bool>,
    /// The admission lane the rules put the order in (`true`: priority).
    pub priority: Option<bool>,
}

/// The per-order values a rule (routing or risk) is matched against, worked out once per
/// order (the category mask only when some rule names a category).
pub struct Subject<'a> {
    order: &'a Order,
    network: &'a Network,
    capabilities: Capabilities,
    categories: u64,
    value: f64,
}

impl RuleEffect {
    /// The rules of `network` applied to `order`, whose lines need `capabilities`.
    pub fn of(
        order: &Order,
        network: &Network,
        catalog: &Catalog,
        capabilities: Capabilities,
    ) -> RuleEffect {
        let rules = &network.policy.rules;
        let value = if rules.rules.iter().any(has_value_bounds) {
            crate::zone::verdict::order_value(order)
        } else {
            0.0
        };
        let subject = Subject::new(order, network, catalog, capabilities, value);
        let mut effect = RuleEffect::default();
        for (index, rule) in rules.rules.iter().enumerate() {
            if subject.matches(&rule.matches) {
                effect.take(index as u16, rule);
            }
        }
        effect.active = effect.only_warehouses.is_some()
            || effect.exclude_warehouses.is_some()
            || effect.prefer.is_some()
            || effect.only_carriers.is_some()
            || effect.exclude_carriers.is_some();
        effect
    }

    /// Takes the actions of matching rule `index` that no rule before it (a more specific
    /// one, or an earlier one as specific) has set.
    fn take(&mut self, index: u16, rule: &Rule) {
        let actions = &rule.actions;
        let set = |slot: &mut Option<u16>, given: bool| {
            if given && slot.is_none() {
                *slot = Some(index);
            }
        };
        set(&mut self.only_warehouses, actions.only_warehouses.is_some());
        set(
            &mut self.exclude_warehouses,
            actions.exclude_warehouses.is_some(),
        );
        set(&mut self.prefer, actions.prefer.is_some());
        set(&mut self.only_carriers, actions.only_carriers.is_some());
        set(
            &mut self.exclude_carriers,
            actions.exclude_carriers.is_some(),
        );
        self.min_service = self.min_service.or(actions.min_service);
        self.split = self.split.or(actions.split);
        self.priority = self.priority.or(actions.priority);
    }

    /// Whether the rules let `warehouse` ship the order.
    #[inline]
    pub fn allows_warehouse(&self, rules: &RoutingRules, warehouse: WarehouseId) -> bool {
        let index = warehouse.index();
        self.only_warehouses
            .is_none_or(|rule| in_rule_set(rules, rule, index, |a| &a.only_warehouses))
            && self
                .exclude_warehouses
                .is_none_or(|rule| !in_rule_set(rules, rule, index, |a| &a.exclude_warehouses))
    }

    /// The score a shipment from `warehouse` is spared by the preferring rule (0 if none).
    #[inline]
    pub fn bonus(&self, rules: &RoutingRules, warehouse: WarehouseId) -> f64 {
        self.prefer
            .and_then(|rule| rules.rules[usize::from(rule)].actions.prefer.as_ref())
            .filter(|(set, _)| set.contains(warehouse.index()))
            .map_or(0.0, |(_, bonus)| *bonus)
    }

    /// Whether the rules let `carrier` carry the order.
    #[inline]
    pub fn allows_carrier(&self, rules: &RoutingRules, carrier: CarrierId) -> bool {
        let index = carrier.index();
        self.only_carriers
            .is_none_or(|rule| in_rule_set(rules, rule, index, |a| &a.only_carriers))
            && self
                .exclude_carriers
                .is_none_or(|rule| !in_rule_set(rules, rule, index, |a| &a.exclude_carriers))
    }
}

/// Whether id `index` is in the set `pick` takes from the actions of rule `rule`.
#[inline]
fn in_rule_set(
    rules: &RoutingRules,
    rule: u16,
    index: usize,
    pick: impl Fn(&RuleActions) -> &Option<IdSet>,
) -> bool {
    pick(&rules.rules[usize::from(rule)].actions)
        .as_ref()
        .is_some_and(|set| set.contains(index))
}

fn has_value_bounds(rule: &Rule) -> bool {
    rule.matches.min_order_value.is_some() || rule.matches.max_order_value.is_some()
}

/// The rule categories of the order's lines, as bits over `rules.category_ids` (0 when no
/// rule names a category: no lookups then).
fn order_categories(order: &Order, rules: &RoutingRules, catalog: &Catalog) -> u64 {
    if rules.category_ids.is_empty() {
        return 0;
    }
    let mut bits = 0u64;
    for line in &order.lines {
        let category = catalog.sku(line.sku).category;
        if category != 0
            && let Some(index) = rules.category_ids.get(catalog.category_name(category))
        {
            bits |= 1 << index;
        }
    }
    bits
}

impl<'a> Subject<'a> {
    /// `order` (worth `value`, its lines needing `capabilities`) under `network`.
    pub fn new(
        order: &'a Order,
        network: &'a Network,
        catalog: &Catalog,
        capabilities: Capabilities,
        value: f64,
    ) -> Subject<'a> {
        Subject {
            order,
            network,
            capabilities,
            categories: order_categories(order, &network.policy.rules, catalog),
            value,
        }
    }

    /// Whether every condition `matches` gives holds for the order.
    pub fn matches(&self, matches: &RuleMatch) -> bool {
        let order = self.order;
        // The one-word tests first (most rules are told apart by them), the customer list's
        // binary search last.
        (matches.tags == 0 || matches.tags & order.rule_tags != 0)
            && (matches.capabilities == Capabilities::NONE
                || matches.capabilities.0 & self.capabilities.0 != 0)
            && (matches.categories == 0 || matches.categories & self.categories != 0)
            && (matches.services == 0 || matches.services & (1 << order.service as u8) != 0)
            && matches
                .tiers
                .as_ref()
                .is_none_or(|set| set.contains(order.tier.index()))
            && matches
                .regions
                .as_ref()
                .is_none_or(|set| set.contains(order.region.index()))
            && matches.zones.as_ref().is_none_or(|set| {
                set.contains(self.network.regions[order.region.index()].zone.index())
            })
            && matches.min_order_value.is_none_or(|min| self.value >= min)
            && matches.max_order_value.is_none_or(|max| self.value <= max)
            && matches.customers.as_ref().is_none_or(|customers| {
                customers
                    .binary_search_by(|customer| customer.as_str().cmp(&order.customer_id))
                    .is_ok()
            })
    }
}
