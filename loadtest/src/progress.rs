//! The live progress line while a run lasts (indicatif): phase, target rate, answered per
//! second, sent, answered, throttled, lost, queued in the tool (and, with `[ship]`, orders
//! shipped and shipments waiting). Redrawn four times a second on a thread of its own;
//! indicatif draws it only on a terminal.

use crate::connection::Shared;
use crate::outbox::Outbox;
use crate::scenario::Scenario;
use crate::stats::Count;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

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
        let mut last_at = Instant::now();
        while running.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(250));
            let now = Instant::now();
            let elapsed = now.saturating_duration_since(shared.start).as_secs_f64();
            let (phase, rate) = phase_at(&scenario, elapsed);
            let totals = shared.collector().totals.clone();
            let answered = totals.get(Count::Answered);
            let per_second =
                (answered - last_answered) as f64 / now.duration_since(last_at).as_secs_f64();
            (last_answered, last_at) = (answered, now);
            let queued: usize = outboxes.iter().map(|outbox| outbox.len()).sum();
            bar.set_position(((elapsed * 1_000.0) as u64).min(total_ms));
            let shipping = shared.shipper.as_ref().map_or(String::new(), |shipper| {
                let (waiting, shipped) = shipper.progress();
                format!(" | shipped {shipped} waiting {waiting}")
            });
            bar.set_message(format!(
                "{phase} target {:.0}/s | answered {per_second:.0}/s | sent {} answered {} throttled {} lost {} | queued {queued}{shipping}",
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
