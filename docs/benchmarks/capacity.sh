#!/bin/bash
# usage: docs/benchmarks/capacity.sh BIN [SCENARIO] [serve args...]: a fresh `serve` (the embedded
# config and demo data, journal on fsync, a new temporary data dir), then `loadtest capacity`
# with the scenario's mix (default: steady) against it: the highest rate held and the latency at
# half of it, in one run. Extra loadtest flags in CAPACITY_ARGS. The table and the server's CPU
# are printed; the JSON report and the server log are left in /tmp/last-capacity.json and .err. Run from the repository root
# after `cargo build --release`.
BIN=$1; SC=${2:-$PWD/loadtest/scenarios/steady.toml}; shift; shift
dir=$(mktemp -d)
$BIN serve --listen 127.0.0.1:18384 --data-dir $dir/data --no-watch-config "$@" > $dir/out 2> $dir/err &
pid=$!
for i in $(seq 200); do grep -q listening $dir/out && break; sleep 0.1; done
$PWD/target/release/loadtest capacity --target http://127.0.0.1:18384 --scenario $SC --report $dir/report.json $CAPACITY_ARGS
echo "server CPU: $(awk '{printf "user %.1f s, system %.1f s", $14/100, $15/100}' /proc/$pid/stat), peak RSS $(awk '/VmHWM/ {print $2}' /proc/$pid/status) KiB"
cp $dir/report.json /tmp/last-capacity.json 2>/dev/null; cp $dir/err /tmp/last-capacity.err
kill $pid; wait $pid 2>/dev/null; rm -rf $dir
