#!/usr/bin/env python3
"""MSRV check: fails if a locked dependency of chring needs a newer Rust than
the workspace declares.

Reads `cargo metadata --all-features` (the workspace lockfile, every feature of
chring, so `defmt` counts too), walks chring's normal and build dependencies
(not dev-dependencies: those only build chring's own tests), and compares each
package's `rust-version` with `[workspace.package] rust-version` (which chring
inherits). Packages that declare none are reported, not failed: Cargo cannot
tell what they need. This checks the *declared* requirements only; we cannot
install a 1.85 toolchain here to build with it (see README "Features and MSRV").

    python3 scripts/msrv-check.py [--lockfile-dir DIR]   # default: the workspace
    MSRV_CHECK_AS=1.84 python3 scripts/msrv-check.py    # must fail (rand_core needs 1.85)
"""

import json
import os
import subprocess
import sys


def version(v):
    return tuple(int(x) for x in v.split("."))


def main():
    cwd = sys.argv[2] if len(sys.argv) > 2 and sys.argv[1] == "--lockfile-dir" else None
    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--all-features", "--locked"],
            check=True,
            stdout=subprocess.PIPE,
            cwd=cwd,
        ).stdout
    )
    packages = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    root = next(p for p in meta["packages"] if p["name"] == "chring")
    # MSRV_CHECK_AS=1.84 checks against another version (to see the check fail).
    declared = os.environ.get("MSRV_CHECK_AS") or root["rust_version"]
    if not declared:
        print("msrv: chring declares no rust-version", file=sys.stderr)
        return 1
    seen, stack = set(), [root["id"]]
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        for dep in nodes[pid]["deps"]:
            if any(k["kind"] in (None, "build") for k in dep["dep_kinds"]):
                stack.append(dep["pkg"])
    seen.discard(root["id"])
    too_new, unknown, highest = [], [], ("0", "(none)")
    for pid in sorted(seen, key=lambda i: packages[i]["name"]):
        p = packages[pid]
        need = p["rust_version"]
        name = f'{p["name"]} {p["version"]}'
        if not need:
            unknown.append(name)
            continue
        if version(need) > version(highest[0]):
            highest = (need, name)
        if version(need) > version(declared):
            too_new.append(f"{name} needs Rust {need}")
    print(f"msrv: chring declares Rust {declared}; {len(seen)} dependencies (all features)")
    print(f"msrv: highest declared by a dependency: {highest[0]} ({highest[1]})")
    if unknown:
        print(f"msrv: no rust-version declared (not checked): {', '.join(unknown)}")
    if too_new:
        print("msrv: FAILED, newer than the declared MSRV:", file=sys.stderr)
        for t in too_new:
            print(f"  {t}", file=sys.stderr)
        print("Raise [workspace.package] rust-version in Cargo.toml (and the README's"
              " and core/src/lib.rs's MSRV lines), or pin the dependency lower.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
