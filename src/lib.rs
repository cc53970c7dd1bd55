//! # order-router
//!
//! A streaming order router: for every order it decides which warehouse (or warehouses)
//! ships it and which carrier service carries each shipment, reserves the stock, and answers
//! in order on the same stream. `../shared/DESIGN.md` is the brief; `docs/` holds the living
//! design.
//!
//! ## A map of the crate, in the order an order travels
//!
//! - [`ingest`]: bytes in. [`ingest::LineSplitter`] cuts a stream into bounded NDJSON lines
//!   without copying; [`ingest::parse_order`] turns a line into a validated, interned
//!   [`model::Order`] or an `invalid` record saying what is wrong.
//! - [`router`]: the order-id claims (idempotency) and the zone order: home zone, then its
//!   fallbacks; it commits the first full plan, or backorders, or rejects. One thread, for
//!   `route`.
//! - [`zone`]: the same journey for the service, one zone at a time: each zone shard
//!   ([`serve::shard`]) takes an order a step (try here, pass on, settle at home), the
//!   claims shared by every zone in a `dashmap`.
//! - [`engine`]: the routing engine, a pure function of (order, a zone's state, policy,
//!   decision time) to a plan. No I/O, no clock, no locks.
//! - [`shard`]: [`shard::ZoneState`], one zone's single-writer state: stock cells, daily
//!   capacity counters, the record of every order it decided (in an [`arena::Arena`]:
//!   chunks shared on clone, so a snapshot copies the state in a millisecond).
//! - [`journal`]: a zone's durable log: CRC32C-framed records in segment files, group
//!   commit (one write, one `fdatasync` per group), recovery that cuts a torn tail and
//!   refuses damage by file and offset, snapshots and compaction; [`durable`] is what the
//!   zones write into it, and [`serve::durability`] the writer and snapshot threads.
//! - [`render`]: decisions and `invalid` records as contract JSON.
//! - [`route`]: `order-router route`, the engine as a deterministic stdin-to-stdout filter.
//!
//! Around them: [`config`] (the TOML network and policy, validated with located errors),
//! [`catalog`] (catalogue and stock CSV, demo data), [`world`] (what the router starts
//! from), [`demo`] (generated orders), [`ids`] (interning), [`time`], [`geo`], [`model`], [`prefetch`].
//! [`cli`] is the command line; `main.rs` only calls it. [`yardstick`] is what the `route`
//! benchmark measures against.

pub mod catalog;
pub mod cli;
pub mod config;
pub mod demo;
pub mod engine;
pub mod geo;
pub mod ids;
pub mod ingest;
pub mod journal;
pub mod limits;
pub mod model;
pub mod prefetch;
pub mod render;
pub mod route;
pub mod serve;
pub mod time;
pub mod world;
pub mod yardstick;
pub mod zone;
