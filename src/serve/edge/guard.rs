//! [`HeadGuard`]: a connection's socket, with a deadline on every request head and a clean
//! end for a chunked body whose framing breaks.
//!
//! actix-http times only the first request head of a connection (`client_request_timeout`
//! arms its timer once, when the connection starts); the head of every later request on a
//! kept-alive connection may take forever, a byte at a time, and its keep-alive timer stops at
//! the first byte. The guard follows the requests on the socket ([`Framing`]) and gives each
//! later head the same `limits.header_timeout_ms`, counted from its first byte as hyper
//! does: past it, the client gets `408 Request Timeout` and the connection closes, as for a
//! first head.
//!
//! actix-http takes a malformed chunk for a client that went away: it stops writing the
//! response at once, and the answers to orders read before the break (decided, reserved)
//! are lost. The guard holds a chunked body's control lines back until they are whole
//! (a few bytes per chunk), so at a break it can hand actix-http a clean end of the body
//! instead and then the end of the input; the break is noted, with the number of the
//! request it broke, in the [`Connection`] the guard shares with the request handlers,
//! and that request's handler answers it with a `bad_body` record after every answer. The
//! connection closes after that response. The same shared state tells the guard whether a
//! request is still being answered: a head held behind one is not timed out meanwhile.
//!
//! A client that stops taking its response (its receive window shut: it does not read its
//! answers) would hold its connection, its stream slot and the answers waiting to be written
//! for as long as it keeps the socket open: actix-http has no timer on writing. The guard
//! times every write that waits for the client (`limits.write_stall_timeout_ms`, from the
//! first write the socket could not take; any byte taken starts it again) and past it gives
//! the dispatcher an error that closes the connection.
//!
//! Bytes are read straight into actix-http's buffer; only held control bytes are copied.

use super::connection::Connection;
use super::framing::Framing;
use crate::serve::metrics::names;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What a request with both Transfer-Encoding and Content-Length gets.
const AMBIGUOUS_LENGTH: &[u8] = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 120\r\nconnection: close\r\n\r\n{\"error\":{\"code\":\"bad_request\",\"message\":\"a request may not have both Transfer-Encoding and Content-Length (RFC 9112)\"}}";

/// `limits.write_stall_timeout_ms`'s default, for a guard not told otherwise.
const DEFAULT_WRITE_STALL: Duration = Duration::from_secs(60);

/// What a timed-out head gets: actix-http's own 408 for a first head, word for word.
const REQUEST_TIMEOUT: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

/// A socket whose request heads after the first are timed, and whose chunked bodies end
/// cleanly where their framing breaks.
pub struct HeadGuard<S> {
    socket: S,
    framing: Framing,
    timeout: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
    /// Whether a head is being timed.
    armed: bool,
    /// Whether the last write or flush left bytes in flight (a 408 then cannot be written
    /// without cutting into them).
    writing: bool,
    expired: bool,
    /// Bytes read and followed but not handed on yet ([`Framing::held`]).
    held: Vec<u8>,
    /// After a break: the clean end of the body still to hand on; then the input ends.
    ending: Option<&'static [u8]>,
    ended: bool,
    /// A refusal to write when the dispatcher shuts the connection (what is left of it).
    refusal: Option<&'static [u8]>,
    connection: Arc<Connection>,
    /// The head the deadline was set for (heads read whole before it).
    timed_head: u64,
    /// How long a write may wait for the client to take a byte.
    stall_timeout: Duration,
    stall: Pin<Box<tokio::time::Sleep>>,
    /// Whether a write is waiting for the client (the stall deadline is set).
    stalled: bool,
}

impl<S> HeadGuard<S> {
    pub fn new(socket: S, timeout: Duration) -> Self {
        HeadGuard {
            socket,
            framing: Framing::default(),
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            armed: false,
            writing: false,
            expired: false,
            held: Vec::new(),
            ending: None,
            ended: false,
            refusal: None,
            connection: Arc::default(),
            timed_head: 0,
            stall_timeout: DEFAULT_WRITE_STALL,
            stall: Box::pin(tokio::time::sleep(DEFAULT_WRITE_STALL)),
            stalled: false,
        }
    }

    /// The same guard, cutting a response the client takes nothing of for `timeout`.
    pub fn with_write_stall(mut self, timeout: Duration) -> Self {
        self.stall_timeout = timeout;
        self
    }

    /// What a write or flush that waits for the client (`Pending`) costs the connection:
    /// the first starts the stall deadline, one past it is an error that closes the
    /// connection. Any progress (`progressed`) stops the deadline.
    fn watch_write<T>(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<T>>,
        progressed: bool,
    ) -> Poll<io::Result<T>> {
        if !result.is_pending() {
            if progressed {
                self.stalled = false;
            }
            return result;
        }
        if !self.stalled {
            self.stalled = true;
            let deadline = tokio::time::Instant::now() + self.stall_timeout;
            self.stall.as_mut().reset(deadline);
        }
        if self.stall.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        metrics::counter!(names::CONNECTIONS_CUT, "reason" => "write_stall").increment(1);
        tracing::debug!(
            "a client took no byte of its response for {} ms (limits.write_stall_timeout_ms): connection closed",
            self.stall_timeout.as_millis()
        );
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client took no byte of its response within limits.write_stall_timeout_ms",
        )))
    }

    /// What this connection's requests share with it.
    pub fn connection(&self) -> Arc<Connection> {
        self.connection.clone()
    }

    /// Follows bytes read; starts timing a later request's head at its first byte and stops
    /// when it is whole. (The first head is actix-http's to time.)
    fn follow(&mut self, bytes: &[u8]) {
        self.framing.advance(bytes);
        let heads = self.framing.heads();
        let timed = self.framing.in_head() && heads > 0;
        // A new head (the one timed may have ended in these bytes and the next begun).
        if timed && (!self.armed || self.timed_head != heads) {
            let deadline = tokio::time::Instant::now() + self.timeout;
            self.deadline.as_mut().reset(deadline);
            self.timed_head = heads;
        }
        self.armed = timed;
    }
}

impl<S> HeadGuard<S> {
    /// A response is being written while a later request's head is held: that client is
    /// waiting for the response (it pipelined), not slow, so the head's time starts again.
    /// (Rare: only a pipelined head waits behind a response.)
    fn responding(&mut self) {
        if self.armed {
            let deadline = tokio::time::Instant::now() + self.timeout;
            self.deadline.as_mut().reset(deadline);
        }
    }
}

impl<S: AsyncWrite + Unpin> HeadGuard<S> {
    /// Whether the head being timed is past its deadline.
    fn head_expired(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.expired && self.armed && self.deadline.as_mut().poll(cx).is_ready() {
            if self.connection.answering() {
                // An earlier request is still being answered: the client waits for it (it
                // pipelined), so this head's time starts again.
                self.responding();
                let _ = self.deadline.as_mut().poll(cx);
            } else {
                self.expired = true;
            }
        }
        self.expired
    }

    /// Says 408 when nothing else is being written, and gives the dispatcher an error that
    /// makes it close the connection.
    fn time_out(&mut self, cx: &mut Context<'_>) -> io::Error {
        if self.armed && !self.writing {
            self.armed = false;
            metrics::counter!(names::REQUESTS_REFUSED, "reason" => "head_timeout").increment(1);
            // A few bytes into an empty send buffer: written whole or not at all.
            let _ = Pin::new(&mut self.socket).poll_write(cx, REQUEST_TIMEOUT);
            let _ = Pin::new(&mut self.socket).poll_flush(cx);
        }
        io::Error::new(
            io::ErrorKind::TimedOut,
            "a request head was not complete within limits.header_timeout_ms",
        )
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> HeadGuard<S> {
    /// Reads into `buf` (which holds `start` bytes before this read) what can be handed
    /// on: the held bytes first, then new ones, less those to hold now. `Pending` when
    /// nothing can be handed on yet.
    fn read_on(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let start = buf.filled().len();
        loop {
            if buf.remaining() <= self.held.len() {
                // No room for a new byte after the held ones (a huge head): hand on what
                // fits now.
                let fits = buf.remaining().min(self.held.len());
                buf.put_slice(&self.held[..fits]);
                self.held.drain(..fits);
                self.framing.handed_on(fits);
                return Poll::Ready(Ok(()));
            }
            buf.put_slice(&self.held);
            let before = buf.filled().len();
            match Pin::new(&mut self.socket).poll_read(cx, buf) {
                Poll::Ready(Ok(())) if buf.filled().len() == before => {
                    // The end of the input: what was held goes on, as it came; a body it
                    // cuts short is a break of that request's body (actix-http would end
                    // it as if whole).
                    if self.framing.in_body() {
                        let reason = "the client ended its input before the end of the body";
                        self.connection.note_break(self.framing.heads(), reason);
                    }
                    self.held.clear();
                    return Poll::Ready(Ok(()));
                }
                Poll::Ready(Ok(())) => {}
                other => {
                    buf.set_filled(start);
                    return other;
                }
            }
            self.follow(&buf.filled()[before..]);
            let held = self.framing.held();
            let on = buf.filled().len().saturating_sub(held).max(start);
            self.held.clear();
            if self.framing.refused() {
                self.refuse();
            } else if let Some(reason) = self.framing.broken() {
                self.broke(reason);
            } else {
                self.held.extend_from_slice(&buf.filled()[on..]);
            }
            buf.set_filled(on);
            if self.ending.is_some() && on == start {
                return self.end(buf);
            }
            if on > start {
                return Poll::Ready(Ok(()));
            }
        }
    }

    /// Refuses a request with both Transfer-Encoding and Content-Length: the dispatcher
    /// never sees it (its input ends before it), and once the dispatcher is done with the
    /// requests before it and shuts the connection, the client gets 400.
    fn refuse(&mut self) {
        metrics::counter!(names::REQUESTS_REFUSED, "reason" => "ambiguous_length").increment(1);
        self.ending = Some(b"");
        self.refusal = Some(AMBIGUOUS_LENGTH);
    }

    /// Notes a break of the chunked body (of the request whose head came last); its clean
    /// end goes on next.
    fn broke(&mut self, reason: &'static str) {
        self.connection.note_break(self.framing.heads(), reason);
        self.ending = Some(self.framing.clean_end());
    }

    /// After a break, reads and drops what the client still sends (what is left unread
    /// when the socket closes makes the kernel reset the connection, and a reset can cost
    /// the client the end of the response).
    fn drain(&mut self, cx: &mut Context<'_>) {
        if !self.ended {
            return;
        }
        let mut scratch = [0u8; 4096];
        for _ in 0..64 {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.socket).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => {}
                _ => return,
            }
        }
    }

    /// Hands on the clean end of a broken body; the input ends after it.
    fn end(&mut self, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let ending = self.ending.take().unwrap_or_default();
        let fits = ending.len().min(buf.remaining());
        buf.put_slice(&ending[..fits]);
        if fits < ending.len() {
            self.ending = Some(&ending[fits..]);
        } else {
            self.ended = true;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for HeadGuard<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.head_expired(cx) {
            return Poll::Ready(Err(this.time_out(cx)));
        }
        if this.ended {
            return Poll::Ready(Ok(()));
        }
        if this.ending.is_some() {
            return this.end(buf);
        }
        match this.read_on(cx, buf) {
            // Nothing to read: the deadline's wake-up is registered with the read's.
            Poll::Pending if this.head_expired(cx) => Poll::Ready(Err(this.time_out(cx))),
            other => other,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for HeadGuard<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.socket).poll_write(cx, bytes);
        self.writing = match &written {
            Poll::Ready(Ok(count)) => *count < bytes.len(),
            Poll::Ready(Err(_)) => false,
            Poll::Pending => true,
        };
        self.responding();
        let progressed = matches!(written, Poll::Ready(Ok(count)) if count > 0);
        self.watch_write(cx, written, progressed)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let total: usize = buffers.iter().map(|buffer| buffer.len()).sum();
        let written = Pin::new(&mut self.socket).poll_write_vectored(cx, buffers);
        self.writing = match &written {
            Poll::Ready(Ok(count)) => *count < total,
            Poll::Ready(Err(_)) => false,
            Poll::Pending => true,
        };
        self.responding();
        let progressed = matches!(written, Poll::Ready(Ok(count)) if count > 0);
        self.watch_write(cx, written, progressed)
    }

    fn is_write_vectored(&self) -> bool {
        self.socket.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.drain(cx);
        let flushed = Pin::new(&mut self.socket).poll_flush(cx);
        if flushed.is_pending() {
            self.writing = true;
        }
        // A flush that waited and then went through emptied what was waiting: the stall is
        // over (a socket's own flush never waits, so this is a wrapper's).
        self.watch_write(cx, flushed, true)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(refusal) = self.refusal {
            self.refusal = match Pin::new(&mut self.socket).poll_write(cx, refusal) {
                Poll::Ready(Ok(written)) if written > 0 && written < refusal.len() => {
                    Some(&refusal[written..])
                }
                Poll::Ready(_) => None,
                Poll::Pending => return Poll::Pending,
            };
        }
        self.drain(cx);
        Pin::new(&mut self.socket).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const GET: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
    const POST: &[u8] = b"POST / HTTP/1.1\r\ncontent-length: 3\r\n\r\n";

    #[tokio::test(start_paused = true)]
    async fn a_response_the_client_takes_nothing_of_is_cut_after_the_stall_timeout() {
        let (mut client, server) = tokio::io::duplex(1024);
        let stall = Duration::from_secs(5);
        let mut guard = HeadGuard::new(server, Duration::from_secs(1)).with_write_stall(stall);
        let answers = vec![b'a'; 1024];
        // The client reads slowly: a KiB every 4 s, each under the timeout. Every write
        // that waits starts the clock again once the client takes a byte.
        let reader = tokio::spawn(async move {
            let mut buffer = vec![0u8; 1024];
            for _ in 0..4 {
                tokio::time::sleep(Duration::from_secs(4)).await;
                client.read_exact(&mut buffer).await.unwrap();
            }
            client // then it reads no more, and keeps the socket open
        });
        let started = tokio::time::Instant::now();
        for _ in 0..5 {
            guard.write_all(&answers).await.unwrap();
        }
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(16),
            "four slow reads"
        );
        let _client = reader.await.unwrap();
        // The pipe is full and the client reads nothing more: the next write waits, and is
        // cut once it has waited the timeout.
        let stalled = tokio::time::Instant::now();
        let error = guard.write_all(&answers).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(stalled.elapsed(), stall);
    }

    #[tokio::test(start_paused = true)]
    async fn a_later_head_that_does_not_end_in_time_gets_408_and_an_error() {
        let (client, server) = tokio::io::duplex(4096);
        let mut guard = HeadGuard::new(server, Duration::from_secs(1));
        let (mut client_read, mut client_write) = tokio::io::split(client);
        client_write.write_all(GET).await.unwrap();
        client_write.write_all(b"GET /heal").await.unwrap();
        let mut buffer = [0u8; 4096];
        let mut read = 0;
        let started = tokio::time::Instant::now();
        let error = loop {
            match guard.read(&mut buffer[read..]).await {
                Ok(count) => read += count,
                Err(error) => break error,
            }
        };
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        // The unfinished head was held back: the dispatcher never saw a byte of it.
        assert_eq!(&buffer[..read], GET);
        let mut said = vec![0u8; REQUEST_TIMEOUT.len()];
        client_read.read_exact(&mut said).await.unwrap();
        assert_eq!(said, REQUEST_TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn heads_that_end_in_time_and_slow_bodies_are_never_cut() {
        let (mut client, server) = tokio::io::duplex(4096);
        let mut guard = HeadGuard::new(server, Duration::from_secs(1));
        let writer = tokio::spawn(async move {
            client.write_all(GET).await.unwrap();
            // A head a byte at a time, within the second.
            for byte in GET {
                tokio::time::sleep(Duration::from_millis(10)).await;
                client.write_all(&[*byte]).await.unwrap();
            }
            // A body a byte every 5 s: the head deadline has nothing to say about it.
            client.write_all(POST).await.unwrap();
            for byte in b"abc" {
                tokio::time::sleep(Duration::from_secs(5)).await;
                client.write_all(&[*byte]).await.unwrap();
            }
            client
        });
        let mut buffer = Vec::new();
        let mut piece = [0u8; 64];
        let expected = 2 * GET.len() + POST.len() + 3;
        while buffer.len() < expected {
            let count = guard.read(&mut piece).await.expect("never timed out");
            buffer.extend_from_slice(&piece[..count]);
        }
        assert!(!guard.armed);
        drop(writer.await.unwrap());
    }

    #[test]
    fn the_canned_responses_say_their_length_right() {
        for response in [AMBIGUOUS_LENGTH, REQUEST_TIMEOUT] {
            let text = std::str::from_utf8(response).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length: "))
                .unwrap();
            assert_eq!(length.parse::<usize>().unwrap(), body.len(), "{head}");
        }
        let json = &AMBIGUOUS_LENGTH[AMBIGUOUS_LENGTH.iter().position(|b| *b == b'{').unwrap()..];
        let parsed: serde_json::Value = serde_json::from_slice(json).unwrap();
        assert_eq!(parsed["error"]["code"], "bad_request");
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_pipelined_behind_a_response_being_written_is_not_timed_out() {
        let (client, server) = tokio::io::duplex(1 << 16);
        let (mut client_read, mut client_write) = tokio::io::split(client);
        let mut guard = HeadGuard::new(server, Duration::from_secs(1));
        client_write.write_all(GET).await.unwrap();
        client_write.write_all(b"GET /next").await.unwrap();
        let mut buffer = [0u8; 256];
        assert_eq!(guard.read(&mut buffer).await.unwrap(), GET.len());
        // The first response streams for 3 s, a piece every 500 ms; the pipelined head
        // waits behind it.
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            guard.write_all(b"piece").await.unwrap();
            let waited = tokio::time::timeout(Duration::ZERO, guard.read(&mut buffer)).await;
            assert!(waited.is_err(), "neither bytes nor a time-out yet");
        }
        let mut said = [0u8; 30];
        client_read.read_exact(&mut said).await.unwrap();
        assert_eq!(
            &said, b"piecepiecepiecepiecepiecepiece",
            "no 408 among them"
        );
        // Once the response is done, the head's second counts.
        let error = guard.read(&mut buffer).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_head_is_left_to_actix() {
        let (mut client, server) = tokio::io::duplex(4096);
        let mut guard = HeadGuard::new(server, Duration::from_secs(1));
        client.write_all(b"GET /heal").await.unwrap();
        let mut buffer = [0u8; 64];
        let waited = tokio::time::timeout(Duration::from_secs(5), guard.read(&mut buffer)).await;
        assert!(
            waited.is_err(),
            "no error, and the head held back, after 5 s"
        );
        client.write_all(b"thz HTTP/1.1\r\n\r\n").await.unwrap();
        let count = guard.read(&mut buffer).await.unwrap();
        assert_eq!(&buffer[..count], b"GET /healthz HTTP/1.1\r\n\r\n");
    }

    /// Reads until the input ends; what was handed on.
    async fn read_all(guard: &mut HeadGuard<tokio::io::DuplexStream>) -> Vec<u8> {
        let mut all = Vec::new();
        let mut piece = [0u8; 1024];
        loop {
            let count = guard.read(&mut piece).await.unwrap();
            if count == 0 {
                return all;
            }
            all.extend_from_slice(&piece[..count]);
        }
    }

    #[tokio::test]
    async fn a_broken_chunked_body_ends_cleanly_and_the_break_is_noted() {
        let (mut client, server) = tokio::io::duplex(4096);
        let mut guard = HeadGuard::new(server, Duration::from_secs(1));
        let head = b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n";
        client.write_all(head).await.unwrap();
        client.write_all(b"3\r\nabc\r\nzz\r\nmore").await.unwrap();
        let noted = guard.connection();
        let all = read_all(&mut guard).await;
        assert_eq!(all, [&head[..], b"3\r\nabc\r\n0\r\n\r\n"].concat());
        assert_eq!(
            noted.broken(1),
            Some("a chunk size is not a hexadecimal number")
        );
        assert_eq!(noted.broken(2), None, "the break is the first request's");
        drop(client);
    }

    #[tokio::test]
    async fn a_request_with_both_lengths_is_never_handed_on_and_refused_at_shutdown() {
        let (client, server) = tokio::io::duplex(4096);
        let (mut client_read, mut client_write) = tokio::io::split(client);
        let mut guard = HeadGuard::new(server, Duration::from_secs(1));
        client_write.write_all(GET).await.unwrap();
        let smuggler =
            b"POST / HTTP/1.1\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n";
        client_write.write_all(smuggler).await.unwrap();
        assert_eq!(read_all(&mut guard).await, GET);
        // The dispatcher answers the request before it, then shuts the connection.
        guard.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
        guard.shutdown().await.unwrap();
        let mut said = Vec::new();
        client_read.read_to_end(&mut said).await.unwrap();
        assert_eq!(
            said,
            [&b"HTTP/1.1 200 OK\r\n\r\n"[..], AMBIGUOUS_LENGTH].concat()
        );
    }
}
