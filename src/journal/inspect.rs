//! Reading a journal directory without changing it: [`verify`] for `order-router journal
//! verify`, [`read_records`] for `journal dump`. Both walk the segments with the same rules
//! as recovery, so what they call damage is exactly what would stop a start, and the torn
//! tail they report is exactly what a start would cut.

use super::scan::{Walker, list_directory};
use super::snapshot::load_snapshot;
use super::{JournalError, Snapshot, TornTail};
use std::collections::VecDeque;
use std::fmt;
use std::path::{Path, PathBuf};

/// One segment, as [`verify`] found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentReport {
    pub path: PathBuf,
    pub first_lsn: u64,
    /// Valid records (a torn tail not counted).
    pub records: u64,
    /// The file's length in bytes.
    pub bytes: u64,
}

/// One snapshot, as [`verify`] found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotReport {
    pub path: PathBuf,
    pub lsn: u64,
    /// The state's size in bytes (the file has a header more).
    pub bytes: u64,
}

/// What a journal directory holds, every record and snapshot checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    pub dir: PathBuf,
    pub segments: Vec<SegmentReport>,
    pub snapshots: Vec<SnapshotReport>,
    /// Valid records in all segments.
    pub records: u64,
    /// The lowest and highest lsn in the segments (`None` without records).
    pub first_lsn: Option<u64>,
    pub last_lsn: Option<u64>,
    /// Bytes of all segment and snapshot files.
    pub bytes: u64,
    /// A torn tail the next start will cut off (nothing is cut by `verify`).
    pub torn_tail: Option<TornTail>,
    /// Snapshots a crash interrupted while they were written; the next start removes them.
    pub temporaries: Vec<PathBuf>,
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(formatter, "journal {}: ok", self.dir.display())?;
        match (self.first_lsn, self.last_lsn) {
            (Some(first), Some(last)) => writeln!(
                formatter,
                "  {} records, lsn {first} to {last}, in {} segments; {} snapshots; {} bytes",
                self.records,
                self.segments.len(),
                self.snapshots.len(),
                self.bytes
            )?,
            _ => writeln!(
                formatter,
                "  no records, {} segments; {} snapshots; {} bytes",
                self.segments.len(),
                self.snapshots.len(),
                self.bytes
            )?,
        }
        for segment in &self.segments {
            writeln!(
                formatter,
                "  segment {}: {} records from lsn {}, {} bytes",
                segment.path.display(),
                segment.records,
                segment.first_lsn,
                segment.bytes
            )?;
        }
        for snapshot in &self.snapshots {
            writeln!(
                formatter,
                "  snapshot {}: after lsn {}, {} bytes of state",
                snapshot.path.display(),
                snapshot.lsn,
                snapshot.bytes
            )?;
        }
        if let Some(torn) = &self.torn_tail {
            writeln!(formatter, "  {torn}: the next start cuts it off")?;
        }
        for temporary in &self.temporaries {
            writeln!(
                formatter,
                "  interrupted snapshot {}: the next start removes it",
                temporary.display()
            )?;
        }
        Ok(())
    }
}

/// Checks every segment and snapshot in `dir` without changing anything: `Ok` with what it
/// holds if a start would recover it (a torn tail is reported, not an error), or the first
/// damage, naming the file and byte offset, if a start would refuse it. Unlike a start, it
/// reads the segments a snapshot covers and every snapshot, not only the newest.
pub fn verify(dir: &Path) -> Result<VerifyReport, JournalError> {
    let listing = list_directory(dir)?;
    let mut report = VerifyReport {
        dir: dir.to_path_buf(),
        segments: Vec::new(),
        snapshots: Vec::new(),
        records: 0,
        first_lsn: None,
        last_lsn: None,
        bytes: 0,
        torn_tail: None,
        temporaries: listing.temporaries.clone(),
    };
    for (lsn, path) in &listing.snapshots {
        let snapshot = load_snapshot(path, *lsn)?;
        report.bytes += (super::SNAPSHOT_HEADER_BYTES + snapshot.bytes.len()) as u64;
        report.snapshots.push(SnapshotReport {
            path: path.clone(),
            lsn: *lsn,
            bytes: snapshot.bytes.len() as u64,
        });
    }
    let snapshot_lsn = listing.snapshots.last().map_or(0, |(lsn, _)| *lsn);
    let mut walker = Walker::new(listing.segments, snapshot_lsn);
    let mut first_lsn = None;
    let mut last_lsn = None;
    let mut records = 0;
    while let Some(scan) = walker.scan_next(&mut |frame, _offset| {
        first_lsn.get_or_insert(frame.lsn);
        last_lsn = Some(frame.lsn);
        records += 1;
    }) {
        let scan = scan?;
        report.bytes += scan.file_bytes;
        report.segments.push(SegmentReport {
            path: scan.path,
            first_lsn: scan.first_lsn,
            records: scan.records,
            bytes: scan.file_bytes,
        });
        report.torn_tail = scan.torn;
    }
    report.records = records;
    report.first_lsn = first_lsn;
    report.last_lsn = last_lsn;
    Ok(report)
}

/// One record as [`read_records`] yields it: where it lies, and what it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordEntry {
    pub lsn: u64,
    pub kind: u8,
    pub payload: Vec<u8>,
    pub segment: PathBuf,
    /// The byte offset of the record's frame in its segment.
    pub offset: u64,
}

impl fmt::Display for RecordEntry {
    /// One line for people, without the payload (whose meaning is the caller's).
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let segment = self.segment.file_name().map_or_else(
            || self.segment.display().to_string(),
            |name| name.to_string_lossy().into_owned(),
        );
        write!(
            formatter,
            "lsn {} kind {} {} bytes at {segment}:{}",
            self.lsn,
            self.kind,
            self.payload.len(),
            self.offset
        )
    }
}

/// Every record in the segments of `dir`, in lsn order, including those a snapshot covers,
/// without changing anything. A damaged record ends the iteration with its error (after the
/// records before it); a torn tail ends it quietly, and [`Records::torn_tail`] then says
/// what it was. One segment is held in memory at a time.
pub fn read_records(dir: &Path) -> Result<Records, JournalError> {
    let listing = list_directory(dir)?;
    let snapshot_lsn = listing.snapshots.last().map_or(0, |(lsn, _)| *lsn);
    Ok(Records {
        walker: Walker::new(listing.segments, snapshot_lsn),
        buffered: VecDeque::new(),
        error: None,
        torn_tail: None,
        finished: false,
    })
}

/// The iterator of [`read_records`].
pub struct Records {
    walker: Walker,
    /// The records of the segment being read.
    buffered: VecDeque<RecordEntry>,
    /// The damage that ends the walk, yielded after the records before it.
    error: Option<JournalError>,
    torn_tail: Option<TornTail>,
    finished: bool,
}

impl Records {
    /// The torn tail at the end of the last segment, once the iteration has reached it.
    pub fn torn_tail(&self) -> Option<&TornTail> {
        self.torn_tail.as_ref()
    }
}

impl Iterator for Records {
    type Item = Result<RecordEntry, JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(entry) = self.buffered.pop_front() {
                return Some(Ok(entry));
            }
            if let Some(error) = self.error.take() {
                self.finished = true;
                return Some(Err(error));
            }
            if self.finished {
                return None;
            }
            let Some(segment) = self.walker.next_path().map(Path::to_path_buf) else {
                self.finished = true;
                continue;
            };
            let buffered = &mut self.buffered;
            let scanned = self.walker.scan_next(&mut |frame, offset| {
                buffered.push_back(RecordEntry {
                    lsn: frame.lsn,
                    kind: frame.kind,
                    payload: frame.payload.to_vec(),
                    segment: segment.clone(),
                    offset,
                });
            });
            match scanned {
                Some(Ok(scan)) => self.torn_tail = scan.torn,
                Some(Err(error)) => self.error = Some(error),
                None => self.finished = true,
            }
        }
    }
}

/// The newest snapshot of `dir`, read without changing anything (for `journal verify
/// --replay`, which rebuilds each zone from it and the records after it).
pub fn read_newest_snapshot(dir: &Path) -> Result<Option<Snapshot>, JournalError> {
    let listing = list_directory(dir)?;
    match listing.snapshots.last() {
        Some((lsn, path)) => Ok(Some(load_snapshot(path, *lsn)?)),
        None => Ok(None),
    }
}
