//! Order validation: every way a line can be wrong gets its own code and a message that
//! says what and where; defaults apply where the contract gives them.

mod common;

use common::*;
use order_router::ingest::parse_order;
use order_router::model::ServiceLevel;

fn error_of(line: &str) -> (String, String, Option<String>) {
    let router = router(GOLDEN, GOLDEN_CATALOG, "warehouse,sku,on_hand\n");
    let invalid = parse_order(line.as_bytes(), router.network(), router.catalog()).unwrap_err();
    (
        invalid.code.name().to_owned(),
        invalid.message,
        invalid.order_id.map(|id| id.to_string()),
    )
}

#[test]
fn each_problem_has_its_code() {
    let good = simple_order("O-1", "R1", &[("A", 1)], "");
    let cases: &[(String, &str, &str)] = &[
        ("{\"id\":".into(), "bad_json", "malformed JSON"),
        ("[1,2]".into(), "bad_json", "not an order"),
        ("   ".into(), "bad_json", "empty line"),
        (good.replace(r#""id":"O-1","#, ""), "missing_field", "'id'"),
        (good.replace("O-1", "O 1"), "bad_id", "A-Za-z0-9"),
        (good.replace("O-1", &"x".repeat(65)), "bad_id", "1-64"),
        (
            good.replace(r#""customer":{"id":"C-1"},"#, ""),
            "missing_field",
            "'customer'",
        ),
        (
            good.replace(r#"{"id":"C-1"}"#, r#"{"id":"C-1","tier":"gold"}"#),
            "unknown_tier",
            "gold",
        ),
        (good.replace("R1", "R9"), "unknown_region", "R9"),
        (
            good.replace(r#""region":"R1""#, r#""region":"R1","lat":95.0,"lon":1.0"#),
            "bad_coordinates",
            "ship_to.lat",
        ),
        (
            good.replace(r#""region":"R1""#, r#""region":"R1","lat":30.0"#),
            "bad_coordinates",
            "together",
        ),
        (
            good.replace(
                r#""region":"R1""#,
                r#""region":"R1","lat":"north","lon":1.0"#,
            ),
            "bad_coordinates",
            "a string",
        ),
        (
            good.replace("}]", r#"}],"service":"overnight""#),
            "bad_service",
            "overnight",
        ),
        (
            good.replace("}]", r#"}],"promise_by":"tomorrow""#),
            "bad_time",
            "promise_by",
        ),
        (
            good.replace("}]", r#"}],"created_at":"2026-13-01T00:00:00Z""#),
            "bad_time",
            "created_at",
        ),
        (
            good.replace("}]", r#"}],"split":"maybe""#),
            "bad_field",
            "split",
        ),
        (
            good.replace(r#"[{"sku":"A","qty":1}]"#, "[]"),
            "missing_field",
            "'lines' is empty",
        ),
        (
            good.replace(r#""sku":"A""#, r#""sku":"NOPE""#),
            "unknown_sku",
            "lines[0].sku \"NOPE\"",
        ),
        (
            good.replace(r#""qty":1"#, r#""qty":0"#),
            "bad_qty",
            "lines[0].qty",
        ),
        (
            good.replace(r#""qty":1"#, r#""qty":1.5"#),
            "bad_qty",
            "got 1.5",
        ),
        (
            good.replace(r#""qty":1"#, r#""qty":-2"#),
            "bad_qty",
            "got -2",
        ),
        (
            good.replace(r#""qty":1"#, r#""qty":"1""#),
            "bad_qty",
            "got a string",
        ),
        (
            good.replace(r#","qty":1"#, ""),
            "missing_field",
            "lines[0].qty",
        ),
        (
            good.replace(r#""qty":1"#, r#""qty":1,"unit_price":-1"#),
            "bad_field",
            "unit_price",
        ),
    ];
    for (line, code, fragment) in cases {
        let (found, message, order_id) = error_of(line);
        assert_eq!(found, *code, "{line}: {message}");
        assert!(
            message.contains(fragment),
            "{line}: {message} lacks {fragment}"
        );
        // Once the id is readable and valid, the record names it.
        if !matches!(*code, "bad_json" | "bad_id") && line.contains("\"O-1\"") {
            assert_eq!(order_id.as_deref(), Some("O-1"), "{line}");
        }
    }
}

#[test]
fn too_many_lines_and_bad_utf8() {
    let router = router(
        &GOLDEN.replace(
            "max_shipments = 3",
            "max_shipments = 3\n\n[limits]\nmax_lines_per_order = 2",
        ),
        GOLDEN_CATALOG,
        "warehouse,sku,on_hand\n",
    );
    let line = simple_order("O-1", "R1", &[("A", 1), ("B", 1), ("A", 1)], "");
    let invalid = parse_order(line.as_bytes(), router.network(), router.catalog()).unwrap_err();
    assert_eq!(invalid.code.name(), "too_many_lines");
    let invalid =
        parse_order(b"{\"id\":\"\xc3\x28\"}", router.network(), router.catalog()).unwrap_err();
    assert_eq!(invalid.code.name(), "bad_utf8");
}

#[test]
fn defaults_and_unknown_fields() {
    let router = router(GOLDEN, GOLDEN_CATALOG, "warehouse,sku,on_hand\n");
    let line = simple_order(
        "O-1",
        "R1",
        &[("A", 2), ("A", 1)],
        r#","gift_note":{"text":"hello there"},"tags":[]"#,
    );
    let order = parse_order(line.as_bytes(), router.network(), router.catalog()).unwrap();
    assert_eq!(order.service, ServiceLevel::Standard);
    assert_eq!(router.network().tier_name(order.tier), "standard");
    assert!(order.at_region_centroid);
    assert_eq!((order.latitude, order.longitude), (30.0, 120.0));
    assert!(order.split_allowed);
    assert_eq!(order.promise_by, None);
    assert_eq!(order.lines.len(), 2);
    // created_at and unknown fields are not content; everything else is.
    let restamped = line
        .replace("}]", r#"}],"created_at":"2026-11-11T00:00:00Z""#)
        .replace("hello there", "goodbye");
    let again = parse_order(restamped.as_bytes(), router.network(), router.catalog()).unwrap();
    assert_eq!(again.content_hash, order.content_hash);
    let other = parse_order(
        line.replace(r#""qty":2"#, r#""qty":3"#).as_bytes(),
        router.network(),
        router.catalog(),
    )
    .unwrap();
    assert_ne!(other.content_hash, order.content_hash);
}

#[test]
fn lines_and_tags_checked_while_parsing_keep_json_rules() {
    let router = router(GOLDEN, GOLDEN_CATALOG, "warehouse,sku,on_hand\n");
    let parse = |line: &str| parse_order(line.as_bytes(), router.network(), router.catalog());
    let good = simple_order("O-1", "R1", &[("A", 1), ("B", 2)], "");

    // A repeated field is malformed, as serde's derive would say, for every field.
    for field in [
        r#""lines":[{"sku":"A","qty":1}]"#,
        r#""tags":[]"#,
        r#""id":"O-2""#,
    ] {
        let line = good.replacen('{', &format!("{{{field},"), 1);
        let line = if field.starts_with(r#""tags""#) {
            line.replacen('{', r#"{"tags":["x"],"#, 1)
        } else {
            line
        };
        let invalid = parse(&line).unwrap_err();
        assert_eq!(invalid.code.name(), "bad_json", "{line}");
        assert!(
            invalid.message.contains("duplicate field"),
            "{}",
            invalid.message
        );
    }

    // ...even when the first of the two was null, as serde's derive says too.
    for field in ["id", "lines", "tags", "service"] {
        let line = good.replacen('{', &format!("{{\"{field}\":null,"), 1);
        let line = if field == "service" {
            line.replace("}]", r#"}],"service":"express""#)
        } else if field == "tags" {
            line.replace("}]", r#"}],"tags":[]"#)
        } else {
            line
        };
        let invalid = parse(&line).unwrap_err();
        assert_eq!(invalid.code.name(), "bad_json", "{line}");
        assert!(
            invalid.message.contains("duplicate field"),
            "{}",
            invalid.message
        );
    }

    // A wrong line checked mid-parse does not hide a syntax error later in the line.
    let broken = good
        .replace(r#""sku":"A""#, r#""sku":"NOPE""#)
        .replace("}]", "}],");
    assert_eq!(parse(&broken).unwrap_err().code.name(), "bad_json");
    // ...nor a wrongly typed element after it.
    let typed = good.replace(r#",{"sku":"B","qty":2}"#, r#",{"sku":"NOPE","qty":1},7"#);
    assert_eq!(parse(&typed).unwrap_err().code.name(), "bad_json");
    let tags = good.replace("}]", r#"}],"tags":["a",1]"#);
    assert_eq!(parse(&tags).unwrap_err().code.name(), "bad_json");

    // null is an absent field.
    let null_lines = good.replace(r#"[{"sku":"A","qty":1},{"sku":"B","qty":2}]"#, "null");
    let invalid = parse(&null_lines).unwrap_err();
    assert_eq!(invalid.code.name(), "missing_field");
    assert!(invalid.message.contains("'lines'"), "{}", invalid.message);
    let null_tags = good.replace("}]", r#"}],"tags":null"#);
    assert_eq!(
        parse(&null_tags).unwrap().content_hash,
        parse(&good).unwrap().content_hash
    );

    // Of two problems, the same one is reported whichever field comes first: the region
    // is checked before the lines.
    let two = good
        .replace(r#""sku":"A""#, r#""sku":"NOPE""#)
        .replace("R1", "R9");
    assert_eq!(parse(&two).unwrap_err().code.name(), "unknown_region");
    let lines_start = two.find(r#""lines""#).unwrap();
    let lines_end = two.rfind(']').unwrap() + 1;
    let moved = format!(
        "{{{},{}}}",
        &two[lines_start..lines_end],
        two[1..lines_start].trim_end_matches(',').to_owned() + &two[lines_end..two.len() - 1]
    );
    assert!(moved.starts_with(r#"{"lines""#), "{moved}");
    assert_eq!(parse(&moved).unwrap_err().code.name(), "unknown_region");
    // And of two bad lines, the first.
    let both = good
        .replace(r#""sku":"A""#, r#""sku":"NOPE""#)
        .replace(r#""qty":2"#, r#""qty":0"#);
    let invalid = parse(&both).unwrap_err();
    assert_eq!(invalid.code.name(), "unknown_sku");

    // The lines' order, and every tag, are content.
    let swapped = simple_order("O-1", "R1", &[("B", 2), ("A", 1)], "");
    assert_ne!(
        parse(&swapped).unwrap().content_hash,
        parse(&good).unwrap().content_hash
    );
    let tagged = |tags: &str| {
        parse(&good.replace("}]", &format!(r#"}}],"tags":{tags}"#)))
            .unwrap()
            .content_hash
    };
    assert_eq!(tagged("[]"), parse(&good).unwrap().content_hash);
    assert_ne!(tagged(r#"["a"]"#), tagged(r#"["b"]"#));
    assert_ne!(tagged(r#"["a","b"]"#), tagged(r#"["ab"]"#));
}
