#!/usr/bin/env bash
# chring-proxy against nutcracker (issue 12, "Speed"), in one run:
#
#   bash scripts/proxy-bench.sh
#
# redis-benchmark (Debian redis-tools) with 50 clients, SET then GET, at -P 1
# and at -P 16, against three targets:
#   direct        one redis-server
#   nutcracker    nutcracker over 4 redis-servers (ketama, fnv1a_64)
#   chring-proxy  chring-proxy over the same 4 redis-servers, same YAML
# Prints a table (ops/s, p50 and p99 ms, ops/s as a multiple of nutcracker's)
# and writes target/proxy-bench.json as
#   {"<target>": {"<get|set>_p<1|16>": {"ops": N, "p50_ms": X, "p99_ms": Y}}}
#
# Everything runs on 127.0.0.1, on free ports picked at start, and is stopped
# (by PID) on exit. Every run is bounded: PROXY_BENCH_REQUESTS requests
# (default 200000) over PROXY_BENCH_KEYS random keys (default 100000), and at
# most PROXY_BENCH_TIMEOUT seconds (default 300). PROXY_BENCH_TARGETS picks
# targets (default "direct nutcracker chring-proxy"); PROXY_BENCH_JSON moves
# the output file. chring-proxy is built with `cargo build --release`
# (CARGO_TARGET_DIR honoured). As root it installs redis-server, redis-tools
# and nutcracker with apt when they are missing.
#
# PROXY_BENCH_RUNS=N (default 3) repeats the four runs N times, the targets
# interleaved (their order reversed every other round) while every target
# stays up; the table and the JSON then hold each figure's median over the
# rounds, and the ratio column is the median of the per-round ratios to
# nutcracker. PROXY_BENCH_THREADS=N starts chring-proxy with `--threads N`
# (default 1: one event loop, as nutcracker has; the client and the servers
# share the cores, and on 2 cores one proxy thread does best, see README);
# PROXY_BENCH_THREADS=default gives no --threads, so one thread per core. The
# table says which.
#
# The benchmark client, the proxy and the four servers share this machine's
# cores: on a 2-core machine the numbers measure that contention as much as
# the proxies (see README, "chring-proxy").
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source-path=SCRIPTDIR
. "$ROOT/scripts/lib/common.sh"

REQUESTS="${PROXY_BENCH_REQUESTS:-200000}"
KEYS="${PROXY_BENCH_KEYS:-100000}"
RUN_TIMEOUT="${PROXY_BENCH_TIMEOUT:-300}"
TARGETS="${PROXY_BENCH_TARGETS:-direct nutcracker chring-proxy}"
OUT_JSON="${PROXY_BENCH_JSON:-$ROOT/target/proxy-bench.json}"
RUNS="${PROXY_BENCH_RUNS:-3}"
THREADS="${PROXY_BENCH_THREADS:-1}"
case "$RUNS" in '' | *[!0-9]* | 0) error "PROXY_BENCH_RUNS must be a positive number" && exit 2 ;; esac
case "$THREADS" in
default) THREADS='' ;;
'' | *[!0-9]* | 0) error "PROXY_BENCH_THREADS must be a positive number or 'default'" && exit 2 ;;
esac
CLIENTS=50
BACKENDS=4

PIDS=()
WORK="$(mktemp -d "${TMPDIR:-/tmp}/chring-proxy-bench.XXXXXX")"
cleanup() {
    local p
    for p in "${PIDS[@]+"${PIDS[@]}"}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]+"${PIDS[@]}"}"; do
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

find_bin() {
    local b
    for b in "$(command -v "$1" 2>/dev/null || true)" "/usr/sbin/$1" "/usr/bin/$1"; do
        if [ -n "$b" ] && [ -x "$b" ]; then
            printf '%s\n' "$b"
            return 0
        fi
    done
    return 1
}

# Debian packages: redis-server, redis-tools (redis-benchmark, redis-cli), nutcracker.
pkgs=(redis-server:redis-server redis-benchmark:redis-tools redis-cli:redis-tools)
case " $TARGETS " in *" nutcracker "*) pkgs+=(nutcracker:nutcracker) ;; esac
need_packages "proxy-bench" "${pkgs[@]}" || exit 1
REDIS_SERVER="$(find_bin redis-server)"
REDIS_BENCH="$(find_bin redis-benchmark)"
REDIS_CLI="$(find_bin redis-cli)"

# free_port: a port nothing listens on now (bound to 0, then released).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_ping PORT WHAT: until `redis-cli -p PORT ping` answers PONG (10 s at
# most; fails at once when the process started last has exited).
wait_ping() {
    local i last="${PIDS[${#PIDS[@]}-1]}"
    for i in $(seq 1 200); do
        if ! kill -0 "$last" 2>/dev/null; then
            error "$2 (pid $last) exited before answering on 127.0.0.1:$1"
            return 1
        fi
        if [ "$(timeout 2 "$REDIS_CLI" -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = PONG ]; then
            return 0
        fi
        sleep 0.05
    done
    error "$2 on 127.0.0.1:$1 did not answer PING within 10 s"
    return 1
}

# start_redis: a redis-server on a free port, stored in REDIS_PORT (not
# printed: a command substitution would run it in a subshell, losing its PID).
start_redis() {
    REDIS_PORT="$(free_port)"
    "$REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --protected-mode no --logfile "$WORK/redis-$REDIS_PORT.log" </dev/null >/dev/null 2>&1 &
    PIDS+=("$!")
    wait_ping "$REDIS_PORT" redis-server
}

# The YAML both proxies read (nutcracker's format, unchanged).
write_conf() {
    local listen=$1 file=$2 p
    {
        echo "bench:"
        echo "  listen: 127.0.0.1:$listen"
        echo "  hash: fnv1a_64"
        echo "  distribution: ketama"
        echo "  redis: true"
        echo "  timeout: 2000"
        echo "  auto_eject_hosts: false"
        echo "  servers:"
        for p in "${SHARDS[@]}"; do
            echo "   - 127.0.0.1:$p:1"
        done
    } >"$file"
}

# bench TARGET PORT ROUND: SET then GET at -P 1 and -P 16; appends CSV rows
# "target,test,pipeline,rps,p50,p99,round" to $WORK/results.csv.
bench() {
    local target=$1 port=$2 round=$3 p csv
    for p in 1 16; do
        printf '+ %s\n' "redis-benchmark -p $port -c $CLIENTS -n $REQUESTS -r $KEYS -P $p -t set,get --csv   ($target)"
        if ! csv="$(timeout "$RUN_TIMEOUT" "$REDIS_BENCH" -h 127.0.0.1 -p "$port" -c "$CLIENTS" \
            -n "$REQUESTS" -r "$KEYS" -P "$p" -t set,get --csv 2>"$WORK/bench.err")"; then
            cat "$WORK/bench.err" >&2
            error "redis-benchmark against $target failed or ran over ${RUN_TIMEOUT}s"
            return 1
        fi
        printf '%s\n' "$csv" | awk -F'","' -v t="$target" -v p="$p" -v r="$round" '
            /^"(SET|GET)"/ {
                gsub(/"/, "", $1); gsub(/"/, "", $NF)
                printf "%s,%s,%s,%s,%s,%s,%s\n", t, tolower($1), p, $2, $5, $7, r
            }' >>"$WORK/results.csv"
    done
}

# Built before any server starts, so the build never competes with a run.
case " $TARGETS " in
*" chring-proxy "*)
    run cargo build --release -p chring-proxy
    bin="$(cargo metadata --no-deps --format-version 1 |
        sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/release/chring-proxy"
    [ -z "${CARGO_TARGET_DIR:-}" ] || bin="$CARGO_TARGET_DIR/release/chring-proxy"
    ;;
esac

: >"$WORK/results.csv"
SHARDS=()
case " $TARGETS " in
*" nutcracker "* | *" chring-proxy "*)
    for _ in $(seq 1 "$BACKENDS"); do
        start_redis
        SHARDS+=("$REDIS_PORT")
    done
    info "$BACKENDS redis-servers on 127.0.0.1, ports ${SHARDS[*]}"
    ;;
esac

# Every target is started first (its port kept in PORT_<target>), then
# benched RUNS times, interleaved.
declare -A PORT_OF
for target in $TARGETS; do
    case $target in
    direct)
        start_redis
        PORT_OF[$target]="$REDIS_PORT"
        ;;
    nutcracker)
        port="$(free_port)"
        write_conf "$port" "$WORK/nutcracker.yml"
        "$(find_bin nutcracker)" -c "$WORK/nutcracker.yml" -s "$(free_port)" -a 127.0.0.1 \
            -o "$WORK/nutcracker.log" </dev/null >/dev/null 2>&1 &
        PIDS+=("$!")
        wait_ping "$port" nutcracker
        PORT_OF[$target]="$port"
        ;;
    chring-proxy)
        port="$(free_port)"
        write_conf "$port" "$WORK/chring-proxy.yml"
        threads_arg=()
        [ -z "$THREADS" ] || threads_arg=(--threads "$THREADS")
        "$bin" -c "$WORK/chring-proxy.yml" -s "$(free_port)" -o "$WORK/chring-proxy.log" \
            "${threads_arg[@]+"${threads_arg[@]}"}" </dev/null >"$WORK/chring-proxy.out" 2>&1 &
        PIDS+=("$!")
        if ! wait_ping "$port" chring-proxy; then
            tail -n 20 "$WORK/chring-proxy.out" "$WORK/chring-proxy.log" >&2 || true
            exit 1
        fi
        PORT_OF[$target]="$port"
        ;;
    *)
        error "unknown target '$target' (direct, nutcracker, chring-proxy)"
        exit 2
        ;;
    esac
done

ORDER="$TARGETS"
REVERSED="$(printf '%s\n' $TARGETS | tac | tr '\n' ' ')"
for round in $(seq 1 "$RUNS"); do
    [ "$RUNS" -eq 1 ] || info "round $round of $RUNS"
    if [ $((round % 2)) -eq 0 ]; then ORDER="$REVERSED"; else ORDER="$TARGETS"; fi
    for target in $ORDER; do
        bench "$target" "${PORT_OF[$target]}" "$round"
    done
done

mkdir -p "$(dirname "$OUT_JSON")"
python3 - "$WORK/results.csv" "$OUT_JSON" "$(nproc)" "$RUNS" "${THREADS:-}" <<'EOF'
import json, statistics, sys

rows = [l.strip().split(",") for l in open(sys.argv[1]) if l.strip()]
runs, threads = int(sys.argv[4]), sys.argv[5]
per = {}  # (target, run) -> {round: (ops, p50, p99)}
for target, test, pipe, rps, p50, p99, rnd in rows:
    per.setdefault((target, f"{test}_p{pipe}"), {})[rnd] = (float(rps), float(p50), float(p99))
out, ratios = {}, {}
for (target, run), by_round in per.items():
    vals = list(by_round.values())
    out.setdefault(target, {})[run] = {
        "ops": round(statistics.median(v[0] for v in vals)),
        "p50_ms": statistics.median(v[1] for v in vals),
        "p99_ms": statistics.median(v[2] for v in vals),
    }
    base = per.get(("nutcracker", run), {})
    rs = [v[0] / base[r][0] for r, v in by_round.items() if r in base and base[r][0]]
    if rs:
        ratios[(target, run)] = statistics.median(rs)
with open(sys.argv[2], "w") as f:
    json.dump(out, f, indent=2, sort_keys=True)
    f.write("\n")

print()
print(f"redis-benchmark, 50 clients, {sys.argv[3]} cores shared by client, proxy and servers")
how = f"--threads {threads}" if threads else f"default --threads (one per core: {sys.argv[3]})"
print(f"chring-proxy with {how}")
if runs > 1:
    print(f"medians of {runs} interleaved rounds (ratio: median of the per-round ratios)")
print()
print("| target | run | ops/s | p50 ms | p99 ms | ops/s vs nutcracker |")
print("| --- | --- | ---: | ---: | ---: | ---: |")
for target in out:
    for run in ("set_p1", "get_p1", "set_p16", "get_p16"):
        r = out[target].get(run)
        if r is None:
            continue
        ratio = f"{ratios[(target, run)]:.2f}x" if (target, run) in ratios else "-"
        print(f"| {target} | {run} | {r['ops']:,} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {ratio} |")
print()
print(f"written: {sys.argv[2]}")
EOF
