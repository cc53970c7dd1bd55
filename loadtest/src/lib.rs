//! `loadtest`: an open-loop load tester for order routers that speak the order-router HTTP
//! contract (`POST /v1/orders` NDJSON streams or single JSON orders, `GET /v1/network`,
//! `GET /v1/catalog`, `GET /v1/stock`, `GET /metrics`).
//!
//! The map, in the order a run uses it (each module depends only on those above it):
//! - [`scenario`]: the TOML scenarios (transport, phases of rate over time, order mix).
//! - [`target`]: the server under test, connections to it, and what it tells about itself.
//! - [`ndjson`]: the one NDJSON line splitter, bounded, for every stream the tool reads.
//! - [`generate`]: the orders, each with what its answer must be.
//! - [`outbox`]: what is due and not yet sent, shedding what waits too long.
//! - [`stats`]: counts and HdrHistogram latencies, totals, per phase and per second.
//! - [`stock`]: the stock check (reserved units against the decisions' shipments).
//! - [`ship`]: the warehouse side (`[ship]`): placed orders marked shipped after a delay,
//!   over connections of their own.
//! - [`connection`]: NDJSON streams (full duplex) and single-order requests; every answer
//!   checked against its line.
//! - [`recovery`], [`report`], [`chart`]: back to baseline after the spike, the JSON report
//!   and the table, the SVG chart; [`progress`]: the live progress line.
//! - [`run`]: the scheduler (orders at their intended times, whatever the server does) and
//!   the drain.
//! - [`bare`] and [`limit`]: the router against a bare endpoint of the same stack.
//! - [`capacity`]: runs of one rate each, searching the highest rate a server holds, then
//!   the latency at half of it.

pub mod bare;
pub mod capacity;
pub mod chart;
pub mod connection;
pub mod generate;
pub mod limit;
pub mod ndjson;
pub mod outbox;
pub mod progress;
pub mod recovery;
pub mod report;
pub mod run;
pub mod scenario;
pub mod ship;
pub mod stats;
pub mod stock;
pub mod target;
