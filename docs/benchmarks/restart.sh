#!/bin/bash
# usage: docs/benchmarks/restart.sh BIN: 1M orders (/tmp/now: order-router demo-data --start now)
# over one stream (target/release/examples/stream_client), kill -9, restart: seconds until
# /healthz answers, RSS before the kill and after the restart.
BIN=$(realpath "$1"); CLIENT=${CLIENT:-$PWD/target/release/examples/stream_client}
dir=$(mktemp -d /tmp/rsXXXX); cd /tmp
args="serve --listen 127.0.0.1:18585 --data-dir $dir/data --catalog /tmp/now/catalog.csv --stock /tmp/now/stock.csv --no-watch-config"
$BIN $args > $dir/out 2> $dir/err &
pid=$!
for i in $(seq 100); do curl -s http://127.0.0.1:18585/healthz >/dev/null && break; sleep 0.1; done
$CLIENT --target http://127.0.0.1:18585 --file /tmp/now/orders.ndjson --streams 1 2>&1 | tail -1
sleep 2
r0=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
kill -9 $pid; wait $pid 2>/dev/null
t0=$(date +%s.%N)
$BIN $args > $dir/out2 2> $dir/err2 &
pid=$!
for i in $(seq 3000); do curl -s http://127.0.0.1:18585/healthz >/dev/null && break; sleep 0.02; done
t1=$(date +%s.%N)
sleep 1
r1=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
m=$(curl -s http://127.0.0.1:18585/metrics | awk '/^router_zone_records/ {split($0,a,"kept=\""); split(a[2],b,"\""); s[b[1]]+=$2} END {for (k in s) printf "%s %d ", k, s[k]}')
echo "ready $(echo "$t1 - $t0" | bc) s, RSS before kill $((r0/1024)) MiB, after restart $((r1/1024)) MiB; $m"
kill $pid; wait $pid 2>/dev/null; rm -rf $dir
