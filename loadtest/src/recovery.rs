//! Back to baseline after the spike: how long after the busiest phase the p99 took to come
//! back (and stay) under the threshold the baseline phase sets (`[recovery]` of a scenario).
//!
//! Only whole seconds of load are judged, from the end of the busiest phase to the end of
//! the last; the drain after the load is not.

use crate::scenario::Scenario;
use crate::stats::{Collector, Count, latency_histogram, quantile_ms};

/// The verdict, for the report.
pub struct Recovery {
    pub baseline_phase: String,
    pub baseline_p99_ms: Option<f64>,
    pub threshold_ms: Option<f64>,
    /// The busiest phase, after which the p99 must come back.
    pub after_phase: String,
    pub spike_end_s: f64,
    /// Whether any whole second of load follows the busiest phase. A scenario of one
    /// phase, or whose busiest phase is its last, has nothing to recover from: no verdict
    /// (it would otherwise say "never" of the last phase against itself).
    pub judged: bool,
    /// Seconds from the end of the busiest phase to the recovery. `None`: not computable
    /// (no baseline, or not `judged`); `Some(None)`: never recovered.
    pub seconds: Option<Option<u32>>,
    pub hold_s: u32,
    /// Seconds after the recovery with p99 over the threshold again: (second, p99 ms).
    pub excursions: Vec<(u32, f64)>,
    pub within_s: Option<f64>,
}

impl Recovery {
    /// Judges the run's seconds in `collector`; `spans` are the phases' (start, end) in
    /// seconds of the run.
    pub fn judge(scenario: &Scenario, collector: &Collector, spans: &[(f64, f64)]) -> Recovery {
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
        let baseline_p99_ms = quantile_ms(&collector.phases[baseline_index].latency, 0.99);
        let threshold_ms = baseline_p99_ms.map(|p99| (p99 * rule.factor).max(p99 + rule.slack_ms));
        let spike_end_s = spans[busiest].1;
        let load_end = spans.last().map_or(0.0, |span| span.1);
        let after = AfterSpike {
            collector,
            first: spike_end_s.ceil() as usize,
            // Whole seconds of load only: the last partial second has few orders.
            last: (load_end.floor() as usize).min(collector.seconds.len()),
            hold: rule.hold_s as usize,
        };
        let judged = after.first < after.last;
        let recovered_at = threshold_ms
            .filter(|_| judged)
            .map(|threshold| after.recovered_at(threshold));
        let excursions = match (threshold_ms, recovered_at.flatten()) {
            (Some(threshold), Some(at)) => after.excursions(at, threshold),
            _ => Vec::new(),
        };
        Recovery {
            baseline_phase: scenario.phases[baseline_index].name.clone(),
            baseline_p99_ms,
            threshold_ms,
            after_phase: scenario.phases[busiest].name.clone(),
            spike_end_s,
            judged,
            seconds: recovered_at.map(|at| at.map(|at| (at - after.first) as u32)),
            hold_s: rule.hold_s,
            excursions,
            within_s: rule.within_s,
        }
    }
}

/// The seconds of load after the busiest phase: `first..last`.
struct AfterSpike<'a> {
    collector: &'a Collector,
    first: usize,
    last: usize,
    /// How many seconds in a row must be back.
    hold: usize,
}

impl AfterSpike<'_> {
    fn p99_ms(&self, second: usize) -> Option<f64> {
        quantile_ms(&self.collector.seconds[second].latency, 0.99)
    }

    /// Whether a second's orders got no answer at all (every one shed, or lost): such a
    /// second is not back, however empty its latency.
    fn unanswered(&self, second: usize) -> bool {
        let bucket = &self.collector.seconds[second];
        bucket.latency.is_empty() && bucket.counts.get(Count::Offered) > 0
    }

    /// Whether one second is over the threshold.
    fn over(&self, second: usize, threshold: f64) -> bool {
        match self.p99_ms(second) {
            Some(p99) => p99 > threshold,
            None => self.unanswered(second),
        }
    }

    /// Whether the p99 of every order intended in `hold` seconds from `start` is over the
    /// threshold: the same statistic as the baseline's (the p99 of a whole phase), over a
    /// window. The p99 of each second alone is a noisier statistic (a tenth of the orders):
    /// the baseline's own seconds cross 1.5x its p99 now and then.
    fn window_over(&self, start: usize, threshold: f64) -> bool {
        let end = (start + self.hold).min(self.last);
        if (start..end).any(|second| self.unanswered(second)) {
            return true;
        }
        let mut window = latency_histogram();
        for second in start..end {
            let _ = window.add(&self.collector.seconds[second].latency);
        }
        quantile_ms(&window, 0.99).is_some_and(|p99| p99 > threshold)
    }

    /// The first second from which the next `hold` seconds' orders have their p99 under the
    /// threshold (a window cut short by the end of the load counts).
    fn recovered_at(&self, threshold: f64) -> Option<usize> {
        (self.first..self.last.max(self.first)).find(|start| !self.window_over(*start, threshold))
    }

    /// The seconds from `recovered_at` on that are over the threshold again.
    fn excursions(&self, recovered_at: usize, threshold: f64) -> Vec<(u32, f64)> {
        (recovered_at..self.last)
            .filter(|second| self.over(*second, threshold))
            .map(|second| (second as u32, self.p99_ms(second).unwrap_or(0.0)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Tally;

    /// A scenario of three phases at 10, 100 and 10 orders a second, of these lengths.
    fn base_spike_after(base_s: u32, spike_s: u32, after_s: u32) -> Scenario {
        let phase = |name: &str, duration_s: u32, rate: u32| {
            format!("[[phases]]\nname = \"{name}\"\nduration_s = {duration_s}\nrate = {rate}\n")
        };
        let text = format!(
            "name = \"r\"\n[load]\ntransport = \"streams\"\nconnections = 1\n{}{}{}",
            phase("base", base_s, 10),
            phase("spike", spike_s, 100),
            phase("after", after_s, 10),
        );
        Scenario::parse(&text, "r.toml").unwrap()
    }

    #[test]
    fn recovery_is_the_first_second_of_a_held_return_and_later_slow_seconds_are_excursions() {
        let scenario = base_spike_after(3, 2, 10);
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
        let recovery = Recovery::judge(&scenario, &collector, &spans);
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
    fn a_busiest_phase_that_ends_the_load_gets_no_verdict() {
        let scenario = Scenario::parse(
            "name = \"one\"\n[load]\ntransport = \"streams\"\nconnections = 1\n\
             [[phases]]\nname = \"steady\"\nduration_s = 5\nrate = 10\n\
             [recovery]\nwithin_s = 2\n",
            "one.toml",
        )
        .unwrap();
        let mut collector = Collector::new(1);
        let mut tally = Tally::default();
        for second in 0..5u32 {
            tally.latency(second, 0, 5_000, 1);
        }
        collector.absorb(&mut tally);
        let recovery = Recovery::judge(&scenario, &collector, &[(0.0, 5.0)]);
        assert!(!recovery.judged);
        // No seconds to judge: not "never" (which a `within_s` would fail the run for).
        assert_eq!(recovery.seconds, None);
        assert!(recovery.excursions.is_empty());
        // The same run with a second phase after it is judged.
        let scenario = base_spike_after(2, 1, 2);
        let recovery =
            Recovery::judge(&scenario, &collector, &[(0.0, 2.0), (2.0, 3.0), (3.0, 5.0)]);
        assert!(recovery.judged);
        assert_eq!(recovery.seconds, Some(Some(0)));
    }

    #[test]
    fn one_noisy_second_inside_the_window_is_not_a_failed_recovery() {
        let scenario = base_spike_after(2, 1, 6);
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
        let recovery = Recovery::judge(&scenario, &collector, &spans);
        // Threshold max(15, 15) ms: back at once, since 20 of 5,000 orders over it is a p99
        // of 10 ms; the noisy second is an excursion.
        assert_eq!(recovery.seconds, Some(Some(0)));
        assert_eq!(recovery.excursions.len(), 1);
        assert_eq!(recovery.excursions[0].0, 4);
    }
}
