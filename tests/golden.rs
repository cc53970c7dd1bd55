//! Small networks where the right answer is worked out by hand (see `common::GOLDEN` for the
//! geometry: NEAR is 11.12 km from region R1's centroid, FAR 111.19 km, WEST 222.39 km).

mod common;

use common::*;
use order_router::model::{ReasonCode, Status};
use order_router::time::Millis;

fn golden(stock: &str) -> order_router::route::Router {
    router(GOLDEN, GOLDEN_CATALOG, stock)
}

fn with(replacements: &[(&str, &str)]) -> String {
    let mut config = GOLDEN.to_owned();
    for (from, to) in replacements {
        assert!(config.contains(from), "{from} not in the golden config");
        config = config.replacen(from, to, 1);
    }
    config
}

const BOTH_EAST: &str =
    "warehouse,sku,on_hand\nNEAR,A,10\nFAR,A,10\nNEAR,B,10\nFAR,B,10\nFAR,ICE,5\nNEAR,HEAVY,5\n";

#[test]
fn nearest_cheapest_warehouse_with_formulas() {
    let mut router = golden(BOTH_EAST);
    let decision = decide(&mut router, &simple_order("O-1", "R1", &[("A", 1)], ""));
    assert_eq!(decision.status, Status::Routed);
    assert_eq!(
        placements(&router, &decision),
        [("NEAR".into(), "cheap".into(), "standard".into())]
    );
    let shipment = &decision.shipments[0];
    // Distance: 0.1 degree of latitude on a 6371 km sphere.
    let distance = 6371.0 * 0.1f64.to_radians();
    assert!(
        (shipment.distance_km - distance).abs() < 1e-9,
        "{}",
        shipment.distance_km
    );
    // Cost: base 5 + 1 kg * 1 + 11.12 km * 0.01.
    assert!(
        (shipment.cost - (5.0 + 1.0 + 0.01 * distance)).abs() < 1e-9,
        "{}",
        shipment.cost
    );
    assert_eq!(shipment.weight_kg, 1.0);
    // ETA: handling 2 h + base 24 h + 11.12 km / 50 km/h = 26.2224 h after the decision.
    assert_eq!(shipment.eta.to_string(), "2026-11-12T02:13:20.603Z");
    assert_eq!(decision.decided_at, midnight());
    assert_eq!(decision.seq, 1);
    assert_eq!(router.network().zone_name(decision.zone), "east");
    assert_eq!(reserved(&router, "NEAR", "A"), 1);
    assert_eq!(reserved(&router, "FAR", "A"), 0);
}

/// `cheap` has one pickup a day per warehouse. Once NEAR used it, NEAR can only send by
/// `cold` (10.61) or `fast` (22.22), while FAR still has `cheap` (7.11): the cost-only policy
/// must move to FAR, the distance-only policy must stay at NEAR.
#[test]
fn only_cost_weight_picks_cheapest_only_distance_weight_picks_nearest() {
    let pickups = (
        "daily_pickups = 0\n\n[[carriers.services]]\nlevel = \"standard\"\nbase_cost = 5.0",
        "daily_pickups = 1\n\n[[carriers.services]]\nlevel = \"standard\"\nbase_cost = 5.0",
    );
    for (weights, expected) in [
        ("distance_weight = 0.0\ncost_weight = 1.0", ("FAR", "cheap")),
        ("distance_weight = 1.0\ncost_weight = 0.0", ("NEAR", "cold")),
    ] {
        let config = with(&[
            pickups,
            ("distance_weight = 1.0\ncost_weight = 1.0", weights),
            ("split_weight = 40.0", "split_weight = 0.0"),
        ]);
        let mut router = router(&config, GOLDEN_CATALOG, BOTH_EAST);
        let first = decide(&mut router, &simple_order("O-1", "R1", &[("A", 1)], ""));
        assert_eq!(placements(&router, &first)[0].0, "NEAR", "{weights}");
        let second = decide(&mut router, &simple_order("O-2", "R1", &[("A", 1)], ""));
        let (warehouse, carrier, _) = &placements(&router, &second)[0];
        // With distance only, carriers tie on score: the lower carrier id wins (cold < fast).
        assert_eq!(
            (warehouse.as_str(), carrier.as_str()),
            expected,
            "{weights}"
        );
    }
}

#[test]
fn ties_break_on_rank_then_warehouse_id_then_carrier_id() {
    // Two warehouses at the same place: same distance, same carriers, same score.
    let twin = "[[warehouses]]\nid = \"AAA\"\nzone = \"east\"\nlat = 30.1\nlon = 120.0\nrank = 5\n\n[[warehouses]]\nid = \"NEAR\"";
    let stock = "warehouse,sku,on_hand\nNEAR,A,10\nAAA,A,10\n";
    let mut router = router(
        &with(&[("[[warehouses]]\nid = \"NEAR\"", twin)]),
        GOLDEN_CATALOG,
        stock,
    );
    // NEAR has rank 2, AAA rank 5: rank wins over the id.
    let decision = decide(&mut router, &simple_order("O-1", "R1", &[("A", 1)], ""));
    assert_eq!(placements(&router, &decision)[0].0, "NEAR");
    // Same rank: the lower id wins.
    let same_rank = twin.replace("rank = 5", "rank = 2");
    let mut router = router_for(
        &with(&[("[[warehouses]]\nid = \"NEAR\"", &same_rank)]),
        stock,
    );
    let decision = decide(&mut router, &simple_order("O-1", "R1", &[("A", 1)], ""));
    assert_eq!(placements(&router, &decision)[0].0, "AAA");
}

fn router_for(config: &str, stock: &str) -> order_router::route::Router {
    router(config, GOLDEN_CATALOG, stock)
}

#[test]
fn capabilities_of_lines_need_warehouse_and_carrier() {
    // NEAR cannot handle cold chain: ICE ships from FAR, with the only cold-chain carrier.
    let mut router = golden("warehouse,sku,on_hand\nNEAR,ICE,5\nFAR,ICE,5\n");
    let decision = decide(&mut router, &simple_order("O-1", "R1", &[("ICE", 1)], ""));
    assert_eq!(
        placements(&router, &decision),
        [("FAR".into(), "cold".into(), "standard".into())]
    );
}

#[test]
fn weight_limits_choose_the_carrier() {
    // 2 x 15 kg = 30 kg: over cheap's and fast's 20 kg, within cold's 50 kg.
    let mut router = golden(BOTH_EAST);
    let decision = decide(&mut router, &simple_order("O-1", "R1", &[("HEAVY", 2)], ""));
    assert_eq!(
        placements(&router, &decision),
        [("NEAR".into(), "cold".into(), "standard".into())]
    );
    assert_eq!(decision.shipments[0].weight_kg, 30.0);
}

#[test]
fn tier_minimum_and_requested_service_level() {
    let mut router = golden(BOTH_EAST);
    let order = simple_order("O-1", "R1", &[("A", 1)], "")
        .replace(r#"{"id":"C-1"}"#, r#"{"id":"C-9","tier":"vip"}"#);
    let decision = decide(&mut router, &order);
    assert_eq!(placements(&router, &decision)[0].2, "express");
    let decision = decide(
        &mut router,
        &simple_order("O-2", "R1", &[("A", 1)], r#","service":"express""#),
    );
    assert_eq!(
        placements(&router, &decision),
        [("NEAR".into(), "fast".into(), "express".into())]
    );
    let decision = decide(
        &mut router,
        &simple_order("O-3", "R1", &[("A", 1)], r#","service":"same_day""#),
    );
    assert_eq!(decision.status, Status::Rejected);
    assert_eq!(
        decision.reason.unwrap().code,
        ReasonCode::ServiceUnavailable
    );
}

#[test]
fn promise_by_upgrades_the_service_or_rejects() {
    let mut router = golden(BOTH_EAST);
    // 10 h: cheap arrives after 26.2 h, fast after 8.1 h.
    let promise = r#","promise_by":"2026-11-11T10:00:00Z""#;
    let decision = decide(
        &mut router,
        &simple_order("O-1", "R1", &[("A", 1)], promise),
    );
    assert_eq!(
        placements(&router, &decision),
        [("NEAR".into(), "fast".into(), "express".into())]
    );
    // 5 h: nobody can; the earliest arrival is NEAR by fast, 2 + 6 + 0.11 h.
    let promise = r#","promise_by":"2026-11-11T05:00:00Z""#;
    let decision = decide(
        &mut router,
        &simple_order("O-2", "R1", &[("A", 1)], promise),
    );
    assert_eq!(decision.status, Status::Rejected);
    let reason = decision.reason.unwrap();
    assert_eq!(reason.code, ReasonCode::PromiseUnmeetable);
    assert!(
        reason.message.contains("2026-11-11T08:06:40"),
        "{}",
        reason.message
    );
    assert_eq!(reserved(&router, "NEAR", "A"), 1);
}

#[test]
fn daily_orders_capacity_counts_per_utc_day() {
    let config = with(&[(
        "capabilities = []\ndaily_orders = 0",
        "capabilities = []\ndaily_orders = 1",
    )]);
    let mut router = router_for(&config, BOTH_EAST);
    let first = decide(&mut router, &simple_order("O-1", "R1", &[("A", 1)], ""));
    let second = decide(&mut router, &simple_order("O-2", "R1", &[("A", 1)], ""));
    assert_eq!(placements(&router, &first)[0].0, "NEAR");
    assert_eq!(placements(&router, &second)[0].0, "FAR");
    // Twelve hours later it is still the same UTC day: NEAR is still full.
    let (later, _) = decide_at(
        &mut router,
        &simple_order("O-2b", "R1", &[("A", 1)], ""),
        noon(),
    )
    .unwrap();
    assert_eq!(placements(&router, &later)[0].0, "FAR");
    let next_day = Millis(midnight().0 + 86_400_000);
    let (third, _) = decide_at(
        &mut router,
        &simple_order("O-3", "R1", &[("A", 1)], ""),
        next_day,
    )
    .unwrap();
    assert_eq!(placements(&router, &third)[0].0, "NEAR");
    // A cancel gives the day's capacity back.
    router.cancel("O-1").unwrap();
    let fourth = decide(&mut router, &simple_order("O-4", "R1", &[("A", 1)], ""));
    assert_eq!(placements(&router, &fourth)[0].0, "NEAR");
}

#[test]
fn capacity_is_the_reason_when_it_is_what_stops_the_order() {
    let config = with(&[(
        "capabilities = []\ndaily_orders = 0",
        "capabilities = []\ndaily_orders = 1",
    )]);
    let mut router = router_for(&config, "warehouse,sku,on_hand\nNEAR,A,10\n");
    decide(&mut router, &simple_order("O-1", "R1", &[("A", 1)], ""));
    let decision = decide(&mut router, &simple_order("O-2", "R1", &[("A", 1)], ""));
    assert_eq!(decision.status, Status::Rejected);
    assert_eq!(decision.reason.unwrap().code, ReasonCode::Capacity);
}

#[test]
fn disabled_warehouses_are_not_used() {
    let config = with(&[("rank = 2\n", "rank = 2\nenabled = false\n")]);
    let mut router = router_for(&config, BOTH_EAST);
    let decision = decide(&mut router, &simple_order("O-1", "R1", &[("A", 1)], ""));
    assert_eq!(placements(&router, &decision)[0].0, "FAR");
}

#[test]
fn fallback_zone_decides_when_home_zone_cannot() {
    let mut router = golden("warehouse,sku,on_hand\nNEAR,A,1\nWEST,A,5\n");
    let decision = decide(&mut router, &simple_order("O-1", "R1", &[("A", 2)], ""));
    assert_eq!(decision.status, Status::Routed);
    assert_eq!(router.network().zone_name(decision.zone), "west");
    assert_eq!(placements(&router, &decision)[0].0, "WEST");
    assert_eq!(decision.seq, 1);
    assert_eq!(reserved(&router, "WEST", "A"), 2);
    assert_eq!(reserved(&router, "NEAR", "A"), 0);
}

const SPLIT_STOCK: &str = "warehouse,sku,on_hand\nNEAR,A,5\nFAR,B,5\n";

#[test]
fn splits_when_no_warehouse_holds_everything() {
    let mut router = golden(SPLIT_STOCK);
    let decision = decide(
        &mut router,
        &simple_order("O-1", "R1", &[("A", 1), ("B", 1)], ""),
    );
    assert_eq!(decision.status, Status::Routed);
    let mut warehouses: Vec<String> = placements(&router, &decision)
        .into_iter()
        .map(|p| p.0)
        .collect();
    warehouses.sort();
    assert_eq!(warehouses, ["FAR", "NEAR"]);
    assert_eq!(
        (
            reserved(&router, "NEAR", "A"),
            reserved(&router, "FAR", "B")
        ),
        (1, 1)
    );
}

#[test]
fn a_quantity_is_split_across_warehouses_when_needed() {
    let mut router = golden("warehouse,sku,on_hand\nNEAR,A,3\nFAR,A,3\n");
    let decision = decide(&mut router, &simple_order("O-1", "R1", &[("A", 5)], ""));
    assert_eq!(decision.status, Status::Routed);
    assert_eq!(decision.shipments.len(), 2);
    // The nearer warehouse gives all it has.
    assert_eq!(reserved(&router, "NEAR", "A"), 3);
    assert_eq!(reserved(&router, "FAR", "A"), 2);
}

#[test]
fn a_split_is_chosen_only_when_it_scores_better() {
    // Both warehouses hold everything: one shipment from NEAR beats any split.
    let mut router = golden(BOTH_EAST);
    let decision = decide(
        &mut router,
        &simple_order("O-1", "R1", &[("A", 1), ("B", 1)], ""),
    );
    assert_eq!(decision.shipments.len(), 1);
}

#[test]
fn forbidden_split_backorders_in_the_home_zone() {
    let mut router = golden(SPLIT_STOCK);
    let decision = decide(
        &mut router,
        &simple_order("O-1", "R1", &[("A", 1), ("B", 1)], r#","split":"forbid""#),
    );
    assert_eq!(decision.status, Status::Backordered);
    assert_eq!(decision.shipments.len(), 1);
    assert_eq!(decision.backordered.len(), 1);
    assert_eq!(decision.reason.as_ref().unwrap().code, ReasonCode::NoStock);
    // Exactly the shipped units are reserved.
    let placed = decision.shipments[0].lines[0];
    let sku = router.catalog().sku_name(placed.sku).to_owned();
    let warehouse = placements(&router, &decision)[0].0.clone();
    assert_eq!(reserved(&router, &warehouse, &sku), 1);

    // max_shipments = 1 forbids splitting for every order.
    let mut router = router_for(
        &with(&[("max_shipments = 3", "max_shipments = 1")]),
        SPLIT_STOCK,
    );
    let decision = decide(
        &mut router,
        &simple_order("O-1", "R1", &[("A", 1), ("B", 1)], ""),
    );
    assert_eq!(decision.status, Status::Backordered);
}

#[test]
fn without_backorder_an_unplaceable_order_is_rejected_and_reserves_nothing() {
    let config = with(&[("max_shipments = 3", "max_shipments = 3\nbackorder = false")]);
    let mut router = router_for(&config, "warehouse,sku,on_hand\nNEAR,A,1\n");
    let decision = decide(&mut router, &simple_order("O-1", "R1", &[("A", 2)], ""));
    assert_eq!(decision.status, Status::Rejected);
    assert_eq!(decision.reason.unwrap().code, ReasonCode::NoStock);
    assert!(decision.shipments.is_empty());
    assert_eq!(reserved(&router, "NEAR", "A"), 0);
}

#[test]
fn hold_rules_place_reserve_and_hold() {
    let config = with(&[(
        "max_shipments = 3",
        "max_shipments = 3\nhold_tags = [\"fraud_review\"]\nhold_order_value_over = 1000.0",
    )]);
    let mut router = router_for(&config, BOTH_EAST);
    let decision = decide(
        &mut router,
        &simple_order(
            "O-1",
            "R1",
            &[("A", 1)],
            r#","tags":["gift","fraud_review"]"#,
        ),
    );
    assert_eq!(decision.status, Status::Held);
    assert_eq!(decision.reason.unwrap().code, ReasonCode::Review);
    assert_eq!(reserved(&router, "NEAR", "A"), 1);
    let pricey = simple_order("O-2", "R1", &[("A", 1)], "")
        .replace(r#""qty":1}"#, r#""qty":1,"unit_price":1500.0}"#);
    assert_eq!(decide(&mut router, &pricey).status, Status::Held);
    let cheap = simple_order("O-3", "R1", &[("A", 1)], "")
        .replace(r#""qty":1}"#, r#""qty":1,"unit_price":15.0}"#);
    assert_eq!(decide(&mut router, &cheap).status, Status::Routed);
}

#[test]
fn duplicates_answer_the_original_and_conflicts_are_refused() {
    let mut router = golden(BOTH_EAST);
    let json = simple_order("O-1", "R1", &[("A", 2)], "");
    let original = decide(&mut router, &json);
    // A retry restamped with a later created_at is the same order.
    let retry = json.replace("}]", r#"}],"created_at":"2026-11-11T01:00:00Z""#);
    let (again, duplicate) = decide_at(&mut router, &retry, noon()).unwrap();
    assert!(duplicate);
    assert_eq!(again, original);
    assert_eq!(reserved(&router, "NEAR", "A"), 2);
    // Same id, other content: refused, nothing reserved; a conflict in another zone too.
    for other in [
        simple_order("O-1", "R1", &[("A", 3)], ""),
        simple_order("O-1", "R2", &[("A", 2)], ""),
    ] {
        let invalid = decide_at(&mut router, &other, noon()).unwrap_err();
        assert_eq!(invalid.code.name(), "id_conflict");
        assert_eq!(invalid.order_id.as_deref(), Some("O-1"));
    }
    assert_eq!(reserved(&router, "NEAR", "A"), 2);
    // A rejected order is remembered too.
    let rejected = decide(&mut router, &simple_order("O-2", "R1", &[("A", 500)], ""));
    let (again, duplicate) = decide_at(
        &mut router,
        &simple_order("O-2", "R1", &[("A", 500)], ""),
        noon(),
    )
    .unwrap();
    assert!(duplicate);
    assert_eq!(again, rejected);
}

#[test]
fn cancel_ship_and_stock_levels() {
    let mut router = golden(BOTH_EAST);
    decide(&mut router, &simple_order("O-1", "R1", &[("A", 2)], ""));
    decide(&mut router, &simple_order("O-2", "R1", &[("A", 3)], ""));
    assert_eq!(reserved(&router, "NEAR", "A"), 5);
    // Cancel releases exactly its units; a second cancel is refused.
    router.cancel("O-1").unwrap();
    assert_eq!(reserved(&router, "NEAR", "A"), 3);
    assert!(
        router
            .cancel("O-1")
            .unwrap_err()
            .to_string()
            .contains("already cancelled")
    );
    assert!(router.cancel("nope").is_err());
    // Shipping consumes: on-hand and reserved both drop.
    router.ship("O-2").unwrap();
    assert_eq!(
        (
            on_hand(&router, "NEAR", "A"),
            reserved(&router, "NEAR", "A")
        ),
        (7, 0)
    );
    assert!(router.ship("O-2").is_err());
    // Absolute levels: below what is reserved is refused, the rest applies.
    decide(&mut router, &simple_order("O-3", "R1", &[("A", 4)], ""));
    let near =
        order_router::ids::WarehouseId(router.network().warehouse_ids.get("NEAR").unwrap() as u16);
    let sku = router.catalog().lookup("A").unwrap();
    let levels = [
        order_router::catalog::StockLevel {
            warehouse: near,
            sku,
            on_hand: 3,
        },
        order_router::catalog::StockLevel {
            warehouse: near,
            sku,
            on_hand: 9,
        },
    ];
    let results = router.set_stock(&levels);
    assert!(
        results[0]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("below the 4 units already reserved")
    );
    assert!(results[1].is_ok());
    assert_eq!(on_hand(&router, "NEAR", "A"), 9);
}

#[test]
fn explicit_coordinates_change_the_distance() {
    let mut router = golden(BOTH_EAST);
    // At FAR's own location: FAR is 0 km away, NEAR 100 km.
    let json = simple_order("O-1", "R1", &[("A", 1)], "").replace(
        r#""region":"R1""#,
        r#""region":"R1","lat":31.0,"lon":120.0"#,
    );
    let decision = decide(&mut router, &json);
    assert_eq!(placements(&router, &decision)[0].0, "FAR");
    assert_eq!(decision.shipments[0].distance_km, 0.0);
}

#[test]
fn a_split_tries_other_fills_when_a_parcel_is_too_heavy() {
    // Every carrier takes 20 kg at most. NEAR holds 2 x 15 kg, FAR 1: filling NEAR first
    // makes a 30 kg parcel; the plan that works ships one unit from each.
    let config = with(&[("max_weight_kg = 50.0", "max_weight_kg = 20.0")]);
    let mut router = router_for(
        &config,
        "warehouse,sku,on_hand\nNEAR,HEAVY,2\nFAR,HEAVY,1\n",
    );
    let decision = decide(&mut router, &simple_order("O-1", "R1", &[("HEAVY", 2)], ""));
    assert_eq!(decision.status, Status::Routed, "{:?}", decision.reason);
    assert_eq!(decision.shipments.len(), 2);
    assert!(
        decision
            .shipments
            .iter()
            .all(|shipment| shipment.weight_kg == 15.0)
    );
}

#[test]
fn units_no_carrier_can_take_are_rejected_not_backordered() {
    // ICE needs cold chain; only `cold` carries it, and `cold` does not serve R1 here.
    let config = with(&[("regions = [\"R1\", \"R2\"]", "regions = [\"R2\"]")]);
    let mut router = router_for(&config, "warehouse,sku,on_hand\nFAR,ICE,5\nFAR,A,5\n");
    let decision = decide(
        &mut router,
        &simple_order("O-1", "R1", &[("ICE", 1), ("A", 1)], ""),
    );
    assert_eq!(decision.status, Status::Rejected);
    let reason = decision.reason.unwrap();
    assert_eq!(reason.code, ReasonCode::NoCarrier, "{}", reason.message);
    assert_eq!(reserved(&router, "FAR", "A"), 0);
}

#[test]
fn units_in_stock_that_no_carrier_takes_do_not_wait_for_stock() {
    // A vip order (express at least): A can go express from NEAR, ICE only by `cold`, which
    // has no express service; B is nowhere. Placing A and backordering ICE and B as if they
    // waited for stock would be wrong: ICE will never ship express.
    let mut router = golden("warehouse,sku,on_hand\nNEAR,A,1\nFAR,ICE,1\n");
    let order = simple_order("O-1", "R1", &[("ICE", 1), ("A", 1), ("B", 1)], "")
        .replace(r#"{"id":"C-1"}"#, r#"{"id":"C-1","tier":"vip"}"#);
    let decision = decide(&mut router, &order);
    assert_eq!(decision.status, Status::Rejected);
    assert_eq!(
        decision.reason.unwrap().code,
        ReasonCode::ServiceUnavailable
    );
    assert_eq!(reserved(&router, "NEAR", "A"), 0);
}

#[test]
fn stock_a_warehouse_cannot_handle_does_not_count_as_holding_it() {
    // NEAR holds ICE but cannot handle cold chain; FAR's ICE arrives after the promise (22.9 h
    // by `cold`). Only a split could ship, and its ICE parcel is late: the reason is the promise.
    let mut router = golden("warehouse,sku,on_hand\nNEAR,ICE,5\nNEAR,A,5\nFAR,ICE,1\n");
    let promise = r#","promise_by":"2026-11-11T10:00:00Z""#;
    let decision = decide(
        &mut router,
        &simple_order("O-1", "R1", &[("ICE", 1), ("A", 1)], promise),
    );
    assert_eq!(decision.status, Status::Rejected);
    assert_eq!(decision.reason.unwrap().code, ReasonCode::PromiseUnmeetable);
}
