//! `order-router serve` over real sockets: the binary on a free loopback port, a network,
//! catalogue and stock it has never seen (the golden network), and a plain-socket client.

mod common;

use common::server::{Server, dechunk, write_chunk};
use common::{GOLDEN, GOLDEN_CATALOG, simple_order, wait_for};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;

const STOCK: &str =
    "warehouse,sku,on_hand\nNEAR,A,10\nFAR,A,5\nWEST,A,100\nNEAR,B,3\nWEST,B,50\nFAR,ICE,4\n";

fn golden_server(extra: &[&str]) -> Server {
    Server::start(GOLDEN, GOLDEN_CATALOG, STOCK, extra)
}

/// Opens an NDJSON stream: the request head, with a chunked body to come.
fn open_stream(server: &Server) -> TcpStream {
    let mut stream = server.connect();
    stream
        .write_all(
            b"POST /v1/orders HTTP/1.1\r\nHost: test\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    stream
}

/// Reads from `stream` until the response body holds `lines` complete lines; the raw bytes.
fn read_until_lines(stream: &mut TcpStream, raw: &mut Vec<u8>, lines: usize) -> Vec<Value> {
    let mut buffer = [0u8; 65536];
    loop {
        if let Some(end) = raw.windows(4).position(|window| window == b"\r\n\r\n") {
            let body = dechunk_partial(&raw[end + 4..]);
            let complete: Vec<Value> = body
                .split(|byte| *byte == b'\n')
                .filter(|line| !line.is_empty())
                .map(|line| serde_json::from_slice(line).unwrap())
                .collect();
            if body.ends_with(b"\n") && complete.len() >= lines {
                return complete;
            }
        }
        let read = stream.read(&mut buffer).unwrap();
        assert!(read > 0, "the server closed the stream early: {raw:?}");
        raw.extend_from_slice(&buffer[..read]);
    }
}

/// Reads `stream` until the server closes (or resets) it; fails the test if the read times
/// out instead, the server having kept the connection open.
fn read_until_closed(stream: &mut TcpStream, raw: &mut Vec<u8>) {
    if let Err(error) = stream.read_to_end(raw) {
        assert!(
            !matches!(
                error.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "the server kept the connection open: {error}"
        );
    }
}

/// Reads from `stream` until the response head has arrived (the body may still be to come).
fn read_until_head(stream: &mut TcpStream, raw: &mut Vec<u8>) {
    let mut buffer = [0u8; 4096];
    while !raw.windows(4).any(|window| window == b"\r\n\r\n") {
        let read = stream.read(&mut buffer).unwrap();
        assert!(read > 0, "the server closed the stream early: {raw:?}");
        raw.extend_from_slice(&buffer[..read]);
    }
}

/// The value of the metric series `series` (name and labels, as exposed), 0 while absent.
fn metric(server: &Server, series: &str) -> f64 {
    server.metric(series)
}

/// Config reloads so far, by outcome ("applied", "unchanged", "refused").
fn reloads(server: &Server, outcome: &str) -> f64 {
    metric(
        server,
        &format!("router_config_reloads_total{{outcome=\"{outcome}\"}}"),
    )
}

/// Decodes the complete chunks of a chunked body that may still be arriving.
fn dechunk_partial(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(line_end) = raw.windows(2).position(|window| window == b"\r\n") {
        let size =
            usize::from_str_radix(std::str::from_utf8(&raw[..line_end]).unwrap(), 16).unwrap();
        let start = line_end + 2;
        if size == 0 || raw.len() < start + size + 2 {
            break;
        }
        body.extend_from_slice(&raw[start..start + size]);
        raw = &raw[start + size + 2..];
    }
    body
}

fn without_duplicate_flag(mut decision: Value) -> Value {
    decision.as_object_mut().unwrap().remove("duplicate");
    decision
}

#[test]
fn decisions_stream_back_while_the_body_is_still_being_sent() {
    let server = golden_server(&[]);
    let mut stream = open_stream(&server);
    let mut raw = Vec::new();
    let first = format!(
        "{}\n{}\n",
        simple_order("S-1", "R1", &[("A", 1)], ""),
        simple_order("S-2", "R1", &[("B", 1)], "")
    );
    write_chunk(&mut stream, first.as_bytes());
    // Both answers arrive before the request body has ended.
    let answers = read_until_lines(&mut stream, &mut raw, 2);
    assert_eq!(answers[0]["order_id"], "S-1");
    assert_eq!(answers[0]["status"], "routed");
    assert_eq!(answers[1]["order_id"], "S-2");

    // A malformed line mid-stream gets its `invalid` record, and the stream goes on; a line
    // split across two chunks is put back together.
    let third = simple_order("S-3", "R1", &[("A", 2)], "");
    let (head, tail) = third.split_at(20);
    write_chunk(&mut stream, format!("{{\"id\": oops\n{head}").as_bytes());
    write_chunk(&mut stream, format!("{tail}\n").as_bytes());
    let answers = read_until_lines(&mut stream, &mut raw, 4);
    assert_eq!(answers[2]["status"], "invalid");
    assert_eq!(answers[2]["line"], 3);
    assert_eq!(answers[2]["error"]["code"], "bad_json");
    assert_eq!(answers[3]["order_id"], "S-3");
    assert_eq!(answers[3]["status"], "routed");

    // The end of the body ends the response: the connection closes (the read does not time
    // out) after the last chunk.
    stream.write_all(b"0\r\n\r\n").unwrap();
    let mut rest = Vec::new();
    stream
        .read_to_end(&mut rest)
        .expect("the response ends when the body does");
    raw.extend_from_slice(&rest);
    assert!(
        raw.ends_with(b"0\r\n\r\n"),
        "no last chunk: {}",
        String::from_utf8_lossy(&raw)
    );
    let end = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap();
    let body = dechunk(&raw[end + 4..]);
    assert_eq!(body.iter().filter(|byte| **byte == b'\n').count(), 4);
}

#[test]
fn retries_across_connections_are_duplicates_and_stock_matches_the_decisions() {
    let server = golden_server(&[]);
    let mut body = String::new();
    for index in 0..40 {
        let (sku, qty) = match index % 4 {
            0 => ("A", 1),
            1 => ("A", 3),
            2 => ("B", 1),
            _ => ("ICE", 1),
        };
        let region = if index % 5 == 0 { "R2" } else { "R1" };
        body.push_str(&simple_order(
            &format!("O-{index}"),
            region,
            &[(sku, qty)],
            "",
        ));
        body.push('\n');
    }
    let first = server.post_ndjson(&body);
    assert_eq!(first.status, 200);
    let first = first.lines();
    assert_eq!(first.len(), 40);
    for (index, decision) in first.iter().enumerate() {
        assert_eq!(decision["order_id"], format!("O-{index}"));
        assert!(decision.get("duplicate").is_none_or(|flag| flag == false));
    }

    // The same stream again, on another connection: every order a duplicate, same decision.
    let again = server.post_ndjson(&body).lines();
    assert_eq!(again.len(), 40);
    for (first, again) in first.iter().zip(&again) {
        assert_eq!(again["duplicate"], true, "{again}");
        assert_eq!(without_duplicate_flag(again.clone()), *first);
    }
    // Same id, other content: an id conflict, as a single JSON order (422) and in a stream.
    let conflict = simple_order("O-0", "R1", &[("A", 2)], "");
    let single = server.post_json("/v1/orders", &conflict);
    assert_eq!(single.status, 422);
    assert_eq!(single.json()["error"]["code"], "id_conflict");
    let streamed = server.post_ndjson(&format!("{conflict}\n")).lines();
    assert_eq!(streamed[0]["error"]["code"], "id_conflict");

    // Reserved stock, read through the API, equals what the live decisions placed.
    let placed = |decisions: &[Value]| common::server::placed(decisions);
    let check = |placed: &HashMap<(String, String), u64>| {
        for sku in ["A", "B", "ICE", "HEAVY"] {
            let stock = server.get(&format!("/v1/stock/{sku}"));
            assert_eq!(stock.status, 200);
            let stock = stock.json();
            for row in stock["warehouses"].as_array().unwrap() {
                let warehouse = row["warehouse"].as_str().unwrap().to_owned();
                let expected = placed
                    .get(&(warehouse.clone(), sku.to_owned()))
                    .copied()
                    .unwrap_or(0);
                assert_eq!(row["reserved"], expected, "{sku} at {warehouse}: {stock}");
                assert!(row["reserved"].as_u64() <= row["on_hand"].as_u64());
            }
        }
    };
    let mut placed_now = placed(&first);
    check(&placed_now);
    assert_eq!(server.get("/v1/stock/NOPE").status, 404);

    // A cancel releases exactly its units; a second cancel is refused; so is an unknown id.
    let routed = first
        .iter()
        .find(|decision| decision["status"] == "routed")
        .unwrap();
    let id = routed["order_id"].as_str().unwrap();
    let cancelled = server.post_json(&format!("/v1/orders/{id}/cancel"), "");
    assert_eq!(cancelled.status, 200, "{}", cancelled.text());
    assert_eq!(cancelled.json()["state"], "cancelled");
    for ((warehouse, sku), units) in placed(std::slice::from_ref(routed)) {
        *placed_now.get_mut(&(warehouse, sku)).unwrap() -= units;
    }
    check(&placed_now);
    assert_eq!(
        server
            .post_json(&format!("/v1/orders/{id}/cancel"), "")
            .status,
        409
    );
    assert_eq!(server.post_json("/v1/orders/NOPE/cancel", "").status, 404);
    let state = server.get(&format!("/v1/orders/{id}"));
    assert_eq!(state.status, 200);
    assert_eq!(state.json()["state"], "cancelled");
    assert_eq!(state.json()["decision"], *routed);

    // Shipped: the reservation becomes consumed stock.
    let other = first
        .iter()
        .filter(|decision| decision["status"] == "routed")
        .nth(1)
        .unwrap();
    let other_id = other["order_id"].as_str().unwrap();
    let shipment = &other["shipments"][0];
    let (warehouse, sku) = (
        shipment["warehouse"].as_str().unwrap(),
        shipment["lines"][0]["sku"].as_str().unwrap(),
    );
    let units = shipment["lines"][0]["qty"].as_u64().unwrap();
    let on_hand = |server: &Server| {
        let stock = server.get(&format!("/v1/stock/{sku}")).json();
        stock["warehouses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["warehouse"] == warehouse)
            .unwrap()["on_hand"]
            .as_u64()
            .unwrap()
    };
    let before = on_hand(&server);
    assert_eq!(
        server
            .post_json(&format!("/v1/orders/{other_id}/shipped"), "")
            .status,
        200
    );
    assert_eq!(on_hand(&server), before - units);
}

#[test]
fn a_single_json_order_gets_one_decision_with_its_status_code() {
    let server = golden_server(&[]);
    let order = simple_order("J-1", "R1", &[("A", 1)], "");
    let answer = server.post_json("/v1/orders", &order);
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let decision = answer.json();
    assert_eq!(decision["order_id"], "J-1");
    assert_eq!(decision["status"], "routed");
    // Retried: the same decision, marked.
    let again = server.post_json("/v1/orders", &order).json();
    assert_eq!(again["duplicate"], true);
    assert_eq!(without_duplicate_flag(again), decision);
    // Invalid: 400 with the contract's error body.
    let bad = server.post_json("/v1/orders", &order.replace("R1", "R9"));
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"]["code"], "unknown_region");
    // Not JSON at all, or another media type.
    assert_eq!(server.post_json("/v1/orders", "{").status, 400);
    assert_eq!(
        server
            .request("POST", "/v1/orders", "text/csv", b"a,b")
            .status,
        415
    );
    // Over the line limit: 413.
    let huge = format!("{{\"id\":\"{}\"}}", "x".repeat(70_000));
    assert_eq!(server.post_json("/v1/orders", &huge).status, 413);
}

#[test]
fn one_stream_too_many_is_refused_with_429_and_retry_after() {
    let config = GOLDEN.replace(
        "max_shipments = 3",
        "max_shipments = 3\n\n[limits]\nmax_streams = 1",
    );
    let server = Server::start(&config, GOLDEN_CATALOG, STOCK, &[]);
    let mut stream = open_stream(&server);
    let mut raw = Vec::new();
    write_chunk(
        &mut stream,
        format!("{}\n", simple_order("L-1", "R1", &[("A", 1)], "")).as_bytes(),
    );
    read_until_lines(&mut stream, &mut raw, 1);

    // The one stream allowed is open: another is refused, and says when to come back.
    let refused = server.post_ndjson(&format!("{}\n", simple_order("L-2", "R1", &[("A", 1)], "")));
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(refused.json()["error"]["code"], "overloaded");
    // Nothing of the refused request was decided.
    assert_eq!(server.get("/v1/orders/L-2").status, 404);
    // Single orders are not streams: still served.
    let single = server.post_json("/v1/orders", &simple_order("L-3", "R1", &[("A", 1)], ""));
    assert_eq!(single.status, 200);
    let metrics = server.get("/metrics").text().to_owned();
    assert!(
        metrics.contains("router_requests_throttled_total 1"),
        "{metrics}"
    );
    // The memory a load test reports: read at the scrape, never zero for a live process.
    let resident = metrics
        .lines()
        .find_map(|line| line.strip_prefix("process_resident_memory_bytes "))
        .and_then(|value| value.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no resident memory in {metrics}"));
    assert!(resident > 1_000_000.0, "{resident}");

    // Once the first stream ends, a new one is taken.
    stream.write_all(b"0\r\n\r\n").unwrap();
    read_until_closed(&mut stream, &mut Vec::new());
    let accepted = server.post_ndjson(&format!("{}\n", simple_order("L-2", "R1", &[("A", 1)], "")));
    assert_eq!(accepted.status, 200);
    assert_eq!(accepted.lines()[0]["status"], "routed");
}

#[test]
fn sigterm_drains_open_streams_then_exits_zero() {
    let mut server = golden_server(&[]);
    let mut stream = open_stream(&server);
    let mut raw = Vec::new();
    write_chunk(
        &mut stream,
        format!("{}\n", simple_order("D-1", "R1", &[("A", 1)], "")).as_bytes(),
    );
    read_until_lines(&mut stream, &mut raw, 1);

    // A live tail of the feed, which must see every decision made while draining.
    let mut tail = server.connect();
    tail.write_all(
        b"GET /v1/decisions?cursor=0&follow=true HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut tail_raw = Vec::new();
    read_until_lines(&mut tail, &mut tail_raw, 1);

    server.signal(libc::SIGTERM);
    // Draining: new requests are refused (or new connections not taken)...
    wait_for("refusing new requests after SIGTERM", || {
        server_refuses(&server)
    });
    // ...but the open stream is still read, decided and answered to its end.
    let rest_of_body = format!(
        "{}\n{}\n",
        simple_order("D-2", "R1", &[("A", 1)], ""),
        simple_order("D-3", "R1", &[("B", 1)], "")
    );
    write_chunk(&mut stream, rest_of_body.as_bytes());
    let answers = read_until_lines(&mut stream, &mut raw, 3);
    assert_eq!(answers[1]["order_id"], "D-2");
    assert_eq!(answers[2]["order_id"], "D-3");
    stream.write_all(b"0\r\n\r\n").unwrap();
    read_until_closed(&mut stream, &mut raw);
    assert!(
        raw.ends_with(b"0\r\n\r\n"),
        "the stream's answer was cut off"
    );
    // The tail saw all three, then ended with the server (closed, not timed out; whether
    // its last chunk makes it out before the process exits is not settled, so not checked).
    read_until_closed(&mut tail, &mut tail_raw);
    let end = tail_raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap();
    let feed: Vec<Value> = dechunk(&tail_raw[end + 4..])
        .split(|byte| *byte == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_slice(line).unwrap())
        .collect();
    let ids: Vec<&str> = feed
        .iter()
        .map(|entry| entry["order_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["D-1", "D-2", "D-3"]);
    let status = server.terminate_wait();
    assert!(status.success(), "{status:?}");
}

/// Whether a request on a new connection is refused (closed or 503) while draining.
fn server_refuses(server: &Server) -> bool {
    let Ok(mut stream) = TcpStream::connect(server.addr) else {
        return true;
    };
    // A connection the kernel queued but the server never takes is not answered: the read
    // times out with nothing read, which counts as refused.
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    let _ = stream.write_all(b"GET /readyz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    raw.is_empty() || raw.starts_with(b"HTTP/1.1 503")
}

#[test]
fn health_readiness_and_metrics() {
    let server = golden_server(&[]);
    assert_eq!(server.get("/healthz").status, 200);
    let ready = server.get("/readyz");
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["status"], "ready");
    server.post_ndjson(&format!(
        "{}\nnot json\n",
        simple_order("M-1", "R1", &[("A", 1)], "")
    ));
    let metrics = server.get("/metrics");
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    assert!(
        text.contains("router_orders_decided_total{status=\"routed\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("router_lines_invalid_total{code=\"bad_json\"} 1"),
        "{text}"
    );
    for stage in ["parse", "queue_wait", "decide", "answer"] {
        let series = format!("router_stage_latency_seconds_bucket{{stage=\"{stage}\",le=\"0.1\"}}");
        assert!(text.contains(&series), "{stage}: {text}");
    }
    assert!(
        text.contains("router_decision_latency_seconds_bucket{le=\"+Inf\"} 1"),
        "{text}"
    );
    // One message to the order's home zone (R1 is in the east); none to the west.
    assert!(
        text.contains("router_zone_queue_pushed_total{zone=\"east\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("router_zone_queue_popped_total{zone=\"east\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("router_zone_queue_popped_total{zone=\"west\"} 0"),
        "{text}"
    );
    // Every metric says what it is.
    assert!(
        text.contains("# HELP router_orders_decided_total New decisions, by status."),
        "{text}"
    );
    assert!(
        text.contains("# HELP router_zone_queue_pushed_total Messages of orders sent"),
        "{text}"
    );
}

#[test]
fn network_catalogue_and_stock_levels_in_and_out() {
    let server = golden_server(&[]);
    let decided = server.post_ndjson(&format!(
        "{}\n{}\n",
        simple_order("N-1", "R1", &[("A", 2)], ""),
        simple_order("N-2", "R1", &[("A", 1)], "")
    ));
    let decided = decided.lines();

    // The network, with today's load: every shipment counted at its warehouse and carrier.
    let network = server.get("/v1/network").json();
    let ids = |key: &str| -> Vec<String> {
        network[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids("zones"), ["east", "west"]);
    assert_eq!(ids("warehouses"), ["FAR", "NEAR", "WEST"]);
    assert_eq!(ids("carriers"), ["cheap", "cold", "fast"]);
    // The tiers a load generator may use, with the standard tier every config has.
    assert_eq!(ids("tiers"), ["vip", "standard"]);
    assert_eq!(network["tiers"][0]["min_service"], "express");
    assert_eq!(network["limits"]["max_lines_per_order"], 100);
    let mut shipped: HashMap<String, u64> = HashMap::new();
    let mut carried: HashMap<String, u64> = HashMap::new();
    for decision in &decided {
        for shipment in decision["shipments"].as_array().unwrap() {
            *shipped
                .entry(shipment["warehouse"].as_str().unwrap().to_owned())
                .or_default() += 1;
            *carried
                .entry(shipment["carrier"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
    }
    for warehouse in network["warehouses"].as_array().unwrap() {
        let id = warehouse["id"].as_str().unwrap();
        assert_eq!(
            warehouse["today"]["orders"],
            shipped.get(id).copied().unwrap_or(0),
            "{warehouse}"
        );
    }
    for carrier in network["carriers"].as_array().unwrap() {
        let id = carrier["id"].as_str().unwrap();
        assert_eq!(
            carrier["today"]["pickups"],
            carried.get(id).copied().unwrap_or(0),
            "{carrier}"
        );
    }

    // The catalogue, as a JSON array and as NDJSON.
    let catalog = server.get("/v1/catalog").json();
    assert_eq!(catalog.as_array().unwrap().len(), 4);
    assert_eq!(catalog[2]["sku"], "ICE");
    assert_eq!(catalog[2]["capabilities"][0], "cold_chain");
    let ndjson = server.request_with(
        "GET",
        "/v1/catalog",
        &[("Accept", "application/x-ndjson")],
        b"",
    );
    assert_eq!(ndjson.lines().len(), 4);
    assert_eq!(ndjson.lines()[3]["weight_g"], 15000);

    // Absolute levels in: CSV and NDJSON; the same file twice changes nothing.
    let put = |content_type: &str, body: &str| {
        server.request("PUT", "/v1/stock", content_type, body.as_bytes())
    };
    let a_at = |warehouse: &str| {
        server.get("/v1/stock/A").json()["warehouses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["warehouse"] == warehouse)
            .unwrap()
            .clone()
    };
    let reserved_near = a_at("NEAR")["reserved"].as_u64().unwrap();
    assert!(reserved_near > 0);
    for _ in 0..2 {
        let answer = put("text/csv", "warehouse,sku,on_hand\nNEAR,A,20\nWEST,B,7\n");
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.json()["applied"], 2);
        assert_eq!(a_at("NEAR")["on_hand"], 20);
        assert_eq!(a_at("NEAR")["reserved"], reserved_near);
    }
    let answer = put(
        "application/x-ndjson",
        "{\"warehouse\":\"FAR\",\"sku\":\"A\",\"on_hand\":9}\n",
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(a_at("FAR")["on_hand"], 9);

    // A bad row refuses the whole upload and names its line; nothing applies.
    let answer = put("text/csv", "warehouse,sku,on_hand\nFAR,A,1\nMARS,A,1\n");
    assert_eq!(answer.status, 400);
    assert!(answer.text().contains(":3:"), "{}", answer.text());
    assert!(answer.text().contains("MARS"), "{}", answer.text());
    assert_eq!(a_at("FAR")["on_hand"], 9);
    let answer = put(
        "application/x-ndjson",
        "{\"warehouse\":\"FAR\",\"sku\":\"A\"}\n",
    );
    assert_eq!(answer.status, 400);
    assert!(answer.text().contains("line 1"), "{}", answer.text());
    // Below what is reserved: refused by name (409); the other rows apply.
    let answer = put(
        "text/csv",
        &format!(
            "warehouse,sku,on_hand\nNEAR,A,{}\nFAR,A,3\n",
            reserved_near - 1
        ),
    );
    assert_eq!(answer.status, 409, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["applied"], 1);
    assert_eq!(body["refused"][0]["warehouse"], "NEAR");
    assert_eq!(a_at("NEAR")["on_hand"], 20);
    assert_eq!(a_at("FAR")["on_hand"], 3);

    // And out: every level as CSV.
    let export = server.get("/v1/stock");
    assert_eq!(export.status, 200);
    let text = export.text();
    assert!(text.starts_with("warehouse,sku,on_hand,reserved,available\n"));
    assert!(
        text.contains(&format!("NEAR,A,20,{reserved_near},{}", 20 - reserved_near)),
        "{text}"
    );
}

const READ_TOKEN: &str = "read-token-0123456789";
const INGEST_TOKEN: &str = "ingest-token-0123456789";
const OPS_TOKEN: &str = "ops-token-0123456789abc";

#[test]
fn bearer_tokens_per_role_as_rfc_6750_says() {
    let config = format!(
        "[auth]\nread_tokens = [\"{READ_TOKEN}\"]\ningest_tokens = [\"{INGEST_TOKEN}\"]\nops_tokens = [\"{OPS_TOKEN}\"]\n{GOLDEN}"
    );
    let server = Server::start(&config, GOLDEN_CATALOG, STOCK, &[]);
    let call = |method: &str, path: &str, token: Option<&str>, body: &str| {
        let bearer = token.map(|token| format!("Bearer {token}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(bearer) = &bearer {
            headers.push(("Authorization", bearer.as_str()));
        }
        server.request_with(method, path, &headers, body.as_bytes())
    };
    let order = simple_order("A-1", "R1", &[("A", 1)], "");

    // No token: 401 and a challenge; a wrong one: 401 invalid_token.
    let answer = call("POST", "/v1/orders", None, &order);
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.header("www-authenticate"),
        Some("Bearer realm=\"order-router\"")
    );
    let answer = call("POST", "/v1/orders", Some("not-a-token-at-all"), &order);
    assert_eq!(answer.status, 401);
    assert!(
        answer
            .header("www-authenticate")
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    // Too low a role: 403 insufficient_scope, naming the role needed.
    let answer = call("POST", "/v1/orders", Some(READ_TOKEN), &order);
    assert_eq!(answer.status, 403);
    let challenge = answer.header("www-authenticate").unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\"ingest\""), "{challenge}");
    assert_eq!(server.get("/v1/orders/A-1").status, 401);

    // The right roles pass; roles include the ones below them.
    assert_eq!(
        call("POST", "/v1/orders", Some(INGEST_TOKEN), &order).status,
        200
    );
    assert_eq!(
        call("GET", "/v1/orders/A-1", Some(READ_TOKEN), "").status,
        200
    );
    assert_eq!(
        call("GET", "/v1/orders/A-1", Some(INGEST_TOKEN), "").status,
        200
    );
    assert_eq!(
        call("POST", "/v1/orders/A-1/cancel", Some(INGEST_TOKEN), "").status,
        403
    );
    assert_eq!(
        call("POST", "/v1/orders/A-1/cancel", Some(OPS_TOKEN), "").status,
        200
    );

    // The role follows the route the router matched, not the raw path: percent-encoded
    // paths are the same routes and need the same tokens.
    assert_eq!(call("GET", "/%761/orders/A-1", None, "").status, 401);
    assert_eq!(call("POST", "/%761/admin/reload", None, "").status, 401);
    assert_eq!(call("POST", "/%761/orders", None, &order).status, 401);
    assert_eq!(call("GET", "/%761/decisions", None, "").status, 401);
    assert_eq!(
        call("POST", "/v1/orders/A-1/cance%6C", Some(INGEST_TOKEN), "").status,
        403
    );
    assert_eq!(call("GET", "/v1/stock", Some(READ_TOKEN), "").status, 200);
    assert_eq!(
        call(
            "PUT",
            "/v1/stock",
            Some(READ_TOKEN),
            "warehouse,sku,on_hand\n"
        )
        .status,
        403
    );

    // Health, readiness and metrics need no token.
    assert_eq!(server.get("/healthz").status, 200);
    assert_eq!(server.get("/readyz").status, 200);
    assert_eq!(server.get("/metrics").status, 200);
}

#[test]
fn without_tokens_the_service_will_not_listen_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_order-router"))
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0"),
        "{stderr}"
    );
    assert!(stderr.contains("[auth]"), "{stderr}");
}

fn warehouse_of(server: &Server, id: &str) -> String {
    let answer = server.post_ndjson(&format!("{}\n", simple_order(id, "R1", &[("A", 1)], "")));
    answer.lines()[0]["shipments"][0]["warehouse"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn config_reloads_live_refusing_bad_files_and_restart_only_changes() {
    // The file watcher would race the explicit reloads below; it has its own test.
    let server = golden_server(&["--no-watch-config"]);
    let config_path = server.dir.path().join("router.toml");
    assert_eq!(warehouse_of(&server, "R-1"), "NEAR");
    let reload = || server.post_json("/v1/admin/reload", "");

    // Unchanged file: nothing to do.
    let answer = reload();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["status"], "unchanged");

    // A good change applies to the next orders, and says what changed.
    let near_disabled = GOLDEN.replacen("rank = 2", "rank = 2\nenabled = false", 1);
    std::fs::write(&config_path, &near_disabled).unwrap();
    let answer = reload();
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["status"], "applied");
    assert_eq!(answer.json()["changed"][0], "warehouses[NEAR]");
    assert_eq!(warehouse_of(&server, "R-2"), "FAR");
    // An order decided before the reload is still answered as it was decided.
    let old = server.get("/v1/orders/R-1").json();
    assert_eq!(old["decision"]["shipments"][0]["warehouse"], "NEAR");

    // A file that does not validate is refused with its problems located; the old config
    // keeps serving.
    std::fs::write(
        &config_path,
        near_disabled.replace("split_weight", "split_wieght"),
    )
    .unwrap();
    let answer = reload();
    assert_eq!(answer.status, 422);
    let body = answer.json();
    assert_eq!(body["status"], "refused");
    let problem = body["problems"][0].as_str().unwrap();
    assert!(problem.contains("router.toml:"), "{problem}");
    assert!(problem.contains("split_wieght"), "{problem}");
    assert_eq!(warehouse_of(&server, "R-3"), "FAR");

    // What only a restart can change is refused by name.
    let moved = near_disabled.replacen(
        "zone = \"east\"\nlat = 30.1",
        "zone = \"west\"\nlat = 30.1",
        1,
    );
    assert_ne!(moved, near_disabled);
    std::fs::write(&config_path, &moved).unwrap();
    let answer = reload();
    assert_eq!(answer.status, 422);
    let body = answer.json();
    assert_eq!(body["problems"][0], "warehouses[NEAR].zone");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("restart")
    );
    let streams = near_disabled.replacen(
        "max_shipments = 3",
        "max_shipments = 3\n\n[limits]\nmax_streams = 7",
        1,
    );
    std::fs::write(&config_path, &streams).unwrap();
    assert_eq!(reload().json()["problems"][0], "limits.max_streams");

    // Fallbacks and alerts reload too.
    std::fs::write(
        &config_path,
        near_disabled.replace("fallback = [\"west\"]", "fallback = []"),
    )
    .unwrap();
    let answer = reload().json();
    assert_eq!(answer["status"], "applied", "{answer}");
    assert_eq!(answer["changed"][0], "zones[east]");
    std::fs::write(
        &config_path,
        near_disabled.replace("fallback = [\"west\"]", "fallback = []")
            + "\n[alerts]\nbottleneck_share = 0.5\n",
    )
    .unwrap();
    assert_eq!(reload().json()["changed"][0], "alerts");

    // SIGHUP reloads too. Waiting on the reload count, not on orders: an order placed
    // before the reload would use up stock, and could end up anywhere once it ran out.
    std::fs::write(&config_path, GOLDEN).unwrap();
    let applied = reloads(&server, "applied");
    server.signal(libc::SIGHUP);
    wait_for("a reload on SIGHUP", || {
        reloads(&server, "applied") > applied
    });
    assert_eq!(warehouse_of(&server, "R-h"), "NEAR");
}

#[test]
fn a_reload_cannot_take_the_tokens_away() {
    let with_tokens = format!("[auth]\nops_tokens = [\"{OPS_TOKEN}\"]\n{GOLDEN}");
    let server = Server::start(&with_tokens, GOLDEN_CATALOG, STOCK, &["--no-watch-config"]);
    std::fs::write(server.dir.path().join("router.toml"), GOLDEN).unwrap();
    let bearer = format!("Bearer {OPS_TOKEN}");
    let answer = server.request_with(
        "POST",
        "/v1/admin/reload",
        &[("Authorization", bearer.as_str())],
        b"",
    );
    assert_eq!(answer.status, 422, "{}", answer.text());
    assert_eq!(answer.json()["problems"][0], "auth (removing every token)");
    // Still enforced.
    assert_eq!(server.get("/v1/network").status, 401);
}

#[test]
fn a_changed_config_file_is_picked_up_without_being_asked() {
    let server = golden_server(&[]);
    let config_path = server.dir.path().join("router.toml");
    assert_eq!(warehouse_of(&server, "W-0"), "NEAR");
    // Written the way editors do: a new file renamed over the old one.
    let staging = server.dir.path().join(".router.toml.swp");
    std::fs::write(
        &staging,
        GOLDEN.replacen("rank = 2", "rank = 2\nenabled = false", 1),
    )
    .unwrap();
    std::fs::rename(&staging, &config_path).unwrap();
    // Waiting on the reload count, not on orders: orders placed while waiting would use up
    // NEAR's stock, and an order could then go to FAR with NEAR still enabled.
    wait_for("a reload of the renamed file", || {
        reloads(&server, "applied") == 1.0
    });
    assert_eq!(warehouse_of(&server, "W-1"), "FAR");

    // Reading the file is not changing it: the watcher sees it opened (and a reload opens
    // it too), but nothing reloads until the file is new again. This once looped for ever,
    // a reload every 300 ms.
    let all_reloads = |server: &Server| -> f64 {
        ["applied", "unchanged", "refused"]
            .iter()
            .map(|outcome| reloads(server, outcome))
            .sum()
    };
    let settled = all_reloads(&server);
    assert_eq!(settled, 1.0, "only the one reload of the renamed file");
    // Sleeping on purpose: this proves that nothing happens. Each pause is longer than the
    // watcher's debounce (300 ms), so a reload started by a read (or by the reload's own
    // read, as in the loop) would land inside the window.
    for _ in 0..3 {
        std::fs::read_to_string(&config_path).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(400));
    }
    // ...and a little longer after the last read, for a reload that one would start.
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert_eq!(all_reloads(&server), settled);
}

#[test]
fn the_decision_feed_has_every_event_once_in_order_and_resumes_from_a_cursor() {
    // NEAR takes 4 orders a day and warns at half of that.
    let config = GOLDEN.replacen(
        "daily_orders = 0\nhandling_hours = 2.0",
        "daily_orders = 4\nhandling_hours = 2.0",
        1,
    ) + "\n[alerts]\nbottleneck_share = 0.5\n";
    let server = Server::start(&config, GOLDEN_CATALOG, STOCK, &[]);
    let body: String = (0..3)
        .map(|index| simple_order(&format!("F-{index}"), "R1", &[("A", 1)], "") + "\n")
        .collect();
    // One request each, so the capacity check after each decided chunk sees them one by one.
    for line in body.lines() {
        server.post_ndjson(&format!("{line}\n"));
    }
    // Retries and invalid lines are not news.
    server.post_ndjson(&format!("{body}not json\n"));
    assert_eq!(server.post_json("/v1/orders/F-0/cancel", "").status, 200);
    assert_eq!(server.post_json("/v1/orders/F-1/shipped", "").status, 200);

    let feed = server.get("/v1/decisions").lines();
    let events: Vec<(u64, String, String)> = feed
        .iter()
        .map(|entry| {
            (
                entry["cursor"].as_u64().unwrap(),
                entry["event"].as_str().unwrap().to_owned(),
                entry["order_id"]
                    .as_str()
                    .or(entry["id"].as_str())
                    .unwrap_or("")
                    .to_owned(),
            )
        })
        .collect();
    let expected = [
        (0, "decision", "F-0"),
        (1, "decision", "F-1"),
        // The second order to NEAR is half its day: one warning, once.
        (2, "bottleneck", "NEAR"),
        (3, "decision", "F-2"),
        (4, "cancelled", "F-0"),
        (5, "shipped", "F-1"),
    ];
    let expected: Vec<(u64, String, String)> = expected
        .iter()
        .map(|(cursor, event, id)| (*cursor, event.to_string(), id.to_string()))
        .collect();
    assert_eq!(events, expected, "{feed:#?}");
    assert_eq!(feed[0]["status"], "routed");
    assert_eq!(feed[0]["shipments"][0]["warehouse"], "NEAR");
    assert_eq!(feed[2]["kind"], "warehouse");
    assert_eq!(feed[2]["used"], 2);
    assert_eq!(feed[2]["capacity"], 4);
    assert_eq!(feed[4]["state"], "cancelled");
    let metrics = server.get("/metrics").text().to_owned();
    assert!(
        metrics.contains("router_bottleneck_warnings_total{kind=\"warehouse\"} 1"),
        "{metrics}"
    );

    // Resumed from any cursor: exactly the entries from there.
    let resumed = server.get("/v1/decisions?cursor=3").lines();
    assert_eq!(resumed, feed[3..].to_vec());
    assert!(server.get("/v1/decisions?cursor=6").body.is_empty());

    // Live tail: a reader waiting at the end gets the next entry as it is made.
    let mut tail = server.connect();
    tail.write_all(
        b"GET /v1/decisions?cursor=6&follow=true HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    // The head is sent once the feed was read at the cursor and found nothing new: from
    // then on the reader is waiting at the end.
    let mut raw = Vec::new();
    read_until_head(&mut tail, &mut raw);
    server.post_ndjson(&format!("{}\n", simple_order("F-9", "R2", &[("A", 1)], "")));
    let live = read_until_lines(&mut tail, &mut raw, 1);
    assert_eq!(live[0]["cursor"], 6);
    assert_eq!(live[0]["order_id"], "F-9");
}

#[test]
fn a_line_over_the_limit_is_refused_and_the_stream_goes_on() {
    let server = golden_server(&[]);
    let long = format!("{{\"id\":\"L-long\",\"note\":\"{}\"}}", "x".repeat(200_000));
    let body = format!(
        "{}\n{long}\n{}\n",
        simple_order("L-a", "R1", &[("A", 1)], ""),
        simple_order("L-b", "R1", &[("A", 1)], "")
    );
    let answers = server.post_ndjson(&body).lines();
    assert_eq!(answers.len(), 3);
    assert_eq!(answers[0]["order_id"], "L-a");
    assert_eq!(answers[1]["status"], "invalid");
    assert_eq!(answers[1]["line"], 2);
    assert_eq!(answers[1]["error"]["code"], "line_too_long");
    assert_eq!(answers[2]["order_id"], "L-b");
    assert_eq!(answers[2]["status"], "routed");
}

#[test]
fn concurrent_streams_under_tight_admission_break_no_invariant() {
    // Eight orders in flight at most, two of them kept for priority: four streams of mixed
    // standard and express orders must wait for each other, and every order is still
    // answered once, in order, with stock that adds up.
    let config = GOLDEN.replacen(
        "max_shipments = 3",
        "max_shipments = 3\n\n[limits]\nmax_orders_in_flight = 8\npriority_reserve = 2",
        1,
    );
    let server = Server::start(&config, GOLDEN_CATALOG, STOCK, &[]);
    let streams: Vec<String> = (0..4)
        .map(|stream| {
            (0..300)
                .map(|index| {
                    let (sku, qty) = [("A", 1), ("B", 1), ("ICE", 1), ("A", 2)][index % 4];
                    let region = ["R1", "R2"][(index / 4) % 2];
                    let extra = if index % 7 == 0 {
                        r#","service":"express""#
                    } else {
                        ""
                    };
                    simple_order(&format!("C{stream}-{index}"), region, &[(sku, qty)], extra) + "\n"
                })
                .collect()
        })
        .collect();
    let send_all = |streams: &[String]| -> Vec<Vec<Value>> {
        std::thread::scope(|scope| {
            let handles: Vec<_> = streams
                .iter()
                .map(|body| scope.spawn(|| server.post_ndjson(body).lines()))
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().unwrap())
                .collect()
        })
    };
    let first = send_all(&streams);
    let mut placed: HashMap<(String, String), u64> = HashMap::new();
    for (stream, answers) in first.iter().enumerate() {
        assert_eq!(answers.len(), 300);
        for (index, answer) in answers.iter().enumerate() {
            assert_eq!(answer["order_id"], format!("C{stream}-{index}"), "{answer}");
            assert!(answer.get("duplicate").is_none(), "{answer}");
            for shipment in answer["shipments"].as_array().unwrap() {
                for line in shipment["lines"].as_array().unwrap() {
                    *placed
                        .entry((
                            shipment["warehouse"].as_str().unwrap().to_owned(),
                            line["sku"].as_str().unwrap().to_owned(),
                        ))
                        .or_default() += line["qty"].as_u64().unwrap();
                }
            }
        }
    }
    // Stock: reserved equals what the decisions placed and never exceeds on hand.
    for sku in ["A", "B", "ICE"] {
        let stock = server.get(&format!("/v1/stock/{sku}")).json();
        for row in stock["warehouses"].as_array().unwrap() {
            let warehouse = row["warehouse"].as_str().unwrap().to_owned();
            let expected = placed
                .get(&(warehouse, sku.to_owned()))
                .copied()
                .unwrap_or(0);
            assert_eq!(row["reserved"], expected, "{stock}");
            assert!(
                row["reserved"].as_u64() <= row["on_hand"].as_u64(),
                "{stock}"
            );
        }
    }
    // Everything was decided and given back its permits (a permit comes back just after
    // its answer is written, so possibly after the client read it).
    wait_for("every permit given back", || {
        server.get("/readyz").json()["orders_in_flight"] == 0
    });
    // Sent again, concurrently: all duplicates, same decisions.
    let again = send_all(&streams);
    assert_eq!(again.len(), first.len());
    for (first, again) in first.iter().zip(&again) {
        assert_eq!(again.len(), first.len());
        for (first, again) in first.iter().zip(again) {
            assert_eq!(again["duplicate"], true);
            assert_eq!(without_duplicate_flag(again.clone()), *first);
        }
    }
}

/// Orders whose home zone cannot place them travel the fallback chain from one zone shard
/// to the next (each zone on its own thread): decided in the zone that holds the stock,
/// found there again by duplicates in the same stream and on another connection, refused
/// as an id conflict when a retry changes its region (and so its home zone), read, and
/// cancelled with its units released in the zone that reserved them.
#[test]
fn orders_travel_the_fallback_chain_between_zone_shards() {
    fallback_chain(&["--zone-threads", "2"]);
}

/// The same with the zones seated on the HTTP workers' threads (`--zone-threads 0`), one
/// zone on each of two workers: a chunk's orders reach the zone on their own worker's
/// thread directly and cross to the other worker's, and every answer is the same.
#[test]
fn orders_travel_the_fallback_chain_between_zones_seated_on_the_http_workers() {
    fallback_chain(&["--zone-threads", "0", "--workers", "2"]);
}

/// And with one worker (`--zone-threads 0 --workers 1`): every zone and every connection
/// on one thread, a zone's hand-off to the next zone of the chain a message to an actor of
/// the same thread.
#[test]
fn orders_travel_the_fallback_chain_with_every_zone_on_the_one_http_worker() {
    fallback_chain(&["--zone-threads", "0", "--workers", "1"]);
}

fn fallback_chain(flags: &[&str]) {
    // The east (home of R1) has B only; the west (home of R2, no fallback) has A only.
    let stock = "warehouse,sku,on_hand\nWEST,A,10\nNEAR,B,5\n";
    let server = Server::start(GOLDEN, GOLDEN_CATALOG, stock, flags);
    let fallback = simple_order("X-1", "R1", &[("A", 2)], "");
    let body = [
        fallback.clone(),
        // A duplicate right behind its original: it follows it along the chain.
        fallback.clone(),
        simple_order("X-2", "R2", &[("B", 1)], ""),
        simple_order("X-3", "R2", &[("A", 1)], ""),
        // The same id to another region: another home zone, and an id conflict.
        simple_order("X-1", "R2", &[("A", 2)], ""),
        simple_order("X-4", "R1", &[("B", 1)], ""),
    ]
    .join("\n");
    let answers = server.post_ndjson(&body).lines();
    assert_eq!(answers.len(), 6, "{answers:?}");
    assert_eq!(answers[0]["order_id"], "X-1");
    assert_eq!(answers[0]["status"], "routed");
    assert_eq!(answers[0]["zone"], "west");
    assert_eq!(answers[0]["shipments"][0]["warehouse"], "WEST");
    assert_eq!(answers[1]["duplicate"], true, "{}", answers[1]);
    assert_eq!(without_duplicate_flag(answers[1].clone()), answers[0]);
    // The west has no B and no fallback: the order settles there, with nothing placed.
    assert_eq!(answers[2]["zone"], "west");
    assert_ne!(answers[2]["status"], "routed");
    assert!(answers[2]["shipments"].as_array().unwrap().is_empty());
    assert_eq!(answers[3]["zone"], "west");
    assert_eq!(answers[3]["status"], "routed");
    assert_eq!(answers[4]["status"], "invalid");
    assert_eq!(answers[4]["line"], 5);
    assert_eq!(answers[4]["error"]["code"], "id_conflict");
    assert_eq!(answers[5]["zone"], "east");
    assert_eq!(answers[5]["shipments"][0]["warehouse"], "NEAR");

    // On another connection: the east passes the retry to the west, which holds the record.
    let again = server.post_ndjson(&format!("{fallback}\n")).lines();
    assert_eq!(again[0]["duplicate"], true);
    assert_eq!(without_duplicate_flag(again[0].clone()), answers[0]);
    let single = server.post_json("/v1/orders", &fallback);
    assert_eq!(single.status, 200);
    assert_eq!(single.json()["duplicate"], true);

    let order = server.get("/v1/orders/X-1").json();
    assert_eq!(order["state"], "live");
    assert_eq!(order["decision"]["zone"], "west");
    let stock_a = server.get("/v1/stock/A").json();
    assert_eq!(stock_a["reserved"], 3, "{stock_a}");
    let cancelled = server.request("POST", "/v1/orders/X-1/cancel", "", b"");
    assert_eq!(cancelled.status, 200);
    let stock_a = server.get("/v1/stock/A").json();
    assert_eq!(stock_a["reserved"], 1, "{stock_a}");
    let west = stock_a["warehouses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|cell| cell["warehouse"] == "WEST")
        .unwrap()
        .clone();
    assert_eq!(west["reserved"], 1);
    assert_eq!(server.get("/v1/orders/X-9").status, 404);
}

/// With the zone shards stalled (the hidden fault-injection flag holds them while a file
/// exists), a stream's chunk holds every standard permit: a standard order is answered 429
/// with `Retry-After`, an express one still gets in through the priority reserve, and once
/// the shards go on every admitted order is decided and the permits come back.
#[test]
fn under_a_stalled_shard_standard_orders_get_429_and_express_ones_get_in() {
    let config = GOLDEN.replacen(
        "max_shipments = 3",
        "max_shipments = 3\n\n[limits]\nmax_orders_in_flight = 4\npriority_reserve = 2",
        1,
    );
    let dir = tempfile::tempdir().unwrap();
    let hold = dir.path().join("hold");
    std::fs::write(&hold, b"").unwrap();
    let hold_flag = hold.to_str().unwrap();
    let server = Server::start(
        &config,
        GOLDEN_CATALOG,
        STOCK,
        &["--debug-hold-shards-while", hold_flag],
    );
    // One chunk of two standard orders takes both standard permits.
    let mut stream = open_stream(&server);
    let chunk = format!(
        "{}\n{}\n",
        simple_order("S-1", "R1", &[("A", 1)], ""),
        simple_order("S-2", "R1", &[("A", 1)], "")
    );
    write_chunk(&mut stream, chunk.as_bytes());
    wait_for("the chunk's admission (2 orders in flight)", || {
        server.get("/readyz").json()["orders_in_flight"] == 2
    });

    let standard = server.post_json("/v1/orders", &simple_order("S-3", "R1", &[("A", 1)], ""));
    assert_eq!(standard.status, 429);
    assert_eq!(standard.header("retry-after"), Some("1"));
    assert_eq!(standard.json()["error"]["code"], "overloaded");
    let metrics = server.get("/metrics").text().to_owned();
    assert!(
        metrics.contains("router_requests_throttled_total 1"),
        "{metrics}"
    );

    // The express order is admitted (its answer waits for the shards).
    let express_order = simple_order("E-1", "R1", &[("A", 1)], r#","service":"express""#);
    let express = {
        let addr = server.addr;
        std::thread::spawn(move || {
            let mut connection = TcpStream::connect(addr).unwrap();
            let request = format!(
                "POST /v1/orders HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{express_order}",
                express_order.len()
            );
            connection.write_all(request.as_bytes()).unwrap();
            let mut raw = Vec::new();
            connection.read_to_end(&mut raw).unwrap();
            common::server::Response::parse(&raw)
        })
    };
    wait_for(
        "the express order's admission into the reserve (3 orders in flight)",
        || server.get("/readyz").json()["orders_in_flight"] == 3,
    );

    // The shards go on: everything admitted is decided, and the permits come back.
    std::fs::remove_file(&hold).unwrap();
    let express = express.join().unwrap();
    assert_eq!(express.status, 200);
    assert_eq!(express.json()["status"], "routed");
    write_chunk(&mut stream, b"");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let answers = common::server::Response::parse(&raw).lines();
    assert_eq!(answers.len(), 2);
    assert!(answers.iter().all(|answer| answer["status"] == "routed"));
    wait_for("every permit given back (0 orders in flight)", || {
        server.get("/readyz").json()["orders_in_flight"] == 0
    });
    let standard = server.post_json("/v1/orders", &simple_order("S-3", "R1", &[("A", 1)], ""));
    assert_eq!(standard.status, 200);
}

#[test]
fn shipments_in_one_request_ship_each_order_and_refuse_each_bad_line_alone() {
    let server = golden_server(&[]);
    // S-1, S-2 and S-3 to the east zone (NEAR holds 10 A), S-4 to the west (WEST).
    let orders: String = [
        ("S-1", "R1", 2),
        ("S-2", "R1", 3),
        ("S-3", "R1", 1),
        ("S-4", "R2", 4),
    ]
    .iter()
    .map(|(id, region, units)| simple_order(id, region, &[("A", *units)], "") + "\n")
    .collect();
    let decisions = server.post_ndjson(&orders).lines();
    assert!(
        decisions
            .iter()
            .all(|decision| decision["status"] == "routed"),
        "{decisions:#?}"
    );
    assert_eq!(server.post_json("/v1/orders/S-3/cancel", "").status, 200);
    let on_hand = |server: &Server, warehouse: &str| {
        server.get("/v1/stock/A").json()["warehouses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["warehouse"] == warehouse)
            .map(|row| {
                (
                    row["on_hand"].as_u64().unwrap(),
                    row["reserved"].as_u64().unwrap(),
                )
            })
            .unwrap()
    };
    assert_eq!(on_hand(&server, "NEAR"), (10, 5));
    assert_eq!(on_hand(&server, "WEST"), (100, 4));

    let body = concat!(
        "{\"id\":\"S-1\"}\n",
        "{\"id\":\"S-3\",\"carrier_ref\":\"X\"}\n", // cancelled; an unknown field is ignored
        "not json\n",
        "{\"sku\":\"A\"}\n",
        "{\"id\":\"S-4\"}\r\n",
        "{\"id\":\"S-1\"}\n", // shipped two lines ago
        "\n",
        "{\"id\":\"NOPE\"}\n",
        "{\"id\":\"S-2\"}", // no final newline
    );
    let post_shipments = |server: &Server, body: &str| {
        server.request(
            "POST",
            "/v1/shipments",
            "application/x-ndjson",
            body.as_bytes(),
        )
    };
    let answer = post_shipments(&server, body);
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("content-type"), Some("application/x-ndjson"));
    let lines = answer.lines();
    assert_eq!(lines.len(), 9, "one answer per line: {lines:#?}");
    for (index, line) in lines.iter().enumerate() {
        assert_eq!(line["line"], index as u64 + 1, "{line}");
    }
    let shipped = |line: &serde_json::Value, id: &str| {
        assert_eq!(line["order_id"], id, "{line}");
        assert_eq!(line["state"], "shipped", "{line}");
        assert!(line.get("error").is_none(), "{line}");
    };
    let refused = |line: &serde_json::Value, code: &str| {
        assert_eq!(line["status"], "error", "{line}");
        assert_eq!(line["error"]["code"], code, "{line}");
        assert!(line.get("state").is_none(), "{line}");
    };
    shipped(&lines[0], "S-1");
    refused(&lines[1], "not_live");
    assert_eq!(lines[1]["order_id"], "S-3");
    assert!(
        lines[1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cancelled"),
        "{}",
        lines[1]
    );
    refused(&lines[2], "bad_json");
    refused(&lines[3], "missing_field");
    shipped(&lines[4], "S-4");
    // Shipped two lines before: so it is, and said (a wave sent again is answered whole).
    shipped(&lines[5], "S-1");
    assert_eq!(lines[5]["already"], true);
    assert!(lines[0].get("already").is_none());
    refused(&lines[6], "bad_json");
    refused(&lines[7], "unknown_order");
    assert_eq!(lines[7]["order_id"], "NOPE");
    shipped(&lines[8], "S-2");

    // The shipped units left on-hand and their reservations with them; S-3's were released.
    assert_eq!(on_hand(&server, "NEAR"), (5, 0));
    assert_eq!(on_hand(&server, "WEST"), (96, 0));
    assert_eq!(server.get("/v1/orders/S-2").json()["state"], "shipped");
    // Each shipment is on the feed once, after the cancel.
    let events: Vec<(String, String)> = server
        .get("/v1/decisions")
        .lines()
        .iter()
        .skip(4)
        .map(|entry| {
            let event = entry["event"].as_str().unwrap().to_owned();
            (event, entry["order_id"].as_str().unwrap().to_owned())
        })
        .collect();
    let mut shipments = events[1..].to_vec();
    shipments.sort();
    assert_eq!(events[0], ("cancelled".to_owned(), "S-3".to_owned()));
    assert_eq!(
        shipments,
        [("shipped", "S-1"), ("shipped", "S-2"), ("shipped", "S-4")]
            .map(|(event, id)| (event.to_owned(), id.to_owned()))
    );

    // Durable once answered: a restart from the journal finds them shipped.
    let server = server.kill_and_restart(&[]);
    for id in ["S-1", "S-2", "S-4"] {
        assert_eq!(
            server.get(&format!("/v1/orders/{id}")).json()["state"],
            "shipped",
            "{id}"
        );
    }
    assert_eq!(server.get("/v1/orders/S-3").json()["state"], "cancelled");
    assert_eq!(on_hand(&server, "NEAR"), (5, 0));
    assert_eq!(on_hand(&server, "WEST"), (96, 0));
    // The wave sent again after the restart: every shipment already so, nothing taken twice.
    let again = post_shipments(&server, "{\"id\":\"S-1\"}\n{\"id\":\"S-3\"}\n").lines();
    shipped(&again[0], "S-1");
    assert_eq!(again[0]["already"], true);
    refused(&again[1], "not_live");
    assert_eq!(on_hand(&server, "NEAR"), (5, 0));

    // Too many shipments in one request: refused whole, nothing read as a shipment.
    let many = "{\"id\":\"S-9\"}\n".repeat(10_001);
    let answer = post_shipments(&server, &many);
    assert_eq!(answer.status, 413, "{}", answer.text());
    assert_eq!(answer.json()["error"]["code"], "too_many_shipments");
}

#[test]
fn a_backed_up_streams_batch_waits_for_more_and_nothing_is_lost() {
    // The zones stall, so nothing admitted is answered and the stream's backlog only grows.
    let dir = tempfile::tempdir().unwrap();
    let hold = dir.path().join("hold");
    std::fs::write(&hold, b"").unwrap();
    let server = golden_server(&["--debug-hold-shards-while", hold.to_str().unwrap()]);
    let in_flight = || {
        server.get("/readyz").json()["orders_in_flight"]
            .as_u64()
            .unwrap()
    };
    let orders = |from: usize, count: usize| -> String {
        (from..from + count)
            .map(|n| simple_order(&format!("G-{n}"), "R1", &[("A", 1)], "") + "\n")
            .collect()
    };
    let mut stream = open_stream(&server);
    // Below the mark (1,024 orders in flight, limits::STREAM_GATHER_BACKLOG) every batch goes
    // as it comes.
    write_chunk(&mut stream, orders(0, 1024).as_bytes());
    wait_for("the first 1,024 orders' admission", || in_flight() == 1024);
    // At the mark, what comes next waits for more of the body.
    write_chunk(&mut stream, orders(1024, 10).as_bytes());
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        in_flight(),
        1024,
        "ten orders held while the stream is backed up"
    );
    // A full batch (512 KiB, limits::STREAM_BATCH_BYTES) goes all the same; what follows it
    // waits again.
    let more = orders(1034, 6000);
    assert!(more.len() > 512 << 10 && more.len() < 1 << 20);
    write_chunk(&mut stream, more.as_bytes());
    wait_for("a full batch's admission", || in_flight() > 1034);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let admitted = in_flight();
    assert!(
        admitted > 1034 + 4000 && admitted < 7034,
        "one batch of about 4,800 orders went, the rest waits: {admitted} in flight"
    );
    // The zones go on: as the backlog falls, the held orders go, and every order is answered
    // once, in input order.
    std::fs::remove_file(&hold).unwrap();
    write_chunk(&mut stream, b"");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let answers = common::server::Response::parse(&raw).lines();
    assert_eq!(answers.len(), 7034);
    for (n, answer) in answers.iter().enumerate() {
        assert_eq!(answer["order_id"], format!("G-{n}"), "{answer}");
    }
    wait_for("every permit given back", || in_flight() == 0);
    // The full batch shows in the batch-size histogram: over 4,096 lines in one batch.
    let batches = metric(&server, "router_stream_batch_lines_count");
    let small = metric(&server, "router_stream_batch_lines_bucket{le=\"4096\"}");
    assert_eq!(metric(&server, "router_stream_batch_lines_sum"), 7034.0);
    assert_eq!(batches - small, 1.0, "one batch of 512 KiB");
}
