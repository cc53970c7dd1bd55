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
