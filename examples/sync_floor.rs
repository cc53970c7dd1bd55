//! What the disk alone allows a durable answer (issue 20): a log-like writer with no routing,
//! no HTTP and no other thread's work. Records of `--record-bytes` arrive `--per-ms` at a time
//! every millisecond (20 of 200 bytes: the router's write-ahead log at 20k orders/s) and are
//! appended to a file written with zeros ahead (as the router's log segments are). Prints the
//! latency of a record from its arrival to the return of a sync that covers it.
//!
//! - `serial`: the router's writer: one thread writes what has arrived, syncs, and repeats.
//! - `pipelined`: the same writes, each followed by an `fdatasync` on one of two sync threads
//!   (two in flight at most); a record is durable once a sync begun after its write returns.
//!   (A sync waits for the pages earlier syncs have under write-back, then flushes the
//!   device's cache, so a later sync's return covers everything written before it.)
//!
//! ```sh
//! cargo build --release --examples
//! target/release/examples/sync_floor serial --seconds 20 --dir /work/synctest
//! target/release/examples/sync_floor pipelined --seconds 20 --dir /work/synctest
//! ```

use clap::{Parser, ValueEnum};
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    Serial,
    Pipelined,
    /// The file opened `O_DIRECT | O_DSYNC`: each round one write of the 4 KiB blocks it
    /// touches (the last partial block written again, with what it held, next round), durable
    /// when the write returns: no page cache, no write-back, no separate flush call.
    Direct,
}

#[derive(Parser)]
struct Args {
    mode: Mode,
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// Where the test file goes (deleted at the end): on the disk under test.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    #[arg(long, default_value_t = 200)]
    record_bytes: usize,
    #[arg(long, default_value_t = 20)]
    per_ms: usize,
}

/// Arrival times of records not yet written, and whether the arrivals have ended.
type Arrivals = Arc<(Mutex<(Vec<Instant>, bool)>, Condvar)>;

/// Records written and not yet durable: (end offset, their arrival times); syncs in flight.
type Written = Arc<(Mutex<(VecDeque<(u64, Vec<Instant>)>, usize)>, Condvar)>;

const FILE_BYTES: u64 = 256 << 20;

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.dir)?;
    let path = args.dir.join("sync_floor.log");
    let file = Arc::new(
        OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)?,
    );
    let zeros = vec![0u8; 1 << 20];
    for mib in 0..FILE_BYTES >> 20 {
        file.write_at(&zeros, mib << 20)?;
    }
    file.sync_data()?;
    let arrivals: Arrivals = Arc::default();
    let producer = {
        let (arrivals, seconds, per_ms) = (arrivals.clone(), args.seconds, args.per_ms);
        std::thread::spawn(move || arrive(&arrivals, seconds, per_ms))
    };
    let record = vec![b'x'; args.record_bytes];
    let latencies = match args.mode {
        Mode::Serial => serial(&file, &arrivals, &record)?,
        Mode::Pipelined => pipelined(&file, &arrivals, &record)?,
        Mode::Direct => direct(&path, &arrivals, &record)?,
    };
    let cpu = cpu_seconds();
    producer.join().expect("the producer does not panic");
    std::fs::remove_file(&path)?;
    report(args.mode, latencies);
    println!("process CPU: {cpu:.2} s (user and system, every thread)");
    Ok(())
}

/// User and system CPU of the process so far.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let seconds = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

const BLOCK: usize = 4096;

/// A buffer aligned for `O_DIRECT`.
#[repr(C, align(4096))]
struct Block([u8; BLOCK]);

fn direct(path: &std::path::Path, arrivals: &Arrivals, record: &[u8]) -> std::io::Result<Vec<f64>> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT | libc::O_DSYNC)
        .open(path)?;
    // The blocks from the current partial one, grown to whatever a round brings; `tail`
    // bytes of them are filled.
    let mut blocks: Vec<Block> = vec![Block([0; BLOCK])];
    let (mut block_offset, mut tail, mut latencies) = (0u64, 0usize, Vec::new());
    while let Some(batch) = take(arrivals) {
        let end = tail + batch.len() * record.len();
        blocks.resize_with(end.div_ceil(BLOCK).max(blocks.len()), || Block([0; BLOCK]));
        // SAFETY: `blocks` is contiguous, aligned blocks of BLOCK bytes, none of them shared.
        let bytes = unsafe {
            std::slice::from_raw_parts_mut(blocks.as_mut_ptr().cast::<u8>(), blocks.len() * BLOCK)
        };
        for at in (tail..end).step_by(record.len()) {
            bytes[at..at + record.len()].copy_from_slice(record);
        }
        tail = end;
        file.write_all_at(&bytes[..tail.div_ceil(BLOCK) * BLOCK], block_offset)?;
        let now = Instant::now();
        latencies.extend(batch.iter().map(|at| (now - *at).as_secs_f64()));
        let full = tail / BLOCK;
        if full > 0 {
            blocks[0].0 = blocks[full].0;
            block_offset += (full * BLOCK) as u64;
            tail %= BLOCK;
        }
    }
    Ok(latencies)
}

/// `per_ms` records every millisecond for `seconds`, each stamped with its due time.
fn arrive(arrivals: &Arrivals, seconds: f64, per_ms: usize) {
    let start = Instant::now();
    let mut tick = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        tick += 1;
        let due = start + Duration::from_millis(tick);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let (lock, ready) = &**arrivals;
        let mut waiting = lock.lock().expect("no panics under the lock");
        waiting.0.extend(std::iter::repeat_n(due, per_ms));
        ready.notify_all();
    }
    let (lock, ready) = &**arrivals;
    lock.lock().expect("no panics under the lock").1 = true;
    ready.notify_all();
}

/// Every record arrived so far (waiting for one), or `None` once they have all been taken.
fn take(arrivals: &Arrivals) -> Option<Vec<Instant>> {
    let (lock, ready) = &**arrivals;
    let mut waiting = lock.lock().expect("no panics under the lock");
    while waiting.0.is_empty() && !waiting.1 {
        waiting = ready.wait(waiting).expect("no panics under the lock");
    }
    (!waiting.0.is_empty()).then(|| std::mem::take(&mut waiting.0))
}

fn serial(file: &File, arrivals: &Arrivals, record: &[u8]) -> std::io::Result<Vec<f64>> {
    let (mut offset, mut latencies) = (0u64, Vec::new());
    while let Some(batch) = take(arrivals) {
        let bytes = record.repeat(batch.len());
        file.write_at(&bytes, offset)?;
        offset += bytes.len() as u64;
        file.sync_data()?;
        let now = Instant::now();
        latencies.extend(batch.iter().map(|at| (now - *at).as_secs_f64()));
    }
    Ok(latencies)
}

fn pipelined(file: &Arc<File>, arrivals: &Arrivals, record: &[u8]) -> std::io::Result<Vec<f64>> {
    let written: Written = Arc::default();
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let (requests, received) = mpsc::channel::<u64>();
    let received = Arc::new(Mutex::new(received));
    let syncers: Vec<_> = (0..2)
        .map(|_| {
            let (file, written, received, latencies) = (
                file.clone(),
                written.clone(),
                received.clone(),
                latencies.clone(),
            );
            std::thread::spawn(move || -> std::io::Result<()> {
                loop {
                    let request = received.lock().expect("no panics under the lock").recv();
                    let Ok(upto) = request else {
                        return Ok(());
                    };
                    file.sync_data()?;
                    let now = Instant::now();
                    let (lock, done) = &*written;
                    let mut pending = lock.lock().expect("no panics under the lock");
                    let mut latencies = latencies.lock().expect("no panics under the lock");
                    while pending.0.front().is_some_and(|(end, _)| *end <= upto) {
                        let (_, batch) = pending.0.pop_front().expect("checked");
                        latencies.extend(batch.iter().map(|at| (now - *at).as_secs_f64()));
                    }
                    pending.1 -= 1;
                    done.notify_all();
                }
            })
        })
        .collect();
    let mut offset = 0u64;
    while let Some(batch) = take(arrivals) {
        let bytes = record.repeat(batch.len());
        file.write_at(&bytes, offset)?;
        offset += bytes.len() as u64;
        let (lock, done) = &*written;
        let mut pending = lock.lock().expect("no panics under the lock");
        pending.0.push_back((offset, batch));
        while pending.1 >= 2 {
            pending = done.wait(pending).expect("no panics under the lock");
        }
        pending.1 += 1;
        drop(pending);
        requests.send(offset).expect("the sync threads run");
    }
    drop(requests);
    for syncer in syncers {
        syncer.join().expect("the sync threads do not panic")?;
    }
    let latencies = std::mem::take(&mut *latencies.lock().expect("no panics under the lock"));
    Ok(latencies)
}

fn report(mode: Mode, mut latencies: Vec<f64>) {
    latencies.sort_by(f64::total_cmp);
    let count = latencies.len();
    if count == 0 {
        println!("{mode:?}: no records");
        return;
    }
    let at = |quantile: f64| latencies[((quantile * count as f64) as usize).min(count - 1)] * 1e3;
    let over = latencies
        .iter()
        .filter(|latency| **latency > 0.0015)
        .count();
    println!(
        "{mode:?}: {count} records, p50 {:.3} p99 {:.3} p99.9 {:.3} max {:.2} ms, over 1.5 ms {over}",
        at(0.5),
        at(0.99),
        at(0.999),
        latencies[count - 1] * 1e3
    );
}
