//! # order-router
//!
//! A streaming order router: for every order it decides which warehouse (or warehouses)
//! ships it and which carrier service carries each shipment, reserves the stock, and answers
//! in order on the same stream. `../shared/DESIGN.md` is the brief; `docs/` holds the living
//! design.
//!
//! ## A map of the crate, in the order an order travels
//!
//! ```text
//! bytes --ingest--> Order --zone::admit--> Visit --zone::decide (engine, verdict)--> answer
//!                   (parse, validate,       (claim the id,   (one zone's batch: plan,     (render)
//!                    intern)                 first zone)      reserve, record; or pass on)
//!                                                                   |
//!                                          journal records <--------+ (zone::records)
//! ```
//!
//! - [`ingest`]: bytes in. [`ingest::LineSplitter`] cuts a stream into bounded NDJSON lines
//!   without copying; [`ingest::parse_order`] turns a line into a validated, interned
//!   [`model::Order`] or an `invalid` record saying what is wrong.
//! - [`zone`]: everything that decides in one zone, the routing partition. [`zone::admit`]
//!   claims the order's id ([`zone::Claims`], shared by every zone) and picks its home zone;
//!   [`zone::decide()`] is the one batch decision: a zone takes a batch of visits and
//!   returns the answers, the new decisions, the journal records, and the visits that go on
//!   to the next zone of their fallback chain. [`zone::verdict`] turns a plan into a
//!   decision (the risk screen, [`risk`], then the review and backorder rules); [`zone::ZoneState`] is the zone's
//!   single-writer state (stock, capacity counters, records: the open ones in memory, the
//!   closed ones of the retention window on disk, [`zone::cold`]); [`zone::records`],
//!   [`zone::snapshot`] and [`zone::recover`] are what a zone writes to its journal and how
//!   it is rebuilt from it.
//! - [`engine`]: the routing engine, a pure function of (order, a zone's state, policy,
//!   decision time) to a plan. No I/O, no clock, no locks.
//! - [`risk`]: the risk screen of `[[risk]]` rules, run on a plan before it is reserved;
//!   its customer book (credit exposure, histories) is shared by the zones.
//! - [`journal`]: a zone's durable log, knowing records only as bytes: CRC32C-framed records
//!   in segment files, group commit (one write, one `fdatasync` per group), recovery that
//!   cuts a torn tail and refuses damage by file and offset, snapshots and compaction.
//! - [`render`]: decisions and `invalid` records as contract JSON.
//! - Two drivers of the same zones: [`route`] (`order-router route`: all zones in one
//!   thread, each order taken from zone to zone by [`zone::decide()`] until answered) and
//!   [`serve`] (the HTTP service: one actor per zone, a journal writer per thread, the
//!   decision feed, admission, reload, metrics).
//!
//! Around them: [`limits`] (every fixed bound, their relations checked at compile time),
//! [`config`] (the TOML network and policy, validated with located errors), [`catalog`]
//! (catalogue and stock CSV, demo data), [`world`] (what the router starts from), [`demo`]
//! (generated orders), [`model`] (orders, decisions, counts), [`ids`] (interning),
//! [`time`], [`geo`], [`rounding`], [`prefetch`]. [`cli`] is the command line; `main.rs`
//! only calls it. [`yardstick`] is what the `route` benchmark measures against.

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
pub mod risk;
pub mod rounding;
pub mod route;
pub mod serve;
pub mod time;
pub mod world;
pub mod yardstick;
pub mod zone;
