//! The way of a chunk of orders through the service, from the worker that parsed it to
//! the zones and back.
//!
//! ```text
//! worker: a parsed chunk --admission permits--> claims, line by line (zone::admit)
//!         --one Visits message per home zone--> zone actors (zone::decide, fallbacks
//!         between zones by message) --> journal writer (durable first) --> a Part per
//!         answering zone --> Answers --> the worker puts the parts in input order
//! ```

use super::App;
use super::admission::Permit;
use super::answers::{Answers, Part, Ticket};
use super::metrics::{self as router_metrics, Stage};
use super::zone_actor::{Visits, ZoneActor};
use crate::catalog::Catalog;
use crate::config::Network;
use crate::engine::RuleEffect;
use crate::ids::ZoneId;
use crate::ingest::Parsed;
use crate::limits::PREFETCH_AHEAD;
use crate::model::{Capabilities, Invalid, InvalidCode, Order, ServiceLevel, Tally};
use crate::zone::{ClaimKey, Visit, admit};
use bytes::Bytes;
use std::sync::Arc;
use std::time::Instant;

/// Whether an order is admitted ahead of standard traffic: a routing rule puts it in the
/// priority lane (or the standard one), or else it asks for (or its tier or a rule requires)
/// express or faster.
pub(super) fn is_priority(network: &Network, catalog: &Catalog, order: &Order) -> bool {
    let tier_minimum = network.tiers[order.tier.index()].min_service;
    let mut level = order.service.max(tier_minimum);
    if network.policy.rules.decide_lanes() {
        let capabilities = order.lines.iter().fold(Capabilities::NONE, |all, line| {
            all.union(catalog.sku(line.sku).capabilities)
        });
        let effect = RuleEffect::of(order, network, catalog, capabilities);
        if let Some(priority) = effect.priority {
            return priority;
        }
        level = level.max(effect.min_service.unwrap_or(level));
    }
    level >= ServiceLevel::Express
}

fn batch_priority(network: &Network, catalog: &Catalog, batch: &[Parsed]) -> bool {
    batch.iter().any(|(_, parsed)| {
        parsed
            .as_ref()
            .is_ok_and(|order| is_priority(network, catalog, order))
    })
}

/// The answers of a chunk: one NDJSON line per parsed line, in input order.
pub struct BatchAnswer {
    pub bytes: Bytes,
    pub tally: Tally,
}

/// A chunk on its way through the zone actors: its answers come back in parts, one from
/// each zone that answered some of its orders.
pub struct Pending {
    answers: Arc<Answers>,
    /// The `invalid` answers, made by the worker itself.
    local: Option<Part>,
    first_line: u64,
    lines: usize,
}

impl Pending {
    /// The chunk's answers, in input order. A line no zone answered (a zone actor stopped before
    /// deciding it: nothing was reserved for it) is answered `unavailable`.
    pub async fn answer(mut self) -> BatchAnswer {
        let mut parts = self.answers.gather().await;
        parts.extend(self.local.take());
        if let Some(last) = parts.iter().map(|part| part.made).max() {
            router_metrics::stage_latency(Stage::Answer).record(last.elapsed().as_secs_f64());
        }
        let answer = assemble(parts, self.first_line, self.lines);
        router_metrics::record_tally(&answer.tally);
        answer
    }
}

/// Puts the parts' answers in input order (one copy each, unless one part holds them all in
/// order already).
fn assemble(parts: Vec<Part>, first_line: u64, lines: usize) -> BatchAnswer {
    let mut tally = Tally::default();
    for part in &parts {
        tally.add(&part.tally);
    }
    if let [part] = parts.as_slice()
        && part.slots.len() == lines
        && part
            .slots
            .iter()
            .enumerate()
            .all(|(index, slot)| slot.0 as usize == index)
    {
        return BatchAnswer {
            bytes: part.bytes.clone(),
            tally,
        };
    }
    const NONE: (u32, u32, u32) = (u32::MAX, 0, 0);
    let mut places = vec![NONE; lines];
    let mut size = 0;
    for (number, part) in parts.iter().enumerate() {
        size += part.bytes.len();
        for &(index, start, end) in &part.slots {
            places[index as usize] = (number as u32, start, end);
        }
    }
    let mut bytes = Vec::with_capacity(size);
    for (index, (part, start, end)) in places.into_iter().enumerate() {
        if part == u32::MAX {
            let invalid = Invalid::new(
                InvalidCode::Unavailable,
                "a zone actor is not running; nothing was decided",
            );
            crate::render::write_invalid(&mut bytes, first_line + index as u64, &invalid);
        } else {
            let part = &parts[part as usize];
            bytes.extend_from_slice(&part.bytes[start as usize..end as usize]);
        }
    }
    BatchAnswer {
        bytes: Bytes::from(bytes),
        tally,
    }
}

impl App {
    /// Admits one parsed chunk (waiting as long as it takes) and hands it to the zone actors.
    pub async fn enqueue(&self, batch: Vec<Parsed>, network: Arc<Network>) -> Pending {
        let priority = batch_priority(&network, &self.catalog, &batch);
        let permit = self.admission.admit(batch.len(), priority).await;
        self.send_admitted(batch, network, permit)
    }

    /// Hands an admitted chunk to the zone actors, one message per home zone; they decide
    /// it and give its permits back whether or not anyone still waits for the answer.
    /// `invalid` lines are answered here.
    pub fn send_admitted(
        &self,
        batch: Vec<Parsed>,
        network: Arc<Network>,
        permit: Permit,
    ) -> Pending {
        // Lines of a chunk are numbered consecutively.
        let (first_line, lines) = (batch.first().map_or(1, |(number, _)| *number), batch.len());
        let mut invalid_bytes = Vec::new();
        // Sized by each zone's share of the chunk's home regions (where an order goes
        // unless its id was seen before): a visit is a few hundred bytes, and a Vec grown
        // by doubling copies them again at each step.
        let mut homes = vec![0usize; self.zones.len()];
        // Each id's claims key, worked out first: claiming starts loading the table's place
        // of the order a few lines ahead (the table outgrows the caches; `Claims::prefetch`).
        let claims = &self.zones.claims;
        let keys: Vec<ClaimKey> = batch
            .iter()
            .filter_map(|(_, parsed)| parsed.as_ref().ok())
            .map(|order| {
                homes[network.regions[order.region.index()].zone.index()] += 1;
                claims.key(&order.id)
            })
            .collect();
        for key in keys.iter().take(PREFETCH_AHEAD) {
            claims.prefetch(key);
        }
        let mut by_zone: Vec<Vec<Visit>> = homes.into_iter().map(Vec::with_capacity).collect();
        let mut local = Part {
            bytes: Bytes::new(),
            slots: Vec::new(),
            tally: Tally::default(),
            made: Instant::now(),
        };
        let mut local_invalid = |index: usize, line: u64, invalid: &Invalid| {
            let start = invalid_bytes.len() as u32;
            crate::render::write_invalid(&mut invalid_bytes, line, invalid);
            local
                .slots
                .push((index as u32, start, invalid_bytes.len() as u32));
            local.tally.lines += 1;
            local.tally.count_invalid(invalid.code);
        };
        // Ids are claimed here, line by line: the first line with an id is the original,
        // whatever the zone threads do next. A conflict is answered by the zone holding
        // the original (after the original is durable).
        let mut keys_taken = 0;
        for (index, (line, parsed)) in batch.into_iter().enumerate() {
            match parsed {
                Ok(order) => {
                    if let Some(ahead) = keys.get(keys_taken + PREFETCH_AHEAD) {
                        claims.prefetch(ahead);
                    }
                    let key = keys[keys_taken];
                    keys_taken += 1;
                    let (zone, visit) = admit(claims, &network, order, key, index as u32, line);
                    by_zone[zone.index()].push(visit);
                }
                Err(invalid) => local_invalid(index, line, &invalid),
            }
        }
        // The zones answer every line the worker did not.
        let answers = Answers::new(lines - local.slots.len());
        let ticket = Ticket::new(permit, answers.clone());
        let sent = Instant::now();
        for (zone, visits) in by_zone.into_iter().enumerate() {
            if visits.is_empty() {
                continue;
            }
            let visits = Visits {
                network: network.clone(),
                ticket: ticket.clone(),
                visits,
                sent,
            };
            self.zones.send(ZoneId(zone as u16), visits);
        }
        local.bytes = Bytes::from(invalid_bytes);
        Pending {
            answers,
            local: (!local.slots.is_empty()).then_some(local),
            first_line,
            lines,
        }
    }

    /// Asks every zone actor the same question; `None` if one of them is not running.
    pub async fn ask_every_zone<M>(&self, request: impl Fn() -> M) -> Option<Vec<M::Result>>
    where
        M: actix::Message + Send + 'static,
        M::Result: Send,
        ZoneActor: actix::Handler<M>,
    {
        let answers = futures_util::future::join_all(
            self.zones.all().iter().map(|zone| zone.send(request())),
        )
        .await;
        answers.into_iter().collect::<Result<Vec<_>, _>>().ok()
    }
}
