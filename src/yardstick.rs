//! The yardstick of the `route` benchmark (issue 2): what serde_json alone costs for the same
//! input. [`acknowledge`] parses each line into [`MirrorOrder`], an owned struct that mirrors
//! the order contract with `String` fields, and writes a one-line acknowledgement. No
//! validation, no routing, no state. `examples/serde_baseline.rs` runs it over stdin and
//! `benches/pipeline.rs` over a buffer, beside `route`.

use serde::Deserialize;

/// The order contract as plain owned data.
#[allow(dead_code)] // Fields are parsed to be paid for, not read.
#[derive(Deserialize)]
pub struct MirrorOrder {
    id: String,
    customer: MirrorCustomer,
    ship_to: MirrorShipTo,
    service: Option<String>,
    promise_by: Option<String>,
    lines: Vec<MirrorLine>,
    split: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    created_at: Option<String>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct MirrorCustomer {
    id: String,
    tier: Option<String>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct MirrorShipTo {
    region: String,
    city: Option<String>,
    postal: Option<String>,
    lat: Option<f64>,
    lon: Option<f64>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct MirrorLine {
    sku: String,
    qty: u32,
    unit_price: Option<f64>,
}

/// Parses one line and appends its acknowledgement to `out`; whether it parsed.
pub fn acknowledge(line: &[u8], out: &mut Vec<u8>) -> bool {
    match serde_json::from_slice::<MirrorOrder>(line) {
        Ok(order) => {
            out.extend_from_slice(b"{\"order_id\":\"");
            out.extend_from_slice(order.id.as_bytes());
            out.extend_from_slice(b"\",\"status\":\"accepted\"}\n");
            true
        }
        Err(_) => {
            out.extend_from_slice(b"{\"status\":\"invalid\"}\n");
            false
        }
    }
}
