//! Ingest: bytes in, validated orders out. [`lines`] cuts a stream into bounded NDJSON lines;
//! [`parse`] turns one line into an [`crate::model::Order`] or an `invalid` record.

pub mod lines;
pub mod parse;

pub use lines::{Line, LineSplitter};
pub use parse::{is_valid_order_id, parse_order};

use crate::catalog::Catalog;
use crate::config::Network;
use crate::model::{Invalid, InvalidCode, Order};

/// One input line after parsing: its number and the order, or what is wrong with it.
pub type Parsed = (u64, Result<Order, Invalid>);

/// Parses one line the splitter cut (a line over the limit is `line_too_long`).
pub fn parse_line(network: &Network, catalog: &Catalog, line: Line<'_>) -> Parsed {
    match line {
        Line::Complete { number, bytes } => (number, parse_order(bytes, network, catalog)),
        Line::TooLong { number, bytes } => {
            let limit = network.limits.max_line_bytes;
            let invalid = Invalid::new(
                InvalidCode::LineTooLong,
                format!("line is {bytes} bytes, the limit is {limit}"),
            );
            (number, Err(invalid))
        }
    }
}
