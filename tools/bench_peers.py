"""bench_peers.py — the side of tools/bench-compute that runs in fresh interpreters.

Two jobs, each run as `python3 tools/bench_peers.py ...` by tools/bench-compute:

  peer KIND ...   one Python contender (multiprocessing, start method "fork", the fastest
                  one and the seeds' one).  It times itself from before Pool() / the first
                  Process() to after close()/join() (interpreter start-up is not counted)
                  and prints one JSON line: result, seconds, and the ru_maxrss of the
                  parent (RUSAGE_SELF) and of its joined workers (RUSAGE_CHILDREN), in KiB.

  maxrss OUT ERR -- CMD...
                  runs CMD once and prints one JSON line with the largest resident set of
                  any process of CMD's process tree (ru_maxrss of wait4, which covers CMD
                  and every descendant it waited for), its exit status and wall time.
                  CMD's stdout goes to OUT and its stderr to ERR.

Why maxrss is not simply getrusage(RUSAGE_CHILDREN) after subprocess.run(): on Linux a
child's ru_maxrss starts at the high-water mark of the memory it was forked (or vforked)
from, so any program started by a Python process reports at least that Python's size
(about 14 MiB), whatever its own size.  So this wrapper makes itself a child subreaper and
starts CMD from a small /bin/sh subshell that exits at once: CMD is then charged with the
shell's size (about 1 MiB) instead of Python's, becomes our child, and we wait4() for it.
"""
import ctypes
import json
import os
import resource
import subprocess
import sys
import time

import multiprocessing as mp

def f(x):
    return x * x


def g(x):
    return x


def noop(i):
    pass


def _rss():
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return self_kb, children_kb


def peer(kind, args):
    ctx = mp.get_context("fork")
    n = int(args[0])
    t0 = time.perf_counter()
    if kind == "imap_unordered":
        cs = int(args[1])
        pool = ctx.Pool(2)
        result = sum(pool.imap_unordered(f, range(n), chunksize=cs))
        pool.close()
        pool.join()
    elif kind == "apply_async":
        pool = ctx.Pool(2)
        pending = [pool.apply_async(f, (x,)) for x in range(n)]
        result = sum(r.get() for r in pending)
        pool.close()
        pool.join()
    elif kind == "map":
        pool = ctx.Pool(2)
        if len(args) > 1:
            result = sum(pool.map(f, range(n), chunksize=int(args[1])))
        else:
            result = sum(pool.map(f, range(n)))
        pool.close()
        pool.join()
    elif kind == "map_empty":
        pool = ctx.Pool(2)
        out = pool.map(g, range(n))
        pool.close()
        pool.join()
        result = sum(out) if len(out) == n else -1
    elif kind == "processes":
        procs = [ctx.Process(target=noop, args=(i,)) for i in range(n)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        bad = [p.exitcode for p in procs if p.exitcode != 0]
        result = n - len(bad)
    else:
        raise SystemExit("bench_peers.py: unknown peer %r" % kind)
    seconds = time.perf_counter() - t0
    self_kb, children_kb = _rss()
    print(json.dumps({"result": str(result), "seconds": seconds,
                      "self_kb": self_kb, "children_kb": children_kb}), flush=True)


# The subshell waits for a line on fd 3 before it execs CMD, so that CMD cannot end (and be
# reaped by the shell) before the shell has told us its pid and exited.
_LAUNCH = ('out=$1; err=$2; shift 2; exec 3<&0; '
           '( read go <&3; exec 3<&-; exec "$@" </dev/null >"$out" 2>"$err" ) & '
           'echo $!')


def maxrss(out, err, cmd):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
        raise SystemExit("bench_peers.py: prctl(PR_SET_CHILD_SUBREAPER): %s"
                         % os.strerror(ctypes.get_errno()))
    sh = subprocess.Popen(["/bin/sh", "-c", _LAUNCH, "sh", out, err] + cmd,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    pid = int(sh.stdout.readline())
    sh.stdout.close()
    if sh.wait() != 0:
        raise SystemExit("bench_peers.py: the launching shell failed")
    t0 = time.perf_counter()
    sh.stdin.write(b"go\n")
    sh.stdin.close()
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    # Anything CMD left behind was reparented to us: reap it, and count it.
    stragglers = 0
    rss = ru.ru_maxrss
    deadline = time.monotonic() + 10
    while True:
        try:
            p, _, r = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if p == 0:
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
            continue
        stragglers += 1
        rss = max(rss, r.ru_maxrss)
    print(json.dumps({"status": os.waitstatus_to_exitcode(status), "maxrss_kb": rss,
                      "main_kb": ru.ru_maxrss, "stragglers": stragglers, "wall": wall}),
          flush=True)


def main(argv):
    if len(argv) >= 2 and argv[0] == "peer":
        peer(argv[1], argv[2:])
    elif len(argv) >= 5 and argv[0] == "maxrss" and argv[3] == "--":
        maxrss(argv[1], argv[2], argv[4:])
    else:
        raise SystemExit("usage: bench_peers.py peer KIND ARGS... | "
                         "maxrss OUT ERR -- CMD...")


if __name__ == "__main__":
    main(sys.argv[1:])
