#!/usr/bin/env bash
# shellcheck disable=SC2317 # steps are called indirectly, as "step_$name"
# The one test command of this project: `bash scripts/test-all.sh`.
#
# Runs every check CI runs, in order, stopping at the first failure. On a fresh
# Debian machine where it runs as root it installs what it needs (apt); anywhere
# else it prints the command to run and fails: it never skips a step silently.
#
#   bash scripts/test-all.sh            # all steps
#   bash scripts/test-all.sh nostd doc  # only these steps, in the given order
#   bash scripts/test-all.sh --help     # list the steps
#
# Environment: CARGO_TARGET_DIR is honoured; NOSTD_TARGETS overrides the list
# of bare-metal targets; FUZZ_RUNS (default 20000) is the number of inputs
# each fuzz target runs; CI=true turns incremental compilation off;
# FIRMWARE_BLESS=1 rewrites firmware/expected/*.out from this run's decoded
# logs; FIRMWARE_TIMEOUT (seconds, default 300) bounds each QEMU run.
#
# Adding a step: write `step_<name>`, add `<name>` to STEPS and a line to
# describe_step. Nothing else.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source-path=SCRIPTDIR
. "$ROOT/scripts/lib/common.sh"
# shellcheck source-path=SCRIPTDIR
. "$ROOT/scripts/lib/rust-src.sh"

# Steps run by default, in this order.
STEPS="fmt clippy test compat_twemproxy compat_http compat_libmemcached proxy dashboard doc nostd fuzz firmware hil udplb"

describe_step() {
    case $1 in
    fmt) echo "formatting: cargo fmt --all -- --check" ;;
    clippy) echo "lints: cargo clippy (workspace, all targets; chring with defmt), warnings denied" ;;
    test) echo "tests: cargo test --workspace, then chring with defmt and with no default features; the MSRV check" ;;
    compat_twemproxy) echo "twemproxy: chring's ketama against the real nutcracker with memcached backends (installs them with apt as root)" ;;
    compat_http) echo "nginx + HAProxy: chring's nginx (hash, hash consistent, ip_hash) and HAProxy 2.6 (hash-type consistent and map-based; balance hdr, uri, url_param, source) modes against the real daemons (installs nginx-light and haproxy with apt as root)" ;;
    compat_libmemcached) echo "libmemcached: chring's KETAMA / KETAMA_WEIGHTED against the real libmemcached, through pylibmc into memcached and through its configuration-string parser (installs memcached and python3-pylibmc with apt as root)" ;;
    proxy) echo "chring-proxy: its data path against real redis-server, memcached and nutcracker on 127.0.0.1 (routing parity, pipelining, multi-key, AUTH, errors, ADD/REMOVE under load, ejection, 1,000 clients; HTTP pools over test backends and nginx), and a small host-sim lb-compare through its HTTP pools and nginx (installs redis-server, redis-tools, memcached, nutcracker and nginx-light with apt as root)" ;;
    dashboard) echo "dashboard: chring-proxy's /dashboard in Debian's headless chromium (Selenium + chromedriver) with live traffic over real redis-servers: the page's numbers equal /api/state, a killed server shows ejected within server_retry_timeout, an add from the page changes ROUTE; screenshots in target/dashboard (installs chromium, chromium-driver, python3-selenium and redis-server with apt as root)" ;;
    doc) echo "docs: cargo doc -p chring with warnings denied" ;;
    nostd) echo "no_std: chring built for ${NOSTD_TARGETS} (core only, no alloc) with default features off, with defmt, and with every feature; a ring-only chring pulls neither md-5 nor rand_pcg" ;;
    fuzz) echo "fuzzing: every cargo-fuzz target in fuzz/ built (overflow checks and debug assertions on) and run ${FUZZ_RUNS} inputs over a copy of its committed corpus (installs cargo-fuzz when missing)" ;;
    firmware) echo "firmware: host tests, then the Cortex-M4F build run under QEMU, its defmt log diffed against firmware/expected (FIRMWARE_BLESS=1 rewrites it)" ;;
    hil) echo "hardware in the loop: the hil firmware under QEMU driven over its UART by host-sim hil (scenario B, 30,000 ROUTEs), every reply checked" ;;
    udplb) echo "live packets: the udplb firmware under QEMU (LAN9118, user networking) shards memcached UDP over real memcached servers, driven by host-sim hil --qemu --udp (scenario B, a server added over the UART mid-run), every reply checked; its 128 KiB flash / 64 KiB RAM budget (installs memcached with apt as root)" ;;
    *) return 1 ;;
    esac
}

# The library must build with `core` alone on these. thumbv6m has no
# compare-and-swap atomics, so it catches accidental atomics; riscv32imac
# keeps us honest about non-ARM targets.
NOSTD_TARGETS="${NOSTD_TARGETS:-thumbv6m-none-eabi thumbv7em-none-eabihf riscv32imac-unknown-none-elf}"

# Inputs each fuzz target runs in the fuzz step: a bounded count, not a time,
# so the step takes as long on every run of the same machine.
FUZZ_RUNS="${FUZZ_RUNS:-20000}"

# ---------------------------------------------------------------- environment

[ -t 1 ] || export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
if [ "${CI:-}" = true ]; then
    export CARGO_INCREMENTAL=0
fi

# Where cargo puts things (honours CARGO_TARGET_DIR and .cargo/config.toml).
target_dir() {
    if [ -n "${CARGO_TARGET_DIR:-}" ]; then
        printf '%s\n' "$CARGO_TARGET_DIR"
        return
    fi
    local d
    d="$(cargo metadata --no-deps --format-version 1 2>/dev/null |
        sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')" || d=''
    printf '%s\n' "${d:-$ROOT/target}"
}

# need_cargo_tool SUBCOMMAND COMPONENT: fail with the install command when a
# rustup component (rustfmt, clippy) is missing.
need_cargo_tool() {
    if ! cargo "$1" --version >/dev/null 2>&1; then
        error "\`cargo $1\` is not available. Install it with:"
        echo "  rustup component add $2" >&2
        return 1
    fi
}

# ---------------------------------------------------------------------- steps

step_fmt() {
    need_cargo_tool fmt rustfmt
    # rustfmt's own colour choice ignores CARGO_TERM_COLOR and whether the
    # output is a terminal (it coloured the diff in CI logs): pass it on.
    set -- cargo fmt --all -- --check
    case ${CARGO_TERM_COLOR:-} in
    never | always) set -- "$@" --color "$CARGO_TERM_COLOR" ;;
    esac
    run "$@"
}

step_clippy() {
    need_cargo_tool clippy clippy
    run cargo clippy --workspace --all-targets -- -D warnings
    run cargo clippy -p chring --features defmt -- -D warnings
}

# host-sim's PNG chart test needs a TrueType font; without one it prints
# SKIPPED (never passes silently), so install Debian's DejaVu when we can.
ensure_chart_font() {
    local f
    for f in /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf "${HOST_SIM_FONT:-}"; do
        [ -n "$f" ] && [ -f "$f" ] && return 0
    done
    if is_root && have apt-get; then
        apt_install fonts-dejavu-core
    else
        warn "no TrueType font: host-sim's PNG chart test will be SKIPPED. Install one with:"
        echo "  sudo apt-get install -y fonts-dejavu-core   # or set HOST_SIM_FONT=/path/to/font.ttf" >&2
    fi
}

step_test() {
    local log
    log="$(log_dir)/cargo-test.log"
    : >"$log"
    ensure_chart_font
    # Output goes to the terminal/CI log unchanged (CI reads cargo test's
    # closing lines); the copy in $log only feeds the tally at the end.
    run cargo test --workspace 2>&1 | tee -a "$log"
    run cargo test -p chring --features defmt 2>&1 | tee -a "$log"
    # The ring-only build (no compat, workload or protocol) with its own tests.
    run cargo test -p chring --no-default-features 2>&1 | tee -a "$log"
    # MSRV: no locked dependency of chring (all features) may need a newer
    # Rust than [workspace.package] rust-version declares.
    run python3 scripts/msrv-check.py
    TEST_TALLY="$(awk '
        /^test result:/ {
            for (i = 1; i <= NF; i++) {
                if ($(i + 1) ~ /^passed/) p += $i
                if ($(i + 1) ~ /^failed/) f += $i
                if ($(i + 1) ~ /^ignored/) g += $i
            }
            n++
        }
        END { printf "%d passed, %d failed, %d ignored (%d test binaries/doctest runs)", p, f, g, n }
    ' "$log")"
    info "tests: $TEST_TALLY"
}

# twemproxy (issue 6): nutcracker and memcached from Debian, then the ignored
# daemon test, which compares every key's backend with chring's. Without root
# or apt it fails with the command to run (need_packages).
step_compat_twemproxy() {
    need_packages "the twemproxy daemon test" nutcracker:nutcracker memcached:memcached ||
        return 1
    run env CHRING_DAEMON_TESTS=1 cargo test -p chring-tests --test integration \
        compat_twemproxy -- --include-ignored --nocapture
}

# nginx and HAProxy (issue 6): nginx-light (its upstream hash module is built
# in) and haproxy (2.6 in Debian 12) from Debian, then the ignored daemon tests,
# which send 10,000 keys per case through each daemon and compare every key's
# backend with chring's. Without root or apt it fails with the command
# to run (need_packages).
step_compat_http() {
    need_packages "the nginx and HAProxy daemon tests" nginx:nginx-light haproxy:haproxy ||
        return 1
    run env CHRING_DAEMON_TESTS=1 cargo test -p chring-tests --test integration -- \
        --include-ignored --nocapture compat_nginx compat_haproxy
}

# libmemcached (issue 13): Debian's python3-pylibmc (which pulls libmemcached11)
# and memcached, then the ignored library tests: pylibmc stores 10,000 keys
# per case into memcached servers and each server says which it holds; and
# libmemcached's own parser (ctypes) places 10,000 keys per configuration
# string. Without root or apt it fails with the command to run.
step_compat_libmemcached() {
    need_packages "the libmemcached tests" memcached:memcached :python3-pylibmc || return 1
    run env CHRING_DAEMON_TESTS=1 cargo test -p chring-tests --test integration \
        compat_libmemcached -- --include-ignored --nocapture
}

# chring-proxy (issue 12): redis-server, redis-tools, memcached, nutcracker and
# nginx-light (issue 15's comparison) from Debian, then the proxy's daemon tests
# (ignored in the plain test step), each starting its own daemons on free ports
# of 127.0.0.1. Without root or apt it fails with the command to run
# (need_packages).
step_proxy() {
    need_packages "the chring-proxy daemon tests" redis-server:redis-server \
        redis-benchmark:redis-tools memcached:memcached nutcracker:nutcracker \
        nginx:nginx-light || return 1
    run cargo test -p chring-proxy -- --include-ignored
    # Issue 15's algorithm comparison, small: host-sim lb-compare through the
    # chring-proxy binary just built (and nginx), asserting each algorithm's effect.
    run env CHRING_PROXY="$(target_dir)/debug/chring-proxy" \
        cargo test -p host-sim --test lb_compare -- --include-ignored --nocapture
}

# The dashboard (issue 16) in a real browser: Debian's chromium driven by
# chromedriver through Debian's python3-selenium (run with Debian's own
# /usr/bin/python3, which has it), against the debug chring-proxy binary over
# real redis-servers. The script starts and stops everything on free
# 127.0.0.1 ports and bounds every wait.
step_dashboard() {
    local py=/usr/bin/python3
    need_packages "the dashboard test" chromium:chromium chromedriver:chromium-driver \
        redis-server:redis-server :python3-selenium || return 1
    run cargo build -p chring-proxy --bin chring-proxy || return 1
    run timeout 600 "$py" "$ROOT/proxy/tests/browser/dashboard.py" \
        --proxy "$(target_dir)/debug/chring-proxy" --out "$(target_dir)/dashboard"
}

step_doc() {
    run env RUSTDOCFLAGS="${RUSTDOCFLAGS:+$RUSTDOCFLAGS }-D warnings" cargo doc -p chring --no-deps
}

step_nostd() {
    # A firmware that needs only the ring pulls nothing else: with default
    # features off, chring's normal dependencies name neither md-5 (compat) nor
    # rand_pcg / rand_core (workload).
    local tree
    tree="$(cargo tree -p chring --no-default-features -e normal --prefix none --locked)" || return 1
    if printf '%s\n' "$tree" | grep -Eq '^(md-5|rand_pcg|rand_core) '; then
        printf '%s\n' "$tree" >&2
        error "chring --no-default-features depends on md-5, rand_pcg or rand_core (tree above)"
        return 1
    fi
    info "chring --no-default-features: $(printf '%s\n' "$tree" | sort -u | wc -l) crates, no md-5, rand_pcg or rand_core"

    # Builds for bare-metal targets get their own target dir: `-Z build-std`
    # needs RUSTC_BOOTSTRAP=1, which some build scripts watch
    # (rerun-if-env-changed), and may use another rustc (BUILD_STD_RUSTC), so
    # sharing the host's dir would rebuild host crates back and forth.
    local dir="$TARGET_DIR/nostd"
    local prebuilt='' from_src='' t
    for t in $NOSTD_TARGETS; do
        if target_std_installed "$t"; then
            prebuilt="$prebuilt $t"
        else
            from_src="$from_src $t"
        fi
    done
    [ -z "$prebuilt" ] || info "prebuilt std installed for:$prebuilt"
    if [ -n "$from_src" ]; then
        info "building core from source (-Z build-std=core) for:$from_src"
        # shellcheck disable=SC2086 # word splitting intended
        ensure_build_std $from_src
    fi

    local features start
    for t in $NOSTD_TARGETS; do
        # Nothing, defmt alone, and every feature (compat, workload, protocol
        # and defmt): all of chring, md-5 and rand_pcg included, needs no alloc.
        for features in '' defmt compat,workload,protocol,defmt; do
            start=$SECONDS
            set -- cargo build -p chring --lib --no-default-features \
                ${features:+--features "$features"} --target "$t" --target-dir "$dir"
            case " $from_src " in
            *" $t "*)
                # Only `core`, not `alloc`: proof that chring allocates nothing.
                run env ${BUILD_STD_RUSTC:+RUSTC="$BUILD_STD_RUSTC"} RUSTC_BOOTSTRAP=1 \
                    "$@" -Z build-std=core || {
                    nostd_build_failed "$t"
                    return 1
                }
                ;;
            *) run "$@" ;;
            esac
            info "$t${features:+ +$features}: $(fmt_duration $((SECONDS - start)))"
        done
    done
}

nostd_build_failed() {
    local rustc="${BUILD_STD_RUSTC:-${RUSTC:-rustc}}"
    error "chring does not build for $1 with \`core\` alone (see the errors above)."
    echo "       \"can't find crate\" for alloc or std: something needs an allocator or std." >&2
    echo "       Errors inside \`core\` itself: its source, $("$rustc" --print sysroot)/lib/rustlib/src/rust," >&2
    echo "       does not match the compiler, $("$rustc" -V)." >&2
}

# Fuzzing (issue 10): fuzz/ is a cargo-fuzz package (its own workspace and
# lockfile). Every target is built as libFuzzer binaries with the stable
# toolchain (RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags), without a
# sanitizer, optimised, with debug assertions and overflow checks; then each
# runs FUZZ_RUNS inputs, starting from a copy of fuzz/corpus/<target> in a
# temp dir (the step never writes into the repository), with its dictionary
# fuzz/dict/<target without "config_">.dict if there is one. Crashes land in
# the logs dir. Fuzzing for hours: README.md, "Fuzzing".
step_fuzz() {
    local dir="$TARGET_DIR/fuzz" log t start targets corpus out art dict
    log="$(log_dir)"
    if ! cargo fuzz --version >/dev/null 2>&1; then
        info "installing cargo-fuzz (cargo install; several minutes)"
        start=$SECONDS
        run_logged "$log/cargo-fuzz-install.log" cargo install cargo-fuzz --locked || return 1
        info "cargo-fuzz installed in $(fmt_duration $((SECONDS - start)))"
        cargo fuzz --version >/dev/null 2>&1 || {
            error "cargo-fuzz installed but not on PATH: add \$CARGO_HOME/bin (~/.cargo/bin) to PATH"
            return 1
        }
    fi
    info "$(cargo fuzz --version)"
    (cd fuzz && run cargo fmt -- --check) || return 1
    set -- env RUSTC_BOOTSTRAP=1 cargo fuzz
    local opts=(--sanitizer none -O --debug-assertions --target-dir "$dir")
    start=$SECONDS
    run "$@" build "${opts[@]}" || return 1
    info "fuzz targets built in $(fmt_duration $((SECONDS - start)))"
    targets="$(cargo fuzz list)" || return 1
    for t in $targets; do
        corpus="$(mktemp -d "${TMPDIR:-/tmp}/chring-fuzz-$t.XXXXXX")"
        if [ -d "fuzz/corpus/$t" ]; then
            cp -R "fuzz/corpus/$t/." "$corpus/"
        fi
        dict=()
        [ ! -f "fuzz/dict/${t#config_}.dict" ] || dict=(-dict="fuzz/dict/${t#config_}.dict")
        art="$log/fuzz-artifacts/$t"
        mkdir -p "$art"
        out="$log/fuzz-$t.log"
        start=$SECONDS
        printf '+ %s  (output: %s)\n' "cargo fuzz run $t ($FUZZ_RUNS runs)" "$out"
        if ! "$@" run "${opts[@]}" "$t" "$corpus" -- -runs="$FUZZ_RUNS" \
            -rss_limit_mb=2048 -max_len=4096 -timeout=10 -artifact_prefix="$art/" \
            ${dict[@]+"${dict[@]}"} >"$out" 2>&1; then
            tail -n 40 "$out" >&2
            rm -rf "$corpus"
            error "fuzz target $t failed (above; full output: $out; the input: $art/)"
            echo "       Reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none -O --debug-assertions $t $art/<file>" >&2
            return 1
        fi
        rm -rf "$corpus"
        info "$t: $(grep -E '^Done [0-9]+ runs' "$out" | tail -n 1) ($(fmt_duration $((SECONDS - start))))"
    done
}

# Firmware (firmware/: its own workspace and lockfile). The `balancer` binary
# runs on the QEMU board mps2-an386 (Cortex-M4F); its defmt log, decoded by
# defmt-print, must match firmware/expected/balancer.out (FIRMWARE_BLESS=1
# rewrites that file from this run instead). Its build has its own target dir,
# firmware/target, whatever CARGO_TARGET_DIR says.
FIRMWARE_TARGET=thumbv7em-none-eabihf
FIRMWARE_BINS="balancer"
FIRMWARE_FLASH_BUDGET=$((64 * 1024))
FIRMWARE_RAM_BUDGET=$((32 * 1024))

# firmware_setup: QEMU and defmt-print installed (as root, else the command to
# run), and FIRMWARE_BUILD_ENV set to the `env ...` prefix that builds the
# firmware (prebuilt target, or -Z build-std with Debian's compiler and
# rustup's rust-lld). Shared by the firmware and hil steps.
FIRMWARE_BUILD_ENV=(env)
firmware_setup() {
    local host log t
    host="$(rustc -vV | sed -n 's/^host: //p')"
    log="$(log_dir)"

    # Tools: QEMU from apt, defmt-print from crates.io (compiles for minutes:
    # only when missing).
    need_packages "the firmware under QEMU" qemu-system-arm:qemu-system-arm || return 1
    info "$(qemu-system-arm --version | head -n 1)"
    # defmt 1.x frames need defmt-print 1.x.
    local v=''
    ! have defmt-print || v="$(defmt-print -V 2>/dev/null)" || v=''
    if [ "${v#defmt-print 1.}" = "$v" ]; then
        info "installing defmt-print 1.x (cargo install; several minutes)"
        t=$SECONDS
        run_logged "$log/defmt-print-install.log" \
            cargo install defmt-print --version '^1' --locked --force || return 1
        info "defmt-print installed in $(fmt_duration $((SECONDS - t)))"
        have defmt-print || {
            error "defmt-print installed but not on PATH: add \$CARGO_HOME/bin (~/.cargo/bin) to PATH"
            return 1
        }
        v="$(defmt-print -V)"
    fi
    info "${v%%$'\n'*}"

    # How to get `core` for the target: prebuilt (rustup target add) or built
    # from source with -Z build-std, exactly as the nostd step does.
    FIRMWARE_BUILD_ENV=(env)
    if target_std_installed "$FIRMWARE_TARGET"; then
        info "prebuilt std installed for $FIRMWARE_TARGET"
    else
        ensure_build_std "$FIRMWARE_TARGET" || return 1
        # RUSTC_BOOTSTRAP=1 makes cargo read the [unstable] build-std table of
        # firmware/.cargo/config.toml.
        FIRMWARE_BUILD_ENV=(env ${BUILD_STD_RUSTC:+RUSTC="$BUILD_STD_RUSTC"} RUSTC_BOOTSTRAP=1)
        # Linking needs rust-lld, which Debian's rustc does not ship: use the
        # default toolchain's (rustc looks the linker up on PATH).
        if [ -n "$BUILD_STD_RUSTC" ]; then
            local lld_dir
            lld_dir="$(rust_sysroot)/lib/rustlib/$host/bin"
            if [ ! -x "$lld_dir/rust-lld" ]; then
                error "no rust-lld in $lld_dir to link the firmware with $BUILD_STD_RUSTC"
                return 1
            fi
            FIRMWARE_BUILD_ENV+=(PATH="$lld_dir:$PATH")
        fi
    fi
}

step_firmware() {
    local fw="$ROOT/firmware" tdir="$ROOT/firmware/target" host log t bin elf out
    local bless="${FIRMWARE_BLESS:-0}"
    host="$(rustc -vV | sed -n 's/^host: //p')"
    log="$(log_dir)"

    firmware_setup || return 1
    local build_env=("${FIRMWARE_BUILD_ENV[@]}")

    (
        cd "$fw"
        firmware_host_checks() {
            t=$SECONDS
            run cargo fmt -- --check || return 1
            # The logic (lib) with embedded-hal-mock on the host; it also compares
            # its report with expected/balancer.out.
            run cargo test --target "$host" --target-dir "$tdir" || return 1
            run cargo clippy --target "$host" --target-dir "$tdir" --lib --tests -- -D warnings ||
                return 1
            info "host tests and lints: $(fmt_duration $((SECONDS - t)))"
        }
        # Blessing rewrites the expected output first; the host tests then
        # check the host's report against it.
        if [ "$bless" != 1 ]; then
            firmware_host_checks || return 1
        fi

        t=$SECONDS
        # Its warnings (cargo replays them from cache) fail the step: clippy
        # may not be able to check the binary here (below).
        if ! run "${build_env[@]}" cargo build --release --bins --target-dir "$tdir" 2>&1 |
            tee "$log/firmware-build.log"; then
            return 1
        fi
        # shellcheck disable=SC2016 # the backquotes are cargo's, not a command
        if grep -q '^warning: `chring-firmware`' "$log/firmware-build.log"; then
            error "the firmware builds with warnings (above)"
            return 1
        fi
        info "firmware build: $(fmt_duration $((SECONDS - t)))"
        if [ -z "$BUILD_STD_RUSTC" ]; then
            run "${build_env[@]}" cargo clippy --release --bins --target-dir "$tdir" -- -D warnings ||
                return 1
        else
            warn "no clippy for $FIRMWARE_TARGET here: clippy is rustc $(rustc_minor) but core must be" \
                "built by $("$BUILD_STD_RUSTC" -V | cut -d' ' -f1-2) (Debian's library source); the" \
                "firmware's lib and tests were linted for $host above"
        fi

        for bin in $FIRMWARE_BINS; do
            elf="$tdir/$FIRMWARE_TARGET/release/$bin"
            out="$log/firmware-$bin.out"
            t=$SECONDS
            printf '+ %s\n' "./qemu-run.sh $elf > $out"
            if ! FIRMWARE_TIMEOUT="${FIRMWARE_TIMEOUT:-300}" ./qemu-run.sh "$elf" >"$out"; then
                cat "$out"
                error "$bin failed under QEMU (exit status above; decoded log: $out)"
                return 1
            fi
            cat "$out"
            info "$bin ran under QEMU in $(fmt_duration $((SECONDS - t)))"
            # `footprint` lines depend on the compiler (code size, stack use):
            # reported, budget-checked, but not compared.
            if [ "$bless" = 1 ]; then
                grep -v '^[A-Z]* *footprint' "$out" >"expected/$bin.out"
                info "blessed firmware/expected/$bin.out"
            elif ! diff -u "expected/$bin.out" <(grep -v '^[A-Z]* *footprint' "$out"); then
                error "the decoded log of $bin differs from firmware/expected/$bin.out (diff above)."
                echo "       If the change is intended: FIRMWARE_BLESS=1 bash scripts/test-all.sh firmware" >&2
                return 1
            fi
            firmware_footprint "$elf" "$out" || return 1
        done

        if [ "$bless" = 1 ]; then
            firmware_host_checks || return 1
        fi
    )
}

# Hardware in the loop (issue 7): the `hil` firmware serves chring's control
# protocol on UART0 under QEMU, and `host-sim hil` replays scenario B through it
# (every request as a ROUTE, the fleet change as an ADD_SERVER), checking each
# reply against the same controller on the host. Fails on any mismatch or
# protocol error, or if fewer than HIL_MIN_ROUTES ROUTEs were checked.
HIL_MIN_ROUTES=20000
step_hil() {
    local fw="$ROOT/firmware" tdir="$ROOT/firmware/target" log out t routes
    log="$(log_dir)"
    firmware_setup || return 1
    t=$SECONDS
    (
        cd "$fw"
        run "${FIRMWARE_BUILD_ENV[@]}" cargo build --release --bin hil --target-dir "$tdir"
    ) || return 1
    run cargo build --release -p host-sim --bin host-sim || return 1
    info "builds: $(fmt_duration $((SECONDS - t)))"
    t=$SECONDS
    out="$log/hil.out"
    # host-sim starts QEMU itself, and kills it (by PID) when done; every reply
    # has a 20 s deadline, so a silent firmware fails the step instead of hanging.
    printf '+ %s\n' "host-sim hil --qemu --scenario b > $out"
    if ! "$(target_dir)/release/host-sim" hil --qemu --elf "$tdir/$FIRMWARE_TARGET/release/hil" \
        --scenario b >"$out"; then
        cat "$out"
        error "host-sim hil failed (above; full output: $out)"
        return 1
    fi
    cat "$out"
    routes="$(sed -n 's/^commands sent: [0-9]* (\([0-9]*\) ROUTE.*/\1/p' "$out")"
    if [ -z "$routes" ] || [ "$routes" -lt "$HIL_MIN_ROUTES" ] || ! grep -q '^mismatches: 0$' "$out"; then
        error "expected at least $HIL_MIN_ROUTES ROUTEs and 0 mismatches (output: $out)"
        return 1
    fi
    info "hil: $routes ROUTEs checked against the host in $(fmt_duration $((SECONDS - t)))"
}

# Live packets (issue 14): the `udplb` firmware balances memcached's UDP
# protocol on the LAN9118 of mps2-an386 under QEMU (user networking, the host
# port forwarded on 127.0.0.1 only). host-sim starts memcached servers and
# QEMU, gives the device its fleet over the UART, stores every customer
# through it and replays scenario B as gets (multi-key ones too, a server
# added mid-run, then one down), checking every reply against its own model
# and every memcached's contents. Fails on any mismatch or lost request, if
# fewer than UDPLB_MIN_REQUESTS were checked, or if udplb is over its budget
# (128 KiB flash, 64 KiB RAM: static + the peak stack it reports at STATS).
UDPLB_MIN_REQUESTS=20000
step_udplb() {
    local fw="$ROOT/firmware" tdir="$ROOT/firmware/target" log out t requests
    log="$(log_dir)"
    firmware_setup || return 1
    need_packages "the udplb test" memcached:memcached || return 1
    t=$SECONDS
    (
        cd "$fw"
        run "${FIRMWARE_BUILD_ENV[@]}" cargo build --release --bin udplb --target-dir "$tdir"
    ) || return 1
    run cargo build --release -p host-sim --bin host-sim || return 1
    info "builds: $(fmt_duration $((SECONDS - t)))"
    t=$SECONDS
    out="$log/udplb.out"
    # host-sim starts memcached and QEMU itself and kills them (by PID) when
    # done; UART replies have a 20 s deadline, datagrams are retried (bounded).
    printf '+ %s\n' "host-sim hil --qemu --udp --scenario b > $out"
    if ! "$(target_dir)/release/host-sim" hil --qemu --udp \
        --elf "$tdir/$FIRMWARE_TARGET/release/udplb" --scenario b >"$out"; then
        cat "$out"
        error "host-sim hil --udp failed (above; full output: $out)"
        return 1
    fi
    cat "$out"
    requests="$(sed -n 's/^requests: \([0-9]*\) .*/\1/p' "$out")"
    if [ -z "$requests" ] || [ "$requests" -lt "$UDPLB_MIN_REQUESTS" ] ||
        ! grep -q '^mismatches: 0$' "$out" || ! grep -q '^lost: 0,' "$out"; then
        error "expected at least $UDPLB_MIN_REQUESTS requests, 0 mismatches and 0 lost (output: $out)"
        return 1
    fi
    info "udplb: $requests requests checked against the host's model in $(fmt_duration $((SECONDS - t)))"
    # udplb's own budget (memory/udplb.x makes the linker enforce it too).
    local FIRMWARE_FLASH_BUDGET=$((128 * 1024)) FIRMWARE_RAM_BUDGET=$((64 * 1024))
    firmware_footprint "$tdir/$FIRMWARE_TARGET/release/udplb" "$out"
}

# firmware_footprint ELF LOG: flash and static RAM from the section sizes of ELF
# (llvm-size or GNU size: both read ARM ELF), plus the peak stack the firmware
# measured (its `footprint: RAM` line in LOG), against the budgets.
firmware_footprint() {
    local elf=$1 log=$2 sizes flash ram stack size_tool
    for size_tool in llvm-size size; do
        if have "$size_tool" && sizes="$("$size_tool" -A -d "$elf" 2>/dev/null)"; then
            break
        fi
        sizes=''
    done
    if [ -z "$sizes" ]; then
        error "cannot read section sizes of $elf: install binutils (\`size\`) or llvm (\`llvm-size\`)"
        return 1
    fi
    # Flash: what is loaded there (vectors, code, constants, .data's image);
    # static RAM: .data, .bss, .uninit.
    read -r flash ram < <(printf '%s\n' "$sizes" | awk '
        $1 == ".vector_table" || $1 == ".text" || $1 == ".rodata" || $1 == ".gnu.sgstubs" { f += $2 }
        $1 == ".data" { f += $2; r += $2 }
        $1 == ".bss" || $1 == ".uninit" { r += $2 }
        END { print f + 0, r + 0 }')
    stack="$(sed -n 's/.*footprint: RAM.*peak stack \([0-9][0-9]*\) B.*/\1/p' "$log")"
    if [ -z "$stack" ]; then
        error "no peak stack figure (\`footprint: RAM ... peak stack N B\`) in $log"
        return 1
    fi
    info "footprint of ${elf##*/} ($size_tool -A, and the firmware's stack paint):"
    printf '%s\n' "$sizes" | awk '$1 ~ /^\.(vector_table|text|rodata|data|bss|uninit|gnu\.sgstubs)$/ {
        printf "      %-14s %7d B at 0x%08x\n", $1, $2, $3 }'
    info "flash $flash B of $FIRMWARE_FLASH_BUDGET; RAM $((ram + stack)) B of $FIRMWARE_RAM_BUDGET" \
        "(static $ram B + peak stack $stack B)"
    if [ "$flash" -gt "$FIRMWARE_FLASH_BUDGET" ] || [ $((ram + stack)) -gt "$FIRMWARE_RAM_BUDGET" ]; then
        error "${elf##*/} is over budget"
        return 1
    fi
}

# ----------------------------------------------------------------------- main

usage() {
    echo "usage: bash scripts/test-all.sh [STEP...]"
    echo
    echo "Runs these steps in order (all of them when no STEP is given):"
    local s
    for s in $STEPS; do
        printf '  %-8s %s\n' "$s" "$(describe_step "$s")"
    done
}

CURRENT_STEP=''
TOTAL_START=$SECONDS
TIMINGS=''
TEST_TALLY=''

on_exit() {
    local rc=$?
    if [ "$rc" -ne 0 ] && [ -n "$CURRENT_STEP" ]; then
        echo >&2
        error "step '$CURRENT_STEP' FAILED (exit status $rc) after $(fmt_duration $((SECONDS - STEP_START)));" \
            "total $(fmt_duration $((SECONDS - TOTAL_START)))."
        [ -z "$TIMINGS" ] || echo "       passed before it:${TIMINGS%,}" >&2
    fi
}

main() {
    local selected='' s
    for s in "$@"; do
        case $s in
        -h | --help | help)
            usage
            return 0
            ;;
        -*)
            error "unknown option: $s"
            usage >&2
            return 2
            ;;
        *)
            if ! describe_step "$s" >/dev/null; then
                error "unknown step: $s"
                usage >&2
                return 2
            fi
            selected="$selected $s"
            ;;
        esac
    done
    [ -n "$selected" ] || selected=" $STEPS"

    TARGET_DIR="$(target_dir)"
    trap on_exit EXIT
    local n=0 total i=0
    for s in $selected; do n=$((n + 1)); done
    total=$n
    for s in $selected; do
        i=$((i + 1))
        CURRENT_STEP=$s
        STEP_START=$SECONDS
        header "step $i/$total: $s — $(describe_step "$s")"
        "step_$s"
        local took=$((SECONDS - STEP_START))
        ok "<== $s ok ($(fmt_duration "$took"))"
        TIMINGS="$TIMINGS $s $(fmt_duration "$took"),"
    done
    CURRENT_STEP=''
    echo
    [ -z "$TEST_TALLY" ] || echo "tests: $TEST_TALLY"
    ok "==> all $total step(s) passed in $(fmt_duration $((SECONDS - TOTAL_START))):${TIMINGS%,}"
}

# `exit` on the same line: bash reads a script as it runs it, so without it an
# edit to this file during a run (e.g. a `git pull` in another terminal) would
# make bash read garbage once main returns.
main "$@"; exit
