#!/bin/bash
# What shipping costs, a request per shipment against batches (POST /v1/shipments):
# ROUNDS (default 2) rounds of three runs, each a fresh `serve` (journal on fsync, the
# embedded demo world, a new temporary data dir) and the same seeded load-tester run (RATE
# orders/s, default 5,000, for 60 s over 8 streams): without shipping; every routed or
# backordered order shipped 2-5 s after its answer, a request each over 8 connections
# (`batch = 1`); the same as batches over one connection (`batch = 1000`: the shipments due
# while the last request was out go together). Prints per run the shipments, the requests,
# the server's CPU seconds (user + system, from /proc) and the load tester's (from
# /usr/bin/time), then the medians and what a shipment costs each side beyond the run
# without shipping. Run from the repository's root after
# `cargo build --release -p order-router -p loadtest`; nothing else running.
ROUNDS=${1:-2}; RATE=${RATE:-5000}
work=$(mktemp -d); out=$work/runs
scenario() { # batch connections ("none": no shipping)
    sed -e "s/^rate = .*/rate = $RATE/" -e "s/^duration_s = .*/duration_s = 60/" \
        -e 's/^description = .*/description = "ship cost"/' loadtest/scenarios/steady.toml
    if [ "$1" != none ]; then
        printf '\n[ship]\nshare = 1.0\ndelay_s = [2, 5]\nconnections = %s\nbatch = %s\n' "$2" "$1"
    fi
}
one() { # batch connections
    dir=$(mktemp -d)
    scenario $1 $2 > $dir/scenario.toml
    target/release/order-router serve --listen 127.0.0.1:0 --data-dir $dir/data --no-watch-config > $dir/out 2> $dir/err &
    pid=$!
    for i in $(seq 100); do grep -q 'http://' $dir/out && break; sleep 0.1; done
    addr=$(grep -o 'http://[0-9.:]*' $dir/out | head -1)
    cpu0=$(awk '{print $14 + $15}' /proc/$pid/stat)
    /usr/bin/time -f "%U %S" -o $dir/time target/release/loadtest run --target $addr \
        --scenario $dir/scenario.toml --report $dir/report.json > $dir/loadtest.out 2>&1
    cpu1=$(awk '{print $14 + $15}' /proc/$pid/stat)
    python3 - $1 $cpu0 $cpu1 $dir/time $dir/report.json <<'EOF2' | tee -a $out
import json, sys
batch, cpu0, cpu1, times, report = sys.argv[1:]
report = json.load(open(report))
shipping = report.get("shipping") or {"shipped": 0, "requests": 0, "failed": 0}
user, system = map(float, open(times).read().split()[-2:])
print(batch, report["totals"]["decided"], shipping["shipped"], shipping["requests"], shipping["failed"],
      f"{(float(cpu1) - float(cpu0)) / 100:.2f}", f"{user + system:.2f}")
EOF2
    kill $pid; wait $pid 2>/dev/null; rm -rf $dir
}
echo "batch decided shipped requests failed server_cpu_s loadtest_cpu_s"
for round in $(seq $ROUNDS); do
    one none 0
    one 1 8
    one 1000 1
done
python3 - $out <<'EOF2'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    batch, decided, shipped, requests, failed, server, tool = line.split()
    runs.setdefault(batch, []).append((int(shipped), int(requests), float(server), float(tool)))
median = lambda values, i: statistics.median(v[i] for v in values)
for batch, values in runs.items():
    print(f"batch {batch}: shipped {median(values, 0):,.0f} in {median(values, 1):,.0f} requests; "
          f"server CPU {median(values, 2):.2f} s, load tester CPU {median(values, 3):.2f} s")
for batch in ("1", "1000"):
    shipped = median(runs[batch], 0)
    server = (median(runs[batch], 2) - median(runs["none"], 2)) / shipped * 1e6
    tool = (median(runs[batch], 3) - median(runs["none"], 3)) / shipped * 1e6
    print(f"batch {batch}: a shipment costs the server {server:.1f} us of CPU, the load tester {tool:.1f} us")
EOF2
rm -rf $work
