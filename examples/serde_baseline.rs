//! The yardstick of the `route` benchmark (issue 2): what serde_json alone costs
//! ([`order_router::yardstick`]). It reads NDJSON orders from stdin exactly as `route` does
//! (same chunking and line splitting), parses each line into an owned struct that mirrors
//! the order contract, and writes a one-line acknowledgement per order.
//!
//! ```sh
//! cargo run --release --example serde_baseline < orders.ndjson > /dev/null
//! ```

use order_router::ingest::{Line, LineSplitter};
use order_router::yardstick::acknowledge;
use std::io::{Read, Write};

fn main() -> std::io::Result<()> {
    let mut input = std::io::stdin().lock();
    let mut output = std::io::stdout().lock();
    let mut splitter = LineSplitter::new(1 << 20);
    let mut chunk = vec![0u8; 256 * 1024];
    let mut out: Vec<u8> = Vec::with_capacity(320 * 1024);
    let (mut parsed, mut failed) = (0u64, 0u64);
    let mut answer = |line: Line<'_>, out: &mut Vec<u8>| {
        if let Line::Complete { bytes, .. } = line {
            if acknowledge(bytes, out) {
                parsed += 1;
            } else {
                failed += 1;
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
