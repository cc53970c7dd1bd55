//! The review queue of `order-router serve` (issue 11): held orders listed, approved or
//! rejected over HTTP, journaled (they survive kill -9), on the decision feed, idempotent.

mod common;

use common::server::Server;
use common::{GOLDEN, GOLDEN_CATALOG, simple_order};
use serde_json::Value;

const STOCK: &str = "warehouse,sku,on_hand\nNEAR,A,10\nFAR,A,5\nWEST,A,100\n";

/// The golden network, holding orders tagged `fraud_review` for review.
fn server() -> Server {
    server_with("")
}

/// The same, with more `[policy]` keys.
fn server_with(policy: &str) -> Server {
    let config = GOLDEN.replacen(
        "max_shipments = 3",
        &format!("max_shipments = 3\nhold_tags = [\"fraud_review\"]\n{policy}"),
        1,
    );
    Server::start(&config, GOLDEN_CATALOG, STOCK, &[])
}

fn held_order(id: &str, qty: u32) -> String {
    format!(
        "{}\n",
        simple_order(id, "R1", &[("A", qty)], r#","tags":["fraud_review"]"#)
    )
}

fn post(server: &Server, path: &str, approver: Option<&str>) -> common::server::Response {
    let headers: Vec<(&str, &str)> = approver
        .map(|name| ("X-Approver", name))
        .into_iter()
        .collect();
    server.request_with("POST", path, &headers, b"")
}

fn reserved_a(server: &Server) -> u64 {
    let stock = server.get("/v1/stock/A").json();
    stock["reserved"].as_u64().unwrap()
}

fn reviews(server: &Server) -> Vec<Value> {
    server.get("/v1/reviews").lines()
}

/// Events of the decision feed from the start, as `(event, order_id)`.
fn feed(server: &Server) -> Vec<(String, String)> {
    server
        .get("/v1/decisions?cursor=1")
        .lines()
        .iter()
        .map(|entry| {
            (
                entry["event"].as_str().unwrap().to_owned(),
                entry["order_id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn held_orders_are_listed_then_approved_or_rejected_once() {
    let server = server();
    let body = [held_order("H-1", 2), held_order("H-2", 3)].concat();
    let answers = server.post_ndjson(&body).lines();
    assert!(
        answers.iter().all(|answer| answer["status"] == "held"),
        "{answers:?}"
    );
    assert_eq!(reserved_a(&server), 5, "a held order keeps its reservation");
    let listed: Vec<_> = reviews(&server)
        .iter()
        .map(|review| review["order_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, ["H-1", "H-2"], "oldest first");
    let metrics = server.get("/metrics").text().to_owned();
    assert!(
        metrics.contains("router_reviews_pending{zone=\"east\"} 2"),
        "{metrics}"
    );
    assert_eq!(server.metric("router_holds_total{rule=\"hold_tags\"}"), 2.0);
    let by_rule = |rule: &str| {
        server
            .get(&format!("/v1/reviews?rule={rule}"))
            .lines()
            .len()
    };
    assert_eq!(by_rule("hold_tags"), 2);
    assert_eq!(by_rule("hold_order_value_over"), 0);
    common::wait_for("the oldest hold's age on its gauge", || {
        server.metric("router_review_oldest_age_seconds{zone=\"east\"}") >= 1.0
    });

    // Not shippable while held.
    let early = post(&server, "/v1/orders/H-1/shipped", None);
    assert_eq!(early.status, 409);
    assert_eq!(early.json()["error"]["code"], "awaiting_review");

    let approved = post(&server, "/v1/orders/H-1/approve", Some("ann"));
    assert_eq!(approved.status, 200, "{}", approved.text());
    assert_eq!(approved.json()["state"], "released");
    assert_eq!(approved.json()["approvers"], serde_json::json!(["ann"]));
    // The same approval again changes nothing.
    let again = post(&server, "/v1/orders/H-1/approve", Some("ann"));
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["state"], "released");
    // Another approval of a released order: not in review any more.
    let late = post(&server, "/v1/orders/H-1/approve", Some("bob"));
    assert_eq!(late.status, 409);
    assert_eq!(late.json()["error"]["code"], "not_in_review");

    let rejected = post(&server, "/v1/orders/H-2/reject", None);
    assert_eq!(rejected.status, 200);
    assert_eq!(rejected.json()["state"], "rejected_after_review");
    assert_eq!(
        reserved_a(&server),
        2,
        "the rejected order's 3 units are free again"
    );
    assert_eq!(post(&server, "/v1/orders/H-2/reject", None).status, 409);

    assert!(reviews(&server).is_empty());
    let metrics = server.get("/metrics").text().to_owned();
    for series in [
        "router_reviews_pending{zone=\"east\"} 0",
        "router_reviews_total{outcome=\"approved\"} 1",
        "router_reviews_total{outcome=\"rejected\"} 1",
    ] {
        assert!(metrics.contains(series), "{series} in {metrics}");
    }
    let events = feed(&server);
    assert!(
        events.contains(&("approved".into(), "H-1".into())),
        "{events:?}"
    );
    assert!(
        events.contains(&("rejected_after_review".into(), "H-2".into())),
        "{events:?}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|(event, _)| event == "approved")
            .count(),
        1
    );

    // The released order ships.
    assert_eq!(post(&server, "/v1/orders/H-1/shipped", None).status, 200);
}

#[test]
fn approving_an_order_that_is_not_held_says_why() {
    let server = server();
    let plain = format!("{}\n", simple_order("P-1", "R1", &[("A", 1)], ""));
    server.post_ndjson(&plain);
    let refused = post(&server, "/v1/orders/P-1/approve", None);
    assert_eq!(refused.status, 409);
    assert_eq!(refused.json()["error"]["code"], "not_in_review");
    assert!(
        refused.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is not waiting for review: it is routed"),
        "{}",
        refused.text()
    );
    assert_eq!(post(&server, "/v1/orders/nobody/approve", None).status, 404);
    let bad = post(&server, "/v1/orders/P-1/approve", Some(&"x".repeat(65)));
    assert_eq!(bad.status, 400);
}

#[test]
fn approvals_and_rejections_survive_kill_9() {
    let server = server();
    let body = [
        held_order("K-1", 1),
        held_order("K-2", 2),
        held_order("K-3", 4),
    ]
    .concat();
    server.post_ndjson(&body);
    assert_eq!(
        post(&server, "/v1/orders/K-1/approve", Some("ann")).status,
        200
    );
    assert_eq!(post(&server, "/v1/orders/K-2/reject", None).status, 200);
    let server = server.kill_and_restart(&[]);
    assert_eq!(server.get("/v1/orders/K-1").json()["state"], "released");
    assert_eq!(
        server.get("/v1/orders/K-1").json()["approvers"],
        serde_json::json!(["ann"])
    );
    assert_eq!(
        server.get("/v1/orders/K-2").json()["state"],
        "rejected_after_review"
    );
    let listed = reviews(&server);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["order_id"], "K-3");
    assert_eq!(reserved_a(&server), 5, "K-1's 1 and K-3's 4");
}

#[test]
fn two_person_approval_needs_two_distinct_approvers() {
    let server = server_with("review_approvals = 2");
    server.post_ndjson(&held_order("T-1", 1));
    let first = post(&server, "/v1/orders/T-1/approve", Some("ann"));
    assert_eq!(first.json()["state"], "live", "one approval is not enough");
    assert_eq!(first.json()["approvers"], serde_json::json!(["ann"]));
    let same = post(&server, "/v1/orders/T-1/approve", Some("ann"));
    assert_eq!(
        same.json()["state"],
        "live",
        "the same approver counts once"
    );
    assert_eq!(reviews(&server)[0]["approvers"], serde_json::json!(["ann"]));
    let second = post(&server, "/v1/orders/T-1/approve", Some("bob"));
    assert_eq!(second.json()["state"], "released");
    assert_eq!(
        second.json()["approvers"],
        serde_json::json!(["ann", "bob"])
    );
    assert!(reviews(&server).is_empty());
    let server = server.kill_and_restart(&[]);
    assert_eq!(server.get("/v1/orders/T-1").json()["state"], "released");
}

#[test]
fn a_review_timeout_rejects_or_approves_stale_holds() {
    for (action, state, event) in [
        ("reject", "rejected_after_review", "rejected_after_review"),
        ("approve", "released", "approved"),
    ] {
        let server = server_with(&format!(
            "review_approvals = 2\nreview_timeout_s = 1\nreview_timeout_action = \"{action}\""
        ));
        server.post_ndjson(&held_order("S-1", 2));
        common::wait_for("the review timeout", || {
            server.get("/v1/orders/S-1").json()["state"] == state
        });
        let events = feed(&server);
        assert!(events.contains(&(event.into(), "S-1".into())), "{events:?}");
        assert!(reviews(&server).is_empty());
        let expected = if action == "reject" { 0 } else { 2 };
        assert_eq!(reserved_a(&server), expected);
    }
}

#[test]
fn bad_review_settings_are_refused_with_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("router.toml");
    let config = GOLDEN.replacen(
        "max_shipments = 3",
        "max_shipments = 3\nreview_approvals = 9\nreview_timeout_action = \"later\"",
        1,
    );
    std::fs::write(&path, &config).unwrap();
    let line = |key: &str| {
        config
            .lines()
            .position(|text| text.starts_with(key))
            .unwrap()
            + 1
    };
    let (code, stderr) = common::check_config(&path);
    assert_eq!(code, Some(1));
    for (key, message) in [
        ("review_approvals", "policy.review_approvals"),
        (
            "review_timeout_action",
            "policy.review_timeout_action: must be \"reject\" or \"approve\", got \"later\"",
        ),
    ] {
        let place = format!("{}:{}:", path.display(), line(key));
        let found = stderr
            .lines()
            .any(|text| text.starts_with(&place) && text.contains(message));
        assert!(found, "{place} {message} in {stderr}");
    }
}
