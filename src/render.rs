//! Decisions and `invalid` records as contract JSON (DESIGN section 4).
//!
//! Decisions hold indexes; rendering looks the names up in the network and catalogue they
//! were decided under. Numbers are rounded for people and for byte-stable output: distances
//! to 0.1 km, weights to the gram, costs to the cent. Field order is fixed, so the same
//! decision always renders to the same bytes.
//!
//! A decision is written byte by byte rather than through serde: it is one of the three
//! costs of every order (with parsing and routing), and the generic serializer spent more
//! instructions on it than the routing engine did (see `docs/benchmarks.md`). Strings still
//! go through serde_json whenever they need escaping; the rare `invalid` record uses serde.

use crate::catalog::Catalog;
use crate::config::Network;
use crate::model::{Decision, Invalid, LineQuantity, Reason, RiskHit, Shipment};
use serde::Serialize;

/// Appends `decision` as one JSON line (with `\n`) to `out`.
pub fn write_decision(
    out: &mut Vec<u8>,
    decision: &Decision,
    duplicate: bool,
    network: &Network,
    catalog: &Catalog,
) {
    // Which name tables can be copied without a look at each byte.
    let plain = Plain {
        zones: network.zone_ids.all_json_plain(),
        warehouses: network.warehouse_ids.all_json_plain(),
        carriers: network.carrier_ids.all_json_plain(),
        skus: catalog.sku_ids.all_json_plain(),
    };
    out.extend_from_slice(b"{\"order_id\":");
    // Order ids are validated to `A-Za-z0-9._:-`: nothing to escape.
    write_known(out, &decision.order_id, true);
    out.extend_from_slice(b",\"status\":\"");
    out.extend_from_slice(decision.status.name().as_bytes());
    out.extend_from_slice(b"\",\"zone\":");
    write_known(out, network.zone_name(decision.zone), plain.zones);
    out.extend_from_slice(b",\"seq\":");
    out.extend_from_slice(itoa::Buffer::new().format(decision.seq).as_bytes());
    out.extend_from_slice(b",\"decided_at\":\"");
    decision.decided_at.write_rfc3339(out);
    out.extend_from_slice(b"\",\"shipments\":[");
    for (index, shipment) in decision.shipments.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_shipment(out, shipment, network, catalog, &plain);
    }
    out.extend_from_slice(b"],\"backordered\":");
    write_lines(out, &decision.backordered, catalog, plain.skus);
    out.extend_from_slice(b",\"reason\":");
    write_reason(out, decision.reason.as_deref());
    if let Some(hits) = &decision.risk {
        write_risk(out, hits);
    }
    if duplicate {
        out.extend_from_slice(b",\"duplicate\":true");
    }
    out.extend_from_slice(b"}\n");
}

/// One shipment of a decision as a JSON object.
#[inline]
fn write_shipment(
    out: &mut Vec<u8>,
    shipment: &Shipment,
    network: &Network,
    catalog: &Catalog,
    plain: &Plain,
) {
    out.extend_from_slice(b"{\"warehouse\":");
    write_known(
        out,
        network.warehouse_name(shipment.warehouse),
        plain.warehouses,
    );
    out.extend_from_slice(b",\"carrier\":");
    write_known(out, network.carrier_name(shipment.carrier), plain.carriers);
    out.extend_from_slice(b",\"service\":\"");
    out.extend_from_slice(shipment.level.name().as_bytes());
    out.extend_from_slice(b"\",\"lines\":");
    write_lines(out, &shipment.lines, catalog, plain.skus);
    out.extend_from_slice(b",\"distance_km\":");
    write_rounded(out, shipment.distance_km, 1);
    out.extend_from_slice(b",\"weight_kg\":");
    write_rounded(out, shipment.weight_kg, 3);
    out.extend_from_slice(b",\"cost\":");
    write_rounded(out, shipment.cost, 2);
    out.extend_from_slice(b",\"eta\":\"");
    shipment.eta.write_rfc3339(out);
    out.extend_from_slice(b"\"}");
}

/// A decision's reason, `{"code","message"}`, or `null` when it has none.
#[inline]
fn write_reason(out: &mut Vec<u8>, reason: Option<&Reason>) {
    match reason {
        None => out.extend_from_slice(b"null"),
        Some(reason) => {
            out.extend_from_slice(b"{\"code\":\"");
            out.extend_from_slice(reason.code.name().as_bytes());
            out.extend_from_slice(b"\",\"message\":");
            write_string(out, &reason.message);
            out.push(b'}');
        }
    }
}

/// The `"risk"` field: every risk rule the order tripped.
fn write_risk(out: &mut Vec<u8>, hits: &[RiskHit]) {
    out.extend_from_slice(b",\"risk\":[");
    for (index, hit) in hits.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"rule\":");
        write_string(out, &hit.rule);
        out.extend_from_slice(b",\"message\":");
        write_string(out, &hit.message);
        out.push(b'}');
    }
    out.push(b']');
}

/// The `error` object of a line's record (`invalid`, or the `error` that ends a stream).
#[derive(Serialize)]
pub struct LineError<'a> {
    pub code: &'a str,
    pub message: &'a str,
}

/// Appends an `invalid` record for input line `line` as one JSON line to `out`.
pub fn write_invalid(out: &mut Vec<u8>, line: u64, invalid: &Invalid) {
    #[derive(Serialize)]
    struct Record<'a> {
        line: u64,
        status: &'a str,
        order_id: Option<&'a str>,
        error: LineError<'a>,
    }
    let record = Record {
        line,
        status: "invalid",
        order_id: invalid.order_id.as_deref(),
        error: LineError {
            code: invalid.code.name(),
            message: &invalid.message,
        },
    };
    serde_json::to_writer(&mut *out, &record).expect("writing JSON to a Vec cannot fail");
    out.push(b'\n');
}

/// Whether each name table is free of characters JSON must escape.
struct Plain {
    zones: bool,
    warehouses: bool,
    carriers: bool,
    skus: bool,
}

fn write_lines(out: &mut Vec<u8>, lines: &[LineQuantity], catalog: &Catalog, plain: bool) {
    out.push(b'[');
    for (index, line) in lines.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"sku\":");
        write_known(out, catalog.sku_name(line.sku), plain);
        out.extend_from_slice(b",\"qty\":");
        out.extend_from_slice(itoa::Buffer::new().format(line.quantity).as_bytes());
        out.push(b'}');
    }
    out.push(b']');
}

/// `value` rounded to `decimals` places (1 to 3), written without trailing zeros (`14.2`,
/// `3.0`): the same text the shortest float formatter gives for the rounded value, done in
/// integer arithmetic because a float formatter costs several times as much. The digits are
/// put together right to left on the stack and appended at once.
fn write_rounded(out: &mut Vec<u8>, value: f64, decimals: u32) {
    const SCALES: [u64; 4] = [1, 10, 100, 1000];
    debug_assert!((1..=3).contains(&decimals), "1 to 3 decimals");
    let scale = SCALES[decimals as usize];
    let scaled = value * scale as f64;
    if !scaled.is_finite() || scaled.abs() >= 9.0e15 {
        // JSON has no infinities, and a finite network produces nothing this large.
        out.extend_from_slice(b"null");
        return;
    }
    let scaled = crate::rounding::round_to_i64(scaled);
    let (mut whole, mut fraction) = (scaled.unsigned_abs() / scale, scaled.unsigned_abs() % scale);
    let mut digits = decimals;
    while digits > 1 && fraction % 10 == 0 {
        fraction /= 10;
        digits -= 1;
    }
    // At most 16 digits before the point (below 9e15), the point, 3 after, a sign.
    let mut text = [0u8; 21];
    let mut at = text.len();
    for _ in 0..digits {
        at -= 1;
        text[at] = b'0' + (fraction % 10) as u8;
        fraction /= 10;
    }
    at -= 1;
    text[at] = b'.';
    loop {
        at -= 1;
        text[at] = b'0' + (whole % 10) as u8;
        whole /= 10;
        if whole == 0 {
            break;
        }
    }
    if scaled < 0 {
        at -= 1;
        text[at] = b'-';
    }
    out.extend_from_slice(&text[at..]);
}

/// A name from a table known to be `plain` (nothing to escape), or checked here.
#[inline]
fn write_known(out: &mut Vec<u8>, text: &str, plain: bool) {
    if plain {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        write_string(out, text);
    }
}

/// A JSON string. Ids and names are nearly always plain ASCII, copied as they are; anything
/// that needs escaping goes through serde_json.
fn write_string(out: &mut Vec<u8>, text: &str) {
    if crate::ids::is_json_plain(text) {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, text).expect("writing JSON to a Vec cannot fail");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_only_when_needed() {
        let mut out = Vec::new();
        write_string(&mut out, "SKU-1");
        write_string(&mut out, "a\"b\\c\n");
        assert_eq!(String::from_utf8(out).unwrap(), r#""SKU-1""a\"b\\c\n""#);
    }

    #[test]
    fn numbers_are_rounded_and_short() {
        let mut out = Vec::new();
        for (value, decimals) in [
            (12.4499, 1),
            (14.2, 2),
            (3.0, 3),
            (0.05, 2),
            (1234.5678, 3),
            (-2.5, 1),
        ] {
            write_rounded(&mut out, value, decimals);
            out.push(b' ');
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "12.4 14.2 3.0 0.05 1234.568 -2.5 "
        );
    }

    proptest::proptest! {
        /// The integer formatting gives the same text as the shortest float formatter
        /// applied to the rounded value.
        #[test]
        fn rounding_matches_the_float_formatter(value in proptest::prop_oneof![0.0f64..1.0e7, 0.0f64..9.0e11], decimals in 1u32..=3) {
            let mut out = Vec::new();
            write_rounded(&mut out, value, decimals);
            let scale = 10f64.powi(decimals as i32);
            let expected = ryu::Buffer::new().format_finite((value * scale).round() / scale).to_owned();
            proptest::prop_assert_eq!(String::from_utf8(out).unwrap(), expected);
        }

        /// Values at and next to a half of the last place (`k + 0.5` over the scale, exact
        /// when the scale divides evenly) round as `f64::round` does, on both sides of zero.
        #[test]
        fn halves_round_away_from_zero(whole in -1_000_000i64..1_000_000, decimals in 1u32..=3) {
            let scale = 10i64.pow(decimals);
            let value = (whole as f64 + 0.5) / scale as f64;
            let mut out = Vec::new();
            write_rounded(&mut out, value, decimals);
            let rounded = (value * scale as f64).round() as i64;
            let sign = if rounded < 0 { "-" } else { "" };
            let (integer, fraction) = (rounded.abs() / scale, rounded.abs() % scale);
            let digits = format!("{fraction:0width$}", width = decimals as usize);
            let digits = digits.trim_end_matches('0');
            let expected = format!("{sign}{integer}.{}", if digits.is_empty() { "0" } else { digits });
            proptest::prop_assert_eq!(String::from_utf8(out).unwrap(), expected);
        }
    }
}
