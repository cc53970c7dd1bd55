//! An order's journey along its zone chain, as steps taken in one zone at a time.
//!
//! Each zone has one writer (in the service, an actor, `crate::serve::zone_actor`; in
//! `route`, the one thread), so deciding is a journey: the order arrives at its home zone,
//! which tries to place it; a zone that cannot place it whole passes it to the next zone of
//! the chain; when every zone has failed, it goes back home to be backordered or rejected
//! ([`super::verdict::settle`]). Each step here reads and writes one zone's state only, so a
//! zone's state needs no lock. [`admit`] is the step before: the ingest worker claims the id
//! ([`super::Claims`]) and picks the first zone.
//!
//! **Duplicates and conflicts.** An order whose id is claimed already is a retry of the
//! order that claimed it (a duplicate: answered the stored decision again) or another order
//! with the same id (a conflict: answered `id_conflict`). The claims table does not keep
//! what an order held ([`super::Claim`]): the zone holding the record tells the two apart by
//! the record's content hash, when the copy reaches it. A duplicate has the same content,
//! hence the same home and the same chain as its original. When it finds the original's
//! claim still pending, the original is on its way along the chain ahead of it: the
//! duplicate follows the same chain (without planning) and, since each zone passes orders
//! on in the order it took them, finds the decision in the zone that made it. A conflict
//! may have another home; it follows its own chain the same way, and a copy that ends at
//! home with the claim still pending (so does a duplicate after a reload that changed the
//! fallbacks between the two) waits there ([`Step::Wait`]) until the original is decided,
//! then goes to the zone holding it.

use super::verdict::{Screen, commit, settle};
use super::{Claim, ClaimKey, Claims, Zone, ZoneError};
use crate::config::Network;
use crate::engine::{self, Failures, OrderContext, OrderFacts, ZoneAttempt};
use crate::ids::ZoneId;
use crate::model::{Decision, Invalid, InvalidCode, Order, Status};
use crate::render;
use crate::risk::Buyer;
use crate::time::Millis;

/// An order on its way: where it is in its chain and what it carries from the zones behind.
#[derive(Debug)]
pub struct Visit {
    /// Its position in the chunk it came in (its answer's place).
    pub index: u32,
    /// Its line number in the stream (for an `invalid` answer).
    pub line: u64,
    pub order: Order,
    pub leg: Leg,
    /// The key of its id in the claims table, computed once at admission.
    pub key: ClaimKey,
    /// What the engine derives from the order alone ([`OrderFacts`]): computed by the first
    /// zone that tries to place it, reused by the zones after. Every zone of the journey
    /// decides it under the snapshot its chunk was parsed with, and the zones share one
    /// catalogue, so the facts hold all the way.
    pub facts: Option<OrderFacts>,
}

impl Visit {
    /// A new order's visit, before any zone tried it. Inlined, so a visit pushed onto a
    /// batch is built in its place ([`admit_into`]).
    #[inline(always)]
    fn new(index: u32, line: u64, order: Order, leg: Leg, key: ClaimKey) -> Visit {
        Visit {
            index,
            line,
            order,
            leg,
            key,
            facts: None,
        }
    }
}

/// The leg of the journey a [`Visit`] is on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Leg {
    /// At `position` in the home zone's chain (0 = home, 1 = the first fallback), with the
    /// failures of the zones before.
    Fallback { position: u16, failures: Failures },
    /// Back at home after every zone failed: backorder or reject.
    Settle { failures: Failures },
    /// A copy of a claimed id (a duplicate or a conflict) following its pending original:
    /// at `position` in its chain, or back at home once `position` is the chain's length.
    Follow { position: u16 },
    /// At the zone holding the decision: answered again as a duplicate, or `id_conflict`
    /// when the record's content is not the copy's.
    Replay,
}

/// How a visit was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A new decision (it goes on the decision feed and into the journal), and its record's
    /// slot in the zone.
    Decided(Status, u32),
    Duplicate,
    Invalid(InvalidCode),
}

/// Where a new line's order goes first: to this zone, as this visit.
pub type Admitted = (ZoneId, Visit);

/// Claims the id of `order` (line `line`, at `index` in its chunk) and says where it goes:
/// a new id to its home zone; a copy of a claimed id (a duplicate or a conflict) to the
/// zone holding the decision (or, while the original is on its way, after it along its
/// chain), to be answered there (through that zone's journal queue, so never before the
/// original is durable: a crash would otherwise free an id whose conflict was already
/// answered). Called by the ingest worker, in input order.
///
/// `key` is `claims.key(&order.id)`, worked out by the caller: a loop over a chunk makes
/// the keys first, to start loading each id's place in the claims table a few orders ahead
/// ([`Claims::prefetch`]).
pub fn admit(
    claims: &Claims,
    network: &Network,
    order: Order,
    mut key: ClaimKey,
    index: u32,
    line: u64,
) -> Admitted {
    debug_assert_eq!(key, claims.key(&order.id), "the key of the order's own id");
    let (to, leg) = claim_leg(claims, network, &order, &mut key);
    (to, Visit::new(index, line, order, leg, key))
}

/// [`admit`], with the visit pushed onto `visits` (built there, not moved there: a visit is
/// a few hundred bytes); the zone it goes to first. `route` keeps its one visit in place
/// this way from admission to answer.
#[inline]
pub fn admit_into(
    claims: &Claims,
    network: &Network,
    order: Order,
    index: u32,
    line: u64,
    visits: &mut Vec<Visit>,
) -> ZoneId {
    let (to, leg, key) = first_stop(claims, network, &order);
    visits.push(Visit::new(index, line, order, leg, key));
    to
}

/// Claims the id of `order`: its first zone, the leg it starts on, its claims key.
fn first_stop(claims: &Claims, network: &Network, order: &Order) -> (ZoneId, Leg, ClaimKey) {
    let mut key = claims.key(&order.id);
    let (to, leg) = claim_leg(claims, network, order, &mut key);
    (to, leg, key)
}

/// Claims the id of `order` under `key`: the zone it goes to and the leg it takes there.
fn claim_leg(
    claims: &Claims,
    network: &Network,
    order: &Order,
    key: &mut ClaimKey,
) -> (ZoneId, Leg) {
    let home = network.regions[order.region.index()].zone;
    match claims.claim(key, home) {
        None => (
            home,
            Leg::Fallback {
                position: 0,
                failures: Failures::default(),
            },
        ),
        Some(claim) if claim.is_decided() => (claim.zone, Leg::Replay),
        Some(_) => (home, Leg::Follow { position: 0 }),
    }
}

/// The `id_conflict` of `order`.
pub fn conflict(order: &Order) -> Invalid {
    Invalid {
        code: InvalidCode::IdConflict,
        message: format!(
            "order '{}' was already received with different content",
            order.id
        ),
        order_id: Some(order.id.clone()),
    }
}

/// The `unavailable` of a copy of `order` whose original's record cannot be read.
fn unreadable(order: &Order, problem: &ZoneError) -> Invalid {
    Invalid {
        code: InvalidCode::Unavailable,
        message: format!(
            "order '{}' was decided before, but {problem}; nothing was reserved: send it \
             again later",
            order.id
        ),
        order_id: Some(order.id.clone()),
    }
}

/// What became of a visit in one zone.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Step {
    /// Its answer was appended to the output.
    Answered(Outcome),
    /// It goes on to this zone (its leg updated).
    Forward(ZoneId),
    /// A duplicate whose original is not decided yet: look again a little later, here.
    Wait,
}

impl Zone {
    /// Takes `visit` one step, under `network` (the snapshot its chunk was parsed with) at
    /// `now`, updating it for its next step if it has one (the caller moves it on, once).
    /// An answer is appended to `out` as a JSON line.
    #[inline]
    pub fn visit(
        &mut self,
        network: &Network,
        visit: &mut Visit,
        now: Millis,
        out: &mut Vec<u8>,
    ) -> Step {
        let home = network.regions[visit.order.region.index()].zone;
        if let Leg::Fallback { .. } | Leg::Settle { .. } = visit.leg {
            return self.place(network, visit, home, now, out);
        }
        let chain = network.zones[home.index()].fallback.len() + 1;
        // A duplicate or a conflict: its id was claimed before it was admitted.
        let Some(claim) = self.claims.get_key(visit.key) else {
            // The original left the retention window while this copy was on its way (its
            // claim was released): the id is free, and this order takes it as a new one
            // arriving now would.
            let (to, leg) = claim_leg(&self.claims, network, &visit.order, &mut visit.key);
            visit.leg = leg;
            if to != self.state.zone {
                return Step::Forward(to);
            }
            // Claimed now, so the next step finds the claim (or places the order).
            return self.visit(network, visit, now, out);
        };
        match visit.leg {
            Leg::Follow { position } => {
                self.claimed(network, visit, claim, position.into(), chain, out)
            }
            Leg::Replay => self.claimed(network, visit, claim, chain, chain, out),
            Leg::Fallback { .. } | Leg::Settle { .. } => unreachable!("placed above"),
        }
    }

    /// Tries to place the order here (and at every next stop of its chain that is this zone
    /// too); passes it on to the next zone of its chain, or home to settle once the chain
    /// is exhausted; settles it when it is home for that.
    fn place(
        &mut self,
        network: &Network,
        visit: &mut Visit,
        home: ZoneId,
        now: Millis,
        out: &mut Vec<u8>,
    ) -> Step {
        let here = self.state.zone;
        let Visit {
            order,
            leg,
            key,
            facts,
            ..
        } = visit;
        let facts = facts.get_or_insert_with(|| OrderFacts::new(order, network, &self.catalog));
        let context = OrderContext::new(order, facts, network, now);
        loop {
            match *leg {
                Leg::Fallback {
                    position,
                    mut failures,
                } => {
                    match engine::plan_zone(&context, &self.state, &mut self.scratch) {
                        ZoneAttempt::Placed(plan) => {
                            let mut buyer = Buyer::of(order);
                            let screen = Screen {
                                catalog: &self.catalog,
                                book: &self.customers,
                                buyer: &mut buyer,
                            };
                            let decision = commit(&context, &mut self.state, plan, None, screen);
                            return self.decided(network, *key, order, decision, buyer, out);
                        }
                        ZoneAttempt::Failed(zone_failures) => failures.merge(&zone_failures),
                    }
                    let next = usize::from(position) + 1;
                    let to = network.zone_order(home).nth(next);
                    *leg = match to {
                        Some(_) => Leg::Fallback {
                            position: next as u16,
                            failures,
                        },
                        None => Leg::Settle { failures },
                    };
                    let to = to.unwrap_or(home);
                    if to != here {
                        return Step::Forward(to);
                    }
                }
                Leg::Settle { failures } => {
                    debug_assert_eq!(here, home, "an order settles at its home zone");
                    let mut buyer = Buyer::of(order);
                    let screen = Screen {
                        catalog: &self.catalog,
                        book: &self.customers,
                        buyer: &mut buyer,
                    };
                    let (state, scratch) = (&mut self.state, &mut self.scratch);
                    let decision = settle(&context, state, failures, scratch, screen);
                    return self.decided(network, *key, order, decision, buyer, out);
                }
                _ => unreachable!("only orders on their way to a decision are placed"),
            }
        }
    }

    /// Records a new decision made here for `order` (claimed under `key`), settles its
    /// claim and renders it.
    fn decided(
        &mut self,
        network: &Network,
        key: ClaimKey,
        order: &Order,
        decision: Decision,
        buyer: Buyer,
        out: &mut Vec<u8>,
    ) -> Step {
        let status = decision.status;
        if network.policy.risk.checks_quantities() {
            self.state.count_usual(&decision);
        }
        let slot = self.state.record(decision, order.content_hash, buyer);
        let place = self.claims.settle(key, self.state.zone, slot);
        self.state.set_claim(slot, place);
        let record = self.state.hot(slot).expect("decided just now");
        render::write_decision(out, &record.decision, false, network, &self.catalog);
        Step::Answered(Outcome::Decided(status, slot))
    }

    /// `visit` is a copy of the id that holds `claim`: answered here (a duplicate when the
    /// record's content is the copy's, else `id_conflict`), or where the record is, or (the
    /// original still on its way) following it from `position` in the chain of length
    /// `chain`.
    fn claimed(
        &self,
        network: &Network,
        visit: &mut Visit,
        claim: Claim,
        position: usize,
        chain: usize,
        out: &mut Vec<u8>,
    ) -> Step {
        let here = self.state.zone;
        if claim.is_decided() {
            if claim.zone == here {
                let record = match self.state.find(claim.slot) {
                    Ok(record) => record,
                    Err(problem) => {
                        // A closed record on disk that cannot be read (a disk error, a
                        // file damaged under it): this copy is answered so, and the zone
                        // goes on; nothing is reserved, and the original stays as it was.
                        let invalid = unreadable(&visit.order, &problem);
                        tracing::warn!("zone {}: {}", network.zone_name(here), invalid.message);
                        render::write_invalid(out, visit.line, &invalid);
                        return Step::Answered(Outcome::Invalid(InvalidCode::Unavailable));
                    }
                };
                if record.content_hash != visit.order.content_hash {
                    render::write_invalid(out, visit.line, &conflict(&visit.order));
                    return Step::Answered(Outcome::Invalid(InvalidCode::IdConflict));
                }
                render::write_decision(out, &record.decision, true, network, &self.catalog);
                return Step::Answered(Outcome::Duplicate);
            }
            visit.leg = Leg::Replay;
            return Step::Forward(claim.zone);
        }
        // The original is still on its way, ahead of this copy on the same chain.
        let home = network.regions[visit.order.region.index()].zone;
        if position >= chain {
            visit.leg = Leg::Follow {
                position: chain as u16,
            };
            return Step::Wait;
        }
        let next = position + 1;
        let to = network.zone_order(home).nth(next).unwrap_or(home);
        visit.leg = Leg::Follow {
            position: next as u16,
        };
        Step::Forward(to)
    }
}
#[cfg(test)]
mod tests {
    use super::super::test_world::*;
    use super::*;
    use crate::route::Router;
    use crate::zone::{Decided, decide};
    use std::collections::VecDeque;

    /// Admits the orders in order and delivers every visit, one at a time from per-zone
    /// FIFO mailboxes, through [`decide`] as the zone actors do; `pick(n)` chooses what happens next among admitting the next order
    /// (choice 0, while any are left) and the busy mailboxes. Each answer line by index.
    fn run(
        world: &World,
        zones: &mut [Zone],
        orders: Vec<Order>,
        mut pick: impl FnMut(usize) -> usize,
    ) -> Vec<String> {
        let mut mailboxes: Vec<VecDeque<Visit>> =
            (0..zones.len()).map(|_| VecDeque::new()).collect();
        let claims = zones[0].claims.clone();
        let mut answers = vec![String::new(); orders.len()];
        let mut orders = orders.into_iter().enumerate().peekable();
        loop {
            let busy: Vec<usize> = (0..zones.len())
                .filter(|zone| !mailboxes[*zone].is_empty())
                .collect();
            let admitting = usize::from(orders.peek().is_some());
            if busy.is_empty() && admitting == 0 {
                return answers;
            }
            let choice = pick(busy.len() + admitting);
            if choice < admitting {
                let (index, order) = orders.next().unwrap();
                let line = index as u64 + 1;
                let key = claims.key(&order.id);
                let (zone, visit) = admit(&claims, &world.network, order, key, index as u32, line);
                mailboxes[zone.index()].push_back(visit);
                continue;
            }
            // One message: the zone takes one visit through the batch decision.
            let zone = busy[choice - admitting];
            let mut visits = vec![mailboxes[zone].pop_front().unwrap()];
            let (mut out, mut decided) = (Vec::new(), Decided::new(true));
            decide(
                &mut zones[zone],
                &world.network,
                &mut visits,
                Millis(0),
                &mut out,
                &mut decided,
            );
            for answer in &decided.answers {
                let line = &out[answer.start as usize..answer.end as usize];
                answers[answer.index as usize] = String::from_utf8(line.to_vec()).unwrap();
            }
            let onward = decided.onward(&mut visits);
            for (to, visits) in onward.forwards {
                mailboxes[to.index()].extend(visits);
            }
            mailboxes[zone].extend(onward.waiting);
        }
    }

    fn json(line: &str) -> serde_json::Value {
        serde_json::from_str(line).unwrap()
    }

    #[test]
    fn an_order_goes_to_the_fallback_that_holds_the_stock_and_is_found_there_again() {
        let world = world("warehouse,sku,on_hand\nWS,A,5\n");
        let mut zones = zones(&world);
        let first = order(&world, "o1", "N", "A", 2);
        let retry = order(&world, "o1", "N", "A", 2);
        let answers = run(&world, &mut zones, vec![first, retry], |_| 0);
        let (first, retry) = (json(&answers[0]), json(&answers[1]));
        assert_eq!(first["status"], "routed");
        assert_eq!(first["zone"], "south");
        assert_eq!(retry["duplicate"], true);
        assert_eq!(retry["seq"], first["seq"]);
        let cell = zones[1].state().cell(0, crate::ids::SkuId(0));
        assert_eq!(cell.reserved, 2, "the retry reserved nothing more");
    }

    #[test]
    fn a_retry_with_another_region_is_an_id_conflict_wherever_it_lands() {
        let world = world("warehouse,sku,on_hand\nWS,A,5\nWN,A,5\n");
        let mut zones = zones(&world);
        // Whichever zone thread runs first, the first line is the original.
        let first = order(&world, "o1", "S", "A", 1);
        let moved = order(&world, "o1", "N", "A", 1);
        let answers = run(&world, &mut zones, vec![first, moved], |choices| {
            choices - 1
        });
        assert_eq!(json(&answers[0])["status"], "routed");
        let conflict = json(&answers[1]);
        assert_eq!(conflict["status"], "invalid");
        assert_eq!(conflict["error"]["code"], "id_conflict");
        assert_eq!(conflict["line"], 2);
    }

    #[test]
    fn a_duplicate_whose_original_left_the_window_on_its_way_is_decided_as_new() {
        let world = world("warehouse,sku,on_hand\nWS,A,5\n");
        let mut zones = zones(&world);
        let claims = zones[0].claims().clone();
        let original = order(&world, "o1", "S", "A", 1);
        let (home, mut visit) = admit(
            &claims,
            &world.network,
            original.clone(),
            claims.key("o1"),
            0,
            1,
        );
        let mut out = Vec::new();
        let step = zones[home.index()].visit(&world.network, &mut visit, Millis(1_000), &mut out);
        let Step::Answered(Outcome::Decided(_, slot)) = step else {
            panic!("{step:?}")
        };
        zones[home.index()]
            .close(slot, crate::zone::Lifecycle::Cancelled)
            .unwrap();
        // A retry is admitted as the original's duplicate ...
        let (to, mut retry) = admit(&claims, &world.network, original, claims.key("o1"), 1, 2);
        assert_eq!(to, home);
        assert!(matches!(retry.leg, Leg::Replay));
        // ... and the original leaves with the window before the retry is taken.
        zones[home.index()].expire(Millis(1_000_000));
        assert!(claims.get("o1").is_none());
        out.clear();
        let step =
            zones[home.index()].visit(&world.network, &mut retry, Millis(1_000_001), &mut out);
        let Step::Answered(Outcome::Decided(_, again)) = step else {
            panic!("{step:?}")
        };
        assert_ne!(again, slot);
        let answer = json(std::str::from_utf8(&out).unwrap());
        assert_eq!(answer["status"], "routed");
        assert!(answer.get("duplicate").is_none(), "{answer}");
        assert_eq!(claims.get("o1").map(|claim| claim.slot), Some(again));
    }

    /// The zones after an order for 3 of A to the north, with `stock`, and its answer.
    fn three_of_a_to_the_north(stock: &str) -> (Vec<Zone>, serde_json::Value) {
        let world = world(stock);
        let mut zones = zones(&world);
        let wanting = order(&world, "o1", "N", "A", 3);
        let answers = run(&world, &mut zones, vec![wanting], |_| 0);
        let answer = json(&answers[0]);
        (zones, answer)
    }

    #[test]
    fn an_order_no_zone_can_place_whole_is_backordered_at_home() {
        // The north holds 1, the south 1.
        let (zones, answer) = three_of_a_to_the_north("warehouse,sku,on_hand\nWS,A,1\nWN,A,1\n");
        assert_eq!(answer["status"], "backordered");
        assert_eq!(answer["zone"], "north");
        assert_eq!(answer["shipments"][0]["warehouse"], "WN");
        assert_eq!(answer["shipments"][0]["lines"][0]["qty"], 1);
        assert_eq!(answer["backordered"][0]["qty"], 2);
        assert_eq!(answer["reason"]["code"], "no_stock");
        let sku = crate::ids::SkuId(0);
        assert_eq!(
            zones[0].state().cell(0, sku).reserved,
            1,
            "the home zone reserved its unit"
        );
        assert_eq!(
            zones[1].state().cell(0, sku).reserved,
            0,
            "the fallback reserved nothing"
        );
    }

    #[test]
    fn an_order_no_zone_can_place_at_all_is_rejected_at_home_reserving_nothing() {
        // Only the south holds any, and not enough.
        let (zones, answer) = three_of_a_to_the_north("warehouse,sku,on_hand\nWS,A,1\n");
        assert_eq!(answer["status"], "rejected");
        assert_eq!(answer["zone"], "north");
        assert_eq!(answer["reason"]["code"], "no_stock");
        assert_eq!(answer["shipments"], serde_json::json!([]));
        let sku = crate::ids::SkuId(0);
        assert_eq!(zones[1].state().cell(0, sku).reserved, 0);
    }

    /// Duplicates of an order still on its way (in any delivery order across zones) find
    /// its decision; every answer equals what the one-thread router gives.
    #[test]
    fn every_interleaving_answers_as_the_one_thread_router_does() {
        let world = world("warehouse,sku,on_hand\nWS,A,4\nWN,B,4\n");
        // "a!" is "a" shipped elsewhere: an id conflict, whichever zone runs first.
        let ids = ["a", "b", "a", "c", "a!", "b", "a", "d", "c"];
        let make = |world: &World| -> Vec<Order> {
            ids.iter()
                .map(|id| {
                    let (region, sku) = match *id {
                        "a" => ("N", "A"),
                        "a!" => ("S", "A"),
                        "b" => ("S", "B"),
                        "c" => ("N", "B"),
                        _ => ("S", "A"),
                    };
                    order(world, id.trim_end_matches('!'), region, sku, 1)
                })
                .collect()
        };
        let mut router = Router::new(world.network.clone(), world.catalog.clone(), &world.stock);
        let expected: Vec<serde_json::Value> = make(&world)
            .into_iter()
            .map(|order| {
                let mut out = Vec::new();
                router.answer(order, 1, Millis(0), &mut out);
                json(std::str::from_utf8(&out).unwrap())
            })
            .collect();
        for seed in 0..64u64 {
            let mut zones = zones(&world);
            let mut state = seed;
            let answers = run(&world, &mut zones, make(&world), |choices| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 33) as usize % choices
            });
            for (answer, expected) in answers.iter().zip(&expected) {
                let answer = json(answer);
                assert_eq!(answer["order_id"], expected["order_id"], "seed {seed}");
                assert_eq!(answer["status"], expected["status"], "seed {seed}");
                assert_eq!(answer["zone"], expected["zone"], "seed {seed}");
                assert_eq!(answer["shipments"], expected["shipments"], "seed {seed}");
                assert_eq!(answer["duplicate"], expected["duplicate"], "seed {seed}");
            }
        }
    }
}
