//! The writer: recovery on open, then appends into a pending group and commits of whole
//! groups, segment rolls, snapshots and compaction, and the poisoning that ends it all after
//! a failed write or sync.
//!
//! Why a failed sync is never retried: when `fsync`/`fdatasync` fails, Linux may already have
//! dropped the dirty pages it could not write, or marked them clean, and it reports the error
//! once. A second `fsync` then succeeds while the data is not on disk (PostgreSQL learnt this
//! in 2018, "fsyncgate", and since then panics instead of retrying). So after a failed write
//! or sync the journal is poisoned: it refuses every later operation and the service must end;
//! on restart, recovery reads what actually reached the disk and cuts any torn tail.

use super::format::{self, SEGMENT_HEADER_BYTES, decode_frame};
use super::paced;
use super::scan::{Listing, SegmentScan, Walker, list_directory};
use super::snapshot::{load_snapshot, sync_directory, write_snapshot_file};
use super::spare::{SPARE_FILE_NAME, SpareJob};
use super::{
    JournalError, JournalOptions, MAX_PAYLOAD_BYTES, MAX_SNAPSHOT_BYTES, Record, Recovered,
    SNAPSHOTS_KEPT, Snapshot, SyncMode, TornTail,
};
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// What one commit did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Records in the group (0: there was nothing to commit, and nothing was done).
    pub records: usize,
    /// Bytes written (frames, and a segment header if the group started a segment).
    pub bytes: usize,
    /// The group's first and last lsn (both 0 for an empty commit).
    pub first_lsn: u64,
    pub last_lsn: u64,
    /// Whether the group was flushed to the device (`fdatasync`).
    pub synced: bool,
    /// Whether the group started a new segment.
    pub new_segment: bool,
}

/// What one compaction removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactStats {
    pub segments_removed: usize,
    pub snapshots_removed: usize,
    pub bytes_freed: u64,
    /// Bytes of removed files that a reader still holds (a snapshot a cold store reads
    /// closed records from): freed once it lets go.
    pub bytes_held: u64,
}

/// Where a test makes the next write or sync fail, to check the poisoning.
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FaultPoint {
    /// The next group write writes half the group, then fails (a short write and an error,
    /// as a full disk gives).
    Write,
    /// The next `fdatasync` of a segment fails after the write succeeded.
    Sync,
}

/// The segment that commits append to.
#[derive(Debug)]
struct ActiveSegment {
    file: File,
    path: PathBuf,
    /// The offset of the next write: the file's length, or less in a segment made ahead of
    /// time (zeros follow).
    bytes: u64,
    /// Where the unsynced bytes not yet handed to writeback start
    /// ([`paced::start_writeback`]).
    written_back: u64,
    /// Whether it was made ahead of time (zeros overwritten in place, a sync carries no
    /// metadata), or grows as it is appended to (each sync writes the file's new size too).
    made_ahead: bool,
}

/// One zone's journal. A single owner appends and commits; nothing here is shared.
pub struct Journal {
    dir: PathBuf,
    options: JournalOptions,
    /// Every segment on disk, `(first lsn, path)` in lsn order; the last one is the active
    /// segment when `active` is `Some`. Compaction deletes from the front.
    segments: Vec<(u64, PathBuf)>,
    /// Every snapshot on disk, `(lsn, path)` in lsn order.
    snapshots: Vec<(u64, PathBuf)>,
    /// `None` until the next commit creates a segment: before the first commit, after
    /// recovery removed a torn segment, or when the snapshot is ahead of the last segment.
    active: Option<ActiveSegment>,
    /// The pending group's frames, after [`SEGMENT_HEADER_BYTES`] reserved at the front: when
    /// the group starts a segment the header goes there, so header and group still go out in
    /// one write without a copy.
    pending: Vec<u8>,
    pending_records: usize,
    /// The lsn the next append gets.
    next_lsn: u64,
    /// The last lsn a commit made durable (as the mode makes anything durable); 0 for none.
    committed_lsn: u64,
    /// The failure that poisoned the journal, as text; `Some` means every operation refuses.
    poisoned: Option<String>,
    /// Syncs of segment files so far (tests check that a failed sync is not retried).
    segment_syncs: u64,
    /// Groups written by [`Journal::commit_unsynced`] since the last sync: the active segment's
    /// data, and (`unsynced_directory`) the names of segments started since, still to sync.
    unsynced: bool,
    unsynced_directory: bool,
    /// With [`JournalOptions::preallocate`]: the next segment's file, zeros made ahead of
    /// time ([`super::spare`]); whether one is being made; a segment compaction freed, kept
    /// to be made the next one.
    spare: Option<PathBuf>,
    spare_asked: bool,
    recyclable: Option<PathBuf>,
    #[cfg(test)]
    fault: Option<FaultPoint>,
}

impl std::fmt::Debug for Journal {
    /// The journal's position, not its buffers: the pending group can be megabytes.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Journal")
            .field("dir", &self.dir)
            .field("mode", &self.options.mode)
            .field("segments", &self.segments.len())
            .field("snapshots", &self.snapshots.len())
            .field("next_lsn", &self.next_lsn)
            .field("committed_lsn", &self.committed_lsn)
            .field("pending_records", &self.pending_records)
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

impl Journal {
    /// Opens (creating it if need be) the journal in `dir` and recovers it: loads the newest
    /// snapshot, reads and checks every record after it, and cuts a torn tail off the last
    /// segment (logged, and reported in [`Recovered::torn_tail`]). Damage anywhere else, a
    /// gap in lsns, or a damaged newest snapshot stop the open with an error that names the
    /// file and byte offset. In [`SyncMode::None`] the directory is not touched.
    pub fn open(dir: &Path, options: JournalOptions) -> Result<(Journal, Recovered), JournalError> {
        options.validate()?;
        let mut journal = Journal {
            dir: dir.to_path_buf(),
            // A group is at most its byte bound plus the record that crosses it; the buffer
            // grows for that record when it comes, and keeps its capacity from then on.
            pending: Vec::with_capacity(SEGMENT_HEADER_BYTES + options.max_group_bytes),
            options,
            segments: Vec::new(),
            snapshots: Vec::new(),
            active: None,
            pending_records: 0,
            next_lsn: 1,
            committed_lsn: 0,
            poisoned: None,
            segment_syncs: 0,
            unsynced: false,
            unsynced_directory: false,
            spare: None,
            spare_asked: false,
            recyclable: None,
            #[cfg(test)]
            fault: None,
        };
        journal.pending.resize(SEGMENT_HEADER_BYTES, 0);
        if journal.options.mode == SyncMode::None {
            return Ok((journal, Recovered::default()));
        }
        create_directory(dir)?;
        let listing = list_directory(dir)?;
        let recovered = journal.recover(listing)?;
        Ok((journal, recovered))
    }

    fn recover(&mut self, listing: Listing) -> Result<Recovered, JournalError> {
        remove_leftovers(&listing)?;
        let snapshot = match listing.snapshots.last() {
            Some((lsn, path)) => Some(load_newest_snapshot(path, *lsn)?),
            None => None,
        };
        let snapshot_lsn = snapshot.as_ref().map_or(0, |snapshot| snapshot.lsn);
        let mut walker = Walker::new(listing.segments.clone(), snapshot_lsn);
        let mut records = Vec::new();
        let mut last: Option<SegmentScan> = None;
        while !walker.is_done() {
            let scan = if walker.next_is_covered() {
                walker.skip_next()
            } else {
                walker.scan_next(&mut |frame, _offset| {
                    if frame.lsn > snapshot_lsn {
                        records.push(Record {
                            lsn: frame.lsn,
                            kind: frame.kind,
                            payload: frame.payload.to_vec(),
                        });
                    }
                })
            };
            if let Some(scan) = scan {
                last = Some(scan?);
            }
        }
        self.segments = listing.segments;
        self.snapshots = listing.snapshots;
        self.next_lsn = walker.next_lsn();
        self.committed_lsn = self.next_lsn - 1;
        let torn_tail = match last {
            Some(last) => self.settle_last_segment(last)?,
            None => None,
        };
        Ok(Recovered {
            snapshot,
            records,
            torn_tail,
        })
    }

    /// Cuts the torn tail a crash left in the last segment read (removing the segment if
    /// nothing of it was whole), and continues appending in it if it was read whole, kept,
    /// and ends where the journal goes on; otherwise the next commit starts a segment.
    fn settle_last_segment(&mut self, last: SegmentScan) -> Result<Option<TornTail>, JournalError> {
        if let Some(torn) = &last.torn {
            tracing::warn!(
                segment = %torn.segment.display(),
                offset = torn.offset,
                bytes = torn.bytes_cut,
                why = %torn.why,
                "cutting the torn tail a crash left in the journal"
            );
            if torn.segment_removed {
                fs::remove_file(&last.path)
                    .map_err(|source| JournalError::io("removing", &last.path, source))?;
                sync_directory(&self.dir)?;
                self.segments.pop();
            } else {
                let file = OpenOptions::new()
                    .write(true)
                    .open(&last.path)
                    .map_err(|source| JournalError::io("opening", &last.path, source))?;
                file.set_len(torn.offset)
                    .map_err(|source| JournalError::io("truncating", &last.path, source))?;
                file.sync_all()
                    .map_err(|source| JournalError::io("syncing", &last.path, source))?;
            }
        }
        let kept = !last.skipped && !last.torn.as_ref().is_some_and(|torn| torn.segment_removed);
        if kept && last.next_lsn == self.next_lsn {
            let file = OpenOptions::new()
                .write(true)
                .open(&last.path)
                .map_err(|source| JournalError::io("opening", &last.path, source))?;
            // Zeros after its records: a segment made ahead.
            let length = file
                .metadata()
                .map_err(|source| JournalError::io("reading the size of", &last.path, source))?
                .len();
            self.active = Some(ActiveSegment {
                file,
                path: last.path.clone(),
                bytes: last.valid_end,
                written_back: last.valid_end,
                made_ahead: length > last.valid_end,
            });
        }
        Ok(last.torn)
    }

    /// The directory the journal lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn options(&self) -> &JournalOptions {
        &self.options
    }

    /// The lsn the next [`Journal::append`] returns.
    pub fn next_lsn(&self) -> u64 {
        self.next_lsn
    }

    /// The last lsn a commit made durable; 0 before any.
    pub fn committed_lsn(&self) -> u64 {
        self.committed_lsn
    }

    /// Records appended and not yet committed.
    pub fn pending_records(&self) -> usize {
        self.pending_records
    }

    /// Bytes of the pending group's frames.
    pub fn pending_bytes(&self) -> usize {
        self.pending.len() - SEGMENT_HEADER_BYTES
    }

    /// Whether the pending group has reached a bound: commit before appending more.
    pub fn needs_commit(&self) -> bool {
        self.pending_records >= self.options.max_group_records
            || self.pending_bytes() >= self.options.max_group_bytes
    }

    /// The failure that poisoned the journal, if one did. A poisoned journal refuses
    /// everything; the service must end.
    pub fn poisoned(&self) -> Option<&str> {
        self.poisoned.as_deref()
    }

    fn check_poisoned(&self) -> Result<(), JournalError> {
        match &self.poisoned {
            Some(cause) => Err(JournalError::Poisoned {
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Keeps `error` as the reason every later operation is refused, and returns it.
    fn poison(&mut self, error: JournalError) -> JournalError {
        tracing::error!(%error, "journal poisoned: it accepts nothing more");
        self.poisoned = Some(error.to_string());
        error
    }

    /// Adds a record to the pending group and returns its lsn. Nothing is written: the record
    /// is durable, and may be answered for, only once a [`Journal::commit`] returns `Ok`.
    /// Refused when the group is full ([`Journal::needs_commit`]), when the payload is over
    /// [`MAX_PAYLOAD_BYTES`], or when the journal is poisoned.
    pub fn append(&mut self, kind: u8, payload: &[u8]) -> Result<u64, JournalError> {
        self.check_poisoned()?;
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(JournalError::RecordTooLarge {
                bytes: payload.len(),
            });
        }
        if self.needs_commit() {
            return Err(JournalError::GroupFull {
                records: self.pending_records,
                bytes: self.pending_bytes(),
            });
        }
        let lsn = self.next_lsn;
        format::encode_frame(&mut self.pending, lsn, kind, payload);
        self.next_lsn += 1;
        self.pending_records += 1;
        Ok(lsn)
    }

    /// Writes the pending group: one write and, in [`SyncMode::Fsync`], one `fdatasync` (and a
    /// directory sync when the group starts a segment). When it returns `Ok`, every record
    /// appended so far is as durable as the mode makes it, and may be answered for. When it
    /// returns `Err`, the journal is poisoned (see the module comment): answer nothing of the
    /// group and end the service.
    pub fn commit(&mut self) -> Result<CommitStats, JournalError> {
        self.commit_group(self.options.mode == SyncMode::Fsync)
    }

    /// Writes the pending group and syncs nothing, whatever the mode: for a caller that has
    /// made the group durable elsewhere first (the service's write-ahead log, see
    /// `super::wal`). The group is on disk only after the next [`Journal::sync`] (or a
    /// synced commit, or a snapshot's preparation); a segment it closes is synced at once all
    /// the same, so that a crash can tear only the last segment. Errors poison as for
    /// [`Journal::commit`].
    pub fn commit_unsynced(&mut self) -> Result<CommitStats, JournalError> {
        self.commit_group(false)
    }

    /// Makes every group written so far durable: the active segment's data, and the
    /// directory when a segment was started since the last sync. Nothing to do when every
    /// commit synced. A failure poisons.
    pub fn sync(&mut self) -> Result<(), JournalError> {
        self.check_poisoned()?;
        if self.unsynced
            && let Some(active) = &self.active
        {
            self.segment_syncs += 1;
            if let Err(source) = active.file.sync_data() {
                let error = JournalError::io("syncing", &active.path, source);
                return Err(self.poison(error));
            }
        }
        self.unsynced = false;
        if self.unsynced_directory {
            if let Err(error) = sync_directory(&self.dir) {
                return Err(self.poison(error));
            }
            self.unsynced_directory = false;
        }
        Ok(())
    }

    /// What a sync on another thread needs to make every group written so far durable: a
    /// second handle on the active segment, and the directory when a segment was started
    /// since the last sync. The journal is not told (a later [`Journal::sync`] syncs again).
    pub fn detached_sync(&self) -> Result<DetachedSync, JournalError> {
        self.check_poisoned()?;
        let file = match &self.active {
            Some(active) if self.unsynced => Some((
                active
                    .file
                    .try_clone()
                    .map_err(|source| JournalError::io("opening", &active.path, source))?,
                active.path.clone(),
            )),
            _ => None,
        };
        Ok(DetachedSync {
            file,
            dir: self.unsynced_directory.then(|| self.dir.clone()),
        })
    }

    /// The frames of the pending group, as a commit will write them (after a segment header
    /// when the group starts a segment).
    pub fn pending_frames(&self) -> &[u8] {
        &self.pending[SEGMENT_HEADER_BYTES..]
    }

    fn commit_group(&mut self, sync: bool) -> Result<CommitStats, JournalError> {
        self.check_poisoned()?;
        if self.pending_records == 0 {
            return Ok(CommitStats::default());
        }
        let records = self.pending_records;
        let first_lsn = self.next_lsn - records as u64;
        let last_lsn = self.next_lsn - 1;
        self.check_pending(first_lsn);
        if self.options.mode == SyncMode::None {
            self.clear_pending(last_lsn);
            return Ok(CommitStats {
                records,
                first_lsn,
                last_lsn,
                ..CommitStats::default()
            });
        }
        match self.write_pending(first_lsn, sync) {
            Ok((bytes, new_segment)) => {
                self.clear_pending(last_lsn);
                Ok(CommitStats {
                    records,
                    bytes,
                    first_lsn,
                    last_lsn,
                    synced: sync,
                    new_segment,
                })
            }
            Err(error) => Err(self.poison(error)),
        }
    }

    /// The paired check of every frame about to be written: it decodes, with the lsn it was
    /// given, through the same decoder recovery uses. A failure is a bug in this module (or
    /// memory corruption), never an operating condition, so it panics before the bytes can
    /// reach the disk.
    fn check_pending(&self, first_lsn: u64) {
        let mut offset = SEGMENT_HEADER_BYTES;
        let mut expected = first_lsn;
        while offset < self.pending.len() {
            let frame = decode_frame(&self.pending[offset..])
                .unwrap_or_else(|problem| panic!("a frame encoded for writing fails: {problem}"));
            assert_eq!(
                frame.lsn, expected,
                "a frame encoded for writing has the wrong lsn"
            );
            offset += frame.encoded_len();
            expected += 1;
        }
        assert_eq!(expected, self.next_lsn, "the pending group lost a record");
    }

    fn clear_pending(&mut self, last_lsn: u64) {
        self.pending.truncate(SEGMENT_HEADER_BYTES);
        self.pending_records = 0;
        self.committed_lsn = last_lsn;
    }

    /// Writes the pending group, starting a segment first if need be, and syncs it if `sync`;
    /// returns the bytes written and whether a segment was started.
    fn write_pending(&mut self, first_lsn: u64, sync: bool) -> Result<(usize, bool), JournalError> {
        let group_bytes = self.pending_bytes() as u64;
        // A segment that grows as it is appended to is left as soon as a spare is ready.
        let roll = match &self.active {
            None => true,
            Some(active) => {
                active.bytes > SEGMENT_HEADER_BYTES as u64
                    && (active.bytes + group_bytes > self.options.segment_bytes
                        || (!active.made_ahead && self.spare.is_some()))
            }
        };
        if roll {
            self.start_segment(first_lsn)?;
        }
        let from = if roll { 0 } else { SEGMENT_HEADER_BYTES };
        #[cfg(test)]
        let fault = self.fault.take();
        let Some(active) = self.active.as_mut() else {
            unreachable!("start_segment leaves an active segment");
        };
        let bytes = &self.pending[from..];
        #[cfg(test)]
        if fault == Some(FaultPoint::Write) {
            let half = bytes.len() / 2;
            active
                .file
                .write_all_at(&bytes[..half], active.bytes)
                .map_err(|source| JournalError::io("writing", &active.path, source))?;
            return Err(JournalError::io(
                "writing",
                &active.path,
                std::io::Error::other("injected write failure"),
            ));
        }
        active
            .file
            .write_all_at(bytes, active.bytes)
            .map_err(|source| JournalError::io("writing", &active.path, source))?;
        active.bytes += bytes.len() as u64;
        if !sync {
            self.unsynced = true;
            self.unsynced_directory |= roll;
            if roll {
                active.written_back = 0;
            }
            if active.bytes - active.written_back >= paced::WRITEBACK_BYTES {
                paced::start_writeback(&active.file, active.written_back, active.bytes);
                active.written_back = active.bytes;
            }
        } else {
            self.segment_syncs += 1;
            #[cfg(test)]
            if fault == Some(FaultPoint::Sync) {
                return Err(JournalError::io(
                    "syncing",
                    &active.path,
                    std::io::Error::other("injected fsync failure"),
                ));
            }
            active
                .file
                .sync_data()
                .map_err(|source| JournalError::io("syncing", &active.path, source))?;
            self.unsynced = false;
            if roll || self.unsynced_directory {
                // The file's data is on disk; its name in the directory is not until the
                // directory itself is synced.
                sync_directory(&self.dir)?;
                self.unsynced_directory = false;
            }
        }
        Ok((bytes.len(), roll))
    }

    /// Closes the active segment and creates the next, whose header goes out with the group.
    fn start_segment(&mut self, first_lsn: u64) -> Result<(), JournalError> {
        if let Some(closed) = self.active.take()
            && (self.options.mode == SyncMode::Write || self.unsynced)
        {
            // Write mode never syncs a commit (nor does `commit_unsynced`), but a segment is
            // synced once as it closes, so that a crash can tear only the last segment.
            self.segment_syncs += 1;
            self.unsynced = false;
            closed
                .file
                .sync_data()
                .map_err(|source| JournalError::io("syncing", &closed.path, source))?;
            if self.unsynced_directory {
                // Its name too: only the newest segment's may be lost.
                sync_directory(&self.dir)?;
                self.unsynced_directory = false;
            }
        }
        let path = self.dir.join(format::segment_file_name(first_lsn));
        let made_ahead = self.spare.is_some();
        let file = match self.spare.take() {
            // Zeros made ahead of time: the roll's directory sync makes the new name durable
            // (a crash before it leaves the spare, or a segment of zeros: both discarded).
            Some(spare) => {
                fs::rename(&spare, &path)
                    .map_err(|source| JournalError::io("renaming", &spare, source))?;
                OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|source| JournalError::io("opening", &path, source))?
            }
            None => OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(|source| JournalError::io("creating", &path, source))?,
        };
        self.pending[..SEGMENT_HEADER_BYTES]
            .copy_from_slice(&format::encode_segment_header(first_lsn));
        self.segments.push((first_lsn, path.clone()));
        self.active = Some(ActiveSegment {
            file,
            path,
            bytes: 0,
            written_back: 0,
            made_ahead,
        });
        Ok(())
    }

    /// Saves the caller's state after record `lsn` (which must be committed), so that
    /// recovery starts from it and replays only the records after it. The file is written
    /// under a temporary name, synced, renamed, and the directory synced, in every mode but
    /// [`SyncMode::None`] (where it does nothing): snapshots are rare, and one that is not
    /// durable could let compaction delete segments it does not yet replace. In
    /// [`SyncMode::Write`] the active segment is synced first, so the records the snapshot
    /// claims to cover are on disk before it. A failed sync poisons the journal.
    pub fn write_snapshot(&mut self, lsn: u64, bytes: &[u8]) -> Result<(), JournalError> {
        if !self.prepare_snapshot(lsn)? {
            return Ok(());
        }
        match write_detached_snapshot(&self.dir, lsn, bytes) {
            Ok(path) => self.add_snapshot(lsn, path),
            Err(error) if error.is_failed_sync() => Err(self.poison(error)),
            Err(error) => Err(error),
        }
    }

    /// The first half of a snapshot written by another thread: checks that a snapshot after
    /// `lsn` may be taken (committed, not behind the newest) and makes the records up to it
    /// durable (`write` mode syncs the active segment: a snapshot must never be on disk
    /// ahead of the records it covers). `false` when snapshots are not kept (`none` mode).
    /// Then [`write_detached_snapshot`] (any thread) and [`Journal::add_snapshot`].
    pub fn prepare_snapshot(&mut self, lsn: u64) -> Result<bool, JournalError> {
        self.check_poisoned()?;
        if lsn > self.committed_lsn {
            return Err(JournalError::SnapshotAhead {
                lsn,
                committed: self.committed_lsn,
            });
        }
        if let Some(&(newest, _)) = self.snapshots.last()
            && lsn < newest
        {
            return Err(JournalError::SnapshotBehind { lsn, newest });
        }
        if self.options.mode == SyncMode::None {
            return Ok(false);
        }
        if self.options.mode == SyncMode::Write
            && let Some(active) = &self.active
        {
            self.segment_syncs += 1;
            if let Err(source) = active.file.sync_data() {
                let error = JournalError::io("syncing", &active.path, source);
                return Err(self.poison(error));
            }
        }
        // Groups written unsynced: the snapshot must not be on disk ahead of them.
        self.sync()?;
        Ok(true)
    }

    /// The second half: a snapshot file written at `path` for `lsn` (prepared with
    /// [`Journal::prepare_snapshot`]) becomes the journal's newest; [`Journal::compact`]
    /// may then drop what it covers.
    pub fn add_snapshot(&mut self, lsn: u64, path: PathBuf) -> Result<(), JournalError> {
        self.check_poisoned()?;
        if let Some(&(newest, _)) = self.snapshots.last()
            && lsn < newest
        {
            return Err(JournalError::SnapshotBehind { lsn, newest });
        }
        self.snapshots.retain(|(existing, _)| *existing != lsn);
        self.snapshots.push((lsn, path));
        Ok(())
    }

    /// Deletes what the snapshots make unnecessary: snapshots older than the newest
    /// [`SNAPSHOTS_KEPT`], and segments whose records are all covered by the oldest snapshot
    /// kept, oldest first, never the last segment. Covering by the older of the two kept
    /// snapshots (not the newest) keeps the segments that would rebuild the zone from it if
    /// the newest were ever found damaged; restart time stays bounded all the same, since
    /// recovery reads only the segments after the newest snapshot. Here and now, on the
    /// caller's thread: [`Journal::detach_compacted`], then [`remove_compacted`]. A failed
    /// removal is returned (the file stays on disk, off the lists, and the next start's
    /// compaction deletes it); a failed directory sync poisons.
    pub fn compact(&mut self) -> Result<CompactStats, JournalError> {
        let paths = self.detach_compacted()?;
        match remove_compacted(&self.dir, &paths) {
            Err(error) if error.is_failed_sync() => Err(self.poison(error)),
            removed => removed,
        }
    }

    /// What [`Journal::compact`] would delete, taken off the journal's lists but not
    /// deleted: for a caller that deletes the files on another thread
    /// ([`remove_compacted`]), so that no commit waits while the file system frees tens of
    /// megabytes. A file that then fails to go stays on disk, covered by the snapshots, and
    /// the next start's compaction deletes it.
    pub fn detach_compacted(&mut self) -> Result<Vec<PathBuf>, JournalError> {
        self.check_poisoned()?;
        let (segments, snapshots) = self.compactable();
        let mut paths: Vec<PathBuf> = self
            .segments
            .drain(..segments)
            .map(|(_, path)| path)
            .collect();
        if self.options.preallocate
            && let Some(newest) = paths.pop()
            && let Some(older) = self.recyclable.replace(newest)
        {
            // One freed segment is kept to be reused as a spare (no blocks freed, none
            // allocated); any other goes.
            paths.push(older);
        }
        paths.extend(self.snapshots.drain(..snapshots).map(|(_, path)| path));
        Ok(paths)
    }

    /// With [`JournalOptions::preallocate`], when the journal has no spare segment and none
    /// is being made, and the active segment is half full or was not made ahead (it grows as
    /// it is appended to, and is left as soon as the spare is ready; a new journal's first
    /// segment is one): the job that makes one (on any thread: [`SpareJob::run`]), reusing a
    /// segment compaction freed if there is one. Hand its result to [`Journal::add_spare`].
    /// Asked for at half, each spare is ready long before its roll. (Only the journals
    /// synced on every commit take spares: when every journal asked at start, hundreds of
    /// MB of zeros in the first seconds made a 191 ms stall at 24 s of a run.)
    pub fn spare_job(&mut self) -> Option<SpareJob> {
        let wanted = self.active.as_ref().is_none_or(|active| {
            !active.made_ahead || active.bytes >= self.options.segment_bytes / 2
        });
        if !self.options.preallocate
            || self.options.mode == SyncMode::None
            || !wanted
            || self.spare.is_some()
            || self.spare_asked
            || self.poisoned.is_some()
        {
            return None;
        }
        self.spare_asked = true;
        Some(SpareJob {
            path: self.dir.join(SPARE_FILE_NAME),
            recycle: self.recyclable.take(),
            bytes: self.options.segment_bytes,
        })
    }

    /// Makes no more segments ahead of time: for a journal no longer synced on every commit
    /// (a write-ahead log covers it), whose syncs are rare and off the answers' way, so that
    /// the zeros are not worth their writes.
    pub fn stop_preallocating(&mut self) {
        self.options.preallocate = false;
    }

    /// The outcome of a [`Journal::spare_job`]: the spare the next roll takes, or `None` when
    /// making it failed (the next roll creates its segment; no other spare is asked for).
    pub fn add_spare(&mut self, spare: Option<PathBuf>) {
        match spare {
            Some(path) => {
                self.spare = Some(path);
                self.spare_asked = false;
            }
            None => self.options.preallocate = false,
        }
    }

    /// How many of the oldest segments and snapshots compaction may delete (see
    /// [`Journal::compact`]).
    fn compactable(&self) -> (usize, usize) {
        if self.options.mode == SyncMode::None || self.snapshots.len() < SNAPSHOTS_KEPT {
            return (0, 0);
        }
        let covered_lsn = self.snapshots[self.snapshots.len() - SNAPSHOTS_KEPT].0;
        let mut segments = 0;
        while self.segments.len() - segments > 1
            && self.segments[segments + 1].0.saturating_sub(1) <= covered_lsn
        {
            segments += 1;
        }
        (segments, self.snapshots.len() - SNAPSHOTS_KEPT)
    }

    /// Segment files on disk, oldest first.
    pub fn segment_paths(&self) -> impl Iterator<Item = &Path> {
        self.segments.iter().map(|(_, path)| path.as_path())
    }

    /// Makes the next write or segment sync fail, once.
    #[cfg(test)]
    pub(crate) fn inject_fault(&mut self, point: FaultPoint) {
        self.fault = Some(point);
    }

    /// Syncs of segment files so far (`fdatasync` calls), for metrics; tests check with it
    /// that a failed sync is not retried.
    pub fn segment_syncs(&self) -> u64 {
        self.segment_syncs
    }
}

/// A journal's sync, run on another thread ([`Journal::detached_sync`]). A failure means
/// that what was written may not be on disk: the caller must end the service, as for any
/// failed sync.
#[derive(Debug)]
pub struct DetachedSync {
    file: Option<(File, PathBuf)>,
    dir: Option<PathBuf>,
}

impl DetachedSync {
    /// Whether there is nothing to sync (every group written so far was synced).
    pub fn is_empty(&self) -> bool {
        self.file.is_none() && self.dir.is_none()
    }

    pub fn run(self) -> Result<(), JournalError> {
        if let Some((file, path)) = &self.file {
            file.sync_data()
                .map_err(|source| JournalError::io("syncing", path, source))?;
        }
        if let Some(dir) = &self.dir {
            sync_directory(dir)?;
        }
        Ok(())
    }
}

/// Deletes the files [`Journal::detach_compacted`] took off the lists of the journal in
/// `dir`, each a few MiB at a time so that no commit's sync waits behind the freeing
/// (`paced.rs`), then syncs `dir` (a failure there must end the journal's use, as any
/// failed sync).
pub fn remove_compacted(dir: &Path, paths: &[PathBuf]) -> Result<CompactStats, JournalError> {
    let mut stats = CompactStats::default();
    for path in paths {
        let removed = paced::remove(path)?;
        stats.bytes_freed += removed.freed;
        stats.bytes_held += removed.held;
        if path.extension().is_some_and(|extension| extension == "seg") {
            stats.segments_removed += 1;
        } else {
            stats.snapshots_removed += 1;
        }
    }
    if !paths.is_empty() {
        sync_directory(dir)?;
    }
    Ok(stats)
}

/// Creates the journal's directory if it is missing, and makes its creation durable.
pub(super) fn create_directory(dir: &Path) -> Result<(), JournalError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(|source| JournalError::io("creating", dir, source))?;
    if let Some(parent) = dir.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        sync_directory(parent)?;
    }
    Ok(())
}

/// Writes the snapshot `bytes` of the state after `lsn` into the journal directory `dir`,
/// durably (temporary file, sync, rename, directory sync), from any thread: the journal's
/// owner prepared it ([`Journal::prepare_snapshot`]) and registers it afterwards
/// ([`Journal::add_snapshot`]). A failed sync must end the journal's use (see
/// [`JournalError::is_failed_sync`]).
pub fn write_detached_snapshot(
    dir: &Path,
    lsn: u64,
    bytes: &[u8],
) -> Result<PathBuf, JournalError> {
    if bytes.len() as u64 > MAX_SNAPSHOT_BYTES {
        return Err(JournalError::SnapshotTooLarge { bytes: bytes.len() });
    }
    write_snapshot_file(dir, lsn, bytes)
}

/// Removes what a crash left half done: snapshots interrupted while written, a spare made
/// for a roll that never came (a new one is made when asked for), and files whose deletion
/// was interrupted.
fn remove_leftovers(listing: &Listing) -> Result<(), JournalError> {
    for temporary in &listing.temporaries {
        tracing::warn!(
            path = %temporary.display(),
            "removing a snapshot that a crash interrupted while it was written"
        );
        fs::remove_file(temporary)
            .map_err(|source| JournalError::io("removing", temporary, source))?;
    }
    for leftover in listing.spare.iter().chain(&listing.removing) {
        fs::remove_file(leftover)
            .map_err(|source| JournalError::io("removing", leftover, source))?;
    }
    Ok(())
}

/// Loads the newest snapshot; damage in it names the way out.
fn load_newest_snapshot(path: &Path, lsn: u64) -> Result<Snapshot, JournalError> {
    load_snapshot(path, lsn).map_err(|error| match error {
        JournalError::Corrupt { path, offset, why } => JournalError::Corrupt {
            path,
            offset,
            why: format!(
                "{why}; this is the newest snapshot: move it away to recover from the snapshot \
                 before it"
            ),
        },
        other => other,
    })
}
