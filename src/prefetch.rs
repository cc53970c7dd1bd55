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
