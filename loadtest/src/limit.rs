//! `loadtest limit`: how close the router comes to the stack it is built on.
//!
//! The same orders go, as fast as the connections take them (closed loop), through the bare
//! endpoint built into the tool ([`crate::bare`]) and through the router, in alternating
//! rounds (the machine's noise moves both alike). Each round makes fresh order ids, so the
//! router decides every order instead of answering duplicates. Rates are orders answered
//! per second from the first byte sent to the last answer received.

use crate::bare::Bare;
use crate::generate::Generator;
use crate::scenario::Mix;
use crate::target::Target;
use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::CONTENT_TYPE;
use hyper_util::rt::TokioIo;
use std::time::{Instant, SystemTime};
use tokio::net::TcpStream;

pub struct LimitOptions {
    pub target: Target,
    pub orders: usize,
    pub streams: usize,
    pub rounds: usize,
    pub mix: Mix,
    pub seed: u64,
}

/// One round: both rates.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Round {
    pub bare_per_s: f64,
    pub router_per_s: f64,
    pub ratio: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LimitReport {
    pub orders: usize,
    pub streams: usize,
    pub rounds: Vec<Round>,
    pub median_bare_per_s: f64,
    pub median_router_per_s: f64,
    /// Median of the rounds' ratios (router / bare).
    pub median_ratio: f64,
}

/// Body bytes per write: the size a storefront's buffered writer would send.
const CHUNK_BYTES: usize = 64 * 1024;

pub async fn limit(options: LimitOptions) -> anyhow::Result<LimitReport> {
    if options.orders == 0 || options.streams == 0 || options.rounds == 0 {
        bail!("--orders, --streams and --rounds must be at least 1");
    }
    let known = options.target.learn().await?;
    let bare = Bare::start().context("cannot start the bare endpoint")?;
    let bare_target = Target {
        address: bare.address,
        authority: bare.address.to_string(),
        token: None,
    };
    let stamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis());
    let mut rounds = Vec::new();
    for round in 0..options.rounds {
        let prefix = format!("LIM{stamp:x}r{round}");
        let mut generator = Generator::new(&options.mix, &known, options.seed, prefix)?;
        let now = SystemTime::now();
        let lines: Vec<Bytes> = (0..options.orders)
            .map(|_| generator.next_line(now).bytes)
            .collect();
        let parts = chunks(&lines, options.streams);
        let bare_per_s = blast(&bare_target, &parts, options.orders)
            .await
            .context("bare endpoint")?;
        let router_per_s = blast(&options.target, &parts, options.orders)
            .await
            .context("router")?;
        let result = Round {
            bare_per_s,
            router_per_s,
            ratio: router_per_s / bare_per_s,
        };
        eprintln!(
            "round {}: bare {:.0}/s, router {:.0}/s, ratio {:.3}",
            round + 1,
            result.bare_per_s,
            result.router_per_s,
            result.ratio
        );
        rounds.push(result);
    }
    drop(bare);
    let median = |pick: fn(&Round) -> f64| {
        let mut values: Vec<f64> = rounds.iter().map(pick).collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    Ok(LimitReport {
        orders: options.orders,
        streams: options.streams,
        median_bare_per_s: median(|round| round.bare_per_s),
        median_router_per_s: median(|round| round.router_per_s),
        median_ratio: median(|round| round.ratio),
        rounds,
    })
}

/// The lines cut into `streams` parts of body chunks of about [`CHUNK_BYTES`].
fn chunks(lines: &[Bytes], streams: usize) -> Vec<Vec<Bytes>> {
    let per_stream = lines.len().div_ceil(streams);
    lines
        .chunks(per_stream.max(1))
        .map(|part| {
            let mut chunks = Vec::new();
            let mut chunk = Vec::with_capacity(CHUNK_BYTES + 1024);
            for line in part {
                chunk.extend_from_slice(line);
                if chunk.len() >= CHUNK_BYTES {
                    chunks.push(Bytes::from(std::mem::replace(
                        &mut chunk,
                        Vec::with_capacity(CHUNK_BYTES + 1024),
                    )));
                }
            }
            if !chunk.is_empty() {
                chunks.push(Bytes::from(chunk));
            }
            chunks
        })
        .collect()
}

/// Sends every part on its own stream at once; orders answered per second.
async fn blast(target: &Target, parts: &[Vec<Bytes>], orders: usize) -> anyhow::Result<f64> {
    let mut connections = Vec::new();
    for _ in parts {
        let stream = TcpStream::connect(target.address)
            .await
            .with_context(|| format!("cannot connect to {}", target.authority))?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        connections.push(sender);
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (mut sender, part) in connections.into_iter().zip(parts.iter().cloned()) {
        let request = target
            .request(hyper::Method::POST, "/v1/orders")
            .header(CONTENT_TYPE, "application/x-ndjson")
            .body(StreamBody::new(futures_util::stream::iter(
                part.into_iter()
                    .map(|chunk| Ok::<_, std::io::Error>(Frame::data(chunk))),
            )))?;
        tasks.push(tokio::spawn(async move {
            let response = sender.send_request(request).await?;
            let status = response.status();
            if !status.is_success() {
                bail!("answered {status}");
            }
            let mut body = response.into_body();
            let mut answers = 0usize;
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame?.into_data() {
                    answers += memchr::memchr_iter(b'\n', &data).count();
                }
            }
            Ok(answers)
        }));
    }
    let mut answered = 0;
    for task in tasks {
        answered += task.await??;
    }
    let seconds = started.elapsed().as_secs_f64();
    if answered != orders {
        bail!("{orders} orders sent, {answered} answers");
    }
    Ok(orders as f64 / seconds)
}
