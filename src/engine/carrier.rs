//! Step 4 of the search: the carrier service of one shipment, chosen exactly
//! ([`choose_carrier`]): the cheapest feasible service by `cost_weight * cost`, ties on
//! carrier id, then cost, then the slower level. When none is feasible, what stopped the
//! carriers is noted in [`Failures`].

use super::candidates::Candidate;
use super::{Failures, OrderContext};
use crate::config::{Carrier, CarrierService};
use crate::ids::CarrierId;
use crate::model::{Capabilities, ServiceLevel};
use crate::time::Millis;
use crate::zone::ZoneState;

/// The carrier service picked for one shipment.
#[derive(Clone, Copy, Debug)]
pub(super) struct CarrierChoice {
    pub(super) carrier: CarrierId,
    /// The service's position in its carrier's `services`.
    pub(super) service: usize,
    pub(super) cost: f64,
    pub(super) eta: Millis,
}

/// The best carrier service for a shipment of `weight_g` grams needing `capabilities` from
/// `candidate`, or `None` (with the reasons noted in `failures`).
pub(super) fn choose_carrier(
    context: &OrderContext,
    zone: &ZoneState,
    candidate: &Candidate,
    capabilities: Capabilities,
    weight_g: u64,
    failures: &mut Failures,
) -> Option<CarrierChoice> {
    let network = context.network;
    let mut search = ServiceSearch {
        cost_weight: context.policy().cost_weight,
        weight_kg: weight_g as f64 / 1000.0,
        handling_hours: network.warehouses[candidate.warehouse.index()].handling_hours,
        best: None,
        fitting_carrier: false,
        late: false,
        pickups_full: false,
    };
    // Read once: with no rule in force, the loop below does no rule work at all.
    let rules = context.facts.rules.active.then_some(&context.facts.rules);
    for &carrier_id in &network.carriers_by_region[context.region().index()] {
        let carrier = &network.carriers[carrier_id.index()];
        if let Some(effect) = rules
            && !effect.allows_carrier(&network.policy.rules, carrier_id)
        {
            continue;
        }
        if !carrier.capabilities.covers(capabilities) || search.weight_kg > carrier.max_weight_kg {
            continue;
        }
        search.fitting_carrier = true;
        if carrier.daily_pickups > 0
            && zone.pickups(candidate.local, carrier_id, context.day) >= carrier.daily_pickups
        {
            search.pickups_full = true;
            continue;
        }
        search.consider_services(context, candidate, carrier_id, carrier, failures);
    }
    search.finish(failures)
}

/// One run of [`choose_carrier`]: what every service is weighed with, the best service so
/// far, and what stopped the carriers that fit (noted only if no service is found at all).
struct ServiceSearch {
    cost_weight: f64,
    weight_kg: f64,
    /// Hours the warehouse takes before a parcel leaves: part of every ETA from it.
    handling_hours: f64,
    /// The best feasible service so far: its key (`cost_weight * cost`), the choice and its
    /// level (the last tie-break).
    best: Option<(f64, CarrierChoice, ServiceLevel)>,
    fitting_carrier: bool,
    late: bool,
    pickups_full: bool,
}

impl ServiceSearch {
    /// Weighs every service of `carrier` (which fits the parcel and has pickups left) that
    /// offers the order's level within its distance, keeping the best that is on time.
    #[inline]
    fn consider_services(
        &mut self,
        context: &OrderContext,
        candidate: &Candidate,
        carrier_id: CarrierId,
        carrier: &Carrier,
        failures: &mut Failures,
    ) {
        for (service_index, service) in carrier.services.iter().enumerate() {
            if service.level < context.facts.level
                || (service.max_km > 0.0 && candidate.distance_km > service.max_km)
            {
                continue;
            }
            let cost = service.base_cost
                + service.per_kg * self.weight_kg
                + service.per_km * candidate.distance_km;
            let key = self.cost_weight * cost;
            // The ETA is only worked out for a service that would win: one that loses to a
            // feasible service already found cannot matter, late or not.
            if !self.would_win(key, carrier_id, cost, service.level) {
                continue;
            }
            let Some(eta) = self.on_time_eta(context, candidate, service, failures) else {
                continue;
            };
            let choice = CarrierChoice {
                carrier: carrier_id,
                service: service_index,
                cost,
                eta,
            };
            self.best = Some((key, choice, service.level));
        }
    }

    /// Whether a service of `key`, `carrier`, `cost` and `level` beats the best so far.
    #[inline]
    fn would_win(&self, key: f64, carrier: CarrierId, cost: f64, level: ServiceLevel) -> bool {
        match &self.best {
            None => true,
            Some((best_key, best_choice, best_level)) => key
                .total_cmp(best_key)
                .then(carrier.cmp(&best_choice.carrier))
                .then(cost.total_cmp(&best_choice.cost))
                .then(level.cmp(best_level))
                .is_lt(),
        }
    }

    /// When `service` would deliver from `candidate`, or `None` when that misses the
    /// order's `promise_by` (noting the earliest late ETA in `failures`).
    #[inline]
    fn on_time_eta(
        &mut self,
        context: &OrderContext,
        candidate: &Candidate,
        service: &CarrierService,
        failures: &mut Failures,
    ) -> Option<Millis> {
        let eta = context.now.plus_hours(
            self.handling_hours + service.base_hours + candidate.distance_km / service.km_per_hour,
        );
        if let Some(promise) = context.order.promise_by
            && eta > promise
        {
            self.late = true;
            failures.earliest_late_eta =
                Some(failures.earliest_late_eta.map_or(eta, |seen| seen.min(eta)));
            return None;
        }
        Some(eta)
    }

    /// The best service found, or `None` with the reason noted: no carrier fits, or the
    /// fitting ones had no pickups left, or none offered the level (a late service was
    /// noted already, with its ETA).
    #[inline]
    fn finish(self, failures: &mut Failures) -> Option<CarrierChoice> {
        if self.best.is_none() {
            if !self.fitting_carrier {
                failures.no_carrier = true;
            } else if self.pickups_full {
                failures.pickup_capacity = true;
            } else if !self.late {
                failures.service_unavailable = true;
            }
        }
        self.best.map(|(_, choice, _)| choice)
    }
}
