//! Tests of the journal as a whole: round trips across segment rolls, crashes simulated by
//! truncating files at every byte offset, damage simulated by flipping bits, lsn gaps,
//! snapshots and compaction, poisoning by injected failures, and a property test against a
//! model of what was committed.

use super::format::{self, FRAME_HEADER_BYTES, SEGMENT_HEADER_BYTES};
use super::writer::FaultPoint;
use super::*;
use proptest::prelude::*;
use std::fs;
use tempfile::TempDir;

/// Small segments and groups, so a few hundred records make many segments.
fn small_options(mode: SyncMode) -> JournalOptions {
    JournalOptions {
        mode,
        segment_bytes: SEGMENT_BYTES_MIN,
        max_group_records: 64,
        max_group_bytes: GROUP_BYTES_MIN,
        commit_window: Duration::ZERO,
        preallocate: false,
    }
}

/// A payload of 20 to 199 bytes that depends on its lsn.
fn payload(lsn: u64) -> Vec<u8> {
    let length = 20 + (lsn * 37 % 180) as usize;
    (0..length)
        .map(|index| (lsn as usize * 31 + index) as u8)
        .collect()
}

fn record(lsn: u64) -> Record {
    Record {
        lsn,
        kind: (lsn % 5) as u8,
        payload: payload(lsn),
    }
}

fn open(dir: &Path, options: JournalOptions) -> (Journal, Recovered) {
    Journal::open(dir, options).expect("the journal opens")
}

/// Appends records `from..=to` in groups of `group`, committing each group.
fn write_records(journal: &mut Journal, from: u64, to: u64, group: u64) -> Vec<Record> {
    let mut written = Vec::new();
    for lsn in from..=to {
        let record = record(lsn);
        assert_eq!(journal.append(record.kind, &record.payload).unwrap(), lsn);
        written.push(record);
        if (lsn - from + 1).is_multiple_of(group) || lsn == to {
            journal.commit().unwrap();
        }
    }
    written
}

fn records(from: u64, to: u64) -> Vec<Record> {
    (from..=to).map(record).collect()
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    scan::list_directory(dir)
        .unwrap()
        .segments
        .into_iter()
        .map(|(_, path)| path)
        .collect()
}

fn entries(dir: &Path) -> Vec<RecordEntry> {
    read_records(dir)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

fn copy_directory(from: &Path) -> TempDir {
    let copy = TempDir::new().unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        fs::copy(&path, copy.path().join(path.file_name().unwrap())).unwrap();
    }
    copy
}

fn flip_bit(path: &Path, offset: u64, bit: u32) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset as usize] ^= 1 << bit;
    fs::write(path, bytes).unwrap();
}

fn open_error(dir: &Path) -> String {
    match Journal::open(dir, small_options(SyncMode::Fsync)) {
        Ok(_) => panic!("the damaged journal opened"),
        Err(error) => error.to_string(),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn records_round_trip_across_segment_rolls() {
    let dir = TempDir::new().unwrap();
    let (mut journal, recovered) = open(dir.path(), small_options(SyncMode::Fsync));
    assert_eq!(recovered, Recovered::default());
    assert_eq!(journal.next_lsn(), 1);
    write_records(&mut journal, 1, 300, 7);
    assert_eq!(journal.committed_lsn(), 300);
    drop(journal);
    let segments = segment_files(dir.path());
    assert!(segments.len() >= 5, "only {} segments", segments.len());
    for segment in &segments {
        // A segment passes its bound only by the group that started it.
        let length = fs::metadata(segment).unwrap().len();
        assert!(length <= SEGMENT_BYTES_MIN + GROUP_BYTES_MIN as u64 + 300);
    }

    let (mut journal, recovered) = open(dir.path(), small_options(SyncMode::Fsync));
    assert_eq!(recovered.records, records(1, 300));
    assert_eq!(recovered.torn_tail, None);
    assert_eq!(journal.next_lsn(), 301);
    write_records(&mut journal, 301, 310, 3);
    drop(journal);
    let (_, recovered) = open(dir.path(), small_options(SyncMode::Fsync));
    assert_eq!(recovered.records, records(1, 310));

    let report = verify(dir.path()).unwrap();
    assert_eq!(report.records, 310);
    assert_eq!((report.first_lsn, report.last_lsn), (Some(1), Some(310)));
    assert_eq!(report.torn_tail, None);
    assert!(report.to_string().contains("310 records, lsn 1 to 310"));
    let dumped = entries(dir.path());
    assert_eq!(dumped.len(), 310);
    for (entry, expected) in dumped.iter().zip(records(1, 310)) {
        assert_eq!((entry.lsn, entry.kind), (expected.lsn, expected.kind));
        assert_eq!(entry.payload, expected.payload);
        let bytes = fs::read(&entry.segment).unwrap();
        let frame = format::decode_frame(&bytes[entry.offset as usize..]).unwrap();
        assert_eq!(frame.lsn, entry.lsn);
    }
    assert!(dumped[0].to_string().starts_with("lsn 1 kind 1 "));
}

#[test]
fn an_empty_commit_writes_nothing() {
    let dir = TempDir::new().unwrap();
    let journal_dir = dir.path().join("zone-east");
    let (mut journal, _) = open(&journal_dir, small_options(SyncMode::Fsync));
    assert_eq!(journal.commit().unwrap(), CommitStats::default());
    assert!(segment_files(&journal_dir).is_empty());
    assert_eq!(journal.segment_syncs(), 0);
    let stats = {
        journal.append(1, b"first").unwrap();
        journal.commit().unwrap()
    };
    assert_eq!((stats.records, stats.first_lsn, stats.last_lsn), (1, 1, 1));
    assert!(stats.synced && stats.new_segment);
    assert_eq!(stats.bytes, SEGMENT_HEADER_BYTES + FRAME_HEADER_BYTES + 5);
    assert_eq!(journal.segment_syncs(), 1);
}

#[test]
fn a_torn_tail_is_cut_at_every_byte_offset_of_the_last_two_records() {
    let pristine = TempDir::new().unwrap();
    let (mut journal, _) = open(pristine.path(), small_options(SyncMode::Write));
    write_records(&mut journal, 1, 40, 3);
    drop(journal);
    let all = entries(pristine.path());
    let last_segment = segment_files(pristine.path()).pop().unwrap();
    let tail = &all[all.len() - 2..];
    assert!(
        tail.iter().all(|entry| entry.segment == last_segment),
        "the last two records must share the last segment"
    );
    let ends: Vec<u64> = tail
        .iter()
        .map(|entry| entry.offset + (FRAME_HEADER_BYTES + entry.payload.len()) as u64)
        .collect();
    let bytes = fs::read(&last_segment).unwrap();
    assert_eq!(*ends.last().unwrap(), bytes.len() as u64);

    for cut in tail[0].offset..=bytes.len() as u64 {
        let dir = copy_directory(pristine.path());
        let segment = dir.path().join(file_name(&last_segment));
        fs::write(&segment, &bytes[..cut as usize]).unwrap();
        let whole = ends.iter().filter(|&&end| end <= cut).count() as u64;
        let kept = 38 + whole;
        let boundary = match whole {
            0 => tail[0].offset,
            _ => ends[whole as usize - 1],
        };

        let (mut journal, recovered) = open(dir.path(), small_options(SyncMode::Write));
        assert_eq!(recovered.records, records(1, kept), "cut at {cut}");
        match &recovered.torn_tail {
            None => assert_eq!(cut, boundary, "cut at {cut} is not a record boundary"),
            Some(torn) => {
                assert_eq!(torn.segment, segment);
                assert_eq!((torn.offset, torn.bytes_cut), (boundary, cut - boundary));
                assert!(!torn.segment_removed);
            }
        }
        assert_eq!(fs::metadata(&segment).unwrap().len(), boundary);
        assert_eq!(journal.next_lsn(), kept + 1);
        journal.append(9, b"after the crash").unwrap();
        journal.commit().unwrap();
        drop(journal);
        let (_, recovered) = open(dir.path(), small_options(SyncMode::Write));
        let mut expected = records(1, kept);
        expected.push(Record {
            lsn: kept + 1,
            kind: 9,
            payload: b"after the crash".to_vec(),
        });
        assert_eq!(recovered.records, expected, "cut at {cut}, after reopening");
        assert_eq!(recovered.torn_tail, None);
    }
}

#[test]
fn a_segment_with_a_torn_header_is_removed_if_it_is_the_last() {
    let pristine = TempDir::new().unwrap();
    let (mut journal, _) = open(pristine.path(), small_options(SyncMode::Fsync));
    write_records(&mut journal, 1, 60, 4);
    drop(journal);
    let last_segment = segment_files(pristine.path()).pop().unwrap();
    let first_in_last = entries(pristine.path())
        .iter()
        .find(|entry| entry.segment == last_segment)
        .unwrap()
        .lsn;
    let bytes = fs::read(&last_segment).unwrap();
    let mut candidates: Vec<Vec<u8>> = (0..SEGMENT_HEADER_BYTES)
        .map(|cut| bytes[..cut].to_vec())
        .collect();
    // A header the crash left as zeros, with nothing valid after it.
    candidates.push(vec![0; SEGMENT_HEADER_BYTES + 40]);
    for candidate in candidates {
        let dir = copy_directory(pristine.path());
        let segment = dir.path().join(file_name(&last_segment));
        fs::write(&segment, &candidate).unwrap();
        let report = verify(dir.path()).unwrap();
        assert!(report.torn_tail.as_ref().unwrap().segment_removed);

        let (mut journal, recovered) = open(dir.path(), small_options(SyncMode::Fsync));
        assert_eq!(recovered.records, records(1, first_in_last - 1));
        let torn = recovered.torn_tail.unwrap();
        assert!(torn.segment_removed);
        assert_eq!(torn.bytes_cut, candidate.len() as u64);
        assert!(!segment.exists());
        write_records(&mut journal, first_in_last, first_in_last + 2, 3);
        drop(journal);
        let (_, recovered) = open(dir.path(), small_options(SyncMode::Fsync));
        assert_eq!(recovered.records, records(1, first_in_last + 2));
    }
}

/// A journal of `records` records in several segments, and the dump of it.
fn journal_of(records: u64) -> (TempDir, Vec<RecordEntry>) {
    let dir = TempDir::new().unwrap();
    let (mut journal, _) = open(dir.path(), small_options(SyncMode::Fsync));
    write_records(&mut journal, 1, records, 5);
    drop(journal);
    let dumped = entries(dir.path());
    (dir, dumped)
}

#[test]
fn a_flipped_bit_in_the_middle_of_a_segment_is_refused_with_its_segment_and_offset() {
    let (pristine, dumped) = journal_of(80);
    let last_segment = segment_files(pristine.path()).pop().unwrap();
    // A record in the middle of the last segment (records follow it) and one in the middle
    // of the first segment.
    let in_last: Vec<&RecordEntry> = dumped
        .iter()
        .filter(|entry| entry.segment == last_segment)
        .collect();
    assert!(in_last.len() >= 3);
    let targets = [in_last[in_last.len() / 2], &dumped[2]];
    for target in targets {
        let payload_at = target.offset + FRAME_HEADER_BYTES as u64;
        let mut places = vec![
            ("payload", payload_at + target.payload.len() as u64 / 2, 3),
            ("checksum", target.offset + 5, 0),
            ("kind", target.offset + 16, 1),
        ];
        for bit in 0..64 {
            places.push(("lsn", target.offset + 8 + bit / 8, (bit % 8) as u32));
        }
        for bit in 0..32 {
            places.push(("length", target.offset + bit / 8, (bit % 8) as u32));
        }
        for (field, offset, bit) in places {
            let dir = copy_directory(pristine.path());
            let segment = dir.path().join(file_name(&target.segment));
            flip_bit(&segment, offset, bit);
            let expected = format!("{} at byte {}: ", segment.display(), target.offset);
            let message = open_error(dir.path());
            assert!(
                message.starts_with(&expected),
                "{field} bit flipped: {message}"
            );
            let message = verify(dir.path()).unwrap_err().to_string();
            assert!(message.starts_with(&expected), "verify, {field}: {message}");
            let mut dump = read_records(dir.path()).unwrap();
            let before: Vec<u64> = dump
                .by_ref()
                .map_while(Result::ok)
                .map(|entry| entry.lsn)
                .collect();
            assert_eq!(before, (1..target.lsn).collect::<Vec<_>>());
        }
    }
}

#[test]
fn damage_at_the_end_of_a_segment_that_is_not_the_last_is_refused() {
    let (pristine, dumped) = journal_of(80);
    let first_segment = segment_files(pristine.path())[0].clone();
    let last_of_first = dumped
        .iter()
        .rfind(|entry| entry.segment == first_segment)
        .unwrap();
    let dir = copy_directory(pristine.path());
    let segment = dir.path().join(file_name(&first_segment));
    flip_bit(
        &segment,
        last_of_first.offset + FRAME_HEADER_BYTES as u64,
        6,
    );
    let message = open_error(dir.path());
    assert!(
        message.starts_with(&format!(
            "{} at byte {}",
            segment.display(),
            last_of_first.offset
        )),
        "{message}"
    );
    assert!(message.contains("not the last"), "{message}");

    // And a damaged header in a segment that is not the last.
    let dir = copy_directory(pristine.path());
    let segment = dir.path().join(file_name(&first_segment));
    flip_bit(&segment, 14, 2);
    let message = open_error(dir.path());
    assert!(
        message.starts_with(&format!("{} at byte 0", segment.display())),
        "{message}"
    );
}

#[test]
fn a_flipped_bit_in_the_last_record_is_cut_like_a_torn_write() {
    // Documented in docs/journal.md: nothing follows the last record, so damage to it cannot
    // be told from a write the crash interrupted.
    let (pristine, dumped) = journal_of(30);
    let last = dumped.last().unwrap();
    let dir = copy_directory(pristine.path());
    let segment = dir.path().join(file_name(&last.segment));
    flip_bit(&segment, last.offset + FRAME_HEADER_BYTES as u64 + 1, 0);
    let (_, recovered) = open(dir.path(), small_options(SyncMode::Fsync));
    assert_eq!(recovered.records, records(1, 29));
    let torn = recovered.torn_tail.unwrap();
    assert_eq!(torn.offset, last.offset);
    assert!(torn.why.contains("checksum"), "{}", torn.why);
}

#[test]
fn an_lsn_gap_is_refused() {
    // A segment missing from the middle of the journal.
    let (pristine, _) = journal_of(80);
    let segments = segment_files(pristine.path());
    assert!(segments.len() >= 3);
    let dir = copy_directory(pristine.path());
    fs::remove_file(dir.path().join(file_name(&segments[1]))).unwrap();
    let after = dir.path().join(file_name(&segments[2]));
    let message = open_error(dir.path());
    assert!(
        message.starts_with(&format!("{} at byte 0", after.display())),
        "{message}"
    );
    assert!(message.contains("missing"), "{message}");
    assert!(verify(dir.path()).is_err());

    // The first segment missing.
    let dir = copy_directory(pristine.path());
    fs::remove_file(dir.path().join(file_name(&segments[0]))).unwrap();
    let message = open_error(dir.path());
    assert!(
        message.contains("neither in a segment nor in a snapshot"),
        "{message}"
    );

    // A gap inside a segment: lsns 1, 2, 4, each frame valid.
    let dir = TempDir::new().unwrap();
    let mut bytes = format::encode_segment_header(1).to_vec();
    let mut offsets = Vec::new();
    for lsn in [1, 2, 4, 5] {
        offsets.push(bytes.len());
        format::encode_frame(&mut bytes, lsn, 0, b"valid");
    }
    let segment = dir.path().join(format::segment_file_name(1));
    fs::write(&segment, &bytes).unwrap();
    let message = open_error(dir.path());
    assert_eq!(
        message,
        format!(
            "{} at byte {}: record has lsn 4, lsn 3 was expected",
            segment.display(),
            offsets[2]
        )
    );

    // A valid record repeated at the end of the last segment (wrong lsn, valid checksum):
    // no torn write makes that, so it is refused rather than cut.
    let mut bytes = format::encode_segment_header(1).to_vec();
    for lsn in [1, 2, 2] {
        format::encode_frame(&mut bytes, lsn, 0, b"valid");
    }
    fs::write(&segment, &bytes).unwrap();
    assert!(open_error(dir.path()).contains("record has lsn 2, lsn 3 was expected"));

    // A header that disagrees with its file name.
    let mut bytes = format::encode_segment_header(7).to_vec();
    format::encode_frame(&mut bytes, 7, 0, b"valid");
    fs::write(&segment, &bytes).unwrap();
    assert!(open_error(dir.path()).contains("its name says 1"));
}

#[test]
fn snapshots_and_compaction_bound_what_a_restart_replays() {
    let dir = TempDir::new().unwrap();
    let (mut journal, _) = open(dir.path(), small_options(SyncMode::Fsync));
    write_records(&mut journal, 1, 100, 6);
    journal.write_snapshot(50, b"state after 50").unwrap();
    write_records(&mut journal, 101, 200, 6);
    journal.write_snapshot(150, b"state after 150").unwrap();
    let segments_before = journal.segment_paths().count();
    let stats = journal.compact().unwrap();
    assert!(stats.segments_removed > 0 && stats.bytes_freed > 0);
    assert_eq!(stats.snapshots_removed, 0);
    assert_eq!(
        journal.segment_paths().count(),
        segments_before - stats.segments_removed
    );
    write_records(&mut journal, 201, 250, 6);
    drop(journal);

    // The first segment left still holds lsn 51: the segments after the older snapshot.
    let first = &segment_files(dir.path())[0];
    let first_lsn = match format::parse_file_name(first) {
        Some(format::FileName::Segment { first_lsn }) => first_lsn,
        other => panic!("{other:?}"),
    };
    assert!(first_lsn > 1 && first_lsn <= 51, "{first_lsn}");

    let (mut journal, recovered) = open(dir.path(), small_options(SyncMode::Fsync));
    let snapshot = recovered.snapshot.unwrap();
    assert_eq!(
        (snapshot.lsn, snapshot.bytes.as_slice()),
        (150, &b"state after 150"[..])
    );
    assert_eq!(recovered.records, records(151, 250));
    assert_eq!(journal.next_lsn(), 251);
    let report = verify(dir.path()).unwrap();
    assert_eq!(report.snapshots.len(), 2);
    assert_eq!(report.last_lsn, Some(250));

    journal.write_snapshot(250, b"state after 250").unwrap();
    let stats = journal.compact().unwrap();
    assert_eq!(stats.snapshots_removed, 1);
    assert!(!dir.path().join(format::snapshot_file_name(50)).exists());
    drop(journal);
    let (mut journal, recovered) = open(dir.path(), small_options(SyncMode::Fsync));
    assert_eq!(recovered.snapshot.unwrap().lsn, 250);
    assert!(recovered.records.is_empty());
    assert_eq!(journal.next_lsn(), 251);
    write_records(&mut journal, 251, 255, 2);
    drop(journal);
    let (_, recovered) = open(dir.path(), small_options(SyncMode::Fsync));
    assert_eq!(recovered.records, records(251, 255));
    verify(dir.path()).unwrap();
}

#[test]
fn recovery_does_not_read_the_segments_a_snapshot_covers() {
    let dir = TempDir::new().unwrap();
    let (mut journal, _) = open(dir.path(), small_options(SyncMode::Fsync));
    write_records(&mut journal, 1, 120, 6);
    journal.write_snapshot(100, b"state").unwrap();
    drop(journal);
    let dumped = entries(dir.path());
    let first_segment = segment_files(dir.path())[0].clone();
    flip_bit(&first_segment, dumped[1].offset + 20, 0);
    // A start skips the covered segment; verify reads everything and finds the damage.
    let (_, recovered) = open(dir.path(), small_options(SyncMode::Fsync));
    assert_eq!(recovered.records, records(101, 120));
    let message = verify(dir.path()).unwrap_err().to_string();
    assert!(
        message.starts_with(&first_segment.display().to_string()),
        "{message}"
    );
}

#[test]
fn a_damaged_newest_snapshot_stops_the_start_and_the_one_before_can_take_over() {
    let dir = TempDir::new().unwrap();
    let (mut journal, _) = open(dir.path(), small_options(SyncMode::Fsync));
    write_records(&mut journal, 1, 100, 6);
    journal.write_snapshot(40, b"state after 40").unwrap();
    write_records(&mut journal, 101, 150, 6);
    journal.write_snapshot(120, b"state after 120").unwrap();
    journal.compact().unwrap();
    drop(journal);
    let newest = dir.path().join(format::snapshot_file_name(120));
    flip_bit(&newest, SNAPSHOT_HEADER_BYTES as u64 + 2, 5);
    let message = open_error(dir.path());
    assert!(
        message.starts_with(&newest.display().to_string()),
        "{message}"
    );
    assert!(message.contains("snapshot before it"), "{message}");

    // The operator moves it away; compaction kept what the older snapshot needs.
    fs::remove_file(&newest).unwrap();
    let (_, recovered) = open(dir.path(), small_options(SyncMode::Fsync));
    assert_eq!(recovered.snapshot.unwrap().lsn, 40);
    assert_eq!(recovered.records, records(41, 150));
}

#[test]
fn snapshots_are_refused_ahead_of_the_commits_or_behind_the_newest() {
    let dir = TempDir::new().unwrap();
    let (mut journal, _) = open(dir.path(), small_options(SyncMode::Fsync));
    write_records(&mut journal, 1, 10, 10);
    journal.append(0, b"pending").unwrap();
    assert!(matches!(
        journal.write_snapshot(11, b"too soon"),
        Err(JournalError::SnapshotAhead {
            lsn: 11,
            committed: 10
        })
    ));
    journal.write_snapshot(8, b"ok").unwrap();
    assert!(matches!(
        journal.write_snapshot(7, b"old"),
        Err(JournalError::SnapshotBehind { lsn: 7, newest: 8 })
    ));
    // Rewriting the newest is allowed: it replaces the file atomically.
    journal.write_snapshot(8, b"ok again").unwrap();
    drop(journal);
    let (_, recovered) = open(dir.path(), small_options(SyncMode::Fsync));
    assert_eq!(recovered.snapshot.unwrap().bytes, b"ok again");
    assert_eq!(recovered.records, records(9, 10));
}

#[test]
fn an_interrupted_snapshot_is_removed_on_open() {
    let dir = TempDir::new().unwrap();
    let (mut journal, _) = open(dir.path(), small_options(SyncMode::Fsync));
    write_records(&mut journal, 1, 5, 5);
    drop(journal);
    let temporary = dir
        .path()
        .join(format!("{}.tmp", format::snapshot_file_name(5)));
    fs::write(&temporary, b"half a snap").unwrap();
    let report = verify(dir.path()).unwrap();
    assert_eq!(report.temporaries, vec![temporary.clone()]);
    let (_, recovered) = open(dir.path(), small_options(SyncMode::Fsync));
    assert_eq!(recovered.snapshot, None);
    assert!(!temporary.exists());
}

#[test]
fn a_failed_write_poisons_the_journal_and_recovery_cuts_the_half_written_group() {
    let dir = TempDir::new().unwrap();
    let (mut journal, _) = open(dir.path(), small_options(SyncMode::Fsync));
    write_records(&mut journal, 1, 10, 5);
    journal.inject_fault(FaultPoint::Write);
    for lsn in 11..=14 {
        journal.append(0, &payload(lsn)).unwrap();
    }
    let error = journal.commit().unwrap_err();
    assert!(matches!(error, JournalError::Io { .. }), "{error}");
    assert!(error.to_string().contains("injected write failure"));
    assert_eq!(journal.committed_lsn(), 10);
    assert!(
        journal
            .poisoned()
            .unwrap()
            .contains("injected write failure")
    );
    let refusals = [
        journal.append(0, b"more").unwrap_err(),
        journal.commit().unwrap_err(),
        journal.write_snapshot(10, b"state").unwrap_err(),
        journal.compact().unwrap_err(),
    ];
    for refusal in refusals {
        assert!(
            matches!(refusal, JournalError::Poisoned { .. }),
            "{refusal}"
        );
        assert!(refusal.to_string().contains("injected write failure"));
    }
    drop(journal);

    // Half the group reached the file: its whole records come back (they were never
    // answered, so keeping them is as correct as losing them), the torn one is cut.
    let (mut journal, recovered) = open(dir.path(), small_options(SyncMode::Fsync));
    assert_eq!(recovered.records[..10], records(1, 10)[..]);
    let survivors = recovered.records.len() as u64;
    assert!((10..14).contains(&survivors), "{survivors} records");
    for record in &recovered.records[10..] {
        assert_eq!(record.payload, payload(record.lsn));
    }
    assert!(recovered.torn_tail.is_some());
    assert_eq!(journal.next_lsn(), survivors + 1);
    write_records(&mut journal, survivors + 1, survivors + 2, 2);
    drop(journal);
    let (_, recovered) = open(dir.path(), small_options(SyncMode::Fsync));
    assert_eq!(recovered.records.len() as u64, survivors + 2);
    assert_eq!(
        recovered.records[survivors as usize..],
        records(survivors + 1, survivors + 2)[..]
    );
}

#[test]
fn a_failed_fsync_poisons_the_journal_and_is_never_retried() {
    let dir = TempDir::new().unwrap();
    let (mut journal, _) = open(dir.path(), small_options(SyncMode::Fsync));
    write_records(&mut journal, 1, 10, 5);
    let syncs = journal.segment_syncs();
    journal.inject_fault(FaultPoint::Sync);
    journal.append(0, b"never answered").unwrap();
    let error = journal.commit().unwrap_err();
    assert!(
        error.to_string().contains("injected fsync failure"),
        "{error}"
    );
    assert_eq!(journal.segment_syncs(), syncs + 1);
    assert_eq!(journal.committed_lsn(), 10);
    let refusal = journal.commit().unwrap_err();
    assert!(matches!(refusal, JournalError::Poisoned { .. }));
    assert!(matches!(
        journal.append(0, b"more"),
        Err(JournalError::Poisoned { .. })
    ));
    assert_eq!(
        journal.segment_syncs(),
        syncs + 1,
        "a failed fsync was retried"
    );
    drop(journal);
    // The record was written before the sync failed: it may come back or not, and either is
    // correct, since it was never answered. What was committed comes back.
    let (_, recovered) = open(dir.path(), small_options(SyncMode::Fsync));
    assert_eq!(recovered.records[..10], records(1, 10)[..]);
    assert!(recovered.records.len() <= 11);
}

#[test]
fn groups_are_bounded_by_records_and_bytes() {
    let dir = TempDir::new().unwrap();
    let options = JournalOptions {
        max_group_records: 3,
        ..small_options(SyncMode::Fsync)
    };
    let (mut journal, _) = open(dir.path(), options);
    for _ in 0..3 {
        assert!(!journal.needs_commit());
        journal.append(0, b"small").unwrap();
    }
    assert!(journal.needs_commit());
    assert!(matches!(
        journal.append(0, b"one too many"),
        Err(JournalError::GroupFull { records: 3, .. })
    ));
    assert_eq!(journal.commit().unwrap().records, 3);
    assert!(!journal.needs_commit());

    // The byte bound: the record that crosses it is still taken, then the group is full.
    journal.append(0, &vec![1; GROUP_BYTES_MIN - 100]).unwrap();
    assert!(!journal.needs_commit());
    journal.append(0, &[2; 200]).unwrap();
    assert!(journal.needs_commit());
    assert!(matches!(
        journal.append(0, b"x"),
        Err(JournalError::GroupFull { records: 2, .. })
    ));
    journal.commit().unwrap();

    assert!(matches!(
        journal.append(0, &vec![0; MAX_PAYLOAD_BYTES + 1]),
        Err(JournalError::RecordTooLarge { .. })
    ));
    let largest = vec![7; MAX_PAYLOAD_BYTES];
    assert_eq!(journal.append(3, &largest).unwrap(), 6);
    journal.commit().unwrap();
    drop(journal);
    let (_, recovered) = open(dir.path(), small_options(SyncMode::Fsync));
    assert_eq!(recovered.records.len(), 6);
    assert_eq!(recovered.records[5].payload, largest);
}

#[test]
fn options_out_of_bounds_are_refused_by_name() {
    let dir = TempDir::new().unwrap();
    let cases = [
        (
            JournalOptions {
                segment_bytes: SEGMENT_BYTES_MIN - 1,
                ..JournalOptions::default()
            },
            "segment_bytes",
        ),
        (
            JournalOptions {
                max_group_records: 0,
                ..JournalOptions::default()
            },
            "max_group_records",
        ),
        (
            JournalOptions {
                max_group_bytes: GROUP_BYTES_MAX + 1,
                ..JournalOptions::default()
            },
            "max_group_bytes",
        ),
        (
            JournalOptions {
                segment_bytes: SEGMENT_BYTES_MIN,
                ..JournalOptions::default()
            },
            "max_group_bytes",
        ),
        (
            JournalOptions {
                commit_window: COMMIT_WINDOW_MAX * 2,
                ..JournalOptions::default()
            },
            "commit_window",
        ),
    ];
    for (options, field) in cases {
        match Journal::open(dir.path(), options) {
            Err(JournalError::Options { field: named, .. }) => assert_eq!(named, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    JournalOptions::default().validate().unwrap();
    assert_eq!("write".parse::<SyncMode>().unwrap(), SyncMode::Write);
    assert!("fdatasync".parse::<SyncMode>().is_err());
}

#[test]
fn none_mode_touches_nothing_and_keeps_nothing() {
    let dir = TempDir::new().unwrap();
    let journal_dir = dir.path().join("never-created");
    let (mut journal, _) = open(&journal_dir, small_options(SyncMode::None));
    write_records(&mut journal, 1, 100, 7);
    journal.write_snapshot(100, b"state").unwrap();
    journal.compact().unwrap();
    assert_eq!(journal.committed_lsn(), 100);
    assert!(!journal_dir.exists());
    let (journal, recovered) = open(&journal_dir, small_options(SyncMode::None));
    assert_eq!(recovered, Recovered::default());
    assert_eq!(journal.next_lsn(), 1);
}

#[test]
fn write_mode_round_trips_and_syncs_only_closed_segments() {
    let dir = TempDir::new().unwrap();
    let (mut journal, _) = open(dir.path(), small_options(SyncMode::Write));
    write_records(&mut journal, 1, 200, 10);
    let stats = {
        journal.append(0, b"x").unwrap();
        journal.commit().unwrap()
    };
    assert!(!stats.synced);
    let closed = journal.segment_paths().count() as u64 - 1;
    assert_eq!(journal.segment_syncs(), closed);
    drop(journal);
    let (_, recovered) = open(dir.path(), small_options(SyncMode::Write));
    assert_eq!(recovered.records[..200], records(1, 200)[..]);
}

#[test]
fn verify_and_dump_change_nothing_and_report_a_torn_tail() {
    let (dir, dumped) = journal_of(20);
    let last = dumped.last().unwrap();
    let length = fs::metadata(&last.segment).unwrap().len();
    let cut = length - 3;
    let file = fs::OpenOptions::new()
        .write(true)
        .open(&last.segment)
        .unwrap();
    file.set_len(cut).unwrap();
    drop(file);

    let report = verify(dir.path()).unwrap();
    assert_eq!(report.records, 19);
    let torn = report.torn_tail.clone().unwrap();
    assert_eq!(
        (torn.offset, torn.bytes_cut),
        (last.offset, cut - last.offset)
    );
    assert!(report.to_string().contains("the next start cuts it off"));
    let mut dump = read_records(dir.path()).unwrap();
    assert_eq!(dump.by_ref().count(), 19);
    assert_eq!(dump.torn_tail(), Some(&torn));
    assert_eq!(fs::metadata(&last.segment).unwrap().len(), cut);
}

#[derive(Clone, Debug)]
enum Operation {
    Append { kind: u8, length: usize },
    Commit,
    Reopen,
    Snapshot,
    Compact,
}

fn operation() -> impl Strategy<Value = Operation> {
    prop_oneof![
        8 => (any::<u8>(), 0usize..600).prop_map(|(kind, length)| Operation::Append { kind, length }),
        3 => Just(Operation::Commit),
        1 => Just(Operation::Reopen),
        1 => Just(Operation::Snapshot),
        1 => Just(Operation::Compact),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Whatever the appends, commits, snapshots, compactions and restarts, a restart gives
    /// back the newest snapshot and exactly the committed records after it; records pending
    /// at a restart are gone, and lsns go on from the last committed one.
    #[test]
    fn a_restart_gives_back_exactly_what_was_committed(
        operations in proptest::collection::vec(operation(), 1..120)
    ) {
        let dir = TempDir::new().unwrap();
        let options = JournalOptions {
            max_group_records: 5,
            ..small_options(SyncMode::Write)
        };
        let (mut journal, _) = open(dir.path(), options.clone());
        let mut committed: Vec<Record> = Vec::new();
        let mut pending: Vec<Record> = Vec::new();
        let mut snapshot: Option<(u64, Vec<u8>)> = None;
        let check = |recovered: Recovered, committed: &[Record], snapshot: &Option<(u64, Vec<u8>)>| {
            let snapshot_lsn = snapshot.as_ref().map_or(0, |(lsn, _)| *lsn);
            let expected: Vec<Record> = committed
                .iter()
                .filter(|record| record.lsn > snapshot_lsn)
                .cloned()
                .collect();
            assert_eq!(recovered.records, expected);
            assert_eq!(
                recovered.snapshot.map(|snapshot| (snapshot.lsn, snapshot.bytes)),
                snapshot.clone()
            );
            assert_eq!(recovered.torn_tail, None);
        };
        for operation in operations {
            match operation {
                Operation::Append { kind, length } => {
                    if journal.needs_commit() {
                        journal.commit().unwrap();
                        committed.append(&mut pending);
                    }
                    let lsn = (committed.len() + pending.len() + 1) as u64;
                    let payload: Vec<u8> = (0..length).map(|index| (index as u64 ^ lsn) as u8).collect();
                    prop_assert_eq!(journal.append(kind, &payload).unwrap(), lsn);
                    pending.push(Record { lsn, kind, payload });
                }
                Operation::Commit => {
                    let stats = journal.commit().unwrap();
                    prop_assert_eq!(stats.records, pending.len());
                    committed.append(&mut pending);
                }
                Operation::Reopen => {
                    drop(journal);
                    pending.clear();
                    let (reopened, recovered) = open(dir.path(), options.clone());
                    journal = reopened;
                    check(recovered, &committed, &snapshot);
                    prop_assert_eq!(journal.next_lsn(), committed.len() as u64 + 1);
                }
                Operation::Snapshot => {
                    let lsn = journal.committed_lsn();
                    let state = lsn.to_le_bytes().to_vec();
                    journal.write_snapshot(lsn, &state).unwrap();
                    snapshot = Some((lsn, state));
                }
                Operation::Compact => {
                    journal.compact().unwrap();
                }
            }
        }
        drop(journal);
        let (_, recovered) = open(dir.path(), options);
        check(recovered, &committed, &snapshot);
        verify(dir.path()).unwrap();
    }
}

#[test]
fn a_snapshot_ahead_of_the_last_record_starts_a_new_segment() {
    // Records lost to a crash that the snapshot already covers (possible only if files are
    // damaged or removed by hand): the snapshot rebuilds them, and lsns go on after it.
    let (dir, dumped) = journal_of(10);
    let (mut journal, _) = open(dir.path(), small_options(SyncMode::Fsync));
    journal.write_snapshot(10, b"state after 10").unwrap();
    drop(journal);
    let sixth = &dumped[5];
    let file = fs::OpenOptions::new()
        .write(true)
        .open(&sixth.segment)
        .unwrap();
    file.set_len(sixth.offset).unwrap();
    drop(file);
    let (mut journal, recovered) = open(dir.path(), small_options(SyncMode::Fsync));
    assert!(recovered.records.is_empty());
    assert_eq!(journal.next_lsn(), 11);
    journal.append(0, b"eleven").unwrap();
    assert!(journal.commit().unwrap().new_segment);
    drop(journal);
    let (_, recovered) = open(dir.path(), small_options(SyncMode::Fsync));
    assert_eq!(recovered.records.len(), 1);
    assert_eq!(recovered.records[0].lsn, 11);
    verify(dir.path()).unwrap();
}

mod write_ahead_log {
    use super::*;
    use crate::journal::wal::{self, Wal};

    /// Zone journals `names` (in `root/zones/<name>`, small options) and a log in
    /// `root/wal/0`, as the service's writer keeps them.
    fn world(root: &Path, names: &[&str]) -> (Vec<Journal>, Wal) {
        let options = small_options(SyncMode::Fsync);
        let journals = names
            .iter()
            .map(|name| open(&root.join("zones").join(name), options.clone()).0)
            .collect();
        let log = Wal::create(&wal::root(root).join("0"), &options).unwrap();
        (journals, log)
    }

    /// One round of the writer: `per_zone` records appended to each journal, copied into the
    /// log, the log committed, then each journal written unsynced. The records, by zone.
    fn round(
        journals: &mut [Journal],
        names: &[&str],
        log: &mut Wal,
        per_zone: u64,
    ) -> Vec<Vec<Record>> {
        let mut written = Vec::new();
        for (journal, name) in journals.iter_mut().zip(names) {
            let from = journal.next_lsn();
            let mut records = Vec::new();
            for lsn in from..from + per_zone {
                if journal.needs_commit() {
                    // As the writer does with a full group: logged, then written.
                    log.add(name, journal.pending_frames()).unwrap();
                    journal.commit_unsynced().unwrap();
                }
                let record = record(lsn);
                assert_eq!(journal.append(record.kind, &record.payload).unwrap(), lsn);
                records.push(record);
            }
            log.add(name, journal.pending_frames()).unwrap();
            written.push(records);
        }
        log.commit().unwrap();
        for journal in journals.iter_mut() {
            journal.commit_unsynced().unwrap();
        }
        written
    }

    #[test]
    fn each_zones_records_come_back_from_the_log_in_order() {
        let dir = TempDir::new().unwrap();
        let names = ["east", "west"];
        let (mut journals, mut log) = world(dir.path(), &names);
        let mut expected: Vec<Vec<Record>> = vec![Vec::new(), Vec::new()];
        for per_zone in [3, 1, 40] {
            for (zone, records) in round(&mut journals, &names, &mut log, per_zone)
                .into_iter()
                .enumerate()
            {
                expected[zone].extend(records);
            }
        }
        let tails = wal::read_tails(&wal::root(dir.path())).unwrap();
        assert_eq!(tails.len(), 2);
        assert_eq!(tails["east"], expected[0]);
        assert_eq!(tails["west"], expected[1]);
    }

    #[test]
    fn a_group_over_a_log_records_bound_is_split_and_put_back_together() {
        let dir = TempDir::new().unwrap();
        let names = ["east"];
        let options = JournalOptions {
            max_group_bytes: 8 << 20,
            segment_bytes: 64 << 20,
            max_group_records: GROUP_RECORDS_MAX,
            ..small_options(SyncMode::Fsync)
        };
        let mut journal = open(&dir.path().join("zones/east"), options.clone()).0;
        let mut log = Wal::create(&wal::root(dir.path()).join("0"), &options).unwrap();
        // About 3 MiB of frames: three log records or more.
        let big = vec![7u8; 60_000];
        let mut expected = Vec::new();
        for _ in 0..50 {
            let lsn = journal.append(3, &big).unwrap();
            expected.push(Record {
                lsn,
                kind: 3,
                payload: big.clone(),
            });
        }
        assert!(journal.pending_frames().len() > 2 * MAX_PAYLOAD_BYTES);
        log.add(names[0], journal.pending_frames()).unwrap();
        log.commit().unwrap();
        let tails = wal::read_tails(&wal::root(dir.path())).unwrap();
        assert_eq!(tails["east"], expected);
    }

    #[test]
    fn folding_adds_what_a_journal_lost_and_nothing_it_has() {
        let dir = TempDir::new().unwrap();
        let names = ["east", "west"];
        let (mut journals, mut log) = world(dir.path(), &names);
        let first = round(&mut journals, &names, &mut log, 30);
        let second = round(&mut journals, &names, &mut log, 30);
        drop(journals);
        // The machine crashed: east's unsynced writes of the second round never reached the
        // disk (its journal ends with the first round's last record); west's all did.
        let east = dir.path().join("zones/east");
        let cut = entries(&east)
            .into_iter()
            .find(|entry| entry.lsn == second[0][0].lsn)
            .unwrap();
        let file = fs::OpenOptions::new()
            .write(true)
            .open(&cut.segment)
            .unwrap();
        file.set_len(cut.offset).unwrap();
        for later in segment_files(&east)
            .into_iter()
            .filter(|path| *path > cut.segment)
        {
            fs::remove_file(later).unwrap();
        }
        let mut tails = wal::read_tails(&wal::root(dir.path())).unwrap();
        for (zone, name) in names.iter().enumerate() {
            let zone_dir = dir.path().join("zones").join(name);
            let (mut journal, recovered) = open(&zone_dir, small_options(SyncMode::Fsync));
            let folded = wal::fold(&mut journal, tails.remove(*name).unwrap()).unwrap();
            let mut all = recovered.records;
            all.extend(folded.iter().cloned());
            let mut expected = first[zone].clone();
            expected.extend(second[zone].iter().cloned());
            assert_eq!(all, expected, "zone {name}");
            if zone == 0 {
                assert_eq!(folded, second[0], "east gets back exactly what it lost");
            } else {
                assert!(folded.is_empty(), "west lost nothing");
            }
            // And it is on disk now.
            drop(journal);
            assert_eq!(
                open(&zone_dir, small_options(SyncMode::Fsync)).1.records,
                expected
            );
        }
        wal::retire(&wal::root(dir.path())).unwrap();
        assert!(!wal::root(dir.path()).exists());
        assert!(wal::read_tails(&wal::root(dir.path())).unwrap().is_empty());
    }

    #[test]
    fn a_log_that_does_not_reach_the_journals_end_is_refused() {
        let dir = TempDir::new().unwrap();
        let zone_dir = dir.path().join("zones/east");
        let (mut journal, _) = open(&zone_dir, small_options(SyncMode::Fsync));
        write_records(&mut journal, 1, 5, 5);
        let tail: Vec<Record> = (8..12).map(record).collect();
        let error = wal::fold(&mut journal, tail).unwrap_err().to_string();
        assert!(
            error.contains("continues this journal at lsn 8")
                && error.contains("ends at lsn 5")
                && error.contains("zones/east"),
            "{error}"
        );
    }

    #[test]
    fn a_checkpoint_leaves_only_later_records_to_read() {
        let dir = TempDir::new().unwrap();
        let names = ["east", "west"];
        let (mut journals, mut log) = world(dir.path(), &names);
        round(&mut journals, &names, &mut log, 20);
        for journal in &mut journals {
            journal.sync().unwrap();
        }
        log.checkpoint().unwrap();
        let after = round(&mut journals, &names, &mut log, 5);
        let tails = wal::read_tails(&wal::root(dir.path())).unwrap();
        assert_eq!(tails["east"], after[0]);
        assert_eq!(tails["west"], after[1]);
    }

    #[test]
    fn a_torn_log_tail_leaves_the_rounds_before_it() {
        let dir = TempDir::new().unwrap();
        let names = ["east", "west"];
        let (mut journals, mut log) = world(dir.path(), &names);
        let first = round(&mut journals, &names, &mut log, 10);
        round(&mut journals, &names, &mut log, 10);
        drop(log);
        // The second round's log record of west is cut in the middle.
        let log_dir = wal::root(dir.path()).join("0");
        let last = segment_files(&log_dir).pop().unwrap();
        let length = fs::metadata(&last).unwrap().len();
        fs::OpenOptions::new()
            .write(true)
            .open(&last)
            .unwrap()
            .set_len(length - 30)
            .unwrap();
        let tails = wal::read_tails(&wal::root(dir.path())).unwrap();
        // East's second-round record is intact, west's is gone.
        assert_eq!(tails["east"].len(), 20);
        assert_eq!(tails["west"], first[1]);
    }

    #[test]
    fn a_new_log_refuses_a_directory_with_records() {
        let dir = TempDir::new().unwrap();
        let names = ["east", "west"];
        let (mut journals, mut log) = world(dir.path(), &names);
        round(&mut journals, &names, &mut log, 3);
        drop(log);
        let error = Wal::create(
            &wal::root(dir.path()).join("0"),
            &small_options(SyncMode::Fsync),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("still holds 2 records"), "{error}");
    }

    #[test]
    fn compaction_detached_and_removed_elsewhere_leaves_what_compact_leaves() {
        let build = || {
            let dir = TempDir::new().unwrap();
            let (mut journal, _) = open(dir.path(), small_options(SyncMode::Fsync));
            write_records(&mut journal, 1, 100, 6);
            journal.write_snapshot(50, b"after 50").unwrap();
            write_records(&mut journal, 101, 200, 6);
            journal.write_snapshot(150, b"after 150").unwrap();
            write_records(&mut journal, 201, 230, 6);
            journal.write_snapshot(230, b"after 230").unwrap();
            (dir, journal)
        };
        let listing = |dir: &Path| {
            let mut names: Vec<String> = fs::read_dir(dir)
                .unwrap()
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        let (compacted, mut journal) = build();
        let stats = journal.compact().unwrap();
        assert!(stats.segments_removed > 0 && stats.snapshots_removed == 1);
        let (detached, mut other) = build();
        let paths = other.detach_compacted().unwrap();
        assert_eq!(
            paths.len(),
            stats.segments_removed + stats.snapshots_removed
        );
        assert!(
            paths.iter().all(|path| path.exists()),
            "nothing deleted yet"
        );
        assert_eq!(
            other.segment_paths().count(),
            journal.segment_paths().count()
        );
        let removed = remove_compacted(detached.path(), &paths).unwrap();
        assert_eq!(removed, stats);
        assert_eq!(listing(detached.path()), listing(compacted.path()));
        // And the journal goes on as one compacted in place would.
        write_records(&mut other, 231, 240, 6);
        drop(other);
        let (_, recovered) = open(detached.path(), small_options(SyncMode::Fsync));
        assert_eq!(recovered.records, records(231, 240));
    }

    #[test]
    fn a_detached_sync_covers_what_was_written_unsynced_and_a_new_segments_name() {
        let dir = TempDir::new().unwrap();
        let (mut journal, _) = open(dir.path(), small_options(SyncMode::Fsync));
        assert!(journal.detached_sync().unwrap().is_empty());
        journal.append(1, &payload(1)).unwrap();
        journal.commit_unsynced().unwrap();
        let sync = journal.detached_sync().unwrap();
        assert!(!sync.is_empty());
        assert!(format!("{sync:?}").contains(&file_name(&segment_files(dir.path())[0])));
        sync.run().unwrap();
        journal.append(1, &payload(2)).unwrap();
        journal.commit().unwrap();
        assert!(
            journal.detached_sync().unwrap().is_empty(),
            "a synced commit leaves nothing"
        );
    }

    #[test]
    fn an_unsynced_commit_is_synced_by_sync_and_by_a_segment_roll() {
        let dir = TempDir::new().unwrap();
        let (mut journal, _) = open(dir.path(), small_options(SyncMode::Fsync));
        journal.append(1, &payload(1)).unwrap();
        let stats = journal.commit_unsynced().unwrap();
        assert!(!stats.synced && stats.new_segment);
        assert_eq!(journal.segment_syncs(), 0);
        journal.sync().unwrap();
        assert_eq!(journal.segment_syncs(), 1);
        journal.sync().unwrap();
        assert_eq!(journal.segment_syncs(), 1, "nothing new to sync");
        // Unsynced groups until the segment rolls: the closed segment is synced as it closes.
        let mut lsn = 2;
        loop {
            journal.append(1, &payload(lsn)).unwrap();
            lsn += 1;
            if journal.commit_unsynced().unwrap().new_segment {
                break;
            }
        }
        assert_eq!(journal.segment_syncs(), 2);
    }
}

/// Segments made ahead of time (`JournalOptions::preallocate`, `spare.rs`): zeros that end
/// a segment's records, spares taken at the roll, freed segments reused.
mod preallocated {
    use super::*;

    fn options() -> JournalOptions {
        JournalOptions {
            preallocate: true,
            ..small_options(SyncMode::Fsync)
        }
    }

    /// Writes records `from..=to` in groups of 4, making each spare the journal asks for
    /// as soon as it asks (as a writer's background thread does, only sooner).
    fn write_with_spares(journal: &mut Journal, from: u64, to: u64) -> usize {
        let mut made = 0;
        for lsn in (from..=to).step_by(4) {
            if let Some(job) = journal.spare_job() {
                journal.add_spare(Some(job.run().unwrap()));
                made += 1;
            }
            write_records(journal, lsn, (lsn + 3).min(to), 4);
        }
        made
    }

    fn is_zeros(bytes: &[u8]) -> bool {
        bytes.iter().all(|&byte| byte == 0)
    }

    #[test]
    fn zeros_to_the_end_of_a_segment_end_its_records_in_any_segment() {
        let dir = TempDir::new().unwrap();
        let (mut journal, _) = open(dir.path(), small_options(SyncMode::Fsync));
        write_records(&mut journal, 1, 60, 4);
        drop(journal);
        // Zeros after every segment's records, the last one's included.
        for segment in segment_files(dir.path()) {
            let mut bytes = fs::read(&segment).unwrap();
            bytes.extend_from_slice(&[0; 3000]);
            fs::write(&segment, bytes).unwrap();
        }
        let report = verify(dir.path()).unwrap();
        assert!(report.torn_tail.is_none());
        let (mut journal, recovered) = open(dir.path(), small_options(SyncMode::Fsync));
        assert_eq!(recovered.records, records(1, 60));
        assert!(recovered.torn_tail.is_none());
        // Appends go where the records end, over the zeros, not after them.
        let last = segment_files(dir.path()).pop().unwrap();
        let length = fs::metadata(&last).unwrap().len();
        write_records(&mut journal, 61, 62, 2);
        assert_eq!(fs::metadata(&last).unwrap().len(), length);
        drop(journal);
        let (_, recovered) = open(dir.path(), small_options(SyncMode::Fsync));
        assert_eq!(recovered.records, records(1, 62));
    }

    #[test]
    fn a_torn_frame_before_zeros_is_still_a_torn_tail() {
        let dir = TempDir::new().unwrap();
        let (mut journal, _) = open(dir.path(), small_options(SyncMode::Fsync));
        write_records(&mut journal, 1, 60, 4);
        drop(journal);
        let last = segment_files(dir.path()).pop().unwrap();
        let end = fs::metadata(&last).unwrap().len();
        let mut bytes = fs::read(&last).unwrap();
        // Half of a frame (its length and part of its checksum), then zeros.
        bytes.extend_from_slice(&[9, 0, 0, 0, 7, 7]);
        bytes.extend_from_slice(&[0; 500]);
        fs::write(&last, bytes).unwrap();
        let (_, recovered) = open(dir.path(), small_options(SyncMode::Fsync));
        assert_eq!(recovered.records, records(1, 60));
        let torn = recovered.torn_tail.expect("a torn tail");
        assert_eq!(torn.offset, end);
        assert_eq!(fs::metadata(&last).unwrap().len(), end);
    }

    #[test]
    fn a_frame_of_zeros_never_decodes() {
        for length in [FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + 1, 4096] {
            assert!(format::decode_frame(&vec![0; length]).is_err());
        }
    }

    #[test]
    fn rolls_take_the_spares_made_ahead_and_every_record_comes_back() {
        let dir = TempDir::new().unwrap();
        let (mut journal, _) = open(dir.path(), options());
        let made = write_with_spares(&mut journal, 1, 200);
        let segments = segment_files(dir.path());
        assert!(segments.len() >= 4, "{segments:?}");
        // One spare a segment (the first asked for at once, each later one once the segment
        // before was half full), and perhaps one waiting.
        let spare = dir.path().join(spare::SPARE_FILE_NAME);
        assert_eq!(made, segments.len() + usize::from(spare.exists()));
        // Every segment was a spare: full length, zeros after its records.
        for segment in &segments {
            let bytes = fs::read(segment).unwrap();
            assert_eq!(bytes.len() as u64, options().segment_bytes, "{segment:?}");
            assert!(!is_zeros(&bytes[..SEGMENT_HEADER_BYTES]));
        }
        let tail = fs::read(segments.last().unwrap()).unwrap();
        assert!(is_zeros(&tail[tail.len() - 100..]));
        drop(journal);
        let (mut journal, recovered) = open(dir.path(), options());
        assert_eq!(recovered.records, records(1, 200));
        assert!(recovered.torn_tail.is_none());
        assert!(!spare.exists(), "a spare no roll took is removed at open");
        write_with_spares(&mut journal, 201, 260);
        drop(journal);
        let (_, recovered) = open(dir.path(), options());
        assert_eq!(recovered.records, records(1, 260));
    }

    #[test]
    fn a_segment_compaction_frees_is_reused_with_nothing_of_it_left() {
        let dir = TempDir::new().unwrap();
        let (mut journal, _) = open(dir.path(), options());
        write_with_spares(&mut journal, 1, 140);
        journal.write_snapshot(130, b"after 130").unwrap();
        write_with_spares(&mut journal, 141, 200);
        journal.write_snapshot(190, b"after 190").unwrap();
        let before = segment_files(dir.path());
        let paths = journal.detach_compacted().unwrap();
        let freed = before.len() - journal.segment_paths().count();
        assert!(freed >= 2, "{before:?}");
        // All but the newest freed segment are to delete; that one is kept for reuse.
        let kept = before[freed - 1].clone();
        let deleted: Vec<&PathBuf> = paths.iter().filter(|path| before.contains(path)).collect();
        assert_eq!(deleted, before[..freed - 1].iter().collect::<Vec<_>>());
        remove_compacted(dir.path(), &paths).unwrap();
        assert!(kept.exists());
        // Once a roll takes the spare waiting, the next one is the freed segment.
        let job = loop {
            if let Some(job) = journal.spare_job() {
                break job;
            }
            let lsn = journal.next_lsn();
            write_records(&mut journal, lsn, lsn, 1);
        };
        assert!(job.recycles());
        let spare = job.run().unwrap();
        assert!(!kept.exists());
        let bytes = fs::read(&spare).unwrap();
        assert_eq!(bytes.len() as u64, options().segment_bytes);
        assert!(is_zeros(&bytes), "nothing of the old segment is left");
        journal.add_spare(Some(spare));
        let from = journal.next_lsn();
        write_with_spares(&mut journal, from, from + 80);
        drop(journal);
        let (_, recovered) = open(dir.path(), options());
        assert_eq!(recovered.records, records(191, from + 80));
        assert!(recovered.torn_tail.is_none());
    }

    #[test]
    fn a_crash_between_a_spares_rename_and_its_first_group_loses_nothing_answered() {
        let dir = TempDir::new().unwrap();
        let (mut journal, _) = open(dir.path(), options());
        let mut lsn = 0;
        while !dir.path().join(spare::SPARE_FILE_NAME).exists() {
            lsn += 1;
            write_with_spares(&mut journal, lsn, lsn);
        }
        drop(journal);
        // The roll renamed the spare to the next segment's name; the crash came before its
        // header and group were written: a segment of zeros.
        let next = dir.path().join(segment_file_name(lsn + 1));
        fs::rename(dir.path().join(spare::SPARE_FILE_NAME), &next).unwrap();
        let (mut journal, recovered) = open(dir.path(), options());
        assert_eq!(recovered.records, records(1, lsn));
        assert!(recovered.torn_tail.unwrap().segment_removed);
        assert!(!next.exists());
        write_with_spares(&mut journal, lsn + 1, lsn + 20);
        drop(journal);
        let (_, recovered) = open(dir.path(), options());
        assert_eq!(recovered.records, records(1, lsn + 20));
    }

    #[test]
    fn a_deletion_a_step_at_a_time_leaves_nothing_and_one_a_crash_cut_short_goes_at_open() {
        let dir = TempDir::new().unwrap();
        let (mut journal, _) = open(dir.path(), small_options(SyncMode::Fsync));
        write_records(&mut journal, 1, 60, 4);
        drop(journal);
        // A 9 MiB file beside the journal: three steps.
        let big = dir.path().join("journal-00000000000000000999.seg");
        fs::write(&big, vec![7u8; 9 << 20]).unwrap();
        let removed = paced::remove(&big).unwrap();
        assert_eq!((removed.freed, removed.held), (9 << 20, 0));
        assert!(!big.exists());
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| file_name(&entry.unwrap().path()))
            .collect();
        assert!(
            names.iter().all(|name| !name.ends_with(".removing")),
            "{names:?}"
        );
        // A crash during a deletion leaves the renamed file: the next open removes it.
        let cut = dir.path().join(format!(
            "snapshot-00000000000000000010.snap{}",
            format::REMOVING_SUFFIX
        ));
        fs::write(&cut, b"half").unwrap();
        let (_, recovered) = open(dir.path(), small_options(SyncMode::Fsync));
        assert_eq!(recovered.records, records(1, 60));
        assert!(!cut.exists());
    }

    #[test]
    fn a_file_a_reader_holds_is_renamed_but_left_whole_until_the_reader_lets_go() {
        use std::os::unix::fs::FileExt;
        let dir = TempDir::new().unwrap();
        // A snapshot a cold store adopted: the journal's compaction deletes it.
        let big = dir.path().join("snapshot-00000000000000000500.snap");
        fs::write(&big, vec![7u8; 9 << 20]).unwrap();
        let reader = std::sync::Arc::new(fs::File::open(&big).unwrap());
        paced::hold(&reader);
        let removed = paced::remove(&big).unwrap();
        assert_eq!(
            (removed.freed, removed.held),
            (0, 9 << 20),
            "freed only later"
        );
        assert!(!big.exists(), "gone from the journal's names at once");
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert_eq!(
            reader.metadata().unwrap().len(),
            9 << 20,
            "not cut under its reader"
        );
        let mut last = [0u8; 1];
        reader.read_exact_at(&mut last, (9 << 20) - 1).unwrap();
        assert_eq!(last, [7]);
        // The reader lets go: the deleter thread cuts and unlinks it.
        drop(reader);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while fs::read_dir(dir.path()).unwrap().count() > 0 {
            assert!(std::time::Instant::now() < deadline, "the held file stayed");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    #[test]
    fn files_deleted_later_go_one_after_another_on_one_thread() {
        let dir = TempDir::new().unwrap();
        let files: Vec<PathBuf> = (0..3)
            .map(|number| {
                let path = dir.path().join(format!("{number}.cold"));
                fs::write(&path, vec![7u8; 5 << 20]).unwrap();
                path
            })
            .collect();
        for path in &files {
            paced::remove_later(path.clone());
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while fs::read_dir(dir.path()).unwrap().count() > 0 {
            assert!(std::time::Instant::now() < deadline, "not deleted");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let deleters = fs::read_dir("/proc/self/task")
            .unwrap()
            .filter(|task| {
                let comm = task.as_ref().unwrap().path().join("comm");
                fs::read_to_string(comm).is_ok_and(|name| name.trim() == "paced-remove")
            })
            .count();
        assert_eq!(deleters, 1, "one deleter thread for the process");
    }

    #[test]
    fn a_spare_that_cannot_be_made_ends_the_asking_not_the_journal() {
        let dir = TempDir::new().unwrap();
        let (mut journal, _) = open(dir.path(), options());
        // A new journal asks at once: its first segment would be appended to.
        let job = journal.spare_job().expect("a spare for the first segment");
        assert!(journal.spare_job().is_none(), "one at a time");
        drop(job);
        journal.add_spare(None);
        let lsn = journal.next_lsn();
        write_records(&mut journal, lsn, lsn + 60, 4);
        assert!(journal.spare_job().is_none(), "never again");
        drop(journal);
        let (_, recovered) = open(dir.path(), options());
        assert_eq!(recovered.records, records(1, lsn + 60));
    }

    #[test]
    fn a_segment_that_grows_by_appends_is_left_once_a_spare_is_ready() {
        let dir = TempDir::new().unwrap();
        let (mut journal, _) = open(dir.path(), options());
        let job = journal.spare_job().expect("asked for at once");
        // The spare is still being made: the first groups go to a segment appended to.
        write_records(&mut journal, 1, 8, 4);
        let first = segment_files(dir.path());
        assert_eq!(first.len(), 1);
        let appended = fs::metadata(&first[0]).unwrap().len();
        assert!(appended < options().segment_bytes / 4, "{appended}");
        journal.add_spare(Some(job.run().unwrap()));
        // The next group starts the spare, long before the first segment is full.
        write_records(&mut journal, 9, 12, 4);
        let segments = segment_files(dir.path());
        assert_eq!(segments.len(), 2, "{segments:?}");
        assert_eq!(fs::metadata(&segments[0]).unwrap().len(), appended);
        assert_eq!(
            fs::metadata(&segments[1]).unwrap().len(),
            options().segment_bytes
        );
        assert!(
            journal.spare_job().is_none(),
            "the next at half of the spare"
        );
        drop(journal);
        // Reopened, the segment made ahead is known as one (zeros after its records): no
        // spare is asked for before it is half full, and appends go on in it.
        let (mut journal, recovered) = open(dir.path(), options());
        assert_eq!(recovered.records, records(1, 12));
        assert!(journal.spare_job().is_none());
        write_records(&mut journal, 13, 16, 4);
        assert_eq!(segment_files(dir.path()).len(), 2);
        drop(journal);
        // A journal reopened on an appended segment asks at once, and leaves it for the spare.
        let dir = TempDir::new().unwrap();
        let (mut journal, _) = open(dir.path(), small_options(SyncMode::Fsync));
        write_records(&mut journal, 1, 8, 4);
        drop(journal);
        let (mut journal, _) = open(dir.path(), options());
        let job = journal
            .spare_job()
            .expect("the active segment grows by appends");
        journal.add_spare(Some(job.run().unwrap()));
        write_records(&mut journal, 9, 12, 4);
        assert_eq!(segment_files(dir.path()).len(), 2);
        drop(journal);
        let (_, recovered) = open(dir.path(), options());
        assert_eq!(recovered.records, records(1, 12));
    }

    #[test]
    fn a_spare_made_at_once_takes_the_first_group_and_is_zeros_to_its_end() {
        let dir = TempDir::new().unwrap();
        let (mut journal, _) = open(dir.path(), options());
        // Made before any commit (as the service does for its log at start).
        let spare = journal.spare_job().expect("a new journal asks").run_now();
        let spare = spare.unwrap();
        assert_eq!(fs::metadata(&spare).unwrap().len(), options().segment_bytes);
        assert!(is_zeros(&fs::read(&spare).unwrap()));
        journal.add_spare(Some(spare));
        write_records(&mut journal, 1, 8, 4);
        // The first group went into it: one segment, of full length, never appended to.
        let segments = segment_files(dir.path());
        assert_eq!(segments.len(), 1);
        assert_eq!(
            fs::metadata(&segments[0]).unwrap().len(),
            options().segment_bytes
        );
        assert!(journal.spare_job().is_none(), "not before half");
        drop(journal);
        let (_, recovered) = open(dir.path(), options());
        assert_eq!(recovered.records, records(1, 8));
    }

    #[test]
    fn a_journal_that_stops_preallocating_asks_for_no_spare() {
        let dir = TempDir::new().unwrap();
        let (mut journal, _) = open(dir.path(), options());
        journal.stop_preallocating();
        write_records(&mut journal, 1, 200, 4);
        assert!(journal.spare_job().is_none());
        let segments = segment_files(dir.path());
        assert!(segments.len() >= 4, "{segments:?}");
        assert!(!dir.path().join(spare::SPARE_FILE_NAME).exists());
    }
}

mod streamed_snapshots {
    use super::snapshot::{SnapshotWriter, load_snapshot};
    use super::*;

    /// `length` bytes that differ from part to part (`seed`) and within one.
    fn part(seed: usize, length: usize) -> Vec<u8> {
        (0..length)
            .map(|at| (at * 31 + seed * 7 + at / 251) as u8)
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]

        /// Parts of any size (pieces cut across them, several pieces, none), with the gap
        /// anywhere or nowhere: the file reads back as the payload made whole, with the header
        /// a whole payload's write gives it.
        #[test]
        fn a_snapshot_written_as_it_is_made_reads_back_as_the_whole_payload(
            sizes in proptest::collection::vec(0usize..300_000, 0..8),
            gap_after in 0usize..10,
            fill in any::<u32>(),
        ) {
            let dir = TempDir::new().unwrap();
            let mut writer = SnapshotWriter::create(dir.path(), 77).unwrap();
            let mut whole = Vec::new();
            let mut gap = None;
            for (n, size) in sizes.iter().enumerate() {
                if n == gap_after {
                    gap = Some(whole.len());
                    writer.gap(4).unwrap();
                    whole.extend_from_slice(&fill.to_le_bytes());
                }
                let bytes = part(n, *size);
                writer.write(&bytes).unwrap();
                whole.extend_from_slice(&bytes);
            }
            prop_assert_eq!(writer.len(), whole.len() as u64);
            let fill = fill.to_le_bytes();
            let path = writer.finish(if gap.is_some() { &fill[..] } else { &[] }).unwrap();
            prop_assert_eq!(file_name(&path), format::snapshot_file_name(77));
            let on_disk = fs::read(&path).unwrap();
            prop_assert_eq!(
                &on_disk[..SNAPSHOT_HEADER_BYTES],
                &format::encode_snapshot_header(77, &whole)[..]
            );
            let loaded = load_snapshot(&path, 77).unwrap();
            prop_assert!(loaded.bytes == whole, "the payload read back differs");
            // Nothing else is left in the directory: no temporary name.
            prop_assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        }
    }

    #[test]
    fn an_unfinished_snapshot_leaves_nothing() {
        let dir = TempDir::new().unwrap();
        let mut writer = SnapshotWriter::create(dir.path(), 5).unwrap();
        writer.write(&part(1, 700_000)).unwrap();
        // Pieces of it went to the file under its temporary name.
        let temporary = dir
            .path()
            .join(format!("{}.tmp", format::snapshot_file_name(5)));
        assert!(fs::metadata(&temporary).unwrap().len() >= 512 << 10);
        drop(writer);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_journal_restores_a_snapshot_written_as_it_was_made() {
        let dir = TempDir::new().unwrap();
        let (mut journal, _) = open(dir.path(), small_options(SyncMode::Fsync));
        write_records(&mut journal, 1, 40, 10);
        assert!(journal.prepare_snapshot(40).unwrap());
        let mut writer = SnapshotWriter::create(dir.path(), 40).unwrap();
        writer.write(b"state of ").unwrap();
        writer.gap(4).unwrap();
        writer.write(b" records").unwrap();
        let path = writer.finish(b"0040").unwrap();
        journal.add_snapshot(40, path).unwrap();
        write_records(&mut journal, 41, 45, 5);
        drop(journal);
        let (_, recovered) = open(dir.path(), small_options(SyncMode::Fsync));
        let snapshot = recovered.snapshot.unwrap();
        assert_eq!(
            (snapshot.lsn, &snapshot.bytes[..]),
            (40, &b"state of 0040 records"[..])
        );
        let lsns: Vec<u64> = recovered.records.iter().map(|record| record.lsn).collect();
        assert_eq!(lsns, (41..=45).collect::<Vec<_>>());
    }
}
