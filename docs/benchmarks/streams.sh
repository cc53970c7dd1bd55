#!/bin/bash
# usage: docs/benchmarks/streams.sh BIN ROUNDS: per round, for 1, 2 and 4 streams, a fresh bare endpoint then a
# fresh router (journal on fsync, demo world, SERVE_ARGS added to serve), 1M orders dated now; rate
# and server CPU seconds.
# Run from the repository's root after cargo build --release --examples; FILE: orders.ndjson of
# order-router demo-data --out /tmp/now --orders 1000000 --start now (the catalogue and stock beside it).
BIN=$(realpath "$1"); ROUNDS=${2:-2}; EX=$PWD/target/release/examples; FILE=${FILE:-/tmp/now/orders.ndjson}
cd /tmp
one() { # kind streams
    dir=$(mktemp -d /tmp/stXXXX)
    if [ $1 = bare ]; then
        $EX/bare_actix --listen 127.0.0.1:0 > $dir/out 2> $dir/err &
    else
        $BIN serve --listen 127.0.0.1:0 --data-dir $dir/data --catalog $(dirname $FILE)/catalog.csv --stock $(dirname $FILE)/stock.csv --no-watch-config $SERVE_ARGS > $dir/out 2> $dir/err &
    fi
    pid=$!
    for i in $(seq 100); do grep -q 'http://' $dir/out && break; sleep 0.1; done
    addr=$(grep -o 'http://[0-9.:]*' $dir/out | head -1)
    t0=$(awk '{print $14+$15}' /proc/$pid/stat)
    rate=$($EX/stream_client --target $addr --file $FILE --streams $2 2>&1 | awk '/orders\/s/ {print $2}')
    t1=$(awk '{print $14+$15}' /proc/$pid/stat)
    cs=$(cat /proc/$pid/task/*/status | awk '/^voluntary_ctxt/ {v+=$2} /^nonvoluntary/ {n+=$2} END {print v+n}')
    echo "$1 streams $2 rate $rate cpu_s $(echo "scale=2; ($t1-$t0)/100" | bc) ctxsw $cs"
    kill $pid; wait $pid 2>/dev/null; rm -rf $dir
}
for r in $(seq $ROUNDS); do for n in 1 2 4; do one bare $n; one router $n; done; done
