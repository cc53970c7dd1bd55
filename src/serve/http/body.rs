//! How an order stream's body is read: in groups of chunks, with a deadline on silence, and
//! how a stream that ends early says so.
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

use crate::render::LineError;
use actix_web::error::PayloadError;
use bytes::Bytes;
use futures_util::Stream;
use serde::Serialize;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// What an order stream's body gives the parser, one item at a time.
pub(super) enum BodyItem {
    /// The chunks that were ready at once (a backed-up stream gives many, a trickle one).
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

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use tokio::sync::mpsc;

    /// A body whose items a test sends.
    fn body() -> (mpsc::UnboundedSender<u32>, impl Stream<Item = u32> + Unpin) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        (
            tx,
            futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)),
        )
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
