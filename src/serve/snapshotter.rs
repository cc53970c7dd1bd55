//! Zone snapshots, encoded and written on a thread of their own.

use super::feed::FeedChunk;
use super::group_commit::{After, Commit, SnapshotStep, Writer, fatal};
use crate::catalog::Catalog;
use crate::config::Network;
use crate::journal::SnapshotWriter;
use crate::limits::SNAPSHOT_JOBS;
use crate::zone::records::RecordBatch;
use crate::zone::snapshot::{EncodeError, SnapshotSink, encode_snapshot_to, entry_decided_at};
use crate::zone::{OrderRecord, ZoneState};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Encodes and writes zone snapshots on a thread of its own, so neither a zone nor its
/// writer stops for them: the zone pays for a copy of its state (1 ms for 500,000 orders,
/// measured: the records' chunks are shared, `crate::arena`), the writer for a registration. Encoding 500,000 orders took 200-350 ms and
/// writing them 270-440 ms (75 MB, fsync); done in place, that was an 800 ms stall of the
/// zone and of every zone sharing its writer, every `--snapshot-every` records (found by
/// `loadtest`'s singles-day scenario: p99 at 800 ms in a steady phase). A snapshot is
/// encoded as it is written, a piece at a time (`journal::SnapshotWriter`): never whole in
/// memory, its encoding spread over the pauses of its writing rather than a second of work
/// at once. Two jobs wait at most (each holds a copy of a zone's state): a zone whose
/// snapshot finds them both taken puts it off to a later message.
///
/// At shutdown ([`Snapshotter::stop`]) the snapshot under way is abandoned (its unfinished
/// file removed) and the jobs waiting are dropped: each holds a handle on the journal
/// writer, which finishes only once every handle is gone, and a snapshot of a large window
/// takes seconds to minutes. Nothing is lost: the journal holds every record since the last
/// snapshot, and the next start replays them.
#[derive(Clone)]
pub struct Snapshotter {
    jobs: crossbeam::channel::Sender<SnapshotJob>,
    stopping: Arc<AtomicBool>,
}

/// A snapshot's file, refusing further bytes once the service stops.
struct Stoppable<'a> {
    file: &'a mut SnapshotWriter,
    stopping: &'a AtomicBool,
}

/// Why a snapshot's bytes were not written.
#[derive(Debug, thiserror::Error)]
enum SinkError {
    #[error("the service is stopping")]
    Stopped,
    #[error(transparent)]
    Journal(crate::journal::JournalError),
}

impl SnapshotSink for Stoppable<'_> {
    type Error = SinkError;

    fn write(&mut self, bytes: &[u8]) -> Result<(), SinkError> {
        if self.stopping.load(Ordering::Relaxed) {
            return Err(SinkError::Stopped);
        }
        self.file.write(bytes).map_err(SinkError::Journal)
    }

    fn gap(&mut self, length: usize) -> Result<(), SinkError> {
        self.file.gap(length).map_err(SinkError::Journal)
    }
}

/// A zone's state to snapshot.
pub struct SnapshotJob {
    pub zone: String,
    pub state: ZoneState,
    pub network: Arc<Network>,
    pub catalog: Arc<Catalog>,
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
        let (jobs, waiting) = crossbeam::channel::bounded::<SnapshotJob>(SNAPSHOT_JOBS);
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = stopping.clone();
        std::thread::Builder::new()
            .name("snapshots".into())
            .spawn(move || {
                lower_priority();
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    for job in waiting {
                        if stop.load(Ordering::Relaxed) {
                            tracing::info!("zone {}: snapshot dropped: stopping", job.zone);
                            continue;
                        }
                        snapshot_job(job, &stop);
                    }
                }));
                if outcome.is_err() {
                    fatal("the snapshot thread panicked");
                }
            })?;
        Ok(Snapshotter { jobs, stopping })
    }

    /// The service is stopping: the snapshot under way is abandoned, and those waiting.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
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

fn snapshot_job(job: SnapshotJob, stopping: &AtomicBool) {
    // The writer answers once it reaches the zone's mark; it drops the sender when the
    // journal keeps no snapshots.
    let Ok((lsn, dir)) = job.lsn.recv() else {
        return;
    };
    let started = Instant::now();
    let oldest = job.oldest_kept;
    let keep = |record: &OrderRecord| record.is_open() || record.decision.decided_at.0 >= oldest;
    // A cold record holds nothing: kept while within the window (and, should its time not
    // read, kept: a snapshot never drops a record it cannot judge).
    let keep_cold = |entry: &[u8]| entry_decided_at(entry).map_or(true, |at| at >= oldest);
    let failed = |error: &dyn std::fmt::Display| -> ! {
        fatal(&format!("snapshot of zone {} failed: {error}", job.zone))
    };
    // Encoded as it is written, a piece at a time (`SnapshotWriter`): never whole in memory.
    let mut file = SnapshotWriter::create(&dir, lsn).unwrap_or_else(|error| failed(&error));
    let mut sink = Stoppable {
        file: &mut file,
        stopping,
    };
    let encoded = match encode_snapshot_to(
        job.state,
        &job.network,
        &job.catalog,
        keep,
        keep_cold,
        &mut sink,
    ) {
        Ok(encoded) => encoded,
        Err(EncodeError::Cold(error)) => {
            // No snapshot this time (the unfinished file is removed): the journal keeps
            // every record since the last one, so nothing is lost; the zone snapshots again
            // after its next interval.
            tracing::error!("zone {}: snapshot left out: {error}", job.zone);
            return;
        }
        Err(EncodeError::Sink(SinkError::Stopped)) => {
            // As above: the unfinished file goes, the journal keeps the records.
            tracing::info!(
                "zone {}: snapshot abandoned after {:.0?}: stopping",
                job.zone,
                started.elapsed()
            );
            return;
        }
        Err(EncodeError::Sink(error)) => failed(&error),
    };
    let bytes = file.len() as usize;
    let path = file
        .finish(&encoded.fill())
        .unwrap_or_else(|error| failed(&error));
    tracing::info!(
        "zone {}: snapshot of {} orders kept ({bytes} bytes) encoded and written in {:.0?}",
        job.zone,
        encoded.kept,
        started.elapsed()
    );
    job.writer.send(Commit {
        journal: job.writer.journal(),
        records: RecordBatch::default(),
        snapshot: Some(SnapshotStep::Written {
            lsn,
            path,
            bytes,
            took: started.elapsed(),
        }),
        after: After::Ack {
            feed: FeedChunk::new(),
            done: tokio::sync::oneshot::channel().0,
        },
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ZoneId;
    use crate::zone::test_world::{World, rejected_record, world};

    fn state(world: &World) -> ZoneState {
        let mut state = ZoneState::new(&world.network, ZoneId(1), world.catalog.len());
        for n in 0..2_000 {
            state.restore_record(rejected_record(world, n), true);
        }
        state
    }

    fn files(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir).unwrap().count()
    }

    #[test]
    fn a_snapshot_is_abandoned_once_the_service_stops_and_its_file_removed() {
        let world = world("warehouse,sku,on_hand\nWS,A,5\n");
        let dir = tempfile::tempdir().unwrap();
        let encode = |file: &mut SnapshotWriter, stopping: &AtomicBool| {
            let mut sink = Stoppable { file, stopping };
            encode_snapshot_to(
                state(&world),
                &world.network,
                &world.catalog,
                |_| true,
                |_| true,
                &mut sink,
            )
        };
        // Running: written whole.
        let mut file = SnapshotWriter::create(dir.path(), 7).unwrap();
        let encoded = encode(&mut file, &AtomicBool::new(false));
        let Ok(encoded) = encoded else {
            panic!("a snapshot while running is written");
        };
        file.finish(&encoded.fill()).unwrap();
        assert_eq!(files(dir.path()), 1);
        // Stopping: refused at the next write, not a failure, and the unfinished file goes.
        let mut file = SnapshotWriter::create(dir.path(), 8).unwrap();
        let stopped = encode(&mut file, &AtomicBool::new(true));
        assert!(matches!(
            stopped,
            Err(EncodeError::Sink(SinkError::Stopped))
        ));
        drop(file);
        assert_eq!(files(dir.path()), 1, "only the finished snapshot");
    }
}
