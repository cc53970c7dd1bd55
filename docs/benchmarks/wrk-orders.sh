#!/bin/bash
# usage: docs/benchmarks/wrk-orders.sh BIN ORDERS [serve args...]: a fresh `serve` (the embedded
# config and demo data, journal on fsync, a new temporary data dir), then Debian's wrk with
# ../shared/tools/wrk/orders.lua: one JSON order per request over 64 connections for 10 s
# (closed loop: latency is each request's round trip). ORDERS: an NDJSON file of demo orders
# (`order-router demo-data --start now`). Prints wrk's latency distribution and rate.
BIN=$1; ORDERS=$2; shift; shift
LUA=$(cd "$(dirname "$0")/../../.." && pwd)/shared/tools/wrk/orders.lua
dir=$(mktemp -d)
$BIN serve --listen 127.0.0.1:18484 --data-dir $dir/data --no-watch-config "$@" > $dir/out 2> $dir/err &
pid=$!
for i in $(seq 200); do grep -q listening $dir/out && break; sleep 0.1; done
wrk -t2 -c64 -d10s --latency -s $LUA http://127.0.0.1:18484/v1/orders -- $ORDERS | grep -E "50%|75%|90%|99%|Requests/sec|requests"
kill $pid; wait $pid 2>/dev/null; rm -rf $dir
