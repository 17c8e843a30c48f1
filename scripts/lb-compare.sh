#!/usr/bin/env bash
# Seed 004's comparison of load-balancing algorithms, live (issue 15, "Proof"):
#
#   bash scripts/lb-compare.sh                 # every algorithm, the README's run
#   bash scripts/lb-compare.sh --requests 2000 # any host-sim lb-compare flag passes through
#
# The same bounded workload (LB_COMPARE_REQUESTS requests, default 10000, over
# LB_COMPARE_CONCURRENCY keep-alive connections, default 32, keys /k/0..999
# drawn from LB_COMPARE_SEED, default 1) goes through a balancer once per
# algorithm, over 4 in-process HTTP backends started afresh for each row:
#   ok-0, ok-1   2 ms + U(0, 2) ms per request
#   slow-2       15 ms more
#   failing-3    answers 500 to 60% of its requests
# and every backend has a heavy tail (3% of requests take 150 ms more).
# Rows (LB_COMPARE_ALGORITHMS, comma-separated; default all):
#   chring-proxy, one `mode: http` pool per row: round_robin, least_conn,
#     peak_ewma, health_score, p2c, p2c_hedge (p2c + hedge_after: p95, seed
#     004's ALPHA1), bounded (ring + bounded loads, seed 004's BETA1), ring, maglev
#   nginx (Debian's, the reference): nginx_round_robin, nginx_least_conn,
#     nginx_random_two (random two least_conn)
# Per row: answers per backend, the client's p50/p99/p99.9 latency, error
# rate, hedges (chring-proxy's /metrics) and key affinity. Prints the table
# and writes results.json, table.md and lb_compare.png to LB_COMPARE_OUT
# (default target/lb-compare). `host-sim lb-compare --help` lists every knob.
#
# host-sim and chring-proxy are built with `cargo build --release`
# (CARGO_TARGET_DIR honoured). As root it installs nginx-light and
# fonts-dejavu-core with apt when they are missing. Everything runs on free
# ports of 127.0.0.1; each balancer is killed when its row ends, each row stops
# sending after LB_COMPARE_RUN_TIMEOUT seconds (default 60), and the whole
# script after LB_COMPARE_TIMEOUT seconds (default 600).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source-path=SCRIPTDIR
. "$ROOT/scripts/lib/common.sh"

REQUESTS="${LB_COMPARE_REQUESTS:-10000}"
CONCURRENCY="${LB_COMPARE_CONCURRENCY:-32}"
SEED="${LB_COMPARE_SEED:-1}"
ALGORITHMS="${LB_COMPARE_ALGORITHMS:-round_robin,least_conn,peak_ewma,health_score,p2c,p2c_hedge,bounded,ring,maglev,nginx_round_robin,nginx_least_conn,nginx_random_two}"
OUT="${LB_COMPARE_OUT:-$ROOT/target/lb-compare}"
RUN_TIMEOUT="${LB_COMPARE_RUN_TIMEOUT:-60}"
TOTAL_TIMEOUT="${LB_COMPARE_TIMEOUT:-600}"

pkgs=()
case ",$ALGORITHMS," in
*,nginx_*) pkgs+=(nginx:nginx-light) ;;
esac
[ -n "${HOST_SIM_FONT:-}" ] || pkgs+=(:fonts-dejavu-core)
need_packages "lb-compare" ${pkgs[@]+"${pkgs[@]}"}

run cargo build --release -p host-sim -p chring-proxy
dir="${CARGO_TARGET_DIR:-}"
[ -n "$dir" ] || dir="$(cargo metadata --no-deps --format-version 1 |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"

run timeout "$TOTAL_TIMEOUT" "$dir/release/host-sim" lb-compare \
    --proxy "$dir/release/chring-proxy" \
    --algorithms "$ALGORITHMS" \
    --requests "$REQUESTS" --concurrency "$CONCURRENCY" --seed "$SEED" \
    --run-timeout "$RUN_TIMEOUT" --out "$OUT" "$@"
