#!/usr/bin/env python3
"""Memory per retained closed decision (issue 12; docs/benchmarks.md).

usage: DEMO=/tmp/now WRK_SHIP=../shared/tools/wrk/ship.lua [CLOSE_HELD=1] [SETTLE=S] memclosed.py BIN [BATCHES] [PER_BATCH]

Starts `BIN serve` on the demo files in $DEMO (`order-router demo-data --out $DEMO --start now`),
streams BATCHES batches of PER_BATCH orders over one stream (curl), marks every placed order
shipped (wrk and ship.lua), with CLOSE_HELD=1 cancels every order held for review (so that
every retained decision is closed; otherwise those stay open, about 0.5% of the demo's
orders), waits SETTLE seconds (2.5; jemalloc gives back freed pages over 10 s), and prints per batch the server's RSS and its
growth per decision, and the records the zones keep in memory (router_zone_records); at
the end, the growth per decision from batch 1 on, and from batch 3 on the least-squares slope
of RSS over decisions (what a long run converges to: fixed costs that come in steps, such as
an index doubling, weigh less than in a difference of two points).
Needs curl and wrk."""
import json, os, subprocess, sys, tempfile, time, urllib.request
bin_, batches, per = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 4, int(sys.argv[3]) if len(sys.argv) > 3 else 50000
d = tempfile.mkdtemp(dir="/tmp")
demo = os.environ.get("DEMO", "/tmp/now")
ship_lua = os.environ.get("WRK_SHIP", "../shared/tools/wrk/ship.lua")
lines = open(demo + "/orders.ndjson").read().splitlines()[: batches * per + 1000]
srv = subprocess.Popen([bin_, "serve", "--listen", "127.0.0.1:18282", "--data-dir", d + "/data", "--catalog", demo + "/catalog.csv",
                        "--stock", demo + "/stock.csv", "--no-watch-config"] + os.environ.get("EXTRA", "").split(),
                       stdout=subprocess.DEVNULL, stderr=open(d + "/err", "w"))
base = "http://127.0.0.1:18282"
for _ in range(100):
    try:
        urllib.request.urlopen(base + "/healthz"); break
    except Exception: time.sleep(0.1)
def rss():
    return int([l for l in open(f"/proc/{srv.pid}/status") if l.startswith("VmRSS")][0].split()[1])
def stream(chunk):
    f = d + "/body"; open(f, "w").write("\n".join(chunk) + "\n")
    out = subprocess.run(["curl", "-s", "-H", "Content-Type: application/x-ndjson", "--data-binary", "@" + f, base + "/v1/orders"], capture_output=True, timeout=300).stdout
    return [json.loads(l) for l in out.splitlines()]
def cancel(ids):
    import http.client
    connection = http.client.HTTPConnection("127.0.0.1", 18282)
    for order_id in ids:
        connection.request("POST", f"/v1/orders/{order_id}/cancel")
        connection.getresponse().read()
    connection.close()
def ship(ids):
    f = d + "/ids"; open(f, "w").write("\n".join(ids) + "\n")
    subprocess.run(["wrk", "-t2", "-c32", f"-d{max(5, len(ids)//15000 + 3)}s", "-s", ship_lua, base, "--", f], stdout=subprocess.DEVNULL)
stream(lines[-1000:])
r0 = rss(); prev = r0; total = 0; points = []
for b in range(batches):
    answers = stream(lines[b * per:(b + 1) * per])
    ids = [a["order_id"] for a in answers if a.get("status") in ("routed", "backordered")]
    ship(ids)
    if os.environ.get("CLOSE_HELD"):
        cancel([a["order_id"] for a in answers if a.get("status") == "held"])
    time.sleep(float(os.environ.get("SETTLE", "2.5")))
    r = rss()
    total += len(answers)
    m = urllib.request.urlopen(base + "/metrics").read().decode()
    mem = sum(float(l.split()[-1]) for l in m.splitlines() if l.startswith("router_zone_records") and 'kept="memory"' in l)
    print(f"batch {b}: memory records {mem:.0f};", end=" ")
    print(f"batch {b}: {len(answers)} decisions, {len(ids)} shipped, RSS {r/1024:.0f} MiB, +{(r-prev)*1024/len(answers):.0f} B/decision", flush=True)
    if b == 0: first = r
    if b >= 3: points.append((total, r * 1024))
    prev = r
if batches > 1:
    print(f"batches 2..{batches}: {(prev-first)*1024/(total-per):.1f} B per retained closed decision")
if len(points) >= 3:
    mx = sum(x for x, _ in points) / len(points); my = sum(y for _, y in points) / len(points)
    slope = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)
    print(f"batches 4..{batches}, least squares: {slope:.1f} B per retained closed decision")
m = urllib.request.urlopen(base + "/metrics").read().decode()
mem = sum(float(l.split()[-1]) for l in m.splitlines() if l.startswith("router_zone_records") and 'kept="memory"' in l)
disk = sum(float(l.split()[-1]) for l in m.splitlines() if l.startswith("router_zone_records") and 'kept="disk"' in l)
print(f"records in memory {mem:.0f}, on disk {disk:.0f}")
srv.terminate(); srv.wait()
subprocess.run(["rm", "-rf", d])
