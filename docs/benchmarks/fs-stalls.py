# usage: python3 docs/benchmarks/fs-stalls.py MODE CHURN [SECONDS] [STEP_MIB]
# A log-like writer (8 KiB pwrite + fdatasync every 1 ms) beside another thread that, every
# 3 s, does CHURN: calm (nothing), write (a 64 MiB file written and synced at once),
# delete (a 64 MiB file unlinked), gentle (the same truncated STEP_MIB at a time, each step
# synced, then unlinked). MODE: append (the log file grows) or zeroed (written with zeros
# and synced ahead, then overwritten). Prints the log's sync latencies. Uses /work/synctest.
import os, sys, time, threading
mode = sys.argv[1]; churn = sys.argv[2]
secs = int(sys.argv[3]) if len(sys.argv) > 3 else 15
step = int(sys.argv[4]) if len(sys.argv) > 4 else 4
d = '/work/synctest'; os.makedirs(d, exist_ok=True)
buf = b'x' * 8192
stop = False

def make(path):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    for _ in range(64):
        os.write(fd, b'y' * (1 << 20))
    os.fdatasync(fd); os.close(fd)

if churn in ('delete', 'gentle'):
    for i in range(secs // 3 + 2):
        make(f'{d}/old{i}')
    os.sync()

def churner():
    i = 0
    while not stop:
        if churn == 'write':
            make(f'{d}/big{i}')
        if churn == 'delete':
            os.unlink(f'{d}/old{i}')
        if churn == 'gentle':
            path = f'{d}/old{i}'; size = 64 << 20
            fd = os.open(path, os.O_WRONLY)
            while size > 0:
                size -= step << 20
                os.ftruncate(fd, max(size, 0)); os.fdatasync(fd); time.sleep(0.02)
            os.close(fd); os.unlink(path)
        time.sleep(3); i += 1

if churn != 'calm':
    threading.Thread(target=churner, daemon=True).start()
fd = os.open(f'{d}/log-{mode}', os.O_RDWR | os.O_CREAT | os.O_TRUNC)
if mode == 'zeroed':
    zeros = b'\0' * (1 << 20)
    for offset in range(0, 8192 * 1100 * secs, 1 << 20):
        os.pwrite(fd, zeros, offset)
    os.fsync(fd)
lat = []; offset = 0; t0 = time.time()
while time.time() - t0 < secs:
    t = time.perf_counter(); os.pwrite(fd, buf, offset); os.fdatasync(fd)
    lat.append(time.perf_counter() - t); offset += 8192
    time.sleep(0.001)
stop = True
lat.sort(); n = len(lat)
print(f"{mode} {churn}: {n} syncs, p50 {lat[n//2]*1e3:.3f} p99 {lat[int(n*.99)]*1e3:.3f} "
      f"p99.9 {lat[int(n*.999)]*1e3:.3f} max {lat[-1]*1e3:.1f} ms, over 5 ms: {sum(1 for x in lat if x > 0.005)}")
os.close(fd)
for name in os.listdir(d):
    os.unlink(os.path.join(d, name))
