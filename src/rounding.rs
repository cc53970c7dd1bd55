//! Rounding to a whole number without a library call.
//!
//! `f64::round` is a call into the compiler's builtins on x86-64 (the baseline target has
//! no rounding instruction before SSE4.1), some 50 instructions; the hot path rounds an
//! order's value to cents, every carrier's ETA to the millisecond and every shipment's
//! numbers for the answer (measured in `docs/benchmarks.md`). Below 2^52 the part of a
//! float after its point is exact, so a truncation and one comparison each way round it.

/// `value.round() as i64`: half away from zero, saturating at the ends of `i64`, NaN to 0.
///
/// ```
/// use order_router::rounding::round_to_i64;
/// assert_eq!(round_to_i64(2.5), 3);
/// assert_eq!(round_to_i64(-2.5), -3);
/// assert_eq!(round_to_i64(0.49999999999999994), 0);
/// assert_eq!(round_to_i64(f64::INFINITY), i64::MAX);
/// ```
#[inline]
pub fn round_to_i64(value: f64) -> i64 {
    // From 2^52 on every float is whole (and `as` saturates, NaN gives 0): nothing to round.
    if value.is_nan() || value.abs() >= 4_503_599_627_370_496.0 {
        return value as i64;
    }
    let truncated = value as i64;
    let rest = value - truncated as f64;
    truncated + i64::from(rest >= 0.5) - i64::from(rest <= -0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The same as the library's rounding for every float: any bits, and values next
        /// to halves.
        #[test]
        fn rounds_as_the_library_does(value in proptest::num::f64::ANY) {
            proptest::prop_assert_eq!(round_to_i64(value), value.round() as i64);
        }

        #[test]
        fn halves_and_their_neighbours_round_as_the_library_does(
            whole in -10_000_000_000i64..10_000_000_000,
            ulps in -2i64..=2,
        ) {
            let half = whole as f64 + 0.5;
            let value = f64::from_bits((half.to_bits() as i64 + ulps) as u64);
            proptest::prop_assert_eq!(round_to_i64(value), value.round() as i64);
        }
    }

    #[test]
    fn the_ends_saturate() {
        for value in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e300,
            -1e300,
            4.5e15,
            -4.5e15,
        ] {
            assert_eq!(round_to_i64(value), value.round() as i64, "{value}");
        }
    }
}
