//! `loadtest capacity`: the highest rate a server holds, and its latency at half of it, found
//! and stated in one run.
//!
//! The scenario gives the transport and the order mix; its phases are replaced by steps of
//! one constant rate each, played one after the other against the same server. A step is
//! *held* when the run of it passes (nothing lost or answered wrongly), nothing is
//! throttled (no 429, nothing shed for waiting longer than the scenario's `max_queue_ms`)
//! and its p99 stays within `max_p99_ms`: a server that falls behind the offered rate
//! queues, and its latency grows past any bound within seconds. The rate grows by
//! `growth` from `start_rate` while steps are held, then is bisected `refine` times between
//! the highest held and the lowest not held. Last, the scenario's mix is played at half the
//! highest held rate for `half_s` seconds: the latency a server shows with its headroom,
//! which is what a checkout waits on a busy day.

use crate::report::SLOW_MS;
use crate::run::{RunOptions, run};
use crate::scenario::{Phase, Scenario};
use crate::target::Target;
use anyhow::bail;
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

pub struct CapacityOptions {
    pub target: Target,
    /// The transport and the mix (its phases are not played).
    pub scenario: Scenario,
    /// Rate of the first step (orders/s).
    pub start_rate: f64,
    /// Each held step's rate times this is the next one's, until a step is not held.
    pub growth: f64,
    /// Bisections between the highest held and the lowest not held rate.
    pub refine: u32,
    /// No step above this rate.
    pub max_rate: f64,
    pub step_s: f64,
    /// A step whose p99 is over this is not held.
    pub max_p99_ms: f64,
    /// Seconds at half the highest held rate (0: no half run).
    pub half_s: f64,
    /// Pause between steps, so that one step's backlog never counts in the next.
    pub pause: Duration,
    pub tick: Duration,
    /// Prefix of the order ids; each step adds its number.
    pub run_id: String,
}

/// The rates to try, given what the steps so far showed.
#[derive(Debug, Clone)]
pub struct Search {
    growth: f64,
    max_rate: f64,
    refine_left: u32,
    /// The highest rate held so far.
    held: Option<f64>,
    /// The lowest rate not held so far.
    failed: Option<f64>,
    next: Option<f64>,
}

impl Search {
    pub fn new(start_rate: f64, growth: f64, refine: u32, max_rate: f64) -> Search {
        Search {
            growth,
            max_rate,
            refine_left: refine,
            held: None,
            failed: None,
            next: Some(start_rate.min(max_rate)),
        }
    }

    /// The rate of the next step; `None` when the search is over.
    pub fn next_rate(&self) -> Option<f64> {
        self.next
    }

    /// The highest rate held, once the search is over (or so far).
    pub fn highest_held(&self) -> Option<f64> {
        self.held
    }

    /// What the step at `rate` showed.
    pub fn record(&mut self, rate: f64, held: bool) {
        if held {
            self.held = Some(self.held.map_or(rate, |before| before.max(rate)));
        } else {
            self.failed = Some(self.failed.map_or(rate, |before| before.min(rate)));
        }
        self.next = match (self.held, self.failed) {
            // Still climbing.
            (Some(held), None) if held < self.max_rate => {
                Some((held * self.growth).min(self.max_rate).round())
            }
            (Some(_), None) => None,
            // The first step was not held: go down until one is.
            (None, Some(failed)) => {
                let lower = (failed / self.growth).round();
                (lower >= 1.0 && lower < failed).then_some(lower)
            }
            (Some(held), Some(failed)) => {
                let middle = ((held + failed) / 2.0).round();
                if self.refine_left == 0 || middle <= held || middle >= failed {
                    None
                } else {
                    self.refine_left -= 1;
                    Some(middle)
                }
            }
            (None, None) => self.next,
        };
    }
}

/// One step: its rate, whether it was held and why not, and what it measured.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub rate: f64,
    /// When the step was started (seconds since the Unix epoch; its first orders go about
    /// 0.2 s later): to find the server's log lines of its seconds.
    pub started_unix_s: f64,
    pub held: bool,
    /// What its run found wrong: orders lost or answered wrongly (these fail the command).
    pub failures: Vec<String>,
    /// Why else it was not held: throttling, a p99 over the bound.
    pub why_not: Vec<String>,
    pub throttled: u64,
    #[serde(flatten)]
    pub latency: Latency,
}

impl Step {
    /// Why it was not held, in one line (empty when it was).
    fn reasons(&self) -> String {
        self.failures
            .iter()
            .map(|failure| format!("failed: {failure}"))
            .chain(self.why_not.iter().cloned())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The latency of a run's orders, from their intended send times.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

impl Latency {
    /// From a run's JSON report.
    fn of(report: &Value) -> Latency {
        let at = |key: &str| report["latency_ms"][key].as_f64();
        Latency {
            p50_ms: at("p50"),
            p99_ms: at("p99"),
            p999_ms: at("p999"),
            max_ms: at("max"),
        }
    }
}

/// The run at half the highest held rate.
#[derive(Debug, Clone, Serialize)]
pub struct HalfRun {
    pub rate: f64,
    /// When the run was started (seconds since the Unix epoch; its first orders, second 0
    /// of `p99_by_second_ms`, go about 0.2 s later).
    pub started_unix_s: f64,
    pub duration_s: f64,
    /// What its run found wrong (empty when it passed).
    pub failures: Vec<String>,
    pub throttled: u64,
    #[serde(flatten)]
    pub latency: Latency,
    /// Seconds whose p99 was over 20 ms.
    pub seconds_over_20ms: usize,
    /// Orders answered after more than 10 ms.
    pub over_10ms: u64,
    /// The load tester's own delay in sending (intended time to the write).
    pub send_delay_p99_ms: Option<f64>,
    /// Each second's p99, from the first: where in the run the slow seconds were.
    pub p99_by_second_ms: Vec<Option<f64>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CapacityReport {
    pub scenario: String,
    pub transport: String,
    pub connections: usize,
    pub max_p99_ms: f64,
    pub step_s: f64,
    pub steps: Vec<Step>,
    /// The highest rate held; `None` if no step was.
    pub highest_held_per_s: Option<f64>,
    pub half: Option<HalfRun>,
}

impl CapacityReport {
    /// Whether every order of every step and of the half run was answered as it must be
    /// (a step not held for its latency or throttling is not a failure of the run).
    pub fn failures(&self) -> Vec<String> {
        let steps = self.steps.iter().flat_map(|step| {
            step.failures
                .iter()
                .map(move |failure| format!("step at {:.0}/s failed: {failure}", step.rate))
        });
        let half = self.half.iter().flat_map(|half| {
            half.failures
                .iter()
                .map(move |failure| format!("half run at {:.0}/s failed: {failure}", half.rate))
        });
        steps.chain(half).collect()
    }

    /// The table printed at the end.
    pub fn table(&self) -> String {
        let ms = |value: Option<f64>| value.map_or("-".to_owned(), |ms| format!("{ms:.2}"));
        let mut out = format!(
            "{} over {} connection(s) ({}), steps of {} s, held = nothing lost, throttled or shed, p99 <= {} ms\n",
            self.scenario, self.connections, self.transport, self.step_s, self.max_p99_ms
        );
        out.push_str("  offered/s  held  p50 ms  p99 ms  p99.9 ms  max ms  throttled  why not\n");
        for step in &self.steps {
            let row = format!(
                "  {:>9.0}  {:>4}  {:>6}  {:>6}  {:>8}  {:>6}  {:>9}  {}",
                step.rate,
                if step.held { "yes" } else { "no" },
                ms(step.latency.p50_ms),
                ms(step.latency.p99_ms),
                ms(step.latency.p999_ms),
                ms(step.latency.max_ms),
                step.throttled,
                step.reasons()
            );
            out.push_str(row.trim_end());
            out.push('\n');
        }
        match self.highest_held_per_s {
            Some(rate) => out.push_str(&format!("highest rate held: {rate:.0} orders/s\n")),
            None => out.push_str("no step was held\n"),
        }
        if let Some(half) = &self.half {
            out.push_str(&format!(
                "at half of it, {:.0} orders/s for {} s: p50 {} ms, p99 {} ms, p99.9 {} ms, max {} ms, {} second(s) with p99 over 20 ms, {} orders over {SLOW_MS} ms, throttled {}, send delay p99 {} ms{}\n",
                half.rate,
                half.duration_s,
                ms(half.latency.p50_ms),
                ms(half.latency.p99_ms),
                ms(half.latency.p999_ms),
                ms(half.latency.max_ms),
                half.seconds_over_20ms,
                half.over_10ms,
                half.throttled,
                ms(half.send_delay_p99_ms),
                if half.failures.is_empty() { "" } else { " (FAILED)" }
            ));
        }
        out
    }
}

pub async fn capacity(options: CapacityOptions) -> anyhow::Result<CapacityReport> {
    let valid = |value: f64| value.is_finite() && value > 0.0;
    if !valid(options.start_rate) || !valid(options.max_rate) || !valid(options.step_s) {
        bail!("the start rate, the maximum rate and the step's seconds must be positive");
    }
    if !(options.growth.is_finite() && options.growth > 1.0) {
        bail!("--growth must be a number above 1");
    }
    if !(valid(options.max_p99_ms) && options.half_s.is_finite() && options.half_s >= 0.0) {
        bail!("--max-p99-ms must be positive and --half-s at least 0");
    }
    let mut search = Search::new(
        options.start_rate,
        options.growth,
        options.refine,
        options.max_rate,
    );
    let mut steps = Vec::new();
    while let Some(rate) = search.next_rate() {
        let number = steps.len() + 1;
        let started = unix_seconds();
        let report = play(&options, rate, options.step_s, &format!("step{number}")).await?;
        let step = judge(rate, started, &report, options.max_p99_ms);
        eprintln!(
            "loadtest: step {number} at {rate:.0}/s: {}",
            if step.held {
                format!("held, p99 {:.2} ms", step.latency.p99_ms.unwrap_or(0.0))
            } else {
                format!("not held ({})", step.reasons())
            }
        );
        search.record(rate, step.held);
        steps.push(step);
        tokio::time::sleep(options.pause).await;
    }
    let highest = search.highest_held();
    let half = match highest {
        Some(rate) if options.half_s > 0.0 => {
            let rate = (rate / 2.0).round().max(1.0);
            let started = unix_seconds();
            let report = play(&options, rate, options.half_s, "half").await?;
            Some(half_run(rate, started, options.half_s, &report))
        }
        _ => None,
    };
    let scenario = &options.scenario;
    Ok(CapacityReport {
        scenario: scenario.name.clone(),
        transport: format!("{:?}", scenario.load.transport).to_lowercase(),
        connections: scenario.load.connections,
        max_p99_ms: options.max_p99_ms,
        step_s: options.step_s,
        steps,
        highest_held_per_s: highest,
        half,
    })
}

fn unix_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64())
}

/// Plays the scenario's mix at `rate` for `seconds`; the run's JSON report.
async fn play(
    options: &CapacityOptions,
    rate: f64,
    seconds: f64,
    name: &str,
) -> anyhow::Result<Value> {
    let mut scenario = options.scenario.clone();
    scenario.phases = vec![Phase {
        name: name.to_owned(),
        duration_s: seconds,
        rate,
        ramp_to: None,
        decay_to: None,
        half_life_s: None,
    }];
    // One phase: nothing to recover from, and a baseline named in the scenario is gone.
    scenario.recovery.baseline_phase = None;
    scenario.recovery.within_s = None;
    let outcome = run(RunOptions {
        target: options.target.clone(),
        scenario,
        rate_scale: 1.0,
        check_stock: false,
        run_id: Some(format!("{}{name}", options.run_id)),
        tick: options.tick,
        progress: false,
        report: None,
        chart: None,
    })
    .await?;
    Ok(outcome.report.json)
}

fn count(report: &Value, key: &str) -> u64 {
    report["totals"][key].as_u64().unwrap_or(0)
}

fn failures(report: &Value) -> Vec<String> {
    report["failures"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|failure| failure.as_str().map(str::to_owned))
        .collect()
}

/// Whether a step's run held its rate.
fn judge(rate: f64, started_unix_s: f64, report: &Value, max_p99_ms: f64) -> Step {
    let failures = failures(report);
    let mut why_not = Vec::new();
    let throttled = count(report, "throttled");
    if throttled > 0 {
        why_not.push(format!("{throttled} throttled"));
    }
    let latency = Latency::of(report);
    match latency.p99_ms {
        Some(p99) if p99 > max_p99_ms => why_not.push(format!("p99 {p99:.1} ms")),
        Some(_) => {}
        None => why_not.push("no latency measured".to_owned()),
    }
    Step {
        rate,
        started_unix_s,
        held: failures.is_empty() && why_not.is_empty(),
        failures,
        why_not,
        throttled,
        latency,
    }
}

fn half_run(rate: f64, started_unix_s: f64, seconds: f64, report: &Value) -> HalfRun {
    let series = report["series"].as_array().map_or(&[][..], Vec::as_slice);
    let failures = failures(report);
    HalfRun {
        rate,
        started_unix_s,
        duration_s: seconds,
        failures,
        throttled: count(report, "throttled"),
        latency: Latency::of(report),
        seconds_over_20ms: series
            .iter()
            .filter(|second| second["p99_ms"].as_f64().is_some_and(|p99| p99 > 20.0))
            .count(),
        over_10ms: series
            .iter()
            .filter_map(|second| second["over_10ms"].as_u64())
            .sum(),
        send_delay_p99_ms: report["send_delay_ms"]["p99"].as_f64(),
        p99_by_second_ms: series
            .iter()
            .map(|second| second["p99_ms"].as_f64())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::Search;

    /// Plays a search against a server that holds every rate up to `capacity`.
    fn search(capacity: f64, start: f64, refine: u32) -> (Vec<f64>, Option<f64>) {
        let mut search = Search::new(start, 1.5, refine, 1_000_000.0);
        let mut tried = Vec::new();
        while let Some(rate) = search.next_rate() {
            tried.push(rate);
            search.record(rate, rate <= capacity);
            assert!(tried.len() < 100, "the search ends");
        }
        (tried, search.highest_held())
    }

    #[test]
    fn climbs_by_the_growth_then_bisects_towards_the_capacity() {
        let (tried, held) = search(100_000.0, 20_000.0, 3);
        assert_eq!(
            &tried[..5],
            &[20_000.0, 30_000.0, 45_000.0, 67_500.0, 101_250.0]
        );
        // 67,500 held, 101,250 not: three bisections between them.
        assert_eq!(&tried[5..], &[84_375.0, 92_813.0, 97_032.0]);
        assert_eq!(held, Some(97_032.0));
    }

    #[test]
    fn goes_down_when_the_first_step_is_not_held() {
        let (tried, held) = search(5_000.0, 20_000.0, 1);
        assert_eq!(&tried[..3], &[20_000.0, 13_333.0, 8_889.0]);
        assert!(held.unwrap() <= 5_000.0 && held.unwrap() > 5_000.0 / 1.5 / 1.5);
        // After the first held step, one bisection up from it.
        assert_eq!(tried.len(), 6);
    }

    #[test]
    fn stops_at_the_maximum_rate_when_everything_is_held() {
        let mut search = Search::new(20_000.0, 2.0, 3, 50_000.0);
        let mut tried = Vec::new();
        while let Some(rate) = search.next_rate() {
            tried.push(rate);
            search.record(rate, true);
        }
        assert_eq!(tried, vec![20_000.0, 40_000.0, 50_000.0]);
        assert_eq!(search.highest_held(), Some(50_000.0));
    }

    #[test]
    fn ends_when_nothing_is_held_even_at_one_order_a_second() {
        let (tried, held) = search(0.5, 4.0, 2);
        assert_eq!(held, None);
        assert_eq!(tried.last(), Some(&1.0));
    }
}
