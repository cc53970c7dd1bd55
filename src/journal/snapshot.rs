//! Snapshot files: the caller's state after some lsn, so recovery replays only the records
//! after it. A snapshot is written to a temporary name, synced, renamed into place and the
//! directory synced: at any crash the directory holds either the whole new snapshot under its
//! name or none, never a part of one.

use super::format::{self, MAX_SNAPSHOT_BYTES, SNAPSHOT_HEADER_BYTES, TEMPORARY_SUFFIX};
use super::{JournalError, Snapshot, paced};
use std::fs;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Syncs a directory, which makes the creation, renaming and removal of its entries durable
/// (a file's own fsync does not cover its name in the directory).
pub fn sync_directory(dir: &Path) -> Result<(), JournalError> {
    fs::File::open(dir)
        .and_then(|directory| directory.sync_all())
        .map_err(|source| JournalError::io("syncing the directory", dir, source))
}

/// Writes the snapshot of state `bytes` after record `lsn` into `dir`, durably, and returns
/// its path (a payload already whole in memory: a new zone's, a checkpoint's).
pub fn write_snapshot_file(dir: &Path, lsn: u64, bytes: &[u8]) -> Result<PathBuf, JournalError> {
    let mut writer = SnapshotWriter::create(dir, lsn)?;
    writer.write(bytes)?;
    writer.finish(&[])
}

/// A snapshot file written as its payload is made, never whole in memory: a zone of two
/// million open orders is a 350 MB payload, which made whole took a buffer that size, its
/// page faults and its unmapping, and a second of encoding at once before any of it was
/// written (docs/benchmarks.md, "Snapshots written as they are encoded"). The payload goes
/// out [`paced::PIECE_BYTES`] at a time, each piece written to the device before the next
/// and followed by a pause, so the encoding of the next piece fills the pause; the header,
/// whose length and checksum are known only at the end, is written last, at the front.
/// Until [`SnapshotWriter::finish`] renames it, the file has a temporary name: at any crash
/// the directory holds either the whole snapshot under its name or none (`open` removes a
/// temporary one). Dropped unfinished, the writer removes its file.
///
/// One gap may be left in the payload ([`SnapshotWriter::gap`]) and filled at the end: a
/// count known only once everything after it is written.
pub struct SnapshotWriter {
    dir: PathBuf,
    path: PathBuf,
    temporary: PathBuf,
    lsn: u64,
    /// `None` once finished.
    file: Option<fs::File>,
    /// Payload bytes not written yet (less than a piece between calls).
    piece: Vec<u8>,
    /// Payload bytes written to the file.
    written: u64,
    /// The checksum of the payload after the gap (all of it without one).
    crc: u32,
    gap: Option<Gap>,
}

/// A stretch of the payload filled at the end.
struct Gap {
    /// Its offset in the payload.
    at: u64,
    length: usize,
    /// The checksum of the payload before it.
    crc_before: u32,
}

impl SnapshotWriter {
    /// Starts the snapshot of the state after record `lsn` in `dir`, under a temporary name.
    pub fn create(dir: &Path, lsn: u64) -> Result<SnapshotWriter, JournalError> {
        let path = dir.join(format::snapshot_file_name(lsn));
        let mut temporary_name = path.clone().into_os_string();
        temporary_name.push(TEMPORARY_SUFFIX);
        let temporary = PathBuf::from(temporary_name);
        let file = fs::File::create(&temporary)
            .map_err(|source| JournalError::io("creating", &temporary, source))?;
        Ok(SnapshotWriter {
            dir: dir.to_path_buf(),
            path,
            temporary,
            lsn,
            file: Some(file),
            piece: Vec::with_capacity(paced::PIECE_BYTES),
            written: 0,
            crc: 0,
            gap: None,
        })
    }

    /// Payload bytes so far.
    pub fn len(&self) -> u64 {
        self.written + self.piece.len() as u64
    }

    /// Whether no payload byte has been given yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `bytes` to the payload; a whole piece is written out (and waited for) as soon
    /// as there is one. Refuses a payload past [`format::MAX_SNAPSHOT_BYTES`].
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), JournalError> {
        let length = self.len() + bytes.len() as u64;
        if length > MAX_SNAPSHOT_BYTES {
            return Err(JournalError::SnapshotTooLarge {
                bytes: length as usize,
            });
        }
        self.crc = crc32c::crc32c_append(self.crc, bytes);
        let mut rest = bytes;
        while !rest.is_empty() {
            let room = paced::PIECE_BYTES - self.piece.len();
            let (now, later) = rest.split_at(room.min(rest.len()));
            self.piece.extend_from_slice(now);
            rest = later;
            if self.piece.len() == paced::PIECE_BYTES {
                self.write_piece()?;
                paced::pause();
            }
        }
        Ok(())
    }

    /// Leaves `length` bytes of the payload here to be given to [`SnapshotWriter::finish`].
    ///
    /// # Panics
    /// On a second gap: one is all a writer keeps.
    pub fn gap(&mut self, length: usize) -> Result<(), JournalError> {
        assert!(self.gap.is_none(), "a snapshot payload has one gap at most");
        self.gap = Some(Gap {
            at: self.len(),
            length,
            crc_before: self.crc,
        });
        self.write(&vec![0; length])?;
        // The gap's zeros are not what the checksum covers: it starts again after them.
        self.crc = 0;
        Ok(())
    }

    /// Writes what is left, the gap's bytes (`fill`, as long as the gap; empty without one)
    /// and the header; syncs the file, renames it into place and syncs the directory.
    /// Returns the snapshot's path.
    ///
    /// # Panics
    /// When `fill` is not as long as the gap.
    pub fn finish(mut self, fill: &[u8]) -> Result<PathBuf, JournalError> {
        self.write_piece()?;
        let file = self.file.take().expect("a writer is finished once");
        let io = |what, source| JournalError::io(what, &self.temporary, source);
        let length = self.written;
        let crc = match &self.gap {
            Some(gap) => {
                assert_eq!(fill.len(), gap.length, "a gap's bytes fill it");
                file.write_all_at(fill, (SNAPSHOT_HEADER_BYTES as u64) + gap.at)
                    .map_err(|source| io("writing", source))?;
                let after = (length - gap.at) as usize - gap.length;
                let through =
                    crc32c::crc32c_combine(gap.crc_before, crc32c::crc32c(fill), fill.len());
                crc32c::crc32c_combine(through, self.crc, after)
            }
            None => {
                assert!(fill.is_empty(), "no gap to fill");
                self.crc
            }
        };
        let header = format::snapshot_header(self.lsn, length, crc);
        file.write_all_at(&header, 0)
            .map_err(|source| io("writing", source))?;
        file.sync_all().map_err(|source| io("syncing", source))?;
        drop(file);
        fs::rename(&self.temporary, &self.path).map_err(|source| io("renaming", source))?;
        sync_directory(&self.dir)?;
        Ok(self.path.clone())
    }

    /// Writes the bytes waiting, paced ([`paced::write`]: synced every few MiB).
    fn write_piece(&mut self) -> Result<(), JournalError> {
        if self.piece.is_empty() {
            return Ok(());
        }
        let file = self.file.as_ref().expect("written before it is finished");
        let at = SNAPSHOT_HEADER_BYTES as u64 + self.written;
        paced::write(file, &self.temporary, at, &self.piece)?;
        self.written += self.piece.len() as u64;
        self.piece.clear();
        Ok(())
    }
}

impl Drop for SnapshotWriter {
    /// An unfinished snapshot (its encoding failed, or a write) is removed: it would never
    /// be read, and the next `open` would remove it anyway.
    fn drop(&mut self) {
        if self.file.take().is_some()
            && let Err(error) = fs::remove_file(&self.temporary)
        {
            tracing::warn!(
                "removing the unfinished snapshot {}: {error}",
                self.temporary.display()
            );
        }
    }
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
