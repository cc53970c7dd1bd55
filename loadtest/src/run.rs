//! `loadtest run`: a scenario against a server, open loop.
//!
//! A scheduler thread computes, every tick, how many orders are due by now from the phase's
//! rate integral and gives each its intended send time (interpolated inside the tick, so
//! times are exact to well under the tick), whatever the server does. The orders go to the
//! connections' outboxes; latency is measured from the intended time, so a stalled server
//! cannot hide its stall by slowing the tool down (coordinated omission). After the last
//! phase the connections get `drain_timeout_s` to collect the answers still due; then the
//! run is abandoned and what is unanswered counts as lost.
//!
//! With `[ship]`, the shipper's connections mark placed orders shipped while the load runs
//! ([`crate::ship`]); once the order connections have drained, shipping goes on until its
//! queue is empty or the same deadline (the last phase's end plus `drain_timeout_s`)
//! passes, and what is left is counted as not shipped.

use crate::chart::chart;
use crate::connection::{Shared, request_connection, stream_connection};
use crate::generate::Generator;
use crate::outbox::{Outbox, Queued};
use crate::progress::progress;
use crate::report::{Report, RunFacts, build_report};
use crate::scenario::{Load, Scenario, Transport};
use crate::ship::Shipper;
use crate::stats::{Collector, Count, Tally};
use crate::stock::{self, Levels, StockCheck};
use crate::target::{StockLevels, Target};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::task::JoinHandle;

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
    let scenario = &options.scenario;
    let known = options.target.learn().await?;
    let run_id = options.run_id.clone().unwrap_or_else(default_run_id);
    let generator = Generator::new(&scenario.mix, &known, scenario.seed, run_id.clone())?;
    let notes = generator.notes.clone();
    for note in &notes {
        eprintln!("loadtest: {note}");
    }
    // With shipping, on-hand units leave too: the stock check reads them.
    let shipping = scenario.ship.is_some();
    let stock_before = if options.check_stock {
        Some(options.target.stock_levels(shipping).await?)
    } else {
        None
    };
    let shipper = scenario.ship.as_ref().map(|ship| {
        Arc::new(Shipper::new(
            options.target.clone(),
            ship.clone(),
            scenario.seed,
        ))
    });
    let outboxes = outboxes(&scenario.load);
    let shared = Arc::new(share(&options, &generator, shipper.clone()));
    let connections = start_connections(&shared, &scenario.load, &outboxes);
    let shipping_connections = shipper.as_ref().map(Shipper::start).unwrap_or_default();
    let watchers = Watchers::start(&shared, &options, &outboxes);
    schedule(&shared, &options, generator, &outboxes).await?;
    for outbox in &outboxes {
        outbox.close();
    }
    let load_ended = Instant::now();
    let drain_timeout = Duration::from_secs(scenario.load.drain_timeout_s);
    drain(&shared, connections, drain_timeout).await;
    let orders_ended = Instant::now();
    let shipped = match &shipper {
        Some(shipper) => {
            let deadline = load_ended + drain_timeout;
            Some(drain_shipping(shipper, shipping_connections, deadline).await)
        }
        None => None,
    };
    let ended = Instant::now();
    watchers.stop(&shared, ended).await;
    let stock = match stock_before {
        Some(before) => Some(check_stock(&shared, &before, shipping).await?),
        None => None,
    };
    let collector = std::mem::replace(&mut *shared.collector(), Collector::new(0));
    let report = build_report(RunFacts {
        scenario,
        rate_scale: options.rate_scale,
        target: &options.target,
        run_id: &run_id,
        collector: &collector,
        load: load_ended.saturating_duration_since(shared.start),
        elapsed: orders_ended.saturating_duration_since(shared.start),
        stock,
        shipping: shipped,
        notes,
    });
    write_outputs(&options, &report)?;
    Ok(RunOutcome { report })
}

/// `LT` and the start time in milliseconds (hexadecimal): unique per run.
pub fn default_run_id() -> String {
    let millis = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis());
    format!("LT{millis:x}")
}

/// One outbox per stream; one for all the connections of the requests transport, so an
/// order goes to whichever connection is free.
fn outboxes(load: &Load) -> Vec<Arc<Outbox>> {
    let max_wait = Some(Duration::from_millis(load.max_queue_ms));
    match load.transport {
        Transport::Streams => (0..load.connections)
            .map(|_| Arc::new(Outbox::new(max_wait, 1)))
            .collect(),
        Transport::Requests => vec![Arc::new(Outbox::new(max_wait, load.connections))],
    }
}

/// What the connections share; the load starts 200 ms from now, once they are open.
fn share(options: &RunOptions, generator: &Generator, shipper: Option<Arc<Shipper>>) -> Shared {
    let scenario = &options.scenario;
    let load = &scenario.load;
    Shared {
        target: options.target.clone(),
        start: Instant::now() + Duration::from_millis(200),
        collector: Mutex::new(Collector::new(scenario.phases.len())),
        chunk_orders: load.chunk_orders,
        retries_after_429: load.retries_after_429,
        send_buffer_bytes: load.send_buffer_bytes,
        resends: (scenario.mix.retry_share > 0.0).then(|| generator.resends.clone()),
        shipper,
        check_stock: options.check_stock,
        shipped: Mutex::new(Levels::new()),
        abandon: AtomicBool::new(false),
        abandoned: tokio::sync::Notify::new(),
    }
}

fn start_connections(
    shared: &Arc<Shared>,
    load: &Load,
    outboxes: &[Arc<Outbox>],
) -> Vec<JoinHandle<()>> {
    (0..load.connections)
        .map(|index| {
            let shared = shared.clone();
            match load.transport {
                Transport::Streams => {
                    tokio::spawn(stream_connection(shared, outboxes[index].clone()))
                }
                Transport::Requests => {
                    tokio::spawn(request_connection(shared, outboxes[0].clone()))
                }
            }
        })
        .collect()
}

/// Runs the scheduler until the last phase ends, on a thread of its own: its ticks must not
/// wait behind answer parsing.
async fn schedule(
    shared: &Arc<Shared>,
    options: &RunOptions,
    generator: Generator,
    outboxes: &[Arc<Outbox>],
) -> anyhow::Result<()> {
    let scheduler = Scheduler {
        shared: shared.clone(),
        scenario: options.scenario.clone(),
        rate_scale: options.rate_scale,
        tick: options.tick,
        generator,
        outboxes: outboxes.to_vec(),
        batches: outboxes.iter().map(|_| Vec::new()).collect(),
        next_outbox: 0,
        tally: Tally::default(),
        shed: Vec::new(),
    };
    let thread = std::thread::Builder::new()
        .name("scheduler".into())
        .spawn(move || scheduler.run())?;
    let scheduler_done = tokio::task::spawn_blocking(move || thread.join());
    if scheduler_done.await?.is_err() {
        anyhow::bail!("the scheduler thread panicked");
    }
    Ok(())
}

/// Waits for the connections to end, at most `timeout`. Then the run is abandoned: every
/// wait of a connection races the abandon, so they count what is unanswered as lost and
/// what is unsent as shed, and end; those still running 5 s later are aborted.
async fn drain(shared: &Shared, connections: Vec<JoinHandle<()>>, timeout: Duration) {
    let aborts: Vec<tokio::task::AbortHandle> =
        connections.iter().map(|task| task.abort_handle()).collect();
    let mut all = futures_util::future::join_all(connections);
    if tokio::time::timeout(timeout, &mut all).await.is_err() {
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
}

/// Once the order connections are done (no more orders are placed): shipping goes on until
/// every shipment queued is sent or `deadline` passes; then it stops, and those still
/// running 5 s later are aborted. The shipping counts.
async fn drain_shipping(
    shipper: &Shipper,
    connections: Vec<JoinHandle<()>>,
    deadline: Instant,
) -> crate::ship::ShipStats {
    shipper.close();
    let aborts: Vec<tokio::task::AbortHandle> =
        connections.iter().map(|task| task.abort_handle()).collect();
    let mut all = futures_util::future::join_all(connections);
    if tokio::time::timeout_at(deadline.into(), &mut all)
        .await
        .is_err()
    {
        shipper.stop();
        if tokio::time::timeout(Duration::from_secs(5), &mut all)
            .await
            .is_err()
        {
            for task in &aborts {
                task.abort();
            }
        }
    }
    shipper.finish()
}

/// The stock check, once the run is over: the levels reserved now against `before` and the
/// decisions' shipments (and, when orders were `shipping`, the on-hand units consumed).
async fn check_stock(
    shared: &Shared,
    before: &StockLevels,
    shipping: bool,
) -> anyhow::Result<StockCheck> {
    let after = shared.target.stock_levels(shipping).await?;
    let shipped: Levels = shared
        .shipped
        .lock()
        .expect("no panics while the shipped levels are held")
        .clone();
    Ok(if shipping {
        let consumed = stock::consumed(&before.on_hand, &after.on_hand);
        StockCheck::with_consumed(&before.reserved, &after.reserved, &shipped, &consumed)
    } else {
        StockCheck::new(&before.reserved, &after.reserved, &shipped)
    })
}

/// Writes the JSON report and draws the chart, where the options ask for them.
fn write_outputs(options: &RunOptions, report: &Report) -> anyhow::Result<()> {
    if let Some(path) = &options.report {
        std::fs::write(path, serde_json::to_vec_pretty(&report.json)?).map_err(|error| {
            anyhow::anyhow!("cannot write the report {}: {error}", path.display())
        })?;
    }
    if let Some(path) = &options.chart {
        chart(report, path)?;
    }
    Ok(())
}

/// The scheduler: orders due by now, with their intended times, into the outboxes.
struct Scheduler {
    shared: Arc<Shared>,
    scenario: Scenario,
    rate_scale: f64,
    tick: Duration,
    generator: Generator,
    outboxes: Vec<Arc<Outbox>>,
    /// The orders of the current tick, one batch per outbox.
    batches: Vec<Vec<Queued>>,
    /// Orders go to the outboxes in turn.
    next_outbox: usize,
    tally: Tally,
    shed: Vec<Queued>,
}

impl Scheduler {
    fn run(mut self) {
        if let Some(wait) = self.shared.start.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let mut phase_start = self.shared.start;
        for index in 0..self.scenario.phases.len() {
            self.play_phase(index, phase_start);
            phase_start += Duration::from_secs_f64(self.scenario.phases[index].duration_s);
        }
        self.shared.flush(&mut self.tally);
    }

    /// The phase `index`, started at `phase_start`, tick by tick.
    fn play_phase(&mut self, index: usize, phase_start: Instant) {
        let phase = self.scenario.phases[index].clone();
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
            let n = phase.orders_by(t) * self.rate_scale;
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
                self.make_order(phase_index, intended, wall);
            }
            (last_t, last_n) = (t, n);
            self.hand_over(now);
            if t >= phase.duration_s {
                break;
            }
            std::thread::sleep(self.tick);
        }
        self.shared.flush(&mut self.tally);
    }

    /// The next order, intended at `intended`, into the next outbox's batch.
    fn make_order(&mut self, phase: u8, intended: Instant, wall: SystemTime) {
        self.tally
            .count(Count::Offered, self.shared.second(intended), phase, 1);
        let line = self.generator.next_line(wall);
        self.batches[self.next_outbox].push(Queued {
            line,
            intended,
            phase,
            refusals: 0,
        });
        self.next_outbox = (self.next_outbox + 1) % self.outboxes.len();
    }

    /// The tick's batches into their outboxes, counting what waited there too long.
    fn hand_over(&mut self, now: Instant) {
        for (outbox, batch) in self.outboxes.iter().zip(self.batches.iter_mut()) {
            if !batch.is_empty() {
                outbox.push(batch.drain(..), now, &mut self.shed);
            }
        }
        self.shared.count_shed(&mut self.shed, &mut self.tally);
        if self.tally.len() > 4_096 {
            self.shared.flush(&mut self.tally);
        }
    }
}

/// What watches the run while it lasts: the memory sampler and the progress line.
struct Watchers {
    running: Arc<AtomicBool>,
    memory: JoinHandle<()>,
    progress: Option<std::thread::JoinHandle<()>>,
}

impl Watchers {
    fn start(shared: &Arc<Shared>, options: &RunOptions, outboxes: &[Arc<Outbox>]) -> Watchers {
        let running = Arc::new(AtomicBool::new(true));
        let memory = tokio::spawn(sample_memory(shared.clone(), running.clone()));
        let progress = options.progress.then(|| {
            progress(
                shared.clone(),
                options.scenario.clone(),
                options.rate_scale,
                outboxes.to_vec(),
                running.clone(),
            )
        });
        Watchers {
            running,
            memory,
            progress,
        }
    }

    /// Stops both once the run has `ended`, and takes a last memory sample, after the drain.
    async fn stop(self, shared: &Shared, ended: Instant) {
        self.running.store(false, Ordering::Release);
        // The sampler's request has its own timeout; it ends within it.
        let _ = self.memory.await;
        if let Some(progress) = self.progress {
            let _ = progress.join();
        }
        let (resident, peak) = shared.target.memory().await;
        shared
            .collector()
            .sample_memory(shared.second(ended), resident, peak);
    }
}

/// Samples the server's memory once a second while the load runs.
async fn sample_memory(shared: Arc<Shared>, running: Arc<AtomicBool>) {
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while running.load(Ordering::Acquire) {
        interval.tick().await;
        let (resident, peak) = shared.target.memory().await;
        let second = shared.second(Instant::now());
        shared.collector().sample_memory(second, resident, peak);
    }
}
