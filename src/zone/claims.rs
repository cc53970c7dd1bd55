//! Order-id claims: which zone holds each order's record, shared by every zone.
//!
//! An order's home zone follows from its content (the region), so a retry with another
//! region (an `id_conflict`) arrives at another home, and only a table of every id catches
//! it. An id is claimed by the ingest worker ([`super::admit`]), line by line in input order,
//! before its chunk goes to the zones: the first line with an id is the original whatever the
//! zone threads do next. The claim names the zone and slot of the record once there is one.
//! `route` uses the same table from one thread.

use crate::ids::ZoneId;
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use std::hash::{BuildHasherDefault, Hasher};

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
/// the id again. Valid only for the table that made it (the hash is seeded per table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClaimKey(u128);

impl Claim {
    /// The slot of a claim whose order is still on its way along its chain.
    pub const PENDING: u32 = u32::MAX;

    pub fn is_decided(&self) -> bool {
        self.slot != Claim::PENDING
    }
}

/// Every order id the router has taken, across zones.
///
/// A `DashMap` (a hash map split into independently locked segments) rather than a claims
/// actor: a claim is two short critical sections per order (claim, then settle) on one of
/// [`crate::limits::CLAIMS_SEGMENTS`] segments, which two zone threads almost never contend
/// for, against an extra message hop per order for an actor.
///
/// Keyed by a 128-bit hash of the id (XXH3-128 under a per-process random seed), not the id
/// itself: an entry is 32 bytes instead of 48, and the table, which outgrows the caches
/// after a few hundred thousand orders, costs a quarter fewer cache misses per order
/// (measured against the id-keyed table in `docs/benchmarks.md`). Two distinct ids share a
/// key with a probability of about n^2 / 2^129 (1e-19 at ten billion ids), far below the
/// rate of undetected memory errors; the random seed, which never leaves the process, keeps
/// a client from crafting a pair. The content hash of an order rests on the same argument.
/// The records hold the ids themselves.
pub struct Claims {
    map: DashMap<u128, Claim, BuildHasherDefault<PassThrough>>,
    /// The seed of the id hash, random per process (the keys are never stored).
    seed: u64,
}

/// A hasher for keys that are uniform hashes already: it passes their low 64 bits on.
#[derive(Default)]
pub struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u128` is called for a `u128` key; fold anything else in all the same.
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u128(&mut self, key: u128) {
        self.0 = key as u64;
    }
}

impl Default for Claims {
    fn default() -> Self {
        Claims {
            map: DashMap::with_capacity_and_hasher_and_shard_amount(
                0,
                BuildHasherDefault::default(),
                crate::limits::CLAIMS_SEGMENTS,
            ),
            seed: rand::random(),
        }
    }
}

impl Claims {
    /// The key of order `id` in this table.
    #[inline]
    pub fn key(&self, id: &str) -> ClaimKey {
        ClaimKey(xxhash_rust::xxh3::xxh3_128_with_seed(
            id.as_bytes(),
            self.seed,
        ))
    }

    /// Claims the id of `key` for an order with `content_hash` at its `home` zone. `None`
    /// when the id is now this order's; the existing claim when it was taken before.
    pub fn claim(&self, key: ClaimKey, content_hash: u64, home: ZoneId) -> Option<Claim> {
        match self.map.entry(key.0) {
            Entry::Occupied(existing) => Some(*existing.get()),
            Entry::Vacant(slot) => {
                slot.insert(Claim {
                    content_hash,
                    zone: home,
                    slot: Claim::PENDING,
                });
                None
            }
        }
    }

    /// Records where the claimed order of `key` was decided.
    pub fn settle(&self, key: ClaimKey, zone: ZoneId, slot: u32) {
        let mut claim = self
            .map
            .get_mut(&key.0)
            .expect("an order is claimed before it is decided");
        debug_assert!(!claim.is_decided(), "an order is decided once");
        claim.zone = zone;
        claim.slot = slot;
    }

    /// The claim of order `id`.
    pub fn get(&self, id: &str) -> Option<Claim> {
        self.get_key(self.key(id))
    }

    /// The claim of the order id of `key`.
    pub fn get_key(&self, key: ClaimKey) -> Option<Claim> {
        self.map.get(&key.0).map(|claim| *claim)
    }

    /// Puts back the claim of a decision replayed from a journal.
    pub fn restore(&self, id: &str, content_hash: u64, zone: ZoneId, slot: u32) {
        self.map.insert(
            self.key(id).0,
            Claim {
                content_hash,
                zone,
                slot,
            },
        );
    }

    /// Ids claimed.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_claimed_once_then_settled_where_it_was_decided() {
        let claims = Claims::default();
        let key = claims.key("o1");
        assert_eq!(claims.claim(key, 7, ZoneId(0)), None);
        let pending = claims.get("o1").unwrap();
        assert!(!pending.is_decided());
        assert_eq!((pending.zone, pending.content_hash), (ZoneId(0), 7));
        // A second claim of the same id, whatever its content, finds the first.
        assert_eq!(claims.claim(key, 9, ZoneId(1)), Some(pending));
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
