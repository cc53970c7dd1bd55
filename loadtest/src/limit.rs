//! `loadtest limit`: how close the router comes to the stack it is built on.
//!
//! The same orders go, as fast as the connections take them (closed loop), through the bare
//! endpoint built into the tool ([`crate::bare`]) and through the router, in alternating
//! rounds (the machine's noise moves both alike). Each round makes fresh order ids, so the
//! router decides every order instead of answering duplicates. Rates are orders answered
//! per second from the first byte sent to the last answer received.

use crate::bare::Bare;
use crate::connection::DECIDED;
use crate::generate::Generator;
use crate::ndjson::{Line, LineSplitter, MAX_LINE_BYTES};
use crate::scenario::Mix;
use crate::target::{BodyStream, Knowledge, Target};
use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Frame;
use std::collections::BTreeMap;
use std::time::{Instant, SystemTime};

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
    /// The router's answers by status: every round reserves stock, so later rounds of a
    /// big run meet emptier warehouses (more backorders and rejections).
    pub statuses: BTreeMap<String, u64>,
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
        let result = play_round(&options, &known, &bare_target, prefix).await?;
        eprintln!(
            "round {}: bare {:.0}/s, router {:.0}/s, ratio {:.3} (router's decisions: {:?})",
            round + 1,
            result.bare_per_s,
            result.router_per_s,
            result.ratio,
            result.statuses
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

/// One round: fresh orders (ids prefixed with `prefix`) through the bare endpoint, then the
/// same through the router, which must decide every one.
async fn play_round(
    options: &LimitOptions,
    known: &Knowledge,
    bare: &Target,
    prefix: String,
) -> anyhow::Result<Round> {
    let mut generator = Generator::new(&options.mix, known, options.seed, prefix)?;
    let now = SystemTime::now();
    let lines: Vec<Bytes> = (0..options.orders)
        .map(|_| generator.next_line(now).bytes)
        .collect();
    let parts = chunks(&lines, options.streams);
    let (bare_per_s, bare_statuses) = blast(bare, &parts, options.orders)
        .await
        .context("bare endpoint")?;
    if bare_statuses.keys().any(|status| status != "accepted") {
        bail!("the bare endpoint refused some orders: {bare_statuses:?}");
    }
    let (router_per_s, statuses) = blast(&options.target, &parts, options.orders)
        .await
        .context("router")?;
    // Every answer must be a decision: an endpoint that answers `invalid` fast is not
    // measured here.
    let decided: u64 = DECIDED
        .iter()
        .filter_map(|status| statuses.get(*status))
        .sum();
    if decided != options.orders as u64 {
        bail!("the router did not decide every order: {statuses:?}");
    }
    Ok(Round {
        bare_per_s,
        router_per_s,
        ratio: router_per_s / bare_per_s,
        statuses,
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

/// Sends every part on its own stream at once; orders answered per second, and how many
/// answers had each status.
async fn blast(
    target: &Target,
    parts: &[Vec<Bytes>],
    orders: usize,
) -> anyhow::Result<(f64, BTreeMap<String, u64>)> {
    let mut connections = Vec::new();
    for _ in parts {
        let sender = target
            .connect(0)
            .await
            .with_context(|| format!("cannot connect to {}", target.authority))?;
        connections.push(sender);
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (mut sender, part) in connections.into_iter().zip(parts.iter().cloned()) {
        let frames = futures_util::stream::iter(
            part.into_iter()
                .map(|chunk| Ok::<_, std::io::Error>(Frame::data(chunk))),
        );
        let body: BodyStream = Box::pin(frames);
        let request = target.post_ndjson(body);
        tasks.push(tokio::spawn(async move {
            let response = sender.send_request(request).await?;
            let status = response.status();
            if !status.is_success() {
                bail!("answered {status}");
            }
            let mut body = response.into_body();
            let mut statuses = Statuses::default();
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame?.into_data() {
                    statuses.feed(&data);
                }
            }
            Ok(statuses.counts)
        }));
    }
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    for task in tasks {
        for (status, n) in task.await?? {
            *statuses.entry(status).or_default() += n;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let answered: u64 = statuses.values().sum();
    if answered != orders as u64 {
        bail!("{orders} orders sent, {answered} answers");
    }
    Ok((orders as f64 / seconds, statuses))
}

/// Counts the `"status"` of answer lines as they stream in (a line may span frames).
struct Statuses {
    lines: LineSplitter,
    counts: BTreeMap<String, u64>,
}

impl Default for Statuses {
    fn default() -> Self {
        Statuses {
            lines: LineSplitter::new(MAX_LINE_BYTES),
            counts: BTreeMap::new(),
        }
    }
}

impl Statuses {
    fn feed(&mut self, data: &[u8]) {
        for line in self.lines.feed(data) {
            let status = match line {
                Line::Complete(line) => status_of(line),
                Line::TooLong { .. } => "(too long)".to_owned(),
            };
            *self.counts.entry(status).or_default() += 1;
        }
    }
}

/// The value of an answer line's `"status"` key, found by a byte search rather than by
/// parsing the line; `(none)` when it has none.
fn status_of(line: &[u8]) -> String {
    const KEY: &[u8] = b"\"status\":\"";
    memchr::memmem::find(line, KEY)
        .map(|at| &line[at + KEY.len()..])
        .and_then(|rest| {
            rest.iter()
                .position(|byte| *byte == b'"')
                .map(|end| &rest[..end])
        })
        .map_or("(none)".to_owned(), |status| {
            String::from_utf8_lossy(status).into_owned()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_counted_across_frames() {
        let mut statuses = Statuses::default();
        for frame in [
            &b"{\"order_id\":\"A\",\"status\":\"rou"[..],
            b"ted\"}\n{\"status\":\"held\"}\n{\"order_id\":\"B\"}\n{\"status\":",
            b"\"routed\"}\n",
        ] {
            statuses.feed(frame);
        }
        let expected = [("(none)", 1), ("held", 1), ("routed", 2)];
        let expected: BTreeMap<String, u64> = expected
            .iter()
            .map(|(status, n)| (status.to_string(), *n))
            .collect();
        assert_eq!(statuses.counts, expected);
    }
}
