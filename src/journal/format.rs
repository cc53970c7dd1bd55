//! The bytes on disk: file names, the segment header, the record frame and the snapshot
//! header. Everything here is a pure function of bytes, so the writer, recovery, `verify` and
//! `dump` all read and write the format through the same few functions; `docs/journal.md`
//! describes the same layout for people.
//!
//! All integers are little-endian. Every checksum is CRC32C (Castagnoli), the checksum the
//! issue names, computed by the `crc32c` crate with the CPU's CRC instruction where there is
//! one.

use std::path::Path;

/// The largest payload one record may carry. A bound on the record keeps a damaged length
/// field from asking recovery for gigabytes, and keeps one record from dwarfing a group.
pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;

/// Bytes of a record frame before its payload: length (4), checksum (4), lsn (8), kind (1).
pub const FRAME_HEADER_BYTES: usize = 17;

/// The largest frame: header and the largest payload.
pub const MAX_FRAME_BYTES: usize = FRAME_HEADER_BYTES + MAX_PAYLOAD_BYTES;

/// Bytes of a segment header: magic (8), format version (4), first lsn (8), checksum (4).
pub const SEGMENT_HEADER_BYTES: usize = 24;

/// The first eight bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"ORJOURNL";

/// Bytes of a snapshot header: magic (8), version (4), lsn (8), length (8), checksum (4).
pub const SNAPSHOT_HEADER_BYTES: usize = 32;

/// The first eight bytes of every snapshot file.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"ORSNAPSH";

/// The largest snapshot payload. A zone's state is stock cells and order records; 4 GiB is
/// far beyond any zone this router holds in memory, and the bound keeps a damaged length from
/// turning into an allocation of anything larger.
pub const MAX_SNAPSHOT_BYTES: u64 = 1 << 32;

/// The format version written into segment and snapshot headers. A reader refuses any other
/// version by name rather than guessing at a layout it does not know.
pub const FORMAT_VERSION: u32 = 1;

const SEGMENT_PREFIX: &str = "journal-";
const SEGMENT_SUFFIX: &str = ".seg";
const SNAPSHOT_PREFIX: &str = "snapshot-";
const SNAPSHOT_SUFFIX: &str = ".snap";
/// Suffix of a snapshot being written; such a file never counts as a snapshot, and `open`
/// removes it (it is what a crash during `write_snapshot` leaves behind).
pub const TEMPORARY_SUFFIX: &str = ".tmp";

/// The name of the segment whose first record has `first_lsn`. Twenty digits, zero-padded,
/// so names sort as the numbers do and the name repeats the header's first lsn (a second
/// copy that recovery checks, and that says which lsn a segment with a torn header held).
pub fn segment_file_name(first_lsn: u64) -> String {
    format!("{SEGMENT_PREFIX}{first_lsn:020}{SEGMENT_SUFFIX}")
}

/// The name of the snapshot of the state after record `lsn`.
pub fn snapshot_file_name(lsn: u64) -> String {
    format!("{SNAPSHOT_PREFIX}{lsn:020}{SNAPSHOT_SUFFIX}")
}

/// What a file in a journal directory is, by its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileName {
    Segment {
        first_lsn: u64,
    },
    Snapshot {
        lsn: u64,
    },
    /// A snapshot that was being written (`snapshot-….snap.tmp`).
    Temporary,
    /// A segment made ahead of time ([`super::spare::SPARE_FILE_NAME`]).
    Spare,
    /// A file being deleted a step at a time ([`REMOVING_SUFFIX`]).
    Removing,
}

/// Added to the name of a file being deleted a step at a time (`paced::remove`).
pub const REMOVING_SUFFIX: &str = ".removing";

/// Classifies a file name; `None` for files that are not the journal's (they are left alone).
pub fn parse_file_name(path: &Path) -> Option<FileName> {
    let name = path.file_name()?.to_str()?;
    if name == super::spare::SPARE_FILE_NAME {
        return Some(FileName::Spare);
    }
    if name.ends_with(REMOVING_SUFFIX) {
        return Some(FileName::Removing);
    }
    if name.starts_with(SNAPSHOT_PREFIX) && name.ends_with(TEMPORARY_SUFFIX) {
        return Some(FileName::Temporary);
    }
    let digits = |prefix: &str, suffix: &str| -> Option<u64> {
        let digits = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
        if digits.len() != 20 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    };
    if let Some(first_lsn) = digits(SEGMENT_PREFIX, SEGMENT_SUFFIX) {
        return Some(FileName::Segment { first_lsn });
    }
    digits(SNAPSHOT_PREFIX, SNAPSHOT_SUFFIX).map(|lsn| FileName::Snapshot { lsn })
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// The segment header for a segment starting at `first_lsn`.
pub fn encode_segment_header(first_lsn: u64) -> [u8; SEGMENT_HEADER_BYTES] {
    let mut header = [0; SEGMENT_HEADER_BYTES];
    header[0..8].copy_from_slice(&SEGMENT_MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[12..20].copy_from_slice(&first_lsn.to_le_bytes());
    let checksum = crc32c::crc32c(&header[0..20]);
    header[20..24].copy_from_slice(&checksum.to_le_bytes());
    header
}

/// Reads a segment header: its first lsn, or what is wrong with it.
pub fn decode_segment_header(bytes: &[u8]) -> Result<u64, String> {
    if bytes.len() < SEGMENT_HEADER_BYTES {
        return Err(format!(
            "the segment header needs {SEGMENT_HEADER_BYTES} bytes, the file has {}",
            bytes.len()
        ));
    }
    if bytes[0..8] != SEGMENT_MAGIC {
        return Err("the segment header does not start with the journal's magic".to_string());
    }
    let stored = read_u32(bytes, 20);
    let computed = crc32c::crc32c(&bytes[0..20]);
    if stored != computed {
        return Err(format!(
            "segment header checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
        ));
    }
    let version = read_u32(bytes, 8);
    if version != FORMAT_VERSION {
        return Err(format!(
            "segment format version {version}; this build reads version {FORMAT_VERSION}"
        ));
    }
    Ok(read_u64(bytes, 12))
}

/// One record as it lies in a buffer: borrowed, so scanning copies nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    pub lsn: u64,
    pub kind: u8,
    pub payload: &'a [u8],
}

impl Frame<'_> {
    /// Bytes the frame takes on disk.
    pub fn encoded_len(&self) -> usize {
        FRAME_HEADER_BYTES + self.payload.len()
    }
}

/// The checksum of a frame: the length field, then everything after the checksum field
/// (lsn, kind, payload). Covering the length means a flipped length bit is caught by the
/// checksum whenever the damaged length still lands inside the file.
fn frame_checksum(length_field: &[u8], rest: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(length_field), rest)
}

/// Appends the frame of one record to `buffer`. The caller has checked the payload against
/// [`MAX_PAYLOAD_BYTES`].
pub fn encode_frame(buffer: &mut Vec<u8>, lsn: u64, kind: u8, payload: &[u8]) {
    assert!(
        payload.len() <= MAX_PAYLOAD_BYTES,
        "payload over the bound reached the encoder"
    );
    let start = buffer.len();
    // The bound above keeps the length within u32.
    buffer.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buffer.extend_from_slice(&[0; 4]);
    buffer.extend_from_slice(&lsn.to_le_bytes());
    buffer.push(kind);
    buffer.extend_from_slice(payload);
    let checksum = frame_checksum(&buffer[start..start + 4], &buffer[start + 8..]);
    buffer[start + 4..start + 8].copy_from_slice(&checksum.to_le_bytes());
}

/// Why the bytes at an offset are not a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameProblem {
    /// The buffer ends before the frame does: what a torn write leaves.
    Incomplete { needed: usize, available: usize },
    /// The length field is over [`MAX_PAYLOAD_BYTES`].
    LengthTooLarge { length: u32 },
    /// The stored checksum is not the checksum of the bytes.
    Checksum { stored: u32, computed: u32 },
}

impl std::fmt::Display for FrameProblem {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameProblem::Incomplete { needed, available } => write!(
                formatter,
                "incomplete record: {needed} bytes needed, {available} left in the file"
            ),
            FrameProblem::LengthTooLarge { length } => write!(
                formatter,
                "record length {length} is over the limit of {MAX_PAYLOAD_BYTES} bytes"
            ),
            FrameProblem::Checksum { stored, computed } => write!(
                formatter,
                "record checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
        }
    }
}

/// Reads the frame at the start of `bytes`. A frame whose checksum holds is returned whatever
/// its lsn: whether the lsn is the expected one is the caller's question.
pub fn decode_frame(bytes: &[u8]) -> Result<Frame<'_>, FrameProblem> {
    if bytes.len() < FRAME_HEADER_BYTES {
        return Err(FrameProblem::Incomplete {
            needed: FRAME_HEADER_BYTES,
            available: bytes.len(),
        });
    }
    let length = read_u32(bytes, 0);
    if length as usize > MAX_PAYLOAD_BYTES {
        return Err(FrameProblem::LengthTooLarge { length });
    }
    let total = FRAME_HEADER_BYTES + length as usize;
    if bytes.len() < total {
        return Err(FrameProblem::Incomplete {
            needed: total,
            available: bytes.len(),
        });
    }
    let stored = read_u32(bytes, 4);
    let computed = frame_checksum(&bytes[0..4], &bytes[8..total]);
    if stored != computed {
        return Err(FrameProblem::Checksum { stored, computed });
    }
    Ok(Frame {
        lsn: read_u64(bytes, 8),
        kind: bytes[16],
        payload: &bytes[FRAME_HEADER_BYTES..total],
    })
}

/// The first offset at or after `from` where a frame with a valid checksum and an lsn of at
/// least `minimum_lsn` starts, with that lsn. Recovery asks this after a damaged frame: a
/// torn write leaves nothing valid after it, while damage in the middle of a segment leaves
/// the records that were written after it.
///
/// Every byte offset is tried, since after damage nothing says where the next frame begins.
/// Cheap checks come first (the length must fit in the file, the lsn must be in the range the
/// rest of the file could hold), so almost no offset costs a checksum: random bytes and the
/// zeros a crash may leave are refused before the CRC is computed.
pub fn find_valid_frame(bytes: &[u8], from: usize, minimum_lsn: u64) -> Option<(usize, u64)> {
    if bytes.len() < FRAME_HEADER_BYTES {
        return None;
    }
    // Each record takes at least a header, so the rest of the file holds at most this many.
    let most_records = (bytes.len().saturating_sub(from) / FRAME_HEADER_BYTES) as u64;
    let largest_lsn = minimum_lsn.saturating_add(most_records);
    for offset in from..=bytes.len() - FRAME_HEADER_BYTES {
        let length = read_u32(bytes, offset) as usize;
        if length > MAX_PAYLOAD_BYTES || offset + FRAME_HEADER_BYTES + length > bytes.len() {
            continue;
        }
        let lsn = read_u64(bytes, offset + 8);
        if lsn < minimum_lsn || lsn > largest_lsn {
            continue;
        }
        if let Ok(frame) = decode_frame(&bytes[offset..]) {
            return Some((offset, frame.lsn));
        }
    }
    None
}

/// The header of a snapshot of `payload` taken after record `lsn` (a whole payload in
/// memory; the service writes its snapshots as they are made, [`snapshot_header`]).
#[cfg(test)]
pub fn encode_snapshot_header(lsn: u64, payload: &[u8]) -> [u8; SNAPSHOT_HEADER_BYTES] {
    snapshot_header(lsn, payload.len() as u64, crc32c::crc32c(payload))
}

/// The header of a snapshot taken after record `lsn` whose payload is `length` bytes with
/// the crc32c `payload_crc`: for a payload written as it is made, never whole in memory
/// ([`super::snapshot::SnapshotWriter`]). The checksum is the same as over the header's
/// first 28 bytes and the payload in one pass (`crc32c_combine`).
pub fn snapshot_header(lsn: u64, length: u64, payload_crc: u32) -> [u8; SNAPSHOT_HEADER_BYTES] {
    let mut header = [0; SNAPSHOT_HEADER_BYTES];
    header[0..8].copy_from_slice(&SNAPSHOT_MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[12..20].copy_from_slice(&lsn.to_le_bytes());
    header[20..28].copy_from_slice(&length.to_le_bytes());
    let checksum =
        crc32c::crc32c_combine(crc32c::crc32c(&header[0..28]), payload_crc, length as usize);
    header[28..32].copy_from_slice(&checksum.to_le_bytes());
    header
}

/// Reads a whole snapshot file: its lsn and payload, or what is wrong with it.
pub fn decode_snapshot(bytes: &[u8]) -> Result<(u64, &[u8]), String> {
    if bytes.len() < SNAPSHOT_HEADER_BYTES {
        return Err(format!(
            "the snapshot header needs {SNAPSHOT_HEADER_BYTES} bytes, the file has {}",
            bytes.len()
        ));
    }
    let (header, payload) = bytes.split_at(SNAPSHOT_HEADER_BYTES);
    let header = header.try_into().expect("split at the header's length");
    decode_snapshot_parts(header, payload).map(|lsn| (lsn, payload))
}

/// [`decode_snapshot`] of a header and the payload read after it (a loader reads them
/// apart, so that the payload is not copied out of the whole): its lsn, or what is wrong.
pub fn decode_snapshot_parts(
    header: &[u8; SNAPSHOT_HEADER_BYTES],
    payload: &[u8],
) -> Result<u64, String> {
    if header[0..8] != SNAPSHOT_MAGIC {
        return Err("the file does not start with the snapshot magic".to_string());
    }
    let length = read_u64(header, 20);
    let available = payload.len() as u64;
    if length > MAX_SNAPSHOT_BYTES || length != available {
        return Err(format!(
            "the header says {length} bytes of state, the file holds {available}"
        ));
    }
    let stored = read_u32(header, 28);
    let computed = crc32c::crc32c_append(crc32c::crc32c(&header[0..28]), payload);
    if stored != computed {
        return Err(format!(
            "snapshot checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
        ));
    }
    let version = read_u32(header, 8);
    if version != FORMAT_VERSION {
        return Err(format!(
            "snapshot format version {version}; this build reads version {FORMAT_VERSION}"
        ));
    }
    Ok(read_u64(header, 12))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn a_frame_round_trips_and_every_flipped_bit_is_caught() {
        let mut buffer = Vec::new();
        encode_frame(&mut buffer, 42, 7, b"a payload of some bytes");
        let frame = decode_frame(&buffer).expect("a fresh frame decodes");
        assert_eq!(
            frame,
            Frame {
                lsn: 42,
                kind: 7,
                payload: b"a payload of some bytes"
            }
        );
        assert_eq!(frame.encoded_len(), buffer.len());
        for bit in 0..buffer.len() * 8 {
            let mut damaged = buffer.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(
                decode_frame(&damaged).is_err(),
                "bit {bit} flipped went unnoticed"
            );
        }
    }

    #[test]
    fn an_empty_payload_is_a_frame_too() {
        let mut buffer = Vec::new();
        encode_frame(&mut buffer, 1, 0, b"");
        assert_eq!(buffer.len(), FRAME_HEADER_BYTES);
        assert_eq!(decode_frame(&buffer).unwrap().payload, b"");
    }

    #[test]
    fn a_length_over_the_bound_is_refused_before_reading() {
        let mut buffer = Vec::new();
        encode_frame(&mut buffer, 1, 0, b"x");
        buffer[0..4].copy_from_slice(&(MAX_PAYLOAD_BYTES as u32 + 1).to_le_bytes());
        assert!(matches!(
            decode_frame(&buffer),
            Err(FrameProblem::LengthTooLarge { .. })
        ));
    }

    #[test]
    fn a_snapshot_checksum_combined_is_the_one_pass_checksum() {
        // Snapshots written before the header was made from a payload's own checksum were
        // checked in one pass over the header's first 28 bytes and the payload: the same.
        for payload in [&b""[..], b"s", b"state", &[7u8; 100_000]] {
            let header = encode_snapshot_header(42, payload);
            let one_pass = crc32c::crc32c_append(crc32c::crc32c(&header[0..28]), payload);
            assert_eq!(read_u32(&header, 28), one_pass, "{} bytes", payload.len());
        }
    }

    #[test]
    fn headers_round_trip() {
        let header = encode_segment_header(123_456);
        assert_eq!(decode_segment_header(&header), Ok(123_456));
        let mut damaged = header;
        damaged[13] ^= 4;
        assert!(decode_segment_header(&damaged).is_err());

        let mut snapshot = encode_snapshot_header(9, b"state").to_vec();
        snapshot.extend_from_slice(b"state");
        assert_eq!(decode_snapshot(&snapshot), Ok((9, &b"state"[..])));
        snapshot[SNAPSHOT_HEADER_BYTES] ^= 1;
        assert!(decode_snapshot(&snapshot).is_err());
    }

    #[test]
    fn file_names_sort_as_their_numbers_and_parse_back() {
        assert!(segment_file_name(9) < segment_file_name(10));
        let name = PathBuf::from(segment_file_name(77));
        assert_eq!(
            parse_file_name(&name),
            Some(FileName::Segment { first_lsn: 77 })
        );
        let name = PathBuf::from(snapshot_file_name(5));
        assert_eq!(parse_file_name(&name), Some(FileName::Snapshot { lsn: 5 }));
        let name = PathBuf::from(format!("{}{TEMPORARY_SUFFIX}", snapshot_file_name(5)));
        assert_eq!(parse_file_name(&name), Some(FileName::Temporary));
        assert_eq!(parse_file_name(Path::new("journal-12.seg")), None);
        assert_eq!(parse_file_name(Path::new("notes.txt")), None);
    }

    #[test]
    fn a_valid_frame_is_found_after_garbage() {
        let mut buffer = vec![0xAB; 37];
        let at = buffer.len();
        encode_frame(&mut buffer, 5, 1, b"found me");
        assert_eq!(find_valid_frame(&buffer, 0, 5), Some((at, 5)));
        assert_eq!(find_valid_frame(&buffer, 0, 6), None);
        assert_eq!(find_valid_frame(&vec![0; 4096], 0, 1), None);
    }
}
