#!/bin/bash
# usage: docs/benchmarks/stream-pairs.sh BIN_A BIN_B [PAIRS] [serve args...]: one-stream.sh in pairs: PAIRS (default 10)
# alternating runs of A then B, each a fresh `serve` (journal on fsync, the embedded demo world,
# a new temporary data dir) taking one stream of 1M orders from examples/stream_client; prints
# each run's rate and the server's user and system CPU seconds, then the medians and the
# ratio B/A of each pair. For before/after claims on one stream: on this shared 2-core VM
# two runs of one binary differ by 10-15%, so a change of a few percent needs the pairs.
# FILE: the orders (default /tmp/now/orders.ndjson, from `order-router demo-data --out
# /tmp/now --orders 1000000 --start now`). Run from the repository's root after
# `cargo build --release --examples`.
A=$(realpath "$1"); B=$(realpath "$2"); PAIRS=${3:-10}; shift; shift; shift
EX=$PWD/target/release/examples; FILE=${FILE:-/tmp/now/orders.ndjson}
out=$(mktemp)
one() { # label binary
    dir=$(mktemp -d)
    $2 serve --listen 127.0.0.1:0 --data-dir $dir/data --no-watch-config "${@:3}" > $dir/out 2> $dir/err &
    pid=$!
    for i in $(seq 100); do grep -q 'http://' $dir/out && break; sleep 0.1; done
    addr=$(grep -o 'http://[0-9.:]*' $dir/out | head -1)
    cpu0=$(awk '{print $14, $15}' /proc/$pid/stat)
    rate=$($EX/stream_client --target $addr --file $FILE --streams 1 2>&1 | awk '/orders\/s/ {print $2}')
    cpu1=$(awk '{print $14, $15}' /proc/$pid/stat)
    echo "$1 $rate $(echo $cpu0 $cpu1 | awk '{printf "%.2f %.2f", ($3-$1)/100, ($4-$2)/100}')" | tee -a $out
    kill $pid; wait $pid 2>/dev/null; rm -rf $dir
}
echo "binary orders/s user_s system_s"
for pair in $(seq $PAIRS); do
    one A $A "$@"
    one B $B "$@"
done
python3 - $out <<'EOF'
import statistics, sys
runs = {"A": [], "B": []}
for line in open(sys.argv[1]):
    label, rate, user, system = line.split()
    runs[label].append((float(rate), float(user) + float(system)))
for label, values in runs.items():
    print(f"{label}: median {statistics.median(v[0] for v in values):,.0f} orders/s, "
          f"server CPU {statistics.median(v[1] for v in values):.2f} s")
pairs = list(zip(runs["A"], runs["B"]))
print("B/A rate per pair:", " ".join(f"{b[0] / a[0]:.3f}" for a, b in pairs))
print("B/A CPU per pair: ", " ".join(f"{b[1] / a[1]:.3f}" for a, b in pairs))
EOF
rm -f $out
