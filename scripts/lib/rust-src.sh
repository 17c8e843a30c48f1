# shellcheck shell=bash
# Getting a `core` for bare-metal targets (thumbv*, riscv32*), in this order:
#   a. the target's prebuilt standard library is installed (`rustup target
#      add`): build normally;
#   b. the toolchain has the library source of its own version (`rustup
#      component add rust-src`, or a link to a matching source): build `core`
#      from it with `-Z build-std=core`;
#   c. as root on Debian: install `rust-web-src` (Debian's library source).
#      If its version is the toolchain's, link the toolchain's source path to
#      it and do (b). If not, `core` cannot be built from it by this rustc
#      (a 1.96 source uses lang items and intrinsics that rustc 1.95 does not
#      know), so also install `rustc-web`, Debian's compiler of the same
#      version, and build with that one (RUSTC=...);
#   d. otherwise print the commands for the user and fail.
# Never calls rustup to download anything: its server is not reachable on the
# CI machines, and the download hangs instead of failing.
# Requires lib/common.sh.
#
# After `ensure_build_std`, BUILD_STD_RUSTC is the compiler to build with
# (empty: cargo's usual one). Every `-Z build-std` build must use it.

BUILD_STD_RUSTC=''

# The sysroot of the compiler cargo uses by default.
rust_sysroot() { "${RUSTC:-rustc}" --print sysroot; }

# rustc_minor: "1.95" for rustc 1.95.0 (also for 1.95.0-nightly).
rustc_minor() {
    "${RUSTC:-rustc}" -V | awk '{ split($2, v, /[.-]/); print v[1] "." v[2] }'
}

# target_std_installed TARGET: true when the prebuilt std (libcore) is there.
target_std_installed() {
    local f
    for f in "$(rust_sysroot)/lib/rustlib/$1/lib"/libcore-*.rlib; do
        [ -e "$f" ] && return 0
    done
    return 1
}

# rust_src_present [SYSROOT]: true when `-Z build-std` finds a library source.
rust_src_present() {
    [ -f "${1:-$(rust_sysroot)}/lib/rustlib/src/rust/library/core/Cargo.toml" ]
}

# src_minor DIR: "1.96" when DIR resolves to a `rustc-1.96.0` folder (how
# Debian and the upstream tarballs name it); empty when unknown.
src_minor() {
    local real
    real="$(cd "$1" 2>/dev/null && pwd -P)" || return 0
    case ${real##*/} in
    rustc-[0-9]*.[0-9]*) printf '%s\n' "${real##*/}" | sed -E 's/^rustc-([0-9]+)\.([0-9]+).*/\1.\2/' ;;
    esac
}

# deb_version PKG: installed version of a Debian package ("" if none), and
# deb_minor PKG: its "X.Y".
deb_version() {
    if dpkg_installed "$1"; then dpkg-query -W -f='${Version}' "$1"; fi
}
deb_minor() { deb_version "$1" | sed -E 's/^([0-9]+)\.([0-9]+).*/\1.\2/'; }

# dpkg_file PKG REGEX: the first file of installed package PKG matching REGEX.
# awk reads all of dpkg's output, so no SIGPIPE trips `pipefail`.
dpkg_file() {
    dpkg -L "$1" 2>/dev/null | awk -v re="$2" '$0 ~ re && !found { print; found = 1 }'
}

# print_target_setup_help TARGET...: what the user should run when we cannot
# set things up ourselves.
print_target_setup_help() {
    local sr sudo=''
    sr="$(rust_sysroot)"
    is_root || sudo='sudo '
    {
        echo
        error "no standard library for $*, and no Rust library source that"
        echo "       $("${RUSTC:-rustc}" -V) can build \`core\` from; this script could not set one up"
        echo "       here (that needs root and apt-get)."
        echo "Run ONE of the following, then re-run \`bash scripts/test-all.sh\`:"
        if have rustup; then
            echo
            echo "  # prebuilt targets (needs access to static.rust-lang.org):"
            echo "  rustup target add $*"
            echo "  # or the library source, to build core with -Z build-std=core:"
            echo "  rustup component add rust-src"
        fi
        if have apt-get; then
            echo
            echo "  # or, on Debian 12, the library source and the compiler of the same version"
            echo "  # (the script links the source into $sr if the versions match, else uses Debian's rustc):"
            echo "  ${sudo}apt-get update && ${sudo}apt-get install -y rust-web-src rustc-web"
        fi
        if ! have rustup && ! have apt-get; then
            echo
            echo "  # install a Rust toolchain with the standard library for these targets, or with"
            echo "  # its library source in \$(rustc --print sysroot)/lib/rustlib/src/rust"
        fi
        echo
    } >&2
}

# link_debian_rust_src: point $SYSROOT/lib/rustlib/src/rust at the installed
# rust-web-src (../shared/EMBEDDED.md step 2). Idempotent.
link_debian_rust_src() {
    local sr src dest
    sr="$(rust_sysroot)"
    src="$(dpkg_file rust-web-src '/rustc-[0-9.]+$')"
    dest="$sr/lib/rustlib/src/rust"
    if [ -z "$src" ] || [ ! -f "$src/library/core/Cargo.toml" ]; then
        error "no library source found in rust-web-src (looked for .../rustc-X.Y.Z/library/core/Cargo.toml)"
        return 1
    fi
    if [ -e "$dest" ] && [ ! -L "$dest" ]; then
        error "$dest exists and is not a symlink: not touching it."
        return 1
    fi
    run mkdir -p "$sr/lib/rustlib/src"
    run ln -sfn "$src" "$dest"
}

# drop_mismatched_link: remove $SYSROOT/lib/rustlib/src/rust when it is a
# symlink to a library source of another version (as EMBEDDED.md's step 2
# makes when Debian's version is not the toolchain's): it can never build
# `core` and only makes hand-run `-Z build-std` builds fail obscurely.
drop_mismatched_link() {
    local dest
    dest="$(rust_sysroot)/lib/rustlib/src/rust"
    [ -L "$dest" ] || return 0
    if [ -w "$(dirname "$dest")" ]; then
        run rm -f "$dest"
    else
        warn "$dest links to a library source of another version; remove it by hand."
    fi
}

# ensure_build_std TARGET...: make `-Z build-std=core` work for TARGET... (whose
# prebuilt std is missing) and set BUILD_STD_RUSTC. Installs with apt as root.
ensure_build_std() {
    local sr want have_v
    sr="$(rust_sysroot)"
    want="$(rustc_minor)"
    BUILD_STD_RUSTC=''

    # (b) the toolchain's own library source, or a link to a matching one.
    if rust_src_present "$sr"; then
        have_v="$(src_minor "$sr/lib/rustlib/src/rust")"
        if [ -z "$have_v" ] || [ "$have_v" = "$want" ]; then
            info "library source: $sr/lib/rustlib/src/rust${have_v:+ (Rust $have_v)}"
            return 0
        fi
        info "ignoring $sr/lib/rustlib/src/rust: it is the Rust $have_v library source, rustc is $want"
        drop_mismatched_link
    fi

    # (c) Debian's library source: installed already, or install it now.
    if ! dpkg_installed rust-web-src; then
        if is_root && have apt-get; then
            info "installing Debian's rust-web-src (the Rust library source) with apt-get"
            apt_install rust-web-src || {
                print_target_setup_help "$@"
                return 1
            }
        else
            print_target_setup_help "$@"
            return 1
        fi
    fi
    have_v="$(deb_minor rust-web-src)"
    if [ "$have_v" = "$want" ]; then
        # Same version as the toolchain: EMBEDDED.md's recipe, then (b).
        if ! is_root && [ ! -w "$sr" ]; then
            print_target_setup_help "$@"
            return 1
        fi
        link_debian_rust_src || {
            print_target_setup_help "$@"
            return 1
        }
        if rust_src_present "$sr"; then
            info "library source: $(dpkg_file rust-web-src '/rustc-[0-9.]+$') (Debian rust-web-src $(deb_version rust-web-src))"
            return 0
        fi
        error "linked the library source, but $sr/lib/rustlib/src/rust/library/core/Cargo.toml is still missing"
        print_target_setup_help "$@"
        return 1
    fi

    # Another version: build with Debian's compiler of that same version.
    info "Debian's library source is Rust $have_v but rustc is $want: building with Debian's rustc-web $have_v"
    if [ "$(deb_version rustc-web)" != "$(deb_version rust-web-src)" ]; then
        if is_root && have apt-get; then
            # Both together, so apt keeps them at the same version.
            apt_install rust-web-src rustc-web || {
                print_target_setup_help "$@"
                return 1
            }
        else
            print_target_setup_help "$@"
            return 1
        fi
    fi
    if [ "$(deb_version rustc-web)" != "$(deb_version rust-web-src)" ]; then
        error "rustc-web $(deb_version rustc-web) and rust-web-src $(deb_version rust-web-src) differ"
        print_target_setup_help "$@"
        return 1
    fi
    BUILD_STD_RUSTC="$(dpkg_file rustc-web '/bin/rustc$')"
    if [ -z "$BUILD_STD_RUSTC" ] || ! rust_src_present "$("$BUILD_STD_RUSTC" --print sysroot)"; then
        error "Debian's rustc (${BUILD_STD_RUSTC:-not found}) does not find its library source"
        print_target_setup_help "$@"
        return 1
    fi
    info "compiler: $BUILD_STD_RUSTC ($("$BUILD_STD_RUSTC" -V)); library source: $("$BUILD_STD_RUSTC" --print sysroot)/lib/rustlib/src/rust"
}
