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
use std::os::unix::fs::FileExt;
use std::path::Path;
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

/// Deletes the file at `path` a few MiB at a time; returns the bytes it held. First renamed
/// to a name the journal does not read (`….removing`, deleted at open if a crash comes
/// first) and that made durable, so no crash leaves a cut file under a journal name; then
/// truncated and committed step by step; then unlinked. The directory's last change is
/// not synced here.
pub fn remove(path: &Path) -> Result<u64, JournalError> {
    let mut name = path.as_os_str().to_owned();
    name.push(super::format::REMOVING_SUFFIX);
    let removing = std::path::PathBuf::from(name);
    fs::rename(path, &removing).map_err(|source| JournalError::io("renaming", path, source))?;
    if let Some(dir) = path.parent() {
        super::snapshot::sync_directory(dir)?;
    }
    let path = removing.as_path();
    let file = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|source| JournalError::io("opening", path, source))?;
    let bytes = file
        .metadata()
        .map_err(|source| JournalError::io("reading", path, source))?
        .len();
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
    Ok(bytes)
}

/// Deletes `path` as [`remove`] does, on the process's one deleter thread (started at the
/// first call), and returns at once: deletions queue one behind the other, so that several
/// zones letting files go at the same moment do not free them all at once beside the log's
/// syncs, and no thread is started per file. A failure is logged (the file, or its
/// `….removing` name, is deleted at the next open of its folder).
pub fn remove_later(path: std::path::PathBuf) {
    static DELETER: std::sync::OnceLock<Option<crossbeam::channel::Sender<std::path::PathBuf>>> =
        std::sync::OnceLock::new();
    let deleter = DELETER.get_or_init(|| {
        let (queue, paths) = crossbeam::channel::unbounded::<std::path::PathBuf>();
        std::thread::Builder::new()
            .name("paced-remove".to_owned())
            .spawn(move || {
                for path in paths {
                    remove_logged(&path);
                }
            })
            .map_err(|error| tracing::warn!("no deleter thread ({error}): files deleted in place"))
            .ok()
            .map(|_| queue)
    });
    match deleter {
        Some(queue) => {
            if let Err(unsent) = queue.send(path) {
                remove_logged(&unsent.0);
            }
        }
        None => remove_logged(&path),
    }
}

fn remove_logged(path: &Path) {
    if let Err(error) = remove(path) {
        tracing::warn!("deleting {}: {error}", path.display());
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
