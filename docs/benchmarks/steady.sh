#!/bin/bash
# usage: docs/benchmarks/steady.sh BIN [SCENARIO] [serve args...]: a fresh `serve` (the embedded
# config and demo data, journal on fsync, a new temporary data dir), the load tester's
# scenario (default: steady) against it; prints the phase lines and the server's CPU. The load tester's output,
# report and the server's /metrics are left in /tmp/last-lt.out, /tmp/last-report.json and
# /tmp/last-metrics.txt. Run from the repository root after `cargo build --release`.
BIN=$1; SC=${2:-$PWD/loadtest/scenarios/steady.toml}; shift; shift
dir=$(mktemp -d)
$BIN serve --listen 127.0.0.1:18383 --data-dir $dir/data --no-watch-config "$@" > $dir/out 2> $dir/err &
pid=$!
for i in $(seq 200); do grep -q listening $dir/out && break; sleep 0.1; done
cpu0=$(awk '{print $14+$15}' /proc/$pid/stat)
/usr/bin/time -f "loadtest CPU: user %U s, system %S s" -a -o $dir/lt.time $PWD/target/release/loadtest run --target http://127.0.0.1:18383 --scenario $SC --report $dir/report.json --quiet > $dir/lt.out 2>&1
cat $dir/lt.time 2>/dev/null; grep -E "^steady|^peak|^ramp|^all" $dir/lt.out | head -3
echo "server CPU: $(awk -v t0=$cpu0 '{printf "user %.1f s, system %.1f s", $14/100, $15/100}' /proc/$pid/stat) (from start: $(awk -v t0=$cpu0 '{printf "%.1f", ($14+$15-t0)/100}' /proc/$pid/stat) s during the run)"
curl -s http://127.0.0.1:18383/metrics > $dir/metrics.txt
cp $dir/metrics.txt /tmp/last-metrics.txt; cp $dir/lt.out /tmp/last-lt.out; cp $dir/report.json /tmp/last-report.json 2>/dev/null
kill $pid; wait $pid 2>/dev/null; rm -rf $dir
