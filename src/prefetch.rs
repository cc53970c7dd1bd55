//! A cache prefetch hint, for loops that know a few items ahead which memory they will read
//! (the route loop prefetches each order's stock cells and SKU entries four orders ahead).

/// Asks the CPU to start loading the cache line that holds `value`. Reads nothing into the
/// program and cannot fault; a no-op off x86_64.
#[inline(always)]
pub fn prefetch<T>(value: &T) {
    prefetch_address((value as *const T).cast());
}

/// Asks the CPU to start loading every cache line of `value` (one hint each 64 bytes): for
/// a value written on another core whose fields a loop reads a few items later.
#[inline(always)]
pub fn prefetch_whole<T>(value: &T) {
    let start = (value as *const T).cast::<i8>();
    for offset in (0..std::mem::size_of::<T>()).step_by(64) {
        // Inside `value` (`offset` < its size): only computed, never dereferenced.
        prefetch_address(start.wrapping_add(offset));
    }
}

/// Asks the CPU to start loading the cache line at `address`, a place worked out rather
/// than borrowed (a table's bucket, from where the table was last seen): never read,
/// so it may be stale.
#[inline(always)]
pub fn prefetch_at(address: usize) {
    prefetch_address(std::ptr::without_provenance(address));
}

/// Where a `hashbrown` table's buckets end (and its control bytes start), worked out from
/// one occupied bucket: its index and where it lies. `hashbrown` keeps bucket `i` at
/// `end - (i + 1) * size_of::<T>()` and its control byte at `end + i`; that is its layout,
/// not its API, so the addresses it gives are only ever prefetched (the test
/// `tables_lie_as_hashbrown_lays_them` checks it on every build).
#[inline]
pub fn table_end<T>(index: usize, bucket: &T) -> usize {
    (bucket as *const T as usize) + (index + 1) * std::mem::size_of::<T>()
}

/// Asks the CPU to start loading what a lookup of `hash` in a `hashbrown` table of `T`
/// reads first: the control bytes where its probe starts (the hash's low bits under the
/// bucket `mask`) and that bucket. `end` from [`table_end`]; 0: nothing to load.
#[inline(always)]
pub fn prefetch_probe<T>(end: usize, mask: usize, hash: u64) {
    if end == 0 {
        return;
    }
    let start = hash as usize & mask;
    let bucket = end.wrapping_sub((start + 1) * std::mem::size_of::<T>());
    prefetch_at(bucket);
    if bucket % 64 + std::mem::size_of::<T>() > 64 {
        // The bucket straddles two lines.
        prefetch_at(bucket + std::mem::size_of::<T>() - 1);
    }
    prefetch_at(end.wrapping_add(start));
}

/// The hint itself, for any address.
#[inline(always)]
fn prefetch_address(address: *const i8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it cannot fault and has no effect the program can see,
    // whatever the address (the callers' come from live references anyway). SSE, which the
    // intrinsic needs, is part of every x86_64 CPU.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(address);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
}

#[cfg(test)]
mod tests {
    use super::*;
    use hashbrown::HashTable;

    /// [`table_end`] and [`prefetch_probe`] stand on `hashbrown`'s layout (buckets before
    /// the control bytes, in reverse) and on where its probe starts (the hash's low
    /// bits): a `hashbrown` that changed either fails here.
    fn lies_as_hashbrown_lays_it<T: Copy>(make: impl Fn(u64) -> T, hash_of: impl Fn(&T) -> u64) {
        let mut table: HashTable<T> = HashTable::new();
        let hashes: Vec<u64> = (0..5_000u64)
            .map(|n| n.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        for &hash in &hashes {
            table.insert_unique(hash, make(hash), &hash_of);
        }
        let first = table.iter_buckets().next().expect("occupied");
        let end = table_end(first, table.get_bucket(first).expect("occupied"));
        let mask = table.num_buckets() - 1;
        let mut at_start = 0;
        for &hash in &hashes {
            let index = table
                .find_bucket_index(hash, |item| hash_of(item) == hash)
                .expect("inserted");
            let bucket = table.get_bucket(index).expect("occupied") as *const T as usize;
            assert_eq!(
                end - (index + 1) * std::mem::size_of::<T>(),
                bucket,
                "bucket {index}"
            );
            at_start += usize::from(index == hash as usize & mask);
        }
        // Most items sit where their probe starts (the rest moved past a full slot).
        assert!(
            at_start * 2 > hashes.len(),
            "{at_start} of {}",
            hashes.len()
        );
    }

    #[test]
    fn tables_lie_as_hashbrown_lays_them() {
        lies_as_hashbrown_lays_it(|hash| (hash, hash as u32), |item| item.0);
        lies_as_hashbrown_lays_it(|hash| (hash, [0u64; 3]), |item| item.0);
    }
}
