//! What a run tells: the live progress line, the table per phase, the JSON report and the
//! chart of offered and achieved rate and p99 over time.

use crate::connection::Shared;
use crate::outbox::Outbox;
use crate::run::StockCheck;
use crate::scenario::Scenario;
use crate::stats::{Collector, Count, Counts};
use crate::target::Target;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A second of the run: a row of the report's `series`, and a point of the chart.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Second {
    pub second: u32,
    pub offered: u64,
    pub sent: u64,
    pub answered: u64,
    pub throttled: u64,
    pub lost: u64,
    /// Latency of the orders intended in this second.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// The server's resident memory sampled in this second.
    pub resident_bytes: Option<u64>,
}

/// The finished report: the JSON document, and what the table and chart are drawn from.
pub struct Report {
    pub json: Value,
    pub series: Vec<Second>,
    /// The p99 a second must be back under after the spike (ms).
    pub recovery_threshold_ms: Option<f64>,
    /// Why the run failed; empty when it passed.
    pub failures: Vec<String>,
    pub table: String,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Microseconds as milliseconds (exact to the microsecond).
fn ms(micros: u64) -> f64 {
    micros as f64 / 1_000.0
}

fn percentiles(histogram: &Histogram<u64>) -> Value {
    if histogram.is_empty() {
        return json!({"p50": null, "p90": null, "p99": null, "p999": null, "max": null, "mean": null});
    }
    json!({
        "p50": ms(histogram.value_at_quantile(0.50)),
        "p90": ms(histogram.value_at_quantile(0.90)),
        "p99": ms(histogram.value_at_quantile(0.99)),
        "p999": ms(histogram.value_at_quantile(0.999)),
        "max": ms(histogram.max()),
        "mean": histogram.mean().round() / 1_000.0,
    })
}

fn totals(counts: &Counts) -> Value {
    json!({
        "offered": counts.get(Count::Offered),
        "sent": counts.get(Count::Sent),
        "answered": counts.get(Count::Answered),
        "decided": counts.get(Count::Decided),
        "duplicates": counts.get(Count::Duplicate),
        "invalid": counts.get(Count::Invalid),
        "throttled": counts.throttled(),
        "throttled_429": counts.get(Count::Throttled429),
        "shed": counts.get(Count::Shed),
        "lost": counts.get(Count::Lost),
        "mismatched": counts.get(Count::Mismatch),
        "unexpected_duplicates": counts.get(Count::UnexpectedDuplicate),
        "transport_errors": counts.get(Count::TransportError),
    })
}

#[allow(clippy::too_many_arguments)]
pub fn build_report(
    scenario: &Scenario,
    rate_scale: f64,
    target: &Target,
    run_id: &str,
    collector: &Collector,
    load: Duration,
    elapsed: Duration,
    stock: Option<StockCheck>,
    notes: Vec<String>,
) -> Report {
    let counts = &collector.totals;
    let elapsed_s = elapsed.as_secs_f64().max(1e-9);
    let memory_by_second: std::collections::HashMap<u32, u64> =
        collector.memory.iter().copied().collect();
    let series: Vec<Second> = collector
        .seconds
        .iter()
        .enumerate()
        .map(|(second, bucket)| {
            let latency = &bucket.latency;
            let quantile = |q: f64| (!latency.is_empty()).then(|| ms(latency.value_at_quantile(q)));
            Second {
                second: second as u32,
                offered: bucket.counts.get(Count::Offered),
                sent: bucket.counts.get(Count::Sent),
                answered: bucket.counts.get(Count::Answered),
                throttled: bucket.counts.throttled(),
                lost: bucket.counts.get(Count::Lost),
                p50_ms: quantile(0.5),
                p99_ms: quantile(0.99),
                max_ms: (!latency.is_empty()).then(|| ms(latency.max())),
                resident_bytes: memory_by_second.get(&(second as u32)).copied(),
            }
        })
        .collect();

    // Phases: their place in time and their numbers.
    let mut phases_json = Vec::new();
    let mut phase_start = 0.0;
    let mut phase_spans = Vec::new();
    for (phase, bucket) in scenario.phases.iter().zip(&collector.phases) {
        let duration = phase.duration_s;
        phase_spans.push((phase_start, phase_start + duration));
        phase_start += duration;
        let answered = bucket.counts.get(Count::Answered);
        phases_json.push(json!({
            "name": phase.name,
            "start_s": phase_spans.last().map(|span| span.0),
            "duration_s": duration,
            "target_rate_per_s": phase.rate * rate_scale,
            "peak_rate_per_s": phase.peak_rate() * rate_scale,
            "offered_per_s": bucket.counts.get(Count::Offered) as f64 / duration,
            "answered_per_s": answered as f64 / duration,
            "totals": totals(&bucket.counts),
            "latency_ms": percentiles(&bucket.latency),
        }));
    }

    let recovery = recovery(scenario, collector, &phase_spans);
    let mut failures = Vec::new();
    let mut require_zero = |count: Count, what: &str| {
        let n = counts.get(count);
        if n > 0 {
            failures.push(format!("{n} {what}"));
        }
    };
    require_zero(Count::Lost, "orders sent and never answered (lost)");
    require_zero(
        Count::UnexpectedDuplicate,
        "new orders answered as duplicates",
    );
    require_zero(Count::Mismatch, "answers not as they must be");
    require_zero(Count::TransportError, "transport errors");
    if counts.get(Count::Answered) == 0 {
        failures.push("no order was answered".to_owned());
    }
    // Every order offered ends exactly once: decided, a duplicate, invalid, misanswered,
    // throttled (429 or shed) or lost. A gap is an order the tool lost track of.
    for (name, bucket_counts) in std::iter::once(("the run", counts)).chain(
        scenario
            .phases
            .iter()
            .zip(&collector.phases)
            .map(|(phase, bucket)| (phase.name.as_str(), &bucket.counts)),
    ) {
        let (offered, ended) = (bucket_counts.get(Count::Offered), bucket_counts.ended());
        if offered != ended {
            failures.push(format!(
                "{name}: {offered} orders offered but {ended} accounted for (decided, duplicates, invalid, mismatched, throttled, lost)"
            ));
        }
    }
    if let Some(stock) = &stock
        && !stock.mismatches.is_empty()
    {
        failures.push(format!(
            "reserved stock differs from the decisions at {} levels",
            stock.mismatches.len()
        ));
    }
    if let (Some(within), Some(taken)) = (recovery.within_s, recovery.seconds.as_ref()) {
        match taken {
            Some(seconds) if f64::from(*seconds) <= within => {}
            Some(seconds) => failures.push(format!(
                "p99 took {seconds} s to come back to baseline after {} (limit {within} s)",
                recovery.after_phase
            )),
            None => failures.push(format!(
                "p99 never came back to baseline after {}",
                recovery.after_phase
            )),
        }
    }

    let json = json!({
        "scenario": scenario.name,
        "target": format!("http://{}", target.authority),
        "run_id": run_id,
        "transport": format!("{:?}", scenario.load.transport).to_lowercase(),
        "connections": scenario.load.connections,
        "rate_scale": rate_scale,
        "duration_s": load.as_secs_f64(),
        "elapsed_s": elapsed_s,
        "totals": totals(counts),
        "statuses": collector.statuses,
        // Answers as they must be, per second from the first intended send to the end of
        // the drain (the last answer).
        "throughput_per_s": (counts.get(Count::Decided) + counts.get(Count::Duplicate) + counts.get(Count::Invalid)) as f64 / elapsed_s,
        "latency_ms": percentiles(&collector.latency),
        "send_delay_ms": percentiles(&collector.send_delay),
        "shed_wait_ms": percentiles(&collector.shed_wait),
        "phases": phases_json,
        "series": series,
        "memory": {
            "peak_resident_bytes": collector.memory_peak,
            "last_resident_bytes": collector.memory.last().map(|sample| sample.1),
            "samples": collector.memory.len(),
        },
        "recovery": {
            "baseline_phase": recovery.baseline_phase,
            "baseline_p99_ms": recovery.baseline_p99_ms,
            "threshold_ms": recovery.threshold_ms,
            "after_phase": recovery.after_phase,
            "spike_end_s": recovery.spike_end_s,
            "seconds_to_baseline": recovery.seconds.flatten(),
            "hold_s": recovery.hold_s,
            "excursions_after": recovery.excursions.iter().map(|(second, p99)| json!({"second": second, "p99_ms": p99})).collect::<Vec<_>>(),
            "within_s": recovery.within_s,
        },
        "stock_check": stock.as_ref().map(|stock| json!({
            "levels_checked": stock.levels_checked,
            "units_shipped": stock.units_shipped,
            "mismatches": stock.mismatches.len(),
            "first_mismatches": stock.mismatches.iter().take(10).collect::<Vec<_>>(),
        })),
        "notes": notes,
        "problems_total": collector.problems_total,
        "problems": collector.problems,
        "passed": failures.is_empty(),
        "failures": failures,
    });
    let table = table(&json);
    Report {
        json,
        series,
        recovery_threshold_ms: recovery.threshold_ms,
        failures,
        table,
    }
}

struct Recovery {
    baseline_phase: String,
    baseline_p99_ms: Option<f64>,
    threshold_ms: Option<f64>,
    after_phase: String,
    spike_end_s: f64,
    /// `None`: not computable (no baseline); `Some(None)`: never recovered.
    seconds: Option<Option<u32>>,
    hold_s: u32,
    /// Seconds after the recovery with p99 over the threshold again: (second, p99 ms).
    excursions: Vec<(u32, f64)>,
    within_s: Option<f64>,
}

/// How long after the busiest phase the per-second p99 took to come back (and stay) under
/// the baseline's threshold.
fn recovery(scenario: &Scenario, collector: &Collector, spans: &[(f64, f64)]) -> Recovery {
    let rule = &scenario.recovery;
    let baseline_index = rule
        .baseline_phase
        .as_ref()
        .and_then(|name| scenario.phases.iter().position(|phase| &phase.name == name))
        .unwrap_or(0);
    let busiest = scenario
        .phases
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.peak_rate().total_cmp(&b.1.peak_rate()))
        .map_or(0, |(index, _)| index);
    let baseline = &collector.phases[baseline_index].latency;
    let baseline_p99_ms = (!baseline.is_empty()).then(|| ms(baseline.value_at_quantile(0.99)));
    let threshold_ms = baseline_p99_ms.map(|p99| (p99 * rule.factor).max(p99 + rule.slack_ms));
    let spike_end_s = spans[busiest].1;
    let load_end = spans.last().map_or(0.0, |span| span.1);
    let first = spike_end_s.ceil() as usize;
    // Whole seconds of load only: the last partial second has few orders.
    let last = (load_end.floor() as usize).min(collector.seconds.len());
    let p99 = |second: usize| {
        let latency = &collector.seconds[second].latency;
        (!latency.is_empty()).then(|| ms(latency.value_at_quantile(0.99)))
    };
    // A second whose orders got no answer at all (every one shed, or lost) is not back.
    let over = |second: usize, threshold: f64| match p99(second) {
        Some(p99) => p99 > threshold,
        None => collector.seconds[second].counts.get(Count::Offered) > 0,
    };
    let hold = rule.hold_s as usize;
    // The p99 of every order intended in `hold` seconds from `start`: the same statistic as
    // the baseline's (the p99 of a whole phase), over a window. The p99 of each second alone
    // is a noisier statistic (a tenth of the orders): the baseline's own seconds cross
    // 1.5x its p99 now and then.
    let window_over = |start: usize, threshold: f64| {
        let end = (start + hold).min(last);
        if (start..end).any(|second| {
            collector.seconds[second].latency.is_empty()
                && collector.seconds[second].counts.get(Count::Offered) > 0
        }) {
            return true;
        }
        let mut window = crate::stats::latency_histogram();
        for second in start..end {
            let _ = window.add(&collector.seconds[second].latency);
        }
        !window.is_empty() && ms(window.value_at_quantile(0.99)) > threshold
    };
    let recovered_at = threshold_ms.map(|threshold| {
        // The first second from which the next `hold` seconds' orders have their p99 under
        // the threshold (a window cut short by the end of the load counts).
        (first..last.max(first)).find(|start| !window_over(*start, threshold))
    });
    let seconds = recovered_at.map(|at| at.map(|at| (at - first) as u32));
    let excursions = match (threshold_ms, recovered_at.flatten()) {
        (Some(threshold), Some(at)) => (at..last)
            .filter(|second| over(*second, threshold))
            .map(|second| (second as u32, p99(second).unwrap_or(0.0)))
            .collect(),
        _ => Vec::new(),
    };
    Recovery {
        baseline_phase: scenario.phases[baseline_index].name.clone(),
        baseline_p99_ms,
        threshold_ms,
        after_phase: scenario.phases[busiest].name.clone(),
        spike_end_s,
        seconds,
        hold_s: rule.hold_s,
        excursions,
        within_s: rule.within_s,
    }
}

/// The final table: one row per phase, then the totals.
fn table(report: &Value) -> String {
    let mut out = String::new();
    let number = |value: &Value| match value.as_f64() {
        Some(n) if n >= 100.0 => format!("{:.0}", n),
        Some(n) => format!("{:.2}", n),
        None => "-".to_owned(),
    };
    let _ = writeln!(
        out,
        "{:<14} {:>7} {:>10} {:>10} {:>10} {:>10} {:>9} {:>6} {:>8} {:>8} {:>8} {:>9}",
        "phase",
        "secs",
        "offered/s",
        "answered/s",
        "sent",
        "decided",
        "throttled",
        "lost",
        "p50 ms",
        "p99 ms",
        "p999 ms",
        "max ms"
    );
    let rows = report["phases"].as_array().cloned().unwrap_or_default();
    let whole = json!({
        "name": "all",
        "duration_s": report["duration_s"],
        "offered_per_s": report["totals"]["offered"].as_f64().unwrap_or(0.0) / report["duration_s"].as_f64().unwrap_or(1.0).max(1e-9),
        "answered_per_s": report["throughput_per_s"],
        "totals": report["totals"],
        "latency_ms": report["latency_ms"],
    });
    for row in rows.iter().chain(std::iter::once(&whole)) {
        let totals = &row["totals"];
        let latency = &row["latency_ms"];
        let _ = writeln!(
            out,
            "{:<14} {:>7} {:>10} {:>10} {:>10} {:>10} {:>9} {:>6} {:>8} {:>8} {:>8} {:>9}",
            row["name"].as_str().unwrap_or("?"),
            number(&row["duration_s"]),
            number(&row["offered_per_s"]),
            number(&row["answered_per_s"]),
            totals["sent"].as_u64().unwrap_or(0),
            totals["decided"].as_u64().unwrap_or(0),
            totals["throttled"].as_u64().unwrap_or(0),
            totals["lost"].as_u64().unwrap_or(0),
            number(&latency["p50"]),
            number(&latency["p99"]),
            number(&latency["p999"]),
            number(&latency["max"]),
        );
    }
    let totals = &report["totals"];
    let _ = writeln!(
        out,
        "answered {} = decided {} + duplicates {} + invalid {}; throttled {} (429: {}, shed after max_queue_ms: {}); lost {}; mismatched {}",
        totals["answered"],
        totals["decided"],
        totals["duplicates"],
        totals["invalid"],
        totals["throttled"],
        totals["throttled_429"],
        totals["shed"],
        totals["lost"],
        totals["mismatched"],
    );
    let recovery = &report["recovery"];
    if recovery["threshold_ms"].is_number() {
        let _ = writeln!(
            out,
            "p99 after {}: back under {} ms (baseline {} p99 {} ms) {}",
            recovery["after_phase"].as_str().unwrap_or("?"),
            number(&recovery["threshold_ms"]),
            recovery["baseline_phase"].as_str().unwrap_or("?"),
            number(&recovery["baseline_p99_ms"]),
            match recovery["seconds_to_baseline"].as_u64() {
                Some(seconds) => format!(
                    "{seconds} s after it ended (and stayed for {} s)",
                    recovery["hold_s"]
                ),
                None => "never (before the load ended)".to_owned(),
            }
        );
        let excursions = recovery["excursions_after"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !excursions.is_empty() {
            let shown: Vec<String> = excursions
                .iter()
                .take(8)
                .map(|excursion| {
                    format!(
                        "{}s: {} ms",
                        excursion["second"],
                        number(&excursion["p99_ms"])
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                "  later seconds over it again: {} ({})",
                excursions.len(),
                shown.join(", ")
            );
        }
    }
    if let Some(peak) = report["memory"]["peak_resident_bytes"].as_u64() {
        let _ = writeln!(
            out,
            "server peak resident memory: {:.0} MiB",
            peak as f64 / 1_048_576.0
        );
    }
    out
}

/// The chart: offered, answered and throttled orders per second above, p99 per second
/// (log scale, with the recovery threshold) below.
pub fn chart(report: &Report, path: &Path) -> anyhow::Result<()> {
    use plotters::prelude::*;
    let draw = || -> Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::new(path, (1100, 720)).into_drawing_area();
        root.fill(&WHITE)?;
        let (upper, lower) = root.split_vertically(380);
        let seconds = report.series.len().max(1) as u32;
        let rate_max = report
            .series
            .iter()
            .map(|second| second.offered.max(second.answered))
            .max()
            .unwrap_or(1)
            .max(1) as f64
            * 1.1;
        let title = format!(
            "{}: orders per second",
            report.json["scenario"].as_str().unwrap_or("run")
        );
        let mut rates = ChartBuilder::on(&upper)
            .caption(title, ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(70)
            .build_cartesian_2d(0u32..seconds, 0f64..rate_max)?;
        rates
            .configure_mesh()
            .x_desc("second")
            .y_desc("orders/s")
            .draw()?;
        let line = |pick: fn(&Second) -> u64| {
            report
                .series
                .iter()
                .map(move |second| (second.second, pick(second) as f64))
        };
        /// A line of the rates panel: label, what it plots, colour, stroke width.
        type RateLine = (&'static str, fn(&Second) -> u64, RGBColor, u32);
        let lines: [RateLine; 3] = [
            ("offered", |second| second.offered, BLUE, 2),
            ("answered", |second| second.answered, GREEN, 2),
            ("throttled (429 + shed)", |second| second.throttled, RED, 1),
        ];
        for (label, pick, color, width) in lines {
            rates
                .draw_series(LineSeries::new(line(pick), color.stroke_width(width)))?
                .label(label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
        }
        rates
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;

        let p99_max = report
            .series
            .iter()
            .filter_map(|second| second.p99_ms)
            .fold(1.0f64, f64::max)
            * 2.0;
        let mut latency = ChartBuilder::on(&lower)
            .caption(
                "p99 latency per second of intended send time (ms, log)",
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(70)
            .build_cartesian_2d(0u32..seconds, (0.1f64..p99_max).log_scale())?;
        latency
            .configure_mesh()
            .x_desc("second")
            .y_desc("ms")
            .draw()?;
        latency
            .draw_series(LineSeries::new(
                report
                    .series
                    .iter()
                    .filter_map(|second| second.p99_ms.map(|p99| (second.second, p99.max(0.1)))),
                MAGENTA.stroke_width(2),
            ))?
            .label("p99")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], MAGENTA));
        if let Some(threshold) = report.recovery_threshold_ms {
            latency
                .draw_series(LineSeries::new(
                    [(0, threshold), (seconds, threshold)],
                    BLACK.stroke_width(1),
                ))?
                .label("recovery threshold")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK));
        }
        latency
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|error| anyhow::anyhow!("cannot draw the chart {}: {error}", path.display()))
}

/// The live progress line (indicatif; drawn only on a terminal), until `running` clears.
pub fn progress(
    shared: Arc<Shared>,
    scenario: Scenario,
    rate_scale: f64,
    outboxes: Vec<Arc<Outbox>>,
    running: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let total_ms = (scenario.duration_s() * 1_000.0) as u64;
        let bar = indicatif::ProgressBar::new(total_ms.max(1));
        bar.set_style(
            indicatif::ProgressStyle::with_template("{elapsed:>4} [{bar:24}] {msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        let mut last_answered = 0u64;
        let mut last_at = std::time::Instant::now();
        while running.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(250));
            let now = std::time::Instant::now();
            let elapsed = now.saturating_duration_since(shared.start).as_secs_f64();
            let (phase, rate) = phase_at(&scenario, elapsed);
            let totals = shared
                .collector
                .lock()
                .expect("no panics while the collector is held")
                .totals
                .clone();
            let answered = totals.get(Count::Answered);
            let per_second =
                (answered - last_answered) as f64 / now.duration_since(last_at).as_secs_f64();
            (last_answered, last_at) = (answered, now);
            let queued: usize = outboxes.iter().map(|outbox| outbox.len()).sum();
            bar.set_position(((elapsed * 1_000.0) as u64).min(total_ms));
            bar.set_message(format!(
                "{phase} target {:.0}/s | answered {per_second:.0}/s | sent {} answered {} throttled {} lost {} | queued {queued}",
                rate * rate_scale,
                totals.get(Count::Sent),
                answered,
                totals.throttled(),
                totals.get(Count::Lost),
            ));
        }
        bar.finish_and_clear();
    })
}

/// The phase running `elapsed` seconds into the run, and its rate then.
fn phase_at(scenario: &Scenario, elapsed: f64) -> (String, f64) {
    let mut start = 0.0;
    for phase in &scenario.phases {
        if elapsed < start + phase.duration_s {
            return (
                phase.name.clone(),
                phase.rate_at((elapsed - start).max(0.0)),
            );
        }
        start += phase.duration_s;
    }
    ("drain".to_owned(), 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Tally;

    #[test]
    fn recovery_is_the_first_second_of_a_held_return_and_later_slow_seconds_are_excursions() {
        let scenario = Scenario::parse(
            r#"
name = "r"
[load]
transport = "streams"
connections = 1
[[phases]]
name = "base"
duration_s = 3
rate = 10
[[phases]]
name = "spike"
duration_s = 2
rate = 100
[[phases]]
name = "after"
duration_s = 10
rate = 10
"#,
            "r.toml",
        )
        .unwrap();
        let mut collector = Collector::new(3);
        let mut tally = Tally::default();
        // p99 per second (ms): 5 at baseline, 1,000 in the spike, draining for three
        // seconds after it (with one quick second inside the drain, which is not a
        // recovery), back at 5 from second 8, with one slow second (13) later.
        let p99_ms = [5, 5, 5, 1000, 1000, 500, 8, 300, 5, 6, 5, 5, 5, 80, 5];
        for (second, latency) in p99_ms.iter().enumerate() {
            let phase = match second {
                0..3 => 0,
                3..5 => 1,
                _ => 2,
            };
            tally.latency(second as u32, phase, latency * 1_000, 1);
        }
        collector.absorb(&mut tally);
        let spans = [(0.0, 3.0), (3.0, 5.0), (5.0, 15.0)];
        let recovery = recovery(&scenario, &collector, &spans);
        assert_eq!(recovery.after_phase, "spike");
        // Histogram values are exact to 3 significant digits.
        let close = |value: Option<f64>, expected: f64| {
            value.is_some_and(|value| (value - expected).abs() < expected * 0.002)
        };
        assert!(
            close(recovery.baseline_p99_ms, 5.0),
            "{:?}",
            recovery.baseline_p99_ms
        );
        // max(1.5 x 5, 5 + 5).
        assert!(
            close(recovery.threshold_ms, 10.0),
            "{:?}",
            recovery.threshold_ms
        );
        assert_eq!(recovery.seconds, Some(Some(3)));
        assert_eq!(recovery.excursions.len(), 1);
        assert_eq!(recovery.excursions[0].0, 13);
        assert!(close(Some(recovery.excursions[0].1), 80.0));
    }

    #[test]
    fn one_noisy_second_inside_the_window_is_not_a_failed_recovery() {
        let scenario = Scenario::parse(
            r#"
name = "r"
[load]
transport = "streams"
connections = 1
[[phases]]
name = "base"
duration_s = 2
rate = 10
[[phases]]
name = "spike"
duration_s = 1
rate = 100
[[phases]]
name = "after"
duration_s = 6
rate = 10
"#,
            "r.toml",
        )
        .unwrap();
        let mut collector = Collector::new(3);
        let mut tally = Tally::default();
        for second in 0..9u32 {
            let phase = match second {
                0..2 => 0,
                2 => 1,
                _ => 2,
            };
            for order in 0..1_000 {
                // 10 ms, but 2% at 30 ms in second 4 (its own p99 is 30 ms) and all of
                // the spike at 1 s.
                let ms = match second {
                    2 => 1_000,
                    4 if order < 20 => 30,
                    _ => 10,
                };
                tally.latency(second, phase, ms * 1_000, 1);
            }
        }
        collector.absorb(&mut tally);
        let spans = [(0.0, 2.0), (2.0, 3.0), (3.0, 9.0)];
        let recovery = recovery(&scenario, &collector, &spans);
        // Threshold max(15, 15) ms: back at once, since 20 of 5,000 orders over it is a p99
        // of 10 ms; the noisy second is an excursion.
        assert_eq!(recovery.seconds, Some(Some(0)));
        assert_eq!(recovery.excursions.len(), 1);
        assert_eq!(recovery.excursions[0].0, 4);
    }
}
