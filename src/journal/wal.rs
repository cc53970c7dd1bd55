//! The write-ahead log of a journal writer that serves several zones: one write and one
//! `fdatasync` a round for all of them, where each zone's own journal took one each (a sync
//! costs the same for one zone's records as for four zones': docs/benchmarks.md, "Latency:
//! where an order's time goes").
//!
//! The zones' journals stay what they were: the source a restart rebuilds each zone from,
//! what `journal verify` and `journal dump` read, where snapshots and compaction happen. The
//! writer copies each zone's pending group into this log as one record (the zone's name,
//! then each of the group's records: length, lsn, kind, payload; the log's own frame
//! checksums them all), commits the log, synced, and only then answers; the zones' journals
//! are written after, unsynced ([`Journal::commit_unsynced`]). The zone frames' own
//! checksums are left out on purpose: a whole valid frame inside a log record would look,
//! to the scan that tells a torn tail from damage, like a valid record after a torn one.
//!
//! **Checkpoints.** Every [`CHECKPOINT_BYTES`] of log every zone's journal is synced and a
//! checkpoint written: an empty snapshot of this log at its last lsn, which says that every
//! record before it is durable in the zones' own journals. The service does both on a
//! thread of their own ([`Wal::begin_checkpoint`], [`Journal::detached_sync`]).
//! Compaction then deletes the log's segments the older of the two kept checkpoints covers,
//! so a log holds a few checkpoints' worth of records.
//!
//! **At start**, before the zones recover, [`read_tails`] reads every log under the data
//! dir's `wal/` (one per writer of the last run, whatever the placement was): the zone
//! groups after each log's checkpoint, split back into records per zone, each checked
//! (frame checksum, lsns that continue). Each zone's recovery then appends the records past
//! its journal's end to its journal, synced ([`fold`]): what a crash of the machine took
//! from the end of an unsynced journal comes back from here. When every zone has, [`retire`]
//! removes the logs, and the new writers start new ones.

use super::format::{FRAME_HEADER_BYTES, MAX_PAYLOAD_BYTES};
use super::snapshot::sync_directory;
use super::{Journal, JournalError, JournalOptions, Record, SyncMode};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The kind of a log record: one zone's group.
pub const ZONE_GROUP: u8 = 1;

/// Bytes before a zone record's payload in the log: length (4), lsn (8), kind (1).
const ENTRY_HEADER_BYTES: usize = 13;

/// Bytes of log between checkpoints. A checkpoint costs a sync of each zone's journal and a
/// snapshot file (milliseconds, off the writer thread); at 20k orders/s a writer's log
/// grows about 2 MB/s, so this is one every 15 s or so, and a restart reads at most about
/// twice this per log.
pub const CHECKPOINT_BYTES: u64 = 32 << 20;

/// Where the logs live under a data dir.
pub fn root(data_dir: &Path) -> PathBuf {
    data_dir.join("wal")
}

/// A writer's log.
pub struct Wal {
    journal: Journal,
    /// One log record's payload being built (the zone's name, then a piece of its group's
    /// records), reused.
    record: Vec<u8>,
    since_checkpoint: u64,
    /// Bytes of log between checkpoints ([`CHECKPOINT_BYTES`] unless set).
    checkpoint_bytes: u64,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Wal")
            .field("journal", &self.journal)
            .field("since_checkpoint", &self.since_checkpoint)
            .field("checkpoint_bytes", &self.checkpoint_bytes)
            .finish()
    }
}

impl Wal {
    /// A new log in `dir`, with the zones' `segment_bytes`; refused if `dir` holds records
    /// (a log is read and retired at start, before the writers start new ones).
    pub fn create(dir: &Path, zones: &JournalOptions) -> Result<Wal, JournalError> {
        // The zones' bounds: a log group holds a round of their groups, committed early
        // (still before anything is answered) if it reaches the zones' byte bound.
        let options = JournalOptions {
            mode: SyncMode::Fsync,
            max_group_records: super::GROUP_RECORDS_MAX,
            commit_window: std::time::Duration::ZERO,
            preallocate: true,
            ..zones.clone()
        };
        // The logs' folder, durably (the journal makes its own folder durable in it).
        if let Some(root) = dir.parent() {
            super::writer::create_directory(root)?;
        }
        let (journal, recovered) = Journal::open(dir, options)?;
        if !recovered.records.is_empty() {
            return Err(JournalError::Corrupt {
                path: dir.to_path_buf(),
                offset: 0,
                why: format!(
                    "a write-ahead log still holds {} records at start: it should have been \
                     folded into the zones' journals and removed",
                    recovered.records.len()
                ),
            });
        }
        Ok(Wal {
            journal,
            record: Vec::new(),
            since_checkpoint: 0,
            checkpoint_bytes: CHECKPOINT_BYTES,
        })
    }

    /// The log with a checkpoint every `bytes` of log instead of [`CHECKPOINT_BYTES`] (tests
    /// and drills: many checkpoints in a short run).
    pub fn with_checkpoint_bytes(mut self, bytes: u64) -> Wal {
        self.checkpoint_bytes = bytes.max(1);
        self
    }

    /// Adds `zone`'s pending group (`frames`: whole frames, as [`Journal::pending_frames`]
    /// gives them) to the log's pending group, as one record, or several when the group is
    /// over a record's bound (cut anywhere: a zone's pieces in the log, put end to end, are
    /// its records). Nothing is written yet.
    pub fn add(&mut self, zone: &str, frames: &[u8]) -> Result<(), JournalError> {
        let name = zone.as_bytes();
        assert!(name.len() <= usize::from(u8::MAX), "zone names are short");
        self.start_record(name);
        // Each frame without its checksum (see the module comment).
        let mut at = 0;
        while at < frames.len() {
            let end = at + FRAME_HEADER_BYTES + read_u32(&frames[at..]) as usize;
            self.put(name, &frames[at..at + 4])?;
            self.put(name, &frames[at + 8..end])?;
            at = end;
        }
        if self.record.len() > 1 + name.len() {
            self.append_record()?;
        }
        Ok(())
    }

    /// A record of `name`'s group begins: its name, then its pieces.
    fn start_record(&mut self, name: &[u8]) {
        self.record.clear();
        self.record.push(name.len() as u8);
        self.record.extend_from_slice(name);
    }

    /// Puts `bytes` of `name`'s group in the record being built, appending it and starting
    /// another whenever it reaches a record's bound.
    fn put(&mut self, name: &[u8], mut bytes: &[u8]) -> Result<(), JournalError> {
        while !bytes.is_empty() {
            let room = MAX_PAYLOAD_BYTES - self.record.len();
            if room == 0 {
                self.append_record()?;
                self.start_record(name);
                continue;
            }
            let take = bytes.len().min(room);
            self.record.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        }
        Ok(())
    }

    /// Appends the record built to the log's pending group (committing that first if full).
    fn append_record(&mut self) -> Result<(), JournalError> {
        if self.journal.needs_commit() {
            self.commit()?;
        }
        self.journal.append(ZONE_GROUP, &self.record)?;
        Ok(())
    }

    /// Writes and syncs what was added: once `Ok`, every group added so far is durable.
    /// An `Err` has poisoned the log: nothing more may be answered.
    pub fn commit(&mut self) -> Result<(), JournalError> {
        let stats = self.journal.commit()?;
        self.since_checkpoint += stats.bytes as u64;
        Ok(())
    }

    /// Whether a checkpoint is due: sync every zone's journal, then [`Wal::checkpoint`] (or
    /// the same in steps, off the caller's thread: [`Wal::begin_checkpoint`]).
    pub fn checkpoint_due(&self) -> bool {
        self.since_checkpoint >= self.checkpoint_bytes
    }

    /// Records that every record committed so far is durable in its zone's journal (the
    /// caller synced them all since its last commit here), and deletes what that makes
    /// unnecessary.
    pub fn checkpoint(&mut self) -> Result<(), JournalError> {
        let Some((lsn, dir)) = self.begin_checkpoint()? else {
            return Ok(());
        };
        let path = super::write_detached_snapshot(&dir, lsn, &[])?;
        let compacted = self.finish_checkpoint(lsn, path)?;
        super::remove_compacted(&dir, &compacted)?;
        Ok(())
    }

    /// A checkpoint in three steps, for a caller that must not wait for it: this one says
    /// at which lsn and where (`None`: nothing committed yet); once every zone journal is
    /// synced past what it had written now (on any thread, [`Journal::detached_sync`]), the
    /// checkpoint's file is written there ([`super::write_detached_snapshot`], empty, at
    /// that lsn: any thread), and [`Wal::finish_checkpoint`] takes it.
    pub fn begin_checkpoint(&mut self) -> Result<Option<(u64, PathBuf)>, JournalError> {
        self.since_checkpoint = 0;
        let lsn = self.journal.committed_lsn();
        if lsn == 0 || !self.journal.prepare_snapshot(lsn)? {
            return Ok(None);
        }
        Ok(Some((lsn, self.journal.dir().to_path_buf())))
    }

    /// The log's next segment to make ahead of its roll, when it has none ready and none
    /// is being made ([`Journal::spare_job`]); its result goes to [`Wal::add_spare`].
    pub fn spare_job(&mut self) -> Option<super::SpareJob> {
        self.journal.spare_job()
    }

    /// A spare made by [`Wal::spare_job`]'s job (`None`: it failed, and rolls create their
    /// segments from then on).
    pub fn add_spare(&mut self, spare: Option<PathBuf>) {
        self.journal.add_spare(spare);
    }

    /// The last step of a checkpoint: its file becomes the log's newest. Returns the files
    /// that the older of the two kept checkpoints makes unnecessary, for the caller to
    /// delete ([`super::remove_compacted`], any thread: deleting a 64 MiB segment can take
    /// the file system tens of milliseconds).
    pub fn finish_checkpoint(
        &mut self,
        lsn: u64,
        path: PathBuf,
    ) -> Result<Vec<PathBuf>, JournalError> {
        self.journal.add_snapshot(lsn, path)?;
        self.journal.detach_compacted()
    }
}

/// What the logs under `root` hold after their checkpoints: each zone's records, by zone
/// name, in lsn order. Every frame's checksum is checked, and each zone's lsns must
/// continue one by one. A torn tail of a log is cut, as any journal's (its records were
/// never answered), and so is a zone's last frame when the cut left only its beginning.
pub fn read_tails(root: &Path) -> Result<HashMap<String, Vec<Record>>, JournalError> {
    let mut tails = HashMap::new();
    for log in logs(root)? {
        let (_, recovered) = Journal::open(&log, JournalOptions::default())?;
        if let Some(torn) = &recovered.torn_tail {
            tracing::warn!("write-ahead log {}: {torn}", log.display());
        }
        for (zone, records) in split(&log, &recovered.records)? {
            if tails.insert(zone.clone(), records).is_some() {
                return Err(JournalError::Corrupt {
                    path: log.to_path_buf(),
                    offset: 0,
                    why: format!("zone {zone} has records in two write-ahead logs"),
                });
            }
        }
    }
    Ok(tails)
}

/// What each log under `root` holds after its checkpoint, read without changing anything
/// (for `journal verify`): per log and zone, the first and last lsn of the zone's records
/// there. A torn tail ends a log quietly, as a start would cut it.
pub fn peek(root: &Path) -> Result<Vec<(PathBuf, String, u64, u64)>, JournalError> {
    let mut found = Vec::new();
    for log in logs(root)? {
        let checkpoint = super::read_newest_snapshot(&log)?.map_or(0, |snapshot| snapshot.lsn);
        let mut records = Vec::new();
        for entry in super::read_records(&log)? {
            let entry = entry?;
            if entry.lsn > checkpoint {
                records.push(Record {
                    lsn: entry.lsn,
                    kind: entry.kind,
                    payload: entry.payload,
                });
            }
        }
        for (zone, records) in split(&log, &records)? {
            if let (Some(first), Some(last)) = (records.first(), records.last()) {
                found.push((log.clone(), zone, first.lsn, last.lsn));
            }
        }
    }
    Ok(found)
}

/// The logs under `root`, in name order (none when it does not exist).
fn logs(root: &Path) -> Result<Vec<PathBuf>, JournalError> {
    let mut logs = match fs::read_dir(root) {
        Ok(entries) => entries
            .map(|entry| entry.map(|entry| entry.path()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| JournalError::io("listing", root, source))?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(JournalError::io("listing", root, source)),
    };
    logs.retain(|path| path.is_dir());
    logs.sort();
    Ok(logs)
}

/// A log's records split back into each zone's records, zones in order of first appearance.
fn split(log: &Path, records: &[Record]) -> Result<Vec<(String, Vec<Record>)>, JournalError> {
    let mut streams: Vec<(String, Vec<u8>)> = Vec::new();
    for record in records {
        let (zone, bytes) = zone_bytes(log, record)?;
        match streams.iter_mut().find(|(name, _)| name == zone) {
            Some((_, stream)) => stream.extend_from_slice(bytes),
            None => streams.push((zone.to_owned(), bytes.to_vec())),
        }
    }
    streams
        .into_iter()
        .map(|(zone, stream)| {
            let records = zone_records(log, &zone, &stream)?;
            Ok((zone, records))
        })
        .collect()
}

/// A log record's zone and its piece of that zone's frames.
fn zone_bytes<'r>(log: &Path, record: &'r Record) -> Result<(&'r str, &'r [u8]), JournalError> {
    let corrupt = |why: &str| JournalError::Corrupt {
        path: log.to_path_buf(),
        offset: 0,
        why: format!("record {}: {why}", record.lsn),
    };
    if record.kind != ZONE_GROUP {
        return Err(corrupt(&format!("unknown kind {}", record.kind)));
    }
    let payload = &record.payload;
    let length = usize::from(*payload.first().ok_or_else(|| corrupt("empty"))?);
    let name = payload
        .get(1..1 + length)
        .and_then(|name| std::str::from_utf8(name).ok())
        .ok_or_else(|| corrupt("a zone name cut short or not UTF-8"))?;
    Ok((name, &payload[1 + length..]))
}

/// A zone's records, put together from its pieces in the log; the lsns must continue.
fn zone_records(log: &Path, zone: &str, mut entries: &[u8]) -> Result<Vec<Record>, JournalError> {
    let corrupt = |why: String| JournalError::Corrupt {
        path: log.to_path_buf(),
        offset: 0,
        why: format!("zone {zone}: {why}"),
    };
    let mut records: Vec<Record> = Vec::new();
    while !entries.is_empty() {
        let length = (entries.len() >= ENTRY_HEADER_BYTES).then(|| read_u32(entries) as usize);
        if let Some(length) = length
            && length > MAX_PAYLOAD_BYTES
        {
            return Err(corrupt(format!("a record of {length} bytes")));
        }
        let Some(length) = length.filter(|length| entries.len() >= ENTRY_HEADER_BYTES + length)
        else {
            // Only a group whose log records were committed in two goes (over the log's
            // group bound) can end so, when a crash came between them.
            tracing::warn!(
                "write-ahead log {}: the last {} bytes of zone {zone} are the start of a \
                 record a crash cut off (never answered); left out",
                log.display(),
                entries.len()
            );
            break;
        };
        let mut lsn = [0; 8];
        lsn.copy_from_slice(&entries[4..12]);
        let lsn = u64::from_le_bytes(lsn);
        if let Some(last) = records.last()
            && lsn != last.lsn + 1
        {
            return Err(corrupt(format!(
                "records go from lsn {} to {lsn}",
                last.lsn
            )));
        }
        records.push(Record {
            lsn,
            kind: entries[12],
            payload: entries[ENTRY_HEADER_BYTES..ENTRY_HEADER_BYTES + length].to_vec(),
        });
        entries = &entries[ENTRY_HEADER_BYTES + length..];
    }
    Ok(records)
}

fn read_u32(bytes: &[u8]) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[..4]);
    u32::from_le_bytes(word)
}

/// Appends to `journal` (just opened, so at its end) the records of `tail` past that end,
/// and commits them (synced in the journal's mode, and synced again to be sure in any
/// other); returns the records appended. The first must continue the journal: a gap means
/// records that were answered are in neither, and the start is refused.
pub fn fold(journal: &mut Journal, tail: Vec<Record>) -> Result<Vec<Record>, JournalError> {
    let mut folded = Vec::new();
    for record in tail {
        if record.lsn < journal.next_lsn() {
            continue;
        }
        if record.lsn != journal.next_lsn() {
            return Err(JournalError::Corrupt {
                path: journal.dir().to_path_buf(),
                offset: 0,
                why: format!(
                    "the write-ahead log continues this journal at lsn {}, but the journal \
                     ends at lsn {}: records in between are missing from both",
                    record.lsn,
                    journal.next_lsn() - 1
                ),
            });
        }
        if journal.needs_commit() {
            journal.commit()?;
        }
        journal.append(record.kind, &record.payload)?;
        folded.push(record);
    }
    if !folded.is_empty() {
        journal.commit()?;
        journal.sync()?;
    }
    Ok(folded)
}

/// Removes the logs under `root` once every zone has folded them (renamed away first, so
/// that a crash midway never leaves a log with some segments gone). Also removes what an
/// earlier retirement left.
pub fn retire(root: &Path) -> Result<(), JournalError> {
    let retired = root.with_file_name("wal.retired");
    if root.exists() {
        if retired.exists() {
            remove_tree(&retired)?;
        }
        fs::rename(root, &retired).map_err(|source| JournalError::io("renaming", root, source))?;
        if let Some(parent) = root.parent() {
            sync_directory(parent)?;
        }
    }
    if retired.exists() {
        remove_tree(&retired)?;
    }
    Ok(())
}

fn remove_tree(path: &Path) -> Result<(), JournalError> {
    fs::remove_dir_all(path).map_err(|source| JournalError::io("removing", path, source))
}
