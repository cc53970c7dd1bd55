//! Scenarios: what load to offer, when, and what the orders look like (`loadtest/scenarios/`).
//!
//! A scenario is TOML: the transport (`[load]`), the rate over time (`[[phases]]`, played one
//! after the other), the order mix (`[mix]`) and, optionally, what a warehouse system does
//! with the placed orders (`[ship]`: none are shipped without it). Every key is documented in
//! `loadtest/README.md`; unknown keys are refused so a typo never silently changes a test.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("scenario {path}: {message}")]
    Parse { path: String, message: String },
    #[error("scenario {path}: {field}: {why}")]
    Invalid {
        path: String,
        field: String,
        why: String,
    },
}

/// How orders reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// Long-lived `POST /v1/orders` NDJSON streams, one per connection, answers read while
    /// the body is still being sent.
    Streams,
    /// One JSON order per `POST /v1/orders` request over keep-alive connections, one
    /// request at a time per connection.
    Requests,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Load {
    /// `streams` or `requests`.
    pub transport: Transport,
    /// Connections to the server (streams: one stream each).
    pub connections: usize,
    /// An order not handed to the server within this many milliseconds of its intended send
    /// time (the server pushing back by not reading, or every connection busy) is shed: never
    /// sent, counted as throttled. Bounds the tool's own queue, as k6 drops iterations.
    #[serde(default = "default_max_queue_ms")]
    pub max_queue_ms: u64,
    /// Streams: at most this many orders in one body write (an HTTP chunk).
    #[serde(default = "default_chunk_orders")]
    pub chunk_orders: usize,
    /// Requests: a 429 answer is retried after its `Retry-After`, keeping the order's
    /// intended time (so the wait shows in its latency), up to this many times.
    #[serde(default)]
    pub retries_after_429: u32,
    /// The kernel's send buffer of each connection (`SO_SNDBUF`), in bytes; 0 leaves it to
    /// the kernel's autotuning (up to 4 MiB on Linux). An order in the kernel's buffer counts
    /// as sent, so with autotuned buffers a server that stops reading holds seconds of orders
    /// there, out of `max_queue_ms`'s reach: a storefront that bounds its queue bounds this.
    #[serde(default)]
    pub send_buffer_bytes: u32,
    /// After the last phase: how long to wait for the answers of orders already sent before
    /// counting them lost.
    #[serde(default = "default_drain_timeout_s")]
    pub drain_timeout_s: u64,
}

fn default_max_queue_ms() -> u64 {
    2_000
}
fn default_chunk_orders() -> usize {
    1_024
}
fn default_drain_timeout_s() -> u64 {
    30
}

/// A stretch of time at one rate, a ramp, or a decay.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    pub name: String,
    pub duration_s: f64,
    /// Orders per second at the phase's start.
    pub rate: f64,
    /// A linear ramp from `rate` to this by the phase's end.
    #[serde(default)]
    pub ramp_to: Option<f64>,
    /// An exponential decay from `rate` towards this floor, halving the distance every
    /// `half_life_s`.
    #[serde(default)]
    pub decay_to: Option<f64>,
    #[serde(default)]
    pub half_life_s: Option<f64>,
}

/// How the SKUs of order lines are drawn.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkuMix {
    /// `uniform` or `zipf`.
    #[serde(default = "default_sku_distribution")]
    pub distribution: SkuDistribution,
    /// Zipf exponent `s` (rank k drawn with weight 1/k^s).
    #[serde(default = "default_zipf_exponent")]
    pub exponent: f64,
    /// Share of all lines on the single hottest SKU (0 = none singled out): the flash-sale
    /// item. The rest follow `distribution`.
    #[serde(default)]
    pub hot_share: f64,
    /// Only SKUs without special handling (no capabilities): every warehouse can ship them.
    #[serde(default)]
    pub plain_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkuDistribution {
    Uniform,
    Zipf,
}

fn default_sku_distribution() -> SkuDistribution {
    SkuDistribution::Uniform
}
fn default_zipf_exponent() -> f64 {
    1.0
}

impl Default for SkuMix {
    fn default() -> Self {
        SkuMix {
            distribution: SkuDistribution::Uniform,
            exponent: 1.0,
            hot_share: 0.0,
            plain_only: false,
        }
    }
}

/// What the orders look like. Weights are relative (they need not sum to 1).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mix {
    /// Customer tier id -> weight. Tiers the server does not have are left out (said in the
    /// report's notes); a mix with none of the server's tiers is refused at start.
    #[serde(default = "default_tiers")]
    pub tiers: BTreeMap<String, f64>,
    /// Service level -> weight.
    #[serde(default = "default_services")]
    pub services: BTreeMap<String, f64>,
    /// Lines per order -> weight (keys are numbers in quotes: `"1" = 0.6`).
    #[serde(default = "default_basket")]
    pub basket_lines: BTreeMap<String, f64>,
    /// Quantity per line -> weight.
    #[serde(default = "default_quantity")]
    pub quantity: BTreeMap<String, f64>,
    /// `population` (regions weighted by the population the server reports), `uniform`, or
    /// a table region id -> weight.
    #[serde(default)]
    pub regions: RegionMix,
    /// Share of orders carrying a `promise_by`.
    #[serde(default)]
    pub promise_share: f64,
    /// `promise_by` = send time + a uniform draw from this range of hours.
    #[serde(default = "default_promise_hours")]
    pub promise_hours: [f64; 2],
    #[serde(default)]
    pub skus: SkuMix,
    /// Share of lines that resend an order already answered (same id, same content): each
    /// must come back as its original decision with `"duplicate": true`.
    #[serde(default)]
    pub retry_share: f64,
    /// Seconds `[low, high]` since the originals a resend repeats were answered: without it
    /// a resend repeats one of the last few thousand answered (a client's retry); with it,
    /// one answered that long ago (a storefront replaying an old order), whose record the
    /// server may have moved out of memory. Keep `high` inside the server's retention
    /// window: an id past it is a new order again.
    #[serde(default)]
    pub retry_age_s: Option<[f64; 2]>,
    /// Share of lines that are malformed (bad JSON, unknown SKU, bad quantity, missing field,
    /// unknown region): each must come back `invalid` with its line number and code.
    #[serde(default)]
    pub malformed_share: f64,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(untagged)]
pub enum RegionMix {
    #[default]
    #[serde(skip)]
    Population,
    Named(String),
    Weights(BTreeMap<String, f64>),
}

fn default_tiers() -> BTreeMap<String, f64> {
    BTreeMap::from([("standard".to_owned(), 1.0)])
}
fn default_services() -> BTreeMap<String, f64> {
    BTreeMap::from([("standard".to_owned(), 1.0)])
}
fn default_basket() -> BTreeMap<String, f64> {
    BTreeMap::from([("1".to_owned(), 1.0)])
}
fn default_quantity() -> BTreeMap<String, f64> {
    BTreeMap::from([("1".to_owned(), 1.0)])
}
fn default_promise_hours() -> [f64; 2] {
    [24.0, 72.0]
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            tiers: default_tiers(),
            services: default_services(),
            basket_lines: default_basket(),
            quantity: default_quantity(),
            regions: RegionMix::Population,
            promise_share: 0.0,
            promise_hours: default_promise_hours(),
            skus: SkuMix::default(),
            retry_share: 0.0,
            retry_age_s: None,
            malformed_share: 0.0,
        }
    }
}

/// How "back to baseline" is judged after the busiest phase.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recovery {
    /// The phase whose p99 is the baseline (default: the first).
    #[serde(default)]
    pub baseline_phase: Option<String>,
    /// The threshold the p99 must come back under: `factor` times the baseline p99 or the
    /// baseline plus `slack_ms`, whichever is larger.
    #[serde(default = "default_recovery_factor")]
    pub factor: f64,
    #[serde(default = "default_recovery_slack_ms")]
    pub slack_ms: f64,
    /// Back means the p99 of the orders intended in this many consecutive seconds is under
    /// the threshold: a single quiet second inside a backlog's drain is not a recovery, and
    /// a lone slow second later on (a snapshot, the machine's noise) is reported as an
    /// excursion, not as never having recovered.
    #[serde(default = "default_recovery_hold_s")]
    pub hold_s: u32,
    /// The run fails when recovery takes longer than this (unset: reported only).
    #[serde(default)]
    pub within_s: Option<f64>,
}

fn default_recovery_factor() -> f64 {
    1.5
}
fn default_recovery_slack_ms() -> f64 {
    5.0
}
fn default_recovery_hold_s() -> u32 {
    5
}

/// Shipping (`[ship]`): a warehouse system marking placed orders shipped
/// (`POST /v1/orders/{id}/shipped`) some time after their answer, as on a sale day, so that
/// orders close and the server can let their records go. See [`crate::ship`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ship {
    /// Share of the orders decided with one of `statuses` that are shipped (0..=1); the
    /// rest stay open. Which ones is drawn from a hash of the id and the seed, so the same
    /// orders are shipped whatever the timing.
    pub share: f64,
    /// The decisions shipped: `routed`, `backordered` (its placed units ship now, as
    /// DESIGN.md §4 says; the router closes the order). `held` orders wait for a review
    /// (the router refuses to ship them until approved) and `rejected` ones hold nothing:
    /// neither is accepted here.
    #[serde(default = "default_ship_statuses")]
    pub statuses: Vec<String>,
    /// Seconds from the answer to the shipment: one number, or `[low, high]` for a uniform
    /// draw (from the id's hash, as `share`).
    pub delay_s: ShipDelay,
    /// Keep-alive connections that ship, one request at a time each, apart from the
    /// order connections.
    #[serde(default = "default_ship_connections")]
    pub connections: usize,
    /// Shipments waiting for their due time, at most: an order placed while this many wait
    /// is not queued, and counted (`queue_full`). Bounds the tool's memory (about 100 bytes
    /// a shipment); the queue holds about `rate x delay` when shipping keeps up.
    #[serde(default = "default_ship_max_queued")]
    pub max_queued: usize,
    /// Shipments in one request, at most: 1 (the default) sends each as `POST
    /// /v1/orders/{id}/shipped`; more sends the shipments due together, up to this many, as
    /// one `POST /v1/shipments` (1..=10,000, the server's limit), as a warehouse system
    /// confirms a wave.
    #[serde(default = "default_ship_batch")]
    pub batch: usize,
}

/// The delay of a shipment: fixed, or a uniform range.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(
    untagged,
    expecting = "seconds: a number, or [low, high] for a uniform draw"
)]
pub enum ShipDelay {
    Fixed(f64),
    Range([f64; 2]),
}

impl ShipDelay {
    /// `[low, high]` in seconds (equal for a fixed delay).
    pub fn bounds(self) -> [f64; 2] {
        match self {
            ShipDelay::Fixed(seconds) => [seconds, seconds],
            ShipDelay::Range(range) => range,
        }
    }
}

/// The statuses a warehouse ships, and the ones it cannot (with why).
pub const SHIPPABLE: [&str; 2] = ["routed", "backordered"];

fn default_ship_statuses() -> Vec<String> {
    SHIPPABLE.map(str::to_owned).to_vec()
}
fn default_ship_connections() -> usize {
    8
}
fn default_ship_max_queued() -> usize {
    2_000_000
}
fn default_ship_batch() -> usize {
    1
}

impl Default for Recovery {
    fn default() -> Self {
        Recovery {
            baseline_phase: None,
            factor: default_recovery_factor(),
            slack_ms: default_recovery_slack_ms(),
            hold_s: default_recovery_hold_s(),
            within_s: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Seed of the order generator: the same seed and server give the same orders (ids
    /// aside, which carry a per-run prefix unless `--run-id` fixes it).
    #[serde(default = "default_seed")]
    pub seed: u64,
    pub load: Load,
    pub phases: Vec<Phase>,
    #[serde(default)]
    pub mix: Mix,
    #[serde(default)]
    pub recovery: Recovery,
    /// Absent: no order is shipped (every placed order stays open in the server).
    #[serde(default)]
    pub ship: Option<Ship>,
}

fn default_seed() -> u64 {
    11
}

impl Phase {
    /// The rate (orders per second) `t` seconds into the phase.
    pub fn rate_at(&self, t: f64) -> f64 {
        if let Some(end) = self.ramp_to {
            return self.rate + (end - self.rate) * (t / self.duration_s).clamp(0.0, 1.0);
        }
        if let Some(floor) = self.decay_to {
            let tau = self.half_life_s.unwrap_or(1.0) / std::f64::consts::LN_2;
            return floor + (self.rate - floor) * (-t / tau).exp();
        }
        self.rate
    }

    /// Orders due in the first `t` seconds of the phase: the integral of the rate.
    pub fn orders_by(&self, t: f64) -> f64 {
        let t = t.clamp(0.0, self.duration_s);
        if let Some(end) = self.ramp_to {
            return self.rate * t + (end - self.rate) * t * t / (2.0 * self.duration_s);
        }
        if let Some(floor) = self.decay_to {
            let tau = self.half_life_s.unwrap_or(1.0) / std::f64::consts::LN_2;
            return floor * t + (self.rate - floor) * tau * (1.0 - (-t / tau).exp());
        }
        self.rate * t
    }

    /// The highest rate of the phase.
    pub fn peak_rate(&self) -> f64 {
        self.rate
            .max(self.ramp_to.unwrap_or(0.0))
            .max(self.decay_to.unwrap_or(0.0))
    }
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: display.clone(),
            source,
        })?;
        Scenario::parse(&text, &display)
    }

    /// Parses and checks a scenario; `path` names it in errors.
    pub fn parse(text: &str, path: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = toml::from_str(text).map_err(|error| ScenarioError::Parse {
            path: path.to_owned(),
            message: error.to_string(),
        })?;
        scenario.check(path)?;
        Ok(scenario)
    }

    /// Total seconds of load.
    pub fn duration_s(&self) -> f64 {
        self.phases.iter().map(|phase| phase.duration_s).sum()
    }

    /// Checks what the types cannot: ranges, shares, keys, and names that must match.
    fn check(&self, path: &str) -> Result<(), ScenarioError> {
        self.check_load()
            .and_then(|()| self.phases.iter().enumerate().try_for_each(check_phase))
            .and_then(|()| check_mix(&self.mix))
            .and_then(|()| self.check_recovery())
            .and_then(|()| self.ship.as_ref().map_or(Ok(()), check_ship))
            .map_err(|invalid| ScenarioError::Invalid {
                path: path.to_owned(),
                field: invalid.field,
                why: invalid.why,
            })
    }

    fn check_load(&self) -> Result<(), Invalid> {
        if self.load.connections == 0 || self.load.connections > 10_000 {
            return Err(Invalid::new("load.connections", "must be 1..=10000"));
        }
        if self.load.chunk_orders == 0 {
            return Err(Invalid::new("load.chunk_orders", "must be at least 1"));
        }
        if self.phases.is_empty() || self.phases.len() > 255 {
            return Err(Invalid::new("phases", "1 to 255 [[phases]] are needed"));
        }
        Ok(())
    }

    fn check_recovery(&self) -> Result<(), Invalid> {
        if self.recovery.hold_s == 0 {
            return Err(Invalid::new("recovery.hold_s", "must be at least 1"));
        }
        if self.recovery.factor.is_nan() || self.recovery.factor < 1.0 {
            return Err(Invalid::new("recovery.factor", "must be at least 1"));
        }
        if let Some(phase) = &self.recovery.baseline_phase
            && !self.phases.iter().any(|candidate| &candidate.name == phase)
        {
            return Err(Invalid::new(
                "recovery.baseline_phase",
                "names no phase of this scenario",
            ));
        }
        Ok(())
    }
}

/// A field of a scenario that is not as it must be, and why.
struct Invalid {
    field: String,
    why: String,
}

impl Invalid {
    fn new(field: impl Into<String>, why: impl Into<String>) -> Invalid {
        Invalid {
            field: field.into(),
            why: why.into(),
        }
    }
}

fn check_phase((index, phase): (usize, &Phase)) -> Result<(), Invalid> {
    let invalid =
        |key: &str, why: &str| Invalid::new(format!("phases[{index}] ({}).{key}", phase.name), why);
    if !(phase.duration_s > 0.0 && phase.duration_s <= 86_400.0) {
        return Err(invalid(
            "duration_s",
            "a positive number of seconds, at most a day",
        ));
    }
    let rates = [Some(phase.rate), phase.ramp_to, phase.decay_to];
    if rates
        .iter()
        .flatten()
        .any(|rate| !(*rate >= 0.0 && *rate <= 10_000_000.0))
    {
        return Err(invalid(
            "rate",
            "rates are orders per second, 0 to 10,000,000",
        ));
    }
    if phase.ramp_to.is_some() && phase.decay_to.is_some() {
        return Err(invalid(
            "ramp_to",
            "a phase ramps (ramp_to) or decays (decay_to), not both",
        ));
    }
    if phase.decay_to.is_some() != phase.half_life_s.is_some() {
        return Err(invalid(
            "half_life_s",
            "decay_to and half_life_s go together",
        ));
    }
    if phase
        .half_life_s
        .is_some_and(|half| half.is_nan() || half <= 0.0)
    {
        return Err(invalid("half_life_s", "must be positive"));
    }
    Ok(())
}

fn check_mix(mix: &Mix) -> Result<(), Invalid> {
    for (name, table) in [
        ("mix.tiers", &mix.tiers),
        ("mix.services", &mix.services),
        ("mix.basket_lines", &mix.basket_lines),
        ("mix.quantity", &mix.quantity),
    ] {
        check_weights(table).map_err(|why| Invalid::new(name, why))?;
    }
    for (name, table) in [
        ("mix.basket_lines", &mix.basket_lines),
        ("mix.quantity", &mix.quantity),
    ] {
        if let Some(key) = table
            .keys()
            .find(|key| key.parse::<u32>().map_or(true, |n| n == 0))
        {
            return Err(Invalid::new(
                format!("{name}.{key}"),
                "keys are whole numbers >= 1 (in quotes)",
            ));
        }
    }
    for service in mix.services.keys() {
        if !["economy", "standard", "express", "same_day"].contains(&service.as_str()) {
            return Err(Invalid::new(
                format!("mix.services.{service}"),
                "service levels are economy, standard, express, same_day",
            ));
        }
    }
    match &mix.regions {
        RegionMix::Named(name) if name != "population" && name != "uniform" => {
            return Err(Invalid::new(
                "mix.regions",
                "\"population\", \"uniform\" or a table of region id = weight",
            ));
        }
        RegionMix::Weights(table) => {
            check_weights(table).map_err(|why| Invalid::new("mix.regions", why))?
        }
        _ => {}
    }
    if let Some([low, high]) = mix.retry_age_s
        && !(0.0 <= low && low <= high && high <= 86_400.0)
    {
        return Err(Invalid::new(
            "mix.retry_age_s",
            "[low, high] seconds with 0 <= low <= high <= 86400",
        ));
    }
    check_shares(mix)
}

fn check_shares(mix: &Mix) -> Result<(), Invalid> {
    for (name, share) in [
        ("mix.promise_share", mix.promise_share),
        ("mix.retry_share", mix.retry_share),
        ("mix.malformed_share", mix.malformed_share),
        ("mix.skus.hot_share", mix.skus.hot_share),
    ] {
        if !(0.0..=1.0).contains(&share) {
            return Err(Invalid::new(name, "a share is between 0 and 1"));
        }
    }
    if mix.retry_share + mix.malformed_share >= 1.0 {
        return Err(Invalid::new(
            "mix.retry_share",
            "retries and malformed lines together must leave room for new orders",
        ));
    }
    let [low, high] = mix.promise_hours;
    if !(low > 0.0 && high >= low && high <= 8_760.0) {
        return Err(Invalid::new(
            "mix.promise_hours",
            "[low, high] hours with 0 < low <= high <= 8760 (a year)",
        ));
    }
    if mix.skus.exponent.is_nan() || mix.skus.exponent <= 0.0 {
        return Err(Invalid::new("mix.skus.exponent", "must be positive"));
    }
    Ok(())
}

fn check_ship(ship: &Ship) -> Result<(), Invalid> {
    if !(0.0..=1.0).contains(&ship.share) {
        return Err(Invalid::new("ship.share", "a share is between 0 and 1"));
    }
    if ship.statuses.is_empty() {
        return Err(Invalid::new(
            "ship.statuses",
            "name at least one of routed, backordered",
        ));
    }
    for (index, status) in ship.statuses.iter().enumerate() {
        let why = match status.as_str() {
            _ if ship.statuses[..index].contains(status) => "named twice",
            "routed" | "backordered" => continue,
            "held" => {
                "held orders wait for a review: the router refuses to ship them (409) until approved"
            }
            "rejected" => "a rejected order holds nothing to ship",
            _ => "statuses shipped are routed and backordered",
        };
        return Err(Invalid::new(format!("ship.statuses.{status}"), why));
    }
    let [low, high] = ship.delay_s.bounds();
    if !(low >= 0.0 && high >= low && high <= 86_400.0) {
        return Err(Invalid::new(
            "ship.delay_s",
            "seconds >= 0, at most a day; a range is [low, high] with low <= high",
        ));
    }
    if ship.connections == 0 || ship.connections > 10_000 {
        return Err(Invalid::new("ship.connections", "must be 1..=10000"));
    }
    if ship.max_queued == 0 {
        return Err(Invalid::new("ship.max_queued", "must be at least 1"));
    }
    if ship.batch == 0 || ship.batch > 10_000 {
        return Err(Invalid::new(
            "ship.batch",
            "must be 1..=10000 (the server takes at most 10,000 shipments a request)",
        ));
    }
    Ok(())
}

fn check_weights(table: &BTreeMap<String, f64>) -> Result<(), String> {
    if let Some((key, _)) = table
        .iter()
        .find(|(_, weight)| !(**weight >= 0.0 && weight.is_finite()))
    {
        return Err(format!("{key}: weights are numbers >= 0"));
    }
    if table.values().sum::<f64>() <= 0.0 {
        return Err("at least one weight must be positive".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
name = "t"
[load]
transport = "streams"
connections = 2
[[phases]]
name = "flat"
duration_s = 2
rate = 100
"#;

    #[test]
    fn minimal_scenario_takes_defaults() {
        let scenario = Scenario::parse(MINIMAL, "t.toml").unwrap();
        assert_eq!(scenario.load.max_queue_ms, 2_000);
        assert_eq!(scenario.mix.tiers["standard"], 1.0);
        assert_eq!(scenario.duration_s(), 2.0);
    }

    #[test]
    fn errors_name_the_field() {
        let bad = MINIMAL.replace(
            "rate = 100",
            "rate = 100\nramp_to = 5\ndecay_to = 1\nhalf_life_s = 1",
        );
        let error = Scenario::parse(&bad, "t.toml").unwrap_err().to_string();
        assert!(error.contains("phases[0] (flat).ramp_to"), "{error}");
        let typo = MINIMAL.replace("connections", "conections");
        let error = Scenario::parse(&typo, "t.toml").unwrap_err().to_string();
        assert!(error.contains("conections"), "{error}");
        let service = format!("{MINIMAL}\n[mix]\nservices = {{ overnight = 1.0 }}\n");
        let error = Scenario::parse(&service, "t.toml").unwrap_err().to_string();
        assert!(error.contains("mix.services.overnight"), "{error}");
    }

    #[test]
    fn without_a_ship_table_nothing_is_shipped() {
        assert!(Scenario::parse(MINIMAL, "t.toml").unwrap().ship.is_none());
    }

    #[test]
    fn a_ship_table_takes_defaults_and_a_fixed_delay_or_a_range() {
        let fixed = format!("{MINIMAL}\n[ship]\nshare = 0.95\ndelay_s = 30\n");
        let ship = Scenario::parse(&fixed, "t.toml").unwrap().ship.unwrap();
        assert_eq!(ship.share, 0.95);
        assert_eq!(ship.delay_s.bounds(), [30.0, 30.0]);
        assert_eq!(ship.statuses, ["routed", "backordered"]);
        assert_eq!(
            (ship.connections, ship.max_queued, ship.batch),
            (8, 2_000_000, 1)
        );
        let range = format!(
            "{MINIMAL}\n[ship]\nshare = 1\ndelay_s = [20, 60.5]\nstatuses = [\"routed\"]\nconnections = 16\nbatch = 500\n"
        );
        let ship = Scenario::parse(&range, "t.toml").unwrap().ship.unwrap();
        assert_eq!(ship.delay_s, ShipDelay::Range([20.0, 60.5]));
        assert_eq!(ship.statuses, ["routed"]);
        assert_eq!((ship.connections, ship.batch), (16, 500));
    }

    #[test]
    fn ship_errors_name_the_key_and_say_why() {
        let ship = |table: &str| {
            let text = format!("{MINIMAL}\n[ship]\n{table}\n");
            Scenario::parse(&text, "t.toml").unwrap_err().to_string()
        };
        for (table, field, why) in [
            ("share = 1.5\ndelay_s = 1", "ship.share", "between 0 and 1"),
            ("share = -0.1\ndelay_s = 1", "ship.share", "between 0 and 1"),
            ("share = nan\ndelay_s = 1", "ship.share", "between 0 and 1"),
            ("share = 1\ndelay_s = -1", "ship.delay_s", "seconds >= 0"),
            (
                "share = 1\ndelay_s = [-5, 10]",
                "ship.delay_s",
                "seconds >= 0",
            ),
            (
                "share = 1\ndelay_s = [60, 20]",
                "ship.delay_s",
                "low <= high",
            ),
            (
                "share = 1\ndelay_s = 100000",
                "ship.delay_s",
                "at most a day",
            ),
            (
                "share = 1\ndelay_s = 1\nstatuses = [\"held\"]",
                "ship.statuses.held",
                "review",
            ),
            (
                "share = 1\ndelay_s = 1\nstatuses = [\"rejected\"]",
                "ship.statuses.rejected",
                "holds nothing",
            ),
            (
                "share = 1\ndelay_s = 1\nbatch = 0",
                "ship.batch",
                "1..=10000",
            ),
            (
                "share = 1\ndelay_s = 1\nbatch = 10001",
                "ship.batch",
                "1..=10000",
            ),
            (
                "share = 1\ndelay_s = 1\nstatuses = [\"routed\", \"routed\"]",
                "ship.statuses.routed",
                "named twice",
            ),
            (
                "share = 1\ndelay_s = 1\nstatuses = [\"shipped\"]",
                "ship.statuses.shipped",
                "routed and backordered",
            ),
            (
                "share = 1\ndelay_s = 1\nstatuses = []",
                "ship.statuses",
                "at least one",
            ),
            (
                "share = 1\ndelay_s = 1\nconnections = 0",
                "ship.connections",
                "1..=10000",
            ),
            (
                "share = 1\ndelay_s = 1\nmax_queued = 0",
                "ship.max_queued",
                "at least 1",
            ),
        ] {
            let error = ship(table);
            assert!(
                error.contains(&format!("{field}: ")) && error.contains(why),
                "{table}: {error}"
            );
        }
        // What the types refuse: a typo, a missing key, a delay that is not seconds.
        let error = ship("share = 1\ndely_s = 1");
        assert!(error.contains("dely_s"), "{error}");
        let error = ship("share = 1");
        assert!(error.contains("delay_s"), "{error}");
        let error = ship("share = 1\ndelay_s = \"soon\"");
        assert!(error.contains("[low, high]"), "{error}");
    }

    #[test]
    fn phase_integrals_match_their_rates() {
        let ramp = Phase {
            name: "r".into(),
            duration_s: 10.0,
            rate: 100.0,
            ramp_to: Some(300.0),
            decay_to: None,
            half_life_s: None,
        };
        // Average of 100 and 300 over 10 s.
        assert!((ramp.orders_by(10.0) - 2_000.0).abs() < 1e-9);
        assert!((ramp.rate_at(5.0) - 200.0).abs() < 1e-9);
        let decay = Phase {
            name: "d".into(),
            duration_s: 60.0,
            rate: 1_000.0,
            ramp_to: None,
            decay_to: Some(100.0),
            half_life_s: Some(2.0),
        };
        assert!((decay.rate_at(2.0) - 550.0).abs() < 1e-9);
        // The integral's slope is the rate.
        let slope = (decay.orders_by(3.0 + 1e-6) - decay.orders_by(3.0)) / 1e-6;
        assert!((slope - decay.rate_at(3.0)).abs() < 1e-3, "{slope}");
    }

    #[test]
    fn every_shipped_scenario_parses() {
        let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut seen = 0;
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path
                .extension()
                .is_some_and(|extension| extension == "toml")
            {
                Scenario::load(&path).unwrap_or_else(|error| panic!("{error}"));
                seen += 1;
            }
        }
        assert!(seen >= 7, "{seen} scenarios in {}", folder.display());
    }
}
