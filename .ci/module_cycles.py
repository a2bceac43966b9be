#!/usr/bin/env python3
"""Module cycles in flo2's crates, and handler imports in the gateway.

Every source file is one node; a file depends on another when it names a path into it
(`crate::a::b`, `super::x`, `self::y` in a `mod.rs`), in `use` items or inline. Unit tests
(`#[cfg(test)] mod tests { .. }`) are left out: their `super::*` names the file itself.
Declaring a child module (`mod x;`) is not a dependency. The check fails when any crate's
files form a cycle, or when anything but the gateway's router names a handler module.

Usage: python3 .ci/module_cycles.py  (from the repository root; prints what it checked)
"""

import pathlib
import re
import sys

ROOTS = sorted(
    [p / "src" for p in pathlib.Path("crates").iterdir() if (p / "src").is_dir()]
    + [pathlib.Path("src")]
)
HANDLERS = {"http::chat", "http::embeddings", "http::models", "http::metrics"}
ROUTER = "http::router"

PATH = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
USE_GROUP = re.compile(r"\buse\s+(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^;]*)\};", re.S)
TESTS = re.compile(r"#\[cfg\(test\)\]\s*(?:pub(?:\(crate\))?\s+)?mod\s+\w+\s*\{", re.S)


def strip_tests(text: str) -> str:
    """The text without inline test modules (brace-matched)."""
    out, pos = [], 0
    for m in TESTS.finditer(text):
        if m.start() < pos:
            continue
        out.append(text[pos : m.start()])
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        pos = i
    out.append(text[pos:])
    return "".join(out)


def strip_comments(text: str) -> str:
    return re.sub(r"//[^\n]*", "", text)


def module_of(root: pathlib.Path, file: pathlib.Path) -> tuple:
    parts = list(file.relative_to(root).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def group_paths(prefix: str, body: str):
    """`a::{b, c::{d, e}}` flattened to the paths it names (one level of nesting is enough)."""
    items, depth, cur = [], 0, ""
    for ch in body:
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
            continue
        depth += {"{": 1, "}": -1}.get(ch, 0)
        cur += ch
    items.append(cur)
    for item in items:
        item = item.strip()
        if not item:
            continue
        if "{" in item:
            head, inner = item.split("{", 1)
            yield from group_paths(prefix + "::" + head.strip().rstrip(":"), inner.rsplit("}", 1)[0])
        else:
            name = item.split(" as ")[0].strip()
            yield prefix if name == "self" else prefix + "::" + name


def check_crate(root: pathlib.Path):
    files = {module_of(root, f): f for f in root.rglob("*.rs")}
    is_dir_module = {m: f.stem in ("mod", "lib", "main") for m, f in files.items()}

    def resolve(base: tuple, anchor: str, rest: str):
        segs = [s for s in rest.split("::") if s]
        if anchor == "crate":
            path = []
        elif anchor == "self":
            path = list(base) if is_dir_module.get(base) else list(base[:-1])
        else:  # super
            parent = list(base) if is_dir_module.get(base) else list(base[:-1])
            path = parent[:-1]
            while segs and segs[0] == "super":
                segs.pop(0)
                path = path[:-1]
        best = None
        for i in range(len(segs) + 1):
            cand = tuple(path + segs[:i])
            if cand in files:
                best = cand
        return best

    edges = {m: set() for m in files}
    for mod, f in files.items():
        text = strip_comments(strip_tests(f.read_text()))
        named = []
        for g in USE_GROUP.finditer(text):
            named += [(g.group(1), p.split("::", 1)[1] if "::" in p else "") for p in group_paths(g.group(1) + g.group(2), g.group(3))]
        named += [(m.group(1), m.group(2)) for m in PATH.finditer(text)]
        for anchor, rest in named:
            target = resolve(mod, anchor, rest)
            # A file naming its own descendants (a mod.rs re-exporting a child) or itself is
            # not a dependency between siblings.
            if target is None or target == mod or target[: len(mod)] == mod and is_dir_module.get(mod):
                continue
            edges[mod].add(target)
    return files, edges


def cycles(edges):
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                out.append(scc)

    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index:
            visit(v)
    return out


def main() -> int:
    failed = False
    for root in ROOTS:
        files, edges = check_crate(root)
        name = root.parent.name or "flo2 (root package)"
        found = cycles(edges)
        n_edges = sum(len(e) for e in edges.values())
        print(f"{name}: {len(files)} modules, {n_edges} dependencies, {len(found)} cycles")
        for scc in found:
            failed = True
            print("  cycle: " + " <-> ".join("::".join(m) or "lib" for m in sorted(scc)))
        if name == "flo2-gateway":
            for mod, deps in edges.items():
                for d in deps:
                    if "::".join(d) in HANDLERS and "::".join(mod) != ROUTER:
                        failed = True
                        print(f"  {'::'.join(mod)} imports the handler module {'::'.join(d)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
