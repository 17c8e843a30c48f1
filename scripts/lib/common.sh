# shellcheck shell=bash
# Shared helpers for scripts/*.sh: logging, timing, running commands, apt.
# Sourced, never executed. Written for bash >= 3.2 (macOS' /bin/bash), so no
# associative arrays, `mapfile` or `${var,,}`.

if [ -t 1 ]; then
    _c_bold=$'\033[1m' _c_red=$'\033[31m' _c_green=$'\033[32m' _c_yellow=$'\033[33m' _c_off=$'\033[0m'
else
    _c_bold='' _c_red='' _c_green='' _c_yellow='' _c_off=''
fi

# header TEXT: the `==> ...` line that starts a step.
header() { printf '\n%s==> %s%s\n' "$_c_bold" "$*" "$_c_off"; }
info() { printf '    %s\n' "$*"; }
warn() { printf '%swarning:%s %s\n' "$_c_yellow" "$_c_off" "$*" >&2; }
error() { printf '%serror:%s %s\n' "$_c_red" "$_c_off" "$*" >&2; }
ok() { printf '%s%s%s\n' "$_c_green" "$*" "$_c_off"; }

# run CMD...: print the command, then run it (its status is the function's).
run() {
    printf '+ %s\n' "$*"
    "$@"
}

# fmt_duration SECONDS -> "42s" or "3m07s".
fmt_duration() {
    local s=$1
    if [ "$s" -ge 60 ]; then
        printf '%dm%02ds' $((s / 60)) $((s % 60))
    else
        printf '%ds' "$s"
    fi
}

is_root() { [ "$(id -u)" = 0 ]; }
have() { command -v "$1" >/dev/null 2>&1; }

# Directory for logs of this run (apt output, cargo test output).
log_dir() {
    local d="${TEST_ALL_LOG_DIR:-${TARGET_DIR:-target}/test-all-logs}"
    mkdir -p "$d"
    printf '%s\n' "$d"
}

# run_logged LOG CMD...: run CMD with all output appended to LOG; on failure
# show the last lines of LOG and return CMD's status.
run_logged() {
    local log=$1 rc=0
    shift
    printf '+ %s  (output: %s)\n' "$*" "$log"
    printf '\n### %s\n' "$*" >>"$log"
    "$@" >>"$log" 2>&1 </dev/null || rc=$?
    if [ "$rc" -ne 0 ]; then
        error "command failed with status $rc: $*"
        echo "---- last 40 lines of $log ----" >&2
        tail -n 40 "$log" >&2
        echo "---- end of $log ----" >&2
    fi
    return "$rc"
}

# apt_install PKG...: install Debian packages as root, non-interactively.
# Runs `apt-get update` at most once per script run: the package lists of a
# fresh machine are missing or stale (a stale list can name a version the
# mirror no longer has, or an older one than we need).
_APT_UPDATED=0
apt_install() {
    local log
    log="$(log_dir)/apt.log"
    if [ "$_APT_UPDATED" = 0 ]; then
        # Generous limits: a slow mirror is fine, a hung one is not.
        run_logged "$log" env DEBIAN_FRONTEND=noninteractive \
            timeout 900 apt-get -o DPkg::Lock::Timeout=300 update || return 1
        _APT_UPDATED=1
    fi
    run_logged "$log" env DEBIAN_FRONTEND=noninteractive \
        timeout 1800 apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "$@"
}

# dpkg_installed PKG: true when Debian package PKG is installed.
dpkg_installed() {
    have dpkg-query || return 1
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

# need_packages WHAT SPEC...: makes sure Debian packages are installed. SPEC is
# COMMAND:PACKAGE (COMMAND looked for on PATH, in /usr/sbin and /usr/bin) or
# :PACKAGE (dpkg says whether it is installed). Missing packages are installed
# with apt-get as root; elsewhere it prints the exact command and fails,
# naming WHAT needs them: a step never passes without running its tests.
need_packages() {
    local what="$1" spec cmd pkg missing=''
    shift
    for spec in "$@"; do
        cmd="${spec%%:*}" pkg="${spec#*:}"
        if [ -n "$cmd" ]; then
            if have "$cmd" || [ -x "/usr/sbin/$cmd" ] || [ -x "/usr/bin/$cmd" ]; then
                continue
            fi
        elif dpkg_installed "$pkg"; then
            continue
        fi
        case " $missing " in *" $pkg "*) ;; *) missing="$missing $pkg" ;; esac
    done
    [ -z "$missing" ] && return 0
    if is_root && have apt-get; then
        info "installing$missing with apt-get (for $what)"
        # shellcheck disable=SC2086 # word splitting intended
        apt_install $missing
    else
        error "$what needs$missing. Install with:"
        echo "  sudo apt-get update && sudo apt-get install -y$missing" >&2
        return 1
    fi
}
