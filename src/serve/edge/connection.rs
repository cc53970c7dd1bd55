//! What a connection's [`super::HeadGuard`] and the handlers of its requests share: which
//! request is which, which are still being answered, and which one's body broke.
//!
//! actix-http takes a connection's requests one after the other, in the order their heads
//! came, so numbering them as their handling begins ([`track_requests`]) gives each the
//! number the guard counts heads by.

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest};
use bytes::Bytes;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

/// One connection's shared state (in its connection data, and held by its guard).
#[derive(Debug, Default)]
pub struct Connection {
    /// Requests whose handling began, numbered from 1.
    begun: AtomicU64,
    /// Requests begun whose response has not ended.
    in_flight: AtomicU64,
    /// The request whose body broke, and why.
    body_break: OnceLock<(u64, &'static str)>,
}

impl Connection {
    /// Notes that request `request`'s body broke (the first break only: the connection
    /// reads nothing after it).
    pub fn note_break(&self, request: u64, reason: &'static str) {
        let _ = self.body_break.set((request, reason));
    }

    /// Why request `request`'s body broke, if it did.
    pub fn broken(&self, request: u64) -> Option<&'static str> {
        match self.body_break.get() {
            Some((broken, reason)) if *broken == request => Some(reason),
            _ => None,
        }
    }

    /// Whether a response is still being made or written.
    pub fn answering(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) > 0
    }
}

/// A request's number on its connection.
#[derive(Clone, Copy, Debug)]
struct RequestNumber(u64);

/// Why `request`'s own body broke, if it did (a clean end the guard gave it in place of
/// the break is not its end).
pub fn body_break(request: &HttpRequest) -> Option<&'static str> {
    let connection = request.conn_data::<Arc<Connection>>()?;
    let RequestNumber(number) = *request.extensions().get::<RequestNumber>()?;
    connection.broken(number)
}

/// A future check of [`body_break`] for a request, kept past the request itself (a stream
/// reads its body after its handler returned).
#[derive(Clone, Debug)]
pub struct BreakCheck(Option<(Arc<Connection>, u64)>);

impl BreakCheck {
    pub fn of(request: &HttpRequest) -> BreakCheck {
        let connection = request.conn_data::<Arc<Connection>>().cloned();
        let number = request.extensions().get::<RequestNumber>().copied();
        BreakCheck(connection.zip(number).map(|(c, RequestNumber(n))| (c, n)))
    }

    /// Why this request's body broke, if it did.
    pub fn get(&self) -> Option<&'static str> {
        let (connection, number) = self.0.as_ref()?;
        connection.broken(*number)
    }
}

/// Numbers each request of a connection and counts it in flight until its response body
/// has been written (or dropped).
pub async fn track_requests(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<Tracked>, actix_web::Error> {
    let in_flight = request
        .conn_data::<Arc<Connection>>()
        .cloned()
        .map(|connection| {
            let number = connection.begun.fetch_add(1, Ordering::AcqRel) + 1;
            connection.in_flight.fetch_add(1, Ordering::AcqRel);
            request.extensions_mut().insert(RequestNumber(number));
            InFlight(connection)
        });
    let response = next.call(request).await?;
    Ok(response.map_body(|_, body| Tracked {
        body: body.boxed(),
        _in_flight: in_flight,
    }))
}

/// Counts its request out of flight when dropped.
struct InFlight(Arc<Connection>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request in flight until it is written or dropped.
pub struct Tracked {
    body: BoxBody,
    _in_flight: Option<InFlight>,
}

impl MessageBody for Tracked {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.body).poll_next(cx)
    }
}
