//! Routing rules (issue 11): matching and precedence, every action end to end through the
//! router `route` runs (and through the `route` binary), two actions and a live reload
//! through the real `serve` binary, and the located errors of `check-config` and of a
//! catalogue that lacks a category a rule names.

mod common;

use common::server::Server;
use common::{GOLDEN, GOLDEN_CATALOG, decide, placements, router, simple_order};
use order_router::catalog::Catalog;
use order_router::config::Network;
use order_router::engine::RuleEffect;
use order_router::ingest::parse_order;
use order_router::model::ServiceLevel;
use order_router::world::{World, WorldSources};
use std::path::Path;

const STOCK: &str =
    "warehouse,sku,on_hand\nNEAR,A,10\nFAR,A,5\nWEST,A,100\nNEAR,B,3\nWEST,B,50\nFAR,ICE,4\n";

/// The golden catalogue with the optional `category` column.
const CATEGORY_CATALOG: &str = "sku,weight_g,capabilities,category\nA,1000,,toys\nB,2000,,\nICE,1000,cold_chain,frozen\nHEAVY,15000,,furniture\n";

const GROUPS: &str = r#"
[[warehouse_groups]]
id = "northern"
warehouses = ["FAR"]
"#;

fn with_rules(rules: &str) -> String {
    format!("{GOLDEN}{GROUPS}{rules}")
}

fn place(config: &str, catalog: &str, order: &str) -> Vec<(String, String, String)> {
    let mut router = router(config, catalog, STOCK);
    let decision = decide(&mut router, order);
    placements(&router, &decision)
}

fn one(warehouse: &str, carrier: &str, level: &str) -> Vec<(String, String, String)> {
    vec![(warehouse.into(), carrier.into(), level.into())]
}

const PLAIN: &str = r#"{"id":"O-1","customer":{"id":"C-1"},"ship_to":{"region":"R1"},"lines":[{"sku":"A","qty":1}]}"#;

#[test]
fn without_rules_the_plain_order_ships_from_near_by_the_cheap_carrier() {
    assert_eq!(
        place(GOLDEN, GOLDEN_CATALOG, PLAIN),
        one("NEAR", "cheap", "standard")
    );
}

#[test]
fn only_and_exclude_warehouses_restrict_where_an_order_ships() {
    let only = with_rules(
        "[[rules]]\nid = \"far\"\ncustomers = [\"C-1\"]\nonly_warehouses = [\"northern\"]\n",
    );
    assert_eq!(
        place(&only, GOLDEN_CATALOG, PLAIN),
        one("FAR", "cheap", "standard")
    );
    let exclude = with_rules(
        "[[rules]]\nid = \"no-near\"\nregions = [\"R1\"]\nexclude_warehouses = [\"NEAR\", \"FAR\"]\n",
    );
    // Nothing left in the home zone: the fallback zone ships it.
    assert_eq!(
        place(&exclude, GOLDEN_CATALOG, PLAIN),
        one("WEST", "cheap", "standard")
    );
    // Another customer is not matched.
    let other = PLAIN.replace("C-1", "C-2");
    assert_eq!(
        place(&only, GOLDEN_CATALOG, &other),
        one("NEAR", "cheap", "standard")
    );
}

#[test]
fn prefer_group_takes_its_bonus_off_the_score() {
    // FAR is 100 km and about 1 of cost further than NEAR: a bonus of 50 is not enough, 150 is.
    let small =
        with_rules("[[rules]]\nid = \"p\"\nprefer_group = \"northern\"\nprefer_bonus = 50.0\n");
    assert_eq!(
        place(&small, GOLDEN_CATALOG, PLAIN),
        one("NEAR", "cheap", "standard")
    );
    let large =
        with_rules("[[rules]]\nid = \"p\"\nprefer_group = \"northern\"\nprefer_bonus = 150.0\n");
    assert_eq!(
        place(&large, GOLDEN_CATALOG, PLAIN),
        one("FAR", "cheap", "standard")
    );
}

#[test]
fn only_and_exclude_carriers_and_min_service() {
    let only = with_rules("[[rules]]\nid = \"c\"\nonly_carriers = [\"fast\"]\n");
    assert_eq!(
        place(&only, GOLDEN_CATALOG, PLAIN),
        one("NEAR", "fast", "express")
    );
    // Without `cheap`, `cold` (standard, dearer) carries it; without both, `fast`.
    let exclude = with_rules("[[rules]]\nid = \"c\"\nexclude_carriers = [\"cheap\"]\n");
    assert_eq!(
        place(&exclude, GOLDEN_CATALOG, PLAIN),
        one("NEAR", "cold", "standard")
    );
    let exclude = with_rules("[[rules]]\nid = \"c\"\nexclude_carriers = [\"cheap\", \"cold\"]\n");
    assert_eq!(
        place(&exclude, GOLDEN_CATALOG, PLAIN),
        one("NEAR", "fast", "express")
    );
    let level =
        with_rules("[[rules]]\nid = \"tagged\"\ntags = [\"gift\"]\nmin_service = \"express\"\n");
    let gift = PLAIN.replace("}]}", r#"}],"tags":["x","gift"]}"#);
    assert_eq!(
        place(&level, GOLDEN_CATALOG, &gift),
        one("NEAR", "fast", "express")
    );
    assert_eq!(
        place(&level, GOLDEN_CATALOG, PLAIN),
        one("NEAR", "cheap", "standard")
    );
}

#[test]
fn split_false_forbids_splitting() {
    // 12 units of A: NEAR holds 10 and FAR 5, so the home zone splits them...
    let order = simple_order("S-1", "R1", &[("A", 12)], "");
    let split = place(GOLDEN, GOLDEN_CATALOG, &order);
    assert_eq!(split.len(), 2, "{split:?}");
    // ...unless a rule forbids it: then WEST, in the fallback zone, ships them whole.
    let rule = with_rules("[[rules]]\nid = \"whole\"\nzones = [\"east\"]\nsplit = false\n");
    assert_eq!(
        place(&rule, GOLDEN_CATALOG, &order),
        one("WEST", "cheap", "standard")
    );
}

#[test]
fn categories_order_value_and_services_match() {
    let category = with_rules(
        "[[rules]]\nid = \"toys\"\ncategories = [\"toys\"]\nonly_warehouses = [\"WEST\"]\n",
    );
    assert_eq!(
        place(&category, CATEGORY_CATALOG, PLAIN),
        one("WEST", "cheap", "standard")
    );
    let b = simple_order("B-1", "R1", &[("B", 1)], "");
    assert_eq!(
        place(&category, CATEGORY_CATALOG, &b),
        one("NEAR", "cheap", "standard")
    );
    let value = with_rules(
        "[[rules]]\nid = \"big\"\nmin_order_value = 100.0\nonly_carriers = [\"fast\"]\n",
    );
    let dear = PLAIN.replace(r#""qty":1"#, r#""qty":1,"unit_price":250.0"#);
    assert_eq!(
        place(&value, GOLDEN_CATALOG, &dear),
        one("NEAR", "fast", "express")
    );
    assert_eq!(
        place(&value, GOLDEN_CATALOG, PLAIN),
        one("NEAR", "cheap", "standard")
    );
    let economy = with_rules(
        "[[rules]]\nid = \"eco\"\nservices = [\"economy\"]\nonly_warehouses = [\"FAR\"]\n",
    );
    let asks_economy = PLAIN.replace("}]}", r#"}],"service":"economy"}"#);
    assert_eq!(
        place(&economy, GOLDEN_CATALOG, &asks_economy),
        one("FAR", "cheap", "standard")
    );
    assert_eq!(
        place(&economy, GOLDEN_CATALOG, PLAIN),
        one("NEAR", "cheap", "standard")
    );
}

/// The effect of `config`'s rules on `order` (JSON).
fn effect(config: &str, catalog: &str, order: &str) -> (RuleEffect, Network) {
    let network = Network::from_toml(config).unwrap_or_else(|problems| panic!("{problems:#?}"));
    let catalog = Catalog::read(catalog.as_bytes(), Path::new("catalog.csv")).unwrap();
    let order = parse_order(order.as_bytes(), &network, &catalog).unwrap();
    let capabilities = order.lines.iter().fold(
        Default::default(),
        |all: order_router::model::Capabilities, line| {
            all.union(catalog.sku(line.sku).capabilities)
        },
    );
    (
        RuleEffect::of(&order, &network, &catalog, capabilities),
        network,
    )
}

fn rule_id(network: &Network, index: Option<u16>) -> Option<&str> {
    index.map(|index| network.policy.rules.rules[usize::from(index)].id.as_str())
}

#[test]
fn the_most_specific_rule_wins_each_action_then_config_order() {
    let config = with_rules(
        r#"
[[rules]]
id = "everyone"
only_warehouses = ["NEAR"]
min_service = "same_day"
split = false

[[rules]]
id = "region"
regions = ["R1"]
only_warehouses = ["WEST"]
exclude_carriers = ["cheap"]

[[rules]]
id = "item"
capabilities = ["cold_chain"]
only_warehouses = ["FAR"]

[[rules]]
id = "customer"
customers = ["C-1"]
only_warehouses = ["northern"]

[[rules]]
id = "region-later"
zones = ["east"]
exclude_carriers = ["fast"]
min_service = "express"
"#,
    );
    let ice = r#"{"id":"I-1","customer":{"id":"C-1"},"ship_to":{"region":"R1"},"lines":[{"sku":"ICE","qty":1}]}"#;
    let (applied, network) = effect(&config, GOLDEN_CATALOG, ice);
    // Customer beats item beats region beats the rest, for the warehouses.
    assert_eq!(rule_id(&network, applied.only_warehouses), Some("customer"));
    // Two region rules set exclude_carriers: the first in the file wins.
    assert_eq!(rule_id(&network, applied.exclude_carriers), Some("region"));
    // min_service: the region rule beats the catch-all's same_day.
    assert_eq!(applied.min_service, Some(ServiceLevel::Express));
    // Only the catch-all sets split.
    assert_eq!(applied.split, Some(false));
    assert!(applied.active);

    // Another customer, no cold chain: the region rule sets the warehouses.
    let plain = PLAIN.replace("C-1", "C-7");
    let (applied, network) = effect(&config, GOLDEN_CATALOG, &plain);
    assert_eq!(rule_id(&network, applied.only_warehouses), Some("region"));
    // Elsewhere (R2, zone west) only the catch-all matches.
    let west = plain.replace("R1", "R2");
    let (applied, network) = effect(&config, GOLDEN_CATALOG, &west);
    assert_eq!(rule_id(&network, applied.only_warehouses), Some("everyone"));
    assert_eq!(applied.exclude_carriers, None);
    assert_eq!(applied.min_service, Some(ServiceLevel::SameDay));
}

#[test]
fn matching_needs_every_condition_given() {
    let config = with_rules(
        r#"
[[rules]]
id = "vip-gift-in-range"
tiers = ["vip"]
tags = ["gift"]
min_order_value = 10.0
max_order_value = 100.0
only_carriers = ["fast"]
"#,
    );
    let order = |tier: &str, tags: &str, price: f64| {
        format!(
            r#"{{"id":"V","customer":{{"id":"C","tier":"{tier}"}},"ship_to":{{"region":"R1"}},"lines":[{{"sku":"A","qty":2,"unit_price":{price}}}],"tags":[{tags}]}}"#
        )
    };
    let matched = |json: String| {
        effect(&config, GOLDEN_CATALOG, &json)
            .0
            .only_carriers
            .is_some()
    };
    assert!(matched(order("vip", r#""gift""#, 20.0)));
    assert!(
        matched(order("vip", r#""gift""#, 50.0)),
        "100 is within the bounds"
    );
    assert!(!matched(order("vip", r#""gift""#, 50.5)), "101 is over");
    assert!(!matched(order("vip", r#""gift""#, 4.0)), "8 is under");
    assert!(!matched(order("standard", r#""gift""#, 20.0)));
    assert!(!matched(order("vip", r#""other""#, 20.0)));
    assert!(!matched(order("vip", "", 20.0)));
}

#[test]
fn no_rules_means_no_effect() {
    let (applied, _) = effect(GOLDEN, GOLDEN_CATALOG, PLAIN);
    assert_eq!(applied, RuleEffect::default());
}

/// The problems of `rules` added to the golden network: `(line, column, key)` each.
fn problems(rules: &str) -> Vec<(usize, usize, String, String)> {
    let text = with_rules(rules);
    Network::from_toml(&text)
        .unwrap_err()
        .into_iter()
        .map(|problem| (problem.line, problem.column, problem.key, problem.message))
        .collect()
}

#[test]
fn bad_rules_are_refused_with_line_column_and_key() {
    let base = with_rules("").lines().count();
    let found = problems(
        r#"[[rules]]
id = "bad"
tiers = ["gold"]
regions = ["R9"]
zones = ["middle"]
capabilities = ["fragile"]
services = ["overnight"]
only_warehouses = ["NOPE"]
exclude_carriers = ["slow"]
prefer_group = "southern"
prefer_bonus = 5.0
min_service = "warp"
lane = "fast"
"#,
    );
    let keys: Vec<&str> = found.iter().map(|problem| problem.2.as_str()).collect();
    assert_eq!(
        keys,
        [
            "rules[0].tiers[0]",
            "rules[0].regions[0]",
            "rules[0].zones[0]",
            "rules[0].capabilities",
            "rules[0].services[0]",
            "rules[0].only_warehouses[0]",
            "rules[0].exclude_carriers[0]",
            "rules[0].prefer_group",
            "rules[0].min_service",
            "rules[0].lane",
        ],
        "{found:#?}"
    );
    // `tiers = ["gold"]`: the third line of the rule, the column of the quoted name.
    assert_eq!((found[0].0, found[0].1), (base + 3, 10));
    assert!(
        found[0].3.contains("tier 'gold' is not defined"),
        "{}",
        found[0].3
    );
    assert!(
        found[5]
            .3
            .contains("neither a warehouse nor a warehouse group")
    );
    assert!(
        found[7]
            .3
            .contains("warehouse group 'southern' is not defined")
    );
}

#[test]
fn rule_shapes_are_checked() {
    let found = problems("[[rules]]\nid = \"a\"\nonly_warehouse = [\"NEAR\"]\n");
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].2, "rules[0].only_warehouse");
    assert!(found[0].3.contains("unknown key"), "{}", found[0].3);

    let found = problems("[[rules]]\nid = \"a\"\ntiers = [\"vip\"]\n");
    assert!(found[0].3.contains("at least one action"), "{found:#?}");

    let found = problems(
        "[[rules]]\nid = \"a\"\nsplit = false\n[[rules]]\nid = \"a\"\nsplit = false\nregions = []\nprefer_bonus = 3.0\n",
    );
    let keys: Vec<&str> = found.iter().map(|problem| problem.2.as_str()).collect();
    assert_eq!(
        keys,
        ["rules[1].id", "rules[1].regions", "rules[1].prefer_group"],
        "{found:#?}"
    );
    assert!(found[0].3.contains("rule 'a' is defined twice"));

    let found = problems("[[warehouse_groups]]\nid = \"NEAR\"\nwarehouses = [\"X\"]\n");
    let keys: Vec<&str> = found.iter().map(|problem| problem.2.as_str()).collect();
    assert_eq!(
        keys,
        [
            "warehouse_groups[1].id",
            "warehouse_groups[1].warehouses[0]"
        ],
        "{found:#?}"
    );
}

#[test]
fn check_config_names_the_file_line_and_column_of_a_bad_rule() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("rules.toml");
    let text = with_rules("[[rules]]\nid = \"x\"\nonly_carriers = [\"teleport\"]\n");
    let line = text.lines().count();
    std::fs::write(&path, &text).unwrap();
    let (code, stderr) = common::check_config(&path);
    assert_eq!(code, Some(1));
    let expected = format!(
        "{}:{line}:18: rules[0].only_carriers[0]: carrier 'teleport' is not defined",
        path.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
}

#[test]
fn a_category_the_catalogue_lacks_is_refused_where_both_are_loaded() {
    let folder = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = folder.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let text = with_rules(
        "[[rules]]\nid = \"cold\"\ncategories = [\"frozen\", \"jewels\"]\nonly_warehouses = [\"FAR\"]\n",
    );
    let line = text.lines().count() - 1;
    let config = write("router.toml", &text);
    let stock = write("stock.csv", STOCK);
    let sources = |catalog: &str| WorldSources {
        config: Some(config.clone()),
        catalog: Some(write("catalog.csv", catalog)),
        stock: Some(stock.clone()),
        customers: None,
        seed: 1,
    };
    let error = World::load(&sources(CATEGORY_CATALOG))
        .unwrap_err()
        .to_string();
    let expected = format!(
        "{}:{line}:25: rules[0].categories[1]: category 'jewels' is not in the catalogue",
        config.display()
    );
    assert!(error.starts_with(&expected), "{error}");
    assert!(!error.contains("'frozen'"), "{error}");
    // A catalogue without the column has no categories at all.
    let error = World::load(&sources(GOLDEN_CATALOG))
        .unwrap_err()
        .to_string();
    assert!(error.contains("category 'frozen'"), "{error}");
    // check-config alone accepts it: it cannot see the catalogue.
    assert!(Network::load(&config).is_ok());
}

#[test]
fn route_applies_the_rules_end_to_end() {
    let folder = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = folder.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let config = write(
        "router.toml",
        &with_rules(
            "[[rules]]\nid = \"toys-west\"\ncategories = [\"toys\"]\nonly_warehouses = [\"WEST\"]\n\n[[rules]]\nid = \"vip\"\ntiers = [\"vip\"]\nonly_carriers = [\"fast\"]\nsplit = false\n",
        ),
    );
    let catalog = write("catalog.csv", CATEGORY_CATALOG);
    let stock = write("stock.csv", STOCK);
    let orders = format!(
        "{}\n{}\n",
        PLAIN,
        simple_order("V-1", "R1", &[("B", 1)], "")
            .replace(r#""id":"C-1""#, r#""id":"C-1","tier":"vip""#)
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_order-router"))
        .arg("route")
        .arg("--config")
        .arg(&config)
        .arg("--catalog")
        .arg(&catalog)
        .arg("--stock")
        .arg(&stock)
        .args(["--now", "2026-11-11T00:00:00Z"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(orders.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines[0]["shipments"][0]["warehouse"], "WEST", "{lines:?}");
    assert_eq!(lines[1]["shipments"][0]["warehouse"], "NEAR", "{lines:?}");
    assert_eq!(lines[1]["shipments"][0]["carrier"], "fast", "{lines:?}");
}

fn served(server: &Server, order: &str) -> serde_json::Value {
    let answer = server.post_ndjson(&format!("{order}\n"));
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.lines()[0]["shipments"][0].clone()
}

#[test]
fn serve_applies_rules_and_a_reload_that_adds_one() {
    let config = with_rules(
        "[[rules]]\nid = \"vip-north\"\ntiers = [\"vip\"]\nonly_warehouses = [\"northern\"]\n\n[[rules]]\nid = \"gift\"\ntags = [\"gift\"]\nonly_carriers = [\"fast\"]\n",
    );
    let server = Server::start(&config, GOLDEN_CATALOG, STOCK, &["--no-watch-config"]);
    let vip = PLAIN.replace(r#""id":"C-1""#, r#""id":"C-1","tier":"vip""#);
    let shipment = served(&server, &vip);
    assert_eq!(shipment["warehouse"], "FAR", "{shipment}");
    let gift = PLAIN
        .replace("O-1", "O-2")
        .replace("}]}", r#"}],"tags":["gift"]}"#);
    let shipment = served(&server, &gift);
    assert_eq!(
        (&shipment["warehouse"], &shipment["carrier"]),
        (&"NEAR".into(), &"fast".into()),
        "{shipment}"
    );
    let plain = PLAIN.replace("O-1", "O-3");
    assert_eq!(served(&server, &plain)["warehouse"], "NEAR");

    // A reload that adds a rule applies to the orders after it.
    let added = format!("{config}\n[[rules]]\nid = \"no-near\"\nexclude_warehouses = [\"NEAR\"]\n");
    std::fs::write(server.dir.path().join("router.toml"), added).unwrap();
    let answer = server.post_json("/v1/admin/reload", "");
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["status"], "applied", "{}", answer.text());
    assert_eq!(answer.json()["changed"][0], "policy", "{}", answer.text());
    let plain = PLAIN.replace("O-1", "O-4");
    assert_eq!(served(&server, &plain)["warehouse"], "FAR");
    // An order decided before the reload keeps its decision.
    let before = server.get("/v1/orders/O-3");
    assert!(before.text().contains("NEAR"), "{}", before.text());

    // A reload naming an unknown warehouse is refused, located, and the rules stay.
    let bad = format!("{config}\n[[rules]]\nid = \"typo\"\nexclude_warehouses = [\"NAER\"]\n");
    std::fs::write(server.dir.path().join("router.toml"), bad).unwrap();
    let answer = server.post_json("/v1/admin/reload", "");
    assert_eq!(answer.status, 422, "{}", answer.text());
    assert!(
        answer.text().contains("rules[2].exclude_warehouses[0]"),
        "{}",
        answer.text()
    );
    let plain = PLAIN.replace("O-1", "O-5");
    assert_eq!(served(&server, &plain)["warehouse"], "FAR");

    // A category the served catalogue lacks is refused by a reload too (check-config
    // cannot see it; the running router knows its catalogue).
    let unknown =
        format!("{config}\n[[rules]]\nid = \"ice\"\ncategories = [\"frozen\"]\nsplit = false\n");
    std::fs::write(server.dir.path().join("router.toml"), unknown).unwrap();
    let answer = server.post_json("/v1/admin/reload", "");
    assert_eq!(answer.status, 422, "{}", answer.text());
    assert!(
        answer
            .text()
            .contains("category 'frozen' is not in the catalogue"),
        "{}",
        answer.text()
    );
}

/// Posts one JSON order on its own connection, in the background: its answer waits for the
/// zones while they are held.
fn post_in_background(
    server: &Server,
    order: String,
) -> std::thread::JoinHandle<common::server::Response> {
    use std::io::{Read, Write};
    let addr = server.addr;
    std::thread::spawn(move || {
        let mut connection = std::net::TcpStream::connect(addr).unwrap();
        let request = format!(
            "POST /v1/orders HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{order}",
            order.len()
        );
        connection.write_all(request.as_bytes()).unwrap();
        let mut raw = Vec::new();
        connection.read_to_end(&mut raw).unwrap();
        common::server::Response::parse(&raw)
    })
}

#[test]
fn a_lane_rule_puts_orders_in_the_priority_lane_or_keeps_them_out() {
    let config = with_rules(
        "[[rules]]\nid = \"rush\"\ntags = [\"rush\"]\nlane = \"priority\"\n\n[[rules]]\nid = \"bulk\"\ntags = [\"bulk\"]\nlane = \"standard\"\n",
    )
    .replacen(
        "max_shipments = 3",
        "max_shipments = 3\n\n[limits]\nmax_orders_in_flight = 3\npriority_reserve = 1",
        1,
    );
    let dir = tempfile::tempdir().unwrap();
    let hold = dir.path().join("hold");
    std::fs::write(&hold, b"").unwrap();
    let server = Server::start(
        &config,
        GOLDEN_CATALOG,
        STOCK,
        &["--debug-hold-zones-while", hold.to_str().unwrap()],
    );
    let in_flight = |count: u64| {
        common::wait_for(&format!("{count} orders in flight"), || {
            server.get("/readyz").json()["orders_in_flight"] == count
        })
    };
    // Two standard orders take both standard permits (their answers wait for the zones).
    let first = post_in_background(&server, simple_order("L-1", "R1", &[("A", 1)], ""));
    in_flight(1);
    let second = post_in_background(&server, simple_order("L-2", "R1", &[("A", 1)], ""));
    in_flight(2);
    // An express order a rule keeps in the standard lane is refused like a standard one.
    let bulk = simple_order(
        "L-3",
        "R1",
        &[("A", 1)],
        r#","service":"express","tags":["bulk"]"#,
    );
    assert_eq!(server.post_json("/v1/orders", &bulk).status, 429);
    // A standard order a rule puts in the priority lane takes the reserve.
    let rush = post_in_background(
        &server,
        simple_order("L-4", "R1", &[("A", 1)], r#","tags":["rush"]"#),
    );
    in_flight(3);
    std::fs::remove_file(&hold).unwrap();
    for answer in [first, second, rush] {
        let answer = answer.join().unwrap();
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.json()["status"], "routed");
    }
}

#[test]
fn a_reload_mid_stream_applies_to_the_chunks_after_it_and_not_to_those_before() {
    use common::server::{dechunk, write_chunk};
    use std::io::{Read, Write};
    let config = with_rules("");
    let server = Server::start(&config, GOLDEN_CATALOG, STOCK, &["--no-watch-config"]);
    let mut stream = server.connect();
    stream
        .write_all(b"POST /v1/orders HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        .unwrap();
    write_chunk(&mut stream, format!("{PLAIN}\n").as_bytes());
    common::wait_for("the first order decided", || {
        server.get("/v1/orders/O-1").status == 200
    });
    // Mid-stream: a rule that keeps orders away from NEAR.
    let ruled = format!("{config}\n[[rules]]\nid = \"no-near\"\nexclude_warehouses = [\"NEAR\"]\n");
    std::fs::write(server.dir.path().join("router.toml"), ruled).unwrap();
    let reload = server.post_json("/v1/admin/reload", "");
    assert_eq!(reload.json()["status"], "applied", "{}", reload.text());
    let second = PLAIN.replace("O-1", "O-2");
    write_chunk(&mut stream, format!("{second}\n").as_bytes());
    stream.write_all(b"0\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let answers: Vec<serde_json::Value> = dechunk(&raw[end..])
        .split(|byte| *byte == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_slice(line).unwrap())
        .collect();
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert_eq!(
        answers[0]["shipments"][0]["warehouse"], "NEAR",
        "before the reload"
    );
    assert_eq!(
        answers[1]["shipments"][0]["warehouse"], "FAR",
        "after it, same stream"
    );
}
