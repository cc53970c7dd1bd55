//! `/v1/decisions`: the decision feed, resumable from a cursor, with a live tail.

use super::{error, unavailable};
use crate::limits::FEED_READ_BYTES;
use crate::serve::App;
use crate::serve::feed::{Following, Read, ReadResult};
use actix::MailboxError;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use bytes::Bytes;

/// Query of `GET /v1/decisions`.
#[derive(serde::Deserialize)]
pub(super) struct FeedQuery {
    /// The first entry wanted (the `cursor` of the last one seen, plus one). Default 0.
    #[serde(default)]
    cursor: u64,
    /// Keep the response open and stream entries as they are made.
    #[serde(default)]
    follow: bool,
}

/// `GET /v1/decisions?cursor=N&follow=true`: the decision feed as NDJSON, from `cursor`, with
/// no gaps; `410 Gone` (naming the oldest cursor held) when `cursor` is no longer held.
pub(super) async fn get_decisions(
    query: web::Query<FeedQuery>,
    app: web::Data<App>,
) -> HttpResponse {
    let FeedQuery { cursor, follow } = query.into_inner();
    // Counted before the first read: every entry handed over after it wakes the log.
    let following = follow.then(|| Following::new(app.feed_inbox.clone()));
    let first = match read_feed(&app, cursor).await {
        Ok(ReadResult::Gone { oldest }) => return cursor_gone(cursor, oldest),
        Ok(first) => first,
        Err(_) => return unavailable(),
    };
    let tail = Tail {
        last_read_done: false,
        published: app.feed_published.clone(),
        app,
        pending: Some(first),
        cursor,
        follow,
        _following: following,
    };
    HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .streaming(futures_util::stream::unfold(tail, Tail::next))
}

/// Entries from `cursor` on, at most about [`FEED_READ_BYTES`] of them.
async fn read_feed(app: &App, cursor: u64) -> Result<ReadResult, MailboxError> {
    let read = Read {
        cursor,
        max_bytes: FEED_READ_BYTES,
    };
    app.feed.send(read).await
}

/// `410 Gone` for a `cursor` older than what the feed holds, naming the `oldest` it holds
/// in the body and in `X-Oldest-Cursor`.
fn cursor_gone(cursor: u64, oldest: u64) -> HttpResponse {
    let mut response = error(
        StatusCode::GONE,
        "cursor_gone",
        format!("cursor {cursor} is no longer held; the oldest is {oldest}"),
    );
    response.headers_mut().insert(
        header::HeaderName::from_static("x-oldest-cursor"),
        header::HeaderValue::from(oldest),
    );
    response
}

/// Where a feed response is: what it sends next, and whether it waits for more at the end.
struct Tail {
    app: web::Data<App>,
    /// A read made but not yet sent (the first one, made before the response began).
    pending: Option<ReadResult>,
    /// The next entry to read.
    cursor: u64,
    /// Whether to wait for new entries at the end rather than finish.
    follow: bool,
    /// The cursor after the last entry published, to wake on.
    published: tokio::sync::watch::Receiver<u64>,
    /// Whether the one read after the router has drained has been made.
    last_read_done: bool,
    /// Counts this response as a follower while it lives.
    _following: Option<Following>,
}

impl Tail {
    /// The next lines of the response, and the tail after them; `None` ends the response.
    async fn next(mut self) -> Option<(Result<Bytes, actix_web::Error>, Self)> {
        loop {
            let read = match self.pending.take() {
                Some(read) => read,
                None => read_feed(&self.app, self.cursor).await.ok()?,
            };
            match read {
                ReadResult::Lines(bytes, next) => {
                    self.cursor = next;
                    return Some((Ok(Bytes::from(bytes)), self));
                }
                // Evicted under a slow reader: end here; resuming from the last cursor seen
                // gets the 410 that says so.
                ReadResult::Gone { .. } => return None,
                ReadResult::Empty if !self.follow => return None,
                ReadResult::Empty => {
                    if !self.wait_for_entries().await {
                        return None;
                    }
                }
            }
        }
    }

    /// Waits until entries past the cursor are published (true: read again), or the end:
    /// false when the response should finish.
    async fn wait_for_entries(&mut self) -> bool {
        loop {
            if *self.published.borrow_and_update() > self.cursor {
                return true;
            }
            // The router is shutting down and has decided everything it will. The last
            // entries were sent to the log before the last permits came back, so one more
            // read (queued behind them) sees them; after that, the end.
            if self.app.is_drained() {
                if self.last_read_done {
                    return false;
                }
                self.last_read_done = true;
                return true;
            }
            let wait = self.published.changed();
            // Woken by new entries, or once a second to notice a shutdown.
            let waited = tokio::time::timeout(std::time::Duration::from_secs(1), wait);
            if let Ok(Err(_)) = waited.await {
                return false;
            }
        }
    }
}
