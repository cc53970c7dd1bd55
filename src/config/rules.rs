//! Routing rules (`[[rules]]`) and warehouse groups (`[[warehouse_groups]]`), issue 11:
//! the compiled form the engine reads ([`RoutingRules`]) and its build from the file.
//!
//! Every name a rule uses is resolved here, once, into interned ids and bit sets: tiers,
//! regions, zones, warehouses (and groups, expanded to their warehouses) and carriers are
//! [`IdSet`]s over their dense ids; capabilities and service levels are small bit masks;
//! tags and categories are bits over the names the rules mention (at most 64 of each, so a
//! mask is one `u64`). The rules are stored in precedence order (most specific first, then
//! config order), so the engine takes, for each kind of action, the first matching rule
//! that sets it. `docs/rules.md` has the precedence for ops.
//!
//! A category cannot be checked here (the config does not know the catalogue): each one is
//! kept with its place in the file ([`CategoryReference`]) and `World::load` checks them
//! against the catalogue it loads.

use super::check::Checker;
use super::line_column;
use super::raw::{MatchFields, RawConfig, RawRule, RuleList};
use crate::ids::{Interner, WarehouseId};
use crate::model::{Capabilities, ServiceLevel};
use compact_str::CompactString;
use toml::Spanned;

/// Most distinct tags, and most distinct categories, all the rules together may name: a
/// set of them is one `u64`.
pub const MAX_RULE_NAMES: usize = 64;

/// A set of dense ids (tiers, regions, zones, warehouses, carriers) as bits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdSet {
    words: Box<[u64]>,
}

impl IdSet {
    /// An empty set of ids below `len`.
    pub fn with_len(len: usize) -> IdSet {
        IdSet {
            words: vec![0; len.div_ceil(64)].into_boxed_slice(),
        }
    }

    pub fn insert(&mut self, index: usize) {
        if let Some(word) = self.words.get_mut(index / 64) {
            *word |= 1 << (index % 64);
        }
    }

    #[inline]
    pub fn contains(&self, index: usize) -> bool {
        self.words
            .get(index / 64)
            .is_some_and(|word| word & (1 << (index % 64)) != 0)
    }

    /// Every id in the set, in order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.words.len() * 64).filter(|index| self.contains(*index))
    }
}

/// How specific a rule is, from what it matches on (the highest kind it names wins): a
/// customer list, then items (categories, capabilities), then place (regions, zones), then
/// the rest (tiers, tags, order value, services). As IBM Sterling orders its rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Specificity {
    Other = 0,
    Region = 1,
    Item = 2,
    Customer = 3,
}

/// What a rule matches. A field left out of the rule is `None` (or an empty mask) and
/// matches every order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleMatch {
    pub tiers: Option<IdSet>,
    /// Customer ids, sorted (binary search).
    pub customers: Option<Vec<CompactString>>,
    /// Bits over [`RoutingRules::category_ids`]; 0 = any.
    pub categories: u64,
    /// Capabilities any line of the order needs one of; none = any.
    pub capabilities: Capabilities,
    pub regions: Option<IdSet>,
    /// The order's home zone (its region's).
    pub zones: Option<IdSet>,
    /// Bits over [`RoutingRules::tag_ids`]; 0 = any. The order carries one of them.
    pub tags: u64,
    pub min_order_value: Option<f64>,
    pub max_order_value: Option<f64>,
    /// Bits by [`ServiceLevel`] of the level the order asks for; 0 = any.
    pub services: u8,
}

/// What a rule does. Each field is one kind of action; `None` leaves it to other rules.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleActions {
    /// Only these warehouses may ship the order (groups expanded).
    pub only_warehouses: Option<IdSet>,
    /// These warehouses may not ship the order (groups expanded).
    pub exclude_warehouses: Option<IdSet>,
    /// A shipment from a warehouse of this set scores this much less.
    pub prefer: Option<(IdSet, f64)>,
    pub only_carriers: Option<IdSet>,
    pub exclude_carriers: Option<IdSet>,
    /// The order ships at this level or faster.
    pub min_service: Option<ServiceLevel>,
    /// `false` forbids splitting; `true` lifts a less specific rule's `false` (it never lets
    /// an order that says `"split": "forbid"` split).
    pub split: Option<bool>,
    /// The admission lane: `true` for the priority lane (the reserve of
    /// `limits.priority_reserve` permits), `false` for the standard one.
    pub priority: Option<bool>,
}

/// One compiled rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: String,
    pub specificity: Specificity,
    /// Its place among the `[[rules]]` of the file.
    pub position: usize,
    pub matches: RuleMatch,
    pub actions: RuleActions,
}

/// A warehouse group: a name for a set of warehouses.
#[derive(Debug, Clone, PartialEq)]
pub struct WarehouseGroup {
    pub id: String,
    pub warehouses: Vec<WarehouseId>,
}

/// A category a rule names, where it stands in the file: checked against the catalogue
/// when the two are loaded together.
#[derive(Debug, Clone, PartialEq)]
pub struct CategoryReference {
    pub name: String,
    pub line: usize,
    pub column: usize,
    pub key: String,
}

/// The routing rules of one config snapshot, compiled. Empty when the file has none, and
/// then the engine does no rule work at all.
#[derive(Debug, Clone, Default)]
pub struct RoutingRules {
    /// Most specific first, then in config order: for each kind of action the first
    /// matching rule that sets it wins.
    pub rules: Vec<Rule>,
    pub groups: Vec<WarehouseGroup>,
    /// The tags the rules name (bit `i` of a tag mask is tag `i`).
    pub tag_ids: Interner,
    /// The categories the rules name (bit `i` of a category mask is category `i`).
    pub category_ids: Interner,
    pub category_references: Vec<CategoryReference>,
}

impl RoutingRules {
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether some rule can change an order's admission lane: one with a `lane`, or one
    /// that raises the level to express or faster. Admission matches the rules only then
    /// (the engine matches them again, once per order, for everything else).
    pub fn decide_lanes(&self) -> bool {
        self.rules.iter().any(|rule| {
            rule.actions.priority.is_some()
                || rule
                    .actions
                    .min_service
                    .is_some_and(|level| level >= ServiceLevel::Express)
        })
    }
}

impl PartialEq for RoutingRules {
    /// Same rules and groups: the interners follow from the rules.
    fn eq(&self, other: &Self) -> bool {
        self.rules == other.rules
            && self.groups == other.groups
            && self.tag_ids.names().eq(other.tag_ids.names())
            && self.category_ids.names().eq(other.category_ids.names())
    }
}

/// The interned ids a rule may name, by kind.
pub(super) struct RuleNames<'a> {
    pub tiers: &'a Interner,
    pub zones: &'a Interner,
    pub regions: &'a Interner,
    pub warehouses: &'a Interner,
    pub carriers: &'a Interner,
}

impl Checker<'_> {
    /// The warehouse groups and rules of `raw`, every name resolved.
    pub(super) fn routing_rules(&mut self, raw: &RawConfig, names: &RuleNames) -> RoutingRules {
        let mut rules = RoutingRules {
            groups: self.warehouse_groups(raw, names.warehouses),
            ..RoutingRules::default()
        };
        let _ids = self.intern("rules", raw.rules.iter().map(|rule| &rule.get_ref().id));
        for (position, rule) in raw.rules.iter().enumerate() {
            let compiled = self.rule(position, rule, names, &mut rules);
            rules.rules.push(compiled);
        }
        // Stable: equal specificity keeps config order.
        rules
            .rules
            .sort_by_key(|rule| std::cmp::Reverse(rule.specificity));
        rules
    }

    /// The groups: ids unique and unlike any warehouse id, members defined warehouses.
    fn warehouse_groups(&mut self, raw: &RawConfig, warehouses: &Interner) -> Vec<WarehouseGroup> {
        let ids = self.intern(
            "warehouse_groups",
            raw.warehouse_groups.iter().map(|group| &group.get_ref().id),
        );
        let mut groups = Vec::with_capacity(ids.len());
        for (index, group) in raw.warehouse_groups.iter().enumerate() {
            let group = group.get_ref();
            let key = format!("warehouse_groups[{index}]");
            if warehouses.get(group.id.get_ref()).is_some() {
                let message = format!(
                    "group '{}' has the id of a warehouse: rules could not tell them apart",
                    group.id.get_ref()
                );
                self.report(group.id.span(), format!("{key}.id"), message);
            }
            if group.warehouses.is_empty() {
                let message = "a group needs at least one warehouse";
                self.report(group.id.span(), format!("{key}.warehouses"), message);
            }
            let members = group
                .warehouses
                .iter()
                .enumerate()
                .map(|(position, name)| {
                    let key = format!("{key}.warehouses[{position}]");
                    WarehouseId(self.lookup(warehouses, "warehouse", name, key))
                })
                .collect();
            groups.push(WarehouseGroup {
                id: group.id.get_ref().clone(),
                warehouses: members,
            });
        }
        groups
    }

    /// Rule `position` of the file.
    fn rule(
        &mut self,
        position: usize,
        rule: &Spanned<RawRule>,
        names: &RuleNames,
        rules: &mut RoutingRules,
    ) -> Rule {
        let key = format!("rules[{position}]");
        let raw = rule.get_ref();
        let matches = self.rule_match(&key, &raw.match_fields(), names, rules);
        let actions = self.rule_actions(&key, raw, names, &rules.groups);
        if actions == RuleActions::default() {
            let message = "a rule needs at least one action (only_warehouses, exclude_warehouses, \
                           prefer_group, only_carriers, exclude_carriers, min_service, split, lane)";
            self.report(rule.span(), key, message);
        }
        let specificity = if matches.customers.is_some() {
            Specificity::Customer
        } else if matches.categories != 0 || matches.capabilities != Capabilities::NONE {
            Specificity::Item
        } else if matches.regions.is_some() || matches.zones.is_some() {
            Specificity::Region
        } else {
            Specificity::Other
        };
        Rule {
            id: raw.id.get_ref().clone(),
            specificity,
            position,
            matches,
            actions,
        }
    }

    /// What rule `key` matches on (a routing rule or a risk rule: `rules` holds the tag and
    /// category names of both).
    pub(super) fn rule_match(
        &mut self,
        key: &str,
        raw: &MatchFields,
        names: &RuleNames,
        rules: &mut RoutingRules,
    ) -> RuleMatch {
        let mut matches = RuleMatch {
            tiers: self.id_set(names.tiers, "tier", raw.tiers, key, "tiers"),
            regions: self.id_set(names.regions, "region", raw.regions, key, "regions"),
            zones: self.id_set(names.zones, "zone", raw.zones, key, "zones"),
            ..RuleMatch::default()
        };
        if let Some(customers) = self.non_empty(raw.customers, key, "customers") {
            let mut ids: Vec<CompactString> = customers
                .iter()
                .map(|customer| CompactString::new(customer.get_ref()))
                .collect();
            ids.sort_unstable();
            ids.dedup();
            matches.customers = Some(ids);
        }
        if let Some(capabilities) = self.non_empty(raw.capabilities, key, "capabilities") {
            matches.capabilities = self.capabilities(capabilities, key);
        }
        if let Some(services) = self.non_empty(raw.services, key, "services") {
            for (position, level) in services.iter().enumerate() {
                let level = self.service_level(level, format!("{key}.services[{position}]"));
                matches.services |= 1 << level as u8;
            }
        }
        if let Some(tags) = self.non_empty(raw.tags, key, "tags") {
            matches.tags = self.name_bits(&mut rules.tag_ids, tags, key, "tags");
        }
        if let Some(categories) = self.non_empty(raw.categories, key, "categories") {
            matches.categories =
                self.name_bits(&mut rules.category_ids, categories, key, "categories");
            for (position, category) in categories.iter().enumerate() {
                let (line, column) = line_column(self.text, category.span().start);
                rules.category_references.push(CategoryReference {
                    name: category.get_ref().clone(),
                    line,
                    column,
                    key: format!("{key}.categories[{position}]"),
                });
            }
        }
        self.order_value_bounds(key, raw, &mut matches);
        matches
    }

    /// `min_order_value` and `max_order_value`: numbers >= 0, the minimum not above the
    /// maximum.
    fn order_value_bounds(&mut self, key: &str, raw: &MatchFields, matches: &mut RuleMatch) {
        matches.min_order_value = raw
            .min_order_value
            .as_ref()
            .map(|value| self.non_negative(value, format!("{key}.min_order_value"), false));
        matches.max_order_value = raw
            .max_order_value
            .as_ref()
            .map(|value| self.non_negative(value, format!("{key}.max_order_value"), false));
        if let (Some(min), Some(max), Some(raw_min)) = (
            matches.min_order_value,
            matches.max_order_value,
            raw.min_order_value,
        ) && min > max
        {
            let message = format!("min_order_value {min} is above max_order_value {max}");
            self.report(raw_min.span(), format!("{key}.min_order_value"), message);
        }
    }

    /// What rule `key` does.
    fn rule_actions(
        &mut self,
        key: &str,
        raw: &RawRule,
        names: &RuleNames,
        groups: &[WarehouseGroup],
    ) -> RuleActions {
        let warehouses = |checker: &mut Self, list: &RuleList, field: &str| {
            checker.warehouse_set(names.warehouses, groups, list, key, field)
        };
        RuleActions {
            only_warehouses: warehouses(self, &raw.only_warehouses, "only_warehouses"),
            exclude_warehouses: warehouses(self, &raw.exclude_warehouses, "exclude_warehouses"),
            prefer: self.preference(key, raw, names.warehouses, groups),
            only_carriers: self.id_set(
                names.carriers,
                "carrier",
                &raw.only_carriers,
                key,
                "only_carriers",
            ),
            exclude_carriers: self.id_set(
                names.carriers,
                "carrier",
                &raw.exclude_carriers,
                key,
                "exclude_carriers",
            ),
            min_service: raw
                .min_service
                .as_ref()
                .map(|level| self.service_level(level, format!("{key}.min_service"))),
            split: raw.split.as_ref().map(|split| *split.get_ref()),
            priority: raw
                .lane
                .as_ref()
                .and_then(|lane| match lane.get_ref().as_str() {
                    "priority" => Some(true),
                    "standard" => Some(false),
                    other => {
                        let message =
                            format!("must be \"priority\" or \"standard\", got \"{other}\"");
                        self.report(lane.span(), format!("{key}.lane"), message);
                        None
                    }
                }),
        }
    }

    /// `prefer_group` and `prefer_bonus`, which go together: a defined group and a bonus
    /// above 0.
    fn preference(
        &mut self,
        key: &str,
        raw: &RawRule,
        warehouses: &Interner,
        groups: &[WarehouseGroup],
    ) -> Option<(IdSet, f64)> {
        match (&raw.prefer_group, &raw.prefer_bonus) {
            (None, None) => None,
            (Some(group), None) => {
                let message = "prefer_group needs a prefer_bonus (the score it takes off)";
                self.report(group.span(), format!("{key}.prefer_bonus"), message);
                None
            }
            (None, Some(bonus)) => {
                let message = "prefer_bonus needs a prefer_group";
                self.report(bonus.span(), format!("{key}.prefer_group"), message);
                None
            }
            (Some(group), Some(bonus)) => {
                let bonus = self.non_negative(bonus, format!("{key}.prefer_bonus"), true);
                let Some(found) = groups.iter().find(|known| known.id == *group.get_ref()) else {
                    let known: Vec<&str> = groups.iter().map(|known| known.id.as_str()).collect();
                    let message = format!(
                        "warehouse group '{}' is not defined; defined groups: {}",
                        group.get_ref(),
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join(", ")
                        }
                    );
                    self.report(group.span(), format!("{key}.prefer_group"), message);
                    return None;
                };
                let mut set = IdSet::with_len(warehouses.len());
                for warehouse in &found.warehouses {
                    set.insert(warehouse.index());
                }
                Some((set, bonus))
            }
        }
    }

    /// The list `field` of rule `key`, if given; an empty list is a problem (it would
    /// match nothing, or restrict to nothing: leave the key out instead).
    pub(super) fn non_empty<'l>(
        &mut self,
        list: &'l RuleList,
        key: &str,
        field: &str,
    ) -> Option<&'l [Spanned<String>]> {
        let list = list.as_ref()?;
        if list.get_ref().is_empty() {
            let message = format!("an empty {field} list; leave the key out instead");
            self.report(list.span(), format!("{key}.{field}"), message);
        }
        Some(list.get_ref())
    }

    /// The ids of `kind` named in `list` (field `field` of rule `key`), each defined.
    fn id_set(
        &mut self,
        interner: &Interner,
        kind: &str,
        list: &RuleList,
        key: &str,
        field: &str,
    ) -> Option<IdSet> {
        let list = self.non_empty(list, key, field)?;
        let mut set = IdSet::with_len(interner.len());
        for (position, name) in list.iter().enumerate() {
            let key = format!("{key}.{field}[{position}]");
            let index = self.lookup(interner, kind, name, key);
            set.insert(usize::from(index));
        }
        Some(set)
    }

    /// The warehouses named in `list`, each a warehouse id or a group id (expanded).
    fn warehouse_set(
        &mut self,
        warehouses: &Interner,
        groups: &[WarehouseGroup],
        list: &RuleList,
        key: &str,
        field: &str,
    ) -> Option<IdSet> {
        let list = self.non_empty(list, key, field)?;
        let mut set = IdSet::with_len(warehouses.len());
        for (position, name) in list.iter().enumerate() {
            if let Some(index) = warehouses.get(name.get_ref()) {
                set.insert(index as usize);
            } else if let Some(group) = groups.iter().find(|group| group.id == *name.get_ref()) {
                for warehouse in &group.warehouses {
                    set.insert(warehouse.index());
                }
            } else {
                let mut known: Vec<&str> = warehouses.names().take(40).collect();
                known.extend(groups.iter().map(|group| group.id.as_str()));
                let message = format!(
                    "'{}' is neither a warehouse nor a warehouse group; defined: {}",
                    name.get_ref(),
                    known.join(", ")
                );
                self.report(name.span(), format!("{key}.{field}[{position}]"), message);
            }
        }
        Some(set)
    }

    /// The bits of the tag or category `names` in `interner`, interning new ones; more than
    /// [`MAX_RULE_NAMES`] distinct names over all rules is a problem.
    fn name_bits(
        &mut self,
        interner: &mut Interner,
        names: &[Spanned<String>],
        key: &str,
        field: &str,
    ) -> u64 {
        let mut bits = 0u64;
        for (position, name) in names.iter().enumerate() {
            let index = match interner.insert(name.get_ref()) {
                Ok(index) | Err(index) => index as usize,
            };
            if index >= MAX_RULE_NAMES {
                let message = format!("the rules name more than {MAX_RULE_NAMES} distinct {field}");
                self.report(name.span(), format!("{key}.{field}[{position}]"), message);
                continue;
            }
            bits |= 1 << index;
        }
        bits
    }
}
