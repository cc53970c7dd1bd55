//! Ingest: bytes in, validated orders out. [`lines`] cuts a stream into bounded NDJSON lines;
//! [`parse`] turns one line into an [`crate::model::Order`] or an `invalid` record.

pub mod lines;
pub mod parse;

pub use lines::{Line, LineSplitter};
pub use parse::{is_valid_order_id, parse_order};
