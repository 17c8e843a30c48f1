#!/usr/bin/env python3
"""A/B of chring-proxy builds against nutcracker, for speed work (issue 12).

    python3 scripts/proxy-ab.py NAME=BINARY[ ARGS...] [NAME=BINARY[ ARGS...] ...]

e.g. python3 scripts/proxy-ab.py "old=/tmp/chring-proxy.old" \
         "new=target/release/chring-proxy --threads 1"

Starts 4 redis-servers, nutcracker and every named proxy build (all reading the
same YAML as scripts/proxy-bench.sh: ketama, fnv1a_64) on free 127.0.0.1
ports, then runs AB_ROUNDS rounds (default 3) of redis-benchmark (50 clients,
AB_REQUESTS requests per run, default 60,000, over 100,000 random keys) SET and
GET at -P 1 and -P 16 (AB_TESTS="set_p1 get_p1" picks some) against each,
the targets interleaved (order reversed every other round). Prints, per target
and run: median ops/s, the median of the per-round ratios to nutcracker's
ops/s, median p99, the median CPU time the proxy process spent per request
(user and system µs, from /proc/PID/stat over the run: the steadiest figure on
a shared machine), the 4 redis-servers' CPU µs per request, and their read and
write system calls per request (from /proc/PID/io: fewer means the proxy
batched more requests per write). Everything it started is stopped (by PID)
at exit; each redis-benchmark run is bounded by 120 s.
"""
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROUNDS = int(os.environ.get("AB_ROUNDS", "3"))
# AB_TESTS: which runs, e.g. "set_p1 get_p1" (default all four).
TESTS = os.environ.get("AB_TESTS", "set_p1 get_p1 set_p16 get_p16").split()
REQUESTS = int(os.environ.get("AB_REQUESTS", "60000"))
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_ping(port, proc, what):
    for _ in range(200):
        if proc.poll() is not None:
            sys.exit(f"{what} exited before answering on 127.0.0.1:{port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"*1\r\n$4\r\nPING\r\n")
                if s.recv(64).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit(f"{what} did not answer PING on 127.0.0.1:{port} within 10 s")


def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) / TICK, int(f[12]) / TICK


def servers_cost(pids):
    """CPU seconds and read/write system calls of the redis-servers so far."""
    t, calls = 0.0, 0
    for pid in pids:
        t += sum(cpu(pid))
        io = dict(l.split(": ") for l in open(f"/proc/{pid}/io").read().splitlines())
        calls += int(io["syscr"]) + int(io["syscw"])
    return t, calls


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    work = tempfile.mkdtemp(prefix="chring-proxy-ab.")
    procs = []

    def start(what, argv):
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        procs.append(p)
        return p

    try:
        shards, shard_pids = [], []
        for _ in range(4):
            port = free_port()
            p = start("redis-server", ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                       "--save", "", "--appendonly", "no", "--dir", work])
            wait_ping(port, p, "redis-server")
            shards.append(port)
            shard_pids.append(p.pid)
        targets = [("nutcracker", ["nutcracker", "-a", "127.0.0.1"])]
        for spec in sys.argv[1:]:
            name, rest = spec.split("=", 1)
            targets.append((name, rest.split()))
        ports, pids = {}, {}
        for name, argv in targets:
            port = free_port()
            conf = os.path.join(work, f"{name}.yml")
            with open(conf, "w") as f:
                f.write(f"bench:\n  listen: 127.0.0.1:{port}\n  hash: fnv1a_64\n"
                        "  distribution: ketama\n  redis: true\n  timeout: 2000\n"
                        "  auto_eject_hosts: false\n  servers:\n")
                for s in shards:
                    f.write(f"   - 127.0.0.1:{s}:1\n")
            p = start(name, argv + ["-c", conf, "-s", str(free_port()),
                                    "-o", os.path.join(work, f"{name}.log")])
            wait_ping(port, p, name)
            ports[name], pids[name] = port, p.pid
        res = {}
        tests = TESTS
        for r in range(ROUNDS):
            order = targets if r % 2 == 0 else list(reversed(targets))
            for name, _ in order:
                for pipe in (1, 16):
                    for t in ("set", "get"):
                        if f"{t}_p{pipe}" not in TESTS:
                            continue
                        c0 = cpu(pids[name])
                        s0 = servers_cost(shard_pids)
                        out = subprocess.run(
                            ["timeout", "120", "redis-benchmark", "-p", str(ports[name]), "-c", "50",
                             "-n", str(REQUESTS), "-r", "100000", "-P", str(pipe), "-t", t, "--csv"],
                            capture_output=True, text=True).stdout
                        c1 = cpu(pids[name])
                        s1 = servers_cost(shard_pids)
                        line = [l for l in out.splitlines() if l.startswith('"' + t.upper())]
                        if not line:
                            sys.exit(f"redis-benchmark against {name} failed or timed out")
                        f = [x.strip('"') for x in line[0].split('","')]
                        res.setdefault((name, f"{t}_p{pipe}"), []).append(
                            (float(f[1]), float(f[6]), (c1[0] - c0[0]) * 1e6 / REQUESTS,
                             (c1[1] - c0[1]) * 1e6 / REQUESTS, (s1[0] - s0[0]) * 1e6 / REQUESTS,
                             (s1[1] - s0[1]) / REQUESTS))
        print(f"{ROUNDS} rounds x {REQUESTS} requests; per run: median ops/s, median ratio to "
              "nutcracker (same round), median p99 ms, median CPU µs/request of the proxy "
              "(user+system) and of the 4 redis-servers (srv), and the servers' read/write "
              "system calls per request (sc)")
        for name, _ in targets:
            cells = []
            for t in tests:
                v, b = res[(name, t)], res[("nutcracker", t)]
                ratio = statistics.median(a[0] / c[0] for a, c in zip(v, b))
                cells.append(f"{t} {statistics.median(x[0] for x in v):8.0f} {ratio:4.2f}x "
                             f"p99 {statistics.median(x[1] for x in v):6.3f} "
                             f"cpu {statistics.median(x[2] for x in v):4.1f}+"
                             f"{statistics.median(x[3] for x in v):4.1f} "
                             f"srv {statistics.median(x[4] for x in v):4.1f} "
                             f"sc {statistics.median(x[5] for x in v):4.2f}")
            print(f"{name:>14} | " + " | ".join(cells))
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
