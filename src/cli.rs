//! The command line (DESIGN section 7). `main.rs` parses [`Cli`] and calls [`run`].

use crate::catalog::{self, DEMO_SEED, DEMO_SKUS};
use crate::config::Network;
use crate::demo::{self, OrderMix};
use crate::route::Router;
use crate::route::route_stream;
use crate::time::Millis;
use crate::world::{World, WorldSources};
use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "order-router", version, about = "A streaming order router")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What to do with the journals.
#[derive(Debug, Subcommand)]
pub enum JournalAction {
    /// Check every record and snapshot of every zone's journal: report counts, lsn ranges
    /// and a torn tail the next start would cut; exit 1 naming the segment and byte offset
    /// of any damage.
    Verify {
        #[arg(long, default_value = "data")]
        data_dir: PathBuf,
    },
    /// Print every record as one JSON line: zone, lsn, segment, offset and the record
    /// (decisions as answered, cancels, shipments, stock levels).
    Dump {
        #[arg(long, default_value = "data")]
        data_dir: PathBuf,
        /// Only this zone.
        #[arg(long)]
        zone: Option<String>,
    },
}

/// The zone journal directories under `data_dir`, by zone id, sorted.
fn zone_journals(data_dir: &std::path::Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    use anyhow::Context;
    let zones = data_dir.join("zones");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&zones)
        .with_context(|| format!("reading {} (no journals there?)", zones.display()))?
    {
        let entry = entry.with_context(|| format!("reading {}", zones.display()))?;
        if entry.path().is_dir() {
            found.push((
                entry.file_name().to_string_lossy().into_owned(),
                entry.path(),
            ));
        }
    }
    found.sort();
    Ok(found)
}

fn journal(action: JournalAction) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let written = match action {
        JournalAction::Verify { data_dir } => {
            let mut damaged = 0;
            for (zone, dir) in zone_journals(&data_dir)? {
                let line = match crate::journal::verify(&dir) {
                    Ok(report) => write!(out, "zone {zone}: {report}"),
                    Err(error) => {
                        damaged += 1;
                        writeln!(out, "zone {zone}: DAMAGED: {error}")
                    }
                };
                if let Err(error) = line {
                    return closed_output(error, damaged == 0);
                }
            }
            out.flush().map(|()| damaged == 0)
        }
        JournalAction::Dump { data_dir, zone } => {
            let mut dumped = Ok(());
            for (name, dir) in zone_journals(&data_dir)? {
                if zone.as_ref().is_some_and(|wanted| *wanted != name) {
                    continue;
                }
                for record in crate::journal::read_records(&dir)? {
                    let record = record?;
                    let line = serde_json::json!({
                        "zone": name,
                        "lsn": record.lsn,
                        "segment": record.segment.file_name().map(|file| file.to_string_lossy()),
                        "offset": record.offset,
                        "record": crate::zone::records::describe(record.kind, &record.payload),
                    });
                    dumped = writeln!(out, "{line}");
                    if dumped.is_err() {
                        break;
                    }
                }
                if dumped.is_err() {
                    break;
                }
            }
            dumped.and_then(|()| out.flush()).map(|()| true)
        }
    };
    match written {
        Ok(true) => Ok(ExitCode::SUCCESS),
        Ok(false) => Ok(ExitCode::FAILURE),
        Err(error) => closed_output(error, true),
    }
}

/// A reader that stopped reading (`| head`) ends the output quietly; any other write error
/// is an error.
fn closed_output(error: std::io::Error, ok: bool) -> anyhow::Result<ExitCode> {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    } else {
        Err(error.into())
    }
}

/// Where the router's world comes from: `--config`, `--catalog`, `--stock`, `--seed`.
#[derive(Debug, Args)]
pub struct WorldArgs {
    /// Network and policy config (TOML). Default: config/router.toml, else the embedded copy.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Catalogue CSV (sku,weight_g,capabilities). Default: the demo catalogue.
    #[arg(long)]
    catalog: Option<PathBuf>,
    /// Stock CSV (warehouse,sku,on_hand). Default: the demo stock.
    #[arg(long)]
    stock: Option<PathBuf>,
    /// Seed of the demo catalogue and stock.
    #[arg(long, default_value_t = DEMO_SEED)]
    seed: u64,
}

impl From<WorldArgs> for WorldSources {
    fn from(args: WorldArgs) -> WorldSources {
        WorldSources {
            config: args.config,
            catalog: args.catalog,
            stock: args.stock,
            seed: args.seed,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (DESIGN section 6): NDJSON orders in, decisions out, streamed.
    Serve {
        #[command(flatten)]
        world: WorldArgs,
        /// Address to listen on; port 0 picks a free port (printed on stdout).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Where the zones' journals live (`zones/<zone>/`); created if missing. A restart on
        /// the same directory recovers every decision, reservation and stock level.
        #[arg(long, default_value = "data")]
        data_dir: PathBuf,
        /// When a decision is durable before it is answered: `fsync` (on the device: survives
        /// power loss), `write` (in the page cache: survives kill -9, not power loss), `none`
        /// (nothing written: a restart forgets everything; benchmarks only).
        #[arg(long, default_value = "fsync")]
        sync: crate::journal::SyncMode,
        /// How long a journal group stays open for more records before it is written, in
        /// microseconds (0: write as soon as the writer is free; at most 100000). Each
        /// answer may wait this much longer; groups get larger and syncs fewer.
        #[arg(long, default_value_t = 500)]
        commit_window_us: u64,
        /// Records in one journal group at most (each group is one write and one fsync).
        #[arg(long, default_value_t = 4096)]
        group_records: usize,
        /// A zone writes a snapshot of its state after this many journal records since its
        /// last one, and deletes the segments older snapshots covered (0: never).
        #[arg(long, default_value_t = 500_000)]
        snapshot_every: u64,
        /// Hours a decision is remembered for idempotency (a retry answered as a
        /// duplicate), across restarts; older ones that hold no reservation are left out of
        /// the next snapshot.
        #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u64).range(0..=87_600))]
        retention_hours: u64,
        /// HTTP worker threads, which parse. Default: one per core.
        #[arg(long)]
        workers: Option<usize>,
        /// Threads the zone actors run on (zones are spread over them by the population of
        /// their regions). Default: one per core, at most one per zone. (`--shard-threads`,
        /// its first name, still works.)
        #[arg(long, alias = "shard-threads")]
        zone_threads: Option<usize>,
        /// Fault injection for tests and drills: the zone actors hold every message of
        /// orders while this file exists (checked every 10 ms), as a stalled zone would.
        #[arg(long, hide = true, alias = "debug-hold-shards-while")]
        debug_hold_zones_while: Option<PathBuf>,
        /// Do not reload the config when its file changes (SIGHUP and POST /v1/admin/reload
        /// still do).
        #[arg(long)]
        no_watch_config: bool,
        /// Seconds a shutdown (SIGTERM) waits for open streams to finish.
        #[arg(long, default_value_t = 30)]
        shutdown_timeout: u64,
    },
    /// Route NDJSON orders from stdin to NDJSON decisions on stdout, one line per line, in
    /// order, byte-for-byte deterministic.
    Route {
        #[command(flatten)]
        world: WorldArgs,
        /// Decision time of orders without created_at (RFC 3339). Default: the run's start.
        #[arg(long)]
        now: Option<String>,
        /// Do not print the summary line on stderr.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Validate a config file and say exactly what is wrong, where.
    CheckConfig {
        /// The config file.
        file: PathBuf,
    },
    /// Check or read the zones' journals in a data dir (the service need not run; nothing
    /// is changed).
    Journal {
        #[command(subcommand)]
        action: JournalAction,
    },
    /// Write the demo catalogue and stock (and optionally orders) as contract files.
    DemoData {
        /// Folder to write catalog.csv, stock.csv (and orders.ndjson) into.
        #[arg(long)]
        out: PathBuf,
        /// Network config the stock is for. Default: config/router.toml, else the embedded copy.
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long, default_value_t = DEMO_SEED)]
        seed: u64,
        /// SKUs in the catalogue.
        #[arg(long, default_value_t = DEMO_SKUS)]
        skus: usize,
        /// Orders to write to orders.ndjson (none by default).
        #[arg(long, default_value_t = 0)]
        orders: u64,
        /// `created_at` of the first order: RFC 3339, or `now` (for orders sent to a
        /// running service, which decides at the time it receives them).
        #[arg(long, default_value = "2026-11-11T00:00:00Z")]
        start: String,
        /// Milliseconds between consecutive orders' `created_at`.
        #[arg(long, default_value_t = 50)]
        spacing_ms: i64,
    },
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve {
            world,
            listen,
            data_dir,
            sync,
            commit_window_us,
            group_records,
            snapshot_every,
            retention_hours,
            workers,
            zone_threads,
            debug_hold_zones_while,
            no_watch_config,
            shutdown_timeout,
        } => {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info".into()),
                )
                .with_writer(std::io::stderr)
                .try_init();
            crate::serve::run(crate::serve::ServeOptions {
                listen,
                sources: world.into(),
                journals: crate::serve::group_commit::Journals {
                    data_dir,
                    options: crate::journal::JournalOptions {
                        mode: sync,
                        commit_window: std::time::Duration::from_micros(commit_window_us),
                        max_group_records: group_records,
                        ..Default::default()
                    },
                    snapshot_every,
                    retention: std::time::Duration::from_secs(retention_hours * 3600),
                },
                workers,
                zone_threads,
                hold_zones_while: debug_hold_zones_while,
                watch_config: !no_watch_config,
                shutdown_timeout: std::time::Duration::from_secs(shutdown_timeout),
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Route { world, now, quiet } => {
            let default_time = match now {
                Some(text) => Millis::parse_rfc3339(&text)
                    .with_context(|| format!("--now must be an RFC 3339 time, got {text:?}"))?,
                None => Millis::now(),
            };
            let world = World::load(&world.into())?;
            let mut router = Router::new(world.network, world.catalog, &world.stock);
            let stdout = std::io::stdout().lock();
            let summary = route_stream(&mut router, std::io::stdin().lock(), stdout, default_time)
                .context("routing stdin to stdout")?;
            if !quiet {
                eprintln!("order-router route: {summary}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Journal { action } => journal(action),
        Command::CheckConfig { file } => match Network::load(&file) {
            Ok(network) => {
                println!("{}: OK: {network}", file.display());
                Ok(ExitCode::SUCCESS)
            }
            Err(error) => {
                eprintln!("{error}");
                let count = error.problems().len();
                if count > 0 {
                    eprintln!(
                        "{}: {count} problem{}",
                        file.display(),
                        if count == 1 { "" } else { "s" }
                    );
                }
                Ok(ExitCode::FAILURE)
            }
        },
        Command::DemoData {
            out,
            config,
            seed,
            skus,
            orders,
            start,
            spacing_ms,
        } => {
            let start = if start == "now" {
                Millis::now()
            } else {
                Millis::parse_rfc3339(&start).with_context(|| {
                    format!("--start must be an RFC 3339 time or 'now', got {start:?}")
                })?
            };
            if spacing_ms < 0 {
                bail!("--spacing-ms must be 0 or more, got {spacing_ms}");
            }
            if skus == 0 {
                bail!("--skus must be at least 1");
            }
            let network = match config {
                Some(path) => Network::load(&path)?,
                None => crate::world::default_network()?,
            };
            let catalog = catalog::Catalog::demo(skus, seed);
            let stock = catalog::demo_stock(&network, &catalog, seed);
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let create = |name: &str| {
                let path = out.join(name);
                std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))
            };
            catalog.write_csv(create("catalog.csv")?)?;
            catalog::write_stock_csv(&stock, &network, &catalog, create("stock.csv")?)?;
            if orders > 0 {
                let mut file = std::io::BufWriter::with_capacity(1 << 20, create("orders.ndjson")?);
                demo::write_orders(
                    &network,
                    &catalog,
                    orders,
                    seed,
                    &OrderMix {
                        start,
                        spacing_ms,
                        ..OrderMix::default()
                    },
                    &mut file,
                )?;
            }
            eprintln!(
                "wrote {} SKUs, {} stock levels{} to {}",
                catalog.len(),
                stock.len(),
                if orders > 0 {
                    format!(", {orders} orders")
                } else {
                    String::new()
                },
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
