//! The command line as users run it: the real binary, real files.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_order-router"))
}

fn run_with_input(mut command: Command, input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    output
}

#[test]
fn every_config_file_in_the_repository_is_valid() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut checked = 0;
    for entry in std::fs::read_dir(&folder).unwrap() {
        let path = entry.unwrap().path();
        if path
            .extension()
            .is_some_and(|extension| extension == "toml")
        {
            let output = binary().arg("check-config").arg(&path).output().unwrap();
            assert!(
                output.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(String::from_utf8_lossy(&output.stdout).contains(": OK: "));
            checked += 1;
        }
    }
    assert!(checked >= 1);
}

#[test]
fn the_default_world_is_as_big_as_promised() {
    let network = order_router::world::default_network().unwrap();
    assert!(network.zones.len() >= 6);
    assert!(network.warehouses.len() >= 14);
    assert!(network.carriers.len() >= 5);
    assert!(
        network
            .carriers
            .iter()
            .all(|carrier| (2..=4).contains(&carrier.services.len()))
    );
    assert!(network.zones.iter().all(|zone| !zone.fallback.is_empty()));
    assert_eq!(network.regions.len(), 31);
    // The embedded copy is the file.
    let from_file =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/router.toml"))
            .unwrap();
    assert_eq!(from_file, order_router::world::EMBEDDED_CONFIG);
}

#[test]
fn check_config_names_file_line_and_key() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("broken.toml");
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/router.toml"))
            .unwrap()
            .replacen("split_weight = 40.0", "split_weight = -40.0", 1);
    std::fs::write(&path, text).unwrap();
    let output = binary().arg("check-config").arg(&path).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!(
        "{}:14:16: policy.split_weight: must be a finite number >= 0, got -40",
        path.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(stderr.contains("1 problem"), "{stderr}");
}

/// Writes a small demo world and `orders` orders into a temp folder.
fn demo_folder(orders: u64) -> tempfile::TempDir {
    let folder = tempfile::tempdir().unwrap();
    let output = binary()
        .args([
            "demo-data",
            "--skus",
            "3000",
            "--orders",
            &orders.to_string(),
            "--out",
        ])
        .arg(folder.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    folder
}

fn route_command(folder: &Path) -> Command {
    let mut command = binary();
    command
        .arg("route")
        .arg("--catalog")
        .arg(folder.join("catalog.csv"))
        .arg("--stock")
        .arg(folder.join("stock.csv"))
        .args(["--now", "2026-11-11T00:00:00Z"]);
    command
}

#[test]
fn route_is_deterministic_and_answers_every_line_in_order() {
    let folder = demo_folder(3000);
    let input = std::fs::read(folder.path().join("orders.ndjson")).unwrap();
    let first = run_with_input(route_command(folder.path()), &input);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let second = run_with_input(route_command(folder.path()), &input);
    assert_eq!(
        first.stdout, second.stdout,
        "two runs must give identical bytes"
    );
    let inputs: Vec<serde_json::Value> = input
        .split(|byte| *byte == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_slice(line).unwrap())
        .collect();
    let outputs: Vec<serde_json::Value> = first
        .stdout
        .split(|byte| *byte == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_slice(line).unwrap())
        .collect();
    assert_eq!(inputs.len(), outputs.len());
    let mut statuses = std::collections::BTreeMap::new();
    for (order, decision) in inputs.iter().zip(&outputs) {
        assert_eq!(order["id"], decision["order_id"]);
        // Each order is decided at its created_at.
        let decided =
            order_router::time::Millis::parse_rfc3339(decision["decided_at"].as_str().unwrap());
        let created =
            order_router::time::Millis::parse_rfc3339(order["created_at"].as_str().unwrap());
        assert_eq!(decided, created);
        *statuses
            .entry(decision["status"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
    }
    // The demo mix exercises more than one outcome.
    assert!(statuses["routed"] > 2000, "{statuses:?}");
    assert!(statuses.len() >= 3, "{statuses:?}");
    let summary = String::from_utf8_lossy(&first.stderr);
    assert!(summary.contains("3000 lines:"), "{summary}");
}

#[test]
fn bad_lines_get_invalid_records_and_the_stream_goes_on() {
    let folder = demo_folder(0);
    let good = |id: &str| {
        format!(
            r#"{{"id":"{id}","customer":{{"id":"C"}},"ship_to":{{"region":"ZJ"}},"lines":[{{"sku":"SKU-000001","qty":1}}]}}"#
        )
    };
    let mut input = Vec::new();
    input.extend(format!("{}\n", good("A-1")).as_bytes());
    input.extend(b"{not json\n");
    input.extend(format!("{}\n", good("A-2").replace("SKU-000001", "SKU-999999")).as_bytes());
    input.extend(b"\xff\xfe\n");
    input.extend(format!("{}\n", good("A-1").replace("\"qty\":1", "\"qty\":2")).as_bytes());
    input.extend(format!("{}\n", good("A-1")).as_bytes());
    input.extend(format!("{}\n", good("A-3").replace("\"qty\":1", "\"qty\":0")).as_bytes());
    input.extend(vec![b'x'; 70_000]);
    input.push(b'\n');
    input.extend(good("A-4").as_bytes()); // no final newline
    let output = run_with_input(route_command(folder.path()), &input);
    assert!(output.status.success());
    let lines: Vec<serde_json::Value> = output
        .stdout
        .split(|byte| *byte == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_slice(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 9);
    assert_eq!(lines[0]["order_id"], "A-1");
    let invalid = |index: usize, code: &str| {
        assert_eq!(lines[index]["status"], "invalid", "{}", lines[index]);
        assert_eq!(lines[index]["line"], index as u64 + 1);
        assert_eq!(lines[index]["error"]["code"], code, "{}", lines[index]);
        assert!(
            !lines[index]["error"]["message"]
                .as_str()
                .unwrap()
                .is_empty()
        );
    };
    invalid(1, "bad_json");
    invalid(2, "unknown_sku");
    assert_eq!(lines[2]["order_id"], "A-2");
    invalid(3, "bad_utf8");
    invalid(4, "id_conflict");
    assert_eq!(lines[5]["order_id"], "A-1");
    assert_eq!(lines[5]["duplicate"], true);
    assert_eq!(lines[5]["seq"], lines[0]["seq"]);
    invalid(6, "bad_qty");
    invalid(7, "line_too_long");
    assert_eq!(lines[8]["order_id"], "A-4");
    assert!(lines[8].get("duplicate").is_none());
}

#[test]
fn route_refuses_bad_files_clearly() {
    let folder = tempfile::tempdir().unwrap();
    let catalog = folder.path().join("catalog.csv");
    std::fs::write(&catalog, "sku,weight_g,capabilities\nA,12x,\n").unwrap();
    let output = binary()
        .arg("route")
        .arg("--catalog")
        .arg(&catalog)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:2: weight_g must be a whole number of grams, got '12x'",
            catalog.display()
        )),
        "{stderr}"
    );
}

#[test]
fn check_config_refuses_weak_tokens_and_inconsistent_limits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("router.toml");
    let text = std::fs::read_to_string("config/router.toml")
        .unwrap()
        .replace("max_orders_in_flight = 65536", "max_orders_in_flight = 100")
        .replace("priority_reserve = 8192", "priority_reserve = 100")
        + "\n[auth]\nops_tokens = [\"short\"]\n";
    std::fs::write(&path, text).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_order-router"))
        .arg("check-config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("limits.priority_reserve"), "{stderr}");
    assert!(stderr.contains("auth.ops_tokens[0]"), "{stderr}");
    assert!(stderr.contains("at least 16"), "{stderr}");
    // And the token itself is never echoed.
    assert!(!stderr.contains("\"short\""), "{stderr}");
}

/// `journal verify --replay` on the journals a real `serve` wrote: every zone is rebuilt
/// against the world it was written with; against a catalogue that lacks a SKU the journal
/// names, the zone is refused by the segment file and byte offset of the record, and the
/// exit status is 1.
#[test]
fn journal_verify_replay_rebuilds_every_zone_and_names_the_record_that_does_not_fit() {
    use common::server::Server;
    use common::{GOLDEN, GOLDEN_CATALOG, simple_order};
    // No HEAVY in the starting stock: the zone's first snapshot does not name it, only the
    // records written after it do (the stock level and the decision below).
    let stock = "warehouse,sku,on_hand\nNEAR,A,50\nWEST,B,50\n";
    let mut server = Server::start(GOLDEN, GOLDEN_CATALOG, stock, &[]);
    let upload = server.request(
        "PUT",
        "/v1/stock",
        "text/csv",
        b"warehouse,sku,on_hand\nNEAR,HEAVY,5\n",
    );
    assert_eq!(upload.status, 200, "{}", upload.text());
    let answers = server
        .post_ndjson(&format!(
            "{}\n{}\n",
            simple_order("P-1", "R1", &[("HEAVY", 1)], ""),
            simple_order("P-2", "R2", &[("B", 1)], "")
        ))
        .lines();
    assert!(
        answers.iter().all(|answer| answer["status"] == "routed"),
        "{answers:?}"
    );
    server.terminate();
    let folder = server.dir.path();
    let data = folder.join("data");
    let verify_with = |config: &Path, catalog: &Path| {
        binary()
            .args(["journal", "verify", "--replay", "--data-dir"])
            .arg(&data)
            .arg("--config")
            .arg(config)
            .arg("--catalog")
            .arg(catalog)
            .arg("--stock")
            .arg(folder.join("stock.csv"))
            .output()
            .unwrap()
    };
    let verify = |catalog: &Path| verify_with(&folder.join("router.toml"), catalog);

    let replayed = verify(&folder.join("catalog.csv"));
    let report = String::from_utf8_lossy(&replayed.stdout);
    assert!(
        replayed.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&replayed.stderr)
    );
    assert!(
        report.contains("zone east: replayed, 1 orders")
            && report.contains("zone west: replayed, 1 orders"),
        "{report}"
    );

    // Where the stock level naming HEAVY is, as `journal dump` says.
    let dumped = binary()
        .args(["journal", "dump", "--zone", "east", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let stock_record: serde_json::Value = String::from_utf8_lossy(&dumped.stdout)
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .find(|record| record["record"]["kind"] == "stock")
        .expect("the stock level is journaled");
    let place = format!(
        "{} at byte {}",
        stock_record["segment"].as_str().unwrap(),
        stock_record["offset"]
    );

    let without_heavy = folder.join("without-heavy.csv");
    std::fs::write(&without_heavy, GOLDEN_CATALOG.replace("HEAVY,15000,\n", "")).unwrap();
    let refused = verify(&without_heavy);
    let report = String::from_utf8_lossy(&refused.stdout);
    assert_eq!(refused.status.code(), Some(1), "{report}");
    let damaged = report
        .lines()
        .find(|line| line.starts_with("zone east: DAMAGED:"))
        .unwrap_or_else(|| panic!("{report}"));
    assert!(
        damaged.contains(&place) && damaged.contains("HEAVY"),
        "{damaged} should name {place} and the SKU"
    );
    assert_eq!(damaged.matches("zone east").count(), 1, "{damaged}");
    assert!(report.contains("zone west: replayed, 1 orders"), "{report}");

    // A journal of a zone the config does not define is an error naming its directory.
    let renamed = folder.join("renamed.toml");
    std::fs::write(&renamed, GOLDEN.replace("\"west\"", "\"wild\"")).unwrap();
    let refused = verify_with(&renamed, &folder.join("catalog.csv"));
    let error = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{error}");
    assert!(
        error.contains("zones/west: 'west' is not a zone of the config"),
        "{error}"
    );
}
