#!/bin/bash
# usage: docs/benchmarks/one-stream.sh BIN: a fresh serve on the demo world in /tmp/now (1M orders dated now),
# the orders over one stream (examples/stream_client): the rate, the server CPU seconds and its peak RSS.
BIN=$1; EX=$PWD/target/release/examples; BIN=$(realpath "$BIN")
dir=$(mktemp -d /tmp/stXXXX); cd /tmp
$BIN serve --listen 127.0.0.1:0 --data-dir $dir/data --catalog /tmp/now/catalog.csv --stock /tmp/now/stock.csv --no-watch-config > $dir/out 2> $dir/err &
pid=$!
for i in $(seq 100); do grep -q 'http://' $dir/out && break; sleep 0.1; done
addr=$(grep -o 'http://[0-9.:]*' $dir/out | head -1)
t0=$(awk '{print $14+$15}' /proc/$pid/stat)
rate=$($EX/stream_client --target $addr --file /tmp/now/orders.ndjson --streams 1 2>&1 | awk '/orders\/s/ {print $2}')
t1=$(awk '{print $14+$15}' /proc/$pid/stat)
echo "$(basename $BIN) rate $rate cpu_s $(echo "scale=2; ($t1-$t0)/100" | bc) peak_rss_kib $(awk '/VmHWM/ {print $2}' /proc/$pid/status)"
kill $pid; wait $pid 2>/dev/null; rm -rf $dir
