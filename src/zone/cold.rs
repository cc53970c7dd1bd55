//! A zone's cold records: closed orders kept for the idempotency window on disk, not in
//! memory.
//!
//! An order that holds nothing any more (shipped, cancelled, rejected, or rejected in
//! review) is still answered while its id is retained: a duplicate gets the original
//! decision, `GET /v1/orders/{id}` shows it. Its record leaves memory for a file of this
//! store ([`ColdStore::put`]); the zone keeps a 16-byte slot with its [`ColdPlace`], and its
//! claim stays in the claims table (32 bytes and its index), so a retained closed decision
//! costs 57-62 bytes by construction (89 measured as RSS, docs/benchmarks.md) instead of
//! the ~700 of a record. A read
//! ([`ColdStore::read`]) is one `pread` and a decode.
//!
//! The files are a cache of what the journal holds, not a second journal: nothing here is
//! synced (the bytes are handed to the kernel's writeback a MiB at a time, so they never
//! go out in one burst that journal syncs wait behind), and a restart starts the store
//! empty (the records come back from the snapshot and the journal, the closed ones
//! straight into the store again). Each record is written as a snapshot writes it
//! ([`super::snapshot::encode_entry`]) after a 4-byte length, so a snapshot copies a cold
//! record as it is. A file is started every
//! [`COLD_FILE_BYTES`](crate::limits::COLD_FILE_BYTES) and deleted once none of its records
//! is kept ([`ColdStore::forget`]), a step at a time on the process's deleter thread
//! ([`crate::journal::remove_later`]): freeing 64 MiB at once stalls every sync on the
//! volume. A snapshot encodes from a copy of the store, which may still read a file the
//! zone has since forgotten: the files are held ([`crate::journal::hold`]), so the deleter
//! cuts one only once every copy has let go, and names are not taken again in a run, so a
//! new file never opens one still waiting to be deleted. The journal's snapshots that a
//! restart adopts are held the same way against the journal's compaction.

use super::records::{Reader, RecordError};
use super::snapshot::{decode_entry, encode_entry};
use super::{ClaimPlace, Lifecycle, OrderRecord};
use crate::catalog::Catalog;
use crate::config::Network;
use crate::journal::{WRITEBACK_BYTES, start_writeback};
use crate::limits::COLD_FILE_BYTES;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a cold record is: its file and offset, its lifecycle (answered without a read),
/// and its claim's place (released when the record leaves the window). 12 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColdPlace {
    file: u16,
    lifecycle: u8,
    claim_segment: u8,
    offset: u32,
    claim_at: u32,
}

impl ColdPlace {
    pub fn claim(&self) -> ClaimPlace {
        ClaimPlace {
            segment: self.claim_segment,
            at: self.claim_at,
        }
    }

    /// The same place, its claim standing at `claim`.
    pub fn with_claim(self, claim: ClaimPlace) -> ColdPlace {
        ColdPlace {
            claim_segment: claim.segment,
            claim_at: claim.at,
            ..self
        }
    }

    pub fn lifecycle(&self) -> Lifecycle {
        Lifecycle::ALL[usize::from(self.lifecycle & !NOTED)]
    }

    /// Whether the risk screen noted the order in its customer's history (a restart takes
    /// such records back into the histories, and reads no other cold record).
    pub fn noted(&self) -> bool {
        self.lifecycle & NOTED != 0
    }
}

/// The `lifecycle` byte's flag for [`ColdPlace::noted`].
const NOTED: u8 = 128;

/// Why a cold record could not be written or read back.
#[derive(Debug, thiserror::Error)]
pub enum ColdError {
    #[error("cold record file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cold record at byte {offset} of {path}: {source}")]
    Record {
        path: PathBuf,
        offset: u32,
        #[source]
        source: RecordError,
    },
    #[error("cold record file {0} is gone")]
    Gone(u16),
}

#[derive(Clone, Debug)]
struct ColdFile {
    file: Arc<File>,
    path: PathBuf,
    /// Bytes written (the next record's offset).
    written: u64,
    /// Where the bytes not yet handed to the kernel's writeback start.
    written_back: u64,
    /// Records of this file still kept.
    kept: u64,
    /// A file the store reads but does not own: a journal snapshot whose closed records a
    /// restart left where they were ([`ColdStore::adopt`]). Never written, never deleted
    /// here: let go of (closed) once none of its records is kept.
    adopted: bool,
}

/// One zone's cold records. The zone's thread writes; a clone (a snapshot's) reads.
#[derive(Clone, Debug)]
pub struct ColdStore {
    dir: PathBuf,
    /// By file number; `None` once deleted (its number is taken again).
    files: Vec<Option<ColdFile>>,
    /// The file written to.
    current: Option<u16>,
    /// Records encoded and not yet written ([`ColdStore::flush`]), for the current file.
    staged: Vec<u8>,
    network: Arc<Network>,
    catalog: Arc<Catalog>,
    /// A file's size before the next is started ([`COLD_FILE_BYTES`]; smaller in tests).
    file_bytes: u64,
    /// The name of the next file started: names are never taken again in a run (numbers
    /// are), so a new file never opens one still being deleted, which a snapshot of the
    /// store may still be reading.
    next_name: u64,
}

impl ColdStore {
    /// A store in `dir` (created if need be; files a previous run left there deleted).
    pub fn open(
        dir: &Path,
        network: Arc<Network>,
        catalog: Arc<Catalog>,
    ) -> Result<ColdStore, ColdError> {
        let io = |source| ColdError::Io {
            path: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            // Files of the last run, and any whose deletion a crash interrupted.
            let name = path.to_string_lossy();
            if name.ends_with(".cold") || name.ends_with(".cold.removing") {
                std::fs::remove_file(&path).map_err(io)?;
            }
        }
        Ok(ColdStore {
            dir: dir.to_owned(),
            files: Vec::new(),
            current: None,
            staged: Vec::new(),
            network,
            catalog,
            file_bytes: COLD_FILE_BYTES,
            next_name: 0,
        })
    }

    /// The same store with files of `bytes` each (tests roll files with small ones).
    pub fn with_file_bytes(mut self, bytes: u64) -> ColdStore {
        self.file_bytes = bytes.min(COLD_FILE_BYTES);
        self
    }

    /// Stages `record` (whose claim stands at `claim`) for the next [`ColdStore::flush`];
    /// its place once flushed.
    pub fn put(&mut self, record: &OrderRecord, claim: ClaimPlace) -> Result<ColdPlace, ColdError> {
        let start = self.staged.len();
        self.staged.extend_from_slice(&[0; 4]);
        encode_entry(&mut self.staged, record, &self.network, &self.catalog);
        let flags = record.lifecycle as u8 | if record.buyer.noted { NOTED } else { 0 };
        self.place_staged(start, flags, claim)
    }

    /// Stages `entry`, a record as a snapshot holds it ([`encode_entry`]), copied as it is
    /// (a restart's closed records); its place once flushed.
    pub fn put_entry(
        &mut self,
        entry: &[u8],
        lifecycle: Lifecycle,
        noted: bool,
        claim: ClaimPlace,
    ) -> Result<ColdPlace, ColdError> {
        let start = self.staged.len();
        self.staged.extend_from_slice(&[0; 4]);
        self.staged.extend_from_slice(entry);
        let flags = lifecycle as u8 | if noted { NOTED } else { 0 };
        self.place_staged(start, flags, claim)
    }

    /// Frames the record staged from `start` and gives it its place, starting a new file
    /// first when the current one would pass its size.
    fn place_staged(
        &mut self,
        mut start: usize,
        flags: u8,
        claim: ClaimPlace,
    ) -> Result<ColdPlace, ColdError> {
        let length = (self.staged.len() - start - 4) as u32;
        self.staged[start..start + 4].copy_from_slice(&length.to_le_bytes());
        let size = self.staged.len() as u64 - start as u64;
        let limit = self.file_bytes;
        let full = |file: &ColdFile| file.written + start as u64 + size > limit;
        if self.current.is_none_or(|current| full(self.file(current))) {
            // What was staged before goes to the current file; this record starts the next.
            let record: Vec<u8> = self.staged.drain(start..).collect();
            self.flush()?;
            self.start_file()?;
            self.staged = record;
            start = 0;
        }
        let current = self.current.expect("a file was started");
        let file = self.files[usize::from(current)].as_mut().expect("current");
        file.kept += 1;
        Ok(ColdPlace {
            file: current,
            lifecycle: flags,
            claim_segment: claim.segment,
            offset: (file.written + start as u64) as u32,
            claim_at: claim.at,
        })
    }

    fn file(&self, number: u16) -> &ColdFile {
        self.files[usize::from(number)]
            .as_ref()
            .expect("a kept file")
    }

    /// A free file number.
    fn free_number(&mut self) -> u16 {
        let number = match self.files.iter().position(Option::is_none) {
            Some(free) => free,
            None => {
                self.files.push(None);
                self.files.len() - 1
            }
        };
        u16::try_from(number).expect("fewer than 65,536 cold files")
    }

    /// Takes the file at `path` (a journal snapshot, which holds records framed as this
    /// store's are) as one to read records from where they are ([`ColdStore::adopted`]),
    /// without copying them: its number. The file stays open, and so on disk even once the
    /// journal has deleted it, until none of its records is kept.
    pub fn adopt(&mut self, path: &Path) -> Result<u16, ColdError> {
        let io = |source| ColdError::Io {
            path: path.to_owned(),
            source,
        };
        let file = Arc::new(File::open(path).map_err(io)?);
        let written = file.metadata().map_err(io)?.len();
        // The journal deletes its snapshots a step at a time: not this one while it is read.
        crate::journal::hold(&file);
        let number = self.free_number();
        self.files[usize::from(number)] = Some(ColdFile {
            file,
            path: path.to_owned(),
            written,
            written_back: written,
            kept: 0,
            adopted: true,
        });
        Ok(number)
    }

    /// Lets go of the adopted file `number` if none of its records is kept (a snapshot whose
    /// records were all open, or none readable where they lie): held open, it would keep the
    /// snapshot's disk space after the journal deletes it, for the rest of the run.
    pub fn let_go_if_unused(&mut self, number: u16) {
        let number = usize::from(number);
        if self.files[number]
            .as_ref()
            .is_some_and(|file| file.adopted && file.kept == 0)
        {
            self.files[number] = None;
        }
    }

    /// The place of a record framed at `offset` of the adopted file `number` (its 4-byte
    /// length there), readable at once; `None` past the 4 GiB a place can say.
    pub fn adopted(
        &mut self,
        number: u16,
        offset: u64,
        lifecycle: Lifecycle,
        noted: bool,
    ) -> Option<ColdPlace> {
        let offset = u32::try_from(offset).ok()?;
        let file = self.files[usize::from(number)].as_mut()?;
        debug_assert!(file.adopted, "only an adopted file gives places this way");
        file.kept += 1;
        Some(ColdPlace {
            file: number,
            lifecycle: lifecycle as u8 | if noted { NOTED } else { 0 },
            claim_segment: 0,
            offset,
            claim_at: 0,
        })
    }

    fn start_file(&mut self) -> Result<(), ColdError> {
        // The file written to until now is deleted once it keeps nothing, and it was spared
        // only as the one written to ([`ColdStore::forget`]): its last record may have left
        // before it filled (a zone idle past the window).
        if let Some(current) = self.current.take() {
            let number = usize::from(current);
            if self.files[number]
                .as_ref()
                .is_some_and(|file| file.kept == 0)
            {
                let file = self.files[number].take().expect("checked");
                crate::journal::remove_later(file.path);
            }
        }
        let number = self.free_number();
        let path = self.dir.join(format!("{:06}.cold", self.next_name));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|source| ColdError::Io {
                path: path.clone(),
                source,
            })?;
        self.next_name += 1;
        let file = Arc::new(file);
        // Deleted a step at a time once forgotten, but not while a snapshot's copy of the
        // store still reads it.
        crate::journal::hold(&file);
        self.files[usize::from(number)] = Some(ColdFile {
            file,
            path,
            written: 0,
            written_back: 0,
            kept: 0,
            adopted: false,
        });
        self.current = Some(number);
        Ok(())
    }

    /// Writes what was staged. Until it returns `Ok`, the places [`ColdStore::put`] gave
    /// must not be read: on an error, forget them ([`ColdStore::forget`]) and keep the
    /// records in memory.
    pub fn flush(&mut self) -> Result<(), ColdError> {
        let Some(current) = self.current else {
            return Ok(());
        };
        if self.staged.is_empty() {
            return Ok(());
        }
        let file = self.files[usize::from(current)].as_mut().expect("current");
        // At the offset the places were given, not at the file's cursor: after a failed
        // write (nothing or part of it written, the cursor wherever that left it) the places
        // of that batch are forgotten and the next batch's must still say where its bytes
        // are. Written or not, the offsets handed out count these bytes: a failed batch
        // leaves a hole nobody reads.
        let written = file.file.write_all_at(&self.staged, file.written);
        file.written += self.staged.len() as u64;
        self.staged.clear();
        if file.written - file.written_back >= WRITEBACK_BYTES {
            // Nothing here is synced, but left dirty the records went out every 5 s in bursts
            // of tens of MB (the kernel's flusher), and every journal sync waited behind them.
            start_writeback(&file.file, file.written_back, file.written);
            file.written_back = file.written;
        }
        written.map_err(|source| ColdError::Io {
            path: file.path.clone(),
            source,
        })
    }

    /// The record at `place`, as a snapshot holds it (two `pread`s: its length, then it).
    pub fn entry(&self, place: ColdPlace) -> Result<Vec<u8>, ColdError> {
        let mut reader = self.reader();
        reader.block_bytes = 0;
        reader.entry(place).map(<[u8]>::to_vec)
    }

    /// A reader of many records (a snapshot's): it reads a block at a time, large while
    /// the records come in the order of their places, small while they do not.
    pub fn reader(&self) -> ColdReader<'_> {
        ColdReader {
            store: self,
            file: None,
            start: 0,
            block: Vec::new(),
            block_bytes: READ_BLOCK,
            next_block: READ_BLOCK,
            served: 0,
        }
    }

    /// The record at `place`, whose claim stands at the place's claim.
    pub fn read(&self, place: ColdPlace) -> Result<OrderRecord, ColdError> {
        let entry = self.entry(place)?;
        let mut reader = Reader(&entry);
        let decoded = decode_entry(&mut reader, &self.network, &self.catalog)
            .and_then(|record| reader.finish().map(|()| record));
        let mut record = decoded.map_err(|source| ColdError::Record {
            path: self.file(place.file).path.clone(),
            offset: place.offset,
            source,
        })?;
        record.claim = place.claim();
        Ok(record)
    }

    /// The record at `place` is no longer kept; its file goes once it keeps none (unless it
    /// is the one written to).
    pub fn forget(&mut self, place: ColdPlace) {
        let number = usize::from(place.file);
        let Some(file) = self.files[number].as_mut() else {
            return;
        };
        file.kept -= 1;
        if file.kept == 0 && file.adopted {
            // Not ours to delete: closing it lets its space go if the journal has.
            self.files[number] = None;
        } else if file.kept == 0 && self.current != Some(place.file) {
            crate::journal::remove_later(file.path.clone());
            self.files[number] = None;
        }
    }

    /// Files kept, and their bytes.
    #[cfg(test)]
    pub fn usage(&self) -> (usize, u64) {
        self.files
            .iter()
            .flatten()
            .fold((0, 0), |(files, bytes), file| {
                (files + 1, bytes + file.written)
            })
    }
}

/// Bytes a [`ColdReader`] reads at once, at most.
const READ_BLOCK: usize = 1 << 20;

/// Bytes a [`ColdReader`] reads at once, at least (a record and its length, mostly, in one
/// read).
const SMALL_READ: usize = 4 << 10;

/// Reads records of one [`ColdStore`] through a block of the file last read. Records read
/// in the order they were written cost a read per block, not two per record. A snapshot
/// reads them in slot order, which is the order the orders were decided in, while they
/// were written in the order they closed (shipped 20-60 s later, say): then few records of
/// a block are ever read from it, and a 1 MiB block read for each one copied a MiB per
/// record (measured in the soak at 20,000 orders/s: 70% of the snapshot thread's time in
/// the kernel's copy, half a core in all). So the block adapts: a block that served only
/// the record it was read for makes the next one a quarter as large (down to
/// [`SMALL_READ`]), one that served several makes it twice as large (up to the most).
pub struct ColdReader<'a> {
    store: &'a ColdStore,
    /// The file the block is from, and where in it the block starts.
    file: Option<u16>,
    start: u64,
    block: Vec<u8>,
    /// Bytes read at once at most ([`READ_BLOCK`]; smaller in tests; 0: each record on its
    /// own, its length first).
    block_bytes: usize,
    /// Bytes the next read asks for (see the type's doc).
    next_block: usize,
    /// Records served from the current block.
    served: u32,
}

impl ColdReader<'_> {
    /// The same reader with blocks of `bytes` (tests cross block ends with small ones).
    #[cfg(test)]
    fn with_block(mut self, bytes: usize) -> Self {
        self.block_bytes = bytes;
        self.next_block = bytes;
        self
    }

    /// The record at `place`, as a snapshot holds it (see [`ColdStore::entry`]).
    pub fn entry(&mut self, place: ColdPlace) -> Result<&[u8], ColdError> {
        let offset = u64::from(place.offset);
        if let Some(range) = self.framed(place.file, offset) {
            self.served += 1;
            return Ok(&self.block[range]);
        }
        if self.file.is_some() {
            self.next_block = if self.served <= 1 {
                (self.next_block / 4).max(SMALL_READ)
            } else {
                self.next_block.saturating_mul(2).min(READ_BLOCK)
            };
        }
        let file = self.store.files[usize::from(place.file)]
            .as_ref()
            .ok_or(ColdError::Gone(place.file))?;
        let io = |source| ColdError::Io {
            path: file.path.clone(),
            source,
        };
        // A block from the record on, as far as the file goes and at least its length;
        // read again whole if the record is longer.
        let wanted = self.next_block.min(self.block_bytes) as u64;
        let size = wanted.min(file.written.saturating_sub(offset)).max(4);
        self.file = None;
        self.block.resize(size as usize, 0);
        file.file
            .read_exact_at(&mut self.block, offset)
            .map_err(io)?;
        let length = u32::from_le_bytes(self.block[..4].try_into().expect("four bytes"));
        let record = 4 + length as usize;
        if record > self.block.len() {
            self.block.resize(record, 0);
            file.file
                .read_exact_at(&mut self.block, offset)
                .map_err(io)?;
        }
        self.file = Some(place.file);
        self.start = offset;
        self.served = 1;
        let range = self
            .framed(place.file, offset)
            .expect("the block holds the record it was read for");
        Ok(&self.block[range])
    }

    /// Where in the block the record framed at `offset` of `file` is, if it is all there.
    fn framed(&self, file: u16, offset: u64) -> Option<std::ops::Range<usize>> {
        if self.file != Some(file) || offset < self.start {
            return None;
        }
        let at = usize::try_from(offset - self.start).ok()?;
        let length = self.block.get(at..at.checked_add(4)?)?;
        let length = u32::from_le_bytes(length.try_into().ok()?) as usize;
        let range = at + 4..(at + 4).checked_add(length)?;
        (range.end <= self.block.len()).then_some(range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::test_world::{rejected_record as record, world};

    /// Waits up to 30 s for `path` to leave the disk (the deleter runs on its own thread).
    fn wait_gone(path: &Path, what: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while path.exists() {
            assert!(std::time::Instant::now() < deadline, "{what}");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[test]
    fn records_read_back_as_written_across_file_rolls_and_files_go_once_unused() {
        let world = world("warehouse,sku,on_hand\nWS,A,5\n");
        let dir = tempfile::tempdir().unwrap();
        // A file left by a previous run is deleted when the store opens.
        std::fs::write(dir.path().join("00007.cold"), b"old").unwrap();
        let mut store = ColdStore::open(dir.path(), world.network.clone(), world.catalog.clone())
            .unwrap()
            .with_file_bytes(1_000);
        assert!(!dir.path().join("00007.cold").exists());
        let mut placed = Vec::new();
        for batch in 0..6u32 {
            for n in batch * 9..batch * 9 + 9 {
                let claim = ClaimPlace {
                    segment: n as u8,
                    at: n * 3,
                };
                let place = store.put(&record(&world, n), claim).unwrap();
                placed.push((n, claim, place));
            }
            store.flush().unwrap();
        }
        let (files, _) = store.usage();
        assert!(files > 3, "{files} files: the records roll over several");
        for (n, claim, place) in &placed {
            let read = store.read(*place).unwrap();
            assert_eq!(read, record(&world, *n), "record {n}");
            assert_eq!((read.claim, place.claim()), (*claim, *claim));
            assert_eq!(place.lifecycle(), record(&world, *n).lifecycle);
        }
        // Read through blocks, in order and backwards, with blocks that end inside records.
        for block in [READ_BLOCK, 300, 1] {
            let mut reader = store.reader().with_block(block);
            for (_, _, place) in placed.iter().chain(placed.iter().rev()) {
                let entry = reader.entry(*place).unwrap().to_vec();
                assert_eq!(entry, store.entry(*place).unwrap(), "block of {block}");
            }
        }
        // Out of order (a snapshot's slot order against the order records closed in),
        // backwards here: every block serves the one record it was read for, and the next
        // is a quarter as large, down to the smallest read; in order again, they grow.
        let mut reader = store.reader();
        for (_, _, place) in placed.iter().rev() {
            let entry = reader.entry(*place).unwrap().to_vec();
            assert_eq!(entry, store.entry(*place).unwrap());
        }
        assert_eq!(reader.next_block, SMALL_READ);
        for (_, _, place) in &placed {
            let entry = reader.entry(*place).unwrap().to_vec();
            assert_eq!(entry, store.entry(*place).unwrap());
        }
        assert!(reader.next_block > SMALL_READ);
        for (_, _, place) in &placed {
            store.forget(*place);
        }
        assert_eq!(store.usage().0, 1, "only the file written to is kept");
        // The others are deleted on threads of their own: wait for them, with a deadline.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut left = std::fs::read_dir(dir.path()).unwrap().count();
        while left > 1 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
            left = std::fs::read_dir(dir.path()).unwrap().count();
        }
        assert_eq!(left, 1, "only the file written to stays on disk");
    }

    #[test]
    fn a_failed_write_leaves_a_hole_and_the_records_written_after_it_read_back_where_placed() {
        let world = world("warehouse,sku,on_hand\nWS,A,5\n");
        let dir = tempfile::tempdir().unwrap();
        let mut store =
            ColdStore::open(dir.path(), world.network.clone(), world.catalog.clone()).unwrap();
        let put = |store: &mut ColdStore, numbers: std::ops::Range<u32>| -> Vec<(u32, ColdPlace)> {
            numbers
                .map(|n| {
                    (
                        n,
                        store
                            .put(&record(&world, n), ClaimPlace::default())
                            .unwrap(),
                    )
                })
                .collect()
        };
        let mut kept = put(&mut store, 0..5);
        store.flush().unwrap();
        // The disk refuses the next batch (a handle that cannot write stands in for a full
        // disk): its places are forgotten, as `ZoneState::chill` does, and the records are
        // put again once the disk takes writes again.
        let current = usize::from(store.current.unwrap());
        let writable = store.files[current].as_ref().unwrap().file.clone();
        let path = store.files[current].as_ref().unwrap().path.clone();
        store.files[current].as_mut().unwrap().file = Arc::new(File::open(&path).unwrap());
        let refused = put(&mut store, 5..10);
        assert!(store.flush().is_err(), "a read-only handle cannot write");
        for (_, place) in &refused {
            store.forget(*place);
        }
        store.files[current].as_mut().unwrap().file = writable;
        kept.extend(put(&mut store, 5..10));
        store.flush().unwrap();
        for (n, place) in &kept {
            assert_eq!(
                store.read(*place).unwrap(),
                record(&world, *n),
                "record {n}"
            );
        }
        assert!(
            kept[5].1.offset > refused.last().unwrap().1.offset,
            "the refused batch's bytes stay counted: a hole, not reused"
        );
    }

    #[test]
    fn the_file_written_to_goes_once_it_keeps_nothing_and_the_next_one_starts() {
        let world = world("warehouse,sku,on_hand\nWS,A,5\n");
        let dir = tempfile::tempdir().unwrap();
        let mut store = ColdStore::open(dir.path(), world.network.clone(), world.catalog.clone())
            .unwrap()
            .with_file_bytes(1_000);
        let first: Vec<ColdPlace> = (0..3)
            .map(|n| {
                store
                    .put(&record(&world, n), ClaimPlace::default())
                    .unwrap()
            })
            .collect();
        store.flush().unwrap();
        let first_path = store.file(first[0].file).path.clone();
        // Every record of the file written to leaves (the window passed while the zone was
        // idle): it stays, as the one written to.
        for place in &first {
            store.forget(*place);
        }
        assert!(first_path.exists());
        // Records until the next file starts: the empty one goes.
        // (The new file may take the old one's free number: files are told by their paths.)
        let mut n = 3;
        let written_to = |store: &ColdStore| store.file(store.current.unwrap()).path.clone();
        while written_to(&store) == first_path {
            let place = store
                .put(&record(&world, n), ClaimPlace::default())
                .unwrap();
            store.flush().unwrap();
            if store.file(place.file).path == first_path {
                store.forget(place);
            }
            n += 1;
        }
        wait_gone(&first_path, "the empty file stayed");
        assert_eq!(store.usage().0, 1, "the new file only");
    }

    #[test]
    fn an_adopted_file_none_of_whose_records_is_kept_is_let_go() {
        let world = world("warehouse,sku,on_hand\nWS,A,5\n");
        let dir = tempfile::tempdir().unwrap();
        let snapshot = dir.path().join("snapshot.snap");
        std::fs::write(&snapshot, b"a snapshot whose records were all open").unwrap();
        let mut store = ColdStore::open(
            &dir.path().join("cold"),
            world.network.clone(),
            world.catalog.clone(),
        )
        .unwrap();
        let unused = store.adopt(&snapshot).unwrap();
        let used = store.adopt(&snapshot).unwrap();
        let place = store.adopted(used, 0, Lifecycle::Shipped, false).unwrap();
        store.let_go_if_unused(unused);
        store.let_go_if_unused(used);
        assert_eq!(
            store.usage().0,
            1,
            "only the file a record is kept in stays open"
        );
        store.forget(place);
        assert_eq!(store.usage().0, 0);
    }

    #[test]
    fn a_file_forgotten_while_a_copy_reads_it_stays_whole_until_the_copy_lets_go() {
        let world = world("warehouse,sku,on_hand\nWS,A,5\n");
        let dir = tempfile::tempdir().unwrap();
        // Files larger than a deletion's step, so that deleting one would cut it.
        let mut store = ColdStore::open(dir.path(), world.network.clone(), world.catalog.clone())
            .unwrap()
            .with_file_bytes(6 << 20);
        let mut first = Vec::new();
        let mut n = 0u32;
        loop {
            let place = store
                .put(&record(&world, n), ClaimPlace::default())
                .unwrap();
            store.flush().unwrap();
            if place.file != 0 {
                break;
            }
            first.push((n, place));
            n += 1;
        }
        let first_path = store.file(0).path.clone();
        assert!(std::fs::metadata(&first_path).unwrap().len() > 5 << 20);
        // A snapshot's copy, then the zone lets every record of the first file go.
        let copy = store.clone();
        for (_, place) in &first {
            store.forget(*place);
        }
        wait_gone(&first_path, "not handed to the deleter");
        // Long enough for the deleter to have cut a step or two, had it cut at all.
        std::thread::sleep(std::time::Duration::from_millis(300));
        let mut reader = copy.reader();
        for (n, place) in &first {
            let entry = reader.entry(*place).unwrap().to_vec();
            assert_eq!(entry, copy.entry(*place).unwrap(), "record {n}");
            assert_eq!(copy.read(*place).unwrap(), record(&world, *n), "record {n}");
        }
        // A new file takes the free number 0 under a new name, not the old file's.
        while store.current == Some(1) {
            store
                .put(&record(&world, n), ClaimPlace::default())
                .unwrap();
            store.flush().unwrap();
            n += 1;
        }
        assert_eq!(store.current, Some(0));
        assert_ne!(store.file(0).path, first_path);
        // The copy lets go: the old file goes.
        drop(copy);
        let removing = |dir: &Path| {
            std::fs::read_dir(dir)
                .unwrap()
                .filter(|entry| {
                    let name = entry.as_ref().unwrap().file_name();
                    name.to_string_lossy().ends_with(".removing")
                })
                .count()
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while removing(dir.path()) > 0 {
            assert!(std::time::Instant::now() < deadline, "the old file stayed");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
