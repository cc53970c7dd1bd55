//! The decision feed (`GET /v1/decisions`): every new decision, cancel, shipment and
//! bottleneck warning, each zone's in the order the zone made them, each line stamped with its
//! `cursor` (0, 1, 2, ... with no gaps). A reader resumes from any cursor still held; a live
//! reader (`follow=true`) is woken as entries arrive.
//!
//! The zone actors render feed lines and hand them over one message per decided chunk; the log
//! lives in its own actor so readers never wait on (or hold up) the deciding thread. Until
//! the journal exists (issue 4) the feed is in memory and holds the most recent
//! `crate::limits::FEED_RETENTION_BYTES` of entries (about 150,000 decisions); a cursor older than that is
//! answered `410 Gone` with the oldest one still held.

use super::metrics::names;
use actix::{Actor, Addr, AsyncContext, Context, Handler, Message, MessageResult};
use bytes::Bytes;
use crossbeam::queue::SegQueue;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tokio::sync::watch;

/// Feed entries that get consecutive cursors when the log takes them. An entry is its event and its JSON
/// object; a decision's object is a slice of the answers a zone actor rendered for the
/// caller (shared, not copied: the zone actors do no feed work per order). The cursor and the
/// event are written in front when the entry is read.
#[derive(Default)]
pub struct FeedChunk {
    /// The cursor of the first entry: set by the log when it appends the chunk.
    first: u64,
    entries: Vec<(&'static str, Bytes)>,
    /// Bytes held by the entries' objects.
    size: usize,
}

impl FeedChunk {
    pub fn new() -> FeedChunk {
        FeedChunk {
            first: 0,
            entries: Vec::new(),
            size: 0,
        }
    }

    /// Cursor after the last entry.
    pub fn end(&self) -> u64 {
        self.first + self.entries.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends an entry: `object` is a JSON object (`{...}`, a trailing newline allowed).
    pub fn push(&mut self, event: &'static str, object: Bytes) {
        debug_assert!(object.starts_with(b"{"), "a feed entry is a JSON object");
        self.size += object.len();
        self.entries.push((event, object));
    }

    /// The new decisions of a zone actor's message: `fresh`, ranges of `answers` (the
    /// message's rendered answers, made from a buffer that had `spare` bytes of unused
    /// capacity). The entries share `answers` when most of it is theirs (a batch of new
    /// orders: no copy); otherwise (a message of one order, or mostly duplicates) they are
    /// copied into one buffer of their exact size, so that a single-order request does not
    /// keep a whole answer buffer alive in the feed for each decision. What the shared
    /// buffer keeps alive beyond the entries counts against the retention too.
    pub fn decisions(
        answers: &Bytes,
        spare: usize,
        fresh: impl ExactSizeIterator<Item = std::ops::Range<usize>> + Clone,
    ) -> FeedChunk {
        let mut chunk = FeedChunk {
            first: 0,
            entries: Vec::with_capacity(fresh.len()),
            size: 0,
        };
        let sliced: usize = fresh.clone().map(|range| range.len()).sum();
        let backing = answers.len() - sliced + spare;
        if backing <= sliced / 4 {
            for range in fresh {
                chunk.push("decision", answers.slice(range));
            }
            chunk.size += backing;
            return chunk;
        }
        let mut exact = Vec::with_capacity(sliced);
        for range in fresh.clone() {
            exact.extend_from_slice(&answers[range]);
        }
        let exact = Bytes::from(exact);
        let mut at = 0;
        for range in fresh {
            chunk.push("decision", exact.slice(at..at + range.len()));
            at += range.len();
        }
        chunk
    }

    /// Writes the entries from `cursor` on (which must be in this chunk) as lines
    /// `{"cursor":N,"event":EVENT,...the object's members...}`.
    fn write_from(&self, cursor: u64, out: &mut Vec<u8>) {
        let skip = (cursor - self.first) as usize;
        for (offset, (event, object)) in self.entries.iter().enumerate().skip(skip) {
            out.extend_from_slice(b"{\"cursor\":");
            out.extend_from_slice(
                itoa::Buffer::new()
                    .format(self.first + offset as u64)
                    .as_bytes(),
            );
            out.extend_from_slice(b",\"event\":\"");
            out.extend_from_slice(event.as_bytes());
            out.extend_from_slice(b"\",");
            let members = &object[1..];
            out.extend_from_slice(members.strip_suffix(b"\n").unwrap_or(members));
            out.push(b'\n');
        }
    }
}

/// The log. Cursors are dense: the chunk holding cursor `c` is found by binary search.
pub struct FeedLog {
    chunks: VecDeque<FeedChunk>,
    /// Cursor of the oldest entry held.
    oldest: u64,
    /// Cursor the next entry gets.
    next: u64,
    /// Readers watch this for `next`.
    published: watch::Sender<u64>,
    /// Bytes of entries kept (whole chunks are dropped, oldest first, beyond it).
    retention: usize,
    /// Bytes of entries held now.
    held: usize,
    /// Chunks handed over by the zone actors, not yet taken.
    inbox: Arc<Inbox>,
}

/// Where the journal writer drops the chunks it has made durable: a lock-free queue
/// (`crossbeam`'s `SegQueue`) the log drains. The log is woken for them only while someone
/// follows the feed (`follow=true`), and then only when no wake-up is pending, so under load
/// it drains many chunks per wake. With no follower nothing waits on new entries: a read
/// drains first, and the log drains on its own every [`IDLE_DRAIN`] (a wake-up per round of
/// the writer cost a thread switch each way, about 7% of the server's CPU at 20k orders/s).
#[derive(Default)]
pub struct Inbox {
    chunks: SegQueue<FeedChunk>,
    /// A `Drain` is on its way to the log (or the log is draining).
    scheduled: AtomicBool,
    /// Responses following the feed (`follow=true`) now.
    followers: AtomicUsize,
}

/// How often the log drains its inbox when nobody follows the feed: what a reader may find
/// waiting is at most this old, and the inbox holds at most this long of entries.
pub const IDLE_DRAIN: std::time::Duration = std::time::Duration::from_millis(50);

/// A follower of the feed, counted while it lives (see [`Inbox`]).
pub struct Following(Arc<Inbox>);

impl Following {
    /// Counts a follower of `inbox` until dropped. Counted before its first read, so that
    /// every entry handed over after that read wakes the log for it.
    pub fn new(inbox: Arc<Inbox>) -> Following {
        inbox.followers.fetch_add(1, Ordering::SeqCst);
        Following(inbox)
    }
}

impl Drop for Following {
    fn drop(&mut self) {
        self.0.followers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How a zone actor hands its feed entries to the log.
#[derive(Clone)]
pub struct FeedSender {
    inbox: Arc<Inbox>,
    log: Addr<FeedLog>,
}

impl FeedSender {
    pub fn new(log: Addr<FeedLog>, inbox: Arc<Inbox>) -> FeedSender {
        FeedSender { inbox, log }
    }

    /// Hands over `chunk`; entries are appended in the order chunks are handed over.
    pub fn publish(&self, chunk: FeedChunk) {
        if chunk.is_empty() {
            return;
        }
        self.inbox.chunks.push(chunk);
        // Nobody waits on new entries: the next read, or the idle drain, takes them.
        if self.inbox.followers.load(Ordering::SeqCst) == 0 {
            return;
        }
        // SeqCst, with the clear in `drain`: the two flag operations are ordered with each
        // other and with the queue, so either this swap sees the clear (and schedules a
        // drain) or the drain that cleared it sees this chunk.
        if !self.inbox.scheduled.swap(true, Ordering::SeqCst) {
            self.log.do_send(Drain);
        }
    }
}

impl FeedLog {
    pub fn new() -> (FeedLog, watch::Receiver<u64>) {
        FeedLog::with_retention(crate::limits::FEED_RETENTION_BYTES)
    }

    pub fn with_retention(retention: usize) -> (FeedLog, watch::Receiver<u64>) {
        let (published, receiver) = watch::channel(0);
        let log = FeedLog {
            chunks: VecDeque::new(),
            oldest: 0,
            next: 0,
            published,
            retention,
            held: 0,
            inbox: Arc::default(),
        };
        (log, receiver)
    }

    /// The inbox zone actors hand chunks to (see [`FeedSender`]).
    pub fn inbox(&self) -> Arc<Inbox> {
        self.inbox.clone()
    }

    /// Appends every chunk waiting in the inbox. The flag is cleared before the queue is
    /// emptied: a chunk pushed after the last pop finds it clear and schedules another
    /// drain, so none is left behind.
    fn drain(&mut self) {
        // A read-modify-write, not a plain store: a store could be reordered after the pops
        // below (store-load), and a chunk pushed meanwhile would wait for the next drain.
        self.inbox.scheduled.swap(false, Ordering::SeqCst);
        while let Some(chunk) = self.inbox.chunks.pop() {
            self.append(chunk);
        }
    }

    /// Appends `chunk`: its entries take the next cursors. Every zone shard appends its
    /// own chunks, so the feed's order is the order the log takes them in: each zone's
    /// entries in the order the zone made them.
    fn append(&mut self, mut chunk: FeedChunk) {
        if chunk.is_empty() {
            return;
        }
        chunk.first = self.next;
        self.next = chunk.end();
        self.held += chunk.size;
        self.chunks.push_back(chunk);
        while self.held > self.retention && self.chunks.len() > 1 {
            let dropped = self.chunks.pop_front().expect("more than one chunk");
            self.oldest = dropped.end();
            self.held -= dropped.size;
        }
        metrics::gauge!(names::FEED_ENTRIES).set((self.next - self.oldest) as f64);
        let _ = self.published.send(self.next);
    }

    fn read(&self, cursor: u64, max_bytes: usize) -> ReadResult {
        if cursor < self.oldest {
            return ReadResult::Gone {
                oldest: self.oldest,
            };
        }
        if cursor >= self.next {
            return ReadResult::Empty;
        }
        let mut index = self.chunks.partition_point(|chunk| chunk.end() <= cursor);
        let mut out = Vec::new();
        let mut at = cursor;
        while let Some(chunk) = self.chunks.get(index) {
            chunk.write_from(at, &mut out);
            at = chunk.end();
            index += 1;
            if out.len() >= max_bytes {
                break;
            }
        }
        ReadResult::Lines(out, at)
    }
}

impl Actor for FeedLog {
    type Context = Context<Self>;

    fn started(&mut self, context: &mut Self::Context) {
        context.run_interval(IDLE_DRAIN, |log, _| log.drain());
    }
}

/// New entries wait in the inbox.
pub struct Drain;

impl Message for Drain {
    type Result = ();
}

impl Handler<Drain> for FeedLog {
    type Result = ();

    fn handle(&mut self, _: Drain, _: &mut Self::Context) {
        self.drain();
    }
}

/// Lines from `cursor` on, at most about `max_bytes` of them (whole chunks, at least one).
pub struct Read {
    pub cursor: u64,
    pub max_bytes: usize,
}

/// What a read found.
pub enum ReadResult {
    /// Lines, and the cursor after them.
    Lines(Vec<u8>, u64),
    /// Nothing at or after `cursor` yet.
    Empty,
    /// `cursor` is older than the oldest entry held.
    Gone { oldest: u64 },
}

impl Message for Read {
    type Result = ReadResult;
}

impl Handler<Read> for FeedLog {
    type Result = MessageResult<Read>;

    fn handle(&mut self, read: Read, _: &mut Self::Context) -> Self::Result {
        // Everything handed over before the read is seen by it.
        self.drain();
        MessageResult(self.read(read.cursor, read.max_bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(first: u64, count: u64) -> FeedChunk {
        let mut chunk = FeedChunk::new();
        for index in 0..count {
            chunk.push(
                "decision",
                Bytes::from(format!("{{\"n\":{}}}\n", first + index)),
            );
        }
        chunk
    }

    fn cursors(bytes: &[u8]) -> Vec<u64> {
        bytes
            .split(|byte| *byte == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| {
                let value: serde_json::Value = serde_json::from_slice(line).unwrap();
                assert_eq!(value["cursor"], value["n"]);
                value["cursor"].as_u64().unwrap()
            })
            .collect()
    }

    /// Waits (at most 5 s) until the log has published `cursor`.
    async fn published_reaches(published: &mut watch::Receiver<u64>, cursor: u64) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while *published.borrow_and_update() < cursor {
            assert!(
                tokio::time::timeout_at(deadline, published.changed())
                    .await
                    .is_ok(),
                "cursor {cursor} never published"
            );
        }
    }

    #[test]
    fn the_log_is_woken_for_new_entries_only_while_someone_follows() {
        actix_rt::System::new().block_on(async {
            let (log, mut published) = FeedLog::new();
            let inbox = log.inbox();
            let sender = FeedSender::new(log.start(), inbox.clone());
            // No follower: handed over, and no wake-up asked for.
            sender.publish(chunk(0, 3));
            assert!(!inbox.scheduled.load(Ordering::SeqCst));
            // A read drains first: it sees them.
            let read = sender.log.send(Read {
                cursor: 0,
                max_bytes: usize::MAX,
            });
            let ReadResult::Lines(bytes, next) = read.await.unwrap() else {
                panic!("lines expected")
            };
            assert_eq!((cursors(&bytes), next), (vec![0, 1, 2], 3));
            // Nobody reads: the idle drain publishes them all the same.
            sender.publish(chunk(3, 2));
            published_reaches(&mut published, 5).await;
            // A follower: the next chunk wakes the log at once.
            let following = Following::new(inbox.clone());
            sender.publish(chunk(5, 1));
            assert!(
                inbox.scheduled.load(Ordering::SeqCst) || *published.borrow() == 6,
                "a drain is on its way"
            );
            published_reaches(&mut published, 6).await;
            drop(following);
            assert_eq!(inbox.followers.load(Ordering::SeqCst), 0);
        });
    }

    #[test]
    fn reads_resume_anywhere_and_old_cursors_are_gone() {
        // Each test object is 8 to 9 bytes: room for about ten.
        let (mut log, published) = FeedLog::with_retention(10 * 9);
        log.append(chunk(0, 4));
        log.append(chunk(4, 3));
        assert_eq!(*published.borrow(), 7);
        let ReadResult::Lines(bytes, next) = log.read(2, usize::MAX) else {
            panic!("lines expected")
        };
        assert_eq!(cursors(&bytes), [2, 3, 4, 5, 6]);
        assert_eq!(next, 7);
        // A small read stops after the chunk that passes the size; the rest follows.
        let ReadResult::Lines(bytes, next) = log.read(1, 1) else {
            panic!("lines expected")
        };
        assert_eq!(cursors(&bytes), [1, 2, 3]);
        assert_eq!(next, 4);
        assert!(matches!(log.read(7, 100), ReadResult::Empty));
        // Past the retention, whole chunks go, oldest first.
        log.append(chunk(7, 5));
        assert!(matches!(log.read(3, 100), ReadResult::Gone { oldest: 4 }));
        let ReadResult::Lines(bytes, _) = log.read(4, usize::MAX) else {
            panic!("lines expected")
        };
        assert_eq!(cursors(&bytes), (4..12).collect::<Vec<_>>());
    }

    #[test]
    fn the_memory_a_slice_keeps_alive_counts_against_the_retention() {
        let (mut log, _) = FeedLog::with_retention(100);
        log.append(chunk(0, 2));
        // Eight entries of 10 bytes sharing their answers with a 16-byte duplicate's: 96
        // bytes kept alive, and the older chunk goes.
        let mut out = Vec::new();
        let mut fresh = Vec::new();
        for index in 0..8 {
            let start = out.len();
            out.extend_from_slice(format!("{{\"n\":{:03}}}\n", index + 2).as_bytes());
            fresh.push(start..out.len());
        }
        out.extend_from_slice(b"{\"duplicate\":1}\n");
        assert_eq!(out.len(), 96);
        out.shrink_to_fit();
        let answers = Bytes::from(out);
        log.append(FeedChunk::decisions(&answers, 0, fresh.into_iter()));
        assert!(matches!(log.read(0, 100), ReadResult::Gone { oldest: 2 }));
    }

    #[test]
    fn a_message_of_one_decision_keeps_only_its_bytes_alive() {
        let decision = b"{\"order_id\":\"a\"}\n";
        // A single order's answer in a buffer twice its size.
        let mut out = Vec::with_capacity(2 * decision.len());
        out.extend_from_slice(decision);
        let spare = out.capacity() - out.len();
        let answers = Bytes::from(out);
        let chunk = FeedChunk::decisions(&answers, spare, std::iter::once(0..decision.len()));
        assert_eq!(chunk.size, decision.len(), "only the decision is counted");
        let entry = &chunk.entries[0].1;
        assert_eq!(&entry[..], decision);
        assert_ne!(
            entry.as_ptr(),
            answers.as_ptr(),
            "copied out of the answers"
        );
        assert_eq!(chunk.entries.capacity(), 1);
    }

    #[test]
    fn a_batch_of_new_decisions_shares_the_answers_and_counts_what_it_keeps_alive() {
        let mut out = Vec::new();
        let mut fresh = Vec::new();
        for index in 0..8 {
            let start = out.len();
            out.extend_from_slice(format!("{{\"order_id\":\"{index}\"}}\n").as_bytes());
            fresh.push(start..out.len());
        }
        // One duplicate among them, not a new decision.
        out.extend_from_slice(b"{\"order_id\":\"0\",\"duplicate\":true}\n");
        let total = out.len();
        out.shrink_to_fit();
        let answers = Bytes::from(out);
        let chunk = FeedChunk::decisions(&answers, 0, fresh.iter().cloned());
        assert_eq!(chunk.entries.len(), 8);
        assert_eq!(
            chunk.entries[3].1.as_ptr(),
            answers[fresh[3].clone()].as_ptr(),
            "shared"
        );
        assert_eq!(
            chunk.size, total,
            "the duplicate's bytes are kept alive and counted"
        );
    }
}
