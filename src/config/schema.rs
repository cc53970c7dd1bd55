//! The config's shape, checked before serde sees it: the first TOML syntax error, or every
//! key the contract does not know, each located, all in one pass. (serde's
//! `deny_unknown_fields` stays on the structs as the backstop; it reports only the first.)

use super::{ConfigProblem, line_column};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Keys each table may hold. A value of `Some(keys)` for an array-of-tables or table key
/// says what its entries may hold.
struct Shape {
    keys: &'static [(&'static str, Option<&'static Shape>)],
}

const POLICY: Shape = Shape {
    keys: &[
        ("distance_weight", None),
        ("cost_weight", None),
        ("split_weight", None),
        ("load_weight", None),
        ("rank_weight", None),
        ("max_shipments", None),
        ("backorder", None),
        ("default_split", None),
        ("split_candidates", None),
        ("hold_tags", None),
        ("hold_order_value_over", None),
        ("review_approvals", None),
        ("review_timeout_s", None),
        ("review_timeout_action", None),
    ],
};
const LIMITS: Shape = Shape {
    keys: &[
        ("max_line_bytes", None),
        ("max_lines_per_order", None),
        ("max_streams", None),
        ("max_orders_in_flight", None),
        ("priority_reserve", None),
        ("header_timeout_ms", None),
        ("idle_timeout_s", None),
        ("body_idle_timeout_ms", None),
        ("write_stall_timeout_ms", None),
        ("max_connections", None),
        ("receive_buffer_bytes", None),
    ],
};
const TIER: Shape = Shape {
    keys: &[("id", None), ("min_service", None)],
};
const ZONE: Shape = Shape {
    keys: &[("id", None), ("fallback", None)],
};
const REGION: Shape = Shape {
    keys: &[
        ("id", None),
        ("name", None),
        ("lat", None),
        ("lon", None),
        ("zone", None),
        ("population", None),
    ],
};
const WAREHOUSE: Shape = Shape {
    keys: &[
        ("id", None),
        ("zone", None),
        ("lat", None),
        ("lon", None),
        ("capabilities", None),
        ("daily_orders", None),
        ("handling_hours", None),
        ("rank", None),
        ("enabled", None),
        ("name", None),
    ],
};
const SERVICE: Shape = Shape {
    keys: &[
        ("level", None),
        ("base_cost", None),
        ("per_kg", None),
        ("per_km", None),
        ("base_hours", None),
        ("km_per_hour", None),
        ("max_km", None),
    ],
};
const CARRIER: Shape = Shape {
    keys: &[
        ("id", None),
        ("capabilities", None),
        ("regions", None),
        ("max_weight_kg", None),
        ("daily_pickups", None),
        ("services", Some(&SERVICE)),
    ],
};
const AUTH: Shape = Shape {
    keys: &[
        ("ingest_tokens", None),
        ("ops_tokens", None),
        ("read_tokens", None),
    ],
};
const ALERTS: Shape = Shape {
    keys: &[("bottleneck_share", None)],
};
const WAREHOUSE_GROUP: Shape = Shape {
    keys: &[("id", None), ("warehouses", None)],
};
/// The keys of a rule table: `id` and the conditions routing and risk rules share, then
/// the table's own.
macro_rules! rule_shape {
    ($($key:literal),* $(,)?) => {
        Shape {
            keys: &[
                ("id", None),
                ("tiers", None),
                ("customers", None),
                ("categories", None),
                ("capabilities", None),
                ("regions", None),
                ("zones", None),
                ("tags", None),
                ("min_order_value", None),
                ("max_order_value", None),
                ("services", None),
                $(($key, None),)*
            ],
        }
    };
}
const RULE: Shape = rule_shape!(
    "only_warehouses",
    "exclude_warehouses",
    "prefer_group",
    "prefer_bonus",
    "only_carriers",
    "exclude_carriers",
    "min_service",
    "split",
    "lane",
);
const RISK: Shape = rule_shape!(
    "skus",
    "credit_limit",
    "order_value_over",
    "velocity_orders",
    "velocity_minutes",
    "quantity_over_usual",
    "usual_after",
    "distance_km_over",
    "block",
    "promise_within_minutes",
    "action",
    "approvals",
);
const ROOT: Shape = Shape {
    keys: &[
        ("alerts", Some(&ALERTS)),
        ("policy", Some(&POLICY)),
        ("limits", Some(&LIMITS)),
        ("auth", Some(&AUTH)),
        ("tiers", Some(&TIER)),
        ("zones", Some(&ZONE)),
        ("regions", Some(&REGION)),
        ("warehouses", Some(&WAREHOUSE)),
        ("carriers", Some(&CARRIER)),
        ("warehouse_groups", Some(&WAREHOUSE_GROUP)),
        ("rules", Some(&RULE)),
        ("risk", Some(&RISK)),
    ],
};

/// The first syntax error, or (if there is none) every unknown key, of `text`.
pub(super) fn syntax_and_unknown_keys(text: &str) -> Vec<ConfigProblem> {
    let (document, errors) = DeTable::parse_recoverable(text);
    // Only the first syntax error: the parser's recovery after it can see problems that are
    // not there (an unclosed `[policy` makes later keys look duplicated).
    let mut problems: Vec<ConfigProblem> = errors
        .iter()
        .take(1)
        .map(|error| {
            let (line, column) = error
                .span()
                .map_or((1, 1), |span| line_column(text, span.start));
            ConfigProblem {
                line,
                column,
                key: "toml".into(),
                message: error.message().trim().to_owned(),
            }
        })
        .collect();
    if problems.is_empty() {
        check_table(text, document.get_ref(), &ROOT, "", &mut problems);
        problems.sort_by_key(|problem| (problem.line, problem.column));
    }
    problems
}

fn check_table(
    text: &str,
    table: &DeTable<'_>,
    shape: &Shape,
    path: &str,
    problems: &mut Vec<ConfigProblem>,
) {
    for (key, value) in table.iter() {
        let name = key.get_ref().as_ref();
        let key_path = if path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        };
        match shape.keys.iter().find(|(known, _)| *known == name) {
            None => {
                let (line, column) = line_column(text, key.span().start);
                let known: Vec<&str> = shape.keys.iter().map(|(known, _)| *known).collect();
                problems.push(ConfigProblem {
                    line,
                    column,
                    key: key_path,
                    message: format!("unknown key '{name}'; known here: {}", known.join(", ")),
                });
            }
            Some((_, Some(inner))) => check_nested(text, value, inner, &key_path, problems),
            Some((_, None)) => {}
        }
    }
}

/// A table, or an array of tables, whose entries follow `shape`. Values of other types are
/// left to serde, which names the type it wanted.
fn check_nested(
    text: &str,
    value: &Spanned<DeValue<'_>>,
    shape: &Shape,
    path: &str,
    problems: &mut Vec<ConfigProblem>,
) {
    match value.get_ref() {
        DeValue::Table(table) => check_table(text, table, shape, path, problems),
        DeValue::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                if let DeValue::Table(table) = item.get_ref() {
                    check_table(text, table, shape, &format!("{path}[{index}]"), problems);
                }
            }
        }
        _ => {}
    }
}
