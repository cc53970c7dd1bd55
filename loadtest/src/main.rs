//! The `loadtest` command line: flags in, [`loadtest::run`] / [`loadtest::limit`] /
//! [`loadtest::capacity`] out.

use clap::{Args, Parser, Subcommand};
use loadtest::capacity::{CapacityOptions, capacity};
use loadtest::limit::{LimitOptions, limit};
use loadtest::run::{RunOptions, default_run_id, run};
use loadtest::scenario::{Mix, Scenario};
use loadtest::target::Target;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Open-loop load for order routers: sale-day spikes, measured honestly.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Play a scenario against a server; exits 1 if any order was lost or answered wrongly.
    Run(RunArgs),
    /// The same orders through a bare NDJSON endpoint built into the tool and through the
    /// router, as fast as they go; prints both rates and their ratio.
    Limit(LimitArgs),
    /// The highest rate the server holds (steps of one rate each, with a scenario's mix and
    /// transport) and the latency at half of it, in one run; exits 1 if an order was lost or
    /// answered wrongly.
    Capacity(CapacityArgs),
}

#[derive(Args)]
struct CapacityArgs {
    /// The server, `http://HOST:PORT`.
    #[arg(long)]
    target: String,
    /// The transport and order mix (its phases are replaced by the steps).
    #[arg(long)]
    scenario: PathBuf,
    /// Rate of the first step, orders/s (default: the scenario's first phase's rate).
    #[arg(long)]
    start_rate: Option<f64>,
    /// A held step's rate times this is the next step's, until one is not held.
    #[arg(long, default_value_t = 1.5)]
    growth: f64,
    /// Bisections between the highest rate held and the lowest not held.
    #[arg(long, default_value_t = 3)]
    refine: u32,
    /// No step above this rate.
    #[arg(long, default_value_t = 1_000_000.0)]
    max_rate: f64,
    /// Seconds per step.
    #[arg(long, default_value_t = 10.0)]
    step_s: f64,
    /// A step whose p99 is over this many milliseconds is not held.
    #[arg(long, default_value_t = 100.0)]
    max_p99_ms: f64,
    /// Seconds at half the highest rate held (0: none; default: the scenario's duration).
    #[arg(long)]
    half_s: Option<f64>,
    /// Seconds between steps.
    #[arg(long, default_value_t = 2.0)]
    pause_s: f64,
    /// Write the result as JSON here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Prefix of the order ids (default: `LT` and the start time); each step adds its own.
    #[arg(long)]
    run_id: Option<String>,
    /// Bearer token for the server (or LOADTEST_TOKEN).
    #[arg(long, env = "LOADTEST_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// How often the scheduler wakes, in microseconds.
    #[arg(long, default_value_t = 250)]
    tick_us: u64,
}

#[derive(Args)]
struct RunArgs {
    /// The server, `http://HOST:PORT`.
    #[arg(long)]
    target: String,
    /// A scenario TOML (see loadtest/scenarios/).
    #[arg(long)]
    scenario: PathBuf,
    /// Write the JSON report here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Write the SVG chart here (default: the report's path with `.svg`).
    #[arg(long)]
    chart: Option<PathBuf>,
    /// Multiply every phase's rate by this.
    #[arg(long, default_value_t = 1.0)]
    rate_scale: f64,
    /// At the end, check that the stock reserved during the run equals the decisions'
    /// shipments (`GET /v1/stock`; only meaningful when nothing else uses the server).
    #[arg(long)]
    check_stock: bool,
    /// Prefix of the order ids (default: `LT` and the start time, unique per run).
    #[arg(long)]
    run_id: Option<String>,
    /// Bearer token for the server (or LOADTEST_TOKEN).
    #[arg(long, env = "LOADTEST_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// How often the scheduler wakes, in microseconds.
    #[arg(long, default_value_t = 250)]
    tick_us: u64,
    /// No progress line.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args)]
struct LimitArgs {
    /// The router, `http://HOST:PORT`.
    #[arg(long)]
    target: String,
    /// Orders per round and endpoint.
    #[arg(long, default_value_t = 1_000_000)]
    orders: usize,
    /// Concurrent NDJSON streams.
    #[arg(long, default_value_t = 1)]
    streams: usize,
    /// Alternating rounds (bare, router, bare, ...); medians are reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Take the order mix from this scenario (default: one line, standard, regions by
    /// population).
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Write the result as JSON here.
    #[arg(long)]
    report: Option<PathBuf>,
    #[arg(long, env = "LOADTEST_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let outcome = match cli.command {
        Command::Run(args) => runtime.block_on(run_command(args)),
        Command::Limit(args) => runtime.block_on(limit_command(args)),
        Command::Capacity(args) => runtime.block_on(capacity_command(args)),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("loadtest: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// `loadtest run`: the table on stdout, the failures and the first problems on stderr.
async fn run_command(args: RunArgs) -> anyhow::Result<ExitCode> {
    if !(args.rate_scale > 0.0 && args.rate_scale.is_finite()) {
        anyhow::bail!("--rate-scale must be a positive number");
    }
    let scenario = Scenario::load(&args.scenario)?;
    let report = args.report;
    let chart = args
        .chart
        .or_else(|| report.as_ref().map(|path| path.with_extension("svg")));
    let outcome = run(RunOptions {
        target: Target::parse(&args.target, args.token)?,
        scenario,
        rate_scale: args.rate_scale,
        check_stock: args.check_stock,
        run_id: args.run_id,
        tick: Duration::from_micros(args.tick_us.max(50)),
        progress: !args.quiet,
        report,
        chart,
    })
    .await?;
    print!("{}", outcome.report.table);
    for failure in &outcome.report.failures {
        eprintln!("FAILED: {failure}");
    }
    for problem in outcome.report.json["problems"]
        .as_array()
        .into_iter()
        .flatten()
    {
        eprintln!("  {}", problem.as_str().unwrap_or(""));
    }
    Ok(if outcome.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `loadtest limit`: the rounds on stderr as they end, the medians on stdout.
async fn limit_command(args: LimitArgs) -> anyhow::Result<ExitCode> {
    let (mix, seed) = match args.scenario {
        Some(path) => {
            let scenario = Scenario::load(&path)?;
            (scenario.mix, scenario.seed)
        }
        None => (Mix::default(), 11),
    };
    let result = limit(LimitOptions {
        target: Target::parse(&args.target, args.token)?,
        orders: args.orders,
        streams: args.streams,
        rounds: args.rounds,
        mix,
        seed,
    })
    .await?;
    println!(
        "{} orders x {} rounds over {} stream(s): bare {:.0}/s, router {:.0}/s, ratio {:.3} (medians)",
        result.orders,
        result.rounds.len(),
        result.streams,
        result.median_bare_per_s,
        result.median_router_per_s,
        result.median_ratio
    );
    if let Some(path) = args.report {
        std::fs::write(&path, serde_json::to_vec_pretty(&result)?)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `loadtest capacity`: each step on stderr as it ends, the table on stdout.
async fn capacity_command(args: CapacityArgs) -> anyhow::Result<ExitCode> {
    let scenario = Scenario::load(&args.scenario)?;
    let start_rate = match args.start_rate {
        Some(rate) => rate,
        None => scenario
            .phases
            .first()
            .map(|phase| phase.rate)
            .filter(|rate| *rate > 0.0)
            .ok_or_else(|| {
                anyhow::anyhow!("the scenario's first phase has no rate: give --start-rate")
            })?,
    };
    if !(args.pause_s.is_finite() && args.pause_s >= 0.0) {
        anyhow::bail!("--pause-s must be a number of seconds, at least 0");
    }
    let half_s = args.half_s.unwrap_or_else(|| scenario.duration_s());
    let report = capacity(CapacityOptions {
        target: Target::parse(&args.target, args.token)?,
        scenario,
        start_rate,
        growth: args.growth,
        refine: args.refine,
        max_rate: args.max_rate,
        step_s: args.step_s,
        max_p99_ms: args.max_p99_ms,
        half_s,
        pause: Duration::from_secs_f64(args.pause_s),
        tick: Duration::from_micros(args.tick_us.max(50)),
        run_id: args.run_id.unwrap_or_else(default_run_id),
    })
    .await?;
    print!("{}", report.table());
    if let Some(path) = args.report {
        std::fs::write(&path, serde_json::to_vec_pretty(&report)?)?;
    }
    let failures = report.failures();
    for failure in &failures {
        eprintln!("FAILED: {failure}");
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
