# usage: python3 docs/benchmarks/fs-router.py SECONDS SIDE: a log writer (1 KiB pwrite + fdatasync, back to back with 0.2 ms sleeps, into zeros)
# with SIDE=1: the router's other I/O beside it: 7 zone journals appended 256 KiB at a time (2.8 MB/s in all),
# sync_file_range(WRITE) every 1 MiB, all fdatasync'ed every 8 s; a 64 MiB spare every 16 s, 256 KiB pieces,
# each handed to writeback, 2 ms pauses, fdatasync every 4 MiB.
import os, sys, time, threading, ctypes
secs = int(sys.argv[1]); side = sys.argv[2] == '1'
libc = ctypes.CDLL(None, use_errno=True)
def sfr(fd, off, n): libc.sync_file_range(fd, ctypes.c_longlong(off), ctypes.c_longlong(n), 2)
d = '/work/synctest2'; os.makedirs(d, exist_ok=True)
stop = False
def zones():
    fds = [os.open(f'{d}/zone{i}', os.O_WRONLY | os.O_CREAT | os.O_TRUNC) for i in range(7)]
    size = [0]*7; wb = [0]*7; buf = b'z' * (256 << 10); i = 0; last_ck = time.time()
    while not stop:
        z = i % 7; os.pwrite(fds[z], buf, size[z]); size[z] += len(buf)
        if size[z] - wb[z] >= 1 << 20: sfr(fds[z], wb[z], size[z] - wb[z]); wb[z] = size[z]
        i += 1
        if time.time() - last_ck > 8:
            for fd in fds: os.fdatasync(fd)
            last_ck = time.time()
        time.sleep(0.09)
def spares():
    k = 0; piece = b'\0' * (256 << 10)
    while not stop:
        time.sleep(16)
        fd = os.open(f'{d}/spare{k % 3}', os.O_WRONLY | os.O_CREAT)
        for off in range(0, 64 << 20, 256 << 10):
            os.pwrite(fd, piece, off); sfr(fd, off, 256 << 10)
            if (off + (256 << 10)) % (4 << 20) == 0: os.fdatasync(fd)
            time.sleep(0.002)
        os.fsync(fd); os.close(fd); k += 1
if side:
    threading.Thread(target=zones, daemon=True).start()
    threading.Thread(target=spares, daemon=True).start()
fd = os.open(f'{d}/log', os.O_RDWR | os.O_CREAT | os.O_TRUNC)
zeros = b'\0' * (1 << 20)
total = 1024 * 4000 * secs
for off in range(0, total, 1 << 20): os.pwrite(fd, zeros, off)
os.fsync(fd)
buf = b'x' * 1024; lat = []; off = 0; t0 = time.time(); slow = []
while time.time() - t0 < secs:
    t = time.perf_counter(); os.pwrite(fd, buf, off); os.fdatasync(fd); e = time.perf_counter() - t
    lat.append(e); off += 1024
    if e > 0.02: slow.append((round(time.time() - t0, 1), round(e * 1e3, 1)))
    time.sleep(0.0002)
stop = True
lat.sort(); n = len(lat)
print(f"side={int(side)} {secs}s: {n} syncs, p50 {lat[n//2]*1e3:.3f} p99 {lat[int(n*.99)]*1e3:.3f} p99.9 {lat[int(n*.999)]*1e3:.3f} max {lat[-1]*1e3:.1f} ms, over 20 ms (at s, ms): {slow}")
os.close(fd)
for name in os.listdir(d): os.unlink(f'{d}/{name}')
