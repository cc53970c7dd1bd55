//! Segments made ahead of time: [`JournalOptions::preallocate`], which `serve` sets for
//! the journals it syncs on every commit (the write-ahead log, or a zone's own journal
//! when there is no log; behind a log the zone journals are written unsynced and appended
//! to, `Journal::stop_preallocating`).
//!
//! A commit that appends to a growing file changes the file's size and allocates blocks,
//! so its `fdatasync` must also make that metadata durable: on a journaled ext4 it commits
//! the file system's journal (jbd2) and waits for whatever else that commit carries (other
//! files' new blocks, the discards of deleted files on a volume mounted with `discard`); on
//! the journal-less ext4 of the machine measured here (`ext4_fsync_nojournal`) it writes
//! the inode's block, a second synchronous write (by the kernel's code; the figures below
//! measure the sum). Measured here
//! (docs/benchmarks.md, "The file system under the log"): an 8 KiB write and `fdatasync`
//! takes 0.25 ms at the median into a growing file, 0.16 ms into one already written with
//! zeros, and deleting a 64 MiB file beside it makes its syncs wait up to 13-15 ms.
//!
//! So the next segment is made before the roll that needs it (asked for once the active
//! segment is half full, or at once when the active segment was not made ahead: it is
//! then left as soon as the spare is ready; the service's log makes that one before its
//! first commit, [`SpareJob::run_now`]), on another thread: a file of zeros `segment_bytes` long
//! ([`SpareJob::run`]), written a piece at a time and synced every few MiB, so that it
//! never queues megabytes ahead of a commit's sync (`paced.rs`). Where compaction has
//! freed a segment, that file is reused (renamed and overwritten with zeros, no blocks
//! freed or allocated: no discard, no allocation), so a log in steady state cycles through
//! the same few files.
//! At the roll the spare is renamed to the new segment's name (the roll syncs the directory
//! as it always did); from then on commits only overwrite zeros, and their syncs carry no
//! metadata.
//!
//! Recovery reads a run of zeros to the end of a segment as the end of its records
//! ([`super::scan`]); a spare left over from a crash is deleted at open. A crash between
//! the rename and the first group's sync leaves a segment of zeros: a torn segment with
//! nothing valid in it, which recovery removes (nothing in it was ever acknowledged).
//!
//! [`JournalOptions::preallocate`]: super::JournalOptions::preallocate

use super::{JournalError, paced};
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

/// The name of a journal's spare segment in its directory.
pub const SPARE_FILE_NAME: &str = "segment-next.spare";

/// Making a journal's next segment ahead of time, on any thread: asked for by
/// [`super::Journal::spare_job`], handed back with [`super::Journal::add_spare`].
#[derive(Debug)]
pub struct SpareJob {
    pub(super) path: PathBuf,
    /// A segment compaction took off the journal's lists, to reuse rather than delete.
    pub(super) recycle: Option<PathBuf>,
    pub(super) bytes: u64,
}

impl SpareJob {
    /// The spare's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the spare reuses a segment compaction freed (rather than a new file).
    pub fn recycles(&self) -> bool {
        self.recycle.is_some()
    }

    /// Makes the spare: the freed segment renamed (or a new file), zeros over all of it,
    /// synced, paced beside the journal's commits (`paced.rs`). Returns the spare's path. A
    /// failure costs nothing but the spare (the roll then creates its segment as a journal
    /// without spares does); the caller logs it.
    pub fn run(self) -> Result<PathBuf, JournalError> {
        self.make(true)
    }

    /// [`SpareJob::run`] without the pauses between pieces: for a journal that commits
    /// nothing yet (its first segment, made before the service starts).
    pub fn run_now(self) -> Result<PathBuf, JournalError> {
        self.make(false)
    }

    fn make(self, pause: bool) -> Result<PathBuf, JournalError> {
        if let Some(old) = &self.recycle
            && let Err(source) = fs::rename(old, &self.path)
        {
            // Not reused: deleted instead, as compaction would have.
            let error = JournalError::io("renaming", old, source);
            let _ = fs::remove_file(old);
            return Err(error);
        }
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.path)
            .map_err(|source| JournalError::io("creating", &self.path, source))?;
        let length = file
            .metadata()
            .map_err(|source| JournalError::io("reading", &self.path, source))?
            .len();
        // A reused segment longer than a segment (one large group) is zeroed whole: no old
        // byte may follow the zeros that recovery reads as the end.
        let bytes = self.bytes.max(length);
        let zeros = vec![0u8; paced::PIECE_BYTES];
        let mut at = 0;
        while at < bytes {
            let piece = (bytes - at).min(zeros.len() as u64);
            paced::write(&file, &self.path, at, &zeros[..piece as usize])?;
            at += piece;
            if pause {
                paced::pause();
            }
        }
        file.sync_all()
            .map_err(|source| JournalError::io("syncing", &self.path, source))?;
        Ok(self.path)
    }
}
