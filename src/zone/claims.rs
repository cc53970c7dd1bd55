//! Order-id claims: which zone holds each order's record, shared by every zone.
//!
//! An order's home zone follows from its content (the region), so a retry with another
//! region (an `id_conflict`) arrives at another home, and only a table of every id catches
//! it. An id is claimed by the ingest worker ([`super::admit`]), line by line in input order,
//! before its chunk goes to the zones: the first line with an id is the original whatever the
//! zone threads do next. The claim names the zone and slot of the record once there is one.
//! `route` uses the same table from one thread.

use crate::ids::ZoneId;
use compact_str::CompactString;
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

/// Where an order id's record is, and the content it was claimed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    pub content_hash: u64,
    /// The zone holding the record; while pending, the home zone that claimed it.
    pub zone: ZoneId,
    /// The record's slot in that zone, or [`Claim::PENDING`].
    pub slot: u32,
}

impl Claim {
    /// The slot of a claim whose order is still on its way along its chain.
    pub const PENDING: u32 = u32::MAX;

    pub fn is_decided(&self) -> bool {
        self.slot != Claim::PENDING
    }
}

/// Every order id the service has taken, across zones.
///
/// A `DashMap` (a hash map split into independently locked shards) rather than a claims
/// actor: a claim is two short critical sections per order (claim, then settle) on one of
/// `4 x cores` shards, which two zone threads almost never contend for, against an extra
/// message hop per order for an actor. Keyed by the id itself (ids of up to 24 bytes are
/// stored inline), so there are no hash collisions to tell apart. Hashed with `foldhash`
/// (hashbrown's own default: a per-process random seed, several times faster than SipHash
/// on short keys; ids come from authenticated storefronts).
pub struct Claims {
    map: DashMap<CompactString, Claim, foldhash::fast::RandomState>,
}

/// Shards of the claims table. A shard grows by doubling, copying every claim it holds
/// while its lock is taken: with millions of claims in `4 x cores` shards (8 here), one such
/// copy stalls every order hashing there for tens of milliseconds. More, smaller shards make
/// each copy proportionally shorter.
const CLAIMS_SHARDS: usize = crate::limits::CLAIMS_SHARDS;

impl Default for Claims {
    fn default() -> Self {
        Claims {
            map: DashMap::with_capacity_and_hasher_and_shard_amount(
                0,
                foldhash::fast::RandomState::default(),
                CLAIMS_SHARDS,
            ),
        }
    }
}

impl Claims {
    /// Claims `id` for an order with `content_hash` at its `home` zone. `None` when the id
    /// is now this order's; the existing claim when it was taken before.
    pub fn claim(&self, id: &CompactString, content_hash: u64, home: ZoneId) -> Option<Claim> {
        match self.map.entry(id.clone()) {
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

    /// Records where the claimed order `id` was decided.
    pub fn settle(&self, id: &str, zone: ZoneId, slot: u32) {
        let mut claim = self
            .map
            .get_mut(id)
            .expect("an order is claimed before it is decided");
        debug_assert!(!claim.is_decided(), "an order is decided once");
        claim.zone = zone;
        claim.slot = slot;
    }

    pub fn get(&self, id: &str) -> Option<Claim> {
        self.map.get(id).map(|claim| *claim)
    }

    /// Puts back the claim of a decision replayed from a journal.
    pub fn restore(&self, id: &CompactString, content_hash: u64, zone: ZoneId, slot: u32) {
        self.map.insert(
            id.clone(),
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
        let id = CompactString::from("o1");
        assert_eq!(claims.claim(&id, 7, ZoneId(0)), None);
        let pending = claims.get("o1").unwrap();
        assert!(!pending.is_decided());
        assert_eq!((pending.zone, pending.content_hash), (ZoneId(0), 7));
        // A second claim of the same id, whatever its content, finds the first.
        assert_eq!(claims.claim(&id, 9, ZoneId(1)), Some(pending));
        claims.settle("o1", ZoneId(2), 5);
        let decided = claims.get("o1").unwrap();
        assert!(decided.is_decided());
        assert_eq!(
            (decided.zone, decided.slot, decided.content_hash),
            (ZoneId(2), 5, 7)
        );
        assert_eq!(claims.len(), 1);
        assert!(claims.get("o2").is_none());
    }
}
