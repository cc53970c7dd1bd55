//! `/v1/decisions`: the decision feed, resumable from a cursor, with a live tail.

use super::{error, unavailable};
use crate::limits::FEED_READ_BYTES;
use crate::serve::App;
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
    use crate::serve::feed::{Read, ReadResult};
    let FeedQuery { cursor, follow } = query.into_inner();
    let first = match app
        .feed
        .send(Read {
            cursor,
            max_bytes: FEED_READ_BYTES,
        })
        .await
    {
        Ok(ReadResult::Gone { oldest }) => {
            let mut response = error(
                StatusCode::GONE,
                "cursor_gone",
                format!("cursor {cursor} is no longer held; the oldest is {oldest}"),
            );
            response.headers_mut().insert(
                header::HeaderName::from_static("x-oldest-cursor"),
                header::HeaderValue::from(oldest),
            );
            return response;
        }
        Ok(first) => first,
        Err(_) => return unavailable(),
    };
    struct State {
        app: web::Data<App>,
        pending: Option<ReadResult>,
        cursor: u64,
        follow: bool,
        published: tokio::sync::watch::Receiver<u64>,
        last_read_done: bool,
    }
    let state = State {
        last_read_done: false,
        published: app.feed_published.clone(),
        app,
        pending: Some(first),
        cursor,
        follow,
    };
    let lines = futures_util::stream::unfold(state, |mut state| async move {
        loop {
            let read = match state.pending.take() {
                Some(read) => read,
                None => {
                    let read = Read {
                        cursor: state.cursor,
                        max_bytes: FEED_READ_BYTES,
                    };
                    state.app.feed.send(read).await.ok()?
                }
            };
            match read {
                ReadResult::Lines(bytes, next) => {
                    state.cursor = next;
                    return Some((Ok::<Bytes, actix_web::Error>(Bytes::from(bytes)), state));
                }
                // Evicted under a slow reader: end here; resuming from the last cursor seen
                // gets the 410 that says so.
                ReadResult::Gone { .. } => return None,
                ReadResult::Empty if !state.follow => return None,
                ReadResult::Empty => loop {
                    if *state.published.borrow_and_update() > state.cursor {
                        break;
                    }
                    // The router is shutting down and has decided everything it will. The
                    // last entries were sent to the log before the last permits came back,
                    // so one more read (queued behind them) sees them; after that, the end.
                    if state.app.is_drained() {
                        if state.last_read_done {
                            return None;
                        }
                        state.last_read_done = true;
                        break;
                    }
                    let wait = state.published.changed();
                    // Woken by new entries, or once a second to notice a shutdown.
                    let waited = tokio::time::timeout(std::time::Duration::from_secs(1), wait);
                    if let Ok(Err(_)) = waited.await {
                        return None;
                    }
                },
            }
        }
    });
    HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .streaming(lines)
}
