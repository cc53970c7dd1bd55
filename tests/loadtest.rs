//! Issue 5's acceptance run: the load tester's smoke scenario against the real router,
//! serving a network the scenario was not written for (the golden test network: two zones,
//! regions R1 and R2, four SKUs, tiers standard and vip). Every order must be decided, none
//! lost, reserved stock equal to the decisions, and the report must carry its keys.

mod common;

use common::server::Server;
use common::{GOLDEN, GOLDEN_CATALOG};
use loadtest::limit::{LimitOptions, limit};
use loadtest::run::{RunOptions, run};
use loadtest::scenario::{Mix, Scenario};
use loadtest::target::Target;
use std::path::Path;
use std::time::Duration;

/// Plenty of stock in every warehouse: most orders are routed, the rest backordered or
/// rejected by the network's rules (cold chain only from FAR and WEST).
const STOCK: &str = "warehouse,sku,on_hand\nNEAR,A,100000\nFAR,A,100000\nWEST,A,100000\nNEAR,B,50000\nWEST,B,50000\nFAR,ICE,20000\nWEST,ICE,20000\nNEAR,HEAVY,5000\n";

fn scenario(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("loadtest/scenarios")
        .join(name);
    Scenario::load(&path).unwrap()
}

/// Fails with the run's failures and problems unless it passed.
fn assert_passed(outcome: &loadtest::run::RunOutcome) {
    assert!(
        outcome.passed(),
        "{:?}\n{}",
        outcome.report.failures,
        outcome.report.json["problems"]
    );
}

/// `scenario` run against `server` at its own rates, the stock checked after.
async fn run_against(
    server: &Server,
    scenario: Scenario,
    report: Option<std::path::PathBuf>,
    chart: Option<std::path::PathBuf>,
) -> loadtest::run::RunOutcome {
    run(RunOptions {
        target: Target::parse(&format!("http://{}", server.addr), None).unwrap(),
        scenario,
        rate_scale: 1.0,
        check_stock: true,
        run_id: None,
        tick: Duration::from_micros(250),
        progress: false,
        report,
        chart,
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_scenario_against_a_network_it_has_never_seen() {
    let server = Server::start(GOLDEN, GOLDEN_CATALOG, STOCK, &[]);
    let report_path = server.dir.path().join("smoke.json");
    let chart_path = server.dir.path().join("smoke.svg");
    let outcome = run_against(
        &server,
        scenario("smoke.toml"),
        Some(report_path.clone()),
        Some(chart_path.clone()),
    )
    .await;
    assert_passed(&outcome);

    // The report as written, with the keys the issue names.
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    let totals = &report["totals"];
    let count = |key: &str| {
        totals[key]
            .as_u64()
            .unwrap_or_else(|| panic!("totals.{key}"))
    };
    // 1 s ramping 500 -> 2,000 (1,250 orders), then 4 s at 2,000.
    assert_eq!(count("offered"), 9_250);
    assert_eq!(count("sent"), 9_250);
    assert_eq!(count("lost"), 0);
    assert_eq!(count("throttled"), 0);
    assert_eq!(
        count("decided") + count("duplicates") + count("invalid"),
        count("sent")
    );
    // Resends (2%) and malformed lines (1%) of the mix, each answered as it must be.
    assert!(
        count("duplicates") > 50 && count("invalid") > 20,
        "{totals}"
    );
    assert!(report["throughput_per_s"].as_f64().unwrap() > 1_000.0);
    for key in ["p50", "p90", "p99", "p999", "max"] {
        assert!(
            report["latency_ms"][key].as_f64().unwrap() > 0.0,
            "latency_ms.{key}"
        );
    }
    let phases = report["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 2);
    assert_eq!(phases[0]["totals"]["sent"], 1_250);
    let series = report["series"].as_array().unwrap();
    assert!(series.len() >= 5, "{} seconds", series.len());
    let offered: u64 = series
        .iter()
        .map(|second| second["offered"].as_u64().unwrap())
        .sum();
    assert_eq!(offered, count("offered"));
    // The server reports its memory; the reserved stock adds up to the decisions.
    assert!(report["memory"]["peak_resident_bytes"].as_u64().unwrap() > 1_000_000);
    assert_eq!(report["stock_check"]["mismatches"], 0);
    assert!(report["stock_check"]["units_shipped"].as_u64().unwrap() > 5_000);
    // The scenario's "plus" tier is not this network's: left out, and said.
    assert!(
        report["notes"][0]
            .as_str()
            .unwrap()
            .contains("mix.tiers.plus")
    );
    let chart = std::fs::read_to_string(&chart_path).unwrap();
    assert!(
        chart.starts_with("<svg") && chart.contains("offered"),
        "{chart:.200}"
    );
}

/// The load tester ships what the router placed (`[ship]`), as a warehouse system does: every
/// chosen shipment accepted by the real router, and the stock check (units reserved plus
/// units consumed equal to the units placed) holding with the shipments taken off on-hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placed_orders_shipped_through_the_real_router_consume_their_stock() {
    ship_through_the_router(1).await;
}

/// The same with the shipments due together sent as one `POST /v1/shipments` (up to 64).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placed_orders_shipped_in_batches_through_the_real_router_consume_their_stock() {
    let server_requests = ship_through_the_router(64).await;
    // Fewer requests than shipments: they went together.
    assert!(server_requests.0 < server_requests.1, "{server_requests:?}");
}

/// `[ship]` for the routed and backordered orders: `share` of them, `delay_s` after their
/// answer, over `connections`, up to `batch` a request.
fn shipping(
    share: f64,
    delay_s: [f64; 2],
    connections: usize,
    batch: usize,
) -> loadtest::scenario::Ship {
    loadtest::scenario::Ship {
        share,
        statuses: vec!["routed".into(), "backordered".into()],
        delay_s: loadtest::scenario::ShipDelay::Range(delay_s),
        connections,
        max_queued: 100_000,
        batch,
    }
}

/// Runs `smoke.toml` against the real router shipping 70% of the placed orders, `batch` a
/// request at most, and checks every one was shipped and the stock adds up. The shipping
/// requests the tool sent and the shipments, for the caller.
async fn ship_through_the_router(batch: usize) -> (u64, u64) {
    let server = Server::start(GOLDEN, GOLDEN_CATALOG, STOCK, &[]);
    let mut scenario = scenario("smoke.toml");
    scenario.ship = Some(shipping(0.7, [0.5, 2.0], 4, batch));
    let outcome = run_against(&server, scenario, None, None).await;
    assert_passed(&outcome);
    let json = &outcome.report.json;
    let shipping = &json["shipping"];
    let chosen = shipping["chosen"].as_u64().unwrap();
    let eligible = shipping["eligible"].as_u64().unwrap();
    // About 70% of the placed orders, every one of them shipped.
    assert!(
        chosen > eligible / 2 && chosen < eligible,
        "{chosen} of {eligible}"
    );
    assert_eq!(shipping["shipped"].as_u64(), Some(chosen), "{shipping}");
    assert_eq!(shipping["failed"], 0, "{shipping}");
    assert_eq!(shipping["batch"], batch, "{shipping}");
    assert_eq!(
        json["stock_check"]["mismatches"], 0,
        "{}",
        json["stock_check"]
    );
    // The router's feed has every shipment once.
    let feed = server.get("/v1/decisions").lines();
    let shipped = feed
        .iter()
        .filter(|entry| entry["event"] == "shipped")
        .count() as u64;
    assert_eq!(shipped, chosen);
    (shipping["requests"].as_u64().unwrap(), chosen)
}

/// Resends of orders answered 1.5-3.5 s before (`mix.retry_age_s`): by then most were
/// shipped (0.3-0.6 s after their answer) or rejected, and their records left memory for
/// the zones' cold files; each must still be answered as its original's duplicate, with the
/// original decision (the tool compares it with the original's answer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resends_of_orders_whose_records_left_memory_get_their_original_decisions() {
    let server = Server::start(GOLDEN, GOLDEN_CATALOG, STOCK, &[]);
    let mut scenario = scenario("smoke.toml");
    scenario.mix.retry_share = 0.05;
    scenario.mix.retry_age_s = Some([1.5, 3.5]);
    scenario.ship = Some(shipping(1.0, [0.3, 0.6], 2, 100));
    let outcome = run_against(&server, scenario, None, None).await;
    assert_passed(&outcome);
    let totals = &outcome.report.json["totals"];
    assert_eq!(totals["mismatched"], 0, "{totals}");
    assert!(totals["duplicates"].as_u64().unwrap() > 100, "{totals}");
    // The closed records were on disk while the resends came.
    let on_disk = ["east", "west"]
        .iter()
        .map(|zone| {
            server.metric(&format!(
                "router_zone_records{{zone=\"{zone}\",kept=\"disk\"}}"
            ))
        })
        .sum::<f64>();
    assert!(on_disk > 1_000.0, "{on_disk} records on disk");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_measures_the_router_against_the_bare_endpoint() {
    let server = Server::start(GOLDEN, GOLDEN_CATALOG, STOCK, &["--sync", "none"]);
    let result = limit(LimitOptions {
        target: Target::parse(&format!("http://{}", server.addr), None).unwrap(),
        orders: 5_000,
        streams: 2,
        rounds: 2,
        mix: Mix::default(),
        seed: 3,
    })
    .await
    .unwrap();
    assert_eq!(result.rounds.len(), 2);
    for round in &result.rounds {
        assert!(
            round.bare_per_s > 0.0 && round.router_per_s > 0.0,
            "{round:?}"
        );
        // Every order of the round was answered by the router with a decision status.
        assert_eq!(round.statuses.values().sum::<u64>(), 5_000, "{round:?}");
        assert!(
            round.statuses.keys().all(|status| {
                ["routed", "backordered", "held", "rejected"].contains(&status.as_str())
            }),
            "{round:?}"
        );
    }
    // Every order of both rounds was decided by the router: fresh ids per round.
    let stock = server.get("/metrics").text().to_owned();
    let decided: f64 = stock
        .lines()
        .filter(|line| line.starts_with("router_orders_decided_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(decided, 10_000.0, "{stock}");
}
