//! Order-id claims: which zone holds each order's record, shared by every zone.
//!
//! An order's home zone follows from its content (the region), so a retry with another
//! region (an `id_conflict`) arrives at another home, and only a table of every id catches
//! it. An id is claimed by the ingest worker ([`super::admit`]), line by line in input order,
//! before its chunk goes to the zones: the first line with an id is the original whatever the
//! zone threads do next. The claim names the zone and slot of the record once there is one.
//! `route` uses the same table from one thread.

use crate::ids::ZoneId;
use hashbrown::HashTable;
use std::sync::{Mutex, MutexGuard};

/// Where an order id's record is, and the content it was claimed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    pub content_hash: u64,
    /// The zone holding the record; while pending, the home zone that claimed it.
    pub zone: ZoneId,
    /// The record's slot in that zone, or [`Claim::PENDING`].
    pub slot: u32,
}

/// The key of an order id in one [`Claims`] table ([`Claims::key`]): computed once when the
/// order is admitted, and carried with its visit so that settling its claim does not hash
/// the id again, nor look it up: [`Claims::claim`] notes where the claim stands in its
/// segment. Valid only for the table that made it (the hash is seeded per table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClaimKey {
    hash: u128,
    /// The claim's place in its segment's `claims`, once [`Claims::claim`] has run.
    at: u32,
}

impl Claim {
    /// The slot of a claim whose order is still on its way along its chain.
    pub const PENDING: u32 = u32::MAX;

    pub fn is_decided(&self) -> bool {
        self.slot != Claim::PENDING
    }
}

/// Every order id the router has taken, across zones.
///
/// A table split into [`crate::limits::CLAIMS_SEGMENTS`] independently locked segments
/// rather than a claims actor: a claim is two short critical sections per order (claim,
/// then settle) on one segment, which two zone threads almost never contend for, against
/// an extra message hop per order for an actor.
///
/// Each segment keeps its claims in a vector, in the order they were made, and an index
/// (a `hashbrown` table of positions) from key to place. Claiming probes the index once;
/// settling goes straight to the place the key carries ([`ClaimKey`]), no probe: the claims
/// an order settles were made a moment before, at the vector's warm end, where a hash
/// table's buckets would be anywhere (a `dashmap` did a second probe there, about 11% of
/// the service's time by `perf` with the cache misses, docs/benchmarks.md).
///
/// Keyed by a 128-bit hash of the id (XXH3-128 under a per-process random seed), not the id
/// itself: a claim is 32 bytes, and the table, which outgrows the caches after a few
/// hundred thousand orders, costs fewer cache misses per order (measured against the
/// id-keyed table in `docs/benchmarks.md`). Two distinct ids share a key with a
/// probability of about n^2 / 2^129 (1e-19 at ten billion ids), far below the rate of
/// undetected memory errors; the random seed, which never leaves the process, keeps a
/// client from crafting a pair. The content hash of an order rests on the same argument.
/// The records hold the ids themselves.
pub struct Claims {
    segments: Box<[crossbeam::utils::CachePadded<Mutex<Segment>>]>,
    /// The seed of the id hash, random per process (the keys are never stored).
    seed: u64,
}

/// One segment: its claims in the order made, and the index from key to place.
#[derive(Default)]
struct Segment {
    claims: Vec<(u128, Claim)>,
    index: HashTable<u32>,
}

impl Segment {
    /// The place of `hash`'s claim, if there is one.
    fn find(&self, hash: u128) -> Option<u32> {
        let claims = &self.claims;
        self.index
            .find(hash as u64, |at| claims[*at as usize].0 == hash)
            .copied()
    }

    /// Adds a claim that is not there; its place.
    fn push(&mut self, hash: u128, claim: Claim) -> u32 {
        let at = u32::try_from(self.claims.len()).expect("fewer than 2^32 claims a segment");
        self.claims.push((hash, claim));
        let claims = &self.claims;
        self.index
            .insert_unique(hash as u64, at, |at| claims[*at as usize].0 as u64);
        at
    }
}

impl Default for Claims {
    fn default() -> Self {
        Claims {
            segments: (0..crate::limits::CLAIMS_SEGMENTS)
                .map(|_| Default::default())
                .collect(),
            seed: rand::random(),
        }
    }
}

impl Claims {
    /// The key of order `id` in this table.
    #[inline]
    pub fn key(&self, id: &str) -> ClaimKey {
        ClaimKey {
            hash: xxhash_rust::xxh3::xxh3_128_with_seed(id.as_bytes(), self.seed),
            at: u32::MAX,
        }
    }

    /// The segment of a key: its high bits (the low ones place it in the segment's index).
    fn segment(&self, hash: u128) -> MutexGuard<'_, Segment> {
        let segment = (hash >> 64) as usize % crate::limits::CLAIMS_SEGMENTS;
        self.segments[segment]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Claims the id of `key` for an order with `content_hash` at its `home` zone, noting in
    /// `key` where the id's claim stands. `None` when the id is now this order's; the
    /// existing claim when it was taken before.
    pub fn claim(&self, key: &mut ClaimKey, content_hash: u64, home: ZoneId) -> Option<Claim> {
        let mut segment = self.segment(key.hash);
        if let Some(at) = segment.find(key.hash) {
            key.at = at;
            return Some(segment.claims[at as usize].1);
        }
        let claim = Claim {
            content_hash,
            zone: home,
            slot: Claim::PENDING,
        };
        key.at = segment.push(key.hash, claim);
        None
    }

    /// Records where the claimed order of `key` was decided.
    pub fn settle(&self, key: ClaimKey, zone: ZoneId, slot: u32) {
        let mut segment = self.segment(key.hash);
        let (hash, claim) = segment
            .claims
            .get_mut(key.at as usize)
            .expect("an order is claimed before it is decided");
        debug_assert_eq!(*hash, key.hash, "a key settles its own claim");
        debug_assert!(!claim.is_decided(), "an order is decided once");
        claim.zone = zone;
        claim.slot = slot;
    }

    /// The claim of order `id`.
    pub fn get(&self, id: &str) -> Option<Claim> {
        self.get_key(self.key(id))
    }

    /// The claim of the order id of `key` (straight from its place when `key` was claimed).
    pub fn get_key(&self, key: ClaimKey) -> Option<Claim> {
        let segment = self.segment(key.hash);
        let at = match segment.claims.get(key.at as usize) {
            Some((hash, _)) if *hash == key.hash => key.at,
            _ => segment.find(key.hash)?,
        };
        Some(segment.claims[at as usize].1)
    }

    /// Puts back the claim of a decision replayed from a journal.
    pub fn restore(&self, id: &str, content_hash: u64, zone: ZoneId, slot: u32) {
        let hash = self.key(id).hash;
        let claim = Claim {
            content_hash,
            zone,
            slot,
        };
        let mut segment = self.segment(hash);
        match segment.find(hash) {
            Some(at) => segment.claims[at as usize].1 = claim,
            None => {
                segment.push(hash, claim);
            }
        }
    }

    /// Ids claimed.
    pub fn len(&self) -> usize {
        self.segments
            .iter()
            .map(|segment| segment.lock().map_or(0, |segment| segment.claims.len()))
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_claimed_once_then_settled_where_it_was_decided() {
        let claims = Claims::default();
        let mut key = claims.key("o1");
        assert_eq!(claims.claim(&mut key, 7, ZoneId(0)), None);
        let pending = claims.get("o1").unwrap();
        assert!(!pending.is_decided());
        assert_eq!((pending.zone, pending.content_hash), (ZoneId(0), 7));
        // A second claim of the same id, whatever its content, finds the first.
        let mut again = claims.key("o1");
        assert_eq!(claims.claim(&mut again, 9, ZoneId(1)), Some(pending));
        assert_eq!(again, key, "both keys know the claim's place");
        claims.settle(key, ZoneId(2), 5);
        let decided = claims.get("o1").unwrap();
        assert!(decided.is_decided());
        assert_eq!(
            (decided.zone, decided.slot, decided.content_hash),
            (ZoneId(2), 5, 7)
        );
        assert_eq!(claims.get_key(key), Some(decided));
        assert_eq!(claims.len(), 1);
        assert!(claims.get("o2").is_none());
    }
}
