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

mod raw;
mod schema;

use crate::geo::haversine_km;
use crate::ids::{CarrierId, Interner, RegionId, TierId, WarehouseId, ZoneId};
use crate::model::{Capabilities, ServiceLevel};
use raw::{RawCarrier, RawConfig, RawRegion, RawWarehouse};
use smallvec::SmallVec;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

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

/// Routing priorities (`[policy]`). Each weight is a cost per unit; a plan's score is their
/// weighted sum and the lowest score wins (see `docs/routing.md`).
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub distance_weight: f64,
    pub cost_weight: f64,
    pub split_weight: f64,
    pub load_weight: f64,
    pub rank_weight: f64,
    pub max_shipments: u32,
    pub backorder: bool,
    pub default_split: bool,
    pub split_candidates: u32,
    pub hold_tags: Vec<String>,
    pub hold_order_value_over: f64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            distance_weight: 1.0,
            cost_weight: 1.0,
            split_weight: 40.0,
            load_weight: 30.0,
            rank_weight: 5.0,
            max_shipments: 3,
            backorder: true,
            default_split: true,
            split_candidates: 8,
            hold_tags: Vec::new(),
            hold_order_value_over: 0.0,
        }
    }
}

/// Bounds on input (`[limits]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest accepted NDJSON line, in bytes; a longer one is `line_too_long`.
    pub max_line_bytes: usize,
    /// Most lines in one order.
    pub max_lines_per_order: usize,
    /// Most NDJSON order streams the service reads at once; one more is answered 429.
    pub max_streams: usize,
    /// Most orders the service holds between reading them and answering them, over every
    /// connection: the bound of its queues. A stream that would pass it waits (its body is not
    /// read, so TCP pushes back on the sender).
    pub max_orders_in_flight: usize,
    /// Of `max_orders_in_flight`, how many only priority orders (express, same-day, VIP
    /// tiers) may take: under pressure, standard traffic waits or is refused first.
    pub priority_reserve: usize,
    /// A connection that has not sent a whole request head within this is closed (408).
    /// At least 1000: actix-web reads its clock at half-second resolution, and a shorter
    /// deadline can expire before a prompt client's head is read.
    pub header_timeout_ms: u64,
    /// A kept-alive connection with no request for this long is closed. (A request in
    /// progress, such as an order stream hours long, is never cut by it.)
    pub idle_timeout_s: u64,
    /// Connections each HTTP worker holds open at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// The kernel's receive buffer of each connection (`SO_RCVBUF`), in bytes; 0 leaves it
    /// to the kernel's autotuning. Bounded so that a stream the router is not reading backs
    /// up into its sender within a few thousand orders: autotuned buffers grow to 32 MiB on
    /// Linux, a second or more of orders queued where admission cannot see them, and the
    /// latency of a spike's backlog with them (loadtest singles-day, docs/benchmarks.md).
    pub receive_buffer_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line_bytes: 64 * 1024,
            max_lines_per_order: 100,
            max_streams: 256,
            max_orders_in_flight: 65_536,
            priority_reserve: 8_192,
            header_timeout_ms: 10_000,
            idle_timeout_s: 75,
            max_connections: 25_000,
            receive_buffer_bytes: 1 << 20,
        }
    }
}

/// `[alerts]`: when the service warns ops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Alerts {
    /// Share of a warehouse's daily orders, or of a carrier's daily pickups at a warehouse,
    /// past which a bottleneck warning is logged, counted and put on the decision feed.
    pub bottleneck_share: f64,
}

impl Default for Alerts {
    fn default() -> Self {
        Alerts {
            bottleneck_share: 0.9,
        }
    }
}

/// What a bearer token may do. Each role includes the ones below it: `ops` may do
/// everything, `ingest` may also read, `read` only reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Read,
    Ingest,
    Ops,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Ingest => "ingest",
            Role::Ops => "ops",
        }
    }
}

/// `[auth]`: bearer tokens and their roles. Empty: no authentication, and the service
/// listens on loopback only.
#[derive(Clone, Default, PartialEq)]
pub struct Auth {
    pub tokens: Vec<(String, Role)>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a token.
        write!(formatter, "Auth {{ {} tokens }}", self.tokens.len())
    }
}

impl Auth {
    pub fn is_enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// The role of `token`, compared in constant time against every configured token.
    pub fn role_of(&self, token: &str) -> Option<Role> {
        use subtle::ConstantTimeEq;
        let mut found = None;
        for (known, role) in &self.tokens {
            if bool::from(known.as_bytes().ct_eq(token.as_bytes())) {
                found = Some(found.map_or(*role, |other: Role| other.max(*role)));
            }
        }
        found
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tier {
    pub min_service: ServiceLevel,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    /// Zones tried after this one, in order, when it cannot place a whole order.
    pub fallback: Vec<ZoneId>,
    /// The zone's warehouses, in id order.
    pub warehouses: Vec<WarehouseId>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    pub name: String,
    pub latitude: f64,
    pub longitude: f64,
    pub zone: ZoneId,
    pub population_millions: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Warehouse {
    pub name: String,
    pub zone: ZoneId,
    pub latitude: f64,
    pub longitude: f64,
    pub capabilities: Capabilities,
    /// Shipments a UTC day; 0 = unlimited.
    pub daily_orders: u32,
    pub handling_hours: f64,
    pub rank: u32,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CarrierService {
    pub level: ServiceLevel,
    pub base_cost: f64,
    pub per_kg: f64,
    pub per_km: f64,
    pub base_hours: f64,
    pub km_per_hour: f64,
    /// 0 = no limit.
    pub max_km: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Carrier {
    pub capabilities: Capabilities,
    /// `None` = every region (`"*"`).
    pub regions: Option<Vec<RegionId>>,
    pub max_weight_kg: f64,
    /// Pickups per warehouse per UTC day; 0 = unlimited.
    pub daily_pickups: u32,
    /// Slowest level first.
    pub services: SmallVec<[CarrierService; 4]>,
}

/// The validated, interned network and policy: one immutable config snapshot.
#[derive(Debug, Clone)]
pub struct Network {
    pub policy: Policy,
    pub limits: Limits,
    pub auth: Auth,
    pub alerts: Alerts,
    pub tier_ids: Interner,
    pub tiers: Vec<Tier>,
    /// The tier of orders that name none (`standard`, defined implicitly if the file does not).
    pub default_tier: TierId,
    pub zone_ids: Interner,
    pub zones: Vec<Zone>,
    pub region_ids: Interner,
    pub regions: Vec<Region>,
    pub warehouse_ids: Interner,
    pub warehouses: Vec<Warehouse>,
    pub carrier_ids: Interner,
    pub carriers: Vec<Carrier>,
    /// For each region, the carriers that deliver there, in id order.
    pub carriers_by_region: Vec<Vec<CarrierId>>,
    /// Distance from each warehouse to each region's centroid, `[warehouse * regions + region]`:
    /// most orders ship to a centroid, so their distances are a lookup.
    centroid_km: Vec<f64>,
    /// The cheapest `per_kg` of any service delivering to each region at each level or
    /// faster, `[region * 4 + level]` (0 where none): a lower bound the engine prunes with.
    min_per_kg: Vec<f64>,
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

    /// Distance in km from warehouse `warehouse` to the centroid of `region`.
    #[inline]
    pub fn centroid_km(&self, warehouse: WarehouseId, region: RegionId) -> f64 {
        self.centroid_km[warehouse.index() * self.regions.len() + region.index()]
    }

    /// The cheapest `per_kg` of any service to `region` at `level` or faster.
    #[inline]
    pub fn min_per_kg(&self, region: RegionId, level: ServiceLevel) -> f64 {
        self.min_per_kg[region.index() * ServiceLevel::ALL.len() + level as usize]
    }

    pub fn zone_name(&self, zone: ZoneId) -> &str {
        self.zone_ids.name(zone.0.into())
    }
    pub fn warehouse_name(&self, warehouse: WarehouseId) -> &str {
        self.warehouse_ids.name(warehouse.0.into())
    }
    pub fn carrier_name(&self, carrier: CarrierId) -> &str {
        self.carrier_ids.name(carrier.0.into())
    }
    pub fn region_name(&self, region: RegionId) -> &str {
        self.region_ids.name(region.0.into())
    }
    pub fn tier_name(&self, tier: TierId) -> &str {
        self.tier_ids.name(tier.0.into())
    }

    /// The zone ids an order of `home` zone is tried in: home first, then its fallbacks.
    pub fn zone_order(&self, home: ZoneId) -> impl Iterator<Item = ZoneId> + '_ {
        std::iter::once(home).chain(self.zones[home.index()].fallback.iter().copied())
    }
}

/// 1-based line and column of byte `offset` in `text`.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |newline| newline + 1) + 1;
    (line, column)
}

/// Collects problems while building a [`Network`] from the raw file.
struct Checker<'a> {
    text: &'a str,
    problems: Vec<ConfigProblem>,
}

impl Checker<'_> {
    fn report(&mut self, span: Range<usize>, key: impl Into<String>, message: impl Into<String>) {
        let (line, column) = line_column(self.text, span.start);
        self.problems.push(ConfigProblem {
            line,
            column,
            key: key.into(),
            message: message.into(),
        });
    }

    /// A finite number >= 0 (> 0 when `positive`), or a problem and 0.
    fn non_negative(&mut self, value: &Spanned<f64>, key: String, positive: bool) -> f64 {
        self.bounded(value, key, positive, MAX_NUMBER)
    }

    /// Hours: at most a year, so an ETA always stays a date.
    fn hours(&mut self, value: &Spanned<f64>, key: String) -> f64 {
        self.bounded(value, key, false, MAX_HOURS)
    }

    /// A finite number >= 0 (> 0 when `positive`) and at most `max`, or a problem and 0.
    fn bounded(&mut self, value: &Spanned<f64>, key: String, positive: bool, max: f64) -> f64 {
        let number = *value.get_ref();
        let ok = number.is_finite()
            && if positive {
                number > 0.0
            } else {
                number >= 0.0
            };
        if !ok {
            let wanted = if positive { "> 0" } else { ">= 0" };
            self.report(
                value.span(),
                key,
                format!("must be a finite number {wanted}, got {number}"),
            );
            return 0.0;
        }
        if number > max {
            self.report(
                value.span(),
                key,
                format!("must be at most {max}, got {number}"),
            );
            return 0.0;
        }
        number
    }

    /// An integer within `range`, or a problem and the range's start.
    fn integer(&mut self, value: &Spanned<i64>, key: String, range: Range<i64>) -> i64 {
        let number = *value.get_ref();
        if !range.contains(&number) {
            let message = format!(
                "must be between {} and {}, got {number}",
                range.start,
                range.end - 1
            );
            self.report(value.span(), key, message);
            return range.start;
        }
        number
    }

    fn coordinates(&mut self, latitude: &Spanned<f64>, longitude: &Spanned<f64>, key: &str) {
        if !(-90.0..=90.0).contains(latitude.get_ref()) {
            let message = format!(
                "latitude must be within -90..=90, got {}",
                latitude.get_ref()
            );
            self.report(latitude.span(), format!("{key}.lat"), message);
        }
        if !(-180.0..=180.0).contains(longitude.get_ref()) {
            let message = format!(
                "longitude must be within -180..=180, got {}",
                longitude.get_ref()
            );
            self.report(longitude.span(), format!("{key}.lon"), message);
        }
    }

    fn capabilities(&mut self, names: &[Spanned<String>], key: &str) -> Capabilities {
        let mut set = Capabilities::NONE;
        for name in names {
            match Capabilities::parse_one(name.get_ref()) {
                Some(capability) => set = set.union(capability),
                None => self.report(
                    name.span(),
                    format!("{key}.capabilities"),
                    format!(
                        "unknown capability '{}'; known: {}",
                        name.get_ref(),
                        Capabilities::NAMES.join(", ")
                    ),
                ),
            }
        }
        set
    }

    fn service_level(&mut self, name: &Spanned<String>, key: String) -> ServiceLevel {
        ServiceLevel::parse(name.get_ref()).unwrap_or_else(|| {
            let known: Vec<_> = ServiceLevel::ALL.iter().map(|level| level.name()).collect();
            let message = format!(
                "unknown service level '{}'; known, slowest first: {}",
                name.get_ref(),
                known.join(", ")
            );
            self.report(name.span(), key, message);
            ServiceLevel::Standard
        })
    }

    /// Interns ids of one kind in the order given, reporting empty and repeated ones. (A
    /// config with a repeated id is refused, so the vectors built beside the interner may
    /// disagree with it in length only in a network that is thrown away.)
    fn intern<'b>(
        &mut self,
        kind: &str,
        ids: impl Iterator<Item = &'b Spanned<String>>,
    ) -> Interner {
        let ids: Vec<_> = ids.collect();
        let mut interner = Interner::with_capacity(ids.len());
        for (index, id) in ids.into_iter().enumerate() {
            let key = format!("{kind}[{index}].id");
            if id.get_ref().trim().is_empty() {
                self.report(id.span(), key, "id must not be empty");
            } else if interner.insert(id.get_ref()).is_err() {
                let noun = kind.trim_end_matches('s');
                let message = format!("{noun} '{}' is defined twice", id.get_ref());
                self.report(id.span(), key, message);
            }
        }
        interner
    }

    fn lookup(
        &mut self,
        interner: &Interner,
        kind: &str,
        name: &Spanned<String>,
        key: String,
    ) -> u16 {
        match interner.get(name.get_ref()) {
            Some(index) => index as u16,
            None => {
                let known: Vec<_> = interner.names().take(40).collect();
                let message = format!(
                    "{kind} '{}' is not defined; defined {kind}s: {}",
                    name.get_ref(),
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                );
                self.report(name.span(), key, message);
                0
            }
        }
    }

    fn build(&mut self, raw: RawConfig) -> Network {
        let policy = self.policy(&raw);
        let limits = self.limits(&raw);
        let auth = self.auth(&raw);
        let alerts = self.alerts(&raw);
        let whole_file = 0..0;
        for (kind, count) in [
            ("zones", raw.zones.len()),
            ("regions", raw.regions.len()),
            ("warehouses", raw.warehouses.len()),
            ("carriers", raw.carriers.len()),
        ] {
            if count == 0 {
                let message = format!("the network is empty: define at least one [[{kind}]]");
                self.report(whole_file.clone(), kind, message);
            }
        }

        // Tiers.
        let mut tier_ids = self.intern("tiers", raw.tiers.iter().map(|tier| &tier.get_ref().id));
        let mut tiers: Vec<Tier> = raw
            .tiers
            .iter()
            .enumerate()
            .map(|(index, tier)| Tier {
                min_service: self.service_level(
                    &tier.get_ref().min_service,
                    format!("tiers[{index}].min_service"),
                ),
            })
            .collect();
        tiers.truncate(tier_ids.len());
        let default_tier = match tier_ids.get("standard") {
            Some(index) => TierId(index as u16),
            None => {
                let index = tier_ids.insert("standard").unwrap_or_default();
                tiers.push(Tier {
                    min_service: ServiceLevel::Economy,
                });
                TierId(index as u16)
            }
        };

        // Zones and regions.
        let zone_ids = self.intern("zones", raw.zones.iter().map(|zone| &zone.get_ref().id));
        let mut zones: Vec<Zone> = Vec::with_capacity(raw.zones.len());
        for (index, zone) in raw.zones.iter().enumerate() {
            let zone = zone.get_ref();
            let mut fallback: Vec<ZoneId> = Vec::new();
            for (position, target) in zone.fallback.iter().enumerate() {
                let key = format!("zones[{index}].fallback[{position}]");
                if target.get_ref() == zone.id.get_ref() {
                    let message = format!("zone '{}' cannot fall back to itself", target.get_ref());
                    self.report(target.span(), key, message);
                    continue;
                }
                let target_id = ZoneId(self.lookup(&zone_ids, "zone", target, key.clone()));
                if fallback.contains(&target_id) {
                    let message = format!("zone '{}' is listed twice", target.get_ref());
                    self.report(target.span(), key, message);
                }
                fallback.push(target_id);
            }
            zones.push(Zone {
                fallback,
                warehouses: Vec::new(),
            });
        }
        let region_ids = self.intern(
            "regions",
            raw.regions.iter().map(|region| &region.get_ref().id),
        );
        let regions: Vec<Region> = raw
            .regions
            .iter()
            .enumerate()
            .map(|(index, region)| self.region(index, region.get_ref(), &zone_ids))
            .collect();

        // Warehouses and carriers, interned in id order (see `crate::ids`).
        let mut warehouse_order: Vec<usize> = (0..raw.warehouses.len()).collect();
        warehouse_order.sort_by(|a, b| {
            raw.warehouses[*a]
                .get_ref()
                .id
                .get_ref()
                .cmp(raw.warehouses[*b].get_ref().id.get_ref())
        });
        let warehouse_ids = self.intern(
            "warehouses",
            warehouse_order
                .iter()
                .map(|index| &raw.warehouses[*index].get_ref().id),
        );
        let mut warehouses = Vec::with_capacity(raw.warehouses.len());
        for index in &warehouse_order {
            let warehouse = self.warehouse(*index, raw.warehouses[*index].get_ref(), &zone_ids);
            if warehouses.len() < warehouse_ids.len() {
                warehouses.push(warehouse);
            }
        }
        for (index, warehouse) in warehouses.iter().enumerate() {
            if let Some(zone) = zones.get_mut(warehouse.zone.index()) {
                zone.warehouses.push(WarehouseId(index as u16));
            }
        }
        let mut carrier_order: Vec<usize> = (0..raw.carriers.len()).collect();
        carrier_order.sort_by(|a, b| {
            raw.carriers[*a]
                .get_ref()
                .id
                .get_ref()
                .cmp(raw.carriers[*b].get_ref().id.get_ref())
        });
        let carrier_ids = self.intern(
            "carriers",
            carrier_order
                .iter()
                .map(|index| &raw.carriers[*index].get_ref().id),
        );
        let mut carriers = Vec::with_capacity(raw.carriers.len());
        for index in &carrier_order {
            let carrier = self.carrier(*index, raw.carriers[*index].get_ref(), &region_ids);
            if carriers.len() < carrier_ids.len() {
                carriers.push(carrier);
            }
        }

        // Zones whose orders could never ship anywhere.
        let mut has_regions = vec![false; zones.len()];
        for region in &regions {
            if let Some(flag) = has_regions.get_mut(region.zone.index()) {
                *flag = true;
            }
        }
        for (index, zone) in zones.iter().enumerate() {
            if has_regions[index] && zone.warehouses.is_empty() && zone.fallback.is_empty() {
                let message = format!(
                    "zone '{}' has regions but neither a warehouse nor a fallback: its orders could never ship",
                    raw.zones[index].get_ref().id.get_ref()
                );
                self.report(raw.zones[index].span(), format!("zones[{index}]"), message);
            }
        }

        let carriers_by_region: Vec<Vec<CarrierId>> = (0..regions.len())
            .map(|region| {
                (0..carriers.len())
                    .filter(|carrier| match &carriers[*carrier].regions {
                        None => true,
                        Some(list) => list.contains(&RegionId(region as u16)),
                    })
                    .map(|carrier| CarrierId(carrier as u16))
                    .collect()
            })
            .collect();
        let mut centroid_km = Vec::with_capacity(warehouses.len() * regions.len());
        for warehouse in &warehouses {
            for region in &regions {
                centroid_km.push(haversine_km(
                    warehouse.latitude,
                    warehouse.longitude,
                    region.latitude,
                    region.longitude,
                ));
            }
        }

        let mut min_per_kg = Vec::with_capacity(regions.len() * ServiceLevel::ALL.len());
        for carriers_here in &carriers_by_region {
            for level in ServiceLevel::ALL {
                let cheapest = carriers_here
                    .iter()
                    .flat_map(|carrier: &CarrierId| carriers[carrier.index()].services.iter())
                    .filter(|service| service.level >= level)
                    .map(|service| service.per_kg)
                    .fold(f64::INFINITY, f64::min);
                min_per_kg.push(if cheapest.is_finite() { cheapest } else { 0.0 });
            }
        }

        Network {
            policy,
            limits,
            auth,
            alerts,
            tier_ids,
            tiers,
            default_tier,
            zone_ids,
            zones,
            region_ids,
            regions,
            warehouse_ids,
            warehouses,
            carrier_ids,
            carriers,
            carriers_by_region,
            centroid_km,
            min_per_kg,
        }
    }

    fn policy(&mut self, raw: &RawConfig) -> Policy {
        let mut policy = Policy::default();
        let Some(raw) = &raw.policy else {
            return policy;
        };
        for (value, target, name) in [
            (
                &raw.distance_weight,
                &mut policy.distance_weight,
                "distance_weight",
            ),
            (&raw.cost_weight, &mut policy.cost_weight, "cost_weight"),
            (&raw.split_weight, &mut policy.split_weight, "split_weight"),
            (&raw.load_weight, &mut policy.load_weight, "load_weight"),
            (&raw.rank_weight, &mut policy.rank_weight, "rank_weight"),
            (
                &raw.hold_order_value_over,
                &mut policy.hold_order_value_over,
                "hold_order_value_over",
            ),
        ] {
            if let Some(value) = value {
                *target = self.non_negative(value, format!("policy.{name}"), false);
            }
        }
        if let Some(value) = &raw.max_shipments {
            let range = 1..i64::from(crate::limits::MAX_SHIPMENTS) + 1;
            policy.max_shipments = self.integer(value, "policy.max_shipments".into(), range) as u32;
        }
        if let Some(value) = &raw.split_candidates {
            let range = 2..i64::from(crate::limits::MAX_SPLIT_CANDIDATES) + 1;
            policy.split_candidates =
                self.integer(value, "policy.split_candidates".into(), range) as u32;
        }
        if let Some(backorder) = raw.backorder {
            policy.backorder = backorder;
        }
        if let Some(split) = &raw.default_split {
            match split.get_ref().as_str() {
                "allow" => policy.default_split = true,
                "forbid" => policy.default_split = false,
                other => {
                    let message = format!("must be \"allow\" or \"forbid\", got \"{other}\"");
                    self.report(split.span(), "policy.default_split", message);
                }
            }
        }
        if let Some(tags) = &raw.hold_tags {
            policy.hold_tags = tags.clone();
        }
        policy
    }

    fn alerts(&mut self, raw: &RawConfig) -> Alerts {
        let mut alerts = Alerts::default();
        if let Some(share) = raw
            .alerts
            .as_ref()
            .and_then(|raw| raw.bottleneck_share.as_ref())
        {
            let value = *share.get_ref();
            if value.is_finite() && value > 0.0 && value <= 1.0 {
                alerts.bottleneck_share = value;
            } else {
                self.report(
                    share.span(),
                    "alerts.bottleneck_share",
                    format!("must be a share above 0 and at most 1, got {value}"),
                );
            }
        }
        alerts
    }

    fn auth(&mut self, raw: &RawConfig) -> Auth {
        let mut auth = Auth::default();
        let Some(raw) = &raw.auth else {
            return auth;
        };
        for (key, tokens, role) in [
            ("auth.read_tokens", &raw.read_tokens, Role::Read),
            ("auth.ingest_tokens", &raw.ingest_tokens, Role::Ingest),
            ("auth.ops_tokens", &raw.ops_tokens, Role::Ops),
        ] {
            for (index, token) in tokens.iter().enumerate() {
                let text = token.get_ref();
                if text.len() < 16 || !text.bytes().all(|byte| byte.is_ascii_graphic()) {
                    self.report(
                        token.span(),
                        format!("{key}[{index}]"),
                        "a token must be at least 16 printable ASCII characters, no spaces",
                    );
                    continue;
                }
                auth.tokens.push((text.clone(), role));
            }
        }
        auth
    }

    fn limits(&mut self, raw: &RawConfig) -> Limits {
        let mut limits = Limits::default();
        let Some(raw) = &raw.limits else {
            return limits;
        };
        if let Some(value) = &raw.max_line_bytes {
            let range = 256..(16 << 20) + 1;
            limits.max_line_bytes =
                self.integer(value, "limits.max_line_bytes".into(), range) as usize;
        }
        if let Some(value) = &raw.max_lines_per_order {
            let range = 1..10_001;
            limits.max_lines_per_order =
                self.integer(value, "limits.max_lines_per_order".into(), range) as usize;
        }
        if let Some(value) = &raw.max_streams {
            let range = 1..1_000_001;
            limits.max_streams = self.integer(value, "limits.max_streams".into(), range) as usize;
        }
        if let Some(value) = &raw.max_orders_in_flight {
            let range = 1..100_000_001;
            limits.max_orders_in_flight =
                self.integer(value, "limits.max_orders_in_flight".into(), range) as usize;
        }
        if let Some(value) = &raw.header_timeout_ms {
            limits.header_timeout_ms =
                self.integer(value, "limits.header_timeout_ms".into(), 1000..600_001) as u64;
        }
        if let Some(value) = &raw.idle_timeout_s {
            limits.idle_timeout_s =
                self.integer(value, "limits.idle_timeout_s".into(), 1..86_401) as u64;
        }
        if let Some(value) = &raw.max_connections {
            limits.max_connections =
                self.integer(value, "limits.max_connections".into(), 1..1_000_001) as usize;
        }
        if let Some(value) = &raw.receive_buffer_bytes {
            let range = 0..(1 << 30) + 1;
            limits.receive_buffer_bytes =
                self.integer(value, "limits.receive_buffer_bytes".into(), range) as usize;
        }
        if let Some(value) = &raw.priority_reserve {
            let range = 0..limits.max_orders_in_flight as i64;
            limits.priority_reserve =
                self.integer(value, "limits.priority_reserve".into(), range) as usize;
        } else {
            limits.priority_reserve = limits.priority_reserve.min(limits.max_orders_in_flight / 2);
        }
        limits
    }

    fn region(&mut self, index: usize, region: &RawRegion, zone_ids: &Interner) -> Region {
        let key = format!("regions[{index}]");
        self.coordinates(&region.lat, &region.lon, &key);
        let zone = ZoneId(self.lookup(zone_ids, "zone", &region.zone, format!("{key}.zone")));
        let population_millions = match &region.population {
            Some(population) => self.non_negative(population, format!("{key}.population"), false),
            None => 1.0,
        };
        Region {
            name: region
                .name
                .clone()
                .unwrap_or_else(|| region.id.get_ref().clone()),
            latitude: *region.lat.get_ref(),
            longitude: *region.lon.get_ref(),
            zone,
            population_millions,
        }
    }

    fn warehouse(
        &mut self,
        index: usize,
        warehouse: &RawWarehouse,
        zone_ids: &Interner,
    ) -> Warehouse {
        let key = format!("warehouses[{index}]");
        self.coordinates(&warehouse.lat, &warehouse.lon, &key);
        let zone = ZoneId(self.lookup(zone_ids, "zone", &warehouse.zone, format!("{key}.zone")));
        let capabilities = self.capabilities(&warehouse.capabilities, &key);
        let daily_orders = match &warehouse.daily_orders {
            Some(value) => {
                self.integer(value, format!("{key}.daily_orders"), 0..u32::MAX as i64) as u32
            }
            None => 0,
        };
        let handling_hours = match &warehouse.handling_hours {
            Some(value) => self.hours(value, format!("{key}.handling_hours")),
            None => 0.0,
        };
        let rank = match &warehouse.rank {
            Some(value) => self.integer(value, format!("{key}.rank"), 0..1_000_001) as u32,
            None => 0,
        };
        Warehouse {
            name: warehouse
                .name
                .clone()
                .unwrap_or_else(|| warehouse.id.get_ref().clone()),
            zone,
            latitude: *warehouse.lat.get_ref(),
            longitude: *warehouse.lon.get_ref(),
            capabilities,
            daily_orders,
            handling_hours,
            rank,
            enabled: warehouse.enabled.unwrap_or(true),
        }
    }

    fn carrier(&mut self, index: usize, carrier: &RawCarrier, region_ids: &Interner) -> Carrier {
        let key = format!("carriers[{index}]");
        let capabilities = self.capabilities(&carrier.capabilities, &key);
        let mut regions = Some(Vec::new());
        if carrier.regions.is_empty() {
            self.report(
                carrier.id.span(),
                format!("{key}.regions"),
                "a carrier must serve at least one region (\"*\" for all)",
            );
        }
        for (position, region) in carrier.regions.iter().enumerate() {
            if region.get_ref() == "*" {
                regions = None;
            } else {
                let key = format!("{key}.regions[{position}]");
                let id = RegionId(self.lookup(region_ids, "region", region, key));
                if let Some(list) = regions.as_mut() {
                    list.push(id);
                }
            }
        }
        let max_weight_kg =
            self.non_negative(&carrier.max_weight_kg, format!("{key}.max_weight_kg"), true);
        let daily_pickups = match &carrier.daily_pickups {
            Some(value) => {
                self.integer(value, format!("{key}.daily_pickups"), 0..u32::MAX as i64) as u32
            }
            None => 0,
        };
        if carrier.services.is_empty() {
            let message = format!(
                "carrier '{}' has no [[carriers.services]]",
                carrier.id.get_ref()
            );
            self.report(carrier.id.span(), format!("{key}.services"), message);
        }
        let mut services: SmallVec<[CarrierService; 4]> = SmallVec::new();
        for (position, service) in carrier.services.iter().enumerate() {
            let span = service.span();
            let service = service.get_ref();
            let key = format!("{key}.services[{position}]");
            let level = self.service_level(&service.level, format!("{key}.level"));
            if services.iter().any(|existing| existing.level == level) {
                let message = format!("level '{}' is offered twice by this carrier", level.name());
                self.report(span, format!("{key}.level"), message);
            }
            services.push(CarrierService {
                level,
                base_cost: self.non_negative(&service.base_cost, format!("{key}.base_cost"), false),
                per_kg: self.non_negative(&service.per_kg, format!("{key}.per_kg"), false),
                per_km: self.non_negative(&service.per_km, format!("{key}.per_km"), false),
                base_hours: self.hours(&service.base_hours, format!("{key}.base_hours")),
                km_per_hour: self.non_negative(
                    &service.km_per_hour,
                    format!("{key}.km_per_hour"),
                    true,
                ),
                max_km: match &service.max_km {
                    Some(value) => self.non_negative(value, format!("{key}.max_km"), false),
                    None => 0.0,
                },
            });
        }
        services.sort_by_key(|service| service.level);
        Carrier {
            capabilities,
            regions,
            max_weight_kg,
            daily_pickups,
            services,
        }
    }
}

impl fmt::Display for Network {
    /// A one-paragraph summary, as `check-config` prints it.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let enabled = self
            .warehouses
            .iter()
            .filter(|warehouse| warehouse.enabled)
            .count();
        let services: usize = self
            .carriers
            .iter()
            .map(|carrier| carrier.services.len())
            .sum();
        write!(
            formatter,
            "{} zones, {} regions, {} warehouses ({} enabled), {} carriers ({} services), {} tiers; \
             max_shipments {}, backorder {}",
            self.zones.len(),
            self.regions.len(),
            self.warehouses.len(),
            enabled,
            self.carriers.len(),
            services,
            self.tiers.len(),
            self.policy.max_shipments,
            self.policy.backorder
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
