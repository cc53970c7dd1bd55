//! Great-circle distance, as the contract defines it: haversine on a sphere of 6371 km.

/// The Earth's radius the contract uses, in km.
pub const EARTH_RADIUS_KM: f64 = 6371.0;

/// Haversine distance in km between two points given in degrees.
///
/// ```
/// // Shanghai to Beijing, about 1068 km as the crow flies.
/// let km = order_router::geo::haversine_km(31.23, 121.47, 39.90, 116.40);
/// assert!((km - 1067.0).abs() < 5.0);
/// ```
#[inline]
pub fn haversine_km(latitude_a: f64, longitude_a: f64, latitude_b: f64, longitude_b: f64) -> f64 {
    let (phi_a, phi_b) = (latitude_a.to_radians(), latitude_b.to_radians());
    let delta_phi = phi_b - phi_a;
    let delta_lambda = (longitude_b - longitude_a).to_radians();
    let half_chord = (delta_phi / 2.0).sin().powi(2)
        + phi_a.cos() * phi_b.cos() * (delta_lambda / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * half_chord.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_distances() {
        assert_eq!(haversine_km(30.0, 120.0, 30.0, 120.0), 0.0);
        // Shanghai to Beijing is about 1068 km by great circle.
        let shanghai_beijing = haversine_km(31.23, 121.47, 39.90, 116.40);
        assert!(
            (shanghai_beijing - 1067.0).abs() < 5.0,
            "{shanghai_beijing}"
        );
        // A quarter of the equator.
        let quarter = haversine_km(0.0, 0.0, 0.0, 90.0);
        assert!((quarter - std::f64::consts::PI * EARTH_RADIUS_KM / 2.0).abs() < 1e-6);
    }
}
