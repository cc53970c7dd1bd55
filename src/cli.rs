//! The command line (DESIGN section 7). `main.rs` parses [`Cli`] and calls [`run`], which
//! hands each subcommand to a function of its own.

use crate::catalog::{self, DEMO_SEED, DEMO_SKUS};
use crate::config::Network;
use crate::demo::{self, OrderMix};
use crate::ids::ZoneId;
use crate::route::Router;
use crate::route::route_stream;
use crate::time::Millis;
use crate::world::{World, WorldSources};
use crate::zone::Claims;
use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};
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
        /// Also rebuild each zone from its journal, changing nothing, against the world of
        /// --config, --catalog, --stock and --seed (as `serve` would on a restart); exit 1
        /// naming the zone, segment and byte offset of a record that does not replay.
        #[arg(long)]
        replay: bool,
        /// The world a replay is checked against (used only with --replay).
        #[command(flatten)]
        world: WorldArgs,
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
fn zone_journals(data_dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
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

/// `journal verify` and `journal dump`, writing to stdout.
fn journal(action: JournalAction) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match action {
        JournalAction::Verify {
            data_dir,
            replay,
            world,
        } => verify_journals(&data_dir, replay.then_some(world), &mut out),
        JournalAction::Dump { data_dir, zone } => {
            dump_journals(&data_dir, zone.as_deref(), &mut out)
        }
    }
}

/// What `journal verify --replay` rebuilds the zones with: the world `serve` would start
/// from, each journal's zone in its config, and one set of claims for every zone (an order
/// id is claimed in one zone only, across the whole data dir).
struct Replay {
    world: World,
    zones: Vec<ZoneId>,
    claims: Claims,
}

impl Replay {
    /// Loads the world and finds each of `journals` among its zones. A journal of a zone the
    /// config does not define is an error naming it: it cannot be rebuilt against this
    /// config, and `serve` would not read it.
    fn load(world: WorldArgs, journals: &[(String, PathBuf)]) -> anyhow::Result<Replay> {
        let world = World::load(&world.into())?;
        let network = &world.network;
        let mut zones = Vec::with_capacity(journals.len());
        for (name, dir) in journals {
            let Some(index) = network.zone_ids.get(name) else {
                let known: Vec<&str> = network.zone_ids.names().collect();
                bail!(
                    "{}: '{name}' is not a zone of the config, so its journal cannot be \
                     replayed; the config's zones: {}",
                    dir.display(),
                    known.join(", ")
                );
            };
            zones.push(ZoneId(index as u16));
        }
        Ok(Replay {
            world,
            zones,
            claims: Claims::default(),
        })
    }
}

/// `journal verify`: each zone's framing check and, with `replay`, its rebuild. Exit 1 when
/// any zone is damaged.
fn verify_journals(
    data_dir: &Path,
    replay: Option<WorldArgs>,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let journals = zone_journals(data_dir)?;
    // The world is loaded, and every journal matched to a zone, before anything is checked:
    // a wrong config is one error, not a damaged line per zone.
    let replay = replay
        .map(|world| Replay::load(world, &journals))
        .transpose()?;
    let mut sound = true;
    for (position, (zone, dir)) in journals.iter().enumerate() {
        let rebuild = replay
            .as_ref()
            .map(|replay| (replay, replay.zones[position]));
        if let Err(error) = verify_zone(zone, dir, rebuild, &mut sound, out) {
            return closed_output(error, sound);
        }
    }
    if let Err(error) = verify_logs(data_dir, &mut sound, out) {
        return closed_output(error, sound);
    }
    match out.flush() {
        Ok(()) if sound => Ok(ExitCode::SUCCESS),
        Ok(()) => Ok(ExitCode::FAILURE),
        // A reader that stopped reading still gets the verdict in the exit status.
        Err(error) => closed_output(error, sound),
    }
}

/// Checks the journal of `zone` in `dir`, and rebuilds it when `rebuild` says against what,
/// writing a line for each. `sound` is cleared when the zone is damaged, before the line
/// saying so is written (a reader that stops reading still gets the exit status).
fn verify_zone(
    zone: &str,
    dir: &Path,
    rebuild: Option<(&Replay, ZoneId)>,
    sound: &mut bool,
    out: &mut impl Write,
) -> std::io::Result<()> {
    match crate::journal::verify(dir) {
        Ok(report) => write!(out, "zone {zone}: {report}")?,
        Err(error) => {
            *sound = false;
            // A journal whose framing is damaged is not replayed: its records cannot all
            // be read, and the damage is reported already.
            return writeln!(out, "zone {zone}: DAMAGED: {error}");
        }
    }
    let Some((replay, zone_id)) = rebuild else {
        return Ok(());
    };
    let (network, catalog) = (&replay.world.network, &replay.world.catalog);
    match crate::zone::recover::verify(dir, network, catalog, zone_id, &replay.claims) {
        Ok(state) => writeln!(out, "zone {zone}: replayed, {} orders", state.order_count()),
        Err(error) => {
            *sound = false;
            // The error names its zone first; the line names it once.
            let text = error.to_string();
            let cause = text
                .strip_prefix(&format!("zone {zone}: "))
                .unwrap_or(&text);
            writeln!(out, "zone {zone}: DAMAGED: {cause}")
        }
    }
}

/// The journal writers' write-ahead logs (`journal::wal`): a line for each zone they hold
/// records of, which a machine crash may have taken from the end of its journal and the
/// next `serve` start adds back.
fn verify_logs(data_dir: &Path, sound: &mut bool, out: &mut impl Write) -> std::io::Result<()> {
    match crate::journal::wal::peek(&crate::journal::wal::root(data_dir)) {
        Ok(found) => {
            for (log, zone, first, last) in found {
                writeln!(
                    out,
                    "write-ahead log {}: zone {zone}, lsn {first} to {last}; the next start \
                     adds those past the end of the zone's journal",
                    log.display()
                )?;
            }
            Ok(())
        }
        Err(error) => {
            *sound = false;
            writeln!(out, "write-ahead log: DAMAGED: {error}")
        }
    }
}

/// `journal dump`: every record of every zone (or of `only`) as a JSON line.
fn dump_journals(
    data_dir: &Path,
    only: Option<&str>,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let mut dumped = Ok(());
    for (name, dir) in zone_journals(data_dir)? {
        if only.is_some_and(|wanted| wanted != name) {
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
    match dumped.and_then(|()| out.flush()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
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
    /// Customers CSV (customer,credit_limit): the credit limits of the risk screen's
    /// `credit_limit` rules. Default: none (no customer has a limit).
    #[arg(long)]
    customers: Option<PathBuf>,
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
            customers: args.customers,
            seed: args.seed,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (DESIGN section 6): NDJSON orders in, decisions out, streamed.
    Serve(ServeArgs),
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
    DemoData(DemoDataArgs),
}

/// The flags of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
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
    /// microseconds (at most 100000). Each answer may wait this much longer; groups get
    /// larger and syncs fewer. Default 0: a round starts as soon as the writer is free,
    /// and under load the next group fills while one is synced, so groups still grow
    /// with the load (issue 20: the 500 us window cost every order its wait).
    #[arg(long, default_value_t = 0)]
    commit_window_us: u64,
    /// While at least 512 orders are admitted and not yet answered (a saturated stream, not
    /// a steady load), a journal round waits up to this many microseconds for 512 records
    /// (at most 100000; 0: never): fewer writes and fdatasyncs under load (one stream of 1M
    /// orders: +18.8% orders/s, -10% server CPU). Below that backlog rounds start at once.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(0..=100_000))]
    commit_hold_us: u64,
    /// Records in one journal group at most (each group is one write and one fsync).
    #[arg(long, default_value_t = 4096)]
    group_records: usize,
    /// A zone writes a snapshot of its state after this many journal records since its
    /// last one, and deletes the segments older snapshots covered (0: never).
    #[arg(long, default_value_t = 500_000)]
    snapshot_every: u64,
    /// Hours a decision is remembered for idempotency (a retry answered as a
    /// duplicate, `GET /v1/orders/{id}` answered), across restarts. Older ones that hold
    /// no reservation leave memory and disk within a second or so of passing it (and the
    /// next snapshot); closed ones within it are kept on disk, not in memory.
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u64).range(0..=87_600))]
    retention_hours: u64,
    /// The retention window in seconds, in place of `--retention-hours`: for soak tests
    /// that want to see records leave in minutes, not hours.
    #[arg(long, conflicts_with = "retention_hours", value_parser = clap::value_parser!(u64).range(1..=315_360_000))]
    retention_seconds: Option<u64>,
    /// HTTP worker threads, which parse. Default: one per core.
    #[arg(long)]
    workers: Option<usize>,
    /// Threads the zone actors run on (zones are spread over them by the population of
    /// their regions). Default: one per core, at most one per zone. 0: no threads of their
    /// own; the zones are seated on the HTTP workers' threads (the lowest latency and CPU at
    /// moderate rates on a small machine, a lower top rate; docs/service.md). (`--shard-threads`,
    /// its first name, still works.)
    #[arg(long, alias = "shard-threads")]
    zone_threads: Option<usize>,
    /// Fault injection for tests and drills: the zone actors hold every message of
    /// orders while this file exists (checked every 10 ms), as a stalled zone would.
    #[arg(long, hide = true, alias = "debug-hold-shards-while")]
    debug_hold_zones_while: Option<PathBuf>,
    /// For tests and drills: bytes of the journal writer's write-ahead log between its
    /// checkpoints (each syncs every zone's journal), so that a short run has many.
    #[arg(long, hide = true, default_value_t = crate::journal::wal::CHECKPOINT_BYTES)]
    debug_wal_checkpoint_bytes: u64,
    /// Do not reload the config when its file changes (SIGHUP and POST /v1/admin/reload
    /// still do).
    #[arg(long)]
    no_watch_config: bool,
    /// Seconds a shutdown (SIGTERM) waits for open streams to finish.
    #[arg(long, default_value_t = 30)]
    shutdown_timeout: u64,
}

/// The flags of `demo-data`.
#[derive(Debug, Args)]
pub struct DemoDataArgs {
    /// Folder to write catalog.csv, stock.csv, customers.csv, risk-orders.ndjson (orders
    /// whose customers trip each risk rule of config/router.toml) and orders.ndjson into.
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
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Route { world, now, quiet } => route(world, now, quiet),
        Command::Journal { action } => journal(action),
        Command::CheckConfig { file } => check_config(&file),
        Command::DemoData(args) => demo_data(args),
    }
}

/// The service's logging: `levels` (from `RUST_LOG`) to stderr, with bad request heads
/// counted and summarised (`BadHeads`), not printed one ERROR each.
fn logging(
    levels: tracing_subscriber::EnvFilter,
) -> impl tracing::Subscriber + Send + Sync + 'static {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::{Layer, filter};
    // Every filter says how verbose it can be: without a hint the process's maximum level
    // is TRACE, and every `debug!` and `trace!` of every crate asks the filters at run time
    // (about 1% of the CPU under single-order requests).
    let most = levels
        .max_level_hint()
        .unwrap_or(filter::LevelFilter::TRACE);
    let printed = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(
            filter::filter_fn(|metadata| !crate::serve::edge::BadHeads::is_bad_head(metadata))
                .with_max_level_hint(most),
        );
    // The printing layer first: BadHeads logs its summaries from inside its own on_event,
    // and a nested event resets the per-layer filter state of the event around it.
    tracing_subscriber::registry()
        .with(levels)
        .with(printed)
        .with(crate::serve::edge::BadHeads)
}

/// `serve`: logs to stderr (`RUST_LOG`, default `info`) and serves until shut down.
fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    use tracing_subscriber::util::SubscriberInitExt;
    let levels =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let _ = logging(levels).try_init();
    crate::serve::run(crate::serve::ServeOptions {
        listen: args.listen,
        sources: args.world.into(),
        journals: crate::serve::group_commit::Journals {
            data_dir: args.data_dir,
            options: crate::journal::JournalOptions {
                mode: args.sync,
                commit_window: std::time::Duration::from_micros(args.commit_window_us),
                max_group_records: args.group_records,
                // The writers' background threads make each zone's next segment ahead.
                preallocate: true,
                ..Default::default()
            },
            snapshot_every: args.snapshot_every,
            retention: std::time::Duration::from_secs(
                args.retention_seconds
                    .unwrap_or(args.retention_hours * 3600),
            ),
            wal_checkpoint_bytes: args.debug_wal_checkpoint_bytes,
            commit_hold: std::time::Duration::from_micros(args.commit_hold_us),
        },
        workers: args.workers,
        zone_threads: args.zone_threads,
        hold_zones_while: args.debug_hold_zones_while,
        watch_config: !args.no_watch_config,
        shutdown_timeout: std::time::Duration::from_secs(args.shutdown_timeout),
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `route`: stdin to stdout, decided at `now` when an order has no `created_at`.
fn route(world: WorldArgs, now: Option<String>, quiet: bool) -> anyhow::Result<ExitCode> {
    let default_time = match now {
        Some(text) => Millis::parse_rfc3339(&text)
            .with_context(|| format!("--now must be an RFC 3339 time, got {text:?}"))?,
        None => Millis::now(),
    };
    let world = World::load(&world.into())?;
    let mut router = Router::new(world.network, world.catalog, &world.stock);
    for row in &world.customers {
        router
            .customers()
            .set_limit(&row.customer, row.credit_limit);
    }
    let stdout = std::io::stdout().lock();
    let summary = route_stream(&mut router, std::io::stdin().lock(), stdout, default_time)
        .context("routing stdin to stdout")?;
    // The process ends here, and the router holds nothing to flush: freeing every record
    // and claim one at a time would take longer than routing thousands of orders (35M
    // instructions after 100k orders, callgrind), for memory the exit frees at once.
    std::mem::forget(router);
    if !quiet {
        eprintln!("order-router route: {summary}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `check-config`: `OK` and a summary, or every problem and how many.
fn check_config(file: &Path) -> anyhow::Result<ExitCode> {
    match Network::load(file) {
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
    }
}

/// `demo-data`: the demo catalogue and stock for a network, and optionally orders.
fn demo_data(args: DemoDataArgs) -> anyhow::Result<ExitCode> {
    let start = if args.start == "now" {
        Millis::now()
    } else {
        Millis::parse_rfc3339(&args.start).with_context(|| {
            format!(
                "--start must be an RFC 3339 time or 'now', got {:?}",
                args.start
            )
        })?
    };
    if args.spacing_ms < 0 {
        bail!("--spacing-ms must be 0 or more, got {}", args.spacing_ms);
    }
    if args.skus == 0 {
        bail!("--skus must be at least 1");
    }
    let network = match &args.config {
        Some(path) => Network::load(path)?,
        None => crate::world::default_network()?,
    };
    let catalog = catalog::Catalog::demo(args.skus, args.seed);
    let stock = catalog::demo_stock(&network, &catalog, args.seed);
    let out = &args.out;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let create = |name: &str| {
        let path = out.join(name);
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))
    };
    catalog.write_csv(create("catalog.csv")?)?;
    catalog::write_stock_csv(&stock, &network, &catalog, create("stock.csv")?)?;
    std::fs::write(out.join("customers.csv"), demo::DEMO_CUSTOMERS)
        .with_context(|| format!("writing {}", out.join("customers.csv").display()))?;
    demo::write_risk_orders(
        &network,
        &catalog,
        &stock,
        start,
        &mut std::io::BufWriter::new(create("risk-orders.ndjson")?),
    )?;
    if args.orders > 0 {
        let mut file = std::io::BufWriter::with_capacity(1 << 20, create("orders.ndjson")?);
        let mix = OrderMix {
            start,
            spacing_ms: args.spacing_ms,
            ..OrderMix::default()
        };
        demo::write_orders(&network, &catalog, args.orders, args.seed, &mix, &mut file)?;
    }
    eprintln!(
        "wrote {} SKUs, {} stock levels{} to {}",
        catalog.len(),
        stock.len(),
        if args.orders > 0 {
            format!(", {} orders", args.orders)
        } else {
            String::new()
        },
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use tracing::Subscriber;
    use tracing::level_filters::LevelFilter;

    /// The service's logging says how verbose it can be, so that the `debug!` and `trace!`
    /// of every crate are skipped without asking its filters; `RUST_LOG` can still ask for
    /// more.
    #[test]
    fn the_logging_stops_at_the_level_asked_for() {
        for (asked, most) in [
            ("info", LevelFilter::INFO),
            ("warn", LevelFilter::WARN),
            ("debug", LevelFilter::DEBUG),
            ("info,order_router=trace", LevelFilter::TRACE),
        ] {
            let logging = super::logging(tracing_subscriber::EnvFilter::new(asked));
            assert_eq!(logging.max_level_hint(), Some(most), "{asked}");
        }
    }
}
