//! The journal: one zone's append-only log of opaque records, made durable in groups, so a
//! decision is answered only after it is on disk and replay alone rebuilds the zone (DESIGN
//! section 2, "Durability before acknowledgement", and section 3, invariant 4).
//!
//! This module is the storage layer only. It knows records as `(lsn, kind, payload bytes)`;
//! what a payload means (a decision, a cancel, a stock level) is the caller's. The caller is
//! a zone's single writer, running the journal synchronously on its own thread:
//!
//! 1. [`Journal::open`] recovers the directory: the newest snapshot, the records after it,
//!    and a report of any torn tail it cut off. The caller rebuilds its state from them.
//! 2. [`Journal::append`] adds a record to the pending group and returns its lsn (log
//!    sequence number: 1, 2, 3, ..., never reused). Nothing touches the disk yet.
//! 3. [`Journal::commit`] writes the pending group in one write and, in the default
//!    [`SyncMode::Fsync`], one `fdatasync`. Only when it returns `Ok` may the caller answer
//!    for the group's records. When it returns `Err` the journal is poisoned: nothing more is
//!    accepted, and the service must end and be restarted (recovery then decides what is on
//!    disk). An fsync is never retried; `writer.rs` says why.
//! 4. Now and then [`Journal::write_snapshot`] saves the caller's state after a committed lsn
//!    and [`Journal::compact`] deletes what the snapshots make unnecessary, so a restart
//!    replays a bounded number of records.
//!
//! [`verify`] and [`read_records`] read a directory without changing it, for
//! `order-router journal verify` and `journal dump`. `docs/journal.md` describes the format
//! byte by byte, the modes, and the recovery rules.
//!
//! Layout: `format.rs` (bytes on disk), `scan.rs` (walking segments: torn tail or damage),
//! `writer.rs` (the [`Journal`]), `snapshot.rs` (snapshot files), `inspect.rs` (verify and
//! dump), `paced.rs` (large writes and deletions that leave the disk to commits), `spare.rs`
//! (segments made ahead of time), `wal.rs` (a writer's write-ahead log),
//! `tests.rs` (crashes, damage and poisoning, simulated).

mod format;
mod inspect;
mod paced;
mod scan;
mod snapshot;
mod spare;
pub mod wal;
mod writer;

#[cfg(test)]
mod tests;

pub use format::{
    FRAME_HEADER_BYTES, MAX_FRAME_BYTES, MAX_PAYLOAD_BYTES, MAX_SNAPSHOT_BYTES,
    SEGMENT_HEADER_BYTES, SNAPSHOT_HEADER_BYTES, segment_file_name, snapshot_file_name,
};
pub use inspect::{
    RecordEntry, Records, SegmentReport, SnapshotReport, VerifyReport, read_newest_snapshot,
    read_records, verify,
};
pub use paced::{
    Removed, WRITEBACK_BYTES, hold, remove as remove_paced, remove_later, start_writeback,
};
pub use snapshot::SnapshotWriter;
pub use spare::SpareJob;
pub use writer::{
    CommitStats, CompactStats, DetachedSync, Journal, remove_compacted, write_detached_snapshot,
};

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The smallest segment size an option may ask for. Tests use it to roll often; in service a
/// segment is tens of MiB, so a roll (a file creation and a directory sync) is rare.
pub const SEGMENT_BYTES_MIN: u64 = 4096;
/// The largest segment size: recovery reads a whole segment into memory at once.
pub const SEGMENT_BYTES_MAX: u64 = 1 << 30;
/// The most records one group may hold.
pub const GROUP_RECORDS_MAX: usize = 65_536;
/// The smallest byte bound of a group.
pub const GROUP_BYTES_MIN: usize = 4096;
/// The largest byte bound of a group: the pending group is a buffer in memory.
pub const GROUP_BYTES_MAX: usize = 64 << 20;
/// The longest commit window: every answer may wait this long, so it stays well under the
/// latencies storefronts expect.
pub const COMMIT_WINDOW_MAX: Duration = Duration::from_millis(100);
/// Snapshots that compaction keeps. Two, so that if the newest is ever found damaged an
/// operator can remove it and recover from the one before (compaction keeps the segments
/// that one needs).
pub const SNAPSHOTS_KEPT: usize = 2;

/// When a commit reaches the disk: the trade of safety against speed, per journal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SyncMode {
    /// Every commit is one write and one `fdatasync`; a segment roll also syncs the
    /// directory. A committed record survives a crash of the process and of the machine.
    /// The cost is a device flush per group (tens of microseconds on NVMe with a power-safe
    /// cache, milliseconds on plain disks), which group commit spreads over the group.
    #[default]
    Fsync,
    /// Every commit is one write into the page cache, with no flush. A committed record
    /// survives a crash of the process (kill -9) but not of the machine or its power: the
    /// last few seconds of commits may be lost, and after such a crash recovery may also
    /// refuse a tail that the kernel wrote out of order. Segments are still synced once when
    /// they are closed and before a snapshot, so only the last segment can be torn.
    Write,
    /// Nothing is written, nothing is read: the directory is not even opened, every commit
    /// succeeds at once, and a restart loses everything. For benchmarks of the rest of the
    /// router, never for service.
    None,
}

impl SyncMode {
    /// The name used in configuration and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            SyncMode::Fsync => "fsync",
            SyncMode::Write => "write",
            SyncMode::None => "none",
        }
    }
}

impl std::str::FromStr for SyncMode {
    type Err = JournalError;

    fn from_str(text: &str) -> Result<SyncMode, JournalError> {
        match text {
            "fsync" => Ok(SyncMode::Fsync),
            "write" => Ok(SyncMode::Write),
            "none" => Ok(SyncMode::None),
            other => Err(JournalError::Options {
                field: "mode",
                why: format!("'{other}' is not one of fsync, write, none"),
            }),
        }
    }
}

impl std::fmt::Display for SyncMode {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.name())
    }
}

/// How a journal writes. Every field is bounded; [`JournalOptions::validate`] checks the
/// bounds and their relations, and [`Journal::open`] refuses options that break them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalOptions {
    /// When a commit reaches the disk; see [`SyncMode`].
    pub mode: SyncMode,
    /// A segment is closed and a new one started when the next group would take it past this
    /// many bytes (a segment holds at least one group, so one larger group makes one larger
    /// segment). Compaction deletes whole segments, so smaller segments free space sooner.
    pub segment_bytes: u64,
    /// A group holds at most this many records: when it has them, [`Journal::needs_commit`]
    /// says so and [`Journal::append`] refuses more until it is committed.
    pub max_group_records: usize,
    /// A group closes once its frames reach this many bytes (the record that crosses the
    /// bound is still in it, so a group is at most this plus one record).
    pub max_group_bytes: usize,
    /// How long the caller may hold a group open for more records before committing it. The
    /// journal has no timer: the caller (the service's journal writer thread) commits when
    /// the window since the group's first record has passed and nothing more is waiting, or
    /// when the group is full, whichever comes first. Zero means commit as soon as nothing
    /// more is waiting, which under load still makes large groups (everything that arrived
    /// during the previous fsync).
    pub commit_window: Duration,
    /// Segments made ahead of time, zeros overwritten in place, freed ones reused
    /// ([`Journal::spare_job`], `spare.rs`): for a journal synced on every commit, whose
    /// syncs then carry no file system metadata. Off by default: the caller must run the
    /// spare jobs.
    pub preallocate: bool,
}

impl Default for JournalOptions {
    fn default() -> JournalOptions {
        JournalOptions {
            mode: SyncMode::Fsync,
            segment_bytes: 64 << 20,
            max_group_records: 4096,
            max_group_bytes: 4 << 20,
            commit_window: Duration::ZERO,
            preallocate: false,
        }
    }
}

impl JournalOptions {
    /// Checks every bound, and that a segment can hold a full group.
    pub fn validate(&self) -> Result<(), JournalError> {
        let refuse = |field: &'static str, why: String| Err(JournalError::Options { field, why });
        if !(SEGMENT_BYTES_MIN..=SEGMENT_BYTES_MAX).contains(&self.segment_bytes) {
            return refuse(
                "segment_bytes",
                format!(
                    "{} is outside {SEGMENT_BYTES_MIN}..={SEGMENT_BYTES_MAX}",
                    self.segment_bytes
                ),
            );
        }
        if !(1..=GROUP_RECORDS_MAX).contains(&self.max_group_records) {
            return refuse(
                "max_group_records",
                format!(
                    "{} is outside 1..={GROUP_RECORDS_MAX}",
                    self.max_group_records
                ),
            );
        }
        if !(GROUP_BYTES_MIN..=GROUP_BYTES_MAX).contains(&self.max_group_bytes) {
            return refuse(
                "max_group_bytes",
                format!(
                    "{} is outside {GROUP_BYTES_MIN}..={GROUP_BYTES_MAX}",
                    self.max_group_bytes
                ),
            );
        }
        if self.max_group_bytes as u64 > self.segment_bytes {
            return refuse(
                "max_group_bytes",
                format!(
                    "{} is larger than segment_bytes ({}): a segment must hold a full group",
                    self.max_group_bytes, self.segment_bytes
                ),
            );
        }
        if self.commit_window > COMMIT_WINDOW_MAX {
            return refuse(
                "commit_window",
                format!(
                    "{:?} is longer than the bound of {COMMIT_WINDOW_MAX:?}",
                    self.commit_window
                ),
            );
        }
        Ok(())
    }
}

/// One record handed back by recovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The record's position in the journal, given by [`Journal::append`].
    pub lsn: u64,
    /// The caller's tag for what the payload is.
    pub kind: u8,
    pub payload: Vec<u8>,
}

/// The caller's state after some lsn, as it handed it to [`Journal::write_snapshot`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The last record whose effect the state includes.
    pub lsn: u64,
    /// The state: the file's bytes from [`SNAPSHOT_PAYLOAD_OFFSET`] on.
    pub bytes: Vec<u8>,
    /// The file it was read from.
    pub path: PathBuf,
}

/// Where a snapshot file's state starts (after its header): a reader may read the state's
/// bytes from the file itself (a restart leaves closed records there, `crate::zone::cold`).
pub const SNAPSHOT_PAYLOAD_OFFSET: u64 = SNAPSHOT_HEADER_BYTES as u64;

/// What a crash left half-written at the end of the last segment, and recovery cut off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    pub segment: PathBuf,
    /// Where the first incomplete or damaged frame starts: the file's new length.
    pub offset: u64,
    /// Bytes from there to the end of the file.
    pub bytes_cut: u64,
    /// Whether the whole segment was removed (its header was torn: a crash right after the
    /// segment was created).
    pub segment_removed: bool,
    /// What was wrong with the frame or header at `offset`.
    pub why: String,
}

impl std::fmt::Display for TornTail {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.segment_removed {
            write!(
                formatter,
                "torn segment {} ({} bytes): its header is incomplete ({})",
                self.segment.display(),
                self.bytes_cut,
                self.why
            )
        } else {
            write!(
                formatter,
                "torn tail of {} at byte {}: {} bytes ({})",
                self.segment.display(),
                self.offset,
                self.bytes_cut,
                self.why
            )
        }
    }
}

/// What [`Journal::open`] found: the caller rebuilds its state from `snapshot` (if any) and
/// then every record of `records`, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The newest snapshot.
    pub snapshot: Option<Snapshot>,
    /// Every record after the snapshot (or every record, without one), in lsn order.
    pub records: Vec<Record>,
    /// The torn tail that was cut off, if the last run ended in a crash mid-write. Its
    /// records were never committed, so never answered.
    pub torn_tail: Option<TornTail>,
}

/// Why the journal refused an operation or a directory.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The operating system refused an operation on a file or directory. From `commit` (and
    /// from a sync anywhere) it has poisoned the journal.
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// An earlier write or sync failed (`cause`); the journal refuses everything since.
    #[error(
        "the journal accepts nothing more after an earlier failure ({cause}); end the service \
         and restart it: recovery decides what reached the disk"
    )]
    Poisoned { cause: String },
    /// A segment or snapshot is damaged, or lsns do not continue: a start is refused.
    /// `offset` is the byte where the bad frame or header starts (0 for a whole file).
    #[error("{} at byte {offset}: {why}", path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        why: String,
    },
    /// A payload over [`MAX_PAYLOAD_BYTES`]; nothing was appended.
    #[error("a record of {bytes} bytes is over the limit of {MAX_PAYLOAD_BYTES} bytes")]
    RecordTooLarge { bytes: usize },
    /// The pending group reached a bound ([`Journal::needs_commit`]); commit it first.
    #[error(
        "the pending group is full ({records} records, {bytes} bytes): commit it before \
         appending more"
    )]
    GroupFull { records: usize, bytes: usize },
    /// A snapshot over [`MAX_SNAPSHOT_BYTES`]; nothing of it is kept.
    #[error("a snapshot of {bytes} bytes is over the limit of {MAX_SNAPSHOT_BYTES} bytes")]
    SnapshotTooLarge { bytes: usize },
    /// A snapshot may cover only committed records.
    #[error(
        "a snapshot at lsn {lsn} would cover records not committed yet (committed: {committed})"
    )]
    SnapshotAhead { lsn: u64, committed: u64 },
    /// A snapshot older than the newest one would never be used.
    #[error("a snapshot at lsn {lsn} is older than the newest one, at lsn {newest}")]
    SnapshotBehind { lsn: u64, newest: u64 },
    /// An option out of its bounds, by field name.
    #[error("journal option {field}: {why}")]
    Options { field: &'static str, why: String },
}

impl JournalError {
    /// Whether this is a failed sync (of a file or a directory): after one, nothing written
    /// may be trusted to be on disk, and the journal must not be used again.
    pub fn is_failed_sync(&self) -> bool {
        matches!(self, JournalError::Io { action, .. } if action.starts_with("syncing"))
    }

    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> JournalError {
        JournalError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}
