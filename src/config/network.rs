//! The validated network and policy: [`Network`], one immutable config snapshot, and the
//! parts it is made of (`[policy]`, `[limits]`, `[auth]`, `[alerts]`, tiers, zones,
//! regions, warehouses, carriers). Everything here is plain data that the rest of the crate
//! reads; how it is built from the file, and checked, is in `build.rs` and `settings.rs`.

use super::risk::RiskRules;
use super::rules::RoutingRules;
use crate::ids::{CarrierId, Interner, RegionId, TierId, WarehouseId, ZoneId};
use crate::model::{Capabilities, ServiceLevel};
use smallvec::SmallVec;
use std::fmt;

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
    /// Distinct approvers that release a held order.
    pub review_approvals: u32,
    /// Seconds a held order may wait for review before `review_timeout_action` is taken
    /// on it; 0: it waits for ever.
    pub review_timeout_s: u64,
    /// What a review timeout does: reject the order (`true`) or approve it.
    pub review_timeout_rejects: bool,
    /// Extension (issue 11): the routing rules and warehouse groups, compiled. Part of the
    /// policy: a reload that changes only the rules is a policy change, and applies.
    pub rules: RoutingRules,
    /// Extension (issue 11): the risk rules, compiled (their tags and categories are named
    /// in `rules`' tables).
    pub risk: RiskRules,
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
            review_approvals: 1,
            review_timeout_s: 0,
            review_timeout_rejects: true,
            rules: RoutingRules::default(),
            risk: RiskRules::default(),
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
    /// An order stream whose body delivers no byte for this long (while the router waits
    /// for it) is answered for what it sent, ends with a `body_timeout` record and frees
    /// its stream slot. Read when a stream opens: a reload applies to the streams after it.
    pub body_idle_timeout_ms: u64,
    /// A connection whose client takes no byte of a response for this long (its receive
    /// window shut: it does not read its answers) is closed, freeing its stream slot and
    /// the answers waiting to be written; the decisions stand (a resend is answered as a
    /// duplicate). Read when a connection opens: a reload applies to the connections after it.
    pub write_stall_timeout_ms: u64,
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
            body_idle_timeout_ms: 30_000,
            write_stall_timeout_ms: 60_000,
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
    pub(super) centroid_km: Vec<f64>,
    /// The cheapest `per_kg` of any service delivering to each region at each level or
    /// faster, `[region * 4 + level]` (0 where none): a lower bound the engine prunes with.
    pub(super) min_per_kg: Vec<f64>,
}

impl Network {
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
