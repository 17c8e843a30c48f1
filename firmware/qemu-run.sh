#!/usr/bin/env bash
# Cargo runner for thumbv7em-none-eabihf (.cargo/config.toml): runs an ELF on the
# QEMU board mps2-an386 (Cortex-M4F) and decodes its defmt log on stdout.
#
#   ./qemu-run.sh ELF                 # what `cargo run` does
#   FIRMWARE_TIMEOUT=120 ./qemu-run.sh ELF
#
# The firmware writes defmt frames through semihosting, and ends with a
# semihosting exit: this script's exit status is QEMU's, i.e. the firmware's
# (0 = pass), or 124 on timeout, or defmt-print's if QEMU passed and it failed.
set -euo pipefail

elf=${1:?usage: qemu-run.sh ELF}
timeout_s=${FIRMWARE_TIMEOUT:-300}

for tool in qemu-system-arm defmt-print; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "qemu-run.sh: \`$tool\` not found. Install it with:" >&2
        case $tool in
        qemu-system-arm) echo "  sudo apt-get install -y qemu-system-arm" >&2 ;;
        defmt-print) echo "  cargo install defmt-print --locked" >&2 ;;
        esac
        exit 127
    fi
done

# Level and message only: no timestamps (the firmware defines none) and no
# source locations, so the decoded log is the same from build to build.
set +e
timeout "$timeout_s" qemu-system-arm -cpu cortex-m4 -machine mps2-an386 -nographic \
    -semihosting-config enable=on,target=native -kernel "$elf" </dev/null |
    defmt-print -e "$elf" --log-format '{L} {s}' stdin
status=("${PIPESTATUS[@]}")
set -e
if [ "${status[0]}" -ne 0 ]; then
    [ "${status[0]}" -eq 124 ] && echo "qemu-run.sh: QEMU timed out after ${timeout_s}s" >&2
    exit "${status[0]}"
fi
exit "${status[1]}"
