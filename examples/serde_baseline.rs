//! The yardstick of the `route` benchmark (issue 2): what serde_json alone costs. It reads
//! NDJSON orders from stdin exactly as `route` does (same chunking and line splitting),
//! parses each line into an owned struct that mirrors the order contract, and writes a
//! one-line acknowledgement per order. No routing, no state.
//!
//! ```sh
//! cargo run --release --example serde_baseline < orders.ndjson > /dev/null
//! ```

use order_router::ingest::{Line, LineSplitter};
use serde::Deserialize;
use std::io::{Read, Write};

#[allow(dead_code)] // Fields are parsed to be paid for, not read.
#[derive(Deserialize)]
struct Order {
    id: String,
    customer: Customer,
    ship_to: ShipTo,
    service: Option<String>,
    promise_by: Option<String>,
    lines: Vec<OrderLine>,
    split: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    created_at: Option<String>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct Customer {
    id: String,
    tier: Option<String>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct ShipTo {
    region: String,
    city: Option<String>,
    postal: Option<String>,
    lat: Option<f64>,
    lon: Option<f64>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct OrderLine {
    sku: String,
    qty: u32,
    unit_price: Option<f64>,
}

fn main() -> std::io::Result<()> {
    let mut input = std::io::stdin().lock();
    let mut output = std::io::stdout().lock();
    let mut splitter = LineSplitter::new(1 << 20);
    let mut chunk = vec![0u8; 256 * 1024];
    let mut out: Vec<u8> = Vec::with_capacity(320 * 1024);
    let (mut parsed, mut failed) = (0u64, 0u64);
    let mut answer = |line: Line<'_>, out: &mut Vec<u8>| {
        if let Line::Complete { bytes, .. } = line {
            match serde_json::from_slice::<Order>(bytes) {
                Ok(order) => {
                    parsed += 1;
                    out.extend_from_slice(b"{\"order_id\":\"");
                    out.extend_from_slice(order.id.as_bytes());
                    out.extend_from_slice(b"\",\"status\":\"accepted\"}\n");
                }
                Err(_) => {
                    failed += 1;
                    out.extend_from_slice(b"{\"status\":\"invalid\"}\n");
                }
            }
        }
    };
    loop {
        let read = input.read(&mut chunk)?;
        if read == 0 {
            break;
        }
        splitter.feed(&chunk[..read], |line| answer(line, &mut out));
        if out.len() >= 256 * 1024 {
            output.write_all(&out)?;
            out.clear();
        }
    }
    splitter.finish(|line| answer(line, &mut out));
    output.write_all(&out)?;
    output.flush()?;
    eprintln!("serde_baseline: {parsed} parsed, {failed} failed");
    Ok(())
}
