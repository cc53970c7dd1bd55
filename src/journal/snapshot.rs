//! Snapshot files: the caller's state after some lsn, so recovery replays only the records
//! after it. A snapshot is written to a temporary name, synced, renamed into place and the
//! directory synced: at any crash the directory holds either the whole new snapshot under its
//! name or none, never a part of one.

use super::format::{self, SNAPSHOT_HEADER_BYTES, TEMPORARY_SUFFIX};
use super::{JournalError, Snapshot, paced};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

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
    assert_eq!(
        format::decode_snapshot_parts(&header, bytes),
        Ok(lsn),
        "a snapshot encoded for writing does not decode"
    );
    let file = fs::File::create(&temporary)
        .map_err(|source| JournalError::io("creating", &temporary, source))?;
    // Written a small piece at a time, each waited for (`paced.rs`): one flush of a whole
    // snapshot (90-260 MB for a busy zone) holds the disk for hundreds of milliseconds, and
    // every journal commit's sync waits behind it.
    paced::write(&file, &temporary, 0, &header)?;
    paced::write(&file, &temporary, header.len() as u64, bytes)?;
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
