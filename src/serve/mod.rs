//! `order-router serve`: the routing core behind the HTTP API (DESIGN sections 2, 6, 7).
//!
//! ```text
//! client --NDJSON--> http/orders: split lines, parse, validate (one chunk at a time)
//!        --> admission: permits per order (waits: TCP backpressure; or 429)
//!        --> pipeline: claims, one Visits message per home zone
//!        --> zone_actor (one per zone, zones spread over arbiters): zone::decide; pass on
//!            along the fallback chain by message
//!        --> group_commit: one write and one sync per group; then the answers' parts
//!        --> answers: back to the worker, put in input order --> the client's response
//! ```
//!
//! Beside them: `feed` (the decision feed), `snapshotter` (zone snapshots off the zone
//! threads), `reload` (config reloads), `auth` (tokens per role), `metrics` (every metric
//! and its HELP text), `views` (JSON of the network, catalogue and stock). What is built and
//! what is not yet is listed in `docs/service.md`.

pub mod admission;
pub mod answers;
pub mod auth;
pub mod edge;
pub mod feed;
pub mod group_commit;
pub mod http;
pub mod metrics;
pub mod pipeline;
pub mod reload;
pub mod snapshotter;
pub mod views;
pub mod zone_actor;

use crate::catalog::Catalog;
use crate::config::Network;
use crate::world::{World, WorldSources};
use actix::{Actor, Addr};
use actix_web::web;
use admission::Admission;
use anyhow::{Context, bail};
use arc_swap::ArcSwap;
use metrics_exporter_prometheus::PrometheusHandle;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use zone_actor::{Seating, ZoneActors};

/// What `serve` was asked for on the command line.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub sources: WorldSources,
    /// Where the zones' journals live, and how they write.
    pub journals: group_commit::Journals,
    /// HTTP worker threads (parsing); default: one per core.
    pub workers: Option<usize>,
    /// Threads (arbiters) the zone actors run on; default: one per core; 0: the HTTP
    /// workers' threads.
    pub zone_threads: Option<usize>,
    /// Fault injection: the zone actors hold every message of orders while this file
    /// exists (tests of admission under a stalled zone).
    pub hold_zones_while: Option<PathBuf>,
    /// Whether a change of the config file reloads it.
    pub watch_config: bool,
    /// How long a graceful shutdown waits for open streams to end.
    pub shutdown_timeout: Duration,
}

/// What every handler shares.
pub struct App {
    /// The config snapshot in force; swapped whole on reload.
    network: ArcSwap<Network>,
    /// The file it came from (`None`: the embedded default).
    config_path: Option<PathBuf>,
    reload_lock: tokio::sync::Mutex<()>,
    pub catalog: Arc<Catalog>,
    /// The zone actors and the order-id claims they share.
    pub zones: Arc<ZoneActors>,
    pub feed: Addr<feed::FeedLog>,
    /// Where the feed's entries wait for the log; followers are counted on it.
    pub feed_inbox: Arc<feed::Inbox>,
    /// The cursor the next feed entry will get, as published by the feed log.
    pub feed_published: tokio::sync::watch::Receiver<u64>,
    pub admission: Arc<Admission>,
    pub metrics: PrometheusHandle,
    draining: AtomicBool,
    /// The data dir (the journals, the limits set through `PUT /v1/customers`).
    pub data_dir: PathBuf,
}

impl App {
    /// The config snapshot in force.
    pub fn network(&self) -> Arc<Network> {
        self.network.load_full()
    }

    fn set_network(&self, network: Arc<Network>) {
        self.network.store(network);
    }

    pub fn config_path(&self) -> Option<&std::path::Path> {
        self.config_path.as_deref()
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Draining, and every stream that was open has ended and every admitted order is
    /// decided: nothing more will reach the feed.
    pub fn is_drained(&self) -> bool {
        self.is_draining() && self.admission.streams() == 0 && self.admission.in_flight() == 0
    }
}

/// Runs the service until SIGTERM or SIGINT, then drains: stops accepting, lets open
/// streams finish (every order read is decided and answered), and returns.
pub fn run(options: ServeOptions) -> anyhow::Result<()> {
    let world = World::load(&options.sources)?;
    if !options.listen.ip().is_loopback() && !world.network.auth.is_enabled() {
        bail!(
            "refusing to listen on {}: no access tokens are configured ([auth] in the config), so the router only listens on loopback (127.0.0.1 or ::1)",
            options.listen
        );
    }
    let data_dir = &options.journals.data_dir;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating the data dir {}", data_dir.display()))?;
    // One process per data dir: two writers would interleave their journals. The lock is
    // the kernel's (flock), so it goes with the process however it ends.
    let lock_path = data_dir.join("LOCK");
    let lock = std::fs::File::create(&lock_path)
        .with_context(|| format!("creating {}", lock_path.display()))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another order-router is serving from {} (it holds {}); two processes would interleave their journals",
            data_dir.display(),
            lock_path.display()
        ),
        Err(std::fs::TryLockError::Error(error)) => {
            return Err(error).with_context(|| format!("locking {}", lock_path.display()));
        }
    }
    let metrics = metrics::install().context("installing the metrics recorder")?;
    let served = actix_rt::System::new().block_on(serve(world, options, metrics));
    drop(lock);
    served
}

async fn serve(
    world: World,
    options: ServeOptions,
    metrics: PrometheusHandle,
) -> anyhow::Result<()> {
    // Signal handlers first: a SIGTERM that arrives while the server starts must drain it,
    // not kill it with the default action.
    let signals = Signals::new().context("installing signal handlers")?;
    let (feed_log, feed_published) = feed::FeedLog::new();
    let feed_inbox = feed_log.inbox();
    let feed_arbiter = actix::Arbiter::new();
    let feed = feed::FeedLog::start_in_arbiter(&feed_arbiter.handle(), move |_| feed_log);
    let workers = options.workers.unwrap_or_else(cores);
    let seating = match options.zone_threads.unwrap_or_else(cores) {
        0 => Seating::Workers(workers),
        threads => Seating::Threads(threads),
    };
    let customers = http::customers::load(
        &world.customers,
        &options.journals.data_dir,
        world.network.zones.len(),
    )?;
    let limits = world.network.limits;
    let admission = Arc::new(Admission::new(
        limits.max_orders_in_flight,
        limits.priority_reserve,
        limits.max_streams,
    ));
    let (zones, zone_threads) = ZoneActors::start(
        &world,
        seating,
        &feed::FeedSender::new(feed.clone(), feed_inbox.clone()),
        &options.journals,
        options.hold_zones_while.clone(),
        customers,
        &admission,
    )?;
    tracing::info!("{} zone actors on {}", zones.len(), zone_threads.describe());
    let config_path = options
        .sources
        .config
        .clone()
        .or_else(|| crate::world::default_config_file().map(PathBuf::from));
    let app = web::Data::new(App {
        network: ArcSwap::new(world.network),
        config_path,
        reload_lock: tokio::sync::Mutex::new(()),
        catalog: world.catalog,
        zones,
        feed,
        feed_published,
        feed_inbox,
        admission,
        metrics,
        draining: AtomicBool::new(false),
        data_dir: options.journals.data_dir.clone(),
    });
    // Watching starts before the port opens: a change made as soon as the server answers
    // is seen.
    let watcher = options.watch_config.then(|| watch_config(&app)).flatten();
    let review_clock = actix_rt::spawn(expire_reviews(app.clone()));
    let edge = edge::EdgeOptions {
        listen: options.listen,
        workers,
        shutdown_timeout: options.shutdown_timeout,
        zone_seats: zone_threads.seats(),
    };
    let server = edge::http_server(&app, &edge)?;
    let handle = server.handle();
    let stopping = drain_on_signal(signals, app, handle, options.shutdown_timeout);
    let (result, ()) = futures_util::future::join(server, stopping).await;
    result.context("serving HTTP")?;
    review_clock.abort();
    drop(watcher);
    zone_threads.stop(options.shutdown_timeout);
    feed_arbiter.stop();
    Ok(())
}

/// Once a second: every zone sets the age of its oldest hold waiting for review and, when
/// `policy.review_timeout_s` is set, rejects (or approves) the holds that waited that long;
/// the bad request heads counted and not reported yet are logged once their period is over.
async fn expire_reviews(app: web::Data<App>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        edge::BadHeads::flush();
        let network = app.network();
        if app.is_draining() {
            continue;
        }
        let now = crate::time::Millis::now();
        for zone in app.zones.all() {
            zone.do_send(zone_actor::ReviewClock {
                network: network.clone(),
                now,
            });
        }
    }
}

/// Waits for SIGTERM or SIGINT, then drains: open streams run to the end of their bodies
/// and every admitted order is decided and answered (actix's graceful stop alone does not
/// cover a stream whose connection it has not counted yet). Then the HTTP server stops,
/// waiting for the remaining responses (feed readers end once drained).
async fn drain_on_signal(
    signals: Signals,
    app: web::Data<App>,
    handle: actix_web::dev::ServerHandle,
    shutdown_timeout: Duration,
) {
    signals.wait(&app).await;
    tracing::info!("shutting down: no new orders; open streams are finished");
    app.draining.store(true, Ordering::Release);
    let deadline = std::time::Instant::now() + shutdown_timeout;
    while !app.is_drained() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    handle.stop(true).await;
}

/// The signals the service handles.
struct Signals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    /// Waits for SIGTERM or SIGINT; reloads the config on every SIGHUP meanwhile.
    async fn wait(mut self, app: &web::Data<App>) {
        loop {
            tokio::select! {
                _ = self.terminate.recv() => return,
                _ = self.interrupt.recv() => return,
                _ = self.hangup.recv() => {
                    let outcome = reload::reload(app, app.config_path()).await;
                    tracing::info!("SIGHUP: config {}", outcome.to_json());
                }
            }
        }
    }
}

/// A version of a file as `stat` tells it (size, modification time, inode), without opening
/// it; `None` when it cannot be read.
fn file_version(path: &Path) -> Option<(u64, std::time::SystemTime, u64)> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.len(), metadata.modified().ok()?, metadata.ino()))
}

/// Watches the config file (its folder, since editors replace files by renaming) and
/// reloads after each burst of changes. `None` when serving the embedded config, or when
/// the platform cannot watch (logged; SIGHUP and the admin endpoint still work).
fn watch_config(
    app: &web::Data<App>,
) -> Option<notify_debouncer_mini::Debouncer<notify_debouncer_mini::notify::RecommendedWatcher>> {
    use notify_debouncer_mini::notify::RecursiveMode;
    let path = app.config_path()?.to_owned();
    let absolute = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
    let folder = absolute.parent()?.to_owned();
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<()>();
    let watched = absolute.clone();
    // The watcher reports opening the file too (inotify `IN_OPEN`), and a reload opens it:
    // without this, one event started a reload every debounce period for ever. Only a new
    // version of the file (another size, time or inode, read without opening it) reloads.
    let mut last_version = file_version(&absolute);
    let mut debouncer = match notify_debouncer_mini::new_debouncer(
        crate::limits::RELOAD_DEBOUNCE,
        move |events: notify_debouncer_mini::DebounceEventResult| {
            if let Ok(events) = events
                && events.iter().any(|event| event.path == watched)
            {
                let version = file_version(&watched);
                if version.is_some() && version == last_version {
                    return;
                }
                last_version = version;
                let _ = sender.send(());
            }
        },
    ) {
        Ok(debouncer) => debouncer,
        Err(error) => {
            tracing::warn!("not watching {}: {error}", path.display());
            return None;
        }
    };
    if let Err(error) = debouncer
        .watcher()
        .watch(&folder, RecursiveMode::NonRecursive)
    {
        tracing::warn!("not watching {}: {error}", folder.display());
        return None;
    }
    let app = app.clone();
    actix_rt::spawn(async move {
        while receiver.recv().await.is_some() {
            let outcome = reload::reload(&app, app.config_path()).await;
            tracing::info!("{} changed: config {}", path.display(), outcome.to_json());
        }
    });
    Some(debouncer)
}

/// The cores this process may run on (one when that cannot be read).
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}
