//! Risk rules (`[[risk]]`, issue 11): each check through the engine `route` runs (the same
//! `zone::decide` as the service), the config's checks of them, and the service end to end:
//! credit limits from a file and `PUT /v1/customers`, exposure kept exactly across
//! cancels, reviews, concurrent streams and kill -9, two-person approval of a risk hold,
//! a reload mid-stream.

mod common;

use common::server::Server;
use common::{GOLDEN, GOLDEN_CATALOG, midnight};
use order_router::model::{Decision, ReasonCode, Status};
use order_router::route::Router;
use order_router::time::Millis;
use serde_json::Value;

const STOCK: &str =
    "warehouse,sku,on_hand\nNEAR,A,10\nFAR,A,5\nWEST,A,100\nWEST,ICE,10\nFAR,ICE,10\n";

/// An order of `qty` units of `sku` at `price` each, from `customer`, to `region`.
fn priced(id: &str, customer: &str, region: &str, sku: &str, qty: u32, price: f64) -> String {
    format!(
        r#"{{"id":"{id}","customer":{{"id":"{customer}"}},"ship_to":{{"region":"{region}"}},"lines":[{{"sku":"{sku}","qty":{qty},"unit_price":{price}}}]}}"#
    )
}

fn router(risk: &str) -> Router {
    common::router(&format!("{GOLDEN}{risk}"), GOLDEN_CATALOG, STOCK)
}

fn at_minute(router: &mut Router, json: &str, minute: i64) -> Decision {
    let now = Millis(midnight().0 + minute * 60_000);
    let (decision, duplicate) = common::decide_at(router, json, now).unwrap();
    assert!(!duplicate);
    decision
}

fn hits(decision: &Decision) -> Vec<(String, String)> {
    decision
        .risk
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|hit| (hit.rule.to_string(), hit.message.clone()))
        .collect()
}

fn reason(decision: &Decision) -> (ReasonCode, String) {
    let reason = decision.reason.as_ref().expect("a reason");
    (reason.code, reason.message.clone())
}

#[test]
fn a_high_value_order_is_held_naming_the_rule_and_the_figure() {
    let mut router = router(
        "\n[[risk]]\nid = \"big\"\norder_value_over = 250.0\naction = \"hold\"\napprovals = 2\n",
    );
    let small = at_minute(&mut router, &priced("O-1", "C-1", "R1", "A", 2, 100.0), 0);
    assert_eq!(small.status, Status::Routed);
    assert!(small.risk.is_none());
    let big = at_minute(&mut router, &priced("O-2", "C-1", "R1", "A", 3, 100.0), 0);
    assert_eq!(big.status, Status::Held);
    assert_eq!(
        reason(&big),
        (
            ReasonCode::Review,
            "held for review by risk rule 'big': order value 300.00 is over 250.00".to_owned()
        )
    );
    assert_eq!(
        hits(&big),
        [(
            "big".to_owned(),
            "order value 300.00 is over 250.00".to_owned()
        )]
    );
    assert_eq!(big.risk.as_ref().unwrap()[0].approvals, 2);
    assert_eq!(common::reserved(&router, "NEAR", "A"), 5, "a hold reserves");
}

#[test]
fn velocity_counts_the_customers_orders_in_the_window() {
    let mut router = router(
        "\n[[risk]]\nid = \"burst\"\nvelocity_orders = 2\nvelocity_minutes = 10\naction = \"hold\"\n",
    );
    let order = |id: &str, customer: &str| priced(id, customer, "R1", "A", 1, 5.0);
    assert_eq!(
        at_minute(&mut router, &order("O-1", "C-1"), 0).status,
        Status::Routed
    );
    assert_eq!(
        at_minute(&mut router, &order("O-2", "C-1"), 1).status,
        Status::Routed
    );
    // Another customer's orders do not count.
    assert_eq!(
        at_minute(&mut router, &order("O-3", "C-2"), 2).status,
        Status::Routed
    );
    let third = at_minute(&mut router, &order("O-4", "C-1"), 2);
    assert_eq!(third.status, Status::Held);
    assert_eq!(
        hits(&third),
        [(
            "burst".to_owned(),
            "3 orders in 10 minutes (more than 2)".to_owned()
        )]
    );
    // Half an hour on, the window holds this order alone.
    assert_eq!(
        at_minute(&mut router, &order("O-5", "C-1"), 30).status,
        Status::Routed
    );
}

#[test]
fn a_quantity_far_above_the_skus_usual_is_held_once_the_usual_is_known() {
    let mut router = router(
        "\n[[risk]]\nid = \"bulk\"\nquantity_over_usual = 5.0\nusual_after = 3\naction = \"hold\"\n",
    );
    // The usual is the zone's: these orders all ship from the west (R2, WEST).
    // Before three orders have set the usual, nothing trips.
    let early = at_minute(&mut router, &priced("O-0", "C-1", "R2", "A", 9, 1.0), 0);
    assert_eq!(early.status, Status::Routed);
    router.cancel("O-0").unwrap();
    for (index, qty) in [1, 1].into_iter().enumerate() {
        let id = format!("O-{}", index + 1);
        let decision = at_minute(&mut router, &priced(&id, "C-1", "R2", "A", qty, 1.0), 0);
        assert_eq!(decision.status, Status::Routed);
    }
    // The usual: (9 + 1 + 1) / 3 = 3.67; 19 > 5 x 3.67.
    let bulk = at_minute(&mut router, &priced("O-3", "C-2", "R2", "A", 19, 1.0), 0);
    assert_eq!(bulk.status, Status::Held);
    assert_eq!(
        hits(&bulk),
        [(
            "bulk".to_owned(),
            "19 units of A, 5.2x its usual 3.7 (over 5x)".to_owned()
        )]
    );
    // 18 is not over 5 x 3.67 = 18.3; the held order did not move the usual.
    let fine = at_minute(&mut router, &priced("O-4", "C-2", "R2", "A", 18, 1.0), 0);
    assert_eq!(fine.status, Status::Routed, "{:?}", fine.reason);
}

#[test]
fn a_ship_to_far_from_the_customers_previous_ones_is_held() {
    let mut router =
        router("\n[[risk]]\nid = \"far-away\"\ndistance_km_over = 100.0\naction = \"hold\"\n");
    // The first order has nothing to compare with.
    let first = at_minute(&mut router, &priced("O-1", "C-1", "R1", "A", 1, 5.0), 0);
    assert_eq!(first.status, Status::Routed);
    let near = at_minute(&mut router, &priced("O-2", "C-1", "R1", "A", 1, 5.0), 0);
    assert_eq!(near.status, Status::Routed);
    // R2 is 222 km south of R1.
    let far = at_minute(&mut router, &priced("O-3", "C-1", "R2", "A", 1, 5.0), 0);
    assert_eq!(far.status, Status::Held);
    assert_eq!(
        hits(&far),
        [(
            "far-away".to_owned(),
            "ship-to 222 km from the nearest of the customer's last 2 (over 100 km)".to_owned()
        )]
    );
}

#[test]
fn a_blocked_sku_is_rejected_for_its_region_only_and_nothing_is_reserved() {
    let mut router = router(
        "\n[[risk]]\nid = \"no-ice-south\"\nskus = [\"ICE\"]\nregions = [\"R2\"]\nblock = true\naction = \"reject\"\n",
    );
    let blocked = at_minute(&mut router, &priced("O-1", "C-1", "R2", "ICE", 1, 5.0), 0);
    assert_eq!(blocked.status, Status::Rejected);
    assert!(blocked.shipments.is_empty());
    assert_eq!(
        reason(&blocked),
        (
            ReasonCode::Risk,
            "rejected by risk rule 'no-ice-south': ICE may not ship to region R2".to_owned()
        )
    );
    assert_eq!(common::reserved(&router, "WEST", "ICE"), 0);
    let north = at_minute(&mut router, &priced("O-2", "C-1", "R1", "ICE", 1, 5.0), 0);
    assert_eq!(north.status, Status::Routed);
    let other = at_minute(&mut router, &priced("O-3", "C-1", "R2", "A", 1, 5.0), 0);
    assert_eq!(other.status, Status::Routed);
}

#[test]
fn a_promise_too_close_to_trust_is_held() {
    let mut router =
        router("\n[[risk]]\nid = \"rush\"\npromise_within_minutes = 600\naction = \"hold\"\n");
    let with_promise = |id: &str, promise: &str| {
        priced(id, "C-1", "R1", "A", 1, 5.0).replace(
            "}]}",
            &format!("}}],\"service\":\"express\",\"promise_by\":\"{promise}\"}}"),
        )
    };
    // Express from NEAR arrives after 8.1 hours: a 9-hour promise can be met, but is under
    // the rule's 10 hours.
    let close = at_minute(&mut router, &with_promise("O-1", "2026-11-11T09:00:00Z"), 0);
    assert_eq!(close.status, Status::Held, "{:?}", close.reason);
    assert_eq!(
        hits(&close),
        [(
            "rush".to_owned(),
            "promise_by is 540 minutes after the decision (under 600)".to_owned()
        )]
    );
    let fine = at_minute(&mut router, &with_promise("O-2", "2026-11-11T20:00:00Z"), 0);
    assert_eq!(fine.status, Status::Routed);
}

#[test]
fn credit_exposure_is_charged_released_and_a_reject_is_not_charged() {
    let mut router = router(concat!(
        "\n[[risk]]\nid = \"credit\"\ncredit_limit = true\naction = \"hold\"\ncustomers = [\"C-7\"]\n",
        "\n[[risk]]\nid = \"credit-hard\"\ncredit_limit = true\naction = \"reject\"\ncustomers = [\"C-8\"]\n",
    ));
    router.customers().set_limit("C-7", Some(50_000));
    router.customers().set_limit("C-8", Some(50_000));
    let exposure = |router: &Router, customer: &str| router.customers().exposure(customer).exposure;
    let first = at_minute(&mut router, &priced("O-1", "C-7", "R1", "A", 3, 100.0), 0);
    assert_eq!(first.status, Status::Routed);
    let second = at_minute(&mut router, &priced("O-2", "C-7", "R1", "A", 3, 100.0), 0);
    assert_eq!(second.status, Status::Held);
    assert_eq!(
        hits(&second),
        [(
            "credit".to_owned(),
            "exposure 300.00 plus this order's 300.00 is 600.00, over the credit limit 500.00"
                .to_owned()
        )]
    );
    assert_eq!(exposure(&router, "C-7"), 600.0, "a held order counts");
    router.cancel("O-1").unwrap();
    assert_eq!(exposure(&router, "C-7"), 300.0);
    let third = at_minute(&mut router, &priced("O-3", "C-7", "R2", "A", 1, 150.0), 0);
    assert_eq!(third.status, Status::Routed);
    router.ship("O-3").unwrap();
    assert_eq!(
        exposure(&router, "C-7"),
        300.0,
        "a shipment ends the exposure"
    );
    // A rejecting rule: nothing reserved, nothing charged.
    let ok = at_minute(&mut router, &priced("O-4", "C-8", "R2", "A", 4, 100.0), 0);
    assert_eq!(ok.status, Status::Routed);
    let reserved = common::reserved(&router, "WEST", "A");
    let refused = at_minute(&mut router, &priced("O-5", "C-8", "R2", "A", 2, 100.0), 0);
    assert_eq!(refused.status, Status::Rejected);
    assert_eq!(reason(&refused).0, ReasonCode::Risk);
    assert_eq!(common::reserved(&router, "WEST", "A"), reserved);
    assert_eq!(exposure(&router, "C-8"), 400.0);
    // A customer with no limit is never held by the credit rule.
    let unlimited = at_minute(&mut router, &priced("O-6", "C-9", "R1", "A", 1, 1e6), 0);
    assert_eq!(unlimited.status, Status::Routed);
}

/// With no risk rules at all nothing is screened, but a customer with a credit entry still
/// has its open orders charged and released: a rule added later sees the true exposure.
#[test]
fn without_risk_rules_a_customer_with_a_limit_is_still_charged() {
    let mut router = router("");
    router.customers().set_limit("C-7", Some(50_000));
    let exposure = |router: &Router| router.customers().exposure("C-7").exposure;
    let first = at_minute(&mut router, &priced("O-1", "C-7", "R1", "A", 3, 100.0), 0);
    assert_eq!(first.status, Status::Routed);
    assert!(first.risk.is_none(), "{:?}", first.risk);
    let second = at_minute(&mut router, &priced("O-2", "C-7", "R1", "A", 4, 100.0), 0);
    assert_eq!(
        second.status,
        Status::Routed,
        "past the limit, but no rule looks"
    );
    assert_eq!(exposure(&router), 700.0);
    router.cancel("O-1").unwrap();
    assert_eq!(exposure(&router), 400.0);
    let other = at_minute(&mut router, &priced("O-3", "C-9", "R1", "A", 1, 100.0), 0);
    assert_eq!(other.status, Status::Routed);
    assert_eq!(router.customers().exposure("C-9").exposure, 0.0);
}

#[test]
fn every_hit_is_listed_in_config_order_and_a_reject_outranks_a_hold() {
    let mut router = router(concat!(
        "\n[[risk]]\nid = \"big\"\norder_value_over = 10.0\naction = \"hold\"\n",
        "\n[[risk]]\nid = \"vip-only\"\ntiers = [\"vip\"]\norder_value_over = 1.0\naction = \"hold\"\n",
        "\n[[risk]]\nid = \"no-ice\"\nskus = [\"ICE\"]\nregions = [\"R1\"]\nblock = true\naction = \"reject\"\n",
    ));
    let decision = at_minute(&mut router, &priced("O-1", "C-1", "R1", "ICE", 2, 20.0), 0);
    assert_eq!(decision.status, Status::Rejected);
    let rules: Vec<String> = hits(&decision).into_iter().map(|(rule, _)| rule).collect();
    assert_eq!(
        rules,
        ["big", "no-ice"],
        "the vip rule does not match a standard order"
    );
    assert_eq!(
        reason(&decision).1,
        "rejected by risk rule 'no-ice': ICE may not ship to region R1"
    );
}

/// A config file with `risk` appended, and what `check-config` says of it.
fn check(risk: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("router.toml");
    std::fs::write(&path, format!("{GOLDEN}{risk}")).unwrap();
    common::check_config(&path)
}

#[test]
fn check_config_refuses_bad_risk_rules_naming_line_and_key() {
    // The appended text starts on an empty line: `[[risk]]` stands on line n + 2.
    let n = GOLDEN.lines().count();
    let cases = [
        (
            "\n[[risk]]\nid = \"r\"\naction = \"hold\"\n",
            format!(
                ":{}:1: risk[0]: a risk rule needs one check: credit_limit",
                n + 2
            ),
        ),
        (
            "\n[[risk]]\nid = \"r\"\norder_value_over = 5.0\nblock = true\naction = \"hold\"\n",
            "a risk rule checks one thing, this one gives order_value_over, block".to_owned(),
        ),
        (
            "\n[[risk]]\nid = \"r\"\norder_value_over = 5.0\naction = \"stop\"\n",
            format!(
                ":{}:10: risk[0].action: must be \"hold\" or \"reject\", got \"stop\"",
                n + 5
            ),
        ),
        (
            "\n[[risk]]\nid = \"r\"\norder_value_over = 5.0\naction = \"reject\"\napprovals = 2\n",
            "risk[0].approvals: approvals applies to a hold".to_owned(),
        ),
        (
            "\n[[risk]]\nid = \"r\"\ntiers = [\"gold\"]\norder_value_over = 5.0\naction = \"hold\"\n",
            "risk[0].tiers[0]: tier 'gold' is not defined; defined tiers: vip, standard".to_owned(),
        ),
        (
            "\n[[risk]]\nid = \"r\"\nvelocity_orders = 3\naction = \"hold\"\n",
            "risk[0].velocity_minutes: velocity_orders needs velocity_minutes".to_owned(),
        ),
        (
            "\n[[risk]]\nid = \"r\"\nvelocity_orders = 40\nvelocity_minutes = 5\naction = \"hold\"\n",
            "risk[0].velocity_orders: must be between 1 and 31, got 40".to_owned(),
        ),
        (
            "\n[[risk]]\nid = \"r\"\nblock = true\naction = \"reject\"\n",
            "a block with no condition would reject or hold every order".to_owned(),
        ),
        (
            "\n[[risk]]\nid = \"r\"\nvelocity = 3\naction = \"hold\"\n",
            format!(":{}:1: risk[0].velocity: unknown key 'velocity'", n + 4),
        ),
    ];
    for (risk, expected) in cases {
        let (code, stderr) = check(risk);
        assert_eq!(code, Some(1), "{risk}: {stderr}");
        assert!(
            stderr.contains(&expected),
            "{risk}\nwanted {expected:?} in:\n{stderr}"
        );
    }
    let (code, stderr) = check(
        "\n[[risk]]\nid = \"credit\"\ncredit_limit = true\naction = \"hold\"\napprovals = 2\n",
    );
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn a_rule_naming_an_unknown_sku_and_a_bad_customers_file_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let config = write(
        "router.toml",
        &format!(
            "{GOLDEN}\n[[risk]]\nid = \"b\"\nskus = [\"GOLD\"]\nblock = true\naction = \"reject\"\n"
        ),
    );
    let catalog = write("catalog.csv", GOLDEN_CATALOG);
    let stock = write("stock.csv", STOCK);
    let route = |config: &std::path::Path, customers: Option<&std::path::Path>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_order-router"));
        command.arg("route").arg("--config").arg(config);
        command
            .arg("--catalog")
            .arg(&catalog)
            .arg("--stock")
            .arg(&stock);
        if let Some(customers) = customers {
            command.arg("--customers").arg(customers);
        }
        let output = command.stdin(std::process::Stdio::null()).output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, stderr) = route(&config, None);
    assert_ne!(code, Some(0));
    let line = GOLDEN.lines().count() + 4;
    assert!(
        stderr.contains(&format!(
            ":{line}:9: risk[0].skus[0]: SKU 'GOLD' is not in the catalogue"
        )),
        "{stderr}"
    );
    let plain = write("plain.toml", GOLDEN);
    let customers = write(
        "customers.csv",
        "customer,credit_limit\nC-1,100\nC-2,much\n",
    );
    let (code, stderr) = route(&plain, Some(&customers));
    assert_ne!(code, Some(0));
    assert!(
        stderr.contains("customers.csv: line 3: credit_limit must be a number, got \"much\""),
        "{stderr}"
    );
}

// The service, end to end.

const CREDIT: &str = "\n[[risk]]\nid = \"credit\"\ncredit_limit = true\naction = \"hold\"\n\n[[risk]]\nid = \"big\"\norder_value_over = 5000.0\naction = \"hold\"\napprovals = 2\n";

/// `serve` with the credit and high-value rules and a customers file giving C-7 500.00.
fn credit_server(customers: &tempfile::TempDir) -> Server {
    let path = customers.path().join("customers.csv");
    std::fs::write(&path, "customer,credit_limit,name\nC-7,500,Acme\n").unwrap();
    Server::start(
        &format!("{GOLDEN}{CREDIT}"),
        GOLDEN_CATALOG,
        STOCK,
        &["--customers", path.to_str().unwrap()],
    )
}

fn customer(server: &Server, id: &str) -> Value {
    server.get(&format!("/v1/customers/{id}")).json()
}

fn one(server: &Server, json: &str) -> Value {
    let answer = server.post_json("/v1/orders", json);
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()
}

#[test]
fn serve_keeps_exposure_exact_through_holds_reviews_cancels_and_kill_9() {
    let customers = tempfile::tempdir().unwrap();
    let server = credit_server(&customers);
    assert_eq!(customer(&server, "C-7")["credit_limit"], 500.0);
    let first = one(&server, &priced("O-1", "C-7", "R1", "A", 3, 100.0));
    assert_eq!(first["status"], "routed");
    let second = one(&server, &priced("O-2", "C-7", "R2", "A", 3, 100.0));
    assert_eq!(second["status"], "held", "{second}");
    assert_eq!(second["risk"][0]["rule"], "credit");
    assert_eq!(second["reason"]["code"], "review");
    let reviews = server.get("/v1/reviews?rule=credit").lines();
    assert_eq!(reviews.len(), 1);
    assert_eq!(reviews[0]["order_id"], "O-2");
    assert_eq!(reviews[0]["approvals_needed"], 1);
    let standing = customer(&server, "C-7");
    assert_eq!(
        (
            standing["exposure"].clone(),
            standing["open_orders"].clone()
        ),
        (600.0.into(), 2.into())
    );
    // Rejected in review: its exposure goes.
    let rejected = server.request_with(
        "POST",
        "/v1/orders/O-2/reject",
        &[("X-Approver", "ann")],
        b"",
    );
    assert_eq!(rejected.status, 200, "{}", rejected.text());
    assert_eq!(customer(&server, "C-7")["exposure"], 300.0);
    // Raised through the API: the next order fits.
    let put = server.request(
        "PUT",
        "/v1/customers",
        "application/json",
        br#"[{"customer":"C-7","credit_limit":1000}]"#,
    );
    assert_eq!(put.status, 200, "{}", put.text());
    let third = one(&server, &priced("O-3", "C-7", "R1", "A", 5, 100.0));
    assert_eq!(third["status"], "routed", "{third}");
    let cancel = server.post_json("/v1/orders/O-1/cancel", "");
    assert_eq!(cancel.status, 200);
    assert_eq!(customer(&server, "C-7")["exposure"], 500.0);
    // A customer given a limit after it ordered: its open orders, in both zones, count.
    for (id, region) in [("O-51", "R1"), ("O-52", "R2"), ("O-53", "R2")] {
        assert_eq!(
            one(&server, &priced(id, "C-5", region, "A", 1, 100.0))["status"],
            "routed"
        );
    }
    assert_eq!(server.post_json("/v1/orders/O-53/cancel", "").status, 200);
    let put = server.request(
        "PUT",
        "/v1/customers",
        "text/csv",
        b"customer,credit_limit\nC-5,250\n",
    );
    assert_eq!(put.status, 200, "{}", put.text());
    let standing = customer(&server, "C-5");
    assert_eq!(
        (
            standing["exposure"].clone(),
            standing["open_orders"].clone()
        ),
        (200.0.into(), 2.into())
    );
    let over = one(&server, &priced("O-54", "C-5", "R1", "A", 1, 100.0));
    assert_eq!(over["status"], "held", "{over}");
    assert_eq!(customer(&server, "C-5")["exposure"], 300.0);
    // kill -9: the exposure is rebuilt from the journals, the API's limit from its file.
    let server = server.kill_and_restart(&[
        "--customers",
        customers.path().join("customers.csv").to_str().unwrap(),
    ]);
    let standing = customer(&server, "C-7");
    assert_eq!(standing["exposure"], 500.0, "{standing}");
    assert_eq!(standing["credit_limit"], 1000.0, "{standing}");
    assert_eq!(standing["open_orders"], 1);
    assert_eq!(
        customer(&server, "C-5")["exposure"],
        300.0,
        "a limit set through the API"
    );
    // A bad row refuses the whole upload.
    let bad = server.request(
        "PUT",
        "/v1/customers",
        "text/csv",
        b"customer,credit_limit\nC-7,10\nC-8,lots\n",
    );
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"]["code"], "bad_customers");
    assert!(bad.text().contains("line 3"), "{}", bad.text());
    assert_eq!(
        customer(&server, "C-7")["credit_limit"],
        1000.0,
        "nothing applied"
    );
}

#[test]
fn a_risk_hold_asking_two_approvers_survives_kill_9_between_them() {
    let customers = tempfile::tempdir().unwrap();
    let server = credit_server(&customers);
    let big = one(&server, &priced("O-9", "C-1", "R1", "A", 2, 3000.0));
    assert_eq!(big["status"], "held");
    assert_eq!(big["risk"][0]["rule"], "big");
    let approve = |server: &Server, who: &str| {
        let answer = server.request_with(
            "POST",
            "/v1/orders/O-9/approve",
            &[("X-Approver", who)],
            b"",
        );
        assert_eq!(answer.status, 200, "{}", answer.text());
        answer.json()
    };
    let once = approve(&server, "ann");
    assert_eq!(once["state"], "live", "{once}");
    assert_eq!(once["approvals_needed"], 2);
    let server = server.kill_and_restart(&[]);
    let again = approve(&server, "ann");
    assert_eq!(
        again["state"], "live",
        "the same approver twice is one approval"
    );
    let twice = approve(&server, "bob");
    assert_eq!(twice["state"], "released", "{twice}");
}

#[test]
fn concurrent_streams_never_pass_a_credit_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("customers.csv");
    std::fs::write(&path, "customer,credit_limit\nC-7,1000\n").unwrap();
    let config =
        format!("{GOLDEN}\n[[risk]]\nid = \"credit\"\ncredit_limit = true\naction = \"reject\"\n");
    let server = Server::start(
        &config,
        GOLDEN_CATALOG,
        STOCK,
        &["--customers", path.to_str().unwrap()],
    );
    // Two streams at once, one to each zone, each 60 orders of 30.00.
    let answers: Vec<Vec<Value>> = std::thread::scope(|scope| {
        let streams: Vec<_> = ["R1", "R2"]
            .iter()
            .map(|region| {
                let server = &server;
                scope.spawn(move || {
                    let body: String = (0..60)
                        .map(|index| {
                            format!(
                                "{}\n",
                                priced(&format!("{region}-{index}"), "C-7", region, "A", 1, 30.0)
                            )
                        })
                        .collect();
                    server.post_ndjson(&body).lines()
                })
            })
            .collect();
        streams
            .into_iter()
            .map(|stream| stream.join().unwrap())
            .collect()
    });
    let placed = answers
        .iter()
        .flatten()
        .filter(|answer| answer["status"] != "rejected")
        .count();
    let rejected: Vec<&Value> = answers
        .iter()
        .flatten()
        .filter(|answer| answer["status"] == "rejected")
        .collect();
    assert!(
        rejected
            .iter()
            .all(|answer| answer["reason"]["code"] == "risk")
    );
    // 33 x 30.00 = 990.00 fits under 1000.00; a 34th would not, whichever zone took it.
    assert_eq!(placed, 33);
    assert_eq!(customer(&server, "C-7")["exposure"], 990.0);
}

#[test]
fn a_reload_mid_stream_screens_the_chunks_after_it_and_not_those_before() {
    use common::server::{dechunk, write_chunk};
    use std::io::{Read, Write};
    let server = Server::start(GOLDEN, GOLDEN_CATALOG, STOCK, &["--no-watch-config"]);
    let mut stream = server.connect();
    stream
        .write_all(b"POST /v1/orders HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        .unwrap();
    write_chunk(
        &mut stream,
        format!("{}\n", priced("O-1", "C-1", "R2", "ICE", 1, 5.0)).as_bytes(),
    );
    common::wait_for("the first order decided", || {
        server.get("/v1/orders/O-1").status == 200
    });
    let blocked = format!(
        "{GOLDEN}\n[[risk]]\nid = \"no-ice\"\nskus = [\"ICE\"]\nregions = [\"R2\"]\nblock = true\naction = \"reject\"\n"
    );
    std::fs::write(server.dir.path().join("router.toml"), blocked).unwrap();
    let reload = server.post_json("/v1/admin/reload", "");
    assert_eq!(reload.json()["status"], "applied", "{}", reload.text());
    write_chunk(
        &mut stream,
        format!("{}\n", priced("O-2", "C-1", "R2", "ICE", 1, 5.0)).as_bytes(),
    );
    stream.write_all(b"0\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let answers: Vec<Value> = dechunk(&raw[end..])
        .split(|byte| *byte == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_slice(line).unwrap())
        .collect();
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert_eq!(answers[0]["status"], "routed", "before the reload");
    assert_eq!(answers[1]["status"], "rejected", "after it, same stream");
    assert_eq!(answers[1]["risk"][0]["rule"], "no-ice");
}

#[test]
fn the_demo_risk_orders_trip_each_shipped_rule_through_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_order-router"))
        .args(["demo-data", "--start", "now", "--out"])
        .arg(&demo)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/router.toml");
    let customers = demo.join("customers.csv");
    let server = Server::start_files(
        tempfile::tempdir().unwrap(),
        &config,
        &demo.join("catalog.csv"),
        &demo.join("stock.csv"),
        &["--customers", customers.to_str().unwrap()],
    );
    let body = std::fs::read_to_string(demo.join("risk-orders.ndjson")).unwrap();
    let answers = server.post_ndjson(&body).lines();
    assert_eq!(answers.len(), body.lines().count());
    let tripped: Vec<(String, String, String)> = answers
        .iter()
        .filter(|answer| answer.get("risk").is_some())
        .map(|answer| {
            (
                answer["order_id"].as_str().unwrap().to_owned(),
                answer["status"].as_str().unwrap().to_owned(),
                answer["risk"][0]["rule"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("RISK-CREDIT-3", "held", "credit"),
        ("RISK-BIG-1", "held", "high-value"),
        ("RISK-FAST-4", "held", "new-account-velocity"),
        ("RISK-FAST-5", "held", "new-account-velocity"),
        ("RISK-FAR-2", "held", "new-account-far-ship-to"),
        ("RISK-BULK-1", "held", "bulk-quantity"),
        ("RISK-HAZMAT-1", "rejected", "no-hazmat-into-beijing"),
        ("RISK-RUSH-1", "held", "implausible-promise"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(id, status, rule)| ((*id).to_owned(), (*status).to_owned(), (*rule).to_owned()))
        .collect();
    assert_eq!(tripped, expected);
    // Every other order of the file goes through.
    assert!(
        answers
            .iter()
            .filter(|answer| answer.get("risk").is_none())
            .all(|answer| answer["status"] == "routed"),
        "{answers:?}"
    );
    let big = server.get("/v1/reviews?rule=high-value").lines();
    assert_eq!(big.len(), 1);
    assert_eq!(big[0]["approvals_needed"], 2);
    assert_eq!(server.get("/v1/reviews").lines().len(), 7);
    assert_eq!(
        server.metric("router_holds_total{rule=\"new-account-velocity\"}"),
        2.0
    );
}

#[test]
fn an_absurd_price_is_held_to_a_ceiling_and_cannot_wrap_the_exposure() {
    let mut router =
        router("\n[[risk]]\nid = \"credit\"\ncredit_limit = true\naction = \"reject\"\n");
    router.customers().set_limit("C-7", Some(100_000));
    let first = at_minute(&mut router, &priced("O-1", "C-7", "R1", "A", 1, 1.0), 0);
    assert_eq!(first.status, Status::Routed);
    let absurd = at_minute(&mut router, &priced("O-2", "C-7", "R1", "A", 3, 1e300), 0);
    assert_eq!(absurd.status, Status::Rejected, "{:?}", absurd.reason);
    assert_eq!(reason(&absurd).0, ReasonCode::Risk);
    let again = at_minute(&mut router, &priced("O-3", "C-7", "R1", "A", 1, 1e17), 0);
    assert_eq!(again.status, Status::Rejected);
    assert_eq!(router.customers().exposure("C-7").exposure, 1.0);
    let fine = at_minute(&mut router, &priced("O-4", "C-7", "R1", "A", 1, 10.0), 0);
    assert_eq!(fine.status, Status::Routed);
}

#[test]
fn a_block_of_customers_says_so_and_risk_ids_may_not_be_the_policys() {
    let mut router = router(
        "\n[[risk]]\nid = \"banned\"\ncustomers = [\"C-666\"]\nblock = true\naction = \"reject\"\n",
    );
    let banned = at_minute(&mut router, &priced("O-1", "C-666", "R1", "A", 1, 5.0), 0);
    assert_eq!(
        hits(&banned),
        [(
            "banned".to_owned(),
            "orders matching this block may not ship to region R1".to_owned()
        )]
    );
    let (code, stderr) =
        check("\n[[risk]]\nid = \"hold_tags\"\norder_value_over = 5.0\naction = \"hold\"\n");
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("risk[0].id: 'hold_tags' names the policy's own hold"),
        "{stderr}"
    );
}

#[test]
fn a_review_timeout_never_approves_a_hold_that_asks_two_approvers() {
    let config = GOLDEN.replacen(
        "max_shipments = 3",
        "max_shipments = 3\nhold_tags = [\"fraud_review\"]\nreview_timeout_s = 1\nreview_timeout_action = \"approve\"",
        1,
    ) + "\n[[risk]]\nid = \"big\"\norder_value_over = 1000.0\naction = \"hold\"\napprovals = 2\n";
    let server = Server::start(&config, GOLDEN_CATALOG, STOCK, &[]);
    let big = one(&server, &priced("O-1", "C-1", "R1", "A", 1, 5000.0));
    assert_eq!(big["status"], "held");
    let tagged =
        priced("O-2", "C-1", "R1", "A", 1, 5.0).replace("}]}", "}],\"tags\":[\"fraud_review\"]}");
    assert_eq!(one(&server, &tagged)["status"], "held");
    let state = |id: &str| server.get(&format!("/v1/orders/{id}")).json()["state"].clone();
    common::wait_for("both timeouts", || {
        state("O-1") != "live" && state("O-2") != "live"
    });
    assert_eq!(
        state("O-1"),
        "rejected_after_review",
        "two-person approval is not left to a clock"
    );
    assert_eq!(state("O-2"), "released");
}

#[test]
fn a_customer_id_with_a_comma_set_through_the_api_survives_a_restart() {
    let customers = tempfile::tempdir().unwrap();
    let server = credit_server(&customers);
    let put = server.request(
        "PUT",
        "/v1/customers",
        "application/json",
        br#"[{"customer":"ACME,\"East\"","credit_limit":70}]"#,
    );
    assert_eq!(put.status, 200, "{}", put.text());
    let spaced = server.request(
        "PUT",
        "/v1/customers",
        "application/json",
        br#"[{"customer":" C-9","credit_limit":70}]"#,
    );
    assert_eq!(spaced.status, 400, "{}", spaced.text());
    let file = customers.path().join("customers.csv");
    let server = server.kill_and_restart(&["--customers", file.to_str().unwrap()]);
    let held = one(
        &server,
        &priced("O-1", "ACME,\\\"East\\\"", "R1", "A", 1, 80.0),
    );
    assert_eq!(held["status"], "held", "{held}");
    assert_eq!(held["risk"][0]["rule"], "credit");
}
