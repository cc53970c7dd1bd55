#!/bin/bash
# What shipping costs, a request per shipment against batches (POST /v1/shipments):
# PAIRS (default 3) pairs of runs, each a fresh `serve` (journal on fsync, the embedded demo
# world, a new temporary data dir) and the same seeded load-tester run (RATE orders/s,
# default 5,000, for 60 s over 8 streams, every routed or backordered order shipped 2-5 s
# after its answer over 8 connections), first with `batch = 1`, then `batch = 1000`.
# Prints per run the shipments, the requests, the server's CPU seconds (user + system, from
# /proc) and the load tester's (from /usr/bin/time), then the medians and the CPU a
# shipment costs each side: the runs differ only in how they ship, so the difference of the
# server's CPU over the shipments is what a request per shipment costs beyond a batch line.
# Run from the repository's root after `cargo build --release -p order-router -p loadtest`.
PAIRS=${1:-3}; RATE=${RATE:-5000}
work=$(mktemp -d); out=$work/runs
scenario() { # batch
    sed -e "s/^rate = .*/rate = $RATE/" -e "s/^duration_s = .*/duration_s = 60/" \
        -e 's/^description = .*/description = "ship cost"/' loadtest/scenarios/steady.toml
    printf '\n[ship]\nshare = 1.0\ndelay_s = [2, 5]\nconnections = 8\nbatch = %s\n' "$1"
}
one() { # batch
    dir=$(mktemp -d)
    scenario $1 > $dir/scenario.toml
    target/release/order-router serve --listen 127.0.0.1:0 --data-dir $dir/data --no-watch-config > $dir/out 2> $dir/err &
    pid=$!
    for i in $(seq 100); do grep -q 'http://' $dir/out && break; sleep 0.1; done
    addr=$(grep -o 'http://[0-9.:]*' $dir/out | head -1)
    cpu0=$(awk '{print $14 + $15}' /proc/$pid/stat)
    /usr/bin/time -f "%U %S" -o $dir/time target/release/loadtest run --target $addr \
        --scenario $dir/scenario.toml --report $dir/report.json > $dir/loadtest.out 2>&1
    cpu1=$(awk '{print $14 + $15}' /proc/$pid/stat)
    python3 - $1 $cpu0 $cpu1 $dir/time $dir/report.json <<'EOF' | tee -a $out
import json, sys
batch, cpu0, cpu1, times, report = sys.argv[1:]
shipping = json.load(open(report))["shipping"]
user, system = map(float, open(times).read().split()[-2:])
print(batch, shipping["shipped"], shipping["requests"], shipping["failed"],
      f"{(float(cpu1) - float(cpu0)) / 100:.2f}", f"{user + system:.2f}")
EOF
    kill $pid; wait $pid 2>/dev/null; rm -rf $dir
}
echo "batch shipped requests failed server_cpu_s loadtest_cpu_s"
for pair in $(seq $PAIRS); do
    one 1
    one 1000
done
python3 - $out <<'EOF'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    batch, shipped, requests, failed, server, tool = line.split()
    runs.setdefault(batch, []).append((int(shipped), int(requests), float(server), float(tool)))
median = lambda values, i: statistics.median(v[i] for v in values)
for batch, values in runs.items():
    print(f"batch {batch}: shipped {median(values, 0):,.0f} in {median(values, 1):,.0f} requests; "
          f"server CPU {median(values, 2):.2f} s, load tester CPU {median(values, 3):.2f} s")
single, batched = runs["1"], runs["1000"]
shipped = median(single, 0)
for name, i in (("server", 2), ("load tester", 3)):
    extra = median(single, i) - median(batched, i)
    print(f"{name}: a request per shipment costs {extra / shipped * 1e6:.1f} us of CPU a shipment more than a batch line")
EOF
rm -rf $work
