//! Snapshot files: the caller's state after some lsn, so recovery replays only the records
//! after it. A snapshot is written to a temporary name, synced, renamed into place and the
//! directory synced: at any crash the directory holds either the whole new snapshot under its
//! name or none, never a part of one.

use super::format::{self, SNAPSHOT_HEADER_BYTES, TEMPORARY_SUFFIX};
use super::{JournalError, Snapshot};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Bytes of a snapshot written between two flushes.
const SNAPSHOT_FLUSH_BYTES: usize = 4 << 20;

/// Syncs a directory, which makes the creation, renaming and removal of its entries durable
/// (a file's own fsync does not cover its name in the directory).
pub fn sync_directory(dir: &Path) -> Result<(), JournalError> {
    fs::File::open(dir)
        .and_then(|directory| directory.sync_all())
        .map_err(|source| JournalError::io("syncing the directory", dir, source))
}

/// Writes the snapshot of state `bytes` after record `lsn` into `dir`, durably, and returns
/// its path. The caller has checked `bytes` against the bound.
pub fn write_snapshot_file(dir: &Path, lsn: u64, bytes: &[u8]) -> Result<PathBuf, JournalError> {
    let path = dir.join(format::snapshot_file_name(lsn));
    let mut temporary_name = path.clone().into_os_string();
    temporary_name.push(TEMPORARY_SUFFIX);
    let temporary = PathBuf::from(temporary_name);
    let header = format::encode_snapshot_header(lsn, bytes);
    // The paired check: what is about to be written reads back as the same snapshot.
    let mut whole = Vec::with_capacity(SNAPSHOT_HEADER_BYTES + bytes.len());
    whole.extend_from_slice(&header);
    whole.extend_from_slice(bytes);
    assert_eq!(
        format::decode_snapshot(&whole),
        Ok((lsn, bytes)),
        "a snapshot encoded for writing does not decode"
    );
    let mut file = fs::File::create(&temporary)
        .map_err(|source| JournalError::io("creating", &temporary, source))?;
    // Written and flushed a few MiB at a time: one flush of a whole snapshot (75 MB for
    // 500,000 orders) holds the disk for a few hundred milliseconds, and every journal
    // commit's sync waits behind it (p99 excursions of 70-80 ms in loadtest's singles-day
    // run). In steps, the journals' syncs get the disk between them.
    for piece in whole.chunks(SNAPSHOT_FLUSH_BYTES) {
        file.write_all(piece)
            .map_err(|source| JournalError::io("writing", &temporary, source))?;
        if whole.len() > SNAPSHOT_FLUSH_BYTES {
            file.sync_data()
                .map_err(|source| JournalError::io("syncing", &temporary, source))?;
        }
    }
    file.sync_all()
        .map_err(|source| JournalError::io("syncing", &temporary, source))?;
    drop(file);
    fs::rename(&temporary, &path)
        .map_err(|source| JournalError::io("renaming", &temporary, source))?;
    sync_directory(dir)?;
    Ok(path)
}

/// Reads and checks the snapshot file at `path`, named for `name_lsn`. The header and the
/// payload are read apart: the payload (hundreds of MB for a large zone) is read once into
/// its own buffer, not copied out of the whole file's.
pub fn load_snapshot(path: &Path, name_lsn: u64) -> Result<Snapshot, JournalError> {
    let io = |source| JournalError::io("reading", path, source);
    let corrupt = |why: String| JournalError::Corrupt {
        path: path.to_path_buf(),
        offset: 0,
        why,
    };
    let mut file = fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let mut header = [0; SNAPSHOT_HEADER_BYTES];
    if size < SNAPSHOT_HEADER_BYTES as u64 {
        // Too short for a header: the whole-file decoder says so.
        let mut whole = Vec::new();
        file.read_to_end(&mut whole).map_err(io)?;
        return Err(corrupt(
            format::decode_snapshot(&whole).expect_err("too short to decode"),
        ));
    }
    file.read_exact(&mut header).map_err(io)?;
    let mut bytes = Vec::with_capacity((size - SNAPSHOT_HEADER_BYTES as u64) as usize);
    file.read_to_end(&mut bytes).map_err(io)?;
    let lsn = format::decode_snapshot_parts(&header, &bytes).map_err(corrupt)?;
    if lsn != name_lsn {
        return Err(corrupt(format!(
            "the header says the snapshot is at lsn {lsn}, its name says {name_lsn}"
        )));
    }
    Ok(Snapshot {
        lsn,
        bytes,
        path: path.to_path_buf(),
    })
}
