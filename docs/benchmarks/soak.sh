#!/bin/bash
# The soak of issue 12 (docs/benchmarks.md): a fresh server with a two-minute retention
# window, the load tester's soak scenario (10 min at 20,000 orders/s, every placed order
# marked shipped 20-60 s after its answer, in batches), and a sample of the server's
# records and cold files every 10 s.
# usage: docs/benchmarks/soak.sh OUT_DIR [CATALOG STOCK]   (from the repository's root,
#        after cargo build --release -p loadtest -p order-router)
# The scenario ships the orders it places, so open orders stay bounded (about a minute's)
# and the full demo data works; without CATALOG and STOCK the server uses its built-in demo
# catalogue and stock, the same as
#   target/release/order-router demo-data --out /tmp/demo
#   docs/benchmarks/soak.sh /tmp/soak /tmp/demo/catalog.csv /tmp/demo/stock.csv
# CONFIG=FILE runs the server on another config: the demo network's daily capacities
# (daily_orders, daily_pickups) run out within minutes at 20,000 orders/s, after which every
# order is rejected and none is open; the soak of docs/benchmarks.md raises them a thousandfold.
# SERVE_ARGS="..." adds arguments to `serve` (e.g. --snapshot-every 2000000).
set -u
out=$1; catalog=${2:-}; stock=${3:-}
world=()
if [ -n "$catalog" ]; then world+=(--catalog "$catalog"); fi
if [ -n "$stock" ]; then world+=(--stock "$stock"); fi
mkdir -p "$out"
port=18484
target/release/order-router serve --listen 127.0.0.1:$port --data-dir "$out/data" \
    --retention-seconds 120 --no-watch-config ${CONFIG:+--config "$CONFIG"} ${world[@]+"${world[@]}"} ${SERVE_ARGS:-} \
    > "$out/server.out" 2> "$out/server.err" &
pid=$!
for _ in $(seq 100); do curl -s http://127.0.0.1:$port/healthz > /dev/null && break; sleep 0.2; done
(
    while kill -0 $pid 2> /dev/null; do
        metrics=$(curl -s http://127.0.0.1:$port/metrics)
        memory=$(echo "$metrics" | awk '/^router_zone_records/ && /kept="memory"/ {s += $2} END {print s + 0}')
        disk=$(echo "$metrics" | awk '/^router_zone_records/ && /kept="disk"/ {s += $2} END {print s + 0}')
        rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
        cold=$(du -sk "$out/data/cold" 2> /dev/null | cut -f1)
        echo "$(date +%s) rss_kib $rss memory $memory disk $disk cold_kib $cold"
        sleep 10
    done
) > "$out/samples.txt" &
target/release/loadtest run --target http://127.0.0.1:$port --scenario loadtest/scenarios/soak.toml \
    --report "$out/soak.json" > "$out/loadtest.out" 2>&1
echo "loadtest exit $?" >> "$out/loadtest.out"
sleep 5
kill $pid
wait $pid
