//! The server under test: its address, connections to it, and what it tells about itself
//! (`GET /v1/network`, `GET /v1/catalog`, `GET /v1/stock`, `GET /metrics`).
//!
//! Every connection the tool opens is plain HTTP/1.1 over TCP with `TCP_NODELAY`, one
//! request at a time, its driver a task of its own. Requests the tool makes for itself
//! (network, catalogue, stock, metrics) give up after [`CALL_TIMEOUT`].

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue, RETRY_AFTER};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

/// How long a request of its own (network, catalogue, stock, metrics) may take.
pub const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Where the server is, and the token to show it.
#[derive(Debug, Clone)]
pub struct Target {
    pub address: SocketAddr,
    /// `host:port` as given, for the `Host` header (a valid header value).
    pub authority: String,
    /// `Bearer` token sent with every request, if any (a valid header value with its
    /// `Bearer ` prefix).
    pub token: Option<String>,
}

impl Target {
    /// Parses `http://HOST:PORT` (a trailing `/` is fine; `https` is not supported), and
    /// checks that the authority and the token can be sent as headers.
    pub fn parse(url: &str, token: Option<String>) -> anyhow::Result<Target> {
        let Some(rest) = url.strip_prefix("http://") else {
            bail!("--target {url:?}: expected http://HOST:PORT (plain HTTP/1.1)");
        };
        let authority = rest.trim_end_matches('/').to_owned();
        if authority.contains('/') {
            bail!("--target {url:?}: give the server's root, without a path");
        }
        let address = std::net::ToSocketAddrs::to_socket_addrs(&authority)
            .with_context(|| format!("--target {url:?}: cannot resolve {authority:?}"))?
            .next()
            .with_context(|| format!("--target {url:?}: {authority:?} resolves to nothing"))?;
        // Checked once here, so that building a request from them cannot fail later.
        if HeaderValue::from_str(&authority).is_err() {
            bail!("--target {url:?}: {authority:?} is not a valid Host header");
        }
        if let Some(token) = &token
            && HeaderValue::from_str(&format!("Bearer {token}")).is_err()
        {
            bail!("--token: not a valid HTTP header value");
        }
        Ok(Target {
            address,
            authority,
            token,
        })
    }

    /// The request head every call shares: method, path, `Host` and the token.
    pub fn request(&self, method: Method, path: &str) -> hyper::http::request::Builder {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, &self.authority);
        if let Some(token) = &self.token {
            builder = builder.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        builder
    }

    /// A connection to the server (with `SO_SNDBUF` when `send_buffer_bytes` is not 0),
    /// its HTTP/1.1 handshake done and its driver spawned.
    pub async fn connect(&self, send_buffer_bytes: u32) -> anyhow::Result<Connection> {
        let socket = if self.address.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        if send_buffer_bytes > 0 {
            socket.set_send_buffer_size(send_buffer_bytes)?;
        }
        let stream = socket.connect(self.address).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await?;
        tokio::spawn(async move {
            // Errors surface on the request; nothing to add here.
            let _ = connection.await;
        });
        Ok(sender)
    }

    /// `POST /v1/orders` with an NDJSON body streamed from `body`.
    pub fn post_ndjson(&self, body: BodyStream) -> Request<RequestBody> {
        self.request(Method::POST, "/v1/orders")
            .header(CONTENT_TYPE, "application/x-ndjson")
            .body(http_body_util::Either::Left(StreamBody::new(body)))
            .expect("a fixed method and path, and headers checked by Target::parse")
    }

    /// `POST /v1/orders` with one JSON order.
    pub fn post_json(&self, order: Bytes) -> Request<RequestBody> {
        self.request(Method::POST, "/v1/orders")
            .header(CONTENT_TYPE, "application/json")
            .body(http_body_util::Either::Right(Full::new(order)))
            .expect("a fixed method and path, and headers checked by Target::parse")
    }

    /// `POST /v1/orders/{id}/shipped`, with an empty body; an error when `id` cannot be a
    /// path segment (the contract's ids always can).
    pub fn post_shipped(&self, id: &str) -> Result<Request<RequestBody>, hyper::http::Error> {
        self.request(Method::POST, &format!("/v1/orders/{id}/shipped"))
            .body(http_body_util::Either::Right(Full::new(Bytes::new())))
    }

    /// `POST /v1/shipments` with an NDJSON body of `{"id":...}` lines.
    pub fn post_shipments(&self, body: Bytes) -> Request<RequestBody> {
        self.request(Method::POST, "/v1/shipments")
            .header(CONTENT_TYPE, "application/x-ndjson")
            .body(http_body_util::Either::Right(Full::new(body)))
            .expect("a fixed method and path, and headers checked by Target::parse")
    }

    /// `GET path`, which must answer 200, on a connection of its own; its body. Gives up
    /// after [`CALL_TIMEOUT`]: a server that stopped must not stop the tool.
    pub async fn get(&self, path: &str) -> anyhow::Result<Bytes> {
        let (status, body) = tokio::time::timeout(CALL_TIMEOUT, self.get_once(path))
            .await
            .map_err(|_| anyhow::anyhow!("{path}: no answer within {CALL_TIMEOUT:?}"))??;
        if status != StatusCode::OK {
            bail!(
                "GET {path} answered {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            );
        }
        Ok(body)
    }

    async fn get_once(&self, path: &str) -> anyhow::Result<(StatusCode, Bytes)> {
        let mut sender = self.connect(0).await?;
        let request = self
            .request(Method::GET, path)
            .body(http_body_util::Either::Right(Full::new(Bytes::new())))?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }

    /// What the tool needs to know of the server to make valid orders.
    pub async fn learn(&self) -> anyhow::Result<Knowledge> {
        let network = self
            .get("/v1/network")
            .await
            .with_context(|| format!("GET http://{}/v1/network", self.authority))?;
        let network: NetworkView = serde_json::from_slice(&network)
            .context("GET /v1/network: not the contract's network document")?;
        let catalog: Vec<SkuView> = serde_json::from_slice(&self.get("/v1/catalog").await?)
            .context("GET /v1/catalog: not a JSON array of SKUs")?;
        if network.regions.is_empty() {
            bail!("GET /v1/network lists no regions: nowhere to ship to");
        }
        if catalog.is_empty() {
            bail!("GET /v1/catalog lists no SKUs: nothing to order");
        }
        Ok(Knowledge { network, catalog })
    }

    /// Reserved units per (warehouse, SKU), from `GET /v1/stock` (CSV of every level).
    pub async fn reserved(&self) -> anyhow::Result<HashMap<(String, String), u64>> {
        Ok(self.stock_levels(false).await?.reserved)
    }

    /// Reserved units per (warehouse, SKU) (levels with none left out), and with `on_hand`
    /// the on-hand units of every level too, from `GET /v1/stock` (CSV of every level).
    pub async fn stock_levels(&self, on_hand: bool) -> anyhow::Result<StockLevels> {
        let body = self.get("/v1/stock").await?;
        let text = std::str::from_utf8(&body).context("GET /v1/stock: not UTF-8")?;
        let mut lines = text.lines();
        let header = lines.next().unwrap_or("");
        let columns: Vec<&str> = header.split(',').collect();
        let column = |name: &str| {
            columns
                .iter()
                .position(|column| *column == name)
                .with_context(|| format!("GET /v1/stock: no {name:?} column in {header:?}"))
        };
        let (warehouse, sku, reserved) =
            (column("warehouse")?, column("sku")?, column("reserved")?);
        let on_hand_column = if on_hand {
            Some(column("on_hand")?)
        } else {
            None
        };
        let mut levels = StockLevels::default();
        for (number, line) in lines.enumerate() {
            let fields: Vec<&str> = line.split(',').collect();
            let field = |index: usize| {
                fields
                    .get(index)
                    .with_context(|| format!("GET /v1/stock line {}: too few fields", number + 2))
            };
            let units = |index: usize, name: &str| -> anyhow::Result<u64> {
                field(index)?
                    .parse()
                    .with_context(|| format!("GET /v1/stock line {}: {name}", number + 2))
            };
            let key = || -> anyhow::Result<(String, String)> {
                Ok((field(warehouse)?.to_string(), field(sku)?.to_string()))
            };
            let reserved_units = units(reserved, "reserved")?;
            if reserved_units > 0 {
                levels.reserved.insert(key()?, reserved_units);
            }
            if let Some(index) = on_hand_column {
                levels.on_hand.insert(key()?, units(index, "on_hand")?);
            }
        }
        Ok(levels)
    }

    /// The server's resident memory now and at its peak, in bytes, from `GET /metrics`
    /// (`process_resident_memory_bytes`, `router_memory_resident_peak_bytes`); `None` for
    /// what it does not report.
    pub async fn memory(&self) -> (Option<u64>, Option<u64>) {
        let Ok(body) = self.get("/metrics").await else {
            return (None, None);
        };
        let text = String::from_utf8_lossy(&body);
        let value = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
                .and_then(|value| value.trim().parse::<f64>().ok())
                .map(|value| value as u64)
        };
        (
            value("process_resident_memory_bytes"),
            value("router_memory_resident_peak_bytes"),
        )
    }
}

/// Stock levels read from `GET /v1/stock`, per (warehouse, SKU).
#[derive(Debug, Clone, Default)]
pub struct StockLevels {
    /// Levels with reserved units (the others left out).
    pub reserved: HashMap<(String, String), u64>,
    /// Every level's on-hand units, when asked for (else empty).
    pub on_hand: HashMap<(String, String), u64>,
}

/// A request body: streamed frames (NDJSON) or one whole body (a JSON order, a `GET`).
pub type RequestBody = http_body_util::Either<StreamBody<BodyStream>, Full<Bytes>>;

/// The frames of a streamed request body.
pub type BodyStream =
    futures_util::stream::BoxStream<'static, Result<Frame<Bytes>, std::io::Error>>;

/// The sending half of an open connection.
pub type Connection = SendRequest<RequestBody>;

/// The seconds a 429 asks to wait (`Retry-After`, default 1, at most 60).
pub fn retry_after(response: &hyper::Response<hyper::body::Incoming>) -> Duration {
    let seconds = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .unwrap_or(1)
        .min(60);
    Duration::from_secs(seconds)
}

/// How long to wait before trying the server again after a failure: doubling from 50 ms
/// up to a ceiling.
pub struct Backoff {
    next: Duration,
    ceiling: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(50);

    pub fn new(ceiling: Duration) -> Backoff {
        Backoff {
            next: Backoff::FIRST,
            ceiling,
        }
    }

    /// The wait before the next attempt.
    pub fn wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.ceiling);
        wait
    }

    /// After a success: the next failure waits the first wait again.
    pub fn reset(&mut self) {
        self.next = Backoff::FIRST;
    }
}

/// The parts of `GET /v1/network` the generator uses.
#[derive(Debug, Clone, Deserialize)]
pub struct NetworkView {
    pub regions: Vec<RegionView>,
    /// Absent from servers that do not list them: only "standard" is assumed then.
    #[serde(default)]
    pub tiers: Vec<TierView>,
    #[serde(default)]
    pub limits: Option<LimitsView>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RegionView {
    pub id: String,
    #[serde(default)]
    pub population: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TierView {
    pub id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LimitsView {
    pub max_lines_per_order: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SkuView {
    pub sku: String,
    #[serde(default)]
    pub capabilities: Vec<String>,
}

/// What the server told about itself.
#[derive(Debug, Clone)]
pub struct Knowledge {
    pub network: NetworkView,
    pub catalog: Vec<SkuView>,
}

/// Runs `future` unless `stop` is notified first, or has been (`stopped()` already true):
/// `None` then. The waiter is created before the flag is read, so a `notify_waiters` in
/// between still wakes it.
pub async fn unless_stopped<T>(
    stop: &tokio::sync::Notify,
    stopped: impl Fn() -> bool,
    future: impl std::future::Future<Output = T>,
) -> Option<T> {
    let notified = stop.notified();
    if stopped() {
        return None;
    }
    tokio::select! {
        value = future => Some(value),
        _ = notified => None,
    }
}
