#!/usr/bin/env python3
"""Bursts of two orders on one NDJSON stream, and how late each answer comes.

usage: docs/benchmarks/burst-answers.py PORT ORDERS BURSTS GAP_MS

Opens one stream (`POST /v1/orders`, chunked) to a router on 127.0.0.1:PORT; BURSTS times,
sends an order, waits GAP_MS, sends the next (each its own write), reads until both answers
are in, then pauses 200 ms. Prints the median and largest latency of the first and second
answers (from the send of their own order) and how many answers took over 30 ms. ORDERS: an
NDJSON file of demo orders (`order-router demo-data --start now`); their ids get a prefix
made of PORT and GAP_MS, so runs with other gaps do not meet their own duplicates.

With Nagle's algorithm on at the server, the second answer of a burst could wait for the
client's delayed acknowledgement of the first (40 ms on Linux): docs/benchmarks.md, "Answers
sent at once".
"""
import socket
import sys
import time

port, path, bursts, gap_ms = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
orders = []
with open(path, "rb") as file:
    for line in file:
        if len(orders) == 2 * bursts:
            break
        orders.append(line.replace(b'{"id":"', b'{"id":"B%d-%s-' % (port, sys.argv[4].encode()), 1))

stream = socket.create_connection(("127.0.0.1", port))
stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
stream.sendall(
    b"POST /v1/orders HTTP/1.1\r\nHost: bench\r\nContent-Type: application/x-ndjson\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)


def chunk(data):
    return b"%x\r\n" % len(data) + data + b"\r\n"


received = b""
latencies = []
for burst in range(bursts):
    first, second = orders[2 * burst], orders[2 * burst + 1]
    sent_first = time.perf_counter()
    stream.sendall(chunk(first))
    time.sleep(gap_ms / 1000)
    sent_second = time.perf_counter()
    stream.sendall(chunk(second))
    arrivals = []
    while len(arrivals) < 2:
        data = stream.recv(65536)
        if not data:
            sys.exit("the router closed the stream")
        now = time.perf_counter()
        received += data
        # Each decision line names its order once.
        while b'"order_id"' in received:
            received = received[received.index(b'"order_id"') + 10 :]
            arrivals.append(now)
    latencies.append(((arrivals[0] - sent_first) * 1000, (arrivals[1] - sent_second) * 1000))
    time.sleep(0.2)

firsts = sorted(first for first, _ in latencies)
seconds = sorted(second for _, second in latencies)
slow = sum(1 for latency in firsts + seconds if latency > 30)
print(
    f"first answers: median {firsts[len(firsts) // 2]:.2f} ms, max {firsts[-1]:.2f}; "
    f"second answers: median {seconds[len(seconds) // 2]:.2f} ms, max {seconds[-1]:.2f}; "
    f"over 30 ms: {slow} of {2 * len(latencies)}"
)
