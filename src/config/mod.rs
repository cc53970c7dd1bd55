//! The network and policy config (DESIGN section 5): load, validate, intern.
//!
//! [`Network::load`] reads the TOML file, checks every rule below and reports *all* the
//! problems it finds at once, each with the file, line, column and key it is about. The
//! result is an immutable snapshot: the service swaps whole snapshots on reload and each
//! decision is made under exactly one.
//!
//! What is checked: unknown keys anywhere; ids empty or defined twice; zones, regions,
//! fallbacks and carrier regions that point at nothing; a zone falling back to itself;
//! capabilities and service levels that do not exist; negative or non-finite weights, costs
//! and hours; coordinates off the globe; a carrier with no service or the same level twice;
//! bounds on `max_shipments`, `split_candidates` and the `[limits]`; an empty network; a zone
//! that has regions but neither a warehouse nor a fallback (its orders could never ship).
//!
//! ## The files
//!
//! This file loads: [`Network::load`], [`Network::from_toml`] and the located errors.
//! `network.rs` holds the snapshot's types ([`Network`], [`Policy`], [`Limits`], ...), plain
//! data the rest of the crate reads. The file is read in three passes: `schema.rs` finds a
//! syntax error or every unknown key, `raw.rs` is the file as serde reads it, and the
//! checker builds the network from that: `check.rs` (the checker and its checks of single
//! values), `settings.rs` (`[policy]`, `[limits]`, `[auth]`, `[alerts]`) and `build.rs`
//! (tiers, zones, regions, warehouses, carriers, and the tables derived from them).

mod build;
mod check;
mod network;
mod raw;
mod risk;
mod rules;
mod schema;
mod settings;

pub use network::{
    Alerts, Auth, Carrier, CarrierService, Limits, Network, Policy, Region, Role, Tier, Warehouse,
    Zone,
};
pub use risk::{MAX_VELOCITY_ORDERS, RiskCheck, RiskRule, RiskRules};
pub use rules::{
    CategoryReference, IdSet, MAX_RULE_NAMES, RoutingRules, Rule, RuleActions, RuleMatch,
    Specificity, WarehouseGroup,
};

use check::Checker;
use raw::RawConfig;
use std::path::{Path, PathBuf};

/// Largest weight, cost, rate or distance accepted: far above any real value, low enough
/// that sums over an order stay exact in f64.
pub const MAX_NUMBER: f64 = 1e9;
/// Largest handling or transit time accepted, in hours (a year).
pub const MAX_HOURS: f64 = 8760.0;

/// A problem found in a config file, located to the byte.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigProblem {
    pub line: usize,
    pub column: usize,
    /// The key the problem is about, as a TOML path (`warehouses[3].zone`).
    pub key: String,
    pub message: String,
}

impl ConfigProblem {
    /// `file:line:column: key: message`.
    pub fn located(&self, path: &Path) -> String {
        format!(
            "{}:{}:{}: {}: {}",
            path.display(),
            self.line,
            self.column,
            self.key,
            self.message
        )
    }
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", render_problems(path, problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<ConfigProblem>,
    },
}

impl ConfigError {
    /// The problems found, if the file could be read.
    pub fn problems(&self) -> &[ConfigProblem] {
        match self {
            ConfigError::Read { .. } => &[],
            ConfigError::Invalid { problems, .. } => problems,
        }
    }
}

fn render_problems(path: &Path, problems: &[ConfigProblem]) -> String {
    let lines: Vec<String> = problems
        .iter()
        .map(|problem| problem.located(path))
        .collect();
    lines.join("\n")
}

impl Network {
    /// Reads and validates the config at `path`.
    pub fn load(path: &Path) -> Result<Network, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Network::from_toml(&text).map_err(|problems| ConfigError::Invalid {
            path: path.to_owned(),
            problems,
        })
    }

    /// Validates config text; on failure, every problem found.
    pub fn from_toml(text: &str) -> Result<Network, Vec<ConfigProblem>> {
        // First a syntax error, or every unknown key at once: serde stops at the first, and a
        // file with three misspelt keys should not take three runs to fix.
        let early = schema::syntax_and_unknown_keys(text);
        if !early.is_empty() {
            return Err(early);
        }
        let raw: RawConfig = toml::from_str(text).map_err(|error| {
            let (line, column) = error
                .span()
                .map(|span| line_column(text, span.start))
                .unwrap_or((1, 1));
            vec![ConfigProblem {
                line,
                column,
                key: "toml".into(),
                message: error.message().trim().to_owned(),
            }]
        })?;
        let mut checker = Checker {
            text,
            problems: Vec::new(),
        };
        let network = checker.build(raw);
        if checker.problems.is_empty() {
            Ok(network)
        } else {
            checker
                .problems
                .sort_by_key(|problem| (problem.line, problem.column));
            Err(checker.problems)
        }
    }
}

/// 1-based line and column of byte `offset` in `text`.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |newline| newline + 1) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::haversine_km;
    use crate::ids::{CarrierId, RegionId, WarehouseId, ZoneId};

    const SMALL: &str = r#"
[policy]
cost_weight = 2

[[zones]]
id = "east"
fallback = ["west"]

[[zones]]
id = "west"

[[regions]]
id = "ZJ"
lat = 29.2
lon = 120.2
zone = "east"

[[warehouses]]
id = "B"
zone = "east"
lat = 30.0
lon = 120.0

[[warehouses]]
id = "A"
zone = "west"
lat = 30.0
lon = 100.0
capabilities = ["bulky"]

[[carriers]]
id = "swift"
regions = ["*"]
max_weight_kg = 30

[[carriers.services]]
level = "express"
base_cost = 12.0
per_kg = 3.0
per_km = 0.002
base_hours = 8.0
km_per_hour = 70.0
"#;

    #[test]
    fn loads_a_small_network_and_sorts_warehouses_by_id() {
        let network = Network::from_toml(SMALL).unwrap();
        assert_eq!(network.policy.cost_weight, 2.0);
        assert_eq!(network.policy.split_weight, 40.0);
        assert_eq!(network.warehouse_name(WarehouseId(0)), "A");
        assert_eq!(network.warehouses[0].zone, ZoneId(1));
        assert_eq!(network.zones[0].warehouses, [WarehouseId(1)]);
        assert_eq!(
            network.zone_order(ZoneId(0)).collect::<Vec<_>>(),
            [ZoneId(0), ZoneId(1)]
        );
        assert_eq!(network.tier_name(network.default_tier), "standard");
        assert_eq!(network.carriers_by_region[0], [CarrierId(0)]);
        let direct = haversine_km(30.0, 120.0, 29.2, 120.2);
        assert_eq!(network.centroid_km(WarehouseId(1), RegionId(0)), direct);
    }

    fn problems(text: &str) -> Vec<ConfigProblem> {
        Network::from_toml(text).unwrap_err()
    }

    #[test]
    fn unknown_key_is_located() {
        let text = SMALL.replace("cost_weight = 2", "cost_weight = 2\ncost_wieght = 3");
        let found = problems(&text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].line, 4);
        assert!(
            found[0].message.contains("cost_wieght"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn dangling_references_and_bad_values_are_all_reported() {
        let text = SMALL
            .replace("fallback = [\"west\"]", "fallback = [\"wst\", \"east\"]")
            .replace(
                "zone = \"west\"\nlat = 30.0",
                "zone = \"nowhere\"\nlat = 95.0",
            )
            .replace("cost_weight = 2", "cost_weight = -1")
            .replace("level = \"express\"", "level = \"overnight\"")
            .replace("[\"bulky\"]", "[\"fragile\"]");
        let found = problems(&text);
        let keys: Vec<&str> = found.iter().map(|problem| problem.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "policy.cost_weight",
                "zones[0].fallback[0]",
                "zones[0].fallback[1]",
                "warehouses[1].zone",
                "warehouses[1].lat",
                "warehouses[1].capabilities",
                "carriers[0].services[0].level",
            ],
            "{found:#?}"
        );
        assert!(
            found[1]
                .message
                .contains("'wst' is not defined; defined zones: east, west")
        );
        assert!(found[2].message.contains("cannot fall back to itself"));
        assert!(
            found[6]
                .message
                .contains("slowest first: economy, standard, express, same_day")
        );
        // Every problem names a real line of the text.
        for problem in &found {
            assert!(
                problem.line >= 2 && problem.line <= text.lines().count(),
                "{problem:?}"
            );
        }
    }

    #[test]
    fn empty_network_and_duplicate_ids() {
        let found = problems("[policy]\nmax_shipments = 9\n");
        assert!(
            found
                .iter()
                .any(|problem| problem.key == "policy.max_shipments")
        );
        assert!(
            found
                .iter()
                .any(|problem| problem.message.contains("the network is empty"))
        );
        let twice = format!("{SMALL}\n[[zones]]\nid = \"east\"\n");
        let found = problems(&twice);
        assert_eq!(found.len(), 1);
        assert!(
            found[0].message.contains("zone 'east' is defined twice"),
            "{found:?}"
        );
    }

    #[test]
    fn every_unknown_key_is_reported_at_once() {
        let text = SMALL
            .replace("cost_weight = 2", "cost_wieght = 2")
            .replace("per_km = 0.002", "per_kilometre = 0.002")
            .replace("capabilities = [\"bulky\"]", "capabilites = [\"bulky\"]");
        let found = problems(&format!("{text}\n[extras]\nx = 1\n"));
        let keys: Vec<&str> = found.iter().map(|problem| problem.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "policy.cost_wieght",
                "warehouses[1].capabilites",
                "carriers[0].services[0].per_kilometre",
                "extras"
            ],
            "{found:#?}"
        );
        assert!(
            found[0].message.contains("unknown key 'cost_wieght'"),
            "{}",
            found[0].message
        );
        assert!(
            found[0].message.contains("cost_weight"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn absurd_numbers_are_refused() {
        let text = SMALL
            .replace("base_hours = 8.0", "base_hours = 1e300")
            .replace("base_cost = 12.0", "base_cost = 1e12");
        let found = problems(&text);
        let keys: Vec<&str> = found.iter().map(|problem| problem.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "carriers[0].services[0].base_cost",
                "carriers[0].services[0].base_hours"
            ],
            "{found:#?}"
        );
        assert!(
            found[1].message.contains("at most 8760"),
            "{}",
            found[1].message
        );
    }

    #[test]
    fn syntax_errors_are_located() {
        let found = problems("[policy\n");
        assert_eq!((found[0].line, found[0].key.as_str()), (1, "toml"));
    }

    #[test]
    fn error_display_names_file_line_and_key() {
        let error = ConfigError::Invalid {
            path: PathBuf::from("config/x.toml"),
            problems: problems(&SMALL.replace("cost_weight = 2", "cost_weight = -1")),
        };
        assert_eq!(
            error.to_string(),
            "config/x.toml:3:15: policy.cost_weight: must be a finite number >= 0, got -1"
        );
    }
}
