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
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Where an order id's record is. Not what the order held: a retry of the id is told
/// from a conflict by the content hash of the record itself, where the record is
/// (`zone::journey`), so that a claim takes 24 bytes, not 32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
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
    /// The slot of a released claim's gap in its segment (never found).
    const RELEASED: u32 = u32::MAX - 1;

    pub fn is_decided(&self) -> bool {
        self.slot != Claim::PENDING
    }
}

/// A claim a restart puts back ([`Claims::restore_all`]): its id's key and the slot of its
/// record.
#[derive(Clone, Copy, Debug)]
pub struct Restored {
    hash: u128,
    slot: u32,
}

/// A claim as a segment keeps it: its key's hash in two halves (eight-byte aligned, where
/// a `u128` would pad the entry from 24 bytes to 32) and the claim.
#[derive(Clone, Copy, Debug)]
struct Entry {
    hash: [u64; 2],
    claim: Claim,
}

const _: () = assert!(
    std::mem::size_of::<Entry>() == 24,
    "a retained decision costs its claim's 24 bytes (docs/architecture.md)"
);

impl Entry {
    fn new(hash: u128, claim: Claim) -> Entry {
        Entry {
            hash: [hash as u64, (hash >> 64) as u64],
            claim,
        }
    }

    fn hash(&self) -> u128 {
        u128::from(self.hash[0]) | (u128::from(self.hash[1]) << 64)
    }
}

/// Where a claim stands in its [`Claims`] table: its segment and its place there. A zone
/// keeps it with each record, to let the claim go (or move it) when the record leaves
/// memory ([`Claims::release`], [`Claims::relocate`]) without hashing the id again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClaimPlace {
    pub segment: u8,
    pub at: u32,
}

/// Every order id the router has taken, across zones, for as long as its record is kept.
///
/// A table split into [`crate::limits::CLAIMS_SEGMENTS`] independently locked segments
/// rather than a claims actor: a claim is two short critical sections per order (claim,
/// then settle) on one segment, which two zone threads almost never contend for, against
/// an extra message hop per order for an actor.
///
/// Each segment keeps its claims in the order made, in chunks of
/// [`crate::limits::CLAIMS_CHUNK`], and an index (a `hashbrown` table of places) from key
/// to place. Claiming probes the index once; settling goes straight to the place the key
/// carries ([`ClaimKey`]), no probe: the claims an order settles were made a moment before,
/// at the warm end, where a hash table's buckets would be anywhere (a `dashmap` did a
/// second probe there, about 11% of the service's time by `perf` with the cache misses,
/// docs/benchmarks.md). A claim whose record leaves memory is released
/// ([`Claims::release`]): a chunk whose claims are all released is freed, so the table
/// holds what the zones keep, not every id ever seen; a claim whose order outlives its
/// chunk's neighbours moves to the segment's kept claims ([`Claims::relocate`]), a vector
/// whose free places are taken again, so that it pins no chunk. Growing never copies more
/// than the index: a segment adds chunks instead of doubling a vector.
///
/// Keyed by a 128-bit hash of the id (XXH3-128 under a per-process random seed), not the id
/// itself: a claim is 24 bytes, and the table, which outgrows the caches after a few
/// hundred thousand orders, costs fewer cache misses per order (measured against the
/// id-keyed table in `docs/benchmarks.md`). Two distinct ids share a key with a
/// probability of about n^2 / 2^129 (1e-19 at ten billion ids), far below the rate of
/// undetected memory errors; the random seed, which never leaves the process, keeps a
/// client from crafting a pair. The content hash of an order rests on the same argument.
/// The records hold the ids themselves.
pub struct Claims {
    segments: Box<[crossbeam::utils::CachePadded<Mutex<Segment>>]>,
    /// Where each segment's index lies, for [`Claims::prefetch`]: read without the lock,
    /// written when an index moves (it grew), apart from the locks so that it stays in the
    /// cache of the worker that reads it while the zones take the locks.
    hints: Box<[IndexHint]>,
    /// The seed of the id hash, random per process (the keys are never stored).
    seed: u64,
    /// Claims a restart put back over another zone's ([`Claims::restore_all`]), for
    /// [`Claims::settle_contests`] once every zone has recovered.
    contests: Mutex<Vec<Contest>>,
}

/// Two zones' records of one id, both put back by a restart. Zones recover in parallel,
/// so which of them put its claim back last is chance; the later decision must hold the
/// claim. (An id is decided again, in another zone, only after its first record left with
/// the window; a zone that had taken no snapshot since may still replay that record.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Contest {
    hash: u128,
    /// The claim put back first, then the one put back over it.
    pub claims: [Claim; 2],
}

/// Where a segment's index lies: the end of its buckets, where its control bytes start (0
/// until its first claim; [`crate::prefetch::table_end`]), and its bucket mask. Only ever
/// used to compute prefetch addresses: a stale or torn pair makes a useless hint, never a
/// wrong answer.
#[derive(Default)]
struct IndexHint {
    end: AtomicUsize,
    mask: AtomicUsize,
}

const CHUNK: usize = crate::limits::CLAIMS_CHUNK;

/// One segment: its claims in the order made, and the index from key to place.
#[derive(Default)]
struct Segment {
    /// Claims in the order made; a place is `base` plus the position in this list of
    /// chunks. A released claim stays as a gap ([`Claim::RELEASED`]) until its chunk goes.
    chunks: VecDeque<Vec<Entry>>,
    /// Claims not released, per chunk.
    live: VecDeque<u32>,
    /// The place of the first claim of `chunks[0]`.
    base: u32,
    index: HashTable<u32>,
    /// Claims not released, in all.
    count: usize,
    /// Claims moved out of `chunks` ([`Claims::relocate`]: orders open past the window),
    /// at places [`KEPT`] + their position here; a released one's position is taken again.
    /// Kept apart so that a long-lived claim never pins a chunk of short-lived ones.
    kept: Vec<Entry>,
    /// Positions of `kept` free to take again.
    kept_free: Vec<u32>,
    /// The index's bucket count and end ([`IndexHint`]) when last worked out: they change
    /// only when it grows.
    index_buckets: usize,
    index_end: usize,
    /// Whether the index moved since its [`IndexHint`] was written.
    index_moved: bool,
}

/// The place flag of a claim in a segment's `kept` claims.
const KEPT: u32 = 1 << 31;

/// The claim at `at` of a segment's parts (its chunks from `base`, its kept claims).
fn entry_in<'a>(
    chunks: &'a VecDeque<Vec<Entry>>,
    base: u32,
    kept: &'a [Entry],
    at: u32,
) -> Option<&'a Entry> {
    if at & KEPT != 0 {
        return kept.get((at & !KEPT) as usize);
    }
    let position = at.checked_sub(base)? as usize;
    chunks.get(position / CHUNK)?.get(position % CHUNK)
}

impl Segment {
    fn entry(&self, at: u32) -> Option<&Entry> {
        entry_in(&self.chunks, self.base, &self.kept, at)
    }

    fn entry_mut(&mut self, at: u32) -> Option<&mut Entry> {
        if at & KEPT != 0 {
            return self.kept.get_mut((at & !KEPT) as usize);
        }
        let position = at.checked_sub(self.base)? as usize;
        self.chunks
            .get_mut(position / CHUNK)?
            .get_mut(position % CHUNK)
    }

    /// Indexes the claim of `hash` at `at`.
    fn index_at(&mut self, hash: u128, at: u32) {
        let Segment {
            index,
            chunks,
            base,
            kept,
            ..
        } = self;
        let entry = index.insert_unique(hash as u64, at, |at| {
            entry_in(chunks, *base, kept, *at)
                .expect("indexed claims exist")
                .hash[0]
        });
        let end = crate::prefetch::table_end(entry.bucket_index(), entry.get());
        let buckets = entry.into_table().num_buckets();
        if buckets != self.index_buckets {
            // The index was made or grew (moved): where its buckets end now.
            self.index_buckets = buckets;
            self.index_end = end;
            self.index_moved = true;
        }
    }

    /// Adds a claim to the kept ones; its place.
    fn push_kept(&mut self, hash: u128, claim: Claim) -> u32 {
        let position = match self.kept_free.pop() {
            Some(position) => {
                self.kept[position as usize] = Entry::new(hash, claim);
                position
            }
            None => {
                self.kept.push(Entry::new(hash, claim));
                u32::try_from(self.kept.len() - 1)
                    .ok()
                    .filter(|position| position & KEPT == 0)
                    .expect("fewer than 2^31 kept claims a segment")
            }
        };
        self.count += 1;
        self.index_at(hash, KEPT | position);
        KEPT | position
    }

    /// Claims `hash` for the record in `slot` of `zone` again (a restart), in place of a
    /// claim it has; its place.
    /// The claim it put back over, if another zone's.
    fn put_back(&mut self, hash: u128, zone: ZoneId, slot: u32) -> (u32, Option<Claim>) {
        let claim = Claim { zone, slot };
        match self.find(hash) {
            Some(at) => {
                let entry = self.entry_mut(at).expect("indexed");
                let before = std::mem::replace(&mut entry.claim, claim);
                let contested = before.zone != zone && before.is_decided();
                (at, contested.then_some(before))
            }
            None => (self.push(hash, claim), None),
        }
    }

    /// The place of `hash`'s claim, if there is one.
    fn find(&self, hash: u128) -> Option<u32> {
        self.index
            .find(hash as u64, |at| {
                self.entry(*at).is_some_and(|entry| entry.hash() == hash)
            })
            .copied()
    }

    /// Adds a claim that is not there; its place.
    fn push(&mut self, hash: u128, claim: Claim) -> u32 {
        if self.chunks.back().is_none_or(|chunk| chunk.len() == CHUNK) {
            // The first chunk grows as a vector does (most segments of a small table hold
            // a few claims); the next ones are allocated whole.
            let capacity = if self.chunks.is_empty() { 0 } else { CHUNK };
            self.chunks.push_back(Vec::with_capacity(capacity));
            self.live.push_back(0);
        }
        let filled = (self.chunks.len() - 1) * CHUNK + self.chunks.back().map_or(0, Vec::len);
        let at = u32::try_from(filled)
            .ok()
            .and_then(|filled| self.base.checked_add(filled))
            .filter(|at| at & KEPT == 0)
            .expect("fewer than 2^31 claims a segment over the process's life");
        self.chunks
            .back_mut()
            .expect("ensured")
            .push(Entry::new(hash, claim));
        *self.live.back_mut().expect("ensured") += 1;
        self.count += 1;
        self.index_at(hash, at);
        at
    }

    /// Releases the claim at `at` if it is still the one of `(zone, slot)`: leaves a gap,
    /// takes it out of the index, frees its chunk once the chunk holds no claim.
    fn release(&mut self, at: u32, zone: ZoneId, slot: u32) -> Option<(u128, Claim)> {
        let entry = self.entry_mut(at)?;
        if entry.claim.zone != zone || entry.claim.slot != slot {
            return None;
        }
        let taken = (entry.hash(), entry.claim);
        entry.claim.slot = Claim::RELEASED;
        let hash = taken.0;
        if let Ok(found) = self.index.find_entry(hash as u64, |place| *place == at) {
            found.remove();
        }
        self.count -= 1;
        if at & KEPT != 0 {
            self.kept_free.push(at & !KEPT);
            return Some(taken);
        }
        let chunk = (at - self.base) as usize / CHUNK;
        self.live[chunk] -= 1;
        if self.live[chunk] == 0 && chunk + 1 < self.chunks.len() {
            // Not the chunk claims go to: its memory goes now, its places stay counted.
            self.chunks[chunk] = Vec::new();
        }
        while self.live.front() == Some(&0) && self.chunks.len() > 1 {
            self.chunks.pop_front();
            self.live.pop_front();
            self.base += CHUNK as u32;
        }
        Some(taken)
    }
}

impl Default for Claims {
    fn default() -> Self {
        Claims {
            segments: (0..crate::limits::CLAIMS_SEGMENTS)
                .map(|_| Default::default())
                .collect(),
            hints: (0..crate::limits::CLAIMS_SEGMENTS)
                .map(|_| IndexHint::default())
                .collect(),
            seed: rand::random(),
            contests: Mutex::new(Vec::new()),
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
    fn segment_of(hash: u128) -> usize {
        (hash >> 64) as usize % crate::limits::CLAIMS_SEGMENTS
    }

    fn lock(&self, segment: usize) -> MutexGuard<'_, Segment> {
        self.segments[segment]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn segment(&self, hash: u128) -> MutexGuard<'_, Segment> {
        self.lock(Self::segment_of(hash))
    }

    /// Writes segment `number`'s [`IndexHint`] if its index moved (under its lock).
    fn publish_hint(&self, number: usize, segment: &mut Segment) {
        if std::mem::take(&mut segment.index_moved) {
            let hint = &self.hints[number];
            hint.end.store(segment.index_end, Ordering::Relaxed);
            hint.mask
                .store(segment.index_buckets.saturating_sub(1), Ordering::Relaxed);
        }
    }

    /// Starts loading what claiming `key` will read first: its index's control bytes and
    /// bucket where the probe starts, as the segment's [`IndexHint`] says they lie. The
    /// index outgrows the caches after a few hundred thousand ids, so without this each
    /// claim waits for memory twice (its control bytes, then its bucket); a loop over a
    /// chunk of orders calls it a few orders ahead. No lock, no read of the index itself:
    /// a hint only.
    #[inline]
    pub fn prefetch(&self, key: &ClaimKey) {
        let hint = &self.hints[Self::segment_of(key.hash)];
        crate::prefetch::prefetch_probe::<u32>(
            hint.end.load(Ordering::Relaxed),
            hint.mask.load(Ordering::Relaxed),
            key.hash as u64,
        );
    }

    /// Makes room in the index for `additional` more claims, spread over the segments as
    /// claims are: a restart that knows how many records it restores grows each segment's
    /// index once instead of doubling it (and moving every place) as it goes.
    pub fn reserve(&self, additional: usize) {
        let each = additional.div_ceil(crate::limits::CLAIMS_SEGMENTS);
        for segment in 0..self.segments.len() {
            let mut guard = self.lock(segment);
            let Segment {
                index,
                chunks,
                base,
                kept,
                ..
            } = &mut *guard;
            index.reserve(each, |at| {
                entry_in(chunks, *base, kept, *at)
                    .expect("indexed claims exist")
                    .hash[0]
            });
        }
    }

    /// Claims the id of `key` for an order at its `home` zone, noting in `key` where the
    /// id's claim stands. `None` when the id is now this order's; the existing claim when it
    /// was taken before (by a retry, or by another order with the same id).
    pub fn claim(&self, key: &mut ClaimKey, home: ZoneId) -> Option<Claim> {
        let number = Self::segment_of(key.hash);
        let mut segment = self.lock(number);
        if let Some(at) = segment.find(key.hash) {
            key.at = at;
            return segment.entry(at).map(|entry| entry.claim);
        }
        let claim = Claim {
            zone: home,
            slot: Claim::PENDING,
        };
        key.at = segment.push(key.hash, claim);
        self.publish_hint(number, &mut segment);
        None
    }

    /// Records where the claimed order of `key` was decided; where its claim stands.
    pub fn settle(&self, key: ClaimKey, zone: ZoneId, slot: u32) -> ClaimPlace {
        let mut segment = self.segment(key.hash);
        let entry = segment
            .entry_mut(key.at)
            .expect("an order is claimed before it is decided");
        debug_assert_eq!(entry.hash(), key.hash, "a key settles its own claim");
        let claim = &mut entry.claim;
        debug_assert!(!claim.is_decided(), "an order is decided once");
        claim.zone = zone;
        claim.slot = slot;
        ClaimPlace {
            segment: Self::segment_of(key.hash) as u8,
            at: key.at,
        }
    }

    /// The claim of order `id`.
    pub fn get(&self, id: &str) -> Option<Claim> {
        self.get_key(self.key(id))
    }

    /// The claim of the order id of `key` (straight from its place when `key` was claimed).
    pub fn get_key(&self, key: ClaimKey) -> Option<Claim> {
        let segment = self.segment(key.hash);
        let at = match segment.entry(key.at) {
            Some(entry) if entry.hash() == key.hash && entry.claim.slot != Claim::RELEASED => {
                key.at
            }
            _ => segment.find(key.hash)?,
        };
        segment.entry(at).map(|entry| entry.claim)
    }

    /// Puts back the claim of a decision replayed from a journal; where it stands.
    pub fn restore(&self, id: &str, zone: ZoneId, slot: u32) -> ClaimPlace {
        let hash = self.key(id).hash;
        let number = Self::segment_of(hash);
        let mut segment = self.lock(number);
        let (at, over) = segment.put_back(hash, zone, slot);
        self.note_contest(hash, over, Claim { zone, slot });
        self.publish_hint(number, &mut segment);
        ClaimPlace {
            segment: Self::segment_of(hash) as u8,
            at,
        }
    }

    /// Puts back the claims of `zone`'s records `restored` all at once, as [`Claims::restore`]
    /// one by one would (of two claims of one id, the later slot's stays), and hands each
    /// record's place to `placed`, in slot order. A snapshot's records claimed one by one
    /// each probe an index spread over every segment (80 MB for 10M ids): a cache miss each,
    /// a fifth of a restart's time. Grouped by segment, each segment is locked once and
    /// its index, a 256th of the whole, stays in the cache while its claims go in.
    pub fn restore_all(
        &self,
        zone: ZoneId,
        restored: &mut [Restored],
        mut placed: impl FnMut(u32, ClaimPlace),
    ) {
        // Stable: within a segment, in slot order.
        restored.sort_by_key(|claim| Self::segment_of(claim.hash));
        let mut places = Vec::with_capacity(restored.len());
        for group in restored.chunk_by(|a, b| Self::segment_of(a.hash) == Self::segment_of(b.hash))
        {
            let number = Self::segment_of(group[0].hash);
            let mut segment = self.lock(number);
            for claim in group {
                let (at, over) = segment.put_back(claim.hash, zone, claim.slot);
                let slot = claim.slot;
                self.note_contest(claim.hash, over, Claim { zone, slot });
                let place = ClaimPlace {
                    segment: number as u8,
                    at,
                };
                places.push((claim.slot, place));
            }
            self.publish_hint(number, &mut segment);
        }
        places.sort_unstable_by_key(|(slot, _)| *slot);
        for (slot, place) in places {
            placed(slot, place);
        }
    }

    /// Notes that `now` was put back over `over`, another zone's claim of the same id.
    fn note_contest(&self, hash: u128, over: Option<Claim>, now: Claim) {
        if let Some(over) = over {
            self.contests
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(Contest {
                    hash,
                    claims: [over, now],
                });
        }
    }

    /// Once every zone has recovered: each id that two zones' records claimed
    /// ([`Contest`]) is claimed by the record `decided_at` says is the later (ms since the
    /// epoch; `None`, a record that cannot be read, loses). The other record keeps its
    /// place but not the claim: releasing it ([`Claims::release`]), as its window does
    /// soon, leaves the claim alone. The contests, settled.
    pub fn settle_contests(&self, decided_at: impl Fn(Claim) -> Option<i64>) -> Vec<Contest> {
        let contests = std::mem::take(
            &mut *self
                .contests
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        for contest in &contests {
            let mut segment = self.segment(contest.hash);
            let Some(at) = segment.find(contest.hash) else {
                continue;
            };
            let entry = segment.entry_mut(at).expect("indexed");
            // Every claim the id had: this contest's two, and the one standing now (a third
            // zone's, or a contest settled before).
            let latest = [entry.claim, contest.claims[0], contest.claims[1]]
                .into_iter()
                .max_by_key(|claim| decided_at(*claim).unwrap_or(i64::MIN))
                .expect("three claims");
            entry.claim = latest;
        }
        contests
    }

    /// The claim standing at `place`, if one does.
    #[cfg(test)]
    pub fn at(&self, place: ClaimPlace) -> Option<Claim> {
        let segment = self.lock(place.segment.into());
        segment
            .entry(place.at)
            .map(|entry| entry.claim)
            .filter(|claim| claim.slot != Claim::RELEASED)
    }

    /// A claim for [`Claims::restore_all`].
    pub fn restored(&self, id: &str, slot: u32) -> Restored {
        Restored {
            hash: self.key(id).hash,
            slot,
        }
    }

    /// Lets the claim at `place` go, if it is still the claim of the record in `slot` of
    /// `zone` (the id may have been claimed again since, by a newer order): the id is free.
    pub fn release(&self, place: ClaimPlace, zone: ZoneId, slot: u32) -> bool {
        let mut segment = self.lock(place.segment.into());
        segment.release(place.at, zone, slot).is_some()
    }

    /// Moves the claim at `place` (still the claim of the record in `slot` of `zone`) to
    /// its segment's kept claims, so that the chunk it stood in can go (an order open past
    /// the window); where it stands now.
    pub fn relocate(&self, place: ClaimPlace, zone: ZoneId, slot: u32) -> Option<ClaimPlace> {
        let mut segment = self.lock(place.segment.into());
        let (hash, claim) = segment.release(place.at, zone, slot)?;
        let at = segment.push_kept(hash, claim);
        self.publish_hint(place.segment.into(), &mut segment);
        Some(ClaimPlace {
            segment: place.segment,
            at,
        })
    }

    /// Ids claimed.
    pub fn len(&self) -> usize {
        self.segments
            .iter()
            .map(|segment| segment.lock().map_or(0, |segment| segment.count))
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each segment's [`IndexHint`] stays current as its index grows: every claim's bucket
    /// lies where the hint says, and most sit where the hint's probe starts
    /// (`prefetch::tests::tables_lie_as_hashbrown_lays_them` checks the layout itself).
    #[test]
    fn each_segments_hint_says_where_its_index_lies() {
        let claims = Claims::default();
        let mut keys = Vec::new();
        for number in 0..20_000 {
            let mut key = claims.key(&format!("order-{number}"));
            assert_eq!(claims.claim(&mut key, ZoneId(0)), None);
            keys.push(key);
        }
        let mut at_start = 0;
        for key in &keys {
            let number = Claims::segment_of(key.hash);
            let segment = claims.lock(number);
            let hint = &claims.hints[number];
            let (end, mask) = (
                hint.end.load(Ordering::Relaxed),
                hint.mask.load(Ordering::Relaxed),
            );
            assert_eq!(mask + 1, segment.index.num_buckets(), "the hint is current");
            let bucket = segment
                .index
                .find_bucket_index(key.hash as u64, |at| *at == key.at)
                .expect("claimed");
            let place = segment.index.get_bucket(bucket).expect("occupied");
            assert_eq!(
                end - (bucket + 1) * std::mem::size_of::<u32>(),
                place as *const u32 as usize,
                "bucket {bucket} lies where the hint says"
            );
            if bucket == (key.hash as u64 as usize) & mask {
                at_start += 1;
            }
        }
        // Most claims sit where their probe starts (the rest moved on past a full slot):
        // the start worked out is the table's.
        assert!(at_start * 2 > keys.len(), "{at_start} of {}", keys.len());
    }

    #[test]
    fn an_id_is_claimed_once_then_settled_where_it_was_decided() {
        let claims = Claims::default();
        let mut key = claims.key("o1");
        assert_eq!(claims.claim(&mut key, ZoneId(0)), None);
        let pending = claims.get("o1").unwrap();
        assert!(!pending.is_decided());
        assert_eq!(pending.zone, ZoneId(0));
        // A second claim of the same id, whatever its content, finds the first.
        let mut again = claims.key("o1");
        assert_eq!(claims.claim(&mut again, ZoneId(1)), Some(pending));
        assert_eq!(again, key, "both keys know the claim's place");
        claims.settle(key, ZoneId(2), 5);
        let decided = claims.get("o1").unwrap();
        assert!(decided.is_decided());
        assert_eq!((decided.zone, decided.slot), (ZoneId(2), 5));
        assert_eq!(claims.get_key(key), Some(decided));
        assert_eq!(claims.len(), 1);
        assert!(claims.get("o2").is_none());
    }

    #[test]
    fn released_claims_free_their_chunks_and_a_relocated_claim_is_found_where_it_went() {
        let claims = Claims::default();
        let ids: Vec<String> = (0..CHUNK * 300).map(|n| format!("o{n}")).collect();
        let mut places = Vec::new();
        for (slot, id) in ids.iter().enumerate() {
            let mut key = claims.key(id);
            assert_eq!(claims.claim(&mut key, ZoneId(0)), None);
            places.push(claims.settle(key, ZoneId(0), slot as u32));
        }
        assert_eq!(claims.len(), ids.len());
        let chunks = |claims: &Claims| -> usize {
            claims
                .segments
                .iter()
                .map(|segment| segment.lock().unwrap().chunks.len())
                .sum()
        };
        let before = chunks(&claims);
        // Every 500th order stays open: its claim moves; every other claim is released.
        let open = |slot: usize| slot % 500 == 7;
        let mut moved = Vec::new();
        for (slot, place) in places.iter().enumerate().filter(|(slot, _)| open(*slot)) {
            let to = claims.relocate(*place, ZoneId(0), slot as u32).unwrap();
            assert_ne!(to, *place);
            assert!(
                claims.relocate(*place, ZoneId(0), slot as u32).is_none(),
                "moved already"
            );
            moved.push((slot, to));
        }
        for (slot, place) in places.iter().enumerate().filter(|(slot, _)| !open(*slot)) {
            assert!(claims.release(*place, ZoneId(0), slot as u32));
        }
        assert_eq!(claims.len(), moved.len());
        // Every segment keeps only the chunk it pushes to: the open orders pin none.
        assert!(before > crate::limits::CLAIMS_SEGMENTS);
        assert!(
            chunks(&claims) <= crate::limits::CLAIMS_SEGMENTS,
            "{} of {before} chunks left",
            chunks(&claims)
        );
        assert_eq!(claims.get("o7").map(|claim| claim.slot), Some(7));
        assert_eq!(claims.get("o1007").map(|claim| claim.slot), Some(1007));
        assert!(claims.get("o8").is_none());
        // A released id is free: claimed again, by another order.
        let mut key = claims.key("o8");
        assert_eq!(claims.claim(&mut key, ZoneId(1)), None);
        let again = claims.settle(key, ZoneId(1), 0);
        // The old record's place no longer names the claim: releasing it again is refused.
        assert!(!claims.release(places[8], ZoneId(0), 8));
        assert_eq!(claims.get("o8").map(|claim| claim.zone), Some(ZoneId(1)));
        assert!(claims.release(again, ZoneId(1), 0));
        for (slot, place) in moved {
            assert!(claims.release(place, ZoneId(0), slot as u32));
        }
        assert!(claims.is_empty());
        // A released kept place is taken again.
        let mut key = claims.key("o7");
        assert_eq!(claims.claim(&mut key, ZoneId(0)), None);
        let place = claims.settle(key, ZoneId(0), 1);
        let kept = claims.relocate(place, ZoneId(0), 1).unwrap();
        assert!(kept.at & KEPT != 0);
        assert_eq!(claims.get("o7").map(|claim| claim.slot), Some(1));
        assert_eq!(claims.at(kept).map(|claim| claim.slot), Some(1));
    }

    /// Indexes that grow over gaps in their chunks (released claims), chunks emptied between
    /// full ones, and claims moved to the kept ones: every claim still held is found at its
    /// place after many growths, no released one is, and each segment's hint follows its
    /// index.
    #[test]
    fn an_index_grown_over_gaps_emptied_chunks_and_kept_claims_finds_every_claim() {
        let claims = Claims::default();
        let mut held: Vec<(String, ClaimPlace, u32)> = Vec::new();
        let mut released: Vec<String> = Vec::new();
        let mut slot = 0u32;
        // Waves of new claims (three chunks a segment each, on average), each followed by
        // releases and moves among what is held, so that the later waves grow indexes
        // that already have all three.
        for wave in 0..3 {
            for number in 0..CHUNK * crate::limits::CLAIMS_SEGMENTS * 3 {
                let id = format!("w{wave}-{number}");
                let mut key = claims.key(&id);
                assert_eq!(claims.claim(&mut key, ZoneId(0)), None, "{id}");
                held.push((id, claims.settle(key, ZoneId(0), slot), slot));
                slot += 1;
            }
            let mut kept = Vec::new();
            for (index, (id, place, slot)) in std::mem::take(&mut held).into_iter().enumerate() {
                // Every claim in every third chunk of its segment is released (whole chunks
                // emptied between others), a seventh of the rest too (gaps), another seventh
                // moves to the kept claims.
                let whole_chunk = place.at & KEPT == 0 && (place.at as usize / CHUNK) % 3 == 1;
                match (whole_chunk, index % 7) {
                    (true, _) | (false, 0) => {
                        assert!(claims.release(place, ZoneId(0), slot));
                        released.push(id);
                    }
                    (false, 3) => {
                        let to = claims.relocate(place, ZoneId(0), slot).expect("held");
                        kept.push((id, to, slot));
                    }
                    _ => kept.push((id, place, slot)),
                }
            }
            let emptied: usize = claims
                .segments
                .iter()
                .map(|segment| {
                    let segment = segment.lock().unwrap();
                    segment
                        .chunks
                        .iter()
                        .filter(|chunk| chunk.is_empty())
                        .count()
                })
                .sum();
            assert!(emptied > 0, "wave {wave} emptied chunks between others");
            held = kept;
        }
        assert_eq!(claims.len(), held.len());
        for (id, place, slot) in &held {
            assert_eq!(claims.get(id).map(|claim| claim.slot), Some(*slot), "{id}");
            assert_eq!(
                claims.at(*place).map(|claim| claim.slot),
                Some(*slot),
                "{id}"
            );
        }
        for id in &released {
            assert!(claims.get(id).is_none(), "{id} was released");
        }
        for number in 0..claims.segments.len() {
            let segment = claims.lock(number);
            assert_eq!(
                claims.hints[number].mask.load(Ordering::Relaxed) + 1,
                segment.index.num_buckets(),
                "segment {number}'s hint follows its index"
            );
        }
    }

    #[test]
    fn an_id_two_zones_put_back_is_claimed_by_the_later_decision_whichever_came_last() {
        // Zone 0 decided "x" at 1,000, it left with the window, zone 1 decided it again at
        // 9,000; a restart replays both. Either order of the zones' replays, and a third
        // zone's older record too, ends with zone 1's claim.
        let decided_at = |claim: Claim| match (claim.zone, claim.slot) {
            (ZoneId(0), 4) => Some(1_000),
            (ZoneId(1), 7) => Some(9_000),
            (ZoneId(2), 2) => Some(500),
            _ => None,
        };
        for order in [[0, 1, 2], [1, 0, 2], [2, 1, 0], [1, 2, 0]] {
            let claims = Claims::default();
            let slots = [4, 7, 2];
            let mut places = Vec::new();
            for zone in order {
                let mut restored = [claims.restored("x", slots[zone])];
                claims.restore_all(ZoneId(zone as u16), &mut restored, |slot, place| {
                    places.push((zone, slot, place))
                });
            }
            let contests = claims.settle_contests(decided_at);
            assert_eq!(contests.len(), 2, "each later zone put back over another");
            let standing = claims.get("x").map(|claim| (claim.zone, claim.slot));
            assert_eq!(
                standing,
                Some((ZoneId(1), 7)),
                "replayed in zone order {order:?}"
            );
            // The older records let go (their window), the claim stays.
            for (zone, slot, place) in places {
                let released = claims.release(place, ZoneId(zone as u16), slot);
                assert_eq!(released, zone == 1, "zone {zone}'s release");
            }
        }
        // One zone's two records of an id (the later slot is the later decision): no contest.
        let claims = Claims::default();
        let mut restored = [claims.restored("y", 1), claims.restored("y", 8)];
        claims.restore_all(ZoneId(0), &mut restored, |_, _| {});
        assert!(claims.settle_contests(|_| None).is_empty());
        assert_eq!(claims.get("y").map(|claim| claim.slot), Some(8));
    }

    #[test]
    fn a_restored_claim_over_an_older_one_is_not_released_by_the_older_record() {
        let claims = Claims::default();
        let old = claims.restore("o1", ZoneId(0), 3);
        let new = claims.restore("o1", ZoneId(1), 5);
        assert_eq!(old, new, "the claim is replaced where it stands");
        assert!(!claims.release(old, ZoneId(0), 3));
        assert_eq!(
            claims.get("o1").map(|claim| (claim.zone, claim.slot)),
            Some((ZoneId(1), 5))
        );
    }
}
