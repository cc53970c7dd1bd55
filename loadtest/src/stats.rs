//! What happened, counted: totals, per phase and per second, with latency histograms.
//!
//! Tasks count into a local [`Tally`] and hand it to the shared [`Collector`] in batches: a
//! stream's reader once per answered chunk and its writer once per chunk sent, a request
//! connection every 64 entries, the scheduler every 4,096 (one lock per batch, not per
//! order). Every count carries two places in
//! time: the second it happened (for the time series: achieved rate, throttling) and the
//! phase of the order's *intended* send time (for the per-phase table). Latency runs from the
//! intended send time to the answer and is filed under the intended second, so a stall shows
//! in the seconds whose orders it held up, however late they were sent.

use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Latencies are recorded in microseconds, from 1 µs to 10 minutes, at 3 significant digits.
const LATENCY_MAX_US: u64 = 600_000_000;

pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_MAX_US, 3).expect("static histogram bounds are valid")
}

/// Microseconds as milliseconds (exact to the microsecond).
pub fn ms(micros: u64) -> f64 {
    micros as f64 / 1_000.0
}

/// A quantile of a latency histogram in milliseconds; `None` when it holds nothing.
pub fn quantile_ms(histogram: &Histogram<u64>, quantile: f64) -> Option<f64> {
    (!histogram.is_empty()).then(|| ms(histogram.value_at_quantile(quantile)))
}

/// p50, p90, p99, p999, max and mean of a histogram of microseconds, in milliseconds.
pub fn percentiles(histogram: &Histogram<u64>) -> Value {
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

/// The things counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Count {
    /// Scheduled: due at its intended time.
    Offered,
    /// Handed to the server.
    Sent,
    /// Any answer line (or response) received for a sent line.
    Answered,
    /// A new order decided (any status), as expected.
    Decided,
    /// A resend answered as the duplicate of its original, as expected.
    Duplicate,
    /// A malformed line answered `invalid` with the right code (and line), as expected.
    Invalid,
    /// Refused with 429 (after the scenario's retries).
    Throttled429,
    /// Never sent: held by the server's backpressure (or every connection busy) past
    /// `max_queue_ms`.
    Shed,
    /// Sent and never answered.
    Lost,
    /// Answered, but not as it must be (wrong id, wrong code, a 5xx, ...).
    Mismatch,
    /// A new order answered `"duplicate": true`: an id the server saw before.
    UnexpectedDuplicate,
    /// Connection failures and broken responses.
    TransportError,
}

/// How many things are counted: the variants of [`Count`].
const COUNTS: usize = 12;

#[derive(Debug, Clone, Default)]
pub struct Counts([u64; COUNTS]);

impl Counts {
    pub fn get(&self, count: Count) -> u64 {
        self.0[count as usize]
    }

    fn add(&mut self, count: Count, n: u64) {
        self.0[count as usize] += n;
    }

    /// Orders the server pushed back: 429s and shed.
    pub fn throttled(&self) -> u64 {
        self.get(Count::Throttled429) + self.get(Count::Shed)
    }

    /// Orders with an outcome: each offered order must end as exactly one of these.
    pub fn ended(&self) -> u64 {
        [
            Count::Decided,
            Count::Duplicate,
            Count::Invalid,
            Count::Mismatch,
            Count::UnexpectedDuplicate,
            Count::Throttled429,
            Count::Shed,
            Count::Lost,
        ]
        .iter()
        .map(|count| self.get(*count))
        .sum()
    }
}

/// Counts and latencies made by one task, not yet handed over.
#[derive(Default)]
pub struct Tally {
    /// (count, second it happened, phase of the order, how many)
    counts: Vec<(Count, u32, u8, u32)>,
    /// (intended second, phase, latency µs, send delay µs)
    latencies: Vec<(u32, u8, u64, u64)>,
    statuses: Vec<(String, u64)>,
    problems: Vec<String>,
    shed_waits: Vec<u64>,
}

impl Tally {
    /// Counts `n` of `count`. Runs of the same (count, second, phase), the common case (a
    /// chunk's lines, a tick's orders), add up in one entry rather than one per order.
    pub fn count(&mut self, count: Count, second: u32, phase: u8, n: u32) {
        if n == 0 {
            return;
        }
        match self.counts.last_mut() {
            Some(last) if (last.0, last.1, last.2) == (count, second, phase) => last.3 += n,
            _ => self.counts.push((count, second, phase, n)),
        }
    }

    /// An order shed after waiting `waited_us` since its intended time.
    pub fn shed(&mut self, second: u32, phase: u8, waited_us: u64) {
        self.count(Count::Shed, second, phase, 1);
        self.shed_waits.push(waited_us.max(1));
    }

    pub fn latency(
        &mut self,
        intended_second: u32,
        phase: u8,
        latency_us: u64,
        send_delay_us: u64,
    ) {
        self.latencies.push((
            intended_second,
            phase,
            latency_us.max(1),
            send_delay_us.max(1),
        ));
    }

    pub fn status(&mut self, status: &str) {
        match self.statuses.iter_mut().find(|(known, _)| known == status) {
            Some((_, n)) => *n += 1,
            None => self.statuses.push((status.to_owned(), 1)),
        }
    }

    /// A line of explanation for a mismatch or an error (the first few are reported).
    pub fn problem(&mut self, text: String) {
        self.problems.push(text);
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.counts.len() + self.latencies.len() + self.shed_waits.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
            && self.latencies.is_empty()
            && self.problems.is_empty()
            && self.shed_waits.is_empty()
    }
}

/// A histogram of send delays for one second: two significant figures (1%) are enough to
/// tell the tool's own lateness from the server's, at a seventh of the memory of a
/// [`latency_histogram`] (3,072 counters of 8 bytes, 24 KiB a second of the run, against
/// 21,504 and 168 KiB: HdrHistogram's layout for these bounds).
pub fn send_delay_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_MAX_US, 2).expect("static histogram bounds are valid")
}

/// One phase's or one second's numbers.
pub struct Bucket {
    pub counts: Counts,
    pub latency: Histogram<u64>,
    /// Send delays of the orders intended in this second (seconds only; empty for phases).
    pub send_delay: Option<Histogram<u64>>,
}

impl Bucket {
    fn new() -> Bucket {
        Bucket {
            counts: Counts::default(),
            latency: latency_histogram(),
            send_delay: None,
        }
    }

    fn second() -> Bucket {
        Bucket {
            send_delay: Some(send_delay_histogram()),
            ..Bucket::new()
        }
    }
}

/// Everything, merged.
pub struct Collector {
    pub totals: Counts,
    pub latency: Histogram<u64>,
    /// From intended send time to the moment the line was handed to the server: the tool's
    /// own lateness plus the time the server's backpressure held it.
    pub send_delay: Histogram<u64>,
    /// How long shed orders had waited when they were shed: a lower bound of the latency
    /// they never got, so a server that stops reading shows beyond `max_queue_ms` too.
    pub shed_wait: Histogram<u64>,
    pub phases: Vec<Bucket>,
    pub seconds: Vec<Bucket>,
    pub statuses: BTreeMap<String, u64>,
    pub problems: Vec<String>,
    pub problems_total: u64,
    /// The server's resident memory sampled each second (second, bytes).
    pub memory: Vec<(u32, u64)>,
    pub memory_peak: Option<u64>,
}

/// How many problem lines are kept for the report.
const PROBLEMS_KEPT: usize = 20;

impl Collector {
    pub fn new(phases: usize) -> Collector {
        Collector {
            totals: Counts::default(),
            latency: latency_histogram(),
            send_delay: latency_histogram(),
            shed_wait: latency_histogram(),
            phases: (0..phases).map(|_| Bucket::new()).collect(),
            seconds: Vec::new(),
            statuses: BTreeMap::new(),
            problems: Vec::new(),
            problems_total: 0,
            memory: Vec::new(),
            memory_peak: None,
        }
    }

    fn second(&mut self, second: u32) -> &mut Bucket {
        let index = second as usize;
        while self.seconds.len() <= index {
            self.seconds.push(Bucket::second());
        }
        &mut self.seconds[index]
    }

    /// Takes a task's tally (leaving it empty, its buffers kept).
    pub fn absorb(&mut self, tally: &mut Tally) {
        for (count, second, phase, n) in tally.counts.drain(..) {
            let n = u64::from(n);
            self.totals.add(count, n);
            if let Some(bucket) = self.phases.get_mut(phase as usize) {
                bucket.counts.add(count, n);
            }
            self.second(second).counts.add(count, n);
        }
        for (second, phase, latency, delay) in tally.latencies.drain(..) {
            let latency = latency.min(LATENCY_MAX_US);
            let delay = delay.min(LATENCY_MAX_US);
            self.latency.saturating_record(latency);
            self.send_delay.saturating_record(delay);
            if let Some(bucket) = self.phases.get_mut(phase as usize) {
                bucket.latency.saturating_record(latency);
            }
            let bucket = self.second(second);
            bucket.latency.saturating_record(latency);
            if let Some(delays) = &mut bucket.send_delay {
                delays.saturating_record(delay);
            }
        }
        for waited in tally.shed_waits.drain(..) {
            self.shed_wait.saturating_record(waited.min(LATENCY_MAX_US));
        }
        for (status, n) in tally.statuses.drain(..) {
            *self.statuses.entry(status).or_default() += n;
        }
        for problem in tally.problems.drain(..) {
            self.problems_total += 1;
            if self.problems.len() < PROBLEMS_KEPT {
                self.problems.push(problem);
            }
        }
    }

    pub fn sample_memory(&mut self, second: u32, resident: Option<u64>, peak: Option<u64>) {
        if let Some(resident) = resident {
            self.memory.push((second, resident));
        }
        let highest = peak.or(resident);
        if let Some(highest) = highest {
            self.memory_peak = Some(self.memory_peak.map_or(highest, |known| known.max(highest)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seconds_send_delays_take_a_seventh_of_a_latency_histogram() {
        // The figures `send_delay_histogram`'s documentation gives.
        assert_eq!(send_delay_histogram().distinct_values(), 3_072);
        assert_eq!(latency_histogram().distinct_values(), 21_504);
    }

    #[test]
    fn a_tally_lands_in_totals_phases_and_seconds() {
        let mut collector = Collector::new(2);
        let mut tally = Tally::default();
        tally.count(Count::Sent, 3, 1, 5);
        tally.count(Count::Shed, 4, 1, 2);
        tally.count(Count::Throttled429, 4, 0, 1);
        tally.shed(4, 1, 7_000);
        tally.latency(2, 1, 1_500, 10);
        tally.latency(2, 1, 2_500, 30);
        tally.status("routed");
        tally.status("routed");
        tally.problem("one".to_owned());
        collector.absorb(&mut tally);
        assert!(tally.is_empty());
        assert_eq!(collector.totals.get(Count::Sent), 5);
        assert_eq!(collector.totals.throttled(), 4);
        assert_eq!(collector.phases[1].counts.get(Count::Shed), 3);
        assert_eq!(collector.phases[0].counts.get(Count::Throttled429), 1);
        assert_eq!(collector.seconds.len(), 5);
        assert_eq!(collector.seconds[4].counts.throttled(), 4);
        assert_eq!(collector.seconds[3].counts.get(Count::Sent), 5);
        // Each latency lands once in the totals, in its phase and in its intended second,
        // and nowhere else; values are exact to 3 significant digits.
        for histogram in [
            &collector.latency,
            &collector.phases[1].latency,
            &collector.seconds[2].latency,
        ] {
            assert_eq!(histogram.len(), 2);
            assert_eq!(
                [histogram.min(), histogram.max()],
                [1_500, histogram.highest_equivalent(2_500)]
            );
        }
        assert!(collector.phases[0].latency.is_empty());
        assert!(collector.seconds[4].latency.is_empty());
        assert_eq!(collector.send_delay.len(), 2);
        assert_eq!(collector.send_delay.max(), 30);
        assert_eq!(collector.shed_wait.len(), 1);
        assert_eq!(
            collector.shed_wait.max(),
            collector.shed_wait.highest_equivalent(7_000)
        );
        assert_eq!(collector.statuses["routed"], 2);
        assert_eq!(collector.problems, ["one"]);
        assert_eq!(collector.problems_total, 1);
    }
}
