//! The config file exactly as written: serde structs that mirror DESIGN section 5, every
//! table `deny_unknown_fields` so a misspelt key is an error rather than a silent default,
//! and every value that validation may complain about wrapped in [`Spanned`] so the complaint
//! can name the line it stands on. [`super::Network::from_toml`] turns this into the
//! interned, validated network.

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub policy: Option<RawPolicy>,
    pub limits: Option<RawLimits>,
    pub auth: Option<RawAuth>,
    pub alerts: Option<RawAlerts>,
    #[serde(default)]
    pub tiers: Vec<Spanned<RawTier>>,
    #[serde(default)]
    pub zones: Vec<Spanned<RawZone>>,
    #[serde(default)]
    pub regions: Vec<Spanned<RawRegion>>,
    #[serde(default)]
    pub warehouses: Vec<Spanned<RawWarehouse>>,
    #[serde(default)]
    pub carriers: Vec<Spanned<RawCarrier>>,
    /// Extension (issue 11): named sets of warehouses that rules refer to.
    #[serde(default)]
    pub warehouse_groups: Vec<Spanned<RawWarehouseGroup>>,
    /// Extension (issue 11): routing rules, in precedence order within a specificity.
    #[serde(default)]
    pub rules: Vec<Spanned<RawRule>>,
    /// Extension (issue 11): risk rules, screened in config order.
    #[serde(default)]
    pub risk: Vec<Spanned<RawRisk>>,
}

/// `[policy]`: the routing priorities ops tune. Every key is optional; the defaults are
/// the ones DESIGN section 5 shows.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    pub distance_weight: Option<Spanned<f64>>,
    pub cost_weight: Option<Spanned<f64>>,
    pub split_weight: Option<Spanned<f64>>,
    pub load_weight: Option<Spanned<f64>>,
    pub rank_weight: Option<Spanned<f64>>,
    pub max_shipments: Option<Spanned<i64>>,
    pub backorder: Option<bool>,
    /// Extension: `split` for orders that do not say (`"allow"` or `"forbid"`).
    pub default_split: Option<Spanned<String>>,
    /// Extension: how many warehouses of a zone the split search considers.
    pub split_candidates: Option<Spanned<i64>>,
    /// Extension: orders carrying one of these tags are placed, reserved and `held`.
    pub hold_tags: Option<Vec<String>>,
    /// Extension: orders worth more than this (sum of qty * unit_price) are `held`; 0 = off.
    pub hold_order_value_over: Option<Spanned<f64>>,
    /// Extension: distinct approvers that release a held order (1-5).
    pub review_approvals: Option<Spanned<i64>>,
    /// Extension: seconds a held order waits for review before the timeout action; 0 = never.
    pub review_timeout_s: Option<Spanned<i64>>,
    /// Extension: `"reject"` or `"approve"` a held order whose review timed out.
    pub review_timeout_action: Option<Spanned<String>>,
}

/// `[limits]` (extension): bounds on input.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    pub max_line_bytes: Option<Spanned<i64>>,
    pub max_lines_per_order: Option<Spanned<i64>>,
    pub max_streams: Option<Spanned<i64>>,
    pub max_orders_in_flight: Option<Spanned<i64>>,
    pub priority_reserve: Option<Spanned<i64>>,
    pub header_timeout_ms: Option<Spanned<i64>>,
    pub idle_timeout_s: Option<Spanned<i64>>,
    pub body_idle_timeout_ms: Option<Spanned<i64>>,
    pub write_stall_timeout_ms: Option<Spanned<i64>>,
    pub max_connections: Option<Spanned<i64>>,
    pub receive_buffer_bytes: Option<Spanned<i64>>,
}

/// `[alerts]` (extension): when the service warns.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlerts {
    pub bottleneck_share: Option<Spanned<f64>>,
}

/// `[auth]` (extension): bearer tokens per role.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuth {
    #[serde(default)]
    pub ingest_tokens: Vec<Spanned<String>>,
    #[serde(default)]
    pub ops_tokens: Vec<Spanned<String>>,
    #[serde(default)]
    pub read_tokens: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTier {
    pub id: Spanned<String>,
    pub min_service: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawZone {
    pub id: Spanned<String>,
    #[serde(default)]
    pub fallback: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRegion {
    pub id: Spanned<String>,
    pub name: Option<String>,
    pub lat: Spanned<f64>,
    pub lon: Spanned<f64>,
    pub zone: Spanned<String>,
    /// Extension: millions of people; weights generated demo and load-test orders.
    pub population: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWarehouse {
    pub id: Spanned<String>,
    pub zone: Spanned<String>,
    pub lat: Spanned<f64>,
    pub lon: Spanned<f64>,
    #[serde(default)]
    pub capabilities: Vec<Spanned<String>>,
    pub daily_orders: Option<Spanned<i64>>,
    pub handling_hours: Option<Spanned<f64>>,
    pub rank: Option<Spanned<i64>>,
    pub enabled: Option<bool>,
    /// Extension: a name for people.
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCarrier {
    pub id: Spanned<String>,
    #[serde(default)]
    pub capabilities: Vec<Spanned<String>>,
    pub regions: Vec<Spanned<String>>,
    pub max_weight_kg: Spanned<f64>,
    pub daily_pickups: Option<Spanned<i64>>,
    #[serde(default)]
    pub services: Vec<Spanned<RawService>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawService {
    pub level: Spanned<String>,
    pub base_cost: Spanned<f64>,
    pub per_kg: Spanned<f64>,
    pub per_km: Spanned<f64>,
    pub base_hours: Spanned<f64>,
    pub km_per_hour: Spanned<f64>,
    pub max_km: Option<Spanned<f64>>,
}

/// `[[warehouse_groups]]` (extension): a name for a set of warehouses.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWarehouseGroup {
    pub id: Spanned<String>,
    pub warehouses: Vec<Spanned<String>>,
}

/// Declares a rule table: `id` and the conditions a routing rule and a risk rule both match
/// on (every one optional), then the table's own keys; and `match_fields`, its conditions.
macro_rules! rule_table {
    ($(#[$attr:meta])* struct $name:ident { $($field:ident: $ty:ty,)* }) => {
        $(#[$attr])*
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(super) struct $name {
            pub id: Spanned<String>,
            pub tiers: RuleList,
            pub customers: RuleList,
            pub categories: RuleList,
            pub capabilities: RuleList,
            pub regions: RuleList,
            pub zones: RuleList,
            pub tags: RuleList,
            pub min_order_value: Option<Spanned<f64>>,
            pub max_order_value: Option<Spanned<f64>>,
            pub services: RuleList,
            $(pub $field: $ty,)*
        }

        impl $name {
            pub fn match_fields(&self) -> MatchFields<'_> {
                MatchFields {
                    tiers: &self.tiers,
                    customers: &self.customers,
                    categories: &self.categories,
                    capabilities: &self.capabilities,
                    regions: &self.regions,
                    zones: &self.zones,
                    tags: &self.tags,
                    min_order_value: &self.min_order_value,
                    max_order_value: &self.max_order_value,
                    services: &self.services,
                }
            }
        }
    };
}

rule_table! {
    /// `[[rules]]` (extension): a routing rule. Every action is optional (at least one is
    /// required).
    struct RawRule {
        only_warehouses: RuleList,
        exclude_warehouses: RuleList,
        prefer_group: Option<Spanned<String>>,
        prefer_bonus: Option<Spanned<f64>>,
        only_carriers: RuleList,
        exclude_carriers: RuleList,
        min_service: Option<Spanned<String>>,
        split: Option<Spanned<bool>>,
        lane: Option<Spanned<String>>,
    }
}

rule_table! {
    /// `[[risk]]` (extension, issue 11): a risk rule. It matches as a routing rule does
    /// (plus `skus`), checks one thing (exactly one of the check keys) and holds or rejects
    /// the orders that fail it.
    struct RawRisk {
        skus: RuleList,
        credit_limit: Option<Spanned<bool>>,
        order_value_over: Option<Spanned<f64>>,
        velocity_orders: Option<Spanned<i64>>,
        velocity_minutes: Option<Spanned<i64>>,
        quantity_over_usual: Option<Spanned<f64>>,
        usual_after: Option<Spanned<i64>>,
        distance_km_over: Option<Spanned<f64>>,
        block: Option<Spanned<bool>>,
        promise_within_minutes: Option<Spanned<i64>>,
        action: Spanned<String>,
        approvals: Option<Spanned<i64>>,
    }
}

/// The conditions of a routing rule or a risk rule: what both match on.
pub(super) struct MatchFields<'a> {
    pub tiers: &'a RuleList,
    pub customers: &'a RuleList,
    pub categories: &'a RuleList,
    pub capabilities: &'a RuleList,
    pub regions: &'a RuleList,
    pub zones: &'a RuleList,
    pub tags: &'a RuleList,
    pub min_order_value: &'a Option<Spanned<f64>>,
    pub max_order_value: &'a Option<Spanned<f64>>,
    pub services: &'a RuleList,
}

/// A list of names in a rule: located as a whole (an empty list is a problem) and by item.
pub(super) type RuleList = Option<Spanned<Vec<Spanned<String>>>>;
