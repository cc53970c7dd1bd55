//! The retention window (issue 12): closed records leave memory for the zone's cold store,
//! and records past the window leave altogether. Neither may change an answer given within
//! the window: a router that evicts is run beside one that keeps everything in memory, on
//! the same orders, retries, conflicts, cancels, shipments, reads and clock advances.

mod common;

use common::{GOLDEN, GOLDEN_CATALOG, decide_at, midnight, router, simple_order};
use order_router::model::Decision;
use order_router::route::Router;
use order_router::time::Millis;
use proptest::prelude::*;

const STOCK: &str = "warehouse,sku,on_hand\nNEAR,A,12\nFAR,A,6\nWEST,A,6\nNEAR,B,3\nWEST,B,4\n";

/// The window of these tests: one minute.
const WINDOW: i64 = 60_000;

#[derive(Debug, Clone)]
enum Op {
    New {
        region: bool,
        sku: bool,
        qty: u32,
    },
    Retry(usize),
    Conflict(usize),
    Cancel(usize),
    Ship(usize),
    Read(usize),
    /// Milliseconds.
    Advance(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (any::<bool>(), any::<bool>(), 1..4u32)
            .prop_map(|(region, sku, qty)| Op::New { region, sku, qty }),
        2 => any::<usize>().prop_map(Op::Retry),
        1 => any::<usize>().prop_map(Op::Conflict),
        2 => any::<usize>().prop_map(Op::Cancel),
        2 => any::<usize>().prop_map(Op::Ship),
        1 => any::<usize>().prop_map(Op::Read),
        2 => (0..40_000i64).prop_map(Op::Advance),
    ]
}

/// One order sent so far: its id and line.
struct Sent {
    id: String,
    json: String,
}

/// The two routers and the clock.
struct Pair {
    evicting: Router,
    keeping: Router,
    now: Millis,
    _dir: tempfile::TempDir,
}

impl Pair {
    fn new() -> Pair {
        let dir = tempfile::tempdir().unwrap();
        let mut evicting = router(GOLDEN, GOLDEN_CATALOG, STOCK);
        evicting.keep_closed_on_disk(dir.path()).unwrap();
        Pair {
            evicting,
            keeping: router(GOLDEN, GOLDEN_CATALOG, STOCK),
            now: midnight(),
            _dir: dir,
        }
    }

    /// Whether `id`'s record is surely still kept by the evicting router: decided within
    /// the window, or still holding stock (by the router that keeps everything).
    fn retained(&self, id: &str) -> bool {
        let record = self.keeping.order(id).expect("sent and decided");
        record.is_open() || record.decision.decided_at.0 >= self.now.0 - WINDOW
    }

    fn advance(&mut self, by: i64) {
        self.now = Millis(self.now.0 + by);
        self.evicting.expire(Millis(self.now.0 - WINDOW));
    }
}

/// What an answer says, comparable across the two routers.
fn answered(router: &mut Router, json: &str, now: Millis) -> Result<(Decision, bool), String> {
    decide_at(router, json, now).map_err(|invalid| format!("{invalid:?}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Any interleaving of orders, retries, conflicts, cancels, shipments, reads and clock
    /// advances is answered the same with closed records on disk and old ones let go as
    /// with everything kept in memory, for every order within the window; once the window
    /// has passed, the evicting router keeps exactly the open orders.
    #[test]
    fn evicting_changes_no_answer_within_the_window(ops in proptest::collection::vec(op(), 1..160)) {
        let mut pair = Pair::new();
        let mut sent: Vec<Sent> = Vec::new();
        for op in ops {
            let pick = |k: usize| (!sent.is_empty()).then(|| k % sent.len());
            match op {
                Op::New { region, sku, qty } => {
                    let id = format!("o{}", sent.len());
                    let region = if region { "R1" } else { "R2" };
                    let sku = if sku { "A" } else { "B" };
                    let json = simple_order(&id, region, &[(sku, qty)], "");
                    let now = pair.now;
                    let evicting = answered(&mut pair.evicting, &json, now);
                    let keeping = answered(&mut pair.keeping, &json, now);
                    prop_assert_eq!(&evicting, &keeping);
                    prop_assert!(!evicting.unwrap().1, "a new id is decided");
                    sent.push(Sent { id, json });
                }
                Op::Retry(k) | Op::Conflict(k) => {
                    let Some(k) = pick(k) else { continue };
                    if !pair.retained(&sent[k].id) {
                        continue;
                    }
                    let json = match op {
                        Op::Conflict(_) => sent[k].json.replace("\"qty\":", "\"qty\":1"),
                        _ => sent[k].json.clone(),
                    };
                    let now = pair.now;
                    let evicting = answered(&mut pair.evicting, &json, now);
                    let keeping = answered(&mut pair.keeping, &json, now);
                    prop_assert_eq!(&evicting, &keeping);
                    match op {
                        Op::Conflict(_) => prop_assert!(evicting.is_err(), "an id conflict"),
                        _ => prop_assert!(evicting.unwrap().1, "a retry is a duplicate"),
                    }
                }
                Op::Cancel(k) | Op::Ship(k) => {
                    let Some(k) = pick(k) else { continue };
                    let id = &sent[k].id;
                    if !pair.retained(id) {
                        continue;
                    }
                    let close = |router: &mut Router| {
                        let closed = match op {
                            Op::Cancel(_) => router.cancel(id),
                            _ => router.ship(id),
                        };
                        closed.map_err(|problem| problem.to_string())
                    };
                    let evicting = close(&mut pair.evicting);
                    prop_assert_eq!(evicting, close(&mut pair.keeping));
                }
                Op::Read(k) => {
                    let Some(k) = pick(k) else { continue };
                    let id = &sent[k].id;
                    if !pair.retained(id) {
                        continue;
                    }
                    let evicting = pair.evicting.order(id).map(|record| record.into_owned());
                    let keeping = pair.keeping.order(id).map(|record| record.into_owned());
                    prop_assert_eq!(evicting, keeping);
                }
                Op::Advance(by) => pair.advance(by),
            }
            prop_assert!(pair.evicting.claimed() <= pair.keeping.claimed());
        }
        // The same stock, reserved and on hand.
        for sku in ["A", "B"] {
            let sku = pair.keeping.catalog().lookup(sku).unwrap();
            prop_assert_eq!(pair.evicting.stock_of(sku), pair.keeping.stock_of(sku));
        }
        // Past the window, only the open orders are kept, each as it is.
        pair.advance(2 * WINDOW);
        let open: Vec<&Sent> = sent
            .iter()
            .filter(|sent| pair.keeping.order(&sent.id).unwrap().is_open())
            .collect();
        prop_assert_eq!(pair.evicting.claimed(), open.len());
        for sent in open {
            let evicting = pair.evicting.order(&sent.id).map(|record| record.into_owned());
            let keeping = pair.keeping.order(&sent.id).map(|record| record.into_owned());
            prop_assert_eq!(evicting, keeping);
        }
    }
}

#[test]
fn an_order_past_the_window_is_new_again_and_an_open_one_stays_until_it_ships() {
    let mut pair = Pair::new();
    let open = simple_order("open", "R1", &[("A", 1)], "");
    // A promise one minute after the decision: no carrier meets it.
    let promise = r#","promise_by":"2026-11-11T00:01:00Z""#;
    let rejected = simple_order("rejected", "R1", &[("A", 1)], promise);
    let shipped = simple_order("shipped", "R1", &[("A", 1)], "");
    let now = pair.now;
    for json in [&open, &rejected, &shipped] {
        answered(&mut pair.evicting, json, now).unwrap();
    }
    assert_eq!(
        pair.evicting
            .order("rejected")
            .unwrap()
            .decision
            .status
            .name(),
        "rejected"
    );
    pair.evicting.ship("shipped").unwrap();
    // Within the window: the closed ones answer from disk as duplicates.
    pair.advance(WINDOW / 2);
    let (decision, duplicate) = answered(&mut pair.evicting, &rejected, pair.now).unwrap();
    assert!(duplicate);
    assert_eq!(decision.status.name(), "rejected");
    assert_eq!(decision.decided_at, now, "the original decision");
    assert_eq!(
        pair.evicting.order("shipped").unwrap().lifecycle.name(),
        "shipped"
    );
    assert!(
        pair.evicting
            .ship("shipped")
            .unwrap_err()
            .to_string()
            .contains("already shipped"),
        "a closed order read from disk says what it is"
    );
    // Past it: the closed ones are forgotten; the open one stays, and can still ship.
    pair.advance(WINDOW);
    assert_eq!(pair.evicting.claimed(), 1);
    assert!(pair.evicting.order("shipped").is_none());
    let later = pair.now;
    let (decision, duplicate) = answered(&mut pair.evicting, &rejected, later).unwrap();
    assert!(!duplicate, "an id past the window is new again");
    assert_eq!(decision.decided_at, later);
    assert!(pair.evicting.order("open").unwrap().is_open());
    pair.evicting.ship("open").unwrap();
    pair.advance(1);
    assert!(
        pair.evicting.order("open").is_none(),
        "an open order past the window leaves once it is closed"
    );
}

/// The service end to end: a shipped order's record goes to disk and is still answered, a
/// crash and restart rebuild it, and once the window has passed its id is new again.
#[test]
fn the_service_answers_closed_orders_from_disk_and_forgets_them_after_the_window() {
    use common::server::Server;
    use common::wait_for;
    let stock = "warehouse,sku,on_hand\nNEAR,A,50\n";
    // Snapshots every 8 records: they copy cold records from disk, and a restart reads them.
    // A window of 10 s: the steps before the window passes (a tick to disk, a kill and a
    // restart) take 2-3 s, with room for a slow machine.
    let window = ["--retention-seconds", "10", "--snapshot-every", "8"];
    let server = Server::start(GOLDEN, GOLDEN_CATALOG, stock, &window);
    let lines: Vec<String> = (0..20)
        .map(|n| simple_order(&format!("s{n}"), "R1", &[("A", 1)], ""))
        .collect();
    let first = server.post_ndjson(&lines.join("\n")).lines();
    assert_eq!(first.len(), 20);
    for n in 0..10 {
        let shipped = server.post_json(&format!("/v1/orders/s{n}/shipped"), "");
        assert_eq!(shipped.status, 200, "{}", shipped.text());
    }
    let on_disk =
        |server: &Server| server.metric(r#"router_zone_records{zone="east",kept="disk"}"#);
    wait_for("the shipped orders' records going to disk", || {
        on_disk(&server) == 10.0
    });
    assert_eq!(
        server.metric(r#"router_zone_records{zone="east",kept="memory"}"#),
        10.0
    );
    // Answered from disk: the original decision, as a duplicate; its state, shipped.
    let again = server.post_ndjson(&lines[3]).lines();
    assert_eq!(again[0]["duplicate"], true);
    assert_eq!(again[0]["decided_at"], first[3]["decided_at"]);
    assert_eq!(server.get("/v1/orders/s3").json()["state"], "shipped");
    let refused = server.post_json("/v1/orders/s3/shipped", "");
    assert_eq!(refused.status, 409, "{}", refused.text());
    // A crash: the records come back from the journal, the closed ones to disk again.
    let server = server.kill_and_restart(&window);
    wait_for("the restarted zone's records", || on_disk(&server) > 0.0);
    let after = server.post_ndjson(&lines[4]).lines();
    assert_eq!(after[0]["duplicate"], true);
    assert_eq!(after[0]["decided_at"], first[4]["decided_at"]);
    // Past the window: the shipped ones are forgotten, the open ones kept.
    wait_for("the window passing", || on_disk(&server) == 0.0);
    assert_eq!(server.get("/v1/orders/s3").status, 404);
    assert_eq!(server.get("/v1/orders/s13").json()["state"], "live");
    let new = server.post_ndjson(&lines[3]).lines();
    assert_eq!(new[0]["status"], "routed", "{}", new[0]);
    assert!(
        new[0].get("duplicate").is_none(),
        "an id past the window is new again"
    );
    assert_ne!(new[0]["decided_at"], first[3]["decided_at"]);
    let open = server.post_ndjson(&lines[13]).lines();
    assert_eq!(
        open[0]["duplicate"], true,
        "an open order stays past the window"
    );
}

/// A restart reads closed records where the snapshot file holds them (the cold store adopts
/// the file); the journal's next compaction deletes that file, a few MiB at a time. The
/// file must stay whole while the store reads from it: a resend of an order whose record
/// lies in the snapshot's last MiBs is answered with its original decision after the
/// compaction, not with an error.
#[test]
fn closed_records_adopted_from_a_snapshot_outlive_its_deletion_by_compaction() {
    use common::server::Server;
    use common::wait_for;
    const ORDERS: usize = 40_000;
    let stock = format!("warehouse,sku,on_hand\nNEAR,A,{}\n", ORDERS * 2);
    // A snapshot after every order's record and 30,000 shipments: 30,000 closed records,
    // more than 4 MiB, the step a deletion cuts at a time.
    let server = Server::start(
        GOLDEN,
        GOLDEN_CATALOG,
        &stock,
        &["--snapshot-every", "70000"],
    );
    let lines: Vec<String> = (0..ORDERS)
        .map(|n| simple_order(&format!("a{n}"), "R1", &[("A", 1)], ""))
        .collect();
    let first = server.post_ndjson(&(lines.join("\n") + "\n")).lines();
    assert_eq!(first.len(), ORDERS);
    for wave in 0..3 {
        let ids: String = (wave * 10_000..(wave + 1) * 10_000)
            .map(|n| format!("{{\"id\":\"a{n}\"}}\n"))
            .collect();
        let shipped = server.request(
            "POST",
            "/v1/shipments",
            "application/x-ndjson",
            ids.as_bytes(),
        );
        assert_eq!(shipped.status, 200, "{}", shipped.text());
    }
    let journal = server.dir.path().join("data/zones/east");
    let snapshots = |dir: &std::path::Path| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .map(|entry| entry.unwrap().path())
                    .filter(|path| path.extension().is_some_and(|ext| ext == "snap"))
                    // The empty one every zone starts with is not the one.
                    .filter(|path| !path.ends_with("snapshot-00000000000000000000.snap"))
                    .collect()
            })
            .unwrap_or_default()
    };
    wait_for("the snapshot", || !snapshots(&journal).is_empty());
    let adopted = snapshots(&journal).remove(0);
    assert!(std::fs::metadata(&adopted).unwrap().len() > 5 << 20);
    // A crash: the restart adopts the snapshot's closed records where they are; then a
    // snapshot every 100 records (a zone looks once a message: a request each), and the
    // compaction, which keeps the newest two, deletes the adopted file.
    let server = server.kill_and_restart(&["--snapshot-every", "100"]);
    for request in 0..20 {
        if !adopted.exists() {
            break;
        }
        let more: String = (0..100)
            .map(|n| simple_order(&format!("b{request}-{n}"), "R1", &[("A", 1)], "") + "\n")
            .collect();
        server.post_ndjson(&more);
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    wait_for("the adopted snapshot's deletion", || !adopted.exists());
    // Time for a deletion's steps, had it cut the file.
    std::thread::sleep(std::time::Duration::from_millis(500));
    for n in [29_999, 25_000, 20_000] {
        let again = server.post_ndjson(&format!("{}\n", lines[n])).lines();
        assert_eq!(again[0]["duplicate"], true, "a{n}: {}", again[0]);
        assert_eq!(again[0]["decided_at"], first[n]["decided_at"], "a{n}");
        assert_eq!(
            server.get(&format!("/v1/orders/a{n}")).json()["state"],
            "shipped"
        );
    }
}

/// A closed order whose record on disk can no longer be read (its cold file cut short
/// under it: a disk error, a file damaged) is answered, when it comes again, with a line
/// error that says so, and `GET` with 503; the zone goes on deciding. Before, the read
/// panicked the zone's actor, and every later order of its zone was answered "a zone actor
/// is not running".
#[test]
fn a_resend_whose_record_cannot_be_read_is_answered_unavailable_and_the_zone_goes_on() {
    use common::server::Server;
    use common::wait_for;
    let server = Server::start(
        GOLDEN,
        GOLDEN_CATALOG,
        "warehouse,sku,on_hand\nNEAR,A,50\n",
        &[],
    );
    let lines: Vec<String> = ["gone", "open"]
        .iter()
        .map(|id| simple_order(id, "R1", &[("A", 1)], ""))
        .collect();
    let first = server.post_ndjson(&(lines.join("\n") + "\n")).lines();
    assert_eq!(first[0]["status"], "routed", "{}", first[0]);
    let shipped = server.request(
        "POST",
        "/v1/shipments",
        "application/x-ndjson",
        b"{\"id\":\"gone\"}\n",
    );
    assert_eq!(shipped.lines()[0]["state"], "shipped", "{}", shipped.text());
    // The shipped record goes to the zone's cold file at the next tick.
    let cold = server.dir.path().join("data/cold/east");
    let cold_files = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(&cold)
            .map(|entries| {
                entries
                    .map(|entry| entry.unwrap().path())
                    .filter(|path| path.extension().is_some_and(|ext| ext == "cold"))
                    .filter(|path| std::fs::metadata(path).is_ok_and(|meta| meta.len() > 0))
                    .collect()
            })
            .unwrap_or_default()
    };
    wait_for("the shipped record on disk", || !cold_files().is_empty());
    for file in cold_files() {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .unwrap()
            .set_len(0)
            .unwrap();
    }
    let again = server.post_ndjson(&format!("{}\n", lines[0])).lines();
    assert_eq!(again[0]["status"], "invalid", "{}", again[0]);
    assert_eq!(again[0]["error"]["code"], "unavailable", "{}", again[0]);
    let message = again[0]["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("'gone'") && message.contains("could not be read back"),
        "{message}"
    );
    let read = server.get("/v1/orders/gone");
    assert_eq!(read.status, 503, "{}", read.text());
    assert_eq!(
        read.json()["error"]["code"],
        "unavailable",
        "{}",
        read.text()
    );
    // The zone goes on: an open order's resend, a new order.
    let more = format!(
        "{}\n{}\n",
        lines[1],
        simple_order("new", "R1", &[("A", 1)], "")
    );
    let answers = server.post_ndjson(&more).lines();
    assert_eq!(answers[0]["duplicate"], true, "{}", answers[0]);
    assert_eq!(answers[1]["status"], "routed", "{}", answers[1]);
}

/// An id decided again in another zone once its first record left with the window: a zone
/// with no snapshot since still has that first record in its journal, and a restart
/// replays both zones' records of the id on two threads at once. The later decision must
/// keep the id's claim whichever zone recovered last; had the first one taken it, its
/// window would let the id go at the next tick, and a resend of the order decided in the
/// second zone would be decided (and reserve stock) again. Three restarts: each a new race.
#[test]
#[ignore = "a restarted server exits before listening in about 1 run of 13 (2026-12-08, not yet understood): run with --ignored"]
fn after_a_restart_an_id_decided_again_after_the_window_is_its_later_decisions() {
    use common::server::Server;
    use common::wait_for;
    let stock = "warehouse,sku,on_hand\nNEAR,A,50\nWEST,A,50\n";
    let window = ["--retention-seconds", "2"];
    let server = Server::start(GOLDEN, GOLDEN_CATALOG, stock, &window);
    let east = simple_order("x", "R1", &[("A", 1)], "");
    let first = server.post_ndjson(&east).lines();
    assert_eq!(first[0]["zone"], "east", "{}", first[0]);
    let shipped = server.post_json("/v1/orders/x/shipped", "");
    assert_eq!(shipped.status, 200, "{}", shipped.text());
    wait_for("the shipped order leaving with the window", || {
        server.get("/v1/orders/x").status == 404
    });
    let west = simple_order("x", "R2", &[("A", 2)], "");
    let second = server.post_ndjson(&west).lines();
    assert_eq!(second[0]["zone"], "west", "{}", second[0]);
    assert!(second[0].get("duplicate").is_none(), "{}", second[0]);
    let mut server = server;
    for restart in 0..3 {
        server = server.kill_and_restart(&window);
        let read = server.get("/v1/orders/x");
        assert_eq!(read.status, 200, "restart {restart}: {}", read.text());
        assert_eq!(read.json()["decision"]["zone"], "west", "restart {restart}");
        // Past a tick of the zones' clocks, east's old record gone with its window: the
        // claim still names the west one, and a resend is its duplicate.
        std::thread::sleep(std::time::Duration::from_millis(1_500));
        let again = server.post_ndjson(&west).lines();
        assert_eq!(
            again[0]["duplicate"], true,
            "restart {restart}: {}",
            again[0]
        );
        assert_eq!(again[0]["decided_at"], second[0]["decided_at"]);
    }
}
