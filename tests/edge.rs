//! The HTTP edge of the real binary against clients that misbehave, on raw sockets (a client
//! library would hide most of these cases): slow request heads, silent and broken bodies,
//! ambiguous framing, and the smaller things a client should not be able to do to the
//! router or to the others (docs/service.md, "The edge").

mod common;

use common::server::{Server, dechunk, write_chunk};
use common::{GOLDEN, GOLDEN_CATALOG, simple_order, wait_for};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const STOCK: &str = "warehouse,sku,on_hand\nNEAR,A,10\nFAR,A,5\nWEST,A,100\nNEAR,B,3\nWEST,B,50\n";

/// The golden network with `[limits]` set to `limits` (TOML lines).
fn server_with_limits(limits: &str) -> Server {
    let config = GOLDEN.replacen(
        "max_shipments = 3",
        &format!("max_shipments = 3\n\n[limits]\n{limits}"),
        1,
    );
    Server::start(&config, GOLDEN_CATALOG, STOCK, &[])
}

const STREAM_HEAD: &[u8] = b"POST /v1/orders HTTP/1.1\r\nHost: test\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n";

/// Opens an NDJSON stream: the request head, with a chunked body to come.
fn open_stream(server: &Server) -> TcpStream {
    let mut stream = server.connect();
    stream.write_all(STREAM_HEAD).unwrap();
    stream
}

/// Reads until the server closes the connection; fails the test if the read times out
/// instead (the server kept the connection).
fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut raw = Vec::new();
    if let Err(error) = stream.read_to_end(&mut raw) {
        assert!(
            !matches!(
                error.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "the server kept the connection open: {error}"
        );
    }
    raw
}

/// Reads one whole response of a kept-alive connection (a `Content-Length` body).
fn read_response(stream: &mut TcpStream) -> Vec<u8> {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "closed: {raw:?}");
        raw.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |value| value.trim().parse().unwrap());
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    raw.extend_from_slice(&body);
    raw
}

/// The NDJSON records of a chunked response read whole: the body after the head, dechunked.
fn records(raw: &[u8]) -> Vec<Value> {
    let text = String::from_utf8_lossy(raw);
    let end = text.find("\r\n\r\n").expect("a response head") + 4;
    dechunk(&raw[end..])
        .split(|byte| *byte == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_slice(line).unwrap())
        .collect()
}

/// The value of the metric series `series` (name and labels, as exposed), 0 while absent.
fn metric(server: &Server, series: &str) -> f64 {
    server.metric(series)
}

fn order_line(id: &str) -> String {
    format!("{}\n", simple_order(id, "R1", &[("A", 1)], ""))
}

#[test]
fn a_first_request_head_that_never_ends_is_timed_out() {
    let server = server_with_limits("header_timeout_ms = 1000");
    // Timed from before the connection opens: the server's timer cannot start earlier.
    let started = Instant::now();
    let mut slow = server.connect();
    slow.write_all(b"POST /v1/orders HTTP/1.1\r\nHost: t\r\n")
        .unwrap();
    let raw = read_until_closed(&mut slow);
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(500), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(15), "{elapsed:?}");
    assert!(
        raw.is_empty() || raw.starts_with(b"HTTP/1.1 408"),
        "{raw:?}"
    );
    assert_eq!(server.get("/healthz").status, 200);
}

#[test]
fn a_slow_second_request_head_on_a_kept_alive_connection_gets_408_in_time() {
    let server = server_with_limits("header_timeout_ms = 1000\nidle_timeout_s = 60");
    let mut slow = server.connect();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert!(read_response(&mut slow).starts_with(b"HTTP/1.1 200"));
    // The second head, a byte every 200 ms: it would take 6 s.
    let started = Instant::now();
    let head = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
    let mut raw = Vec::new();
    for byte in head {
        if slow.write_all(&[*byte]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        slow.set_nonblocking(true).unwrap();
        let mut buffer = [0u8; 256];
        let read = slow.read(&mut buffer);
        slow.set_nonblocking(false).unwrap();
        match read {
            Ok(0) => break,
            Ok(count) => raw.extend_from_slice(&buffer[..count]),
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
    }
    raw.extend(read_until_closed(&mut slow));
    let elapsed = started.elapsed();
    assert!(
        raw.starts_with(b"HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    assert!(elapsed >= Duration::from_millis(800), "{elapsed:?}");
    assert!(
        elapsed < Duration::from_secs(5),
        "cut long after the 1 s header timeout: {elapsed:?}"
    );
    assert_eq!(
        metric(
            &server,
            "router_requests_refused_total{reason=\"head_timeout\"}"
        ),
        1.0
    );
    assert_eq!(server.get("/healthz").status, 200);
}

#[test]
fn silent_streams_are_answered_ended_and_their_slots_freed() {
    let server = server_with_limits("max_streams = 256\nbody_idle_timeout_ms = 10000");
    // 256 streams: one sends an order and half a line, the others one byte, then all go
    // silent.
    let mut talker = open_stream(&server);
    write_chunk(
        &mut talker,
        format!("{}{{\"id\":\"half", order_line("S-1")).as_bytes(),
    );
    let mut silent: Vec<TcpStream> = (1..256)
        .map(|_| {
            let mut stream = open_stream(&server);
            write_chunk(&mut stream, b"{");
            stream
        })
        .collect();
    // Every slot is taken (the 257th is refused) until the silence runs out.
    wait_for("256 streams open", || {
        metric(&server, "router_streams_open") == 256.0
    });
    let refused = server.post_ndjson(&order_line("S-probe"));
    assert_eq!(refused.status, 429, "256 open streams hold every slot");
    let said = records(&read_until_closed(&mut talker));
    assert_eq!(said.len(), 2, "{said:?}");
    assert_eq!(said[0]["order_id"], "S-1");
    assert_eq!(said[0]["status"], "routed");
    assert_eq!(said[1]["status"], "error");
    assert_eq!(said[1]["line"], 2);
    assert_eq!(said[1]["error"]["code"], "body_timeout");
    let message = said[1]["error"]["message"].as_str().unwrap();
    assert!(message.contains("10000 ms"), "{message}");
    assert!(message.contains("the 11 bytes of line 2"), "{message}");
    for stream in &mut silent {
        let raw = read_until_closed(stream);
        assert!(raw.ends_with(b"0\r\n\r\n"), "the response ends properly");
        let said = records(&raw);
        assert_eq!(said.len(), 1);
        assert_eq!(said[0]["error"]["code"], "body_timeout");
        assert_eq!(said[0]["line"], 1);
    }
    // The slots are free again.
    wait_for("a stream slot", || {
        server.post_ndjson(&order_line("S-2")).status == 200
    });
    assert_eq!(
        metric(&server, "router_streams_cut_total{reason=\"body_timeout\"}"),
        256.0
    );
}

#[test]
fn a_stream_that_sends_steadily_is_never_cut_however_long_it_lasts() {
    // A line every 500 ms for 3 s with a 2 s idle timeout: the stream outlasts the timeout
    // (the clock starts again at every byte) and the gaps leave room for a loaded machine.
    let server = server_with_limits("body_idle_timeout_ms = 2000");
    let mut stream = server.connect();
    let head =
        String::from_utf8_lossy(STREAM_HEAD).replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    for index in 0..6 {
        write_chunk(&mut stream, order_line(&format!("W-{index}")).as_bytes());
        std::thread::sleep(Duration::from_millis(500));
    }
    stream.write_all(b"0\r\n\r\n").unwrap();
    let records = records(&read_until_closed(&mut stream));
    assert_eq!(records.len(), 6, "{records:?}");
    assert!(records.iter().all(|record| record["status"] == "routed"));
}

#[test]
fn a_bad_chunk_after_a_decision_yields_the_decision_then_a_bad_body_record() {
    let server = server_with_limits("");
    // The order's chunk and the broken one in separate writes, and in one write.
    for (id, together) in [("B-1", false), ("B-2", true)] {
        let mut stream = open_stream(&server);
        let order = order_line(id);
        let chunk = format!("{:x}\r\n{order}\r\n", order.len());
        if together {
            stream
                .write_all(format!("{chunk}zz\r\nnot a chunk\r\n").as_bytes())
                .unwrap();
        } else {
            stream.write_all(chunk.as_bytes()).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            // Not a chunk size: the framing is broken.
            stream.write_all(b"zz\r\nnot a chunk\r\n").unwrap();
        }
        let raw = read_until_closed(&mut stream);
        assert!(
            raw.ends_with(b"0\r\n\r\n"),
            "the response ends properly: {}",
            String::from_utf8_lossy(&raw)
        );
        let records = records(&raw);
        assert_eq!(records.len(), 2, "{records:?}");
        assert_eq!(records[0]["order_id"], id);
        assert_eq!(records[0]["status"], "routed");
        assert_eq!(records[1]["status"], "error");
        assert_eq!(records[1]["line"], 2);
        assert_eq!(records[1]["error"]["code"], "bad_body");
        assert_eq!(server.get(&format!("/v1/orders/{id}")).status, 200);
    }
    assert_eq!(
        metric(&server, "router_streams_cut_total{reason=\"bad_body\"}"),
        2.0
    );
    // The server goes on.
    let answer = server.post_ndjson(&order_line("B-3"));
    assert_eq!(answer.lines()[0]["status"], "routed");
}

#[test]
fn media_types_match_whatever_their_case() {
    let server = server_with_limits("");
    let stream = server.request(
        "POST",
        "/v1/orders",
        "APPLICATION/X-NDJSON; Charset=UTF-8",
        order_line("M-1").as_bytes(),
    );
    assert_eq!(stream.status, 200);
    assert_eq!(stream.lines()[0]["status"], "routed");
    let single = server.request(
        "POST",
        "/v1/orders",
        "Application/JSON",
        simple_order("M-2", "R1", &[("A", 1)], "").as_bytes(),
    );
    assert_eq!(single.status, 200);
    assert_eq!(single.json()["order_id"], "M-2");
}

#[test]
fn a_request_with_both_transfer_encoding_and_content_length_is_refused() {
    let server = server_with_limits("");
    let mut stream = server.connect();
    let order = order_line("T-1");
    let chunk = format!("{:x}\r\n{order}\r\n0\r\n\r\n", order.len());
    let head = format!(
        "POST /v1/orders HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n",
        chunk.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(chunk.as_bytes()).unwrap();
    // A second request on the same connection is never read: it is closed after the 400.
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let raw = read_until_closed(&mut stream);
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(
        text.contains("Transfer-Encoding and Content-Length"),
        "{text}"
    );
    assert_eq!(text.matches("HTTP/1.1").count(), 1, "{text}");
    assert_eq!(server.get("/v1/orders/T-1").status, 404, "not decided");
    assert_eq!(
        metric(
            &server,
            "router_requests_refused_total{reason=\"ambiguous_length\"}"
        ),
        1.0
    );
}

#[test]
fn bad_request_heads_are_counted() {
    let server = server_with_limits("");
    for _ in 0..20 {
        let mut stream = server.connect();
        stream
            .write_all(b"GET / HTTP/1.1\r\nno colon here\r\n\r\n")
            .unwrap();
        let raw = read_until_closed(&mut stream);
        assert!(raw.starts_with(b"HTTP/1.1 400"), "{raw:?}");
    }
    wait_for("bad heads counted", || {
        metric(
            &server,
            "router_requests_refused_total{reason=\"bad_head\"}",
        ) == 20.0
    });
}

#[test]
fn refused_single_orders_count_as_invalid_lines() {
    let server = server_with_limits("max_line_bytes = 1024");
    let bad = server.post_json("/v1/orders", "{\"id\":\"J-1\"");
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"]["code"], "bad_json");
    let huge = format!("{{\"id\":\"J-2\",\"note\":\"{}\"}}", "x".repeat(4096));
    let large = server.post_json("/v1/orders", &huge);
    assert_eq!(large.status, 413);
    assert_eq!(
        metric(&server, "router_lines_invalid_total{code=\"bad_json\"}"),
        1.0
    );
    assert_eq!(
        metric(
            &server,
            "router_lines_invalid_total{code=\"line_too_long\"}"
        ),
        1.0
    );
}

#[test]
fn a_404_does_not_echo_a_long_path() {
    let server = server_with_limits("");
    let id = "x".repeat(8000);
    let answer = server.get(&format!("/v1/orders/{id}"));
    assert_eq!(answer.status, 404);
    assert!(answer.body.len() < 300, "{}", answer.text());
    assert!(answer.text().contains("8000 bytes"), "{}", answer.text());
    let sku = server.get(&format!("/v1/stock/{id}"));
    assert_eq!(sku.status, 404);
    assert!(sku.body.len() < 300, "{}", sku.text());
}

#[test]
fn dot_and_dot_dot_are_not_order_ids() {
    let server = server_with_limits("");
    let body = [".", "..", "..."]
        .iter()
        .map(|id| order_line(id))
        .collect::<String>();
    let answers = server.post_ndjson(&body).lines();
    for (answer, line) in answers[..2].iter().zip(1..) {
        assert_eq!(answer["status"], "invalid");
        assert_eq!(answer["error"]["code"], "bad_id");
        assert_eq!(answer["line"], line);
    }
    assert_eq!(
        answers[2]["status"], "routed",
        "'...' is an id like any other"
    );
    assert_eq!(server.get("/v1/orders/...").status, 200);
}

#[test]
fn a_head_with_too_many_headers_gets_431_on_a_later_request_too() {
    let server = server_with_limits("");
    let mut stream = server.connect();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert!(read_response(&mut stream).starts_with(b"HTTP/1.1 200"));
    let mut head = String::from("GET /healthz HTTP/1.1\r\nHost: t\r\n");
    for index in 0..200 {
        head.push_str(&format!("X-Filler-{index}: {}\r\n", "v".repeat(100)));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let raw = read_until_closed(&mut stream);
    assert!(
        raw.starts_with(b"HTTP/1.1 431"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
}

#[test]
fn a_break_in_a_pipelined_body_is_that_request_s_not_the_one_before() {
    let server = server_with_limits("");
    let mut stream = server.connect();
    let single = simple_order("P-1", "R1", &[("A", 1)], "");
    let order = order_line("P-2");
    // A whole single order, then a stream whose chunked body breaks, in one write.
    let pipelined = format!(
        "POST /v1/orders HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{single}\
         POST /v1/orders HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n\
         {:x}\r\n{order}\r\nzz\r\n",
        single.len(),
        order.len()
    );
    stream.write_all(pipelined.as_bytes()).unwrap();
    let raw = read_until_closed(&mut stream);
    let text = String::from_utf8_lossy(&raw);
    let second = text
        .find("HTTP/1.1 200 OK\r\ntransfer-encoding")
        .expect(&text);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text[..second].contains("\"order_id\":\"P-1\""), "{text}");
    let said = records(&raw[second..]);
    assert_eq!(said.len(), 2, "{said:?}");
    assert_eq!(said[0]["order_id"], "P-2");
    assert_eq!(said[1]["error"]["code"], "bad_body");
}

#[test]
fn a_stream_whose_client_reads_no_answers_is_cut_and_its_slot_freed() {
    let server = server_with_limits("max_streams = 1\nwrite_stall_timeout_ms = 2000");
    // A client that sends orders and never reads: a small receive buffer, so that the
    // answers fill it (and the server's send buffer) within a few MB.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&server.addr.into()).unwrap();
    let mut stream: TcpStream = socket.into();
    stream.write_all(STREAM_HEAD).unwrap();
    let mut sender = stream.try_clone().unwrap();
    let sending = std::thread::spawn(move || {
        // 40,000 orders, about 10 MB of answers; the writes block once the router stops
        // reading (it stops while the answers cannot go out), and fail once it cuts.
        for batch in 0..80 {
            let chunk: String = (0..500)
                .map(|n| order_line(&format!("U-{batch}-{n}")))
                .collect();
            let framed = format!("{:x}\r\n{chunk}\r\n", chunk.len());
            if sender.write_all(framed.as_bytes()).is_err() {
                return false;
            }
        }
        sender.write_all(b"0\r\n\r\n").is_ok()
    });
    wait_for("the stream open", || {
        metric(&server, "router_streams_open") == 1.0
    });
    assert_eq!(
        server.post_ndjson(&order_line("U-probe")).status,
        429,
        "the one stream slot is taken"
    );
    wait_for("the stalled connection cut", || {
        metric(
            &server,
            "router_connections_cut_total{reason=\"write_stall\"}",
        ) == 1.0
    });
    wait_for("the stream slot free again", || {
        server.post_ndjson(&order_line("U-after")).status == 200
    });
    // The sender is done either way: its body read whole before the cut, or refused by it.
    let _ = sending.join().unwrap();
    // What the client still finds is what was in its buffers, then the end.
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let raw = read_until_closed(&mut stream);
    assert!(
        raw.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        &raw[..raw.len().min(64)]
    );
}
