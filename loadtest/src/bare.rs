//! The yardstick of `loadtest limit`: a bare NDJSON endpoint with the router's HTTP stack
//! (actix-web) and none of its work. `POST /v1/orders` reads the body chunk by chunk, parses
//! every line with serde_json into an owned order (the fields the contract requires) and
//! answers one short acknowledgement line per line (none for a blank line), a response chunk
//! for each body chunk that gives it lines to answer. A line over [`MAX_LINE_BYTES`] is answered `invalid`
//! without being held. No admission, no routing, no state, no journal: what any router on
//! this stack could at best do on this machine.

use crate::ndjson::{Line, LineSplitter, MAX_LINE_BYTES};
use actix_web::{App, HttpResponse, HttpServer, web};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use serde::Deserialize;
use std::net::SocketAddr;

/// The contract's order, owned, as a router would hold it after parsing.
#[derive(Deserialize)]
#[allow(dead_code)] // Fields are parsed to pay for parsing them; nothing reads them.
struct Order {
    id: String,
    customer: Customer,
    ship_to: ShipTo,
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    promise_by: Option<String>,
    lines: Vec<OrderLine>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Customer {
    id: String,
    #[serde(default)]
    tier: Option<String>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct ShipTo {
    region: String,
    #[serde(default)]
    lat: Option<f64>,
    #[serde(default)]
    lon: Option<f64>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct OrderLine {
    sku: String,
    qty: u32,
}

/// Answers one line: an acknowledgement of a parsed order, `invalid` for anything else;
/// nothing for a blank line.
fn acknowledge(line: Line<'_>, out: &mut BytesMut) {
    let parsed = match line {
        Line::Complete(line) if line.iter().all(u8::is_ascii_whitespace) => return,
        Line::Complete(line) => serde_json::from_slice::<Order>(line).ok(),
        Line::TooLong { .. } => None,
    };
    match parsed {
        Some(order) => {
            out.extend_from_slice(b"{\"order_id\":\"");
            out.extend_from_slice(order.id.as_bytes());
            out.extend_from_slice(b"\",\"status\":\"accepted\"}\n");
        }
        None => out.extend_from_slice(b"{\"status\":\"invalid\"}\n"),
    }
}

async fn post_orders(payload: web::Payload) -> HttpResponse {
    let state = (payload, LineSplitter::new(MAX_LINE_BYTES), false);
    let answers =
        futures_util::stream::unfold(state, |(mut payload, mut lines, ended)| async move {
            if ended {
                return None;
            }
            let mut out = BytesMut::new();
            loop {
                match payload.next().await {
                    Some(Ok(chunk)) => {
                        for line in lines.feed(&chunk) {
                            acknowledge(line, &mut out);
                        }
                        if !out.is_empty() {
                            let answer = Ok::<Bytes, actix_web::Error>(out.freeze());
                            return Some((answer, (payload, lines, false)));
                        }
                    }
                    Some(Err(_)) => return None,
                    None => {
                        if let Some(line) = lines.finish() {
                            acknowledge(line, &mut out);
                        }
                        return Some((Ok(out.freeze()), (payload, lines, true)));
                    }
                }
            }
        });
    HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .streaming(answers)
}

/// A running bare endpoint; stopped when dropped.
pub struct Bare {
    pub address: SocketAddr,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Bare {
    /// Starts it on `127.0.0.1` (a free port) with actix-web's default workers, one per core,
    /// as the router's.
    pub fn start() -> anyhow::Result<Bare> {
        let (sender, receiver) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let system = actix_rt::System::new();
            system.block_on(async move {
                let server =
                    HttpServer::new(|| App::new().route("/v1/orders", web::post().to(post_orders)))
                        .bind("127.0.0.1:0");
                let server = match server {
                    Ok(server) => server,
                    Err(error) => {
                        let _ = sender.send(Err(error));
                        return;
                    }
                };
                let address = server.addrs()[0];
                let server = server.run();
                let _ = sender.send(Ok((address, server.handle())));
                let _ = server.await;
            });
        });
        let (address, handle) = receiver.recv()??;
        Ok(Bare {
            address,
            handle,
            thread: Some(thread),
        })
    }
}

impl Drop for Bare {
    fn drop(&mut self) {
        // `stop` is a future that resolves once stopped; the thread ends with the server.
        drop(self.handle.stop(false));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
