//! Group commit for the zone shards: each zone's journal runs on a writer thread of its own;
//! the zone hands it the records of each message, with what may only happen once they are
//! durable (answers, feed entries, acknowledgements). The writer takes everything waiting,
//! writes it as one group with one `fdatasync`, and only then lets the answers go.
//!
//! The zone thread never waits for the disk: while one group is being synced, the next
//! fills up, so the group grows with the load (records per sync is a metric). Answers made
//! from records not yet durable (a duplicate of a decision still in the queue) go through
//! the same queue, behind the decision. A failed write or sync ends the process loudly:
//! nothing more may be acknowledged, and recovery decides on restart what is on disk.

use super::feed::{FeedChunk, FeedSender};
use super::shard::{Part, Ticket};
use crate::journal::{Journal, JournalError};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Work handed to a writer: one zone's records, then what follows their commit.
pub struct Commit {
    /// Which of the writer's journals (its position in [`Writer::start`]'s list).
    pub journal: usize,
    /// Payloads, back to back; `records` cuts them.
    pub payloads: Vec<u8>,
    /// `(kind, start, end)` of each record in `payloads`.
    pub records: Vec<(u8, u32, u32)>,
    /// A step of a snapshot of the zone (see [`Snapshotter`]).
    pub snapshot: Option<SnapshotStep>,
    pub after: After,
}

/// A snapshot's two passes through its zone's writer.
pub enum SnapshotStep {
    /// Sent by the zone in its order of commits, when it hands its state to the
    /// [`Snapshotter`]: that state is the one after every record handed over before this,
    /// so it covers the records up to the lsn committed once they are. The writer commits
    /// them, prepares the snapshot (`Journal::prepare_snapshot`) and sends the snapshotter
    /// that lsn and the journal's directory.
    Mark(crossbeam::channel::Sender<(u64, PathBuf)>),
    /// The snapshotter wrote the file: the writer registers it and compacts.
    Written {
        lsn: u64,
        path: PathBuf,
        bytes: usize,
        /// Encoding and writing, off the zone and writer threads.
        took: Duration,
    },
}

/// Encodes and writes zone snapshots on a thread of its own, so neither a zone nor its
/// writer stops for them: the zone pays for a copy of its state (1 ms for 500,000 orders,
/// measured: the records' chunks are shared, `crate::arena`), the writer for a registration. Encoding 500,000 orders took 200-350 ms and
/// writing them 270-440 ms (75 MB, fsync); done in place, that was an 800 ms stall of the
/// zone and of every zone sharing its writer, every `--snapshot-every` records (found by
/// `loadtest`'s singles-day scenario: p99 at 800 ms in a steady phase). Two jobs wait at
/// most (each holds a copy of a zone's state): a zone whose snapshot finds them both taken
/// puts it off to a later message.
#[derive(Clone)]
pub struct Snapshotter {
    jobs: crossbeam::channel::Sender<SnapshotJob>,
}

/// A zone's state to snapshot.
pub struct SnapshotJob {
    pub zone: String,
    pub state: crate::shard::ZoneState,
    pub network: Arc<crate::config::Network>,
    pub catalog: Arc<crate::catalog::Catalog>,
    /// Orders decided before this (ms since the epoch) are left out unless they still hold
    /// reservations (the retention window).
    pub oldest_kept: i64,
    /// The lsn the snapshot covers and the journal's directory, from the writer once it
    /// has handled the zone's [`SnapshotStep::Mark`].
    pub lsn: crossbeam::channel::Receiver<(u64, PathBuf)>,
    pub writer: Writer,
}

impl Snapshotter {
    pub fn start() -> std::io::Result<Snapshotter> {
        let (jobs, waiting) = crossbeam::channel::bounded::<SnapshotJob>(2);
        std::thread::Builder::new()
            .name("snapshots".into())
            .spawn(move || {
                lower_priority();
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    for job in waiting {
                        snapshot_job(job);
                    }
                }));
                if outcome.is_err() {
                    fatal("the snapshot thread panicked");
                }
            })?;
        Ok(Snapshotter { jobs })
    }

    /// Whether a job would be taken now (check before copying a state for one).
    pub fn is_free(&self) -> bool {
        !self.jobs.is_full()
    }

    /// Hands a job over; `false` (the job dropped) when the jobs waiting are at their bound.
    pub fn submit(&self, job: SnapshotJob) -> bool {
        self.jobs.try_send(job).is_ok()
    }
}

/// Lowers the calling thread's CPU priority (nice 10): snapshots are background work, and
/// on a machine with few cores they must not take time from the zones and writers. On
/// Linux a thread's nice value is its own (`setpriority` on its thread id).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid has no preconditions; setpriority only reads its arguments, and a
    // failure (not permitted) leaves the priority as it was, which is harmless.
    unsafe {
        let thread = libc::gettid();
        if libc::setpriority(libc::PRIO_PROCESS, thread as libc::id_t, 10) != 0 {
            tracing::debug!("the snapshot thread keeps its priority: setpriority failed");
        }
    }
}

fn snapshot_job(job: SnapshotJob) {
    let started = Instant::now();
    let oldest = job.oldest_kept;
    let keep = |record: &crate::shard::OrderRecord| {
        let holds = record.decision.reserves() && record.lifecycle == crate::shard::Lifecycle::Live;
        holds || record.decision.decided_at.0 >= oldest
    };
    let bytes = crate::durable::encode_snapshot(&job.state, &job.network, &job.catalog, keep);
    let orders = job.state.order_count();
    drop(job.state);
    let encoded = started.elapsed();
    // The writer answers once it reaches the zone's mark; it drops the sender when the
    // journal keeps no snapshots.
    let Ok((lsn, dir)) = job.lsn.recv() else {
        return;
    };
    let path = match crate::journal::write_detached_snapshot(&dir, lsn, &bytes) {
        Ok(path) => path,
        Err(error) => fatal(&format!("snapshot of zone {} failed: {error}", job.zone)),
    };
    tracing::info!(
        "zone {}: snapshot of {orders} orders encoded in {encoded:.0?}, written in {:.0?}",
        job.zone,
        started.elapsed() - encoded
    );
    job.writer.send(Commit {
        journal: job.writer.journal(),
        payloads: Vec::new(),
        records: Vec::new(),
        snapshot: Some(SnapshotStep::Written {
            lsn,
            path,
            bytes: bytes.len(),
            took: started.elapsed(),
        }),
        after: After::Ack {
            feed: FeedChunk::new(),
            done: tokio::sync::oneshot::channel().0,
        },
    });
}

/// What may only happen once a commit's records are durable.
pub enum After {
    /// A zone message's answers and feed entries; the ticket keeps the chunk's permits
    /// until then.
    Answers {
        ticket: Arc<Ticket>,
        /// Boxed: a part carries a whole summary, and most commits of a busy zone are these.
        part: Option<Box<Part>>,
        feed: FeedChunk,
    },
    /// A request (cancel, shipped, stock) waiting for its change to be durable.
    Ack {
        feed: FeedChunk,
        done: tokio::sync::oneshot::Sender<()>,
    },
}

/// Commits waiting for a writer, at most (a zone whose writer falls this far behind waits:
/// backpressure from the disk to the zone, and from there to admission).
const WRITER_QUEUE: usize = 4096;

/// A zone's end of its writer.
#[derive(Clone)]
pub struct Writer {
    queue: crossbeam::channel::Sender<Commit>,
    /// This zone's journal among the writer's.
    journal: usize,
}

impl Writer {
    /// Starts one writer thread for the `journals` of the zones that share an arbiter
    /// (each zone keeps its own journal files): per round it takes everything waiting,
    /// commits each journal that got records (one write and one sync each), then hands the
    /// answers to `feed` and the chunks' gatherers. One thread per arbiter rather than per
    /// zone: fewer threads to wake on two cores, and bigger groups. A handle per journal,
    /// in order.
    pub fn start(
        name: &str,
        journals: Vec<(String, Journal)>,
        feed: FeedSender,
    ) -> std::io::Result<Vec<Writer>> {
        let (queue, waiting) = crossbeam::channel::bounded(WRITER_QUEUE);
        let window = journals.first().map_or(Duration::ZERO, |(_, journal)| {
            journal.options().commit_window
        });
        let count = journals.len();
        std::thread::Builder::new()
            .name(format!("journal-{name}"))
            .spawn(move || {
                // A panic here would leave zones handing records to nobody: end the process
                // instead, as for a failed write.
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run(journals, waiting, window, feed)
                }));
                if outcome.is_err() {
                    fatal("the journal writer thread panicked");
                }
            })?;
        Ok((0..count)
            .map(|journal| Writer {
                queue: queue.clone(),
                journal,
            })
            .collect())
    }

    /// The position to put in this zone's [`Commit::journal`].
    pub fn journal(&self) -> usize {
        self.journal
    }

    /// Hands over a commit (waits while the writer's queue is full: backpressure from the
    /// disk; the arbiter's other zones wait too).
    pub fn send(&self, commit: Commit) {
        if self.queue.send(commit).is_err() {
            // The writer is gone (it ends the process on any failure, so this is a bug):
            // nothing may be acknowledged without it.
            fatal("the journal writer thread is gone");
        }
    }
}

struct Zone {
    name: String,
    journal: Journal,
    commits: metrics::Counter,
    records: metrics::Counter,
    latency: metrics::Histogram,
    /// Records appended this round.
    pending: u64,
}

fn run(
    journals: Vec<(String, Journal)>,
    waiting: crossbeam::channel::Receiver<Commit>,
    window: Duration,
    feed: FeedSender,
) {
    let mut zones: Vec<Zone> = journals
        .into_iter()
        .map(|(name, journal)| Zone {
            commits: metrics::counter!("router_journal_commits_total", "shard" => name.clone()),
            records: metrics::counter!("router_journal_records_total", "shard" => name.clone()),
            latency: metrics::histogram!(
                "router_journal_commit_latency_seconds", "shard" => name.clone()
            ),
            name,
            journal,
            pending: 0,
        })
        .collect();
    let mut group: Vec<Commit> = Vec::new();
    while let Ok(first) = waiting.recv() {
        group.push(first);
        if !window.is_zero() {
            // Hold the group open a little for more (bounded by the journal's options).
            let deadline = Instant::now() + window;
            while let Ok(next) = waiting.recv_deadline(deadline) {
                group.push(next);
            }
        }
        group.extend(waiting.try_iter().take(WRITER_QUEUE));
        for commit in &mut group {
            let zone = &mut zones[commit.journal];
            if let Some(step) = commit.snapshot.take() {
                snapshot_step(zone, step);
            }
            for &(kind, start, end) in &commit.records {
                let payload = &commit.payloads[start as usize..end as usize];
                if zone.journal.needs_commit() {
                    check(&zone.name, zone.journal.commit());
                    zone.commits.increment(1);
                }
                check(&zone.name, zone.journal.append(kind, payload));
                zone.pending += 1;
            }
        }
        for zone in zones.iter_mut().filter(|zone| zone.pending > 0) {
            let started = Instant::now();
            check(&zone.name, zone.journal.commit());
            zone.commits.increment(1);
            zone.records.increment(zone.pending);
            zone.latency.record(started.elapsed().as_secs_f64());
            zone.pending = 0;
        }
        // Durable: now the answers, the feed and the acknowledgements.
        for commit in group.drain(..) {
            match commit.after {
                After::Answers {
                    ticket,
                    part,
                    feed: entries,
                } => {
                    feed.publish(entries);
                    if let Some(part) = part {
                        ticket.deliver(*part);
                    }
                }
                After::Ack {
                    feed: entries,
                    done,
                } => {
                    feed.publish(entries);
                    let _ = done.send(());
                }
            }
        }
    }
}

/// A snapshot's step at the writer. `Mark`: commits what `zone` has pending (the snapshot
/// covers it), prepares a snapshot at the last committed lsn and tells the snapshotter.
/// `Written`: registers the file and compacts: segments only older snapshots needed are
/// deleted.
fn snapshot_step(zone: &mut Zone, step: SnapshotStep) {
    match step {
        SnapshotStep::Mark(lsn_to) => {
            if zone.pending > 0 {
                check(&zone.name, zone.journal.commit());
                zone.commits.increment(1);
                zone.records.increment(zone.pending);
                zone.pending = 0;
            }
            let lsn = zone.journal.committed_lsn();
            if check(&zone.name, zone.journal.prepare_snapshot(lsn)) {
                let _ = lsn_to.send((lsn, zone.journal.dir().to_path_buf()));
            }
        }
        SnapshotStep::Written {
            lsn,
            path,
            bytes,
            took,
        } => {
            check(&zone.name, zone.journal.add_snapshot(lsn, path));
            let compacted = check(&zone.name, zone.journal.compact());
            metrics::counter!("router_journal_snapshots_total", "shard" => zone.name.clone())
                .increment(1);
            tracing::info!(
                "zone {}: snapshot at lsn {lsn} ({bytes} bytes) in {took:.0?}; compaction removed {} segments ({} bytes)",
                zone.name,
                compacted.segments_removed,
                compacted.bytes_freed
            );
        }
    }
}

/// A journal failure ends the process: after a failed write or sync nothing more may be
/// acknowledged, and an fsync is never retried (see `journal::writer`).
fn check<T>(zone: &str, result: Result<T, JournalError>) -> T {
    match result {
        Ok(value) => value,
        Err(error) => fatal(&format!("journal of zone {zone} failed: {error}")),
    }
}

/// Ends the process (exit status 74) after logging `why`.
fn fatal(why: &str) -> ! {
    tracing::error!(
        "{why}; stopping now: nothing more is acknowledged, and a restart recovers what is on disk"
    );
    eprintln!("order-router: {why}");
    std::process::exit(74);
}

/// Where the zones' journals live and how they write.
#[derive(Clone, Debug)]
pub struct Journals {
    /// `<data dir>/zones/<zone id>/` holds each zone's journal.
    pub data_dir: std::path::PathBuf,
    pub options: crate::journal::JournalOptions,
    /// A zone writes a snapshot after this many records since its last one (0: never).
    pub snapshot_every: u64,
    /// How long a decision is remembered for idempotency (its id answered as a duplicate):
    /// at least this long; a snapshot leaves out older ones that hold no reservation.
    pub retention: Duration,
}

impl Journals {
    /// The directory of `zone`'s journal.
    pub fn dir(
        &self,
        network: &crate::config::Network,
        zone: crate::ids::ZoneId,
    ) -> std::path::PathBuf {
        self.data_dir.join("zones").join(network.zone_name(zone))
    }

    /// Rebuilds `zone` from its journal, claims included; a zone with an empty journal
    /// starts from the levels of `stock` for its warehouses and journals them first. The
    /// zone's state, and its journal (`None` when nothing is journaled: `--sync none`).
    pub fn recover(
        &self,
        network: &crate::config::Network,
        catalog: &crate::catalog::Catalog,
        stock: &[crate::catalog::StockLevel],
        zone: crate::ids::ZoneId,
        claims: &crate::zone::Claims,
    ) -> anyhow::Result<(crate::shard::ZoneState, Option<Journal>)> {
        use crate::durable;
        use anyhow::Context;
        let name = network.zone_name(zone);
        let mut state = crate::shard::ZoneState::new(network, zone, catalog.len());
        let own = stock
            .iter()
            .filter(|level| network.warehouses[level.warehouse.index()].zone == zone);
        if self.options.mode == crate::journal::SyncMode::None {
            for level in own {
                // Nothing is reserved yet, so no level can fall below its reservations.
                state
                    .set_on_hand(*level)
                    .expect("initial stock levels always apply");
            }
            return Ok((state, None));
        }
        let dir = self.dir(network, zone);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating the journal directory {}", dir.display()))?;
        let started = Instant::now();
        let (mut journal, recovered) = Journal::open(&dir, self.options.clone())
            .with_context(|| format!("opening the journal of zone {name} in {}", dir.display()))?;
        if let Some(torn) = &recovered.torn_tail {
            tracing::warn!("zone {name}: {torn}");
        }
        if let Some(snapshot) = &recovered.snapshot {
            state = durable::restore_snapshot(&snapshot.bytes, network, catalog, zone, claims)
                .with_context(|| {
                    format!(
                        "zone {name}: restoring the snapshot {}",
                        snapshot.path.display()
                    )
                })?;
        }
        if recovered.records.is_empty() && recovered.snapshot.is_none() {
            // A new zone starts from the stock file. Its levels go in as one snapshot at lsn
            // 0, written whole or not at all (a temporary file renamed into place): a crash
            // halfway leaves a journal that is still new, never one with half the stock.
            let mut count = 0;
            for level in own {
                state
                    .set_on_hand(*level)
                    .expect("initial stock levels always apply");
                count += 1;
            }
            let snapshot = durable::encode_snapshot(&state, network, catalog, |_| true);
            journal
                .write_snapshot(0, &snapshot)
                .context("writing the initial stock as the first snapshot")?;
            tracing::info!(
                "zone {name}: new journal in {}, {count} stock levels from the stock file",
                dir.display()
            );
            return Ok((state, Some(journal)));
        }
        let count = recovered.records.len();
        for record in &recovered.records {
            durable::replay(
                &mut state,
                claims,
                network,
                catalog,
                record.kind,
                &record.payload,
            )
            .with_context(|| {
                format!(
                    "zone {name}: replaying record {} of the journal in {}",
                    record.lsn,
                    dir.display()
                )
            })?;
        }
        tracing::info!(
            "zone {name}: {}{count} records replayed in {:.0?} ({} orders); the stock file is not read again",
            recovered
                .snapshot
                .as_ref()
                .map_or(String::new(), |snapshot| format!(
                    "snapshot at lsn {} restored, ",
                    snapshot.lsn
                )),
            started.elapsed(),
            state.order_count()
        );
        Ok((state, Some(journal)))
    }
}
