//! What a run tells when it is over: the JSON report, the table per phase, and the verdict
//! (the failures). The chart is drawn from the report by [`crate::chart`]; the live line
//! while the run lasts is [`crate::progress`].
//!
//! The report is built from the collector alone, after the drain: nothing in it is sampled
//! twice, and its keys are the ones `loadtest/README.md` lists.

use crate::recovery::Recovery;
use crate::scenario::Scenario;
use crate::ship::ShipStats;
use crate::stats::{Collector, Count, Counts, ms, percentiles, quantile_ms};
use crate::stock::StockCheck;
use crate::target::Target;
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::time::Duration;

/// What the per-second count of slow orders counts: answers later than this (ms).
pub const SLOW_MS: u64 = 10;

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
    pub p999_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// Orders intended in this second answered after more than [`SLOW_MS`]: a stall shows
    /// here even when it is too short to move the second's p99.
    pub over_10ms: u64,
    /// The p99 and the longest of this second's send delays (intended time to the line
    /// handed to the connection): a slow second with a small send delay is the server's
    /// (or the network's), one whose send delay is as large is the tool's own lateness or
    /// the server's backpressure.
    pub send_delay_p99_ms: Option<f64>,
    pub send_delay_max_ms: Option<f64>,
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

/// What the report is made of: the run as it was asked for, and what it counted.
pub struct RunFacts<'a> {
    pub scenario: &'a Scenario,
    pub rate_scale: f64,
    pub target: &'a Target,
    pub run_id: &'a str,
    pub collector: &'a Collector,
    /// From the first intended send to the end of the last phase.
    pub load: Duration,
    /// From the first intended send to the end of the drain.
    pub elapsed: Duration,
    pub stock: Option<StockCheck>,
    /// What shipping did, when the scenario ships (`[ship]`).
    pub shipping: Option<ShipStats>,
    /// What was adapted to the server.
    pub notes: Vec<String>,
}

pub fn build_report(facts: RunFacts<'_>) -> Report {
    let series = series(facts.collector);
    let (phases, spans) = phases(&facts);
    let recovery = Recovery::judge(facts.scenario, facts.collector, &spans);
    let failures = failures(&facts, &recovery);
    let json = report_json(&facts, phases, &series, &recovery, &failures);
    let table = table(&json);
    Report {
        json,
        series,
        recovery_threshold_ms: recovery.threshold_ms.filter(|_| recovery.judged),
        failures,
        table,
    }
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

/// Every second of the run, with the server's memory where it was sampled.
fn series(collector: &Collector) -> Vec<Second> {
    let memory_by_second: std::collections::HashMap<u32, u64> =
        collector.memory.iter().copied().collect();
    collector
        .seconds
        .iter()
        .enumerate()
        .map(|(second, bucket)| Second {
            second: second as u32,
            offered: bucket.counts.get(Count::Offered),
            sent: bucket.counts.get(Count::Sent),
            answered: bucket.counts.get(Count::Answered),
            throttled: bucket.counts.throttled(),
            lost: bucket.counts.get(Count::Lost),
            p50_ms: quantile_ms(&bucket.latency, 0.5),
            p99_ms: quantile_ms(&bucket.latency, 0.99),
            p999_ms: quantile_ms(&bucket.latency, 0.999),
            max_ms: (!bucket.latency.is_empty()).then(|| ms(bucket.latency.max())),
            over_10ms: bucket.latency.len() - bucket.latency.count_between(0, SLOW_MS * 1000),
            send_delay_p99_ms: bucket
                .send_delay
                .as_ref()
                .and_then(|delays| quantile_ms(delays, 0.99)),
            send_delay_max_ms: bucket
                .send_delay
                .as_ref()
                .filter(|delays| !delays.is_empty())
                .map(|delays| ms(delays.max())),
            resident_bytes: memory_by_second.get(&(second as u32)).copied(),
        })
        .collect()
}

/// The phases' rows of the report, and their (start, end) in seconds of the run.
fn phases(facts: &RunFacts<'_>) -> (Vec<Value>, Vec<(f64, f64)>) {
    let mut rows = Vec::new();
    let mut spans = Vec::new();
    let mut start = 0.0;
    for (phase, bucket) in facts.scenario.phases.iter().zip(&facts.collector.phases) {
        let duration = phase.duration_s;
        spans.push((start, start + duration));
        rows.push(json!({
            "name": phase.name,
            "start_s": start,
            "duration_s": duration,
            "target_rate_per_s": phase.rate * facts.rate_scale,
            "peak_rate_per_s": phase.peak_rate() * facts.rate_scale,
            "offered_per_s": bucket.counts.get(Count::Offered) as f64 / duration,
            "answered_per_s": bucket.counts.get(Count::Answered) as f64 / duration,
            "totals": totals(&bucket.counts),
            "latency_ms": percentiles(&bucket.latency),
        }));
        start += duration;
    }
    (rows, spans)
}

/// Why the run failed, if it did: an order lost or answered wrongly, an order the tool
/// lost track of, stock that does not add up, or a recovery too slow.
fn failures(facts: &RunFacts<'_>, recovery: &Recovery) -> Vec<String> {
    let counts = &facts.collector.totals;
    let mut failures = Vec::new();
    for (count, what) in [
        (Count::Lost, "orders sent and never answered (lost)"),
        (
            Count::UnexpectedDuplicate,
            "new orders answered as duplicates",
        ),
        (Count::Mismatch, "answers not as they must be"),
        (Count::TransportError, "transport errors"),
    ] {
        let n = counts.get(count);
        if n > 0 {
            failures.push(format!("{n} {what}"));
        }
    }
    if counts.get(Count::Answered) == 0 {
        failures.push("no order was answered".to_owned());
    }
    failures.extend(accounting_gaps(facts.scenario, facts.collector));
    if let Some(stock) = &facts.stock
        && !stock.mismatches.is_empty()
    {
        failures.push(format!(
            "reserved stock differs from the decisions at {} levels",
            stock.mismatches.len()
        ));
    }
    failures.extend(slow_recovery(recovery));
    if let Some(shipping) = &facts.shipping {
        failures.extend(shipping_failures(shipping));
    }
    failures
}

/// Shipments the server refused or that broke (a shipment late or not sent by the end is
/// reported, not failed), or that the tool lost track of.
fn shipping_failures(shipping: &ShipStats) -> Vec<String> {
    let mut failures = Vec::new();
    let failed = shipping.failed_total();
    if failed > 0 {
        let by_status: Vec<String> = shipping
            .failed
            .iter()
            .map(|(status, n)| format!("{status}: {n}"))
            .collect();
        failures.push(format!(
            "{failed} shipments failed ({})",
            by_status.join(", ")
        ));
    }
    if shipping.unaccounted() != 0 {
        failures.push(format!(
            "shipping: {} shipments chosen but {} accounted for (shipped, failed, not shipped, queue full)",
            shipping.chosen,
            i128::from(shipping.chosen) - shipping.unaccounted()
        ));
    }
    failures
}

/// Every order offered ends exactly once: decided, a duplicate, invalid, misanswered,
/// throttled (429 or shed) or lost. A gap, in the run or in a phase, is an order the tool
/// lost track of.
fn accounting_gaps(scenario: &Scenario, collector: &Collector) -> Vec<String> {
    let phases = scenario
        .phases
        .iter()
        .zip(&collector.phases)
        .map(|(phase, bucket)| (phase.name.as_str(), &bucket.counts));
    std::iter::once(("the run", &collector.totals))
        .chain(phases)
        .filter_map(|(name, counts)| {
            let (offered, ended) = (counts.get(Count::Offered), counts.ended());
            (offered != ended).then(|| {
                format!(
                    "{name}: {offered} orders offered but {ended} accounted for (decided, duplicates, invalid, mismatched, throttled, lost)"
                )
            })
        })
        .collect()
}

/// A recovery slower than the scenario's `within_s`, or none at all, when it sets one.
fn slow_recovery(recovery: &Recovery) -> Option<String> {
    let (within, taken) = (recovery.within_s?, recovery.seconds?);
    match taken {
        Some(seconds) if f64::from(seconds) <= within => None,
        Some(seconds) => Some(format!(
            "p99 took {seconds} s to come back to baseline after {} (limit {within} s)",
            recovery.after_phase
        )),
        None => Some(format!(
            "p99 never came back to baseline after {}",
            recovery.after_phase
        )),
    }
}

fn report_json(
    facts: &RunFacts<'_>,
    phases: Vec<Value>,
    series: &[Second],
    recovery: &Recovery,
    failures: &[String],
) -> Value {
    let (scenario, collector) = (facts.scenario, facts.collector);
    let counts = &collector.totals;
    let elapsed_s = facts.elapsed.as_secs_f64().max(1e-9);
    let answered_right =
        counts.get(Count::Decided) + counts.get(Count::Duplicate) + counts.get(Count::Invalid);
    let mut report = json!({
        "scenario": scenario.name,
        "target": format!("http://{}", facts.target.authority),
        "run_id": facts.run_id,
        "transport": format!("{:?}", scenario.load.transport).to_lowercase(),
        "connections": scenario.load.connections,
        "rate_scale": facts.rate_scale,
        "duration_s": facts.load.as_secs_f64(),
        "elapsed_s": elapsed_s,
        "totals": totals(counts),
        "statuses": collector.statuses,
        // Answers as they must be, per second from the first intended send to the end of
        // the drain (the last answer).
        "throughput_per_s": answered_right as f64 / elapsed_s,
        "latency_ms": percentiles(&collector.latency),
        "send_delay_ms": percentiles(&collector.send_delay),
        "shed_wait_ms": percentiles(&collector.shed_wait),
        "phases": phases,
        "series": series,
        "memory": {
            "peak_resident_bytes": collector.memory_peak,
            "last_resident_bytes": collector.memory.last().map(|sample| sample.1),
            "samples": collector.memory.len(),
        },
        "recovery": recovery_json(recovery),
        "stock_check": facts.stock.as_ref().map(stock_json),
        "notes": facts.notes,
        "problems_total": collector.problems_total,
        "problems": collector.problems,
        "passed": failures.is_empty(),
        "failures": failures,
    });
    // Only when the scenario ships: a report without `[ship]` is as it always was.
    if let (Some(shipping), Some(ship)) = (&facts.shipping, &scenario.ship) {
        report["shipping"] = shipping.json(ship);
    }
    report
}

fn recovery_json(recovery: &Recovery) -> Value {
    let excursions: Vec<Value> = recovery
        .excursions
        .iter()
        .map(|(second, p99)| json!({"second": second, "p99_ms": p99}))
        .collect();
    json!({
        "baseline_phase": recovery.baseline_phase,
        "baseline_p99_ms": recovery.baseline_p99_ms,
        "threshold_ms": recovery.threshold_ms,
        "after_phase": recovery.after_phase,
        "spike_end_s": recovery.spike_end_s,
        "judged": recovery.judged,
        "seconds_to_baseline": recovery.seconds.flatten(),
        "hold_s": recovery.hold_s,
        "excursions_after": excursions,
        "within_s": recovery.within_s,
    })
}

fn stock_json(stock: &StockCheck) -> Value {
    let mut json = json!({
        "levels_checked": stock.levels_checked,
        "units_shipped": stock.units_shipped,
        "mismatches": stock.mismatches.len(),
        "first_mismatches": stock.mismatches.iter().take(10).collect::<Vec<_>>(),
    });
    if let Some(consumed) = stock.units_consumed {
        json["units_consumed"] = consumed.into();
    }
    json
}

/// The final table: one row per phase and one for the whole run, then the totals, the
/// recovery and the server's peak memory.
fn table(report: &Value) -> String {
    let mut out = String::new();
    table_row(
        &mut out,
        [
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
            "max ms",
        ]
        .map(str::to_owned),
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
        let (totals, latency) = (&row["totals"], &row["latency_ms"]);
        let count = |key: &str| totals[key].as_u64().unwrap_or(0).to_string();
        table_row(
            &mut out,
            [
                row["name"].as_str().unwrap_or("?").to_owned(),
                number(&row["duration_s"]),
                number(&row["offered_per_s"]),
                number(&row["answered_per_s"]),
                count("sent"),
                count("decided"),
                count("throttled"),
                count("lost"),
                number(&latency["p50"]),
                number(&latency["p99"]),
                number(&latency["p999"]),
                number(&latency["max"]),
            ],
        );
    }
    totals_line(&mut out, &report["totals"]);
    slowest_seconds_line(&mut out, &report["series"]);
    shipping_lines(&mut out, &report["shipping"]);
    recovery_lines(&mut out, &report["recovery"]);
    if let Some(peak) = report["memory"]["peak_resident_bytes"].as_u64() {
        let _ = writeln!(
            out,
            "server peak resident memory: {:.0} MiB",
            peak as f64 / 1_048_576.0
        );
    }
    out
}

/// A number of the table: whole from 100 up, two decimals below, `-` when there is none.
fn number(value: &Value) -> String {
    match value.as_f64() {
        Some(n) if n >= 100.0 => format!("{:.0}", n),
        Some(n) => format!("{:.2}", n),
        None => "-".to_owned(),
    }
}

/// A row of the table: the phase's name left-aligned, the numbers right-aligned.
fn table_row(out: &mut String, cells: [String; 12]) {
    const WIDTHS: [usize; 12] = [14, 7, 10, 10, 10, 10, 9, 6, 8, 8, 8, 9];
    let _ = write!(out, "{:<width$}", cells[0], width = WIDTHS[0]);
    for (cell, width) in cells.iter().zip(WIDTHS).skip(1) {
        let _ = write!(out, " {cell:>width$}");
    }
    out.push('\n');
}

fn totals_line(out: &mut String, totals: &Value) {
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
}

/// A second's p99 over this (ms) counts as a stall in the table's summary line.
const STALL_P99_MS: f64 = 20.0;

/// How many seconds had a p99 over [`STALL_P99_MS`], and the slowest three with their send
/// delay, so that a stall and whose it was show without opening the report.
fn slowest_seconds_line(out: &mut String, series: &Value) {
    let mut seconds: Vec<&Value> = series
        .as_array()
        .into_iter()
        .flatten()
        .filter(|second| second["p99_ms"].is_number())
        .collect();
    if seconds.is_empty() {
        return;
    }
    let p99 = |second: &Value| second["p99_ms"].as_f64().unwrap_or(0.0);
    let stalls = seconds
        .iter()
        .filter(|second| p99(second) > STALL_P99_MS)
        .count();
    let total = seconds.len();
    seconds.sort_by(|a, b| p99(b).total_cmp(&p99(a)));
    let shown: Vec<String> = seconds
        .iter()
        .take(3)
        .map(|second| {
            format!(
                "{} ({} ms, {} over 10 ms, send delay p99 {} ms)",
                second["second"],
                number(&second["p99_ms"]),
                second["over_10ms"],
                number(&second["send_delay_p99_ms"]),
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "seconds with a p99 over {STALL_P99_MS} ms: {stalls} of {total}; the slowest by p99: {}",
        shown.join(", ")
    );
}

/// What shipping did, when the scenario ships.
fn shipping_lines(out: &mut String, shipping: &Value) {
    if !shipping.is_object() {
        return;
    }
    let failed: Vec<String> = shipping["failed_by_status"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(status, n)| format!("{status}: {n}"))
        .collect();
    let _ = writeln!(
        out,
        "shipped {} of {} chosen ({} eligible) in {} requests; failed {}{}; 429s retried {}; not shipped at the end {} ({} of them due); queue full {}",
        shipping["shipped"],
        shipping["chosen"],
        shipping["eligible"],
        shipping["requests"],
        shipping["failed"],
        if failed.is_empty() {
            String::new()
        } else {
            format!(" ({})", failed.join(", "))
        },
        shipping["throttled_429"],
        shipping["not_shipped"],
        shipping["not_shipped_due"],
        shipping["queue_full"],
    );
    let _ = writeln!(
        out,
        "  shipping late (due to sent) p50 {} p99 {} max {} ms; ship request p50 {} p99 {} ms",
        number(&shipping["late_ms"]["p50"]),
        number(&shipping["late_ms"]["p99"]),
        number(&shipping["late_ms"]["max"]),
        number(&shipping["latency_ms"]["p50"]),
        number(&shipping["latency_ms"]["p99"]),
    );
}

/// The recovery verdict and the later seconds over the threshold, when there is a baseline
/// and load after the busiest phase to judge (`judged`).
fn recovery_lines(out: &mut String, recovery: &Value) {
    if !recovery["threshold_ms"].is_number() || recovery["judged"] == json!(false) {
        return;
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Tally;

    #[test]
    fn each_second_tells_its_p999_and_its_orders_over_10_ms() {
        let mut collector = Collector::new(1);
        let mut tally = Tally::default();
        // Second 1: 994 answers at 1 ms, 2 at 9.5 ms, 4 stalled at 30 ms.
        for (count, latency_us) in [(994, 1_000), (2, 9_500), (4, 30_000)] {
            for _ in 0..count {
                tally.latency(1, 0, latency_us, 10);
            }
        }
        // Second 2: all quick.
        for _ in 0..100 {
            tally.latency(2, 0, 800, 10);
        }
        collector.absorb(&mut tally);
        let series = series(&collector);
        let stalled = &series[1];
        assert_eq!(stalled.over_10ms, 4);
        let near = |value: Option<f64>, expected: f64| (value.unwrap() - expected).abs() < 0.1;
        assert!(near(stalled.p50_ms, 1.0), "{stalled:?}");
        assert!(near(stalled.p99_ms, 1.0), "{stalled:?}");
        assert!(near(stalled.p999_ms, 30.0), "{stalled:?}");
        assert_eq!(series[2].over_10ms, 0);
        assert!(near(series[2].p999_ms, 0.8));
        assert_eq!(series[0].p999_ms, None);
    }

    #[test]
    fn the_table_counts_the_stalled_seconds_and_names_the_slowest_with_their_send_delay() {
        let series = json!([
            {"second": 0, "p99_ms": null, "over_10ms": 0, "send_delay_p99_ms": null},
            {"second": 1, "p99_ms": 2.1, "over_10ms": 0, "send_delay_p99_ms": 0.7},
            {"second": 2, "p99_ms": 39.9, "over_10ms": 861, "send_delay_p99_ms": 0.8},
            {"second": 3, "p99_ms": 12.5, "over_10ms": 249, "send_delay_p99_ms": 8.58},
            {"second": 4, "p99_ms": 25.3, "over_10ms": 713, "send_delay_p99_ms": 0.81},
        ]);
        let mut out = String::new();
        slowest_seconds_line(&mut out, &series);
        assert_eq!(
            out,
            "seconds with a p99 over 20 ms: 2 of 4; the slowest by p99: \
             2 (39.90 ms, 861 over 10 ms, send delay p99 0.80 ms), \
             4 (25.30 ms, 713 over 10 ms, send delay p99 0.81 ms), \
             3 (12.50 ms, 249 over 10 ms, send delay p99 8.58 ms)\n"
        );
        // No seconds with answers: no line.
        let mut empty = String::new();
        slowest_seconds_line(&mut empty, &json!([{"second": 0, "p99_ms": null}]));
        assert_eq!(empty, "");
    }

    #[test]
    fn the_recovery_verdict_is_left_out_when_no_load_follows_the_busiest_phase() {
        let recovery = json!({
            "baseline_phase": "steady",
            "baseline_p99_ms": 2.5,
            "threshold_ms": 6.0,
            "after_phase": "steady",
            "spike_end_s": 300.0,
            "judged": false,
            "seconds_to_baseline": null,
            "hold_s": 5,
            "excursions_after": [],
        });
        // One phase of 300 s: nothing after it, no verdict (it would say "never").
        let mut out = String::new();
        recovery_lines(&mut out, &recovery);
        assert_eq!(out, "");
        // A spike followed by load: the verdict.
        let mut recovery = recovery;
        recovery["judged"] = json!(true);
        let mut out = String::new();
        recovery_lines(&mut out, &recovery);
        assert!(
            out.starts_with(
                "p99 after steady: back under 6.00 ms (baseline steady p99 2.50 ms) never"
            ),
            "{out}"
        );
    }

    #[test]
    fn each_second_tells_its_send_delay_apart_from_its_latency() {
        let mut collector = Collector::new(1);
        let mut tally = Tally::default();
        // Second 1: the server held the answers (30 ms) while the tool sent on time.
        for _ in 0..200 {
            tally.latency(1, 0, 30_000, 100);
        }
        // Second 2: the tool was late itself (25 ms) and the server quick after that.
        for _ in 0..99 {
            tally.latency(2, 0, 26_000, 25_000);
        }
        tally.latency(2, 0, 27_000, 26_000);
        collector.absorb(&mut tally);
        let series = series(&collector);
        // Within the histogram's 1%.
        let near = |value: Option<f64>, expected: f64| {
            (value.unwrap() - expected).abs() <= expected * 0.01
        };
        let (server, tool) = (&series[1], &series[2]);
        assert!(near(server.p99_ms, 30.0), "{server:?}");
        assert!(near(server.send_delay_p99_ms, 0.1), "{server:?}");
        assert!(near(server.send_delay_max_ms, 0.1), "{server:?}");
        assert!(near(tool.p99_ms, 26.0), "{tool:?}");
        assert!(near(tool.send_delay_p99_ms, 25.0), "{tool:?}");
        assert!(near(tool.send_delay_max_ms, 26.0), "{tool:?}");
        // A second with no orders has neither.
        assert_eq!(series[0].send_delay_p99_ms, None);
        assert_eq!(series[0].send_delay_max_ms, None);
        // And the report's series carries them.
        let row = serde_json::to_value(server).unwrap();
        assert!(row["send_delay_p99_ms"].as_f64().is_some(), "{row}");
        assert!(row["send_delay_max_ms"].as_f64().is_some(), "{row}");
    }
}
