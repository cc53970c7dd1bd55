//! The network's structure from the raw file, in the order the checks run: the settings
//! tables (`settings.rs`), then tiers, zones, regions, warehouses and carriers, each
//! interned and every reference between them checked, then the zones whose orders could
//! never ship, and last the tables derived for the engine (carriers by region, distances to
//! region centroids, the cheapest per-kg rate by region and level).
//!
//! The order of the checks is the order problems of one place are reported in (the list is
//! sorted by line and column, stably), so it is kept as it is.

use super::check::Checker;
use super::raw::{RawCarrier, RawConfig, RawRegion, RawService, RawWarehouse, RawZone};
use super::rules::RuleNames;
use super::{Carrier, CarrierService, Network, Region, Tier, Warehouse, Zone};
use crate::geo::haversine_km;
use crate::ids::{CarrierId, Interner, RegionId, TierId, WarehouseId, ZoneId};
use crate::model::ServiceLevel;
use smallvec::SmallVec;
use toml::Spanned;

impl Checker<'_> {
    /// The whole network from `raw`, every problem reported on the way. (With problems, the
    /// network is thrown away: ids that failed are stand-ins.)
    pub(super) fn build(&mut self, raw: RawConfig) -> Network {
        let mut policy = self.policy(&raw);
        let limits = self.limits(&raw);
        let auth = self.auth(&raw);
        let alerts = self.alerts(&raw);
        self.check_not_empty(&raw);
        let (tier_ids, tiers, default_tier) = self.tiers(&raw);
        let zone_ids = self.intern("zones", raw.zones.iter().map(|zone| &zone.get_ref().id));
        let mut zones = self.zones(&raw, &zone_ids);
        let (region_ids, regions) = self.regions(&raw, &zone_ids);
        let (warehouse_ids, warehouses) = self.in_id_order(
            "warehouses",
            &raw.warehouses,
            |warehouse| &warehouse.id,
            |checker, index, warehouse| checker.warehouse(index, warehouse, &zone_ids),
        );
        place_warehouses(&mut zones, &warehouses);
        let (carrier_ids, carriers) = self.in_id_order(
            "carriers",
            &raw.carriers,
            |carrier| &carrier.id,
            |checker, index, carrier| checker.carrier(index, carrier, &region_ids),
        );
        self.check_zones_can_ship(&raw, &zones, &regions);
        let names = RuleNames {
            tiers: &tier_ids,
            zones: &zone_ids,
            regions: &region_ids,
            warehouses: &warehouse_ids,
            carriers: &carrier_ids,
        };
        policy.rules = self.routing_rules(&raw, &names);
        policy.risk = self.risk_rules(&raw, &names, &mut policy.rules);
        let carriers_by_region = carriers_by_region(regions.len(), &carriers);
        let centroid_km = centroid_distances(&warehouses, &regions);
        let min_per_kg = cheapest_per_kg(&carriers_by_region, &carriers);
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

    /// A network needs at least one of each: zones, regions, warehouses, carriers.
    fn check_not_empty(&mut self, raw: &RawConfig) {
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
    }

    /// The tiers and the default one: `standard`, which is defined (with an economy
    /// minimum) when the file does not define it.
    fn tiers(&mut self, raw: &RawConfig) -> (Interner, Vec<Tier>, TierId) {
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
        (tier_ids, tiers, default_tier)
    }

    /// The zones with their fallbacks; their warehouses are filled in once the warehouses
    /// are built.
    fn zones(&mut self, raw: &RawConfig, zone_ids: &Interner) -> Vec<Zone> {
        let mut zones: Vec<Zone> = Vec::with_capacity(raw.zones.len());
        for (index, zone) in raw.zones.iter().enumerate() {
            let fallback = self.fallbacks(index, zone.get_ref(), zone_ids);
            zones.push(Zone {
                fallback,
                warehouses: Vec::new(),
            });
        }
        zones
    }

    /// The regions, each in a defined zone.
    fn regions(&mut self, raw: &RawConfig, zone_ids: &Interner) -> (Interner, Vec<Region>) {
        let region_ids = self.intern(
            "regions",
            raw.regions.iter().map(|region| &region.get_ref().id),
        );
        let regions: Vec<Region> = raw
            .regions
            .iter()
            .enumerate()
            .map(|(index, region)| self.region(index, region.get_ref(), zone_ids))
            .collect();
        (region_ids, regions)
    }

    /// Zone `index`'s fallbacks: each a defined zone, not the zone itself, listed once.
    fn fallbacks(&mut self, index: usize, zone: &RawZone, zone_ids: &Interner) -> Vec<ZoneId> {
        let mut fallback: Vec<ZoneId> = Vec::new();
        for (position, target) in zone.fallback.iter().enumerate() {
            let key = format!("zones[{index}].fallback[{position}]");
            if target.get_ref() == zone.id.get_ref() {
                let message = format!("zone '{}' cannot fall back to itself", target.get_ref());
                self.report(target.span(), key, message);
                continue;
            }
            let target_id = ZoneId(self.lookup(zone_ids, "zone", target, key.clone()));
            if fallback.contains(&target_id) {
                let message = format!("zone '{}' is listed twice", target.get_ref());
                self.report(target.span(), key, message);
            }
            fallback.push(target_id);
        }
        fallback
    }

    /// Interns the ids of `items` in id order (see `crate::ids`: ids of warehouses and
    /// carriers compare as their names do) and builds each item with `build`, in that
    /// order. An item whose id is repeated is checked all the same; only as many items are
    /// kept as the interner holds (such a network is refused anyway).
    fn in_id_order<Raw, Built>(
        &mut self,
        kind: &str,
        items: &[Spanned<Raw>],
        id: impl Fn(&Raw) -> &Spanned<String>,
        mut build: impl FnMut(&mut Self, usize, &Raw) -> Built,
    ) -> (Interner, Vec<Built>) {
        let mut order: Vec<usize> = (0..items.len()).collect();
        order.sort_by(|a, b| {
            id(items[*a].get_ref())
                .get_ref()
                .cmp(id(items[*b].get_ref()).get_ref())
        });
        let ids = self.intern(kind, order.iter().map(|index| id(items[*index].get_ref())));
        let mut built = Vec::with_capacity(items.len());
        for index in order {
            let item = build(self, index, items[index].get_ref());
            if built.len() < ids.len() {
                built.push(item);
            }
        }
        (ids, built)
    }

    /// Reports the zones whose orders could never ship anywhere: they have regions but
    /// neither a warehouse nor a fallback.
    fn check_zones_can_ship(&mut self, raw: &RawConfig, zones: &[Zone], regions: &[Region]) {
        let mut has_regions = vec![false; zones.len()];
        for region in regions {
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
    }

    /// Region `index`: on the globe, in a defined zone, its population (1 million unless
    /// given) a number >= 0.
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

    /// Warehouse `index` (its place in the file, for the keys of its problems).
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

    /// Carrier `index` (its place in the file): capabilities, regions, limits and services
    /// (slowest level first).
    fn carrier(&mut self, index: usize, carrier: &RawCarrier, region_ids: &Interner) -> Carrier {
        let key = format!("carriers[{index}]");
        let capabilities = self.capabilities(&carrier.capabilities, &key);
        let regions = self.carrier_regions(&key, carrier, region_ids);
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
            let key = format!("{key}.services[{position}]");
            let service = self.carrier_service(&key, service, &services);
            services.push(service);
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

    /// The regions a carrier serves: `None` for every region (`"*"`), else each one named,
    /// which must be defined. A carrier must name at least one.
    fn carrier_regions(
        &mut self,
        key: &str,
        carrier: &RawCarrier,
        region_ids: &Interner,
    ) -> Option<Vec<RegionId>> {
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
        regions
    }

    /// One service of a carrier (`key` is its place in the file), whose level must differ
    /// from those of the carrier's services checked before it (`earlier`).
    fn carrier_service(
        &mut self,
        key: &str,
        service: &Spanned<RawService>,
        earlier: &[CarrierService],
    ) -> CarrierService {
        let span = service.span();
        let service = service.get_ref();
        let level = self.service_level(&service.level, format!("{key}.level"));
        if earlier.iter().any(|existing| existing.level == level) {
            let message = format!("level '{}' is offered twice by this carrier", level.name());
            self.report(span, format!("{key}.level"), message);
        }
        CarrierService {
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
        }
    }
}

/// Lists each warehouse in its zone's `warehouses`, in id order.
fn place_warehouses(zones: &mut [Zone], warehouses: &[Warehouse]) {
    for (index, warehouse) in warehouses.iter().enumerate() {
        if let Some(zone) = zones.get_mut(warehouse.zone.index()) {
            zone.warehouses.push(WarehouseId(index as u16));
        }
    }
}

/// For each region, the carriers that deliver there, in id order.
fn carriers_by_region(regions: usize, carriers: &[Carrier]) -> Vec<Vec<CarrierId>> {
    (0..regions)
        .map(|region| {
            (0..carriers.len())
                .filter(|carrier| match &carriers[*carrier].regions {
                    None => true,
                    Some(list) => list.contains(&RegionId(region as u16)),
                })
                .map(|carrier| CarrierId(carrier as u16))
                .collect()
        })
        .collect()
}

/// Distance from each warehouse to each region's centroid, `[warehouse * regions + region]`.
fn centroid_distances(warehouses: &[Warehouse], regions: &[Region]) -> Vec<f64> {
    let mut centroid_km = Vec::with_capacity(warehouses.len() * regions.len());
    for warehouse in warehouses {
        for region in regions {
            centroid_km.push(haversine_km(
                warehouse.latitude,
                warehouse.longitude,
                region.latitude,
                region.longitude,
            ));
        }
    }
    centroid_km
}

/// The cheapest `per_kg` of any service delivering to each region at each level or faster,
/// `[region * 4 + level]` (0 where none).
fn cheapest_per_kg(carriers_by_region: &[Vec<CarrierId>], carriers: &[Carrier]) -> Vec<f64> {
    let mut min_per_kg = Vec::with_capacity(carriers_by_region.len() * ServiceLevel::ALL.len());
    for carriers_here in carriers_by_region {
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
    min_per_kg
}
