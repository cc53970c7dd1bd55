//! The yardstick of the service benchmark (issue 3): a bare actix-web endpoint with the
//! shape of `order-router serve`'s `POST /v1/orders` (`src/serve/http.rs`, `stream_orders`)
//! minus the routing. It reads the NDJSON body chunk by chunk, splits each chunk into lines
//! with the service's [`LineSplitter`], parses every line with serde_json into an owned
//! mirror of the order struct and writes a one-line acknowledgement
//! ([`order_router::yardstick::acknowledge`]), and streams the acknowledgements of each
//! chunk back as one item of the response while it reads the next. No admission, no
//! shard, no state.
//!
//! ```sh
//! cargo build --release --examples
//! target/release/examples/bare_actix --listen 127.0.0.1:0 [--workers N]
//! target/release/examples/stream_client --target http://ADDR --file orders.ndjson --streams 1
//! ```

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use bytes::Bytes;
use futures_util::StreamExt;
use order_router::ingest::{Line, LineSplitter};
use order_router::yardstick::acknowledge;
use std::net::SocketAddr;
use std::time::Duration;

/// A bare actix-web NDJSON endpoint: parse each order, acknowledge it, nothing else.
#[derive(clap::Parser)]
struct Cli {
    /// Address to listen on; port 0 picks a free port (printed on stdout).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// HTTP worker threads. Default: actix-web's (one per core), as the service.
    #[arg(long)]
    workers: Option<usize>,
}

fn main() -> std::io::Result<()> {
    let cli = <Cli as clap::Parser>::parse();
    actix_rt::System::new().block_on(serve(cli.listen, cli.workers))
}

async fn serve(listen: SocketAddr, workers: Option<usize>) -> std::io::Result<()> {
    // The service's server settings, so only the handler differs.
    let mut server =
        HttpServer::new(|| App::new().route("/v1/orders", web::post().to(post_orders)))
            .client_request_timeout(Duration::from_secs(10))
            .keep_alive(Duration::from_secs(75));
    if let Some(workers) = workers {
        server = server.workers(workers);
    }
    let server = server.bind(listen)?;
    for address in server.addrs() {
        println!("bare listening on http://{address}");
    }
    server.run().await
}

/// `POST /v1/orders`: the content-type check of the service, then the stream.
async fn post_orders(request: HttpRequest, payload: web::Payload) -> HttpResponse {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    match essence {
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" => {
            stream_orders(payload)
        }
        _ => HttpResponse::build(StatusCode::UNSUPPORTED_MEDIA_TYPE)
            .body("Content-Type must be application/x-ndjson\n"),
    }
}

/// One stream: read a chunk, acknowledge its lines, hand the acknowledgements to the
/// response; then the next chunk. At most one chunk in flight, as in the service.
fn stream_orders(payload: web::Payload) -> HttpResponse {
    struct State {
        payload: web::Payload,
        splitter: LineSplitter,
        out: Vec<u8>,
        ended: bool,
    }
    let state = State {
        payload,
        splitter: LineSplitter::new(order_router::config::Limits::default().max_line_bytes),
        out: Vec::new(),
        ended: false,
    };
    let answers = futures_util::stream::unfold(state, |mut state| async move {
        loop {
            if state.ended {
                return None;
            }
            match state.payload.next().await {
                Some(Ok(chunk)) => {
                    let out = &mut state.out;
                    state.splitter.feed(&chunk, |line| answer(line, out));
                }
                Some(Err(problem)) => {
                    eprintln!("order stream ended by the client: {problem}");
                    return None;
                }
                None => {
                    state.ended = true;
                    let out = &mut state.out;
                    state.splitter.finish(|line| answer(line, out));
                }
            }
            if state.out.is_empty() {
                continue;
            }
            // A fresh buffer per chunk, as the service's shard renders one per batch.
            let bytes = std::mem::take(&mut state.out);
            return Some((Ok::<Bytes, actix_web::Error>(Bytes::from(bytes)), state));
        }
    });
    HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .streaming(answers)
}

/// One answer line per input line, as the service gives.
fn answer(line: Line<'_>, out: &mut Vec<u8>) {
    match line {
        Line::Complete { bytes, .. } => {
            acknowledge(bytes, out);
        }
        Line::TooLong { .. } => out.extend_from_slice(b"{\"status\":\"invalid\"}\n"),
    }
}
