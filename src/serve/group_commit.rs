//! Group commit for the zone actors: one writer thread owns the journals of every zone (each
//! zone keeps its own journal files); a zone hands it the records of each message, with
//! what may only happen once they are durable (answers, feed entries, acknowledgements).
//! The writer takes everything waiting, writes it as one group with one `fdatasync`, and
//! only then lets the answers go.
//!
//! A writer that serves several zones under `--sync fsync` makes a round durable with one
//! write and one `fdatasync` of its write-ahead log (`crate::journal::wal`), which holds a
//! copy of each zone's group. One sync a round instead of one per zone: the cost of a sync
//! is the sync, not the bytes. The zones' own journals are written later, unsynced, once a
//! zone has [`ZONE_JOURNAL_WRITE_BYTES`] waiting (at 20k orders/s, a write per zone every
//! few hundred milliseconds, where every round wrote each zone's journal), and all of them
//! before a checkpoint of the log, before a snapshot of the zone, and when the writer
//! stops; they are synced at the log's checkpoints.
//!
//! The zone thread never waits for the disk: while one group is being synced, the next
//! fills up, so the group grows with the load (records per sync is a metric). Answers made
//! from records not yet durable (a duplicate of a decision still in the queue) go through
//! the same queue, behind the decision. A failed write or sync ends the process loudly:
//! nothing more may be acknowledged, and recovery decides on restart what is on disk.

use super::admission::Admission;
use super::answers::{Part, Ticket};
use super::feed::{FeedChunk, FeedSender};
use super::metrics::names;
use crate::config::Network;
use crate::ids::ZoneId;
use crate::journal::wal::Wal;
use crate::journal::{
    CompactStats, DetachedSync, Journal, JournalError, JournalOptions, SpareJob, remove_compacted,
    write_detached_snapshot,
};
use crate::limits::{COMMIT_HOLD_RECORDS, WRITER_QUEUE, ZONE_JOURNAL_WRITE_BYTES};
use crate::zone::records::RecordBatch;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Work handed to a writer: one zone's records, then what follows their commit.
pub struct Commit {
    /// Which of the writer's journals (its position in [`Writer::start`]'s list).
    pub journal: usize,
    pub records: RecordBatch,
    /// A step of a snapshot of the zone (see `super::snapshotter`).
    pub snapshot: Option<SnapshotStep>,
    pub after: After,
}

/// A snapshot's two passes through its zone's writer.
pub enum SnapshotStep {
    /// Sent by the zone in its order of commits, when it hands its state to the
    /// snapshotter: that state is the one after every record handed over before this,
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

/// A zone's end of its writer.
#[derive(Clone)]
pub struct Writer {
    queue: crossbeam::channel::Sender<Commit>,
    /// This zone's journal among the writer's.
    journal: usize,
    /// Wakes the writer when dropped: after `queue` (fields drop in order), so the writer
    /// sees the queue's end once the last handle is gone.
    wake: WakeOnDrop,
}

/// The writer thread, woken (`Thread::unpark`) by whoever hands it something: it waits
/// with `std::thread::park`, not in a `crossbeam` receive, whose back-off calls
/// `sched_yield` four times before it sleeps (3.3 calls a round, measured with strace:
/// each a system call, and on two busy cores a way to give the writer's CPU away just as
/// the next commit arrives). Unparking a thread that is not parked costs an atomic swap.
#[derive(Clone)]
struct WakeOnDrop(std::thread::Thread);

impl Drop for WakeOnDrop {
    fn drop(&mut self) {
        self.0.unpark();
    }
}

impl Writer {
    /// Starts a writer thread for the zones' `journals` (each zone keeps its own journal
    /// files): per round it takes everything waiting, commits each journal that got records
    /// (one write and one sync each, or one of the write-ahead log for all), then hands the
    /// answers to `feed` and the chunks' gatherers. The service starts one for every zone:
    /// fewer threads to wake on two cores, and bigger groups. A handle per journal, in
    /// order.
    /// `wal`: the writer's write-ahead log, for a writer of several zones under `fsync`;
    /// `hold`: when a round waits for more ([`Hold`]; never with a zero `longest`).
    pub fn start(
        name: &str,
        journals: Vec<(String, Journal)>,
        mut wal: Option<Wal>,
        feed: FeedSender,
        hold: Hold,
    ) -> std::io::Result<(Vec<Writer>, Stopped)> {
        if let Some(wal) = wal.as_mut() {
            first_segment_ahead(name, wal);
        }
        let (queue, waiting) = crossbeam::channel::bounded(WRITER_QUEUE);
        let (stopped, on_stop) = crossbeam::channel::bounded(1);
        let window = journals.first().map_or(Duration::ZERO, |(_, journal)| {
            journal.options().commit_window
        });
        let count = journals.len();
        let writer_thread: Arc<OnceLock<std::thread::Thread>> = Arc::default();
        let background = Background::start(name, writer_thread.clone())?;
        let thread = std::thread::Builder::new()
            .name(format!("journal-{name}"))
            .spawn(move || {
                // Before any work goes to the background thread, which wakes it when done.
                let _ = writer_thread.set(std::thread::current());
                // A panic here would leave zones handing records to nobody: end the process
                // instead, as for a failed write.
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run(journals, wal, background, waiting, window, hold, feed)
                }));
                if outcome.is_err() {
                    fatal("the journal writer thread panicked");
                }
                let _ = stopped.send(());
            })?;
        let writers = (0..count)
            .map(|journal| Writer {
                queue: queue.clone(),
                journal,
                wake: WakeOnDrop(thread.thread().clone()),
            })
            .collect();
        Ok((writers, Stopped(on_stop)))
    }

    /// The position to put in this zone's [`Commit::journal`].
    pub fn journal(&self) -> usize {
        self.journal
    }

    /// Hands over a commit (waits while the writer's queue is full: backpressure from the
    /// disk; the writer's other zones wait too).
    pub fn send(&self, commit: Commit) {
        if self.queue.send(commit).is_err() {
            // The writer is gone (it ends the process on any failure, so this is a bug):
            // nothing may be acknowledged without it.
            fatal("the journal writer thread is gone");
        }
        self.wake.0.unpark();
    }
}

/// Makes the log's next segment now, before any commit, if it has no active segment made
/// ahead (a new data dir, or a last segment that was appended to): otherwise the first
/// commits go to a segment that grows, whose syncs carry its metadata, while the spare's
/// 64 MiB of zeros are written beside them, and that short first segment, reused later as a
/// spare, has to be allocated to full size then (a second new-block spare in the first
/// half minute). Measured: docs/benchmarks.md, "The log's first segment made before the
/// first commit". A restart whose log continues a segment made ahead skips it.
fn first_segment_ahead(name: &str, wal: &mut Wal) {
    let Some(job) = wal.spare_job() else {
        return;
    };
    let started = Instant::now();
    let path = job.path().to_owned();
    let made = job.run_now();
    match &made {
        Ok(_) => {
            metrics::counter!(names::JOURNAL_SPARES).increment(1);
            tracing::info!(
                "journal writer {name}: the log's next segment made ahead in {} ms",
                started.elapsed().as_millis()
            );
        }
        Err(error) => tracing::warn!(
            "journal writer {name}: could not make the log's next segment ahead ({}): {error}",
            path.display()
        ),
    }
    wal.add_spare(made.ok());
}

/// Tells when a writer has stopped: every handle to it dropped, the rounds done, each
/// zone's journal written and synced.
pub struct Stopped(crossbeam::channel::Receiver<()>);

impl Stopped {
    /// Waits, at most `timeout`, for the writer to stop; whether it did. (One that has not
    /// leaves nothing durable behind: what only its log holds, the next start adds to the
    /// zones' journals.)
    pub fn wait(&self, timeout: Duration) -> bool {
        self.0.recv_timeout(timeout).is_ok()
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
    /// Bytes at the front of the journal's pending group already copied into the
    /// write-ahead log: under the log, a zone's pending group spans rounds, and each round
    /// logs only what it appended.
    logged: usize,
}

fn run(
    journals: Vec<(String, Journal)>,
    mut wal: Option<Wal>,
    mut background: Background,
    waiting: crossbeam::channel::Receiver<Commit>,
    window: Duration,
    hold: Hold,
    feed: FeedSender,
) {
    let mut zones: Vec<Zone> = journals
        .into_iter()
        .map(|(name, journal)| Zone::new(name, journal))
        .collect();
    let wal_commits = metrics::counter!(names::JOURNAL_WAL_COMMITS);
    let mut slow = SlowCommits::default();
    let mut group: Vec<Commit> = Vec::new();
    while let Some(first) = next_commit(&waiting, &mut background, wal.as_mut(), &mut zones) {
        group.push(first);
        if !window.is_zero() {
            // Hold the group open a little for more (bounded by the journal's options).
            let deadline = Instant::now() + window;
            while let Ok(next) = waiting.recv_deadline(deadline) {
                group.push(next);
            }
        }
        group.extend(waiting.try_iter().take(WRITER_QUEUE));
        hold.fill(&waiting, &mut group);
        // Segments made ahead since the last round, before this round's commits may roll.
        background.spares(wal.as_mut(), &mut zones);
        for commit in &mut group {
            let zone = &mut zones[commit.journal];
            if let Some(step) = commit.snapshot.take() {
                snapshot_step(zone, wal.as_mut(), step, &background);
            }
            zone.append(&commit.records, wal.as_mut());
        }
        let Some(wal) = wal.as_mut() else {
            for zone in &mut zones {
                zone.commit(None);
            }
            // Durable: now the answers, the feed and the acknowledgements.
            for commit in group.drain(..) {
                deliver(commit.after, &feed);
            }
            continue;
        };
        // One sync for the round, then the answers; the zones' journals after them.
        let started = Instant::now();
        for zone in &mut zones {
            zone.log(wal);
        }
        check_log(wal.commit());
        wal_commits.increment(1);
        let took = started.elapsed();
        for commit in group.drain(..) {
            deliver(commit.after, &feed);
        }
        if let Some(report) = slow.note(took, Instant::now()) {
            tracing::warn!("{report}");
        }
        for zone in &mut zones {
            zone.logged_round(took.as_secs_f64());
        }
        background.step(wal, &mut zones);
    }
    stop(wal.as_mut(), &mut zones);
}

/// Holding a round open for more when orders are waiting upstream of the writer.
///
/// A round costs the machine about 70 us whatever it carries (a write, an `fdatasync`, the
/// virtio notification and its interrupt, the wakeups of the threads it answers; derived
/// in docs/benchmarks.md, "One stream, stage by stage; a round held open while orders
/// wait"). Started as soon as the writer is free, rounds run at the rate the disk syncs,
/// so a saturating stream's rounds carry about 90 records each (derived: about 11,000
/// rounds for 1M orders). When at least [`COMMIT_HOLD_RECORDS`] orders are admitted and
/// not yet answered, the zones will hand over that many records within moments: the round
/// waits for them (at most `longest`, and never longer than a quarter of it after the last
/// commit came). One stream of 1M orders, ten pairs: +18.8% orders/s, -10% server CPU. At
/// the rates where that many orders are in flight, each already waits behind more than
/// that in the pipeline; below them (at 25,000 orders a second over 8 streams, two or
/// three rounds of a 20-second run were held), every round starts at once as before. Nor
/// does it hold a round without records (duplicates answered behind their originals): it
/// syncs nothing.
pub struct Hold {
    /// The longest a round is held open.
    pub longest: Duration,
    /// Orders admitted and not yet answered, over every connection.
    pub admission: Arc<Admission>,
}

impl Hold {
    /// Adds to `group` the commits that come while the round is worth holding open.
    fn fill(&self, waiting: &crossbeam::channel::Receiver<Commit>, group: &mut Vec<Commit>) {
        if self.longest.is_zero() {
            return;
        }
        let mut records: usize = group.iter().map(|commit| commit.records.len()).sum();
        if !self.worth_holding(records, self.admission.in_flight()) {
            return;
        }
        let started = Instant::now();
        let deadline = started + self.longest;
        let gap = self.longest / 4;
        loop {
            let until = deadline.min(Instant::now() + gap);
            match waiting.recv_deadline(until) {
                Ok(next) => {
                    records += next.records.len();
                    group.push(next);
                }
                Err(_) => break,
            }
            // A commit that was waiting is taken even past the deadline: look at the clock.
            if Instant::now() >= deadline
                || !self.worth_holding(records, self.admission.in_flight())
            {
                break;
            }
        }
        metrics::histogram!(names::JOURNAL_HOLD_LATENCY).record(started.elapsed().as_secs_f64());
    }

    /// Whether a round of `records` is worth holding open while `in_flight` orders are
    /// admitted and not answered (those of the round among them). A round with no record
    /// (duplicates answered behind their originals, reads) syncs nothing: nothing to share.
    fn worth_holding(&self, records: usize, in_flight: usize) -> bool {
        records > 0 && records < COMMIT_HOLD_RECORDS && in_flight >= COMMIT_HOLD_RECORDS
    }
}

/// A commit of the write-ahead log this long or longer is reported in the log: every answer
/// of its round, and every order queued behind it, waited that long. The disk does this on
/// its own now and then (docs/benchmarks.md, "What the seconds over 20 ms are": with nothing
/// else running, a writer's small `fdatasync` held for 21-174 ms once or more in each of
/// four five-minute runs on the machine measured), and an operator looking at a latency spike
/// should find it named.
const SLOW_COMMIT: Duration = Duration::from_millis(20);

/// At most one report of slow commits per period; the ones between are counted into it.
const SLOW_COMMIT_LOG_EVERY: Duration = Duration::from_secs(10);

/// The writer's slow commits since its last report ([`SLOW_COMMIT`]).
#[derive(Debug, Default)]
struct SlowCommits {
    /// When the last report was made.
    reported: Option<Instant>,
    /// Slow commits not reported yet: how many, the longest, when the first came.
    count: u32,
    longest: Duration,
    first: Option<Instant>,
}

impl SlowCommits {
    /// Notes a commit of the log that took `took` (every round's, slow or not); the report to
    /// log now, when slow commits wait to be reported and none was made in the last
    /// [`SLOW_COMMIT_LOG_EVERY`]. The first slow commit after a quiet period is reported at
    /// once; later ones at the first round after the period, so none goes unreported while
    /// the writer has rounds to commit.
    fn note(&mut self, took: Duration, now: Instant) -> Option<String> {
        if took >= SLOW_COMMIT {
            self.count += 1;
            self.longest = self.longest.max(took);
            self.first.get_or_insert(now);
        }
        let first = self.first?;
        if self
            .reported
            .is_some_and(|at| now < at + SLOW_COMMIT_LOG_EVERY)
        {
            return None;
        }
        self.reported = Some(now);
        self.first = None;
        let (count, longest) = (
            std::mem::take(&mut self.count),
            std::mem::take(&mut self.longest),
        );
        Some(format!(
            "{count} commit(s) of the write-ahead log (a write and an fdatasync) took over {} \
             ms, the longest {:.1} ms, the first {:.1} s ago: the answers of their rounds \
             waited for the disk (reported at most every {} s; \
             router_journal_commit_latency_seconds counts them all)",
            SLOW_COMMIT.as_millis(),
            longest.as_secs_f64() * 1e3,
            now.duration_since(first).as_secs_f64(),
            SLOW_COMMIT_LOG_EVERY.as_secs(),
        ))
    }
}

/// Waits for the next commit (`None` once every handle is dropped), taking the background
/// thread's finished work meanwhile: a segment made ahead, a checkpoint done (and the next
/// begun if one is due). A writer takes them after each round too; without this, a quiet
/// writer would leave a finished checkpoint untaken, its compaction undone, until the next
/// order came.
fn next_commit(
    waiting: &crossbeam::channel::Receiver<Commit>,
    background: &mut Background,
    mut wal: Option<&mut Wal>,
    zones: &mut [Zone],
) -> Option<Commit> {
    loop {
        // Under load a commit is usually waiting already.
        match waiting.try_recv() {
            Ok(commit) => return Some(commit),
            // Every handle dropped.
            Err(crossbeam::channel::TryRecvError::Disconnected) => return None,
            Err(crossbeam::channel::TryRecvError::Empty) => {}
        }
        let took = background.spares(wal.as_deref_mut(), zones);
        let stepped = wal
            .as_deref_mut()
            .is_some_and(|wal| background.step(wal, zones));
        if !took && !stepped {
            // Nothing to do: sleep until a handle sends or drops, or the background thread
            // finishes something (each unparks this thread; an unpark that came since the
            // checks above makes this return at once).
            std::thread::park();
        }
    }
}

/// The writer's last step, once no zone can hand it anything more: every zone's journal
/// written and synced, so that a stopped service leaves whole journals behind (`journal
/// verify`, `journal dump`); the log is read and retired at the next start all the same.
fn stop(mut wal: Option<&mut Wal>, zones: &mut [Zone]) {
    for zone in zones {
        zone.commit(wal.as_deref_mut());
        check(&zone.name, zone.journal.sync());
    }
}

/// A writer's slow file work, on a thread of its own so that the writer goes on committing
/// rounds meanwhile: the write-ahead log's checkpoints (syncing every zone journal can take
/// tens of milliseconds, megabytes written unsynced since the last), one at a time; the
/// log's next segment, made ahead of its roll (`journal::spare`); and deleting what
/// compaction freed, the log's segments and the zones' old segments and snapshots (tens
/// to hundreds of megabytes, freed a step at a time).
struct Background {
    jobs: crossbeam::channel::Sender<BackgroundWork>,
    done: crossbeam::channel::Receiver<(u64, PathBuf)>,
    spares: crossbeam::channel::Receiver<(SpareFor, Option<PathBuf>)>,
    running: bool,
    finished: metrics::Counter,
    spares_made: metrics::Counter,
}

/// What the background thread does.
enum BackgroundWork {
    /// A checkpoint at `lsn` of the log in `dir`, once `syncs` have run.
    Checkpoint {
        lsn: u64,
        dir: PathBuf,
        syncs: Vec<DetachedSync>,
    },
    /// Deleting the files of the journal in `dir` (`what`: the log, or a zone's journal)
    /// that compaction took off its lists.
    Remove {
        what: String,
        dir: PathBuf,
        paths: Vec<PathBuf>,
    },
    /// Making the next segment of the log or of a zone's journal.
    Spare(SpareFor, SpareJob),
}

/// Wakes the writer thread (set before it hands the background thread any work).
fn wake(writer: &OnceLock<std::thread::Thread>) {
    if let Some(thread) = writer.get() {
        thread.unpark();
    }
}

/// Whose next segment a spare is.
#[derive(Clone, Copy, Debug)]
enum SpareFor {
    Log,
    /// The writer's zone at this position.
    Zone(usize),
}

impl Background {
    /// The background thread of writer `name`.
    fn start(
        name: &str,
        writer: Arc<OnceLock<std::thread::Thread>>,
    ) -> std::io::Result<Background> {
        // Unbounded, so the writer never waits to hand work over; the work is bounded by
        // its sources all the same: one checkpoint at a time, one spare at a time for each
        // journal, a removal after each checkpoint and each zone snapshot (a few a minute).
        let (jobs, incoming) = crossbeam::channel::unbounded::<BackgroundWork>();
        let (finished, done) = crossbeam::channel::bounded(1);
        let (spare_made, spares) = crossbeam::channel::unbounded();
        std::thread::Builder::new()
            .name(format!("journal-bg-{name}"))
            .spawn(move || {
                for work in incoming {
                    match work {
                        BackgroundWork::Checkpoint { lsn, dir, syncs } => {
                            for sync in syncs {
                                if let Err(error) = sync.run() {
                                    fatal(&format!(
                                        "a checkpoint's sync of a zone journal failed: {error}"
                                    ));
                                }
                            }
                            let path = check_log(write_detached_snapshot(&dir, lsn, &[]));
                            if finished.send((lsn, path)).is_err() {
                                return;
                            }
                            wake(&writer);
                        }
                        BackgroundWork::Remove { what, dir, paths } => {
                            remove(&what, &dir, &paths);
                        }
                        BackgroundWork::Spare(target, job) => {
                            let path = job.path().to_path_buf();
                            let made = job.run().map_err(|error| {
                                tracing::warn!(
                                    "no segment made ahead at {} ({error}); that journal's \
                                     segments are created at their rolls from now on",
                                    path.display()
                                );
                            });
                            if spare_made.send((target, made.ok())).is_err() {
                                return;
                            }
                            wake(&writer);
                        }
                    }
                }
            })?;
        Ok(Background {
            jobs,
            done,
            spares,
            running: false,
            finished: metrics::counter!(names::JOURNAL_WAL_CHECKPOINTS),
            spares_made: metrics::counter!(names::JOURNAL_SPARES),
        })
    }

    /// After a round, or as one is made while the writer waits: hands each journal the
    /// segments made ahead for it, and asks for the next one for each journal that takes
    /// them (`JournalOptions::preallocate`) and has none ready or on the way. Whether it
    /// took any.
    fn spares(&mut self, mut wal: Option<&mut Wal>, zones: &mut [Zone]) -> bool {
        let mut took = false;
        while let Ok((target, spare)) = self.spares.try_recv() {
            took = true;
            if spare.is_some() {
                self.spares_made.increment(1);
            }
            match target {
                SpareFor::Log => {
                    if let Some(wal) = wal.as_deref_mut() {
                        wal.add_spare(spare);
                    }
                }
                SpareFor::Zone(index) => zones[index].journal.add_spare(spare),
            }
        }
        if let Some(job) = wal.and_then(|wal| wal.spare_job()) {
            self.send(BackgroundWork::Spare(SpareFor::Log, job));
        }
        for (index, zone) in zones.iter_mut().enumerate() {
            if let Some(job) = zone.journal.spare_job() {
                self.send(BackgroundWork::Spare(SpareFor::Zone(index), job));
            }
        }
        took
    }

    /// After a round, or as it finishes while the writer waits: takes a finished checkpoint
    /// (its unneeded files go to the background thread to delete), and starts one when it
    /// is due. Whether it took one.
    fn step(&mut self, wal: &mut Wal, zones: &mut [Zone]) -> bool {
        let mut took = false;
        if self.running
            && let Ok((lsn, path)) = self.done.try_recv()
        {
            let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            let paths = check_log(wal.finish_checkpoint(lsn, path));
            self.remove("write-ahead log".to_owned(), dir, paths);
            self.finished.increment(1);
            self.running = false;
            took = true;
        }
        if self.running || !wal.checkpoint_due() {
            return took;
        }
        // Every zone journal written: each then holds every record committed to the log so
        // far, and synced past this point, all the log does up to the checkpoint's lsn.
        for zone in zones.iter_mut() {
            zone.commit(Some(wal));
        }
        let Some((lsn, dir)) = check_log(wal.begin_checkpoint()) else {
            return took;
        };
        let syncs = zones
            .iter()
            .map(|zone| check(&zone.name, zone.journal.detached_sync()))
            .collect();
        self.send(BackgroundWork::Checkpoint { lsn, dir, syncs });
        self.running = true;
        took
    }

    /// Hands `paths` (files compaction took off the lists of `what`'s journal in `dir`) to
    /// the thread to delete.
    fn remove(&self, what: String, dir: PathBuf, paths: Vec<PathBuf>) {
        if !paths.is_empty() {
            self.send(BackgroundWork::Remove { what, dir, paths });
        }
    }

    fn send(&self, work: BackgroundWork) {
        if self.jobs.send(work).is_err() {
            fatal("the journal writer's background thread is gone");
        }
    }
}

/// What a compaction's log line adds about files still read (their bytes not freed yet).
fn held(removed: &CompactStats) -> String {
    if removed.bytes_held == 0 {
        return String::new();
    }
    format!(
        "; {} more once the cold store lets go of a snapshot it reads closed records from",
        removed.bytes_held
    )
}

/// Deletes files compaction made unnecessary in `what`'s journal. A file that fails to go
/// stays covered by the snapshots or checkpoints (the next start's compaction deletes it);
/// a directory that fails to sync may not be trusted.
fn remove(what: &str, dir: &Path, paths: &[PathBuf]) {
    match remove_compacted(dir, paths) {
        // A log's checkpoint usually frees only the checkpoint before the last (its freed
        // segment is reused): not worth a line every 15 s.
        Ok(removed) if removed.segments_removed == 0 => tracing::debug!(
            "{what}: compaction removed {} snapshots ({} bytes{})",
            removed.snapshots_removed,
            removed.bytes_freed,
            held(&removed)
        ),
        Ok(removed) => tracing::info!(
            "{what}: compaction removed {} segments and {} snapshots ({} bytes{})",
            removed.segments_removed,
            removed.snapshots_removed,
            removed.bytes_freed,
            held(&removed)
        ),
        Err(error) if error.is_failed_sync() => fatal(&format!("{what} failed: {error}")),
        Err(error) => tracing::warn!("{what} ({}): {error}", dir.display()),
    }
}

/// What waited for a commit's records to be durable.
fn deliver(after: After, feed: &FeedSender) {
    match after {
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

impl Zone {
    fn new(name: String, journal: Journal) -> Zone {
        Zone {
            commits: metrics::counter!(names::JOURNAL_COMMITS, "zone" => name.clone()),
            records: metrics::counter!(names::JOURNAL_RECORDS, "zone" => name.clone()),
            latency: metrics::histogram!(names::JOURNAL_COMMIT_LATENCY, "zone" => name.clone()),
            name,
            journal,
            pending: 0,
            logged: 0,
        }
    }

    /// Appends `records` to the pending group, committing first whenever the group is at
    /// its bound (records or bytes).
    fn append(&mut self, records: &RecordBatch, mut wal: Option<&mut Wal>) {
        for (kind, payload) in records.iter() {
            if self.journal.needs_commit() {
                self.commit(wal.as_deref_mut());
            }
            check(&self.name, self.journal.append(kind as u8, payload));
            self.pending += 1;
        }
    }

    /// Writes the journal's pending group, if any. Without a write-ahead log: one write and
    /// one sync (as the mode says), and the round's records are counted. With one: what the
    /// log does not hold yet is added to it (made durable by the round's commit of the log,
    /// before anything is answered), then one unsynced write.
    fn commit(&mut self, wal: Option<&mut Wal>) {
        match wal {
            None => {
                if self.pending == 0 {
                    return;
                }
                let started = Instant::now();
                check(&self.name, self.journal.commit());
                self.latency.record(started.elapsed().as_secs_f64());
                self.commits.increment(1);
                self.count_records();
            }
            Some(wal) => {
                self.log(wal);
                self.write_unsynced();
            }
        }
    }

    /// Writes the journal's pending group, unsynced (its records are in the log already).
    fn write_unsynced(&mut self) {
        if self.journal.pending_records() == 0 {
            return;
        }
        check(&self.name, self.journal.commit_unsynced());
        self.commits.increment(1);
        self.logged = 0;
    }

    /// Adds what the round appended to the write-ahead log (the round's commit of the log
    /// makes it durable).
    fn log(&mut self, wal: &mut Wal) {
        let frames = &self.journal.pending_frames()[self.logged..];
        if !frames.is_empty() {
            check(&self.name, wal.add(&self.name, frames));
            self.logged += frames.len();
        }
    }

    /// After the log's commit (which took `took` seconds): the round's records counted, and
    /// the zone's journal written, unsynced, once [`ZONE_JOURNAL_WRITE_BYTES`] wait.
    fn logged_round(&mut self, took: f64) {
        if self.pending == 0 {
            return;
        }
        self.latency.record(took);
        self.count_records();
        if self.journal.pending_bytes() >= ZONE_JOURNAL_WRITE_BYTES {
            self.write_unsynced();
        }
    }

    /// Counts the round's records.
    fn count_records(&mut self) {
        self.records.increment(self.pending);
        self.pending = 0;
    }
}

/// A snapshot's step at the writer. `Mark`: commits what `zone` has pending (the snapshot
/// covers it), prepares a snapshot at the last committed lsn and tells the snapshotter.
/// `Written`: registers the file and compacts: segments and snapshots only older snapshots
/// needed go to `background` to delete.
fn snapshot_step(
    zone: &mut Zone,
    wal: Option<&mut Wal>,
    step: SnapshotStep,
    background: &Background,
) {
    match step {
        SnapshotStep::Mark(lsn_to) => {
            zone.commit(wal);
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
            let compacted = check(&zone.name, zone.journal.detach_compacted());
            metrics::counter!(names::JOURNAL_SNAPSHOTS, "zone" => zone.name.clone()).increment(1);
            tracing::info!(
                "zone {}: snapshot at lsn {lsn} ({bytes} bytes) in {took:.0?}",
                zone.name
            );
            background.remove(
                format!("zone {}", zone.name),
                zone.journal.dir().to_path_buf(),
                compacted,
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

/// [`check`] for the writer's write-ahead log.
fn check_log<T>(result: Result<T, JournalError>) -> T {
    match result {
        Ok(value) => value,
        Err(error) => fatal(&format!(
            "the journal writer's write-ahead log failed: {error}"
        )),
    }
}

/// Ends the process (exit status 74) after logging `why`.
pub(super) fn fatal(why: &str) -> ! {
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
    pub data_dir: PathBuf,
    pub options: JournalOptions,
    /// A zone writes a snapshot after this many records since its last one (0: never).
    pub snapshot_every: u64,
    /// How long a decision is remembered for idempotency (its id answered as a duplicate):
    /// at least this long; a snapshot leaves out older ones that hold no reservation.
    pub retention: Duration,
    /// Bytes of the writer's write-ahead log between checkpoints
    /// (`journal::wal::CHECKPOINT_BYTES`; smaller in tests).
    pub wal_checkpoint_bytes: u64,
    /// How long a round may be held open for more while orders wait upstream ([`Hold`];
    /// zero: never).
    pub commit_hold: Duration,
}

impl Journals {
    /// The directory of `zone`'s journal.
    pub fn dir(&self, network: &Network, zone: ZoneId) -> PathBuf {
        self.data_dir.join("zones").join(network.zone_name(zone))
    }

    /// The directory of `zone`'s cold records (`<data dir>/cold/<zone id>/`: a cache the
    /// zone rebuilds at each start, never read by recovery).
    pub fn cold_dir(&self, network: &Network, zone: ZoneId) -> PathBuf {
        self.data_dir.join("cold").join(network.zone_name(zone))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::admission::Permit;
    use crate::zone::Lifecycle;

    #[test]
    fn slow_commits_are_reported_at_most_once_per_period_and_none_is_left_out() {
        let mut slow = SlowCommits::default();
        let start = Instant::now();
        let ms = Duration::from_millis;
        // Commits under the threshold are never reported, nor counted.
        assert_eq!(slow.note(ms(19), start), None);
        // The first slow one is reported at once.
        let first = slow
            .note(ms(148), start)
            .expect("the first slow commit is reported");
        assert!(first.starts_with("1 commit(s)"), "{first}");
        assert!(
            first.contains("over 20 ms, the longest 148.0 ms, the first 0.0 s ago"),
            "{first}"
        );
        // Within the period: counted, not reported.
        assert_eq!(slow.note(ms(35), start + ms(1_000)), None);
        assert_eq!(slow.note(ms(5), start + ms(2_000)), None);
        assert_eq!(slow.note(ms(83), start + ms(9_000)), None);
        // The first round after it reports them, slow or not.
        let second = slow
            .note(ms(1), start + SLOW_COMMIT_LOG_EVERY + ms(1))
            .expect("the slow commits of the period are reported after it");
        assert!(second.starts_with("2 commit(s)"), "{second}");
        assert!(
            second.contains("the longest 83.0 ms, the first 9.0 s ago"),
            "{second}"
        );
        // Nothing left: quiet rounds report nothing, however late.
        assert_eq!(slow.note(ms(1), start + SLOW_COMMIT_LOG_EVERY * 3), None);
        // A slow one after a quiet period is reported at once again.
        let third = slow
            .note(ms(40), start + SLOW_COMMIT_LOG_EVERY * 3 + ms(2))
            .expect("reported at once after a quiet period");
        assert!(third.starts_with("1 commit(s)"), "{third}");
        assert!(third.contains("the longest 40.0 ms"), "{third}");
    }

    /// A commit of `records` shipments.
    fn commit(records: usize) -> Commit {
        let mut batch = RecordBatch::default();
        for order in 0..records {
            batch.push_closed(&format!("o-{order}"), Lifecycle::Shipped);
        }
        Commit {
            journal: 0,
            records: batch,
            snapshot: None,
            after: After::Ack {
                feed: FeedChunk::new(),
                done: tokio::sync::oneshot::channel().0,
            },
        }
    }

    /// A hold of at most `longest`, with `in_flight` orders admitted; the admission's
    /// permit (they are in flight while it lives).
    fn hold(longest: Duration, in_flight: usize) -> (Hold, Permit) {
        let admission = Arc::new(Admission::new(65_536, 0, 16));
        let permit = admission.try_admit(in_flight, false).expect("room");
        assert_eq!(admission.in_flight(), in_flight);
        (Hold { longest, admission }, permit)
    }

    /// Nine commits of 100 records waiting, one round of 100 taken.
    fn queued() -> (crossbeam::channel::Receiver<Commit>, Vec<Commit>) {
        let (send, waiting) = crossbeam::channel::unbounded();
        for _ in 0..9 {
            send.send(commit(100)).unwrap();
        }
        (waiting, vec![commit(100)])
    }

    fn records(group: &[Commit]) -> usize {
        group.iter().map(|commit| commit.records.len()).sum()
    }

    #[test]
    fn a_round_is_held_for_what_is_in_flight_until_it_has_enough_records() {
        let (waiting, mut group) = queued();
        let (hold, _permit) = hold(Duration::from_secs(60), 2_000);
        hold.fill(&waiting, &mut group);
        // 100 + 5 * 100 reaches 512: the round stops taking there, the rest waits.
        assert_eq!(records(&group), 600);
        assert_eq!(waiting.len(), 4);
    }

    #[test]
    fn a_round_is_not_held_when_few_orders_are_in_flight_or_holding_is_off() {
        for (longest, in_flight) in [
            (Duration::from_secs(60), COMMIT_HOLD_RECORDS - 1),
            (Duration::ZERO, 2_000),
        ] {
            let (waiting, mut group) = queued();
            let (hold, _permit) = hold(longest, in_flight);
            hold.fill(&waiting, &mut group);
            assert_eq!(
                (records(&group), waiting.len()),
                (100, 9),
                "{longest:?} {in_flight}"
            );
        }
    }

    #[test]
    fn a_round_without_records_is_not_held() {
        // Duplicates answered behind their originals: the round syncs nothing, so holding
        // it only delays their answers.
        let (send, waiting) = crossbeam::channel::unbounded();
        send.send(commit(0)).unwrap();
        send.send(commit(100)).unwrap();
        let mut group = vec![commit(0)];
        let (hold, _permit) = hold(Duration::from_secs(60), 2_000);
        hold.fill(&waiting, &mut group);
        assert_eq!((group.len(), waiting.len()), (1, 2));
    }

    #[test]
    fn a_held_round_ends_when_nothing_more_comes() {
        // Orders in flight that never reach the writer (a stalled zone): the round waits
        // for the gap, takes nothing, and goes.
        let (send, waiting) = crossbeam::channel::unbounded::<Commit>();
        let mut group = vec![commit(100)];
        let (hold, _permit) = hold(Duration::from_millis(8), 2_000);
        hold.fill(&waiting, &mut group);
        assert_eq!(records(&group), 100);
        drop(send);
    }

    #[test]
    fn a_held_round_takes_commits_that_come_while_it_waits() {
        let (send, waiting) = crossbeam::channel::unbounded();
        let mut group = vec![commit(100)];
        let (hold, _permit) = hold(Duration::from_secs(60), 2_000);
        let sender = std::thread::spawn(move || {
            for _ in 0..4 {
                std::thread::sleep(Duration::from_millis(2));
                send.send(commit(103)).unwrap();
            }
            // The round has 512: the hold has stopped taking, whatever comes now.
            send
        });
        hold.fill(&waiting, &mut group);
        assert_eq!(records(&group), 512);
        let send = sender.join().unwrap();
        send.send(commit(1)).unwrap();
        assert_eq!(waiting.len(), 1);
    }
}
