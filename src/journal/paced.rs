//! Large writes and deletions, paced so that a commit's sync never waits behind them.
//!
//! A journal commit's `fdatasync` queues at the device behind whatever else is being
//! written, and on a volume mounted with `discard` behind the discards of deleted files too,
//! which the file system issues when it commits the deletion. Measured here
//! (docs/benchmarks.md, "Segments made ahead of time"): a 64 MiB file written and synced at
//! once makes the syncs of a log beside it wait up to 28-34 ms, its deletion up to 13-38
//! ms; a zone snapshot is 90-260 MB. Written a small piece at a time, each waited for, and
//! deleted by truncating a few MiB at a time, each step committed, the same work leaves the
//! log's syncs under 5 ms. Everything here runs off the writer thread (the snapshotter, the
//! journal writer's background thread) and takes a few seconds where it took one.

use super::JournalError;
use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Duration;

/// Bytes written at once, then waited for: a commit's sync finds at most this ahead of it.
pub(super) const PIECE_BYTES: usize = 256 << 10;

/// A pause after each piece, so the writing takes a share of the device, not all of it. At
/// 256 KiB a piece a 64 MiB segment takes about 0.6 s of pauses, a 260 MB snapshot 2 s.
const PIECE_PAUSE: Duration = Duration::from_millis(2);

/// Bytes a deletion frees per step, each step committed (and so discarded) on its own.
const REMOVE_STEP_BYTES: u64 = 4 << 20;

/// A pause after each step of a deletion.
const REMOVE_PAUSE: Duration = Duration::from_millis(2);

/// Writes `bytes` into `file` at `at`, a piece at a time, each written to the device
/// before the next (not synced: the caller syncs once at the end, which reports any
/// failure).
pub(super) fn write(file: &File, path: &Path, mut at: u64, bytes: &[u8]) -> Result<(), JournalError> {
    for piece in bytes.chunks(PIECE_BYTES) {
        file.write_all_at(piece, at)
            .map_err(|source| JournalError::io("writing", path, source))?;
        write_out(file, at, piece.len() as u64);
        at += piece.len() as u64;
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
pub(super) fn remove(path: &Path) -> Result<u64, JournalError> {
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
    while length > REMOVE_STEP_BYTES {
        length -= REMOVE_STEP_BYTES;
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

/// Writes the range of `file` to the device and waits for it (Linux `sync_file_range`,
/// wait before and after): one piece in flight at a time. Pacing only: the caller's final
/// sync reports any failure, so this one's result is ignored.
fn write_out(file: &File, from: u64, bytes: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: sync_file_range on an open descriptor with a byte range; no memory is
        // passed.
        unsafe {
            libc::sync_file_range(
                file.as_raw_fd(),
                from as libc::off64_t,
                bytes as libc::off64_t,
                libc::SYNC_FILE_RANGE_WAIT_BEFORE
                    | libc::SYNC_FILE_RANGE_WRITE
                    | libc::SYNC_FILE_RANGE_WAIT_AFTER,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, from, bytes);
}
