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
missing=''
find_bin redis-server >/dev/null || missing="$missing redis-server"
{ find_bin redis-benchmark >/dev/null && find_bin redis-cli >/dev/null; } || missing="$missing redis-tools"
case " $TARGETS " in *" nutcracker "*) find_bin nutcracker >/dev/null || missing="$missing nutcracker" ;; esac
if [ -n "$missing" ]; then
    if is_root && have apt-get; then
        info "installing$missing with apt-get"
        # shellcheck disable=SC2086 # word splitting intended
        apt_install $missing
    else
        error "missing$missing. Install with:"
        echo "  sudo apt-get update && sudo apt-get install -y$missing" >&2
        exit 1
    fi
fi
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

# bench TARGET PORT: SET then GET at -P 1 and -P 16; appends CSV rows
# "target,test,pipeline,rps,p50,p99" to $WORK/results.csv.
bench() {
    local target=$1 port=$2 p csv
    for p in 1 16; do
        printf '+ %s\n' "redis-benchmark -p $port -c $CLIENTS -n $REQUESTS -r $KEYS -P $p -t set,get --csv   ($target)"
        if ! csv="$(timeout "$RUN_TIMEOUT" "$REDIS_BENCH" -h 127.0.0.1 -p "$port" -c "$CLIENTS" \
            -n "$REQUESTS" -r "$KEYS" -P "$p" -t set,get --csv 2>"$WORK/bench.err")"; then
            cat "$WORK/bench.err" >&2
            error "redis-benchmark against $target failed or ran over ${RUN_TIMEOUT}s"
            return 1
        fi
        printf '%s\n' "$csv" | awk -F'","' -v t="$target" -v p="$p" '
            /^"(SET|GET)"/ {
                gsub(/"/, "", $1); gsub(/"/, "", $NF)
                printf "%s,%s,%s,%s,%s,%s\n", t, tolower($1), p, $2, $5, $7
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

for target in $TARGETS; do
    case $target in
    direct)
        start_redis
        bench direct "$REDIS_PORT"
        ;;
    nutcracker)
        port="$(free_port)"
        write_conf "$port" "$WORK/nutcracker.yml"
        "$(find_bin nutcracker)" -c "$WORK/nutcracker.yml" -s "$(free_port)" -a 127.0.0.1 \
            -o "$WORK/nutcracker.log" </dev/null >/dev/null 2>&1 &
        PIDS+=("$!")
        wait_ping "$port" nutcracker
        bench nutcracker "$port"
        ;;
    chring-proxy)
        port="$(free_port)"
        write_conf "$port" "$WORK/chring-proxy.yml"
        "$bin" -c "$WORK/chring-proxy.yml" -s "$(free_port)" -o "$WORK/chring-proxy.log" \
            </dev/null >"$WORK/chring-proxy.out" 2>&1 &
        PIDS+=("$!")
        if ! wait_ping "$port" chring-proxy; then
            tail -n 20 "$WORK/chring-proxy.out" "$WORK/chring-proxy.log" >&2 || true
            exit 1
        fi
        bench chring-proxy "$port"
        ;;
    *)
        error "unknown target '$target' (direct, nutcracker, chring-proxy)"
        exit 2
        ;;
    esac
done

mkdir -p "$(dirname "$OUT_JSON")"
python3 - "$WORK/results.csv" "$OUT_JSON" "$(nproc)" <<'EOF'
import json, sys

rows = [l.strip().split(",") for l in open(sys.argv[1]) if l.strip()]
out = {}
for target, test, pipe, rps, p50, p99 in rows:
    out.setdefault(target, {})[f"{test}_p{pipe}"] = {
        "ops": round(float(rps)),
        "p50_ms": float(p50),
        "p99_ms": float(p99),
    }
with open(sys.argv[2], "w") as f:
    json.dump(out, f, indent=2, sort_keys=True)
    f.write("\n")

print()
print(f"redis-benchmark, 50 clients, {sys.argv[3]} cores shared by client, proxy and servers")
print()
print("| target | run | ops/s | p50 ms | p99 ms | ops/s vs nutcracker |")
print("| --- | --- | ---: | ---: | ---: | ---: |")
for target in out:
    for run in ("set_p1", "get_p1", "set_p16", "get_p16"):
        r = out[target].get(run)
        if r is None:
            continue
        base = out.get("nutcracker", {}).get(run)
        ratio = f"{r['ops'] / base['ops']:.2f}x" if base and base["ops"] else "-"
        print(f"| {target} | {run} | {r['ops']:,} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {ratio} |")
print()
print(f"written: {sys.argv[2]}")
EOF
