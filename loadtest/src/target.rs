//! The server under test: its address, and what it tells about itself (`GET /v1/network`,
//! `GET /v1/catalog`, `GET /v1/stock`, `GET /metrics`).

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;

/// How long a request of its own (network, catalogue, stock, metrics) may take.
pub const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Where the server is, and the token to show it.
#[derive(Debug, Clone)]
pub struct Target {
    pub address: SocketAddr,
    /// `host:port` as given, for the `Host` header.
    pub authority: String,
    /// `Bearer` token sent with every request, if any.
    pub token: Option<String>,
}

impl Target {
    /// Parses `http://HOST:PORT` (a trailing `/` is fine; `https` is not supported).
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

    /// One request on a connection of its own; the status and the whole body. Gives up
    /// after [`CALL_TIMEOUT`]: a server that stopped must not stop the tool.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Bytes)>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        tokio::time::timeout(CALL_TIMEOUT, self.call_once(method, path, body))
            .await
            .map_err(|_| anyhow::anyhow!("{path}: no answer within {CALL_TIMEOUT:?}"))?
    }

    async fn call_once(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Bytes)>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let mut sender = crate::connection::connect(self, 0).await?;
        let mut request = self.request(method, path);
        let body = match body {
            Some((content_type, bytes)) => {
                request = request.header(CONTENT_TYPE, content_type);
                bytes
            }
            None => Bytes::new(),
        };
        let response = sender
            .send_request(request.body(http_body_util::Either::Right(Full::new(body)))?)
            .await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }

    /// `GET path`, which must answer 200; its body.
    pub async fn get(&self, path: &str) -> anyhow::Result<Bytes> {
        let (status, body) = self.call(Method::GET, path, None).await?;
        if status != StatusCode::OK {
            bail!(
                "GET {path} answered {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            );
        }
        Ok(body)
    }

    /// What the tool needs to know of the server to make valid orders.
    pub async fn learn(&self) -> anyhow::Result<Knowledge> {
        let network: NetworkView = serde_json::from_slice(&self.get("/v1/network").await?)
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
        let mut levels = HashMap::new();
        for (number, line) in lines.enumerate() {
            let fields: Vec<&str> = line.split(',').collect();
            let field = |index: usize| {
                fields
                    .get(index)
                    .with_context(|| format!("GET /v1/stock line {}: too few fields", number + 2))
            };
            let units: u64 = field(reserved)?
                .parse()
                .with_context(|| format!("GET /v1/stock line {}: reserved", number + 2))?;
            if units > 0 {
                levels.insert(
                    (field(warehouse)?.to_string(), field(sku)?.to_string()),
                    units,
                );
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
