//! The HTTP edge: the listening socket, the server that accepts on it, and what it does so
//! that no one client can take the router from the others. Every limit here is listed, with
//! its default and what a client sees when it trips, in docs/service.md ("The edge").
//!
//! - Every request head is timed (`limits.header_timeout_ms`): actix-http's timer covers a
//!   connection's first head, [`guard::HeadGuard`] every later one.
//! - A chunked body whose framing breaks ends cleanly where it broke ([`guard::HeadGuard`]),
//!   so the response can still say so after every answer ([`Connection`]).
//! - The open-file limit is raised to its hard limit at start, and the connection cap
//!   (`limits.max_connections` per worker) lowered to fit under it when it does not
//!   (`fit_connections`); the log says which.
//! - A request with both `Transfer-Encoding` and `Content-Length` is refused with 400 and
//!   the connection closed ([`guard::HeadGuard`]; actix-http never sees it): RFC 9112
//!   section 6.3 allows it, and it closes the door to request smuggling through a proxy that
//!   reads the other header.
//! - Bad request heads are counted and logged at most once per [`BAD_HEAD_LOG_EVERY`]
//!   ([`BadHeads`]), not one ERROR line each: a client cannot flood the log.
//!
//! Order streams' own limits (body idle timeout, a body that breaks) are the handler's:
//! `crate::serve::http`.

mod connection;
mod framing;
mod guard;

use super::App;
use super::metrics::names;
use actix_web::web;
use anyhow::Context as _;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use connection::{BreakCheck, Connection, body_break};
pub use guard::HeadGuard;

/// A connection's socket as the HTTP dispatcher sees it.
type Guarded = HeadGuard<actix_rt::net::TcpStream>;

/// File descriptors kept for what is not a connection: journals, snapshots, the config
/// watcher, listeners, the runtime's own.
const RESERVED_FILES: u64 = 256;

/// The server's shape, as `serve` was asked for it.
pub struct EdgeOptions {
    pub listen: SocketAddr,
    pub workers: usize,
    pub shutdown_timeout: Duration,
    /// Zone actors to run on the workers' own threads, a seat each as the worker starts.
    pub zone_seats: Option<std::sync::Arc<super::zone_actor::ZoneSeats>>,
}

/// The HTTP server of `app`, listening and running (its workers started).
pub fn http_server(
    app: &web::Data<App>,
    options: &EdgeOptions,
) -> anyhow::Result<actix_web::dev::Server> {
    use actix_http::{HttpService, Protocol};
    use actix_service::{IntoServiceFactory, ServiceFactoryExt, fn_service, map_config};
    let limits = app.network().limits;
    let workers = options.workers.max(1);
    let seats = options.zone_seats.clone();
    let max_connections = fit_connections(limits.max_connections, workers);
    let listener = listener(options.listen, limits.receive_buffer_bytes)
        .with_context(|| format!("listening on {}", options.listen))?;
    let address = listener.local_addr()?;
    let header_timeout = Duration::from_millis(limits.header_timeout_ms);
    let write_stall = Duration::from_millis(limits.write_stall_timeout_ms);
    let keep_alive = Duration::from_secs(limits.idle_timeout_s);
    let shared = app.clone();
    let server = actix_server::Server::build()
        .workers(workers)
        .max_concurrent_connections(max_connections)
        .disable_signals()
        .shutdown_timeout(options.shutdown_timeout.as_secs())
        .listen("order-router", listener, move || {
            // Runs on each worker's thread as it starts, before the server accepts.
            if let Some(seats) = &seats {
                seats.sit_here();
            }
            let app = actix_web::App::new()
                .app_data(shared.clone())
                .wrap(actix_web::middleware::from_fn(connection::track_requests))
                .configure(super::http::configure)
                .into_factory()
                .map_err(|error| error.error_response());
            let service = HttpService::build()
                .on_connect_ext(|socket: &Guarded, data: &mut actix_http::Extensions| {
                    data.insert(socket.connection());
                })
                .keep_alive(keep_alive)
                .client_request_timeout(header_timeout)
                .client_disconnect_timeout(Duration::from_secs(1))
                .local_addr(address)
                .finish(map_config(app, |_| actix_web::dev::AppConfig::default()));
            fn_service(move |socket: actix_rt::net::TcpStream| {
                send_at_once(&socket);
                let peer = socket.peer_addr().ok();
                let guarded = HeadGuard::new(socket, header_timeout).with_write_stall(write_stall);
                std::future::ready(Ok((guarded, Protocol::Http1, peer)))
            })
            .and_then(service)
        })
        .with_context(|| format!("listening on {}", options.listen))?;
    // Tests and scripts read this line to find the port when asked for port 0.
    println!("order-router listening on http://{address}");
    Ok(server.run())
}

/// Turns Nagle's algorithm off on an accepted connection (`TCP_NODELAY`; neither
/// actix-server nor actix-http does). Answers are written a batch at a time already; with
/// Nagle on, a batch's answers written while the previous batch's are not yet acknowledged
/// wait for that acknowledgement, and a client with nothing more to send delays it by 40 ms
/// (Linux): the later answers of a burst, and the last ones of a stream, came 43-45 ms late
/// (docs/benchmarks.md, "Answers sent at once"). A socket that refuses the option works as
/// before.
fn send_at_once(socket: &actix_rt::net::TcpStream) {
    if let Err(error) = socket.set_nodelay(true) {
        tracing::debug!("TCP_NODELAY not set on a connection: {error}");
    }
}

/// Raises the open-file limit to the hard limit and returns the connections each of
/// `workers` may hold: `wanted`, or fewer when the limit cannot hold them all. Logs which.
fn fit_connections(wanted: usize, workers: usize) -> usize {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(error) => {
            tracing::warn!("could not read or raise the open-file limit: {error}");
            return wanted;
        }
    };
    let (connections, lowered) = connections_within(limit, wanted, workers);
    if lowered {
        tracing::warn!(
            "limits.max_connections lowered from {wanted} to {connections} per worker: the open-file limit is {limit} (its hard limit), {workers} workers, {RESERVED_FILES} files kept for the rest; raise the hard limit (ulimit -Hn, LimitNOFILE=) to allow more"
        );
    } else {
        tracing::info!(
            "open-file limit {limit}: room for limits.max_connections = {wanted} on each of {workers} workers"
        );
    }
    connections
}

/// The connections per worker that fit in an open-file `limit`, and whether that is fewer
/// than `wanted`.
fn connections_within(limit: u64, wanted: usize, workers: usize) -> (usize, bool) {
    let room = limit.saturating_sub(RESERVED_FILES) / workers.max(1) as u64;
    if wanted as u64 <= room {
        (wanted, false)
    } else {
        (room.max(1) as usize, true)
    }
}

/// The listening socket, with `SO_RCVBUF` set when `receive_buffer_bytes` is not 0: the
/// connections it accepts inherit it (on Linux), and a buffer set before `listen` is also
/// the window the connection opens with. `SO_REUSEADDR` and the backlog as actix-web's own
/// `bind` sets them.
fn listener(
    address: SocketAddr,
    receive_buffer_bytes: usize,
) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    if receive_buffer_bytes > 0 {
        socket.set_recv_buffer_size(receive_buffer_bytes)?;
        // Linux doubles the value for its bookkeeping and caps it at net.core.rmem_max
        // (often 208 KiB): say what is in effect.
        let effective = socket.recv_buffer_size()?;
        if effective < receive_buffer_bytes {
            tracing::warn!(
                "limits.receive_buffer_bytes = {receive_buffer_bytes}, but the kernel caps it at {effective} (net.core.rmem_max)"
            );
        } else {
            tracing::info!(
                "receive buffer per connection: {effective} bytes (as the kernel counts them)"
            );
        }
    }
    socket.bind(&address.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// How often at most a summary of bad request heads is logged.
pub const BAD_HEAD_LOG_EVERY: Duration = Duration::from_secs(10);

/// A log layer that takes actix-http's one ERROR line per bad request head ("stream error:
/// ..."), counts it (`router_requests_refused_total{reason="bad_head"}`), and logs one
/// WARN line per [`BAD_HEAD_LOG_EVERY`] at most, saying how many and the latest one. Paired
/// with [`BadHeads::is_bad_head`] as the printing layer's filter, which drops the originals.
/// Heads counted inside a period are reported at its end by [`BadHeads::flush`] (the
/// service calls it once a second), not only when a later bad head comes: the last burst's
/// count is logged too. The counts are the process's, as the log is.
#[derive(Default)]
pub struct BadHeads;

/// What [`BadHeads`] counted and has not reported yet.
#[derive(Default)]
struct HeadCounts {
    /// Counted since the last report.
    since_logged: u64,
    /// The latest of those.
    latest: String,
    /// When the last report was logged.
    logged_at: Option<Instant>,
}

impl HeadCounts {
    /// Counts one bad head with `message`; the summary to log now, if it is time.
    fn count(&mut self, message: String, now: Instant) -> Option<String> {
        self.since_logged += 1;
        self.latest = message;
        self.report(now)
    }

    /// The summary of the heads counted since the last report, if there are any and the
    /// period since that report has passed.
    fn report(&mut self, now: Instant) -> Option<String> {
        if self.since_logged == 0
            || self
                .logged_at
                .is_some_and(|at| now < at + BAD_HEAD_LOG_EVERY)
        {
            return None;
        }
        self.logged_at = Some(now);
        let count = std::mem::take(&mut self.since_logged);
        Some(format!(
            "{count} bad request head(s) refused since the last report, the latest: {} (reported at most every {} s; router_requests_refused_total counts them all)",
            self.latest,
            BAD_HEAD_LOG_EVERY.as_secs()
        ))
    }
}

/// The process's bad-head counts (the log layer and the service's clock share them).
static HEAD_COUNTS: Mutex<HeadCounts> = Mutex::new(HeadCounts {
    since_logged: 0,
    latest: String::new(),
    logged_at: None,
});

/// The module actix-http logs bad heads from.
const DISPATCHER: &str = "actix_http::h1::dispatcher";

impl BadHeads {
    /// Whether an event is one of actix-http's bad-head lines (for the printing layer to
    /// leave out).
    pub fn is_bad_head(metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target() == DISPATCHER && *metadata.level() == tracing::Level::ERROR
    }

    fn counts() -> std::sync::MutexGuard<'static, HeadCounts> {
        HEAD_COUNTS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Logs the heads counted inside the last period, once it has passed (called once a
    /// second; one lock and a comparison when there is nothing to report).
    pub fn flush() {
        let summary = Self::counts().report(Instant::now());
        if let Some(summary) = summary {
            tracing::warn!(target: "order_router::edge", "{summary}");
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for BadHeads {
    /// It looks at errors only: without a hint the process's maximum level would be TRACE.
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::ERROR)
    }

    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if !BadHeads::is_bad_head(event.metadata()) {
            return;
        }
        metrics::counter!(names::REQUESTS_REFUSED, "reason" => "bad_head").increment(1);
        let mut message = Message(String::new());
        event.record(&mut message);
        // The lock is let go before the summary is logged (a nested event).
        let summary = Self::counts().count(message.0, Instant::now());
        if let Some(summary) = summary {
            tracing::warn!(target: "order_router::edge", "{summary}");
        }
    }
}

/// An event's message, as text.
struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_connections_send_at_once() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (client, accepted) =
            tokio::join!(tokio::net::TcpStream::connect(address), listener.accept());
        let (socket, _) = accepted.unwrap();
        assert!(
            !socket.nodelay().unwrap(),
            "Nagle is on until the edge turns it off"
        );
        send_at_once(&socket);
        assert!(socket.nodelay().unwrap());
        drop(client);
    }

    #[test]
    fn the_connection_cap_fits_under_the_file_limit() {
        assert_eq!(connections_within(1_048_576, 25_000, 2), (25_000, false));
        // 20,000 files, 2 workers: 25,000 each cannot be held.
        assert_eq!(connections_within(20_000, 25_000, 2), (9_872, true));
        assert_eq!(connections_within(100, 25_000, 2), (1, true));
    }

    #[test]
    fn bad_heads_are_reported_at_most_once_per_period_with_their_count() {
        let mut heads = HeadCounts::default();
        let start = Instant::now();
        let first = heads.count("stream error: bad header".into(), start);
        assert!(first.unwrap().starts_with("1 bad request head(s)"));
        for second in 1..50 {
            let at = start + Duration::from_millis(100 * second);
            assert_eq!(heads.count("again".into(), at), None);
        }
        let later = heads.count("the latest".into(), start + BAD_HEAD_LOG_EVERY);
        let later = later.unwrap();
        assert!(later.starts_with("50 bad request head(s)"), "{later}");
        assert!(later.contains("the latest"), "{later}");
        // Nothing counted since: the clock's report has nothing to say.
        assert_eq!(heads.report(start + BAD_HEAD_LOG_EVERY * 3), None);
    }

    #[test]
    fn the_last_burst_is_reported_by_the_clock_once_its_period_has_passed() {
        let mut heads = HeadCounts::default();
        let start = Instant::now();
        assert!(heads.count("first".into(), start).is_some());
        for tenth in 1..=3 {
            let at = start + Duration::from_millis(100 * tenth);
            assert_eq!(heads.count(format!("burst {tenth}"), at), None);
        }
        // No bad head comes after the burst; the once-a-second report logs it when due.
        assert_eq!(heads.report(start + Duration::from_secs(5)), None);
        let due = heads.report(start + BAD_HEAD_LOG_EVERY).unwrap();
        assert!(due.starts_with("3 bad request head(s)"), "{due}");
        assert!(due.contains("burst 3"), "{due}");
        assert_eq!(heads.report(start + BAD_HEAD_LOG_EVERY * 2), None);
    }
}
