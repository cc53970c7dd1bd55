# usage: python3 docs/benchmarks/sync-prealloc.py: 8 KiB pwrite + fdatasync, 1000 times, into a file
# that grows (append), one posix_fallocate'd ahead, and one written with zeros and synced ahead.
import os, time
d='/work/synctest'; os.makedirs(d,exist_ok=True)
buf=b'x'*8192; rounds=1000
def run(name, prep):
    fd=os.open(f'{d}/{name}',os.O_RDWR|os.O_CREAT|os.O_TRUNC)
    prep(fd)
    lat=[]
    for r in range(rounds):
        t=time.perf_counter(); os.pwrite(fd,buf,r*8192); os.fdatasync(fd); lat.append(time.perf_counter()-t)
    lat.sort(); print(f"{name}: p50 {lat[rounds//2]*1e3:.3f} ms p99 {lat[int(rounds*.99)]*1e3:.3f}")
    os.close(fd)
run('append', lambda fd: None)
run('fallocate', lambda fd: os.posix_fallocate(fd,0,8192*rounds))
def zero(fd):
    os.pwrite(fd,b'\0'*(8192*rounds),0); os.fsync(fd)
run('zeroed', zero)
