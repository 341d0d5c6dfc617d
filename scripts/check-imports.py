#!/usr/bin/env python3
"""The import graph of src/: no circles between files, no import from a lower layer to a higher one.

Each file of src/ is a node (`src/a/b.rs` and `src/a/b/mod.rs` are `a::b`); an edge is a path
the file names through `crate::`, `super::` or `self::` (in `use` lines and in code), resolved
to the longest prefix that is a file. `crate::Error` / `crate::Result` are the error module
(the crate root re-exports them). Test modules (`#[cfg(test)]` to the end of a file) may use
anything and are left out. The binary's `cli/` names the library as `callqc::`: it is the top
layer and only its files' edges among themselves count.

LAYERS below lists the top-level rooms from the bottom up; a room may import only rooms of a
lower layer (and itself). A new room must be given a layer here: the check fails until it is.

Usage: scripts/check-imports.py [SRC]   (exit 1 and the offending edges on any violation)
"""

import os
import re
import sys
from collections import defaultdict

# Bottom first. Rooms on one line are one layer: they may not import each other.
LAYERS = [
    ["time", "sync", "text", "settings", "redact", "onnx", "provision"],
    ["audio"],
    ["vad"],
    ["asr", "tone"],
    ["speakers", "rubric"],
    ["store"],
    ["eval", "review"],
    ["error"],
    ["report"],
    ["pipeline"],
    ["train"],
    ["live"],
    ["cli", ""],  # the binary's commands and the crate roots (lib.rs, main.rs)
]
LAYER = {room: i for i, rooms in enumerate(LAYERS) for room in rooms}


def modules(root):
    """module path (tuple) -> file; lib.rs and main.rs are both the root ()."""
    found = {}
    for d, _, files in os.walk(root):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(d, f)
            rel = os.path.relpath(path, root)[:-3].split(os.sep)
            if rel[-1] == "mod":
                rel = rel[:-1]
            if rel in (["lib"], ["main"]):
                rel = []
            found.setdefault(tuple(rel), []).append(path)
    return found


def use_paths(prefix, body):
    """The paths of a use tree `prefix::body` (body may be `{a, b::{c, d}}`)."""
    body = body.strip()
    if not body.startswith("{"):
        return [prefix + body.split(" as ")[0].strip().split("::")]
    inner = body[1 : body.rfind("}")]
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    parts.append(cur)
    out = []
    for p in (p.strip() for p in parts):
        if not p:
            continue
        head, sep, rest = p.partition("::")
        if sep and rest.strip().startswith("{"):
            out += use_paths(prefix + [head], rest)
        else:
            out.append(prefix + p.split(" as ")[0].strip().split("::"))
    return out


def code_of(path):
    text = open(path, encoding="utf-8").read()
    cut = text.find("#[cfg(test)]")
    if cut >= 0:
        text = text[:cut]
    text = re.sub(r"//[^\n]*", "", text)
    # String literals may hold anything ("crate::" in a message).
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)


def edges_of(mods):
    def resolve(path):
        path = [p for p in path if p and p != "self"]
        if path[:1] in (["Error"], ["Result"]):
            return ("error",)
        for n in range(len(path), -1, -1):
            if tuple(path[:n]) in mods:
                return tuple(path[:n])
        return None

    edges = defaultdict(set)
    for m, files in mods.items():
        parent = list(m[:-1])
        for f in files:
            text = code_of(f)
            paths = []
            for u in re.finditer(r"\buse\s+(crate|super|self)::([^;]+);", text, re.S):
                base = {"crate": [], "super": parent, "self": list(m)}[u.group(1)]
                body = u.group(2)
                while body.startswith("super::"):
                    base, body = base[:-1], body[len("super::") :]
                paths += use_paths(base, body)
            for u in re.finditer(r"\bcrate::((?:[a-z_][a-z0-9_]*::)*[A-Za-z_][A-Za-z0-9_]*)", text):
                paths.append(u.group(1).split("::"))
            for u in re.finditer(
                r"\bsuper::((?:super::)*(?:[a-z_][a-z0-9_]*::)*[A-Za-z_][A-Za-z0-9_]*)", text
            ):
                base, body = parent, u.group(1)
                while body.startswith("super::"):
                    base, body = base[:-1], body[len("super::") :]
                paths.append(base + body.split("::"))
            for p in paths:
                t = resolve(p)
                if t is not None and t != m and t != ():
                    edges[m].add(t)
    return edges


def circles(nodes, edges):
    """Strongly connected components of more than one file (Tarjan, iterative)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = 0
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def name(m):
    return "::".join(m) or "crate"


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "src")
    mods = modules(root)
    edges = edges_of(mods)
    problems = []
    for comp in circles(sorted(mods), edges):
        members = set(comp)
        lines = [f"    {name(a)} -> {name(b)}" for a in comp for b in sorted(edges[a] & members)]
        problems.append("import circle: " + ", ".join(name(c) for c in comp) + "\n" + "\n".join(lines))
    for m in sorted(mods):
        room = m[0] if m else ""
        if room not in LAYER:
            problems.append(f"src/{room}: a room with no layer in scripts/check-imports.py LAYERS")
            continue
        for t in sorted(edges[m]):
            other = t[0]
            if other == room or other not in LAYER:
                continue
            if LAYER[other] >= LAYER[room]:
                problems.append(
                    f"upward import: {name(m)} -> {name(t)} ({room} is layer {LAYER[room]}, {other} is layer {LAYER[other]})"
                )
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    n_edges = sum(len(v) for v in edges.values())
    print(f"imports: {len(mods)} files, {n_edges} edges, no circles, no upward imports")


if __name__ == "__main__":
    main()
