//! `loadtest run`: a scenario against a server, open loop.
//!
//! A scheduler thread computes, every tick, how many orders are due by now from the phase's
//! rate integral and gives each its intended send time (interpolated inside the tick, so
//! times are exact to well under the tick), whatever the server does. The orders go to the
//! connections' outboxes; latency is measured from the intended time, so a stalled server
//! cannot hide its stall by slowing the tool down (coordinated omission).

use crate::connection::{Shared, request_connection, stream_connection};
use crate::generate::Generator;
use crate::outbox::{Outbox, Queued};
use crate::report::{Report, build_report};
use crate::scenario::{Scenario, Transport};
use crate::stats::{Collector, Count, Tally};
use crate::target::Target;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

pub struct RunOptions {
    pub target: Target,
    pub scenario: Scenario,
    /// Every phase's rate multiplied by this (fit a scenario to a machine).
    pub rate_scale: f64,
    /// Check at the end that the stock reserved during the run equals the decisions' shipments.
    pub check_stock: bool,
    /// Prefix of order ids; default: `LT` and the run's start time, so runs do not collide.
    pub run_id: Option<String>,
    /// How often the scheduler wakes.
    pub tick: Duration,
    /// Draw a live progress line (on a terminal).
    pub progress: bool,
    pub report: Option<PathBuf>,
    pub chart: Option<PathBuf>,
}

/// The outcome of a run: its report, and whether every check passed.
pub struct RunOutcome {
    pub report: Report,
}

impl RunOutcome {
    pub fn passed(&self) -> bool {
        self.report.passed()
    }
}

pub async fn run(options: RunOptions) -> anyhow::Result<RunOutcome> {
    let scenario = options.scenario.clone();
    let known = options.target.learn().await?;
    let run_id = options.run_id.clone().unwrap_or_else(|| {
        let millis = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis());
        format!("LT{millis:x}")
    });
    let mut generator = Generator::new(&scenario.mix, &known, scenario.seed, run_id.clone())?;
    let notes = generator.notes.clone();
    for note in &notes {
        eprintln!("loadtest: {note}");
    }
    let reserved_before = if options.check_stock {
        Some(options.target.reserved().await?)
    } else {
        None
    };
    let load = &scenario.load;
    let max_wait = Some(Duration::from_millis(load.max_queue_ms));
    let outboxes: Vec<Arc<Outbox>> = match load.transport {
        Transport::Streams => (0..load.connections)
            .map(|_| Arc::new(Outbox::new(max_wait, 1)))
            .collect(),
        Transport::Requests => vec![Arc::new(Outbox::new(max_wait, load.connections))],
    };
    let start = Instant::now() + Duration::from_millis(200);
    let shared = Arc::new(Shared {
        target: options.target.clone(),
        start,
        collector: Mutex::new(Collector::new(scenario.phases.len())),
        chunk_orders: load.chunk_orders,
        retries_after_429: load.retries_after_429,
        send_buffer_bytes: load.send_buffer_bytes,
        resends: (scenario.mix.retry_share > 0.0).then(|| generator.resends.clone()),
        check_stock: options.check_stock,
        shipped: Mutex::new(HashMap::new()),
        abandon: AtomicBool::new(false),
        abandoned: tokio::sync::Notify::new(),
    });
    let mut connections = Vec::new();
    for index in 0..load.connections {
        let shared = shared.clone();
        connections.push(match load.transport {
            Transport::Streams => tokio::spawn(stream_connection(shared, outboxes[index].clone())),
            Transport::Requests => tokio::spawn(request_connection(shared, outboxes[0].clone())),
        });
    }
    let scheduling = Arc::new(AtomicBool::new(true));
    let memory = tokio::spawn(sample_memory(shared.clone(), scheduling.clone()));
    let progress = options.progress.then(|| {
        crate::report::progress(
            shared.clone(),
            scenario.clone(),
            options.rate_scale,
            outboxes.clone(),
            scheduling.clone(),
        )
    });

    // The scheduler has a thread of its own: its ticks must not wait behind answer parsing.
    let scheduler = {
        let shared = shared.clone();
        let outboxes = outboxes.clone();
        let scenario = scenario.clone();
        let rate_scale = options.rate_scale;
        let tick = options.tick;
        std::thread::Builder::new()
            .name("scheduler".into())
            .spawn(move || {
                schedule(
                    &shared,
                    &scenario,
                    rate_scale,
                    tick,
                    &mut generator,
                    &outboxes,
                )
            })?
    };
    let scheduler_done = tokio::task::spawn_blocking(move || scheduler.join());
    if scheduler_done.await?.is_err() {
        anyhow::bail!("the scheduler thread panicked");
    }
    for outbox in &outboxes {
        outbox.close();
    }
    let load_ended = Instant::now();

    // Drain: wait for the answers of what was sent, at most `drain_timeout_s`.
    let drain = Duration::from_secs(load.drain_timeout_s);
    let aborts: Vec<tokio::task::AbortHandle> =
        connections.iter().map(|task| task.abort_handle()).collect();
    let mut all = futures_util::future::join_all(connections);
    if tokio::time::timeout(drain, &mut all).await.is_err() {
        // Every wait of a connection races this: they count what is unanswered as lost
        // and what is unsent as shed, and end.
        shared.abandon.store(true, Ordering::Release);
        shared.abandoned.notify_waiters();
        if tokio::time::timeout(Duration::from_secs(5), &mut all)
            .await
            .is_err()
        {
            for task in &aborts {
                task.abort();
            }
        }
    }
    let ended = Instant::now();
    scheduling.store(false, Ordering::Release);
    // The sampler's request has its own timeout; it ends within it.
    let _ = memory.await;
    if let Some(progress) = progress {
        let _ = progress.join();
    }
    // A final memory sample, after the drain.
    let (resident, peak) = shared.target.memory().await;
    shared
        .collector
        .lock()
        .expect("no panics while the collector is held")
        .sample_memory(shared.second(ended), resident, peak);

    let stock = match reserved_before {
        Some(before) => {
            let after = shared.target.reserved().await?;
            let shipped = shared.shipped.lock().expect("no panics while held").clone();
            Some(compare_stock(&before, &after, &shipped))
        }
        None => None,
    };
    let collector = std::mem::replace(
        &mut *shared
            .collector
            .lock()
            .expect("no panics while the collector is held"),
        Collector::new(0),
    );
    let report = build_report(
        &scenario,
        options.rate_scale,
        &options.target,
        &run_id,
        &collector,
        load_ended.saturating_duration_since(start),
        ended.saturating_duration_since(start),
        stock,
        notes,
    );
    if let Some(path) = &options.report {
        std::fs::write(path, serde_json::to_vec_pretty(&report.json)?).map_err(|error| {
            anyhow::anyhow!("cannot write the report {}: {error}", path.display())
        })?;
    }
    if let Some(path) = &options.chart {
        crate::report::chart(&report, path)?;
    }
    Ok(RunOutcome { report })
}

/// The scheduler: orders due by now, with their intended times, into the outboxes.
fn schedule(
    shared: &Shared,
    scenario: &Scenario,
    rate_scale: f64,
    tick: Duration,
    generator: &mut Generator,
    outboxes: &[Arc<Outbox>],
) {
    let mut tally = Tally::default();
    let mut shed = Vec::new();
    let mut batches: Vec<Vec<Queued>> = outboxes.iter().map(|_| Vec::new()).collect();
    let mut next_outbox = 0usize;
    let mut phase_start = shared.start;
    if let Some(wait) = shared.start.checked_duration_since(Instant::now()) {
        std::thread::sleep(wait);
    }
    for (index, phase) in scenario.phases.iter().enumerate() {
        let phase_index = index as u8;
        // Orders of the phase made so far, and the integral at the last tick.
        let mut made = 0u64;
        let (mut last_t, mut last_n) = (0.0f64, 0.0f64);
        loop {
            let now = Instant::now();
            let t = now
                .saturating_duration_since(phase_start)
                .as_secs_f64()
                .min(phase.duration_s);
            let n = phase.orders_by(t) * rate_scale;
            let due = n.floor() as u64;
            let wall = SystemTime::now();
            while made < due {
                made += 1;
                // Interpolated inside the tick: the rate barely moves in one.
                let fraction = if n > last_n {
                    (made as f64 - last_n) / (n - last_n)
                } else {
                    1.0
                };
                let at = last_t + fraction.clamp(0.0, 1.0) * (t - last_t);
                let intended = phase_start + Duration::from_secs_f64(at);
                tally.count(Count::Offered, shared.second(intended), phase_index, 1);
                let line = generator.next_line(wall);
                batches[next_outbox].push(Queued {
                    line,
                    intended,
                    phase: phase_index,
                    refusals: 0,
                });
                next_outbox = (next_outbox + 1) % outboxes.len();
            }
            (last_t, last_n) = (t, n);
            for (outbox, batch) in outboxes.iter().zip(batches.iter_mut()) {
                if !batch.is_empty() {
                    outbox.push(batch.drain(..), now, &mut shed);
                }
            }
            shared.count_shed(&mut shed, &mut tally);
            if tally.len() > 4_096 {
                shared.flush(&mut tally);
            }
            if t >= phase.duration_s {
                break;
            }
            std::thread::sleep(tick);
        }
        shared.flush(&mut tally);
        phase_start += Duration::from_secs_f64(phase.duration_s);
    }
    shared.flush(&mut tally);
}

/// Samples the server's memory once a second while the load runs.
async fn sample_memory(shared: Arc<Shared>, running: Arc<AtomicBool>) {
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while running.load(Ordering::Acquire) {
        interval.tick().await;
        let (resident, peak) = shared.target.memory().await;
        let second = shared.second(Instant::now());
        shared
            .collector
            .lock()
            .expect("no panics while the collector is held")
            .sample_memory(second, resident, peak);
    }
}

/// The stock check: for every (warehouse, SKU), reserved after minus reserved before must
/// equal the units the run's decisions shipped from there.
#[derive(Debug, Clone)]
pub struct StockCheck {
    pub levels_checked: usize,
    pub units_shipped: u64,
    pub mismatches: Vec<String>,
}

fn compare_stock(
    before: &HashMap<(String, String), u64>,
    after: &HashMap<(String, String), u64>,
    shipped: &HashMap<(String, String), u64>,
) -> StockCheck {
    let mut keys: Vec<&(String, String)> = before
        .keys()
        .chain(after.keys())
        .chain(shipped.keys())
        .collect();
    keys.sort();
    keys.dedup();
    let mut mismatches = Vec::new();
    for key in &keys {
        let before = before.get(*key).copied().unwrap_or(0);
        let after = after.get(*key).copied().unwrap_or(0);
        let shipped = shipped.get(*key).copied().unwrap_or(0);
        if after.checked_sub(before) != Some(shipped) {
            mismatches.push(format!(
                "{} {}: reserved {before} -> {after}, decisions shipped {shipped}",
                key.0, key.1
            ));
        }
    }
    StockCheck {
        levels_checked: keys.len(),
        units_shipped: shipped.values().sum(),
        mismatches,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stock_check_flags_every_level_that_does_not_add_up() {
        let key = |warehouse: &str, sku: &str| (warehouse.to_owned(), sku.to_owned());
        let before = HashMap::from([(key("W", "A"), 5)]);
        let after = HashMap::from([(key("W", "A"), 7), (key("W", "B"), 1)]);
        let shipped = HashMap::from([(key("W", "A"), 2), (key("W", "B"), 2)]);
        let check = compare_stock(&before, &after, &shipped);
        assert_eq!(check.levels_checked, 2);
        assert_eq!(check.units_shipped, 4);
        assert_eq!(check.mismatches.len(), 1);
        assert!(
            check.mismatches[0].starts_with("W B"),
            "{:?}",
            check.mismatches
        );
    }
}
