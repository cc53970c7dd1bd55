//! `loadtest`: an open-loop load tester for order routers that speak the order-router HTTP
//! contract (`POST /v1/orders` NDJSON streams or single JSON orders, `GET /v1/network`,
//! `GET /v1/catalog`, `GET /v1/stock`, `GET /metrics`).
//!
//! The map:
//! - [`scenario`]: the TOML scenarios (transport, phases of rate over time, order mix).
//! - [`target`]: the server under test and what it tells about itself.
//! - [`generate`]: the orders, each with what its answer must be.
//! - [`run`]: the scheduler (orders at their intended times, whatever the server does) and
//!   the drain; [`outbox`] holds what is due and not yet sent, shedding what waits too long.
//! - [`connection`]: NDJSON streams (full duplex) and single-order requests; every answer
//!   checked against its line.
//! - [`stats`]: counts and HdrHistogram latencies, totals, per phase and per second.
//! - [`report`]: the live progress line, the table, the JSON report and the SVG chart.
//! - [`limit`] and [`bare`]: the router against a bare endpoint of the same stack.

pub mod bare;
pub mod connection;
pub mod generate;
pub mod limit;
pub mod outbox;
pub mod report;
pub mod run;
pub mod scenario;
pub mod stats;
pub mod target;
