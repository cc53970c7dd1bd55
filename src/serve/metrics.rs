//! Every metric the service exports: its name, its HELP text, its unit and its labels, in
//! one place. Code elsewhere names a metric by its constant in [`names`], never by a string.
//!
//! Names follow `router_<what>_<unit>[_total]`; labels take values from bounded sets (zone,
//! warehouse and carrier ids of the config, status and code enums, a fixed stage list), so
//! the number of series is bounded by the config, never by traffic. Counters that a batch
//! adds to are added to once per batch.

use crate::model::{InvalidCode, Status, Tally};
use metrics::Unit;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// The names, as Prometheus shows them.
pub mod names {
    /// Counter, `{status}`: new decisions.
    pub const ORDERS_DECIDED: &str = "router_orders_decided_total";
    /// Counter: retries answered with their original decision.
    pub const ORDERS_DUPLICATE: &str = "router_orders_duplicate_total";
    /// Counter, `{code}`: lines answered `invalid`.
    pub const LINES_INVALID: &str = "router_lines_invalid_total";
    /// Histogram: from a chunk's last byte read to its answers ready.
    pub const DECISION_LATENCY: &str = "router_decision_latency_seconds";
    /// Histogram, `{stage}`: parse, queue_wait, decide, answer.
    pub const STAGE_LATENCY: &str = "router_stage_latency_seconds";
    /// Histogram: lines in each batch of an order stream, invalid ones included (what came
    /// at once; up to 512 KiB of body while the stream is backed up).
    pub const STREAM_BATCH_LINES: &str = "router_stream_batch_lines";
    /// Gauge: orders read and not yet answered.
    pub const ORDERS_IN_FLIGHT: &str = "router_orders_in_flight";
    /// Gauge: order streams open.
    pub const STREAMS_OPEN: &str = "router_streams_open";
    /// Counter, `{reason}`: order streams whose body ended early (`bad_body`: the body's
    /// framing broke or the client went away; `body_timeout`: it went silent).
    pub const STREAMS_CUT: &str = "router_streams_cut_total";
    /// Counter, `{reason}`: requests refused at the edge before a handler could read them
    /// (`bad_head`: a request head the HTTP parser refused; `head_timeout`: a head not
    /// complete within `limits.header_timeout_ms`; `ambiguous_length`: both
    /// Transfer-Encoding and Content-Length).
    pub const REQUESTS_REFUSED: &str = "router_requests_refused_total";
    /// Counter, `{reason}`: connections the edge closed while a response was being written
    /// (`write_stall`: the client took no byte of it for `limits.write_stall_timeout_ms`).
    pub const CONNECTIONS_CUT: &str = "router_connections_cut_total";
    /// Counter, `{rule}`: orders held for review, by the rule that held them
    /// (`hold_tags`, `hold_order_value_over`).
    pub const HOLDS: &str = "router_holds_total";
    /// Gauge, `{zone}`: held orders waiting for review.
    pub const REVIEWS_PENDING: &str = "router_reviews_pending";
    /// Gauge, `{zone, kept}`: order records the zone keeps for the retention window
    /// (`kept`: `memory`, open orders and ones closed a moment ago; `disk`, closed ones).
    pub const ZONE_RECORDS: &str = "router_zone_records";
    /// Gauge, `{zone}`: seconds the oldest hold waiting for review has waited (0: none).
    pub const REVIEW_AGE: &str = "router_review_oldest_age_seconds";
    /// Counter, `{outcome}`: reviews ended (`approved`: released; `rejected`).
    pub const REVIEWS: &str = "router_reviews_total";
    /// Counter: requests answered 429.
    pub const REQUESTS_THROTTLED: &str = "router_requests_throttled_total";
    /// Counter, `{status}`: requests refused 401 or 403.
    pub const AUTH_REFUSED: &str = "router_auth_refused_total";
    /// Counter, `{zone}`: messages of orders sent to each zone actor, fallbacks included.
    pub const ZONE_QUEUE_PUSHED: &str = "router_zone_queue_pushed_total";
    /// Counter, `{zone}`: messages of orders each zone actor took.
    pub const ZONE_QUEUE_POPPED: &str = "router_zone_queue_popped_total";
    /// Gauge, `{warehouse}`: today's orders over `daily_orders`.
    pub const WAREHOUSE_UTILISATION: &str = "router_warehouse_utilisation_ratio";
    /// Gauge, `{carrier, warehouse}`: today's pickups over `daily_pickups`.
    pub const CARRIER_PICKUP_UTILISATION: &str = "router_carrier_pickup_utilisation_ratio";
    /// Counter, `{kind}`: capacity warnings (warehouse or carrier).
    pub const BOTTLENECK_WARNINGS: &str = "router_bottleneck_warnings_total";
    /// Counter, `{zone}`: writes of the zone's journal (each synced on its own; or, under
    /// the write-ahead log, unsynced, once 256 KiB of the zone's records wait there).
    pub const JOURNAL_COMMITS: &str = "router_journal_commits_total";
    /// Counter: commits of the journal writers' write-ahead logs (one write, one sync each:
    /// a round of every zone a writer serves).
    pub const JOURNAL_WAL_COMMITS: &str = "router_journal_wal_commits_total";
    /// Histogram: how long each journal round held open for more (while many orders were in
    /// flight) waited (`serve::group_commit::Hold`); its count is the rounds held.
    pub const JOURNAL_HOLD_LATENCY: &str = "router_journal_hold_latency_seconds";
    /// Counter: checkpoints of the write-ahead logs (the zones' journals synced).
    pub const JOURNAL_WAL_CHECKPOINTS: &str = "router_journal_wal_checkpoints_total";
    /// Counter: journal segments (the write-ahead logs' and the zones') made ahead of their
    /// roll (zeros; a segment compaction freed is reused when there is one).
    pub const JOURNAL_SPARES: &str = "router_journal_spare_segments_total";
    /// Counter, `{zone}`: journal records written.
    pub const JOURNAL_RECORDS: &str = "router_journal_records_total";
    /// Histogram, `{zone}`: a round's records of the zone until durable: its journal's write
    /// and sync, or the write-ahead log's commit of the round.
    pub const JOURNAL_COMMIT_LATENCY: &str = "router_journal_commit_latency_seconds";
    /// Counter, `{zone}`: snapshots written.
    pub const JOURNAL_SNAPSHOTS: &str = "router_journal_snapshots_total";
    /// Gauge: entries the decision feed holds.
    pub const FEED_ENTRIES: &str = "router_feed_entries";
    /// Counter, `{outcome}`: config reloads (applied, unchanged, refused).
    pub const CONFIG_RELOADS: &str = "router_config_reloads_total";
    /// Gauge: resident memory (the name every Prometheus client library uses).
    pub const RESIDENT_MEMORY: &str = "process_resident_memory_bytes";
    /// Gauge: the peak of resident memory.
    pub const RESIDENT_MEMORY_PEAK: &str = "router_memory_resident_peak_bytes";
}

/// Upper bounds of the latency histograms' buckets, in seconds: 100 us to 10 s.
const LATENCY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Upper bounds of the batch-size histogram's buckets, in lines: one line to a stream's
/// largest batches (512 KiB of body is about 1,800 orders of the demo world, more of small
/// orders).
const BATCH_BUCKETS: [f64; 10] = [
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0,
];

/// Installs the Prometheus recorder, with every metric described.
pub fn install() -> Result<PrometheusHandle, BuildError> {
    let handle = PrometheusBuilder::new()
        // Latencies as true Prometheus histograms (they aggregate across instances, which
        // summaries do not).
        .set_buckets_for_metric(Matcher::Suffix("_latency_seconds".into()), &LATENCY_BUCKETS)?
        .set_buckets_for_metric(
            Matcher::Full(names::STREAM_BATCH_LINES.into()),
            &BATCH_BUCKETS,
        )?
        .install_recorder()?;
    describe();
    Ok(handle)
}

/// The HELP text and unit of every metric.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    use names::*;
    describe_counter!(ORDERS_DECIDED, "New decisions, by status.");
    describe_counter!(
        ORDERS_DUPLICATE,
        "Retries answered with their original decision."
    );
    describe_counter!(LINES_INVALID, "Lines answered invalid, by error code.");
    describe_histogram!(
        DECISION_LATENCY,
        Unit::Seconds,
        "From a chunk's last byte read to its answers ready to send."
    );
    describe_histogram!(
        STAGE_LATENCY,
        Unit::Seconds,
        "Time in each stage of a chunk: parse, queue_wait, decide, answer."
    );
    describe_histogram!(
        STREAM_BATCH_LINES,
        "Lines in each batch of an order stream: what came at once, or up to 512 KiB of body while the stream is backed up."
    );
    describe_gauge!(ORDERS_IN_FLIGHT, "Orders read and not yet answered.");
    describe_gauge!(STREAMS_OPEN, "Order streams open.");
    describe_counter!(
        STREAMS_CUT,
        "Order streams whose body ended early, by reason (bad_body, body_timeout)."
    );
    describe_counter!(
        CONNECTIONS_CUT,
        "Connections closed while a response was being written, by reason (write_stall)."
    );
    describe_counter!(
        REQUESTS_REFUSED,
        "Requests refused at the edge, by reason (bad_head, head_timeout, ambiguous_length)."
    );
    describe_gauge!(REVIEWS_PENDING, "Held orders waiting for review, by zone.");
    describe_gauge!(
        ZONE_RECORDS,
        "Order records kept for the retention window, by zone and where (memory, disk)."
    );
    describe_counter!(
        HOLDS,
        "Orders held for review, by the rule that held them (hold_tags, hold_order_value_over)."
    );
    describe_gauge!(
        REVIEW_AGE,
        Unit::Seconds,
        "How long the oldest hold waiting for review has waited, by zone (set once a second)."
    );
    describe_counter!(
        REVIEWS,
        "Reviews of held orders ended, by outcome (approved, rejected)."
    );
    describe_counter!(REQUESTS_THROTTLED, "Requests answered 429 (overloaded).");
    describe_counter!(AUTH_REFUSED, "Requests refused 401 or 403.");
    describe_counter!(
        ZONE_QUEUE_PUSHED,
        "Messages of orders sent to each zone actor, fallbacks included."
    );
    describe_counter!(
        ZONE_QUEUE_POPPED,
        "Messages of orders each zone actor took."
    );
    describe_gauge!(
        WAREHOUSE_UTILISATION,
        "Today's orders of a warehouse over its daily_orders (set at most once a second)."
    );
    describe_gauge!(
        CARRIER_PICKUP_UTILISATION,
        "Today's pickups of a carrier at a warehouse over its daily_pickups."
    );
    describe_counter!(
        BOTTLENECK_WARNINGS,
        "Warnings that a warehouse or carrier passed alerts.bottleneck_share of its capacity."
    );
    describe_journal();
    describe_gauge!(FEED_ENTRIES, "Entries the decision feed holds.");
    describe_counter!(CONFIG_RELOADS, "Config reloads, by outcome.");
    describe_gauge!(
        RESIDENT_MEMORY,
        Unit::Bytes,
        "Resident memory of the process."
    );
    describe_gauge!(
        RESIDENT_MEMORY_PEAK,
        Unit::Bytes,
        "Peak resident memory of the process."
    );
}

/// The journal's metrics (part of [`describe`]).
fn describe_journal() {
    use metrics::{describe_counter, describe_histogram};
    use names::*;
    describe_counter!(
        JOURNAL_COMMITS,
        "Writes of a zone's journal (each synced on its own, or under the write-ahead log unsynced once 256 KiB of its records wait), by zone."
    );
    describe_counter!(JOURNAL_RECORDS, "Journal records written, by zone.");
    describe_histogram!(
        JOURNAL_COMMIT_LATENCY,
        Unit::Seconds,
        "A round's records of a zone until durable (its journal's write and sync, or the write-ahead log's commit of the round), by zone."
    );
    describe_counter!(
        JOURNAL_WAL_COMMITS,
        "Commits of the journal writers' write-ahead logs: one write and one sync for a round of every zone a writer serves."
    );
    describe_histogram!(
        JOURNAL_HOLD_LATENCY,
        Unit::Seconds,
        "How long a journal round held open for more records (while many orders were in flight, --commit-hold-us) waited; its count is the rounds held."
    );
    describe_counter!(
        JOURNAL_WAL_CHECKPOINTS,
        "Checkpoints of the journal writers' write-ahead logs (every zone journal synced)."
    );
    describe_counter!(
        JOURNAL_SPARES,
        "Journal segments (write-ahead logs' and zones') made ahead of their roll, filled with zeros."
    );
    describe_counter!(JOURNAL_SNAPSHOTS, "Zone snapshots written, by zone.");
}

// The handles recorded for every chunk are registered at their first use and kept in a
// `OnceLock`: a `counter!` or `histogram!` call looks its key up in the registry every time
// (a hash, a lock, a probe, the handle made and dropped). Registered when first used, as
// the macro would (so /metrics lists what has happened, as before): after the recorder is
// installed at start, before any chunk.

/// The latency of a chunk's `stage` (`router_stage_latency_seconds`).
pub fn stage_latency(stage: Stage) -> &'static metrics::Histogram {
    static STAGES: [OnceLock<metrics::Histogram>; 4] = [const { OnceLock::new() }; 4];
    STAGES[stage as usize]
        .get_or_init(|| metrics::histogram!(names::STAGE_LATENCY, "stage" => stage.name()))
}

/// From a chunk's arrival to its answers handed to the response
/// (`router_decision_latency_seconds`).
pub fn decision_latency() -> &'static metrics::Histogram {
    static LATENCY: OnceLock<metrics::Histogram> = OnceLock::new();
    LATENCY.get_or_init(|| metrics::histogram!(names::DECISION_LATENCY))
}

/// Lines in a batch of an order stream (`router_stream_batch_lines`).
pub fn stream_batch_lines() -> &'static metrics::Histogram {
    static LINES: OnceLock<metrics::Histogram> = OnceLock::new();
    LINES.get_or_init(|| metrics::histogram!(names::STREAM_BATCH_LINES))
}

/// The stages of a chunk that `router_stage_latency_seconds` times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Parse = 0,
    QueueWait = 1,
    Decide = 2,
    Answer = 3,
}

impl Stage {
    /// The `stage` label.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Parse => "parse",
            Stage::QueueWait => "queue_wait",
            Stage::Decide => "decide",
            Stage::Answer => "answer",
        }
    }
}

/// Counts a chunk's answers, once per chunk.
pub fn record_tally(tally: &Tally) {
    static DECIDED: [OnceLock<metrics::Counter>; 4] = [const { OnceLock::new() }; 4];
    static DUPLICATES: OnceLock<metrics::Counter> = OnceLock::new();
    static INVALID: [OnceLock<metrics::Counter>; InvalidCode::ALL.len()] =
        [const { OnceLock::new() }; InvalidCode::ALL.len()];
    for (index, (status, count)) in [
        (Status::Routed, tally.routed),
        (Status::Backordered, tally.backordered),
        (Status::Held, tally.held),
        (Status::Rejected, tally.rejected),
    ]
    .into_iter()
    .enumerate()
    {
        if count > 0 {
            DECIDED[index]
                .get_or_init(|| metrics::counter!(names::ORDERS_DECIDED, "status" => status.name()))
                .increment(count);
        }
    }
    if tally.duplicates > 0 {
        DUPLICATES
            .get_or_init(|| metrics::counter!(names::ORDERS_DUPLICATE))
            .increment(tally.duplicates);
    }
    for ((code, count), handle) in InvalidCode::ALL
        .iter()
        .zip(tally.invalid_by_code)
        .zip(&INVALID)
    {
        if count > 0 {
            handle
                .get_or_init(|| metrics::counter!(names::LINES_INVALID, "code" => code.name()))
                .increment(count);
        }
    }
}
