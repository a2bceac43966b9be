#!/usr/bin/env python3
"""The declared minimum Rust version against what the lock file really needs.

This machine has one toolchain, so CI cannot build on the minimum version itself. It checks what
can be checked without one: no locked dependency declares a `rust-version` above the workspace's
(cargo would refuse to build it there), and the Dockerfile builds on the declared version.
Standard-library APIs newer than the declared version are caught by clippy's
`incompatible_msrv` lint, which reads the same `rust-version` (CI runs clippy with -D warnings).
"""

import json
import pathlib
import re
import subprocess
import sys


def version(text: str) -> tuple:
    parts = [int(x) for x in text.split(".")[:3]]
    return tuple(parts + [0] * (3 - len(parts)))


meta = json.loads(
    subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
)
ours = set(meta["workspace_members"])
declared = {p["rust_version"] for p in meta["packages"] if p["id"] in ours}
if len(declared) != 1 or None in declared:
    print(f"workspace members declare different rust-versions: {sorted(map(str, declared))}")
    sys.exit(1)
msrv = declared.pop()
needs = max(
    ((version(p["rust_version"]), p["name"], p["version"]) for p in meta["packages"]
     if p["id"] not in ours and p.get("rust_version")),
    default=((0, 0, 0), "", ""),
)
print(f"declared rust-version {msrv}; the locked dependencies need {'.'.join(map(str, needs[0]))} ({needs[1]} {needs[2]})")
failed = needs[0] > version(msrv)
if failed:
    print(f"  {needs[1]} {needs[2]} needs a newer Rust than the declared {msrv}")
docker = pathlib.Path("deploy/Dockerfile").read_text()
image = re.search(r"FROM rust:([0-9.]+)", docker)
if not image or version(image.group(1)) != version(msrv):
    print(f"  deploy/Dockerfile builds on rust:{image.group(1) if image else '?'}, not the declared {msrv}")
    failed = True
sys.exit(1 if failed else 0)
