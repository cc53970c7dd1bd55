//! Large writes and deletions, paced so that a commit's sync never waits behind them.
//!
//! A journal commit's `fdatasync` queues at the device behind whatever else is being
//! written, and on a volume mounted with `discard` behind the discards of deleted files too,
//! which the file system issues when it commits the deletion. Measured here
//! (docs/benchmarks.md, "The file system under the log"): a 64 MiB file written and synced at
//! once makes the syncs of a log beside it wait up to 28-34 ms, its deletion up to 10-24
//! ms; a zone snapshot is 90-260 MB. Written a small piece at a time, each waited for, and
//! deleted by truncating a few MiB at a time, each step committed, the same work left the
//! log's syncs at 5.4 ms at most. Everything here runs off the writer thread (the
//! snapshotter, the journal writer's background thread, the cold store's deletions) and
//! takes a few seconds where it took one.

use super::JournalError;
use std::fs::{self, File};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

/// Bytes written at once, then waited for: a commit's sync finds at most this ahead of it.
pub(super) const PIECE_BYTES: usize = 256 << 10;

/// A pause after each piece, so the writing takes a share of the device, not all of it. At
/// 256 KiB a piece a 64 MiB segment takes 0.5 s of pauses (0.6-0.67 s in all, measured),
/// a 260 MB snapshot 2 s.
const PIECE_PAUSE: Duration = Duration::from_millis(2);

/// Bytes a step commits to the file system: a deletion frees this much per step (each
/// step committed, and so discarded, on its own), and a write into a new file syncs every
/// this many bytes, so that no commit of the file system carries the blocks of a whole
/// 64 MiB file at once (measured: a new 64 MiB file of zeros, written 256 KiB a piece and
/// synced once at the end, still held a log's sync beside it for 31 ms; synced every 4 MiB,
/// not over 3.3 ms).
const STEP_BYTES: u64 = 4 << 20;

/// A pause after each step of a deletion.
const REMOVE_PAUSE: Duration = Duration::from_millis(2);

/// Writes `bytes` into `file` at `at`, a piece at a time, each written to the device
/// before the next, and synced at every [`STEP_BYTES`] boundary of the file (the caller
/// syncs once more at the end).
pub(super) fn write(
    file: &File,
    path: &Path,
    mut at: u64,
    bytes: &[u8],
) -> Result<(), JournalError> {
    for piece in bytes.chunks(PIECE_BYTES) {
        file.write_all_at(piece, at)
            .map_err(|source| JournalError::io("writing", path, source))?;
        write_out(file, at, piece.len() as u64);
        let end = at + piece.len() as u64;
        if at / STEP_BYTES != end / STEP_BYTES {
            file.sync_data()
                .map_err(|source| JournalError::io("syncing", path, source))?;
        }
        at = end;
        if bytes.len() > PIECE_BYTES {
            pause();
        }
    }
    Ok(())
}

/// The pause between two pieces, for a caller that writes one piece a call.
pub(super) fn pause() {
    std::thread::sleep(PIECE_PAUSE);
}

/// Deletes the file at `path` a few MiB at a time; returns what that freed. First renamed
/// to a name the journal does not read (`….removing`, deleted at open if a crash comes
/// first) and that made durable, so no crash leaves a cut file under a journal name; then
/// truncated and committed step by step; then unlinked. The directory's last change is
/// not synced here.
///
/// A file that a reader still holds open ([`hold`]: a cold store's file, or a journal
/// snapshot a cold store adopted, which a snapshot being encoded may still be reading) is
/// renamed but not cut: truncating it would cut the records under the reader (unlinking
/// alone would leave it readable, but free it all at once when the reader lets go). It is
/// handed to the deleter thread, which cuts it once nobody holds it: its bytes are
/// [`Removed::held`], not freed yet.
pub fn remove(path: &Path) -> Result<Removed, JournalError> {
    match rename_and_cut(path)? {
        Removal::Done(bytes) => Ok(Removed {
            freed: bytes,
            held: 0,
        }),
        Removal::Held { removing, bytes } => {
            deleter_send(Job::Cut(removing));
            Ok(Removed {
                freed: 0,
                held: bytes,
            })
        }
    }
}

/// What [`remove`] came to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Removed {
    /// Bytes deleted.
    pub freed: u64,
    /// Bytes of a file a reader holds: renamed, and cut once the reader lets go.
    pub held: u64,
}

/// What a removal came to.
enum Removal {
    /// Deleted; the bytes it held.
    Done(u64),
    /// Renamed to `removing` and left whole: a reader holds it.
    Held { removing: PathBuf, bytes: u64 },
}

/// [`remove`]'s rename, then [`cut`].
fn rename_and_cut(path: &Path) -> Result<Removal, JournalError> {
    let mut name = path.as_os_str().to_owned();
    name.push(super::format::REMOVING_SUFFIX);
    let removing = PathBuf::from(name);
    fs::rename(path, &removing).map_err(|source| JournalError::io("renaming", path, source))?;
    if let Some(dir) = path.parent() {
        super::snapshot::sync_directory(dir)?;
    }
    cut(removing)
}

/// Truncates the file at `removing` a step at a time, each step committed, then unlinks
/// it; leaves it whole if a reader holds it ([`hold`]).
fn cut(removing: PathBuf) -> Result<Removal, JournalError> {
    let path = removing.as_path();
    let file = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|source| JournalError::io("opening", path, source))?;
    let metadata = file
        .metadata()
        .map_err(|source| JournalError::io("reading", path, source))?;
    let bytes = metadata.len();
    if is_held(&metadata) {
        return Ok(Removal::Held { removing, bytes });
    }
    let mut length = bytes;
    while length > STEP_BYTES {
        length -= STEP_BYTES;
        file.set_len(length)
            .map_err(|source| JournalError::io("truncating", path, source))?;
        // The truncation's commit: its freed blocks are discarded now, a step's worth.
        file.sync_all()
            .map_err(|source| JournalError::io("syncing", path, source))?;
        std::thread::sleep(REMOVE_PAUSE);
    }
    drop(file);
    fs::remove_file(path).map_err(|source| JournalError::io("removing", path, source))?;
    Ok(Removal::Done(bytes))
}

/// Files that readers hold open, by device and inode, each with a weak handle: an entry
/// whose handle is gone (every reader let go, the file closed) counts for nothing. An
/// inode number can come back only once its file is freed, which a live handle prevents.
static HELD: Mutex<Vec<(u64, u64, Weak<File>)>> = Mutex::new(Vec::new());

/// How often the deleter looks again at a file a reader holds.
const HELD_RETRY: Duration = Duration::from_secs(1);

/// Says that `file` is read through this handle (and its clones): [`remove`] and
/// [`remove_later`] leave it whole until the last of them is dropped.
pub fn hold(file: &Arc<File>) {
    let Ok(metadata) = file.metadata() else {
        return;
    };
    let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
    held.retain(|(_, _, reader)| reader.strong_count() > 0);
    held.push((metadata.dev(), metadata.ino(), Arc::downgrade(file)));
}

/// Whether a reader holds the file of `metadata` ([`hold`]).
fn is_held(metadata: &fs::Metadata) -> bool {
    let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
    held.retain(|(_, _, reader)| reader.strong_count() > 0);
    held.iter()
        .any(|(dev, ino, _)| *dev == metadata.dev() && *ino == metadata.ino())
}

/// What the deleter thread does with a path.
enum Job {
    /// Rename, then cut ([`remove`]).
    Remove(PathBuf),
    /// Cut a file renamed already, once no reader holds it.
    Cut(PathBuf),
}

/// Deletes `path` as [`remove`] does, on the process's one deleter thread (started at the
/// first call), and returns at once: deletions queue one behind the other, so that several
/// zones letting files go at the same moment do not free them all at once beside the log's
/// syncs, and no thread is started per file. A file a reader holds waits, renamed, and is
/// looked at again every [`HELD_RETRY`] while the others go on. A failure is logged (the
/// file, or its `….removing` name, is deleted at the next open of its folder).
pub fn remove_later(path: PathBuf) {
    deleter_send(Job::Remove(path));
}

/// Hands `job` to the deleter thread (started at the first call); done in place, but for a
/// held file's wait, if the thread cannot be started.
fn deleter_send(job: Job) {
    static DELETER: std::sync::OnceLock<Option<crossbeam::channel::Sender<Job>>> =
        std::sync::OnceLock::new();
    let deleter = DELETER.get_or_init(|| {
        let (queue, jobs) = crossbeam::channel::unbounded::<Job>();
        std::thread::Builder::new()
            .name("paced-remove".to_owned())
            .spawn(move || delete_queued(&jobs))
            .map_err(|error| tracing::warn!("no deleter thread ({error}): files deleted in place"))
            .ok()
            .map(|_| queue)
    });
    let unsent = match deleter {
        Some(queue) => match queue.send(job) {
            Ok(()) => return,
            Err(unsent) => unsent.0,
        },
        None => job,
    };
    if let Err(error) = run(unsent) {
        tracing::warn!("{error}");
    }
}

/// Does `job`: the path left waiting for its reader, if one holds it.
fn run(job: Job) -> Result<Option<PathBuf>, JournalError> {
    let removal = match job {
        Job::Remove(path) => rename_and_cut(&path)?,
        Job::Cut(removing) => cut(removing)?,
    };
    Ok(match removal {
        Removal::Done(_) => None,
        Removal::Held { removing, .. } => Some(removing),
    })
}

/// The deleter thread: each job in turn; the files readers hold, again every
/// [`HELD_RETRY`] until they can go.
fn delete_queued(jobs: &crossbeam::channel::Receiver<Job>) {
    use crossbeam::channel::RecvTimeoutError;
    let mut waiting: Vec<PathBuf> = Vec::new();
    let mut retry_at = std::time::Instant::now();
    loop {
        let job = if waiting.is_empty() {
            jobs.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            jobs.recv_deadline(retry_at)
        };
        match job {
            Ok(job) => {
                let was_empty = waiting.is_empty();
                match run(job) {
                    Ok(held) => waiting.extend(held),
                    Err(error) => tracing::warn!("{error}"),
                }
                if was_empty {
                    retry_at = std::time::Instant::now() + HELD_RETRY;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if !waiting.is_empty() && std::time::Instant::now() >= retry_at {
            for removing in std::mem::take(&mut waiting) {
                match run(Job::Cut(removing)) {
                    Ok(held) => waiting.extend(held),
                    Err(error) => tracing::warn!("{error}"),
                }
            }
            retry_at = std::time::Instant::now() + HELD_RETRY;
        }
    }
}

/// Writes the range of `file` to the device and waits for it: one piece in flight at a
/// time. Pacing only: the caller's final sync reports any failure.
fn write_out(file: &File, from: u64, bytes: u64) {
    sync_range(file, from, bytes, true);
}

/// Unsynced bytes of a file handed to the kernel's writeback at once ([`start_writeback`]):
/// large enough to go out as a few large writes, small enough that a later sync has little
/// left to write.
pub const WRITEBACK_BYTES: u64 = 1 << 20;

/// Asks the kernel to start writing the bytes of `file` from `from` to `to` to the device
/// now, without waiting (Linux `sync_file_range(SYNC_FILE_RANGE_WRITE)`): bytes written
/// unsynced (a zone journal's groups, the cold records) would otherwise sit dirty until a
/// later sync, or the kernel's flusher every 5 s, wrote megabytes at once, and every
/// commit's sync waited behind them for tens of milliseconds. Call it every
/// [`WRITEBACK_BYTES`] or so. Durability comes from `sync_data` alone; this only spreads
/// the writing out, so a failure here is ignored (the later sync reports any real one).
pub fn start_writeback(file: &File, from: u64, to: u64) {
    sync_range(file, from, to - from, false);
}

/// Linux `sync_file_range(SYNC_FILE_RANGE_WRITE)` over `bytes` of `file` from `from`, and
/// with `wait` waiting for earlier and these pages to be written; its result ignored: every
/// caller only spreads or paces the writing, and a later sync reports any real failure.
/// Elsewhere nothing.
fn sync_range(file: &File, from: u64, bytes: u64, wait: bool) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let flags = if wait {
            libc::SYNC_FILE_RANGE_WAIT_BEFORE
                | libc::SYNC_FILE_RANGE_WRITE
                | libc::SYNC_FILE_RANGE_WAIT_AFTER
        } else {
            libc::SYNC_FILE_RANGE_WRITE
        };
        // SAFETY: sync_file_range on an open descriptor with a byte range; no memory is
        // passed.
        unsafe {
            libc::sync_file_range(
                file.as_raw_fd(),
                from as libc::off64_t,
                bytes as libc::off64_t,
                flags,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, from, bytes, wait);
}
