//! Every fixed bound of the router, in one place, with the relations between them checked
//! when the crate compiles.
//!
//! Bounds that ops tune live in the config (`[limits]`, `crate::config::Limits`: line
//! length, lines per order, streams, orders in flight, timeouts) or on the command line
//! (`serve --group-records`, `--commit-window-us`, `--snapshot-every`, `--retention-hours`)
//! and are checked where they are read (the config checker, `JournalOptions::validate`),
//! against the constants here where one bounds them. The journal's own format bounds (frame
//! and payload sizes, segment sizes, group bounds) stay with the format in `crate::journal`.
//! What each bound does when it is reached is said beside it; `docs/architecture.md`
//! ("Bounds") lists them all.

use std::time::Duration;

// ---- ingest and the order itself ----

/// Units one order line may ask for; more is `bad_qty`.
pub const MAX_LINE_QUANTITY: u64 = 1_000_000;

/// Shipments an order may be split into at most (`policy.max_shipments` is refused above).
pub const MAX_SHIPMENTS: u32 = 6;

/// Warehouses a split considers at most (`policy.split_candidates` is refused above).
pub const MAX_SPLIT_CANDIDATES: u32 = 16;

/// How many orders ahead a batch loop starts loading the stock cells and SKU entries of the
/// order it will decide: enough to cover a memory load's latency with the work of deciding
/// the orders in between. One value for `route` and the zone actors.
pub const PREFETCH_AHEAD: usize = 4;

// ---- zones ----

/// UTC days of capacity counters a zone keeps. Orders decided at times older than this (a
/// `route` replay of an old file, say) count against a fresh day.
pub const COUNTED_DAYS: usize = 8;

/// Records in one chunk of a zone's record arena: a snapshot copies the chunk list, not the
/// records, so a copy costs a pointer per 4,096 orders.
pub const ARENA_CHUNK_RECORDS: usize = 4_096;

/// Segments of the claims table (independently locked; `zone::Claims`). With millions of
/// claims in `4 x cores` segments (8 here), a segment's growth (a doubling copy, then) stalled
/// every order hashing there for tens of milliseconds; 256 smaller segments make what still
/// grows by doubling, each segment's index, proportionally shorter to rebuild (1.1 ms worst
/// with the former `dashmap`, measured in `docs/benchmarks.md`).
pub const CLAIMS_SEGMENTS: usize = 256;

/// Claims in one chunk of a claims segment (8 KiB): a segment grows a chunk at a time, and
/// frees a chunk once every claim in it is released. The last chunk of each of the
/// [`CLAIMS_SEGMENTS`] segments is partly empty, half a chunk each on average (1 MiB in all
/// at this size; 4 MiB at 1,024 claims a chunk, which `docs/benchmarks.md` measured as 10
/// bytes a retained decision between 200k and 600k decisions).
pub const CLAIMS_CHUNK: usize = 256;

/// Bytes of one file of a zone's cold records (`zone::cold`) before the next is started;
/// a file is deleted once none of its records is kept. Below 4 GiB: places are 32-bit.
pub const COLD_FILE_BYTES: u64 = 64 << 20;

// ---- the service ----

/// Records closed (or decided holding nothing) that a zone actor lets wait in memory
/// before it writes them to its cold store in one go; the clock's tick (once a second)
/// writes the rest.
pub const CHILL_PENDING: usize = 256;

/// Messages a zone actor's mailbox holds before senders of requests (not orders) wait.
/// Orders are bounded by the admission permits their chunks carry.
pub const ZONE_MAILBOX: usize = 256;

/// How long a duplicate whose original is not decided yet waits before it looks again.
pub const FOLLOW_RETRY: Duration = Duration::from_millis(1);

/// Commits waiting for a journal writer, at most: a zone whose writer falls this far behind
/// waits (backpressure from the disk to the zone, and from there to admission).
pub const WRITER_QUEUE: usize = 4_096;

/// A journal round is held open for more (up to `--commit-hold-us`) while it has fewer
/// records than this and at least this many orders are in flight (`serve::group_commit::Hold`).
pub const COMMIT_HOLD_RECORDS: usize = 512;

/// Bytes of a zone's records the journal writer lets wait, durable in its write-ahead log,
/// before it writes them to the zone's own journal (unsynced) in one go: at 20k orders/s a
/// zone's journal is written every few hundred milliseconds instead of every round. Each
/// zone's wait is written anyway before a checkpoint of the log, before a snapshot of the
/// zone and when the writer stops. Memory: this much per zone, in a buffer each journal
/// already keeps for its largest group.
pub const ZONE_JOURNAL_WRITE_BYTES: usize = 256 << 10;

/// Snapshot jobs waiting for the snapshot thread, at most (each holds a copy of a zone's
/// state): a zone whose snapshot finds them all taken puts it off to a later message.
pub const SNAPSHOT_JOBS: usize = 2;

/// Chunks of one order stream parsed and not yet answered: the stream stops reading (TCP
/// backpressure) beyond this, whatever the admission permits allow.
pub const STREAM_PIPELINE: usize = 16;

/// A batch of one order stream is held open for more of its body, up to this many bytes,
/// while the stream is backed up (`serve::http::body::Gather`): about 1,800 orders of the demo
/// world. A stream holds at most this much of its body unread by the parser (and a line it
/// has not finished), and one parsed batch waiting for admission permits (about 200 bytes
/// an order); what is admitted is bounded by the permits.
pub const STREAM_BATCH_BYTES: usize = 512 << 10;

/// Body chunks in one batch, at most (a body of tiny chunks is cut by count, not bytes).
pub const STREAM_BATCH_CHUNKS: usize = 1024;

/// Orders of one stream in flight (parsed, not yet answered) from which its next batch is
/// held open for more of the body: about 3 ms of one stream at 350-400k orders/s
/// (derived). A stream that keeps up (20,000 orders/s over 8 streams keeps a few in
/// flight) never waits.
pub const STREAM_GATHER_BACKLOG: usize = 1024;

/// Bytes of a `PUT /v1/stock` body, at most (413 beyond).
pub const MAX_STOCK_BODY_BYTES: usize = 256 << 20;

/// Shipments in one `POST /v1/shipments` request, at most (413 beyond): a zone does a
/// request's shipments in one turn, so this bounds how long it keeps its orders waiting
/// (9,202 shipments in one request were answered in 20 ms, docs/benchmarks.md).
pub const MAX_SHIPMENTS_PER_REQUEST: usize = 10_000;

/// Bytes of a `POST /v1/shipments` body, at most (413 beyond): 10,000 lines of up to about
/// 100 bytes.
pub const MAX_SHIPMENTS_BODY_BYTES: usize = 1 << 20;
/// Largest `PUT /v1/customers` body (about a million customers as CSV).
pub const MAX_CUSTOMERS_BODY_BYTES: usize = 64 << 20;

/// Bytes of the decision feed one read hands a follower at a time.
pub const FEED_READ_BYTES: usize = 256 * 1024;

/// Bytes of decisions the feed keeps for followers to catch up on; older ones are gone
/// (a cursor before them resumes at the oldest kept).
pub const FEED_RETENTION_BYTES: usize = 64 << 20;

/// How long the config watcher waits for a file to settle before it reloads.
pub const RELOAD_DEBOUNCE: Duration = Duration::from_millis(300);

// ---- route ----

/// Bytes `route` reads, and writes, at a time.
pub const ROUTE_CHUNK_BYTES: usize = 256 * 1024;

// ---- relations, checked when the crate compiles ----

const _: () = {
    assert!(
        PREFETCH_AHEAD >= 1,
        "prefetching looks at least one order ahead"
    );
    assert!(MAX_SHIPMENTS >= 1 && MAX_SPLIT_CANDIDATES as usize <= 16);
    // A split's shipments are one per warehouse, so it needs as many candidates.
    assert!(MAX_SHIPMENTS <= MAX_SPLIT_CANDIDATES);
    // Quantities are held as u32.
    assert!(MAX_LINE_QUANTITY <= u32::MAX as u64);
    assert!(
        CLAIMS_SEGMENTS.is_power_of_two(),
        "a segment is picked by masking a hash"
    );
    assert!(ARENA_CHUNK_RECORDS.is_power_of_two());
    assert!(ARENA_CHUNK_RECORDS <= 1 << 16 && CLAIMS_CHUNK <= 1 << 16);
    assert!(
        COLD_FILE_BYTES < 1 << 32,
        "a cold record's offset is 32 bits"
    );
    assert!(FEED_READ_BYTES <= FEED_RETENTION_BYTES);
    assert!(
        COUNTED_DAYS >= 2,
        "today and yesterday, at least, around midnight"
    );
};
