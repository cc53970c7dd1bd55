//! Reading a journal directory: which files it holds, and a walk over its segments in lsn
//! order that checks every record and decides, for a damaged frame, whether it is a torn
//! tail or damage. Recovery, `verify` and `dump` all walk with [`Walker`], so they cannot
//! disagree about what a directory holds; only recovery acts on a torn tail.

use super::format::{
    self, FileName, Frame, SEGMENT_HEADER_BYTES, decode_frame, decode_segment_header,
    find_valid_frame,
};
use super::{JournalError, TornTail};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The journal's files in a directory, each list sorted by lsn.
#[derive(Debug, Default)]
pub struct Listing {
    /// `(first lsn from the name, path)`.
    pub segments: Vec<(u64, PathBuf)>,
    /// `(lsn from the name, path)`.
    pub snapshots: Vec<(u64, PathBuf)>,
    /// Snapshots a crash interrupted while they were written.
    pub temporaries: Vec<PathBuf>,
    /// A segment made ahead of time that no roll took.
    pub spare: Option<PathBuf>,
    /// Files whose deletion a crash interrupted.
    pub removing: Vec<PathBuf>,
}

/// Lists the journal's files in `dir`. Files with other names are not the journal's and are
/// left out (and left alone).
pub fn list_directory(dir: &Path) -> Result<Listing, JournalError> {
    let entries = fs::read_dir(dir).map_err(|source| JournalError::io("listing", dir, source))?;
    let mut listing = Listing::default();
    for entry in entries {
        let path = entry
            .map_err(|source| JournalError::io("listing", dir, source))?
            .path();
        match format::parse_file_name(&path) {
            Some(FileName::Segment { first_lsn }) => listing.segments.push((first_lsn, path)),
            Some(FileName::Snapshot { lsn }) => listing.snapshots.push((lsn, path)),
            Some(FileName::Temporary) => listing.temporaries.push(path),
            Some(FileName::Spare) => listing.spare = Some(path),
            Some(FileName::Removing) => listing.removing.push(path),
            None => {}
        }
    }
    listing.segments.sort();
    listing.snapshots.sort();
    Ok(listing)
}

/// What one segment held, once walked.
#[derive(Clone, Debug)]
pub struct SegmentScan {
    pub path: PathBuf,
    /// The lsn the segment starts at (its header's, which its name repeats).
    pub first_lsn: u64,
    /// Valid records in the segment (0 for a segment skipped as covered by a snapshot).
    pub records: u64,
    /// The lsn after the segment's last valid record.
    pub next_lsn: u64,
    /// The byte offset after the last valid record: where the next append goes (zeros may
    /// follow it up to `file_bytes`, in a segment made ahead of time).
    pub valid_end: u64,
    /// The file's length in bytes.
    pub file_bytes: u64,
    /// Whether the records were not read, since the snapshot covers all of them.
    pub skipped: bool,
    /// A torn tail, found only in the last segment: what recovery cuts off.
    pub torn: Option<TornTail>,
}

/// A walk over the segments of a directory in lsn order, checking that lsns continue from
/// one segment to the next.
pub struct Walker {
    segments: Vec<(u64, PathBuf)>,
    position: usize,
    /// The lsn the next segment must start at, once one segment has been walked.
    expected: Option<u64>,
    /// The lsn of the newest snapshot (0 for none): a gap in lsns up to it is covered by the
    /// snapshot and allowed; a gap after it is lost records.
    snapshot_lsn: u64,
}

impl Walker {
    pub fn new(segments: Vec<(u64, PathBuf)>, snapshot_lsn: u64) -> Walker {
        Walker {
            segments,
            position: 0,
            expected: None,
            snapshot_lsn,
        }
    }

    /// Whether every segment has been walked.
    pub fn is_done(&self) -> bool {
        self.position == self.segments.len()
    }

    /// The segment the next scan or skip reads.
    pub fn next_path(&self) -> Option<&Path> {
        self.segments
            .get(self.position)
            .map(|(_, path)| path.as_path())
    }

    /// The lsn after the last record walked so far (or after the snapshot, if later).
    pub fn next_lsn(&self) -> u64 {
        self.expected
            .unwrap_or(1)
            .max(self.snapshot_lsn.saturating_add(1))
    }

    /// Whether every record of the next segment is covered by the snapshot (judged by where
    /// the segment after it starts), so recovery need not read it. The last segment is never
    /// covered: it is where appends continue.
    pub fn next_is_covered(&self) -> bool {
        match self.segments.get(self.position + 1) {
            Some(&(following_lsn, _)) => following_lsn.saturating_sub(1) <= self.snapshot_lsn,
            None => false,
        }
    }

    /// Checks the next segment's header only and moves past it: for segments covered by the
    /// snapshot, which recovery does not replay. Bounded restart time rests on this.
    pub fn skip_next(&mut self) -> Option<Result<SegmentScan, JournalError>> {
        let (name_lsn, path) = self.segments.get(self.position)?.clone();
        self.position += 1;
        Some(self.skip(name_lsn, path))
    }

    fn skip(&mut self, name_lsn: u64, path: PathBuf) -> Result<SegmentScan, JournalError> {
        self.check_start(name_lsn, &path)?;
        let mut header = Vec::with_capacity(SEGMENT_HEADER_BYTES);
        let file =
            fs::File::open(&path).map_err(|source| JournalError::io("opening", &path, source))?;
        let file_bytes = file
            .metadata()
            .map_err(|source| JournalError::io("reading", &path, source))?
            .len();
        file.take(SEGMENT_HEADER_BYTES as u64)
            .read_to_end(&mut header)
            .map_err(|source| JournalError::io("reading", &path, source))?;
        let first_lsn = decode_segment_header(&header).map_err(|why| JournalError::Corrupt {
            path: path.clone(),
            offset: 0,
            why,
        })?;
        check_name(&path, name_lsn, first_lsn)?;
        let next_lsn = self
            .segments
            .get(self.position)
            .map_or(first_lsn, |&(following_lsn, _)| following_lsn);
        self.expected = Some(next_lsn);
        Ok(SegmentScan {
            path,
            first_lsn,
            records: 0,
            next_lsn,
            valid_end: file_bytes,
            file_bytes,
            skipped: true,
            torn: None,
        })
    }

    /// Reads and checks every record of the next segment, handing each valid one to `visit`
    /// with its byte offset. `None` once every segment has been walked.
    pub fn scan_next(
        &mut self,
        visit: &mut dyn FnMut(Frame<'_>, u64),
    ) -> Option<Result<SegmentScan, JournalError>> {
        let (name_lsn, path) = self.segments.get(self.position)?.clone();
        self.position += 1;
        let is_last = self.is_done();
        Some(self.scan(name_lsn, path, is_last, visit))
    }

    /// Checks that a segment named for `name_lsn` may follow what was walked before it.
    fn check_start(&self, name_lsn: u64, path: &Path) -> Result<(), JournalError> {
        let covered_up_to = self.snapshot_lsn.saturating_add(1);
        let problem = match self.expected {
            None if name_lsn > covered_up_to => Some(format!(
                "the journal starts at lsn {name_lsn}, but records {covered_up_to} to {} are \
                 neither in a segment nor in a snapshot",
                name_lsn - 1
            )),
            Some(expected) if name_lsn < expected => Some(format!(
                "the segment starts at lsn {name_lsn}, but the segment before it already \
                 holds records up to lsn {}",
                expected - 1
            )),
            Some(expected) if name_lsn > expected && name_lsn > covered_up_to => Some(format!(
                "the segment starts at lsn {name_lsn}, but the segment before it ends at lsn \
                 {}: records {expected} to {} are missing",
                expected - 1,
                name_lsn - 1
            )),
            _ => None,
        };
        match problem {
            Some(why) => Err(JournalError::Corrupt {
                path: path.to_path_buf(),
                offset: 0,
                why,
            }),
            None => Ok(()),
        }
    }

    fn scan(
        &mut self,
        name_lsn: u64,
        path: PathBuf,
        is_last: bool,
        visit: &mut dyn FnMut(Frame<'_>, u64),
    ) -> Result<SegmentScan, JournalError> {
        self.check_start(name_lsn, &path)?;
        let bytes = fs::read(&path).map_err(|source| JournalError::io("reading", &path, source))?;
        let scan = scan_segment(&path, name_lsn, &bytes, is_last, visit)?;
        self.expected = Some(scan.next_lsn);
        Ok(scan)
    }
}

fn check_name(path: &Path, name_lsn: u64, first_lsn: u64) -> Result<(), JournalError> {
    if name_lsn == first_lsn {
        return Ok(());
    }
    Err(JournalError::Corrupt {
        path: path.to_path_buf(),
        offset: 0,
        why: format!(
            "the header says the segment starts at lsn {first_lsn}, its name says {name_lsn}"
        ),
    })
}

/// Walks the records of one segment held in `bytes`.
///
/// The records end where zeros run to the end of the file (a segment filled with zeros
/// ahead of time, `JournalOptions::preallocate`; a frame never starts with zeros, its
/// checksum would not hold). Otherwise a frame that does not decode is a torn tail only
/// when the segment is the last one and no valid frame with the expected lsn or a later one
/// follows it anywhere in the segment: a crash tears only the end of what was being written. Anything else (valid records after
/// the damage, damage in an earlier segment, a valid record with the wrong lsn) is damage,
/// and the error names the file and the byte offset.
pub fn scan_segment(
    path: &Path,
    name_lsn: u64,
    bytes: &[u8],
    is_last: bool,
    visit: &mut dyn FnMut(Frame<'_>, u64),
) -> Result<SegmentScan, JournalError> {
    let first_lsn = match decode_segment_header(bytes) {
        Ok(first_lsn) => first_lsn,
        Err(why) => return torn_header(path, name_lsn, bytes, is_last, why),
    };
    check_name(path, name_lsn, first_lsn)?;
    let mut offset = SEGMENT_HEADER_BYTES;
    let mut expected = first_lsn;
    let mut records = 0;
    let mut torn = None;
    while offset < bytes.len() {
        match decode_frame(&bytes[offset..]) {
            Ok(frame) if frame.lsn == expected => {
                visit(frame, offset as u64);
                offset += frame.encoded_len();
                expected += 1;
                records += 1;
            }
            Ok(frame) => {
                // A torn write cannot make a frame whose checksum holds: this was written so.
                return Err(corrupt(
                    path,
                    offset,
                    format!("record has lsn {}, lsn {expected} was expected", frame.lsn),
                ));
            }
            Err(_) if bytes[offset..].iter().all(|&byte| byte == 0) => {
                // Zeros to the end of the file: where the records end in a segment made
                // ahead of time (`JournalOptions::preallocate`), not a torn write.
                break;
            }
            Err(problem) => {
                torn = Some(torn_frame(path, bytes, offset, expected, is_last, problem)?);
                break;
            }
        }
    }
    Ok(SegmentScan {
        path: path.to_path_buf(),
        first_lsn,
        records,
        next_lsn: expected,
        valid_end: offset as u64,
        file_bytes: bytes.len() as u64,
        skipped: false,
        torn,
    })
}

/// Damage at `offset` of the segment at `path`.
fn corrupt(path: &Path, offset: usize, why: String) -> JournalError {
    JournalError::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        why,
    }
}

/// A segment whose header does not decode. A crash right after the segment was created can
/// leave its header short or unwritten: a torn segment, but only if nothing valid follows,
/// and only in the last segment.
fn torn_header(
    path: &Path,
    name_lsn: u64,
    bytes: &[u8],
    is_last: bool,
    why: String,
) -> Result<SegmentScan, JournalError> {
    let file_bytes = bytes.len() as u64;
    match find_valid_frame(bytes, 0, name_lsn) {
        None if is_last => Ok(SegmentScan {
            path: path.to_path_buf(),
            first_lsn: name_lsn,
            records: 0,
            next_lsn: name_lsn,
            valid_end: 0,
            file_bytes,
            skipped: false,
            torn: Some(TornTail {
                segment: path.to_path_buf(),
                offset: 0,
                bytes_cut: file_bytes,
                segment_removed: true,
                why,
            }),
        }),
        None => Err(corrupt(
            path,
            0,
            format!("{why}, in a segment that is not the last"),
        )),
        Some((offset, lsn)) => Err(corrupt(
            path,
            0,
            format!("{why}; a valid record (lsn {lsn}) follows at byte {offset}"),
        )),
    }
}

/// A frame at `offset` that does not decode: the torn tail of the last segment, or damage
/// (a valid record with the `expected` lsn or a later one follows, or the segment is not
/// the last).
fn torn_frame(
    path: &Path,
    bytes: &[u8],
    offset: usize,
    expected: u64,
    is_last: bool,
    problem: impl std::fmt::Display,
) -> Result<TornTail, JournalError> {
    if let Some((follower, lsn)) = find_valid_frame(bytes, offset + 1, expected) {
        return Err(corrupt(
            path,
            offset,
            format!(
                "{problem}; a valid record (lsn {lsn}) follows at byte {follower}, so this is \
                 damage, not a torn write"
            ),
        ));
    }
    if !is_last {
        return Err(corrupt(
            path,
            offset,
            format!("{problem}, in a segment that is not the last"),
        ));
    }
    Ok(TornTail {
        segment: path.to_path_buf(),
        offset: offset as u64,
        bytes_cut: (bytes.len() - offset) as u64,
        segment_removed: false,
        why: problem.to_string(),
    })
}
