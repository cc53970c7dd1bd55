//! The chart of a run (SVG): offered, answered and throttled orders per second, and those
//! answered after more than 10 ms, above; p50, p99 and p99.9 per second of intended send
//! time (log scale), with the p99 of the same orders' send delay (the tool's own lateness
//! and the server's backpressure, to tell a slow second's cause) and the recovery threshold,
//! below; and,
//! when the server reports it, its resident memory each second at the bottom (a soak's
//! plateau, or its growth, shows there).

use crate::report::{Report, Second};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

type Chart<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// Draws the chart of `report` into `path`.
pub fn chart(report: &Report, path: &Path) -> anyhow::Result<()> {
    let draw = || -> DrawResult {
        let memory = report
            .series
            .iter()
            .any(|second| second.resident_bytes.is_some());
        let height = if memory { 1000 } else { 720 };
        let root = SVGBackend::new(path, (1100, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let (upper, lower) = root.split_vertically(380);
        draw_rates(&upper, report)?;
        if memory {
            let (middle, bottom) = lower.split_vertically(340);
            draw_latency(&middle, report)?;
            draw_memory(&bottom, report)?;
        } else {
            draw_latency(&lower, report)?;
        }
        root.present()?;
        Ok(())
    };
    draw().map_err(|error| anyhow::anyhow!("cannot draw the chart {}: {error}", path.display()))
}

/// The x axis: every second of the series.
fn seconds(report: &Report) -> u32 {
    report.series.len().max(1) as u32
}

/// A legend's sample: a short line in the series' colour.
fn legend_line(color: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color)
}

/// Offered, answered and throttled orders per second.
fn draw_rates(area: &Chart<'_>, report: &Report) -> DrawResult {
    let seconds = seconds(report);
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
    let mut rates = ChartBuilder::on(area)
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
    let lines: [RateLine; 4] = [
        ("offered", |second| second.offered, BLUE, 2),
        ("answered", |second| second.answered, GREEN, 2),
        ("throttled (429 + shed)", |second| second.throttled, RED, 1),
        (
            "answered after > 10 ms",
            |second| second.over_10ms,
            BLACK,
            1,
        ),
    ];
    for (label, pick, color, width) in lines {
        rates
            .draw_series(LineSeries::new(line(pick), color.stroke_width(width)))?
            .label(label)
            .legend(legend_line(color));
    }
    rates
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// The p50, p99 and p99.9 of each second (log scale), its send delay's p99, and the
/// recovery threshold.
fn draw_latency(area: &Chart<'_>, report: &Report) -> DrawResult {
    let seconds = seconds(report);
    let p99_max = report
        .series
        .iter()
        .filter_map(|second| second.p999_ms.or(second.p99_ms))
        .fold(1.0f64, f64::max)
        * 2.0;
    let mut latency = ChartBuilder::on(area)
        .caption(
            "latency per second of intended send time (ms, log)",
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
    /// A line of the latency panel: label, what it plots, colour, stroke width.
    type LatencyLine = (&'static str, fn(&Second) -> Option<f64>, RGBColor, u32);
    let lines: [LatencyLine; 4] = [
        ("p50", |second| second.p50_ms, BLUE, 1),
        ("p99", |second| second.p99_ms, MAGENTA, 2),
        ("p99.9", |second| second.p999_ms, RED, 1),
        (
            "send delay p99",
            |second| second.send_delay_p99_ms,
            GREEN,
            1,
        ),
    ];
    for (label, pick, color, width) in lines {
        let points = report
            .series
            .iter()
            .filter_map(move |second| pick(second).map(|value| (second.second, value.max(0.1))));
        latency
            .draw_series(LineSeries::new(points, color.stroke_width(width)))?
            .label(label)
            .legend(legend_line(color));
    }
    if let Some(threshold) = report.recovery_threshold_ms {
        let flat = [(0, threshold), (seconds, threshold)];
        latency
            .draw_series(LineSeries::new(flat, BLACK.stroke_width(1)))?
            .label("recovery threshold")
            .legend(legend_line(BLACK));
    }
    latency
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// The server's resident memory sampled each second (MiB).
fn draw_memory(area: &Chart<'_>, report: &Report) -> DrawResult {
    const MIB: f64 = 1024.0 * 1024.0;
    let seconds = seconds(report);
    let resident = || {
        report.series.iter().filter_map(|second| {
            let bytes = second.resident_bytes?;
            Some((second.second, bytes as f64 / MIB))
        })
    };
    let top = resident().map(|(_, mib)| mib).fold(1.0f64, f64::max) * 1.1;
    let mut memory = ChartBuilder::on(area)
        .caption("server resident memory (MiB)", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0u32..seconds, 0f64..top)?;
    memory
        .configure_mesh()
        .x_desc("second")
        .y_desc("MiB")
        .draw()?;
    memory
        .draw_series(LineSeries::new(resident(), CYAN.stroke_width(2)))?
        .label("resident")
        .legend(legend_line(CYAN));
    memory
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}
