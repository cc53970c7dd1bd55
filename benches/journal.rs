//! The journal alone: appending a group of records of about 200 bytes (the size of an
//! encoded decision) and committing it, for groups of 1, 64 and 1024 records, in each sync
//! mode. `none` is the cost of framing and checking alone; `write` adds one write into the
//! page cache per group; `fsync` adds one `fdatasync` per group, the cost group commit
//! spreads over the group. Elements are records, so the throughput is records per second.
//!
//! The journal lives in a temporary directory on the disk that holds the system's temporary
//! directory (`TMPDIR` moves it): the fsync numbers are that device's. Every 256 MiB
//! written, the journal is dropped and started afresh, outside the timed part, so the disk
//! does not fill.
//!
//! ```sh
//! cargo bench --bench journal
//! ```

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use order_router::journal::{Journal, JournalOptions, SyncMode};
use std::path::Path;
use std::time::{Duration, Instant};

const PAYLOAD_BYTES: usize = 200;
const GROUP_SIZES: [usize; 3] = [1, 64, 1024];
const RESTART_AFTER_BYTES: u64 = 256 << 20;

fn fresh_journal(root: &Path, generation: &mut u32, mode: SyncMode) -> Journal {
    *generation += 1;
    let dir = root.join(format!("journal-{generation}"));
    let previous = root.join(format!("journal-{}", *generation - 1));
    // The previous generation's files go before the next one starts.
    let _ = std::fs::remove_dir_all(previous);
    let options = JournalOptions {
        mode,
        ..JournalOptions::default()
    };
    let (journal, recovered) = Journal::open(&dir, options).expect("a fresh journal opens");
    assert!(recovered.records.is_empty());
    journal
}

fn bench_commit(criterion: &mut Criterion) {
    let root = tempfile::tempdir().expect("a temporary directory");
    let payload: Vec<u8> = (0..PAYLOAD_BYTES).map(|index| index as u8).collect();
    // Criterion calls a benchmark's closure once per sample: each call starts a journal in
    // a directory of its own, numbered across the whole run.
    let mut generation = 0;
    for mode in [SyncMode::None, SyncMode::Write, SyncMode::Fsync] {
        let mut group = criterion.benchmark_group(format!("journal_commit_{}", mode.name()));
        if mode == SyncMode::Fsync {
            // A flush per iteration: fewer, longer samples keep the run within minutes.
            group.sample_size(20);
            group.measurement_time(Duration::from_secs(8));
        }
        for records in GROUP_SIZES {
            group.throughput(Throughput::Elements(records as u64));
            group.bench_function(format!("{records}_records"), |bencher| {
                let mut journal = fresh_journal(root.path(), &mut generation, mode);
                let mut written = 0;
                bencher.iter_custom(|iterations| {
                    let mut elapsed = Duration::ZERO;
                    for _ in 0..iterations {
                        if written > RESTART_AFTER_BYTES {
                            journal = fresh_journal(root.path(), &mut generation, mode);
                            written = 0;
                        }
                        let start = Instant::now();
                        for _ in 0..records {
                            journal.append(1, &payload).expect("the group has room");
                        }
                        let stats = journal.commit().expect("the commit succeeds");
                        elapsed += start.elapsed();
                        written += stats.bytes as u64;
                    }
                    elapsed
                });
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench_commit);
criterion_main!(benches);
