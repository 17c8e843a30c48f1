# shellcheck shell=bash
# Source this before building the firmware by hand where the prebuilt target
# (`rustup target add thumbv7em-none-eabihf`) is not available:
#
#   . ./env.sh && cargo run --release        # in firmware/
#
# It picks how `core` gets built for thumbv7em-none-eabihf, in the order
# scripts/test-all.sh uses (it only detects; it installs nothing):
#   1. the prebuilt target is installed: nothing to set;
#   2. the toolchain has its own library source (`rustup component add
#      rust-src`): RUSTC_BOOTSTRAP=1, so cargo reads [unstable] build-std;
#   3. Debian's rust-web-src with Debian's compiler of the same version
#      (rustc-web, /usr/bin/rustc): that compiler, RUSTC_BOOTSTRAP=1, and the
#      default toolchain's rust-lld on PATH (Debian's rustc ships no linker).
# `bash scripts/test-all.sh firmware` installs what is missing (as root, with apt).

_fw_sysroot="$(rustc --print sysroot)"
_fw_host="$(rustc -vV | sed -n 's/^host: //p')"
if ls "$_fw_sysroot/lib/rustlib/thumbv7em-none-eabihf/lib/"libcore-*.rlib >/dev/null 2>&1; then
    echo "env.sh: prebuilt thumbv7em-none-eabihf found; nothing to set" >&2
elif [ -f "$_fw_sysroot/lib/rustlib/src/rust/library/core/Cargo.toml" ]; then
    export RUSTC_BOOTSTRAP=1
    echo "env.sh: building core from $_fw_sysroot/lib/rustlib/src/rust (RUSTC_BOOTSTRAP=1)" >&2
elif [ -x /usr/bin/rustc ] && [ -f /usr/lib/rustlib/src/rust/library/core/Cargo.toml ]; then
    export RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1
    export PATH="$_fw_sysroot/lib/rustlib/$_fw_host/bin:$PATH"
    echo "env.sh: building core with Debian's $(/usr/bin/rustc -V | cut -d' ' -f1-2) and its library source" >&2
else
    echo "env.sh: no way to build core for thumbv7em-none-eabihf here; run" \
        "\`bash scripts/test-all.sh firmware\` (installs Debian's rust-web-src and rustc-web as root)" \
        "or \`rustup target add thumbv7em-none-eabihf\`" >&2
fi
unset _fw_sysroot _fw_host
