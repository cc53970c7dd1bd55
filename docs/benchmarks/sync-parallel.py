# usage: python3 docs/benchmarks/sync-parallel.py N: N files, each a write of 8 KiB and an fdatasync per round,
# the N at once on N threads; p50/p99 of a round (500 rounds) in /work/synctest (delete it after).
import os, time, threading, sys
N=int(sys.argv[1]); rounds=500
d='/work/synctest'; os.makedirs(d,exist_ok=True)
fds=[os.open(f'{d}/f{i}',os.O_WRONLY|os.O_CREAT|os.O_APPEND) for i in range(N)]
buf=b'x'*8192
start=threading.Barrier(N+1); end=threading.Barrier(N+1)
def worker(fd):
    for r in range(rounds):
        start.wait(); os.write(fd,buf); os.fdatasync(fd); end.wait()
th=[threading.Thread(target=worker,args=(fd,)) for fd in fds]; [x.start() for x in th]
lat=[]
for r in range(rounds):
    t=time.perf_counter(); start.wait(); end.wait(); lat.append(time.perf_counter()-t)
lat.sort(); print(f"N={N} parallel round p50 {lat[len(lat)//2]*1e3:.3f} ms p99 {lat[int(len(lat)*.99)]*1e3:.3f}")
