//! A cache prefetch hint, for loops that know a few items ahead which memory they will read
//! (the route loop prefetches each order's stock cells and SKU entries four orders ahead).

/// Asks the CPU to start loading the cache line that holds `value`. Reads nothing into the
/// program and cannot fault; a no-op off x86_64.
#[inline(always)]
pub fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it cannot fault and has no effect the program can see.
    // The pointer comes from a live reference anyway. SSE, which the intrinsic needs, is part
    // of every x86_64 CPU.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
            (value as *const T).cast::<i8>(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// Asks the CPU to start loading every cache line of `value` (one hint each 64 bytes): for
/// a value written on another core whose fields a loop reads a few items later.
#[inline(always)]
pub fn prefetch_whole<T>(value: &T) {
    let start = (value as *const T).cast::<i8>();
    for offset in (0..std::mem::size_of::<T>()).step_by(64) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `prefetch`: a hint that reads nothing and cannot fault; the address
        // (inside `value`, `offset` < its size) is only computed, never dereferenced.
        unsafe {
            core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
                start.wrapping_add(offset),
            );
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (start, offset);
    }
}
