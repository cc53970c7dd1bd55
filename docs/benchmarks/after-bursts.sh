#!/bin/bash
# usage: docs/benchmarks/after-bursts.sh BIN [serve args...]: a fresh `serve` (the embedded config
# and demo data, journal on fsync, a new temporary data dir), BURSTS (6) bursts of 10 s at
# BURST_RATE (100000) orders/s of the steady scenario's mix, 2 s apart, then 30 s at AFTER_RATE
# (40000): the latency of a moderate rate after millions of orders, when every zone's snapshot
# is large. Prints each burst's and the last phase's line, the last phase's p99 second by
# second, the server's peak RSS and its snapshot log lines. The server log and the last phase's
# report are left in /tmp/after-bursts.err and /tmp/after-bursts.json. Run from the repository
# root after `cargo build --release`.
BIN=$1; shift
dir=$(mktemp -d)
$BIN serve --listen 127.0.0.1:18386 --data-dir $dir/data --no-watch-config "$@" > $dir/out 2> $dir/err &
pid=$!
for i in $(seq 200); do grep -q listening $dir/out && break; sleep 0.1; done
sed "s/^rate = 20000/rate = ${BURST_RATE:-100000}/; s/^duration_s = 30/duration_s = 10/" loadtest/scenarios/steady.toml > $dir/burst.toml
sed "s/^rate = 20000/rate = ${AFTER_RATE:-40000}/" loadtest/scenarios/steady.toml > $dir/after.toml
for b in $(seq ${BURSTS:-6}); do
  target/release/loadtest run --target http://127.0.0.1:18386 --scenario $dir/burst.toml --quiet 2>&1 | grep -E "^steady"
  sleep 2
done
echo "after the bursts, from $(date +%T):"
target/release/loadtest run --target http://127.0.0.1:18386 --scenario $dir/after.toml --quiet --report $dir/after.json > $dir/after.out 2>&1
grep -E "^steady" $dir/after.out
python3 -c "
import json; r = json.load(open('$dir/after.json'))
print('p99 by second (ms):', [round(s['p99_ms'] or 0, 1) for s in r['series']])
print('send delay p99 (ms):', r['send_delay_ms']['p99'])"
echo "server peak RSS: $(awk '/VmHWM/ {print $2}' /proc/$pid/status) KiB; snapshots: $(grep -c 'snapshot of' $dir/err)"
grep 'snapshot of' $dir/err | sed -E 's/\x1b\[[0-9;]*m//g; s/^([0-9T:-]{19})[^ ]* .*snapshotter: /\1 /' | tail -4
cp $dir/err /tmp/after-bursts.err; cp $dir/after.json /tmp/after-bursts.json
kill $pid; wait $pid 2>/dev/null; rm -rf $dir
