#!/bin/bash
# usage: docs/benchmarks/stages.sh ABLATED BIN... [ROUNDS=5 in the environment]: where one stream's
# CPU goes, stage by stage. ABLATED is a build with docs/benchmarks/stages.patch applied (it
# applies to 888d384: `git worktree add /tmp/st 888d384 && cd /tmp/st && git apply
# .../stages.patch && cargo build --release`); its switches stop an order after a stage:
#   parse   ABL=1  parsed, then a fixed acknowledgement from the HTTP worker
#   claim   ABL=2  + its id claimed (zone::admit), the visit dropped
#   hop     ABL=3  + the visit sent to its zone actor, answered there without deciding
#   decide  ABL=0, --sync none   the whole order, no journal
#   noio    NOIO=1, --sync fsync  + the journal, every write and fdatasync skipped
# (the patch has two more, run by hand: ABLR=1 answers each decision with a 40-byte line
# instead of its JSON, ABLR=2 renders the JSON into a scratch buffer first; ABLF=1 feeds
# nothing to the decision feed)
# then each BIN (a whole router, --sync fsync, labelled by its file name). Per round, in
# turn: the bare endpoint (examples/bare_actix), then every stage and binary, a fresh
# server each, one stream of 1M orders (examples/stream_client, FILE, default
# /tmp/now/orders.ndjson). Prints each run (label, orders/s, server CPU ticks of 10 ms)
# and the medians with their ratio to the bare endpoint's. ABLATED `-`: no stages, the bare
# endpoint and the routers only (`ROUNDS=5 docs/benchmarks/stages.sh - BIN...`: one stream
# against the bare endpoint). Run from the repository's root after
# `cargo build --release --examples`.
ABLATED=$1; shift
[ "$ABLATED" = - ] || ABLATED=$(realpath "$ABLATED")
EX=$PWD/target/release/examples; FILE=${FILE:-/tmp/now/orders.ndjson}; ROUNDS=${ROUNDS:-5}
out=$(mktemp)
run() { # label binary env... -- serve args...
    local label=$1 bin=$2; shift 2; local envs=()
    while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
    local dir; dir=$(mktemp -d)
    env "${envs[@]}" $bin serve --listen 127.0.0.1:0 --data-dir $dir/data --no-watch-config "$@" > $dir/out 2> $dir/err &
    local pid=$!
    for i in $(seq 100); do grep -q 'http://' $dir/out && break; sleep 0.1; done
    measure $label $pid "$(grep -o 'http://[0-9.:]*' $dir/out | head -1)"
    kill $pid; wait $pid 2>/dev/null; rm -rf $dir
}
measure() { # label pid address
    local t0 t1 rate
    t0=$(awk '{print $14+$15}' /proc/$2/stat)
    rate=$($EX/stream_client --target $3 --file $FILE --streams 1 2>&1 | awk '/orders\/s/ {print $2}')
    t1=$(awk '{print $14+$15}' /proc/$2/stat)
    echo "$1 $rate $((t1 - t0))" | tee -a $out
}
for round in $(seq $ROUNDS); do
    $EX/bare_actix --listen 127.0.0.1:0 > $out.bare 2>&1 &
    pid=$!
    for i in $(seq 100); do grep -q 'http://' $out.bare && break; sleep 0.1; done
    measure bare $pid "$(grep -o 'http://[0-9.:]*' $out.bare | head -1)"
    kill $pid; wait $pid 2>/dev/null
    if [ "$ABLATED" != - ]; then
        run parse $ABLATED ABL=1 -- --sync none
        run claim $ABLATED ABL=2 -- --sync none
        run hop $ABLATED ABL=3 -- --sync none
        run decide $ABLATED ABL=0 -- --sync none
        run noio $ABLATED NOIO=1 -- --sync fsync
    fi
    for bin in "$@"; do run $(basename $bin) $(realpath $bin) -- --sync fsync; done
done
python3 - $out <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    label, rate, ticks = line.split()
    runs[label].append((float(rate), int(ticks) / 100))
bare = statistics.median(rate for rate, _ in runs["bare"])
for label, values in runs.items():
    rate = statistics.median(rate for rate, _ in values)
    cpu = statistics.median(cpu for _, cpu in values)
    print(f"{label:12s} {rate:>9,.0f} orders/s  {rate / bare:.3f} of bare  server CPU {cpu:.2f} s"
          f"  (rates: {' '.join(f'{r / 1000:.0f}k' for r, _ in values)})")
PY
rm -f $out $out.bare
