#!/bin/bash
# Restart with 10M decisions journaled (issue 12, docs/benchmarks.md).
# usage: docs/benchmarks/restart10m.sh fill BIN DIR     a fresh `serve` on DIR/data, 10M demo orders
#                                                     dated now over 4 streams, then kill -9
#        docs/benchmarks/restart10m.sh restart BIN DIR  start BIN on DIR/data: seconds until
#                                                     /healthz answers, CPU seconds, RSS, records
# The orders: target/release/order-router demo-data --out /tmp/ten --orders 10000000 --start now
#   --spacing-ms 0 (2.8 GB). The demo stock places about 1.6M of them; the rest are rejected
# (closed: on disk after the start). Snapshots as the service takes them (every 500,000 records
# of a zone, written paced, one at a time), so each zone replays what followed its newest
# snapshot. SETTLE (seconds, default 3) is the wait between the last order and the kill: the
# fill runs far above what the snapshots keep up with, and a longer wait lets them catch up.
set -u
what=$1; BIN=$(realpath "$2"); dir=$3
ORDERS=${ORDERS:-/tmp/ten}; CLIENT=${CLIENT:-$PWD/target/release/examples/stream_client}
args="serve --listen 127.0.0.1:18586 --data-dir $dir/data --catalog $ORDERS/catalog.csv --stock $ORDERS/stock.csv --no-watch-config"
up() { for _ in $(seq 6000); do curl -s http://127.0.0.1:18586/healthz > /dev/null && return; sleep 0.02; done; }
records() {
    curl -s http://127.0.0.1:18586/metrics | awk '/^router_zone_records/ {split($0, a, "kept=\""); split(a[2], b, "\""); s[b[1]] += $2} END {for (k in s) printf "%s %d ", k, s[k]}'
}
if [ "$what" = fill ]; then
    rm -rf "$dir"; mkdir -p "$dir"
    $BIN $args > "$dir/fill.out" 2> "$dir/fill.err" &
    pid=$!
    up
    $CLIENT --target http://127.0.0.1:18586 --file "$ORDERS/orders.ndjson" --streams 4 2>&1 | tail -2
    sleep "${SETTLE:-3}"
    echo "RSS before the kill $(($(awk '/VmRSS/ {print $2}' /proc/$pid/status) / 1024)) MiB; $(records)"
    kill -9 $pid; wait $pid 2> /dev/null
else
    t0=$(date +%s.%N)
    $BIN $args > "$dir/restart.out" 2> "$dir/restart.err" &
    pid=$!
    up
    t1=$(date +%s.%N)
    sleep 1
    rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
    cpu=$(awk '{print ($14 + $15) / 100}' /proc/$pid/stat)
    echo "ready $(echo "$t1 - $t0" | bc) s, CPU $cpu s, RSS after the restart $((rss / 1024)) MiB; $(records)"
    kill -9 $pid; wait $pid 2> /dev/null
fi
