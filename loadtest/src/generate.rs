//! The orders: NDJSON lines drawn from the scenario's mix over what the server said it has.
//!
//! Every line carries what its answer must be ([`Expect`]): a new order must be decided
//! (any status) under its own id, a resend must come back as a duplicate of its original,
//! and a malformed line must come back `invalid` with its code. Weighted draws are
//! inverse-CDF tables ([`Weighted`]): one uniform draw and a binary search each.

use crate::scenario::{Mix, RegionMix, SkuDistribution};
use crate::target::Knowledge;
use anyhow::bail;
use bytes::Bytes;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// A table of choices drawn by weight.
pub struct Weighted<T> {
    items: Vec<T>,
    /// Running sums of the weights; the last is the total.
    cumulative: Vec<f64>,
}

impl<T> Weighted<T> {
    /// `None` when no weight is positive.
    pub fn new(pairs: impl IntoIterator<Item = (T, f64)>) -> Option<Weighted<T>> {
        let mut items = Vec::new();
        let mut cumulative = Vec::new();
        let mut total = 0.0;
        for (item, weight) in pairs {
            if weight > 0.0 {
                total += weight;
                items.push(item);
                cumulative.push(total);
            }
        }
        (total > 0.0).then_some(Weighted { items, cumulative })
    }

    pub fn draw(&self, random: &mut ChaCha8Rng) -> &T {
        let total = *self
            .cumulative
            .last()
            .expect("a table has a positive weight");
        let point = random.random::<f64>() * total;
        let index = self.cumulative.partition_point(|sum| *sum <= point);
        &self.items[index.min(self.items.len() - 1)]
    }
}

/// The malformed lines a `dirty` scenario sends, and the code each must be answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// A valid order cut off in the middle.
    BadJson,
    UnknownSku,
    /// A line with `qty: 0`.
    BadQty,
    /// An order without `lines`.
    MissingField,
    UnknownRegion,
}

impl Malformed {
    const ALL: [Malformed; 5] = [
        Malformed::BadJson,
        Malformed::UnknownSku,
        Malformed::BadQty,
        Malformed::MissingField,
        Malformed::UnknownRegion,
    ];

    /// The contract's error code for it.
    pub fn code(self) -> &'static str {
        match self {
            Malformed::BadJson => "bad_json",
            Malformed::UnknownSku => "unknown_sku",
            Malformed::BadQty => "bad_qty",
            Malformed::MissingField => "missing_field",
            Malformed::UnknownRegion => "unknown_region",
        }
    }
}

/// What the answer to a line must be.
#[derive(Debug, Clone)]
pub enum Expect {
    /// A new order: decided once, under this id, not a duplicate.
    New { id: Arc<str> },
    /// A resend of an answered order: its decision again (`answer`, the original's answer
    /// line), `"duplicate": true`.
    Resend { id: Arc<str>, answer: Bytes },
    /// `invalid` with this code.
    Invalid(Malformed),
}

/// One line to send.
#[derive(Debug, Clone)]
pub struct Line {
    /// The NDJSON line, with its `\n`.
    pub bytes: Bytes,
    pub expect: Expect,
}

/// An answered new order a resend may repeat: its id, its line and its answer.
#[derive(Debug, Clone)]
pub struct Original {
    pub id: Arc<str>,
    pub line: Bytes,
    pub answer: Bytes,
}

/// Answered new orders that a retry may resend, filled by the connections (a sample of
/// each answered chunk or request) and drawn by the generator: a bounded ring of the
/// latest, or, with an age (`mix.retry_age_s`), a sample of each tenth of a second's kept
/// for as long as the oldest age asks (ages are met to a tenth of a second).
pub struct ResendPool {
    ring: Mutex<Ring>,
    /// `[low, high]` ages, and each tenth of a second's sample, when resends repeat old
    /// orders.
    aged: Option<([Duration; 2], Mutex<Samples>)>,
}

/// Originals by when they were answered: each sample's start, and its originals.
type Samples = VecDeque<(Instant, Vec<Original>)>;

struct Ring {
    lines: Vec<Original>,
    next: usize,
}

impl ResendPool {
    const CAPACITY: usize = 8_192;
    /// How long the originals of one sample were answered over, when resends repeat old
    /// orders.
    const SAMPLE: Duration = Duration::from_millis(100);
    /// Originals kept of each [`Self::SAMPLE`] (about 10 MB for 100 seconds).
    const PER_SAMPLE: usize = 32;

    pub fn new() -> ResendPool {
        ResendPool {
            ring: Mutex::new(Ring {
                lines: Vec::with_capacity(Self::CAPACITY),
                next: 0,
            }),
            aged: None,
        }
    }

    /// A pool whose resends repeat orders answered `[low, high]` seconds ago.
    pub fn aged(seconds: [f64; 2]) -> ResendPool {
        let age = seconds.map(Duration::from_secs_f64);
        ResendPool {
            aged: Some((age, Mutex::new(VecDeque::new()))),
            ..ResendPool::new()
        }
    }

    /// Offers answered originals for resending.
    pub fn offer(&self, answered: impl IntoIterator<Item = Original>) {
        if let Some(([_, oldest], seconds)) = &self.aged {
            let now = Instant::now();
            let mut seconds = seconds.lock().expect("no panics while the pool is held");
            while seconds
                .front()
                .is_some_and(|(at, _)| now.duration_since(*at) > *oldest + Self::SAMPLE)
            {
                seconds.pop_front();
            }
            if seconds
                .back()
                .is_none_or(|(at, _)| now.duration_since(*at) >= Self::SAMPLE)
            {
                seconds.push_back((now, Vec::new()));
            }
            let (_, kept) = seconds.back_mut().expect("pushed above");
            let room = Self::PER_SAMPLE.saturating_sub(kept.len());
            kept.extend(answered.into_iter().take(room));
            return;
        }
        let mut ring = self.ring.lock().expect("no panics while the ring is held");
        for item in answered {
            if ring.lines.len() < Self::CAPACITY {
                ring.lines.push(item);
            } else {
                let next = ring.next;
                ring.lines[next] = item;
                ring.next = (next + 1) % Self::CAPACITY;
            }
        }
    }

    fn pick(&self, random: &mut ChaCha8Rng) -> Option<Original> {
        if let Some(([youngest, oldest], seconds)) = &self.aged {
            let now = Instant::now();
            let seconds = seconds.lock().expect("no panics while the pool is held");
            let old_enough: Vec<&Vec<Original>> = seconds
                .iter()
                .filter(|(at, kept)| {
                    let age = now.duration_since(*at);
                    !kept.is_empty() && age >= *youngest && age <= *oldest
                })
                .map(|(_, kept)| kept)
                .collect();
            if old_enough.is_empty() {
                return None;
            }
            let kept = old_enough[random.random_range(0..old_enough.len())];
            return Some(kept[random.random_range(0..kept.len())].clone());
        }
        let ring = self.ring.lock().expect("no panics while the ring is held");
        if ring.lines.is_empty() {
            return None;
        }
        Some(ring.lines[random.random_range(0..ring.lines.len())].clone())
    }
}

impl Default for ResendPool {
    fn default() -> Self {
        ResendPool::new()
    }
}

/// Makes the lines of a run.
pub struct Generator {
    random: ChaCha8Rng,
    /// Ids are `<prefix>-<sequence>`: the prefix is the run's, so two runs against one
    /// server do not answer each other's orders as duplicates.
    prefix: String,
    sequence: u64,
    tiers: Weighted<String>,
    services: Weighted<String>,
    basket: Weighted<u32>,
    quantity: Weighted<u32>,
    regions: Weighted<String>,
    /// SKU names in popularity order (rank 0 the hottest), for the Zipf draw.
    skus: Vec<String>,
    /// Inverse CDF over the ranks (from 1 when `hot_share` singles out rank 0, else from 0),
    /// or `None` for a uniform draw.
    zipf: Option<Weighted<usize>>,
    hot_share: f64,
    promise_share: f64,
    promise_hours: [f64; 2],
    retry_share: f64,
    malformed_share: f64,
    /// Malformed kinds are sent in turn: the index of the next one.
    malformed_turn: usize,
    /// Lines per order at most (the server's limit).
    max_lines: usize,
    pub resends: Arc<ResendPool>,
    /// The order being written, kept between orders so its allocation is reused.
    buffer: Vec<u8>,
    /// What was adapted to this server, for the report.
    pub notes: Vec<String>,
}

impl Generator {
    /// A generator of `mix` over what the server said it has (`known`), seeded; ids are
    /// `<prefix>-<sequence>`.
    pub fn new(
        mix: &Mix,
        known: &Knowledge,
        seed: u64,
        prefix: String,
    ) -> anyhow::Result<Generator> {
        let mut notes = Vec::new();
        let tiers = tiers(mix, known, &mut notes)?;
        let regions = regions(mix, known, &mut notes)?;
        let max_lines = known
            .network
            .limits
            .as_ref()
            .and_then(|limits| limits.max_lines_per_order)
            .unwrap_or(100)
            .max(1);
        let mut random = ChaCha8Rng::seed_from_u64(seed);
        let skus = skus_by_popularity(mix, known, &mut random)?;
        let expect = "weights were checked when the scenario loaded";
        Ok(Generator {
            random,
            prefix,
            sequence: 0,
            tiers,
            services: Weighted::new(
                mix.services
                    .iter()
                    .map(|(id, weight)| (id.clone(), *weight)),
            )
            .expect(expect),
            basket: numbers(&mix.basket_lines).expect(expect),
            quantity: numbers(&mix.quantity).expect(expect),
            regions,
            zipf: zipf(mix, skus.len()),
            skus,
            hot_share: mix.skus.hot_share,
            promise_share: mix.promise_share,
            promise_hours: mix.promise_hours,
            retry_share: mix.retry_share,
            malformed_share: mix.malformed_share,
            malformed_turn: 0,
            max_lines,
            resends: Arc::new(match mix.retry_age_s {
                Some(seconds) => ResendPool::aged(seconds),
                None => ResendPool::new(),
            }),
            buffer: Vec::with_capacity(512),
            notes,
        })
    }

    /// The next line: a resend, a malformed line or a new order, by the mix's shares.
    pub fn next_line(&mut self, now: SystemTime) -> Line {
        let draw = self.random.random::<f64>();
        if draw < self.retry_share
            && let Some(original) = self.resends.pick(&mut self.random)
        {
            return Line {
                bytes: original.line,
                expect: Expect::Resend {
                    id: original.id,
                    answer: original.answer,
                },
            };
        }
        if draw >= self.retry_share && draw < self.retry_share + self.malformed_share {
            let kind = Malformed::ALL[self.malformed_turn % Malformed::ALL.len()];
            self.malformed_turn += 1;
            return self.malformed(kind, now);
        }
        let (id, bytes) = self.order(now, None);
        Line {
            bytes,
            expect: Expect::New { id },
        }
    }

    fn sku(&mut self) -> usize {
        if self.hot_share > 0.0 && self.random.random::<f64>() < self.hot_share {
            return 0;
        }
        match &self.zipf {
            Some(table) => *table.draw(&mut self.random),
            None if self.skus.len() > 1 && self.hot_share > 0.0 => {
                self.random.random_range(1..self.skus.len())
            }
            None => self.random.random_range(0..self.skus.len()),
        }
    }

    /// A new order (or, with `broken`, one made malformed that way); its id and line.
    fn order(&mut self, now: SystemTime, broken: Option<Malformed>) -> (Arc<str>, Bytes) {
        self.sequence += 1;
        let mut id = String::with_capacity(self.prefix.len() + 12);
        id.push_str(&self.prefix);
        id.push('-');
        id.push_str(itoa::Buffer::new().format(self.sequence));
        let mut out = std::mem::take(&mut self.buffer);
        out.clear();
        out.extend_from_slice(b"{\"id\":\"");
        out.extend_from_slice(id.as_bytes());
        self.write_customer_and_destination(&mut out, broken);
        if self.random.random::<f64>() < self.promise_share {
            self.write_promise(&mut out, now);
        }
        if broken != Some(Malformed::MissingField) {
            self.write_lines(&mut out, broken);
        }
        out.push(b'}');
        if broken == Some(Malformed::BadJson) {
            // Cut in the middle of the customer object: never valid JSON.
            out.truncate(out.len().min(id.len() + 24));
        }
        out.push(b'\n');
        let bytes = Bytes::copy_from_slice(&out);
        self.buffer = out;
        (Arc::from(id), bytes)
    }

    /// `customer`, `ship_to` and `service`, after the id.
    fn write_customer_and_destination(&mut self, out: &mut Vec<u8>, broken: Option<Malformed>) {
        out.extend_from_slice(b"\",\"customer\":{\"id\":\"C-");
        let customer = self.random.random_range(0..2_000_000u32);
        out.extend_from_slice(itoa::Buffer::new().format(customer).as_bytes());
        out.extend_from_slice(b"\",\"tier\":\"");
        out.extend_from_slice(self.tiers.draw(&mut self.random).as_bytes());
        out.extend_from_slice(b"\"},\"ship_to\":{\"region\":\"");
        if broken == Some(Malformed::UnknownRegion) {
            out.extend_from_slice(b"NO-SUCH-REGION");
        } else {
            out.extend_from_slice(self.regions.draw(&mut self.random).as_bytes());
        }
        out.extend_from_slice(b"\"},\"service\":\"");
        out.extend_from_slice(self.services.draw(&mut self.random).as_bytes());
        out.push(b'"');
    }

    /// `promise_by`: `now` and a uniform draw from the mix's range of hours.
    fn write_promise(&mut self, out: &mut Vec<u8>, now: SystemTime) {
        let [low, high] = self.promise_hours;
        let hours = if high > low {
            self.random.random_range(low..high)
        } else {
            low
        };
        let promise = now + Duration::from_secs_f64(hours * 3600.0);
        out.extend_from_slice(b",\"promise_by\":\"");
        out.extend_from_slice(
            humantime::format_rfc3339_seconds(promise)
                .to_string()
                .as_bytes(),
        );
        out.push(b'"');
    }

    /// `lines`: the basket's size of (SKU, quantity), the first one broken if asked.
    fn write_lines(&mut self, out: &mut Vec<u8>, broken: Option<Malformed>) {
        out.extend_from_slice(b",\"lines\":[");
        let lines = (*self.basket.draw(&mut self.random) as usize).clamp(1, self.max_lines);
        for line in 0..lines {
            if line > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"sku\":\"");
            if broken == Some(Malformed::UnknownSku) && line == 0 {
                out.extend_from_slice(b"NO-SUCH-SKU");
            } else {
                let sku = self.sku();
                out.extend_from_slice(self.skus[sku].as_bytes());
            }
            out.extend_from_slice(b"\",\"qty\":");
            let quantity = if broken == Some(Malformed::BadQty) && line == 0 {
                0
            } else {
                *self.quantity.draw(&mut self.random)
            };
            out.extend_from_slice(itoa::Buffer::new().format(quantity).as_bytes());
            out.push(b'}');
        }
        out.push(b']');
    }

    fn malformed(&mut self, kind: Malformed, now: SystemTime) -> Line {
        let (_, bytes) = self.order(now, Some(kind));
        Line {
            bytes,
            expect: Expect::Invalid(kind),
        }
    }
}

/// The tiers of the mix that the server has. A scenario is written for any deployment: a
/// tier this server does not have is left out (its share goes to the others), said in the
/// report's notes; none left is an error.
fn tiers(
    mix: &Mix,
    known: &Knowledge,
    notes: &mut Vec<String>,
) -> anyhow::Result<Weighted<String>> {
    let known_tiers: Vec<&str> = if known.network.tiers.is_empty() {
        vec!["standard"]
    } else {
        known
            .network
            .tiers
            .iter()
            .map(|tier| tier.id.as_str())
            .collect()
    };
    for tier in mix
        .tiers
        .keys()
        .filter(|tier| !known_tiers.contains(&tier.as_str()))
    {
        notes.push(format!(
            "mix.tiers.{tier}: the server has no such tier (it has: {}); left out",
            known_tiers.join(", ")
        ));
    }
    let tiers = Weighted::new(
        mix.tiers
            .iter()
            .filter(|(tier, _)| known_tiers.contains(&tier.as_str()))
            .map(|(id, weight)| (id.clone(), *weight)),
    );
    let Some(tiers) = tiers else {
        bail!(
            "mix.tiers: none of its tiers is the server's (it has: {})",
            known_tiers.join(", ")
        );
    };
    Ok(tiers)
}

/// The regions to ship to: the mix's table (each must be the server's), all alike, or by
/// population.
fn regions(
    mix: &Mix,
    known: &Knowledge,
    notes: &mut Vec<String>,
) -> anyhow::Result<Weighted<String>> {
    let region_ids: Vec<&str> = known
        .network
        .regions
        .iter()
        .map(|region| region.id.as_str())
        .collect();
    let uniform = || Weighted::new(region_ids.iter().map(|id| (id.to_string(), 1.0)));
    let regions =
        match &mix.regions {
            RegionMix::Weights(table) => {
                if let Some(region) = table
                    .keys()
                    .find(|region| !region_ids.contains(&region.as_str()))
                {
                    bail!("mix.regions.{region}: the server has no such region");
                }
                Weighted::new(table.iter().map(|(id, weight)| (id.clone(), *weight)))
            }
            RegionMix::Named(name) if name == "uniform" => uniform(),
            _ => {
                // By population where the server tells it; a region without one counts 1.
                let by_population =
                    Weighted::new(known.network.regions.iter().map(|region| {
                        (region.id.clone(), region.population.unwrap_or(1.0).max(0.0))
                    }));
                by_population.or_else(|| {
                    notes.push(
                    "mix.regions: the server gives no region a population; regions drawn uniformly"
                        .to_owned(),
                );
                    uniform()
                })
            }
        };
    let Some(regions) = regions else {
        bail!("mix.regions: no region has a positive weight");
    };
    Ok(regions)
}

/// A table of whole numbers (lines per order, quantities) keyed by their text.
fn numbers(table: &BTreeMap<String, f64>) -> Option<Weighted<u32>> {
    Weighted::new(
        table
            .iter()
            .map(|(key, weight)| (key.parse::<u32>().unwrap_or(1), *weight)),
    )
}

/// The SKUs orders may name, in popularity order (rank 0 the hottest): a seeded shuffle of
/// the catalogue, so the hottest SKU is not just the first id.
fn skus_by_popularity(
    mix: &Mix,
    known: &Knowledge,
    random: &mut ChaCha8Rng,
) -> anyhow::Result<Vec<String>> {
    let mut skus: Vec<String> = known
        .catalog
        .iter()
        .filter(|sku| !mix.skus.plain_only || sku.capabilities.is_empty())
        .map(|sku| sku.sku.clone())
        .collect();
    if skus.is_empty() {
        bail!("mix.skus.plain_only: the server's catalogue has no SKU without capabilities");
    }
    for index in (1..skus.len()).rev() {
        let other = random.random_range(0..=index);
        skus.swap(index, other);
    }
    Ok(skus)
}

/// The draw over the ranks of `skus` SKUs: Zipf, or `None` for a uniform draw. Rank 0 is
/// the hot SKU when a hot share singles it out; the Zipf draw covers the rest (rank k
/// weighs 1/k^s, counting from 1).
fn zipf(mix: &Mix, skus: usize) -> Option<Weighted<usize>> {
    let first_rank = usize::from(mix.skus.hot_share > 0.0);
    match mix.skus.distribution {
        SkuDistribution::Uniform => None,
        SkuDistribution::Zipf => Weighted::new((first_rank..skus).map(|rank| {
            let weight = 1.0 / ((rank + 1 - first_rank) as f64).powf(mix.skus.exponent);
            (rank, weight)
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::SkuMix;
    use crate::target::{NetworkView, RegionView, SkuView, TierView};

    fn knowledge() -> Knowledge {
        Knowledge {
            network: NetworkView {
                regions: vec![
                    RegionView {
                        id: "BIG".into(),
                        population: Some(90.0),
                    },
                    RegionView {
                        id: "SMALL".into(),
                        population: Some(10.0),
                    },
                ],
                tiers: vec![
                    TierView {
                        id: "standard".into(),
                    },
                    TierView { id: "vip".into() },
                ],
                limits: None,
            },
            catalog: (0..1000)
                .map(|index| SkuView {
                    sku: format!("S-{index}"),
                    capabilities: vec![],
                })
                .collect(),
        }
    }

    #[test]
    fn orders_follow_the_mix() {
        let mix = Mix {
            skus: SkuMix {
                distribution: SkuDistribution::Zipf,
                exponent: 1.0,
                hot_share: 0.3,
                plain_only: false,
            },
            ..Mix::default()
        };
        let mut generator = Generator::new(&mix, &knowledge(), 7, "T".into()).unwrap();
        // Rank 0 is the SKU the hot share goes to.
        let hottest = generator.skus[0].clone();
        let (mut big, mut hot, mut lines) = (0, 0, 0);
        for _ in 0..20_000 {
            let line = generator.next_line(SystemTime::now());
            let value: serde_json::Value = serde_json::from_slice(&line.bytes).unwrap();
            assert!(matches!(line.expect, Expect::New { ref id } if value["id"] == **id));
            big += (value["ship_to"]["region"] == "BIG") as u32;
            for order_line in value["lines"].as_array().unwrap() {
                lines += 1;
                hot += (order_line["sku"] == hottest.as_str()) as u32;
            }
        }
        // Regions by population (90%), the hot SKU in about 30% of lines.
        assert!((17_500..18_500).contains(&big), "{big}");
        let share = hot as f64 / lines as f64;
        assert!((0.28..0.32).contains(&share), "{share}");
    }

    #[test]
    fn malformed_lines_are_malformed_and_resends_repeat_their_original() {
        let mix = Mix {
            malformed_share: 0.5,
            retry_share: 0.2,
            ..Mix::default()
        };
        let mut generator = Generator::new(&mix, &knowledge(), 7, "T".into()).unwrap();
        let first = loop {
            let line = generator.next_line(SystemTime::now());
            if let Expect::New { id } = &line.expect {
                generator.resends.offer([Original {
                    id: id.clone(),
                    line: line.bytes.clone(),
                    answer: Bytes::new(),
                }]);
                break line;
            }
        };
        let (mut invalid, mut resent) = (0, 0);
        for _ in 0..2_000 {
            let line = generator.next_line(SystemTime::now());
            assert_eq!(line.bytes.iter().filter(|byte| **byte == b'\n').count(), 1);
            match line.expect {
                Expect::Invalid(kind) => {
                    invalid += 1;
                    let parsed = serde_json::from_slice::<serde_json::Value>(&line.bytes);
                    assert_eq!(parsed.is_err(), kind == Malformed::BadJson);
                }
                Expect::Resend { .. } => {
                    resent += 1;
                    assert_eq!(line.bytes, first.bytes);
                }
                Expect::New { .. } => {}
            }
        }
        assert!((900..1_100).contains(&invalid), "{invalid}");
        assert!((300..500).contains(&resent), "{resent}");
    }

    #[test]
    fn an_aged_pool_resends_only_orders_answered_within_its_ages() {
        let pool = ResendPool::aged([0.3, 2.0]);
        let original = |id: &str| Original {
            id: Arc::from(id),
            line: Bytes::from(format!("{id}\n")),
            answer: Bytes::from(format!("{{\"order_id\":\"{id}\"}}\n")),
        };
        let mut random = ChaCha8Rng::seed_from_u64(1);
        pool.offer([original("A")]);
        assert!(pool.pick(&mut random).is_none(), "answered too recently");
        std::thread::sleep(Duration::from_millis(400));
        pool.offer([original("B")]);
        for _ in 0..50 {
            let picked = pool.pick(&mut random).unwrap();
            assert_eq!(&*picked.id, "A", "B is too young");
            assert_eq!(picked.answer, original("A").answer);
        }
    }

    #[test]
    fn tiers_the_server_lacks_are_left_out_and_said() {
        let mix = Mix {
            tiers: [("gold".to_owned(), 1.0), ("vip".to_owned(), 1.0)].into(),
            ..Mix::default()
        };
        let mut generator = Generator::new(&mix, &knowledge(), 7, "T".into()).unwrap();
        assert_eq!(generator.notes.len(), 1);
        assert!(
            generator.notes[0].contains("mix.tiers.gold"),
            "{:?}",
            generator.notes
        );
        for _ in 0..100 {
            let line = generator.next_line(SystemTime::now());
            let value: serde_json::Value = serde_json::from_slice(&line.bytes).unwrap();
            assert_eq!(value["customer"]["tier"], "vip");
        }
        let mix = Mix {
            tiers: [("gold".to_owned(), 1.0)].into(),
            ..Mix::default()
        };
        let error = Generator::new(&mix, &knowledge(), 7, "T".into())
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.contains("mix.tiers") && error.contains("standard, vip"),
            "{error}"
        );
    }
}
