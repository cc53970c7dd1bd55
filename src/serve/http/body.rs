//! How an order stream's body is read: in batches of chunks ([`Gather`]), with a deadline on
//! silence ([`IdleTimeout`]), and how a stream that ends early says so.
//!
//! A stream ends early in two ways: its body breaks (the chunked framing is malformed, or the
//! client goes away mid-body: `bad_body`), or it delivers no byte for
//! `limits.body_idle_timeout_ms` while the router waits for one (`body_timeout`). Either way
//! every order read before is decided and answered, then one error record closes the
//! response, which ends properly (its final chunk is sent) so a client can tell "the router
//! stopped reading here" from a lost connection:
//!
//! `{"line": 13, "status": "error", "error": {"code": "body_timeout", "message": "..."}}`
//!
//! `line` is the line the body stopped in (every line before it was answered). The
//! connection closes after it: the rest of the body is never read.

use crate::limits::{STREAM_BATCH_BYTES, STREAM_BATCH_CHUNKS, STREAM_GATHER_BACKLOG};
use crate::render::LineError;
use actix_web::error::PayloadError;
use bytes::Bytes;
use futures_util::Stream;
use serde::Serialize;
use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// What an order stream's body gives the parser, one item at a time.
pub(super) enum BodyItem {
    /// A batch: the chunks that came at once, or, while the stream is backed up, as many as
    /// came until the batch was full ([`Gather`]).
    Chunks(Vec<Result<Bytes, PayloadError>>),
    /// No byte for the idle timeout while the router waited.
    Silent(Duration),
    /// The end of the body.
    End,
}

/// Why a stream ended before its body did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cut {
    BadBody,
    BodyTimeout,
}

impl Cut {
    /// The record's code, and the metric's `reason` label.
    pub(super) fn code(self) -> &'static str {
        match self {
            Cut::BadBody => "bad_body",
            Cut::BodyTimeout => "body_timeout",
        }
    }
}

/// The end of a stream cut short: why, where, and what to tell the client.
#[derive(Debug)]
pub(super) struct StreamEnd {
    pub cut: Cut,
    /// The line the body stopped in (lines before it were all answered).
    pub line: u64,
    pub message: String,
}

impl StreamEnd {
    /// Its record, one NDJSON line.
    pub(super) fn record(&self) -> Bytes {
        #[derive(Serialize)]
        struct Record<'a> {
            line: u64,
            status: &'a str,
            error: LineError<'a>,
        }
        let record = Record {
            line: self.line,
            status: "error",
            error: LineError {
                code: self.cut.code(),
                message: &self.message,
            },
        };
        let mut out = serde_json::to_vec(&record).expect("writing JSON to a Vec cannot fail");
        out.push(b'\n');
        Bytes::from(out)
    }
}

/// `body` with a deadline on silence: when the router asks for the next item and none comes
/// for `timeout`, it yields `Err(timeout)` and ends. The clock runs only while the router
/// waits for the body: not while the body waits for the router (admission, a full pipeline,
/// a client that does not read its answers), since the router then does not ask.
pub(super) struct IdleTimeout<S> {
    body: S,
    timeout: Duration,
    /// Armed at the first poll that found nothing; disarmed by every item.
    deadline: Pin<Box<tokio::time::Sleep>>,
    armed: bool,
    expired: bool,
}

impl<S> IdleTimeout<S> {
    pub(super) fn new(body: S, timeout: Duration) -> Self {
        IdleTimeout {
            body,
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            armed: false,
            expired: false,
        }
    }
}

/// A body that can be told the router has stopped asking it for now ([`Gather`] after each
/// item it hands on): a silence is timed from the next time it is asked.
pub(super) trait Asked {
    fn not_asked(&mut self) {}
}

impl<S> Asked for IdleTimeout<S> {
    /// The poll that last found nothing armed the clock; the router now goes elsewhere
    /// (admission, a full pipeline, a client that does not read), and until it asks
    /// again the time is not the client's.
    fn not_asked(&mut self) {
        self.armed = false;
    }
}

impl<S: Stream + Unpin> Stream for IdleTimeout<S> {
    type Item = Result<S::Item, Duration>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.expired {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = Pin::new(&mut this.body).poll_next(cx) {
            this.armed = false;
            return Poll::Ready(item.map(Ok));
        }
        if !this.armed {
            let deadline = tokio::time::Instant::now() + this.timeout;
            this.deadline.as_mut().reset(deadline);
            this.armed = true;
        }
        match this.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.expired = true;
                Poll::Ready(Some(Err(this.timeout)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Lines of one stream parsed and not yet answered (orders, and the odd invalid line
/// answered with them): counted up as a batch goes to the zones, down as its answers come
/// back. [`Gather`] reads it to tell a backed-up stream. The body, the batches and the
/// answers of a stream are all polled on its one task, so a plain cell.
#[derive(Clone, Default)]
pub(super) struct Backlog(Rc<BacklogCount>);

#[derive(Default)]
pub(super) struct BacklogCount {
    lines: Cell<usize>,
    /// The stream's task while [`Gather`] holds a batch for the backlog: woken when the
    /// backlog falls below the mark. The answers are polled on that task, but after the body
    /// in the same poll, and one that completes out of order is kept without a wake-up: the
    /// held batch would wait for the slowest answer instead of the mark.
    held: Cell<Option<Waker>>,
}

impl Backlog {
    pub(super) fn add(&self, lines: usize) {
        self.0.lines.set(self.0.lines.get() + lines);
    }

    pub(super) fn remove(&self, lines: usize) {
        let left = self.0.lines.get() - lines;
        self.0.lines.set(left);
        if left < STREAM_GATHER_BACKLOG
            && let Some(waker) = self.0.held.take()
        {
            waker.wake();
        }
    }

    fn lines(&self) -> usize {
        self.0.lines.get()
    }

    /// [`Gather`] holds a batch for the backlog: `waker` is woken once it falls below the
    /// mark.
    fn hold(&self, waker: &Waker) {
        self.0.held.set(Some(waker.clone()));
    }
}

/// A stream's body (`IdleTimeout` over the payload) in batches. A batch is every chunk that
/// came at once, which for a stream that is keeping up is what the socket gave since the last
/// one: it goes at once, so a trickle's orders are decided as they come. While the stream is
/// backed up (at least [`STREAM_GATHER_BACKLOG`] of its orders in flight, whose answers go out
/// first anyway) the batch is held open for more, up to [`STREAM_BATCH_BYTES`] (or
/// [`STREAM_BATCH_CHUNKS`] chunks): the costs of a batch (a message to each zone, a part of
/// the answers from each, a journal hand-over each, the threads it wakes) are paid per batch,
/// and a saturating stream's batches were what the HTTP layer's read buffer held, about 470
/// orders. A batch is also cut by a broken chunk, by silence (handed on after what came
/// before it) and by the end of the body; it is held only while the body has nothing more to
/// give, and the answer that takes the backlog below the mark wakes the stream's task
/// ([`Backlog::remove`]), so a held batch goes as soon as the backlog falls below it. Each
/// item handed on tells the body it is not asked until the next poll ([`Asked`]): the
/// router's time elsewhere is not the client's silence.
pub(super) struct Gather<S> {
    body: S,
    backlog: Backlog,
    held: Vec<Result<Bytes, PayloadError>>,
    bytes: usize,
    /// A silence that came after the held chunks: given once they have gone.
    silence: Option<Duration>,
    ended: bool,
}

impl<S> Gather<S> {
    pub(super) fn new(body: S, backlog: Backlog) -> Self {
        Gather {
            body,
            backlog,
            held: Vec::new(),
            bytes: 0,
            silence: None,
            ended: false,
        }
    }

    fn batch(&mut self) -> Poll<Option<BodyItem>> {
        self.bytes = 0;
        Poll::Ready(Some(BodyItem::Chunks(std::mem::take(&mut self.held))))
    }
}

impl<S> Stream for Gather<S>
where
    S: Stream<Item = Result<Result<Bytes, PayloadError>, Duration>> + Asked + Unpin,
{
    type Item = BodyItem;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<BodyItem>> {
        let item = self.gather(cx);
        if item.is_ready() {
            // The router takes this and goes on with it: the body is not asked meanwhile.
            self.body.not_asked();
        }
        item
    }
}

impl<S> Gather<S>
where
    S: Stream<Item = Result<Result<Bytes, PayloadError>, Duration>> + Unpin,
{
    fn gather(&mut self, cx: &mut Context<'_>) -> Poll<Option<BodyItem>> {
        let this = self;
        if let Some(silence) = this.silence.take() {
            return Poll::Ready(Some(BodyItem::Silent(silence)));
        }
        if this.ended {
            return Poll::Ready(None);
        }
        loop {
            match Pin::new(&mut this.body).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    let broken = chunk.is_err();
                    this.bytes += chunk.as_ref().map_or(0, Bytes::len);
                    this.held.push(chunk);
                    if broken
                        || this.bytes >= STREAM_BATCH_BYTES
                        || this.held.len() >= STREAM_BATCH_CHUNKS
                    {
                        return this.batch();
                    }
                }
                Poll::Ready(Some(Err(silence))) => {
                    if this.held.is_empty() {
                        return Poll::Ready(Some(BodyItem::Silent(silence)));
                    }
                    this.silence = Some(silence);
                    return this.batch();
                }
                Poll::Ready(None) => {
                    this.ended = true;
                    if this.held.is_empty() {
                        return Poll::Ready(None);
                    }
                    return this.batch();
                }
                Poll::Pending => {
                    if this.held.is_empty() {
                        return Poll::Pending;
                    }
                    if this.backlog.lines() >= STREAM_GATHER_BACKLOG {
                        this.backlog.hold(cx.waker());
                        return Poll::Pending;
                    }
                    return this.batch();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{FutureExt, StreamExt};
    use tokio::sync::mpsc;

    /// A body whose items a test sends.
    fn body() -> (mpsc::UnboundedSender<u32>, impl Stream<Item = u32> + Unpin) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        (
            tx,
            futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)),
        )
    }

    /// What a batch of [`Gather`] holds: its chunks' sizes (`usize::MAX` for a broken one),
    /// or the silence.
    #[derive(Debug, PartialEq)]
    enum Got {
        Batch(Vec<usize>),
        Silent,
    }

    fn got(item: BodyItem) -> Got {
        match item {
            BodyItem::Chunks(chunks) => Got::Batch(
                chunks
                    .iter()
                    .map(|chunk| chunk.as_ref().map_or(usize::MAX, Bytes::len))
                    .collect(),
            ),
            BodyItem::Silent(_) => Got::Silent,
            BodyItem::End => unreachable!("Gather does not make the end's item"),
        }
    }

    type BodyPart = Result<Result<Bytes, PayloadError>, Duration>;

    /// A body a test feeds, in [`Gather`], and the stream's backlog.
    fn gathered() -> (
        mpsc::UnboundedSender<BodyPart>,
        Gather<impl Stream<Item = BodyPart> + Asked + Unpin>,
        Backlog,
    ) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let backlog = Backlog::default();
        let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        (tx, Gather::new(body, backlog.clone()), backlog)
    }

    impl<F> Asked for futures_util::stream::PollFn<F> {}

    fn chunk(bytes: usize) -> BodyPart {
        Ok(Ok(Bytes::from(vec![b'x'; bytes])))
    }

    /// The next item if there is one now (`None`: the stream waits).
    fn now<S: Stream<Item = BodyItem> + Unpin>(body: &mut S) -> Option<Option<Got>> {
        body.next().now_or_never().map(|item| item.map(got))
    }

    #[test]
    fn a_stream_that_keeps_up_sends_what_came_at_once() {
        let (tx, mut body, backlog) = gathered();
        assert_eq!(now(&mut body), None, "nothing came: it waits");
        for bytes in [100, 200, 300] {
            tx.send(chunk(bytes)).unwrap();
        }
        assert_eq!(now(&mut body), Some(Some(Got::Batch(vec![100, 200, 300]))));
        // Orders in flight, but fewer than the mark: a chunk still goes alone.
        backlog.add(STREAM_GATHER_BACKLOG - 1);
        tx.send(chunk(50)).unwrap();
        assert_eq!(now(&mut body), Some(Some(Got::Batch(vec![50]))));
        drop(tx);
        assert_eq!(now(&mut body), Some(None));
    }

    #[test]
    fn a_backed_up_stream_fills_its_batch_before_it_goes() {
        let (tx, mut body, backlog) = gathered();
        backlog.add(STREAM_GATHER_BACKLOG);
        let quarter = STREAM_BATCH_BYTES / 4;
        for _ in 0..3 {
            tx.send(chunk(quarter)).unwrap();
            assert_eq!(now(&mut body), None, "held while the backlog is high");
        }
        // The fourth quarter fills it; what comes after starts the next batch.
        tx.send(chunk(quarter)).unwrap();
        tx.send(chunk(7)).unwrap();
        assert_eq!(now(&mut body), Some(Some(Got::Batch(vec![quarter; 4]))));
        assert_eq!(now(&mut body), None);
        // The backlog falls below the mark: the held chunk goes at the next look.
        backlog.remove(1);
        assert_eq!(now(&mut body), Some(Some(Got::Batch(vec![7]))));
    }

    #[test]
    fn a_body_of_tiny_chunks_is_cut_by_their_count() {
        let (tx, mut body, backlog) = gathered();
        backlog.add(STREAM_GATHER_BACKLOG);
        for _ in 0..STREAM_BATCH_CHUNKS + 1 {
            tx.send(chunk(1)).unwrap();
        }
        assert_eq!(
            now(&mut body),
            Some(Some(Got::Batch(vec![1; STREAM_BATCH_CHUNKS])))
        );
        assert_eq!(now(&mut body), None, "the one after waits for more");
    }

    #[test]
    fn a_break_a_silence_and_the_end_each_come_after_what_was_held() {
        let (tx, mut body, backlog) = gathered();
        backlog.add(STREAM_GATHER_BACKLOG);
        // A broken chunk ends its batch at once.
        tx.send(chunk(10)).unwrap();
        tx.send(Ok(Err(PayloadError::Incomplete(None)))).unwrap();
        assert_eq!(now(&mut body), Some(Some(Got::Batch(vec![10, usize::MAX]))));
        // Silence: first the held chunks, then the silence.
        tx.send(chunk(20)).unwrap();
        tx.send(Err(Duration::from_secs(1))).unwrap();
        assert_eq!(now(&mut body), Some(Some(Got::Batch(vec![20]))));
        assert_eq!(now(&mut body), Some(Some(Got::Silent)));
        // The end: the held chunks, then nothing more.
        tx.send(chunk(30)).unwrap();
        drop(tx);
        assert_eq!(now(&mut body), Some(Some(Got::Batch(vec![30]))));
        assert_eq!(now(&mut body), Some(None));
        assert_eq!(now(&mut body), Some(None));
    }

    /// Counts its wake-ups.
    #[derive(Default)]
    struct Wakes(std::sync::atomic::AtomicUsize);

    impl futures_util::task::ArcWake for Wakes {
        fn wake_by_ref(this: &std::sync::Arc<Self>) {
            this.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn a_held_batch_is_woken_by_the_answer_that_takes_the_backlog_below_the_mark() {
        let (tx, mut body, backlog) = gathered();
        let wakes = std::sync::Arc::new(Wakes::default());
        let waker = futures_util::task::waker(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let woken = || wakes.0.load(std::sync::atomic::Ordering::SeqCst);
        backlog.add(STREAM_GATHER_BACKLOG + 100);
        tx.send(chunk(10)).unwrap();
        assert!(Pin::new(&mut body).poll_next(&mut cx).is_pending(), "held");
        // An answer that leaves the backlog at the mark: still held, nobody woken.
        backlog.remove(100);
        assert_eq!(woken(), 0);
        // One below it (an answer completed out of order, kept by the ordered answers
        // without waking anyone): the stream's task is woken, and the batch goes.
        backlog.remove(1);
        assert_eq!(woken(), 1);
        assert!(matches!(
            Pin::new(&mut body).poll_next(&mut cx),
            Poll::Ready(Some(BodyItem::Chunks(_)))
        ));
        backlog.remove(STREAM_GATHER_BACKLOG - 1);
        assert_eq!(woken(), 1, "woken once per hold");
    }

    #[tokio::test(start_paused = true)]
    async fn time_the_router_spends_on_a_batch_is_not_the_clients_silence() {
        let (tx, rx) = mpsc::unbounded_channel::<Result<Bytes, PayloadError>>();
        let rx = futures_util::stream::poll_fn({
            let mut rx = rx;
            move |cx| rx.poll_recv(cx)
        });
        let timeout = Duration::from_millis(500);
        let mut body = Gather::new(IdleTimeout::new(rx, timeout), Backlog::default());
        tx.send(Ok(Bytes::from_static(b"a\n"))).unwrap();
        // The batch is taken (its last look at the body found nothing and armed the clock),
        // then the router is busy with it for twice the timeout.
        assert!(matches!(body.next().await, Some(BodyItem::Chunks(_))));
        tokio::time::sleep(timeout * 2).await;
        // Asked again: the client's next chunk comes 400 ms on, inside the timeout.
        let later = tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            later.send(Ok(Bytes::from_static(b"b\n"))).unwrap();
        });
        assert!(
            matches!(body.next().await, Some(BodyItem::Chunks(_))),
            "the chunk, not a silence counted from before the router's work"
        );
        // A real silence is still cut, timed from the ask.
        let asked = tokio::time::Instant::now();
        assert!(matches!(body.next().await, Some(BodyItem::Silent(_))));
        assert_eq!(asked.elapsed(), timeout);
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn silence_past_the_timeout_ends_the_body_after_what_came() {
        let (tx, rx) = body();
        let mut body = IdleTimeout::new(rx, Duration::from_millis(500));
        tx.send(1).unwrap();
        assert_eq!(body.next().await, Some(Ok(1)));
        // Silence: the deadline passes with the sender still open.
        let started = tokio::time::Instant::now();
        assert_eq!(body.next().await, Some(Err(Duration::from_millis(500))));
        assert_eq!(started.elapsed(), Duration::from_millis(500));
        assert_eq!(body.next().await, None, "it ends after the timeout");
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn every_item_restarts_the_clock_and_time_not_asking_does_not_count() {
        let (tx, rx) = body();
        let mut body = IdleTimeout::new(rx, Duration::from_millis(500));
        for value in 0..5 {
            let tx = tx.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(400)).await;
                tx.send(value).unwrap();
            });
            // 400 ms apart, 2 s in all: each gap is under the timeout.
            assert_eq!(body.next().await, Some(Ok(value)));
        }
        // Not asking for a second (the router busy elsewhere) while an item waits.
        tx.send(9).unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(body.next().await, Some(Ok(9)));
    }
}
