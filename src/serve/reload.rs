//! Live config reload: on `POST /v1/admin/reload`, SIGHUP, or a change of the file
//! (debounced). A config that does not validate is refused with its problems and the old
//! one keeps serving; one that changes what only a restart can change is refused naming
//! those fields. Otherwise the new snapshot is swapped in atomically: chunks parsed under
//! the old one are still decided under it (each chunk carries its snapshot), new chunks use
//! the new one.

use super::App;
use super::metrics::names;
use crate::config::{Limits, Network};
use crate::ids::{Interner, ZoneId};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;

/// What a reload did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Swapped in; what changed, by key.
    Applied(Vec<String>),
    /// The file says what is already in force.
    Unchanged,
    /// Not applied; why, and each problem.
    Refused {
        reason: String,
        problems: Vec<String>,
    },
}

impl Outcome {
    pub fn to_json(&self) -> Value {
        match self {
            Outcome::Applied(changed) => json!({"status": "applied", "changed": changed}),
            Outcome::Unchanged => json!({"status": "unchanged", "changed": []}),
            Outcome::Refused { reason, problems } => json!({
                "status": "refused",
                "error": {"code": "config_refused", "message": reason},
                "problems": problems,
            }),
        }
    }
}

/// The admission and connection bounds by key: they are sized once, at start, so a change
/// to any of them needs a restart.
fn sized_at_start(limits: &Limits) -> [(&'static str, u64); 7] {
    [
        ("limits.max_streams", limits.max_streams as u64),
        (
            "limits.max_orders_in_flight",
            limits.max_orders_in_flight as u64,
        ),
        ("limits.priority_reserve", limits.priority_reserve as u64),
        ("limits.header_timeout_ms", limits.header_timeout_ms),
        ("limits.idle_timeout_s", limits.idle_timeout_s),
        ("limits.max_connections", limits.max_connections as u64),
        (
            "limits.receive_buffer_bytes",
            limits.receive_buffer_bytes as u64,
        ),
    ]
}

/// The fields that differ between `old` and `new` that a running router cannot take:
/// the shape of the network its state is laid out by, and the admission bounds.
pub fn restart_only(old: &Network, new: &Network) -> Vec<String> {
    let mut fields = Vec::new();
    let same = |old: &Interner, new: &Interner| old.names().eq(new.names());
    if !same(&old.zone_ids, &new.zone_ids) {
        fields.push("zones (ids or order)".to_owned());
    }
    if !same(&old.region_ids, &new.region_ids) {
        fields.push("regions (ids or order)".to_owned());
    } else {
        let zones = old.regions.iter().zip(&new.regions);
        let zones = zones.map(|(before, after)| (before.zone, after.zone));
        zone_moves(&mut fields, old, new, "regions", &old.region_ids, zones);
    }
    if !same(&old.warehouse_ids, &new.warehouse_ids) {
        fields.push("warehouses (ids)".to_owned());
    } else {
        let zones = old.warehouses.iter().zip(&new.warehouses);
        let zones = zones.map(|(before, after)| (before.zone, after.zone));
        zone_moves(
            &mut fields,
            old,
            new,
            "warehouses",
            &old.warehouse_ids,
            zones,
        );
    }
    if !same(&old.carrier_ids, &new.carrier_ids) {
        fields.push("carriers (ids)".to_owned());
    }
    if old.auth.is_enabled() && !new.auth.is_enabled() {
        // A router started with tokens may be listening beyond loopback, where it must not
        // run without them.
        fields.push("auth (removing every token)".to_owned());
    }
    let bounds = sized_at_start(&old.limits).into_iter();
    for ((key, before), (_, after)) in bounds.zip(sized_at_start(&new.limits)) {
        if before != after {
            fields.push(key.to_owned());
        }
    }
    fields
}

/// Adds `{kind}[{id}].zone` to `fields` for each item (of the same ids, in the same order in
/// both) whose zone, `(before, after)`, is named differently in `new`.
fn zone_moves(
    fields: &mut Vec<String>,
    old: &Network,
    new: &Network,
    kind: &str,
    ids: &Interner,
    zones: impl Iterator<Item = (ZoneId, ZoneId)>,
) {
    for (index, (before, after)) in zones.enumerate() {
        if old.zone_name(before) != new.zone_name(after) {
            fields.push(format!("{kind}[{}].zone", ids.name(index as u32)));
        }
    }
}

/// What differs between two compatible snapshots, by key (coarse: a warehouse or carrier
/// that changed at all is named once).
pub fn changes(old: &Network, new: &Network) -> Vec<String> {
    let mut changed = Vec::new();
    if old.policy != new.policy {
        changed.push("policy".to_owned());
    }
    if old.limits != new.limits {
        changed.push("limits".to_owned());
    }
    if old.auth != new.auth {
        changed.push("auth".to_owned());
    }
    if old.alerts != new.alerts {
        changed.push("alerts".to_owned());
    }
    if old.tier_name(old.default_tier) != new.tier_name(new.default_tier) {
        changed.push("tiers (default)".to_owned());
    }
    changed_items(&mut changed, "zones", &old.zone_ids, &old.zones, &new.zones);
    if !old.tier_ids.names().eq(new.tier_ids.names()) || old.tiers != new.tiers {
        changed.push("tiers".to_owned());
    }
    changed_items(
        &mut changed,
        "regions",
        &old.region_ids,
        &old.regions,
        &new.regions,
    );
    changed_items(
        &mut changed,
        "warehouses",
        &old.warehouse_ids,
        &old.warehouses,
        &new.warehouses,
    );
    changed_items(
        &mut changed,
        "carriers",
        &old.carrier_ids,
        &old.carriers,
        &new.carriers,
    );
    changed
}

/// Adds `{kind}[{id}]` to `changed` for each item that differs between `old` and `new`
/// (paired by position: the ids are the same, in the same order).
fn changed_items<T: PartialEq>(
    changed: &mut Vec<String>,
    kind: &str,
    ids: &Interner,
    old: &[T],
    new: &[T],
) {
    for (index, (before, after)) in old.iter().zip(new).enumerate() {
        if before != after {
            changed.push(format!("{kind}[{}]", ids.name(index as u32)));
        }
    }
}

/// Reads `path` and, if it validates and fits, makes it the snapshot in force.
pub async fn reload(app: &App, path: Option<&Path>) -> Outcome {
    let Some(path) = path else {
        return Outcome::Refused {
            reason: "the router serves the embedded config; there is no file to reload (start it with --config FILE)".to_owned(),
            problems: Vec::new(),
        };
    };
    let _one_at_a_time = app.reload_lock.lock().await;
    // The config alone is checked as check-config checks it; its rules' categories only
    // against the catalogue being served.
    let checked = Network::load(path).and_then(|network| {
        crate::world::check_rule_categories(&network, &app.catalog, Some(path))?;
        Ok(network)
    });
    let new = match checked {
        Ok(network) => network,
        Err(error) => {
            let problems = error
                .problems()
                .iter()
                .map(|problem| problem.located(path))
                .collect();
            return refused(path, format!("{error}"), problems);
        }
    };
    let old = app.network();
    let restart = restart_only(&old, &new);
    if !restart.is_empty() {
        let reason = format!(
            "{}: these change only with a restart: {}",
            path.display(),
            restart.join(", ")
        );
        return refused(path, reason, restart);
    }
    let changed = changes(&old, &new);
    if changed.is_empty() {
        metrics::counter!(names::CONFIG_RELOADS, "outcome" => "unchanged").increment(1);
        return Outcome::Unchanged;
    }
    // The zone actors take the snapshot from each message: the chunks parsed from now on
    // carry the new one, those in flight finish under the one they were parsed with.
    app.set_network(Arc::new(new));
    metrics::counter!(names::CONFIG_RELOADS, "outcome" => "applied").increment(1);
    tracing::info!(
        "config reloaded from {}: {}",
        path.display(),
        changed.join(", ")
    );
    Outcome::Applied(changed)
}

fn refused(path: &Path, reason: String, problems: Vec<String>) -> Outcome {
    metrics::counter!(names::CONFIG_RELOADS, "outcome" => "refused").increment(1);
    tracing::warn!("config reload from {} refused: {reason}", path.display());
    Outcome::Refused { reason, problems }
}
