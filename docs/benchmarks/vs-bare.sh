#!/bin/bash
# usage: ROUNDS=5 docs/benchmarks/vs-bare.sh BIN... : per round, a fresh bare endpoint
# (examples/bare_actix) then a fresh `serve` of each BIN in turn (journal on fsync, the embedded
# demo world, a new temporary data dir), one stream of 1M orders each (examples/stream_client);
# prints each run's rate and server CPU, then per program the median rate, its ratio to the bare
# endpoint's median and the median server CPU. Run from the repository's root after
# `cargo build --release --examples`; FILE: the orders (default /tmp/now/orders.ndjson, from
# `order-router demo-data --out /tmp/now --orders 1000000 --start now`).
EX=$PWD/target/release/examples; FILE=${FILE:-/tmp/now/orders.ndjson}; ROUNDS=${ROUNDS:-5}
out=$(mktemp)
one() { # label command...
    label=$1; shift; dir=$(mktemp -d /tmp/stXXXX)
    "$@" > $dir/out 2> $dir/err &
    pid=$!
    for try in $(seq 100); do grep -q 'http://' $dir/out && break; sleep 0.1; done
    addr=$(grep -o 'http://[0-9.:]*' $dir/out | head -1)
    t0=$(awk '{print $14+$15}' /proc/$pid/stat)
    rate=$($EX/stream_client --target $addr --file $FILE --streams 1 2>&1 | awk '/orders\/s/ {print $2}')
    t1=$(awk '{print $14+$15}' /proc/$pid/stat)
    echo "$label $rate $((t1 - t0))" | tee -a $out
    kill $pid; wait $pid 2>/dev/null; rm -rf $dir
}
for round in $(seq $ROUNDS); do
    one bare $EX/bare_actix --listen 127.0.0.1:0
    for bin in "$@"; do
        one $(basename $bin) $bin serve --listen 127.0.0.1:0 --data-dir /tmp/vs-bare-$$/data --no-watch-config
        rm -rf /tmp/vs-bare-$$
    done
done
python3 - $out <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    label, rate, ticks = line.split()
    runs[label].append((float(rate), int(ticks) / 100))
bare = statistics.median(rate for rate, _ in runs["bare"])
for label, values in runs.items():
    rate = statistics.median(r for r, _ in values)
    cpu = statistics.median(c for _, c in values)
    print(f"{label}: median {rate:,.0f} orders/s, {rate / bare:.3f} of bare, server CPU {cpu:.2f} s"
          f" (runs {' '.join(f'{r / 1000:.0f}k' for r, _ in values)})")
PY
rm -f $out
