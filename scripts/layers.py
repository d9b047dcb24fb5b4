#!/usr/bin/env python3
"""Checks greenhub's layering: every `crate::X` reference from a top-level
module of src/ must point to the same layer or one below it (docs/ARCHITECTURE.md,
"Layers"). Prints the dependency graph's cycles; exits 1 on a reference that
goes up a layer. Comments are ignored (a doc link is not a dependency).

    python3 scripts/layers.py [src]
"""
import collections
import os
import re
import sys

# Bottom-up. A module may use its own layer and every layer below it.
LAYERS = [
    ("seam", ["loom", "error"]),
    ("base", ["stack", "time", "offload"]),
    ("core", ["greenlet", "hub"]),  # one inherent cycle: see ARCHITECTURE.md
    ("raw and io", ["raw", "io"]),
    ("sync", ["sync", "channel"]),
    ("services", ["blocking", "net", "process", "signal", "pool", "patch"]),
    ("inspect", ["inspect"]),
    ("runtime", ["runtime"]),
    ("on the runtime", ["server", "future", "fuzz"]),
]
RANK = {m: i for i, (_, ms) in enumerate(LAYERS) for m in ms}


def module_of(rel):
    top = rel.split(os.sep)[0]
    return top[:-3] if top.endswith(".rs") else top


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "src"
    deps = collections.defaultdict(lambda: collections.defaultdict(set))
    for dirpath, _, files in os.walk(root):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, root)
            src = module_of(rel)
            if src == "lib":
                continue  # the crate root re-exports from every layer
            text = re.sub(r"//[^\n]*", "", open(path).read())
            targets = set(re.findall(r"crate::(\w+)", text))
            for group in re.findall(r"use crate::\{([^}]*)\}", text):
                targets.update(re.findall(r"(?:^|,)\s*(\w+)", group))
            for t in targets:
                if t in RANK and t != src:
                    deps[src][t].add(rel)
    unknown = sorted(set(deps) - set(RANK))
    bad = []
    for src in sorted(deps):
        for dst in sorted(deps[src]):
            if src in RANK and RANK[dst] > RANK[src]:
                bad.append((src, dst, sorted(deps[src][dst])))
    # Cycles (Tarjan's strongly connected components).
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in deps[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            sccs.append(sorted(comp))

    for m in list(RANK):
        if m not in index:
            visit(m)
    for comp in sccs:
        if len(comp) > 1:
            print("cycle:", " <-> ".join(comp))
    for src, dst, files in bad:
        print(f"layering: {src} ({LAYERS[RANK[src]][0]}) uses {dst} ({LAYERS[RANK[dst]][0]}): {', '.join(files)}")
    for m in unknown:
        print(f"layering: module {m} is in no layer of scripts/layers.py")
    if bad or unknown:
        sys.exit(1)
    print("layering ok:", " < ".join("/".join(ms) for _, ms in LAYERS))


if __name__ == "__main__":
    main()
