#!/bin/bash
# usage: scripts/pgo-build.sh [OUT]: builds OUT (default target/pgo/order-router), the router
# optimised with a profile of itself at work (profile-guided optimisation, as the rustc book's
# "Profile-guided Optimization" chapter describes it). Three steps, about 8-10 minutes on two
# cores:
#   1. an instrumented release build (in target/pgo/instrumented) counts its branches and
#      calls while it runs;
#   2. it serves a training load, the service's usual paths: one stream of 300,000 demo
#      orders at full speed, four streams of 300,000 more, the load tester's smoke,
#      checkout (one order per request), dirty (malformed lines), retry-storm (resends) and
#      hot-sku (fallbacks and backorders) scenarios, then a restart that recovers it all
#      from the journal;
#   3. the counts are merged and a release build uses them (in target/pgo/optimized).
# The same sources as `cargo build --release`; only the compiler's layout and inlining
# choices differ. docs/benchmarks.md ("A release build trained on the router's own load")
# has what it gains. Needs llvm-profdata of the toolchain's own LLVM:
# `rustup component add llvm-tools`. Run from anywhere in the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$(realpath -m "${1:-target/pgo/order-router}")
WORK=$ROOT/target/pgo
TRIPLE=$(rustc -vV | awk '/^host:/ {print $2}')
PROFDATA=$(rustc --print sysroot)/lib/rustlib/$TRIPLE/bin/llvm-profdata
if [ ! -x "$PROFDATA" ]; then
    echo "pgo-build: $PROFDATA is missing: rustup component add llvm-tools" >&2
    exit 1
fi

# --target: build scripts and procedural macros are built for the host without the flags,
# so only the router's own code (and its dependencies) is instrumented and optimised.
build() { # target-dir rustflags
    RUSTFLAGS="$2" cargo build --release --locked --target "$TRIPLE" --target-dir "$1" \
        -p order-router --bin order-router
}

echo "pgo-build: 1/3 the instrumented build" >&2
rm -rf "$WORK/profiles" "$WORK/train"
mkdir -p "$WORK/profiles" "$WORK/train"
build "$WORK/instrumented" "-Cprofile-generate=$WORK/profiles"
ROUTER=$WORK/instrumented/$TRIPLE/release/order-router
# The drivers, built as usual (their own profiles are not wanted).
cargo build --release --locked -p loadtest --bin loadtest
cargo build --release --locked -p order-router --example stream_client
LOADTEST=$ROOT/target/release/loadtest
CLIENT=$ROOT/target/release/examples/stream_client

echo "pgo-build: 2/3 the training load" >&2
"$ROUTER" demo-data --out "$WORK/train" --orders 600000 --start now > "$WORK/train/demo-data.log"
head -n 300000 "$WORK/train/orders.ndjson" > "$WORK/train/streams-1.ndjson"
tail -n +300001 "$WORK/train/orders.ndjson" > "$WORK/train/streams-4.ndjson"
SERVER_PID=
stop_server() {
    # SIGTERM drains and exits normally: the counts are written at exit. A server that
    # fails there wrote none, or half: the build stops.
    local pid=$SERVER_PID status=0
    SERVER_PID=
    kill -TERM "$pid"
    wait "$pid" || status=$?
    if [ "$status" != 0 ]; then
        echo "pgo-build: the instrumented server exited with $status:" >&2
        tail -20 "$WORK/train/server.err" >&2
        exit 1
    fi
}
# On the way out after a failure, the server goes too.
trap '[ -z "$SERVER_PID" ] || kill -TERM "$SERVER_PID"' EXIT
start_server() {
    "$ROUTER" serve --listen 127.0.0.1:0 --data-dir "$WORK/train/data" --no-watch-config \
        > "$WORK/train/server.out" 2> "$WORK/train/server.err" &
    SERVER_PID=$!
    for _ in $(seq 600); do
        ADDRESS=$(grep -o 'http://[0-9.:]*' "$WORK/train/server.out" | head -1 || true)
        [ -n "$ADDRESS" ] && return 0
        kill -0 "$SERVER_PID" 2> /dev/null || break
        sleep 0.1
    done
    echo "pgo-build: the instrumented server did not start:" >&2
    cat "$WORK/train/server.err" >&2
    exit 1
}
start_server
# Each driver's output goes to its log in target/pgo/train; a driver that finds an order
# lost or answered wrongly fails the build.
for streams in 1 4; do
    echo "pgo-build:   300,000 orders over $streams stream(s)" >&2
    "$CLIENT" --target "$ADDRESS" --file "$WORK/train/streams-$streams.ndjson" --streams $streams \
        > "$WORK/train/streams-$streams.log" 2>&1
done
for scenario in smoke checkout dirty retry-storm hot-sku; do
    echo "pgo-build:   the $scenario scenario" >&2
    "$LOADTEST" run --quiet --target "$ADDRESS" --scenario "loadtest/scenarios/$scenario.toml" \
        --report "$WORK/train/$scenario.json" > "$WORK/train/$scenario.log" 2>&1
done
stop_server
# A restart: recovery reads back everything the load journaled.
echo "pgo-build:   a restart" >&2
start_server
stop_server
trap - EXIT

echo "pgo-build: 3/3 the optimised build" >&2
"$PROFDATA" merge -o "$WORK/router.profdata" "$WORK/profiles"
build "$WORK/optimized" "-Cprofile-use=$WORK/router.profdata"
mkdir -p "$(dirname "$OUT")"
cp "$WORK/optimized/$TRIPLE/release/order-router" "$OUT"
echo "pgo-build: $OUT" >&2
