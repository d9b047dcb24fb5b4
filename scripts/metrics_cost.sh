#!/usr/bin/env bash
# What greenhub's always-on counters (src/hub/stats.rs) cost: runs the
# greenhub rows of the spawn+join and switch benchmarks with the counters
# (the normal build) and without them (`--cfg greenhub_no_metrics`, which
# turns every increment into nothing), alternating ROUNDS times, and prints
# the median time per row and the ratio with/without.
#
#   bash scripts/metrics_cost.sh            # ROUNDS=3 by default
#
# The no-metrics build uses its own target directory (target/nometrics).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

run() { # variant bench round
    local variant=$1 bench=$2 round=$3
    if [ "$variant" = off ]; then
        RUSTFLAGS="--cfg greenhub_no_metrics" CARGO_TARGET_DIR=target/nometrics \
            cargo bench -q --bench "$bench" -- greenhub/ 2>/dev/null
    else
        cargo bench -q --bench "$bench" -- greenhub/ 2>/dev/null
    fi > "$OUT/$variant-$bench-$round.txt"
}

for bench in spawn switch; do
    cargo bench -q --bench "$bench" --no-run 2>/dev/null
    RUSTFLAGS="--cfg greenhub_no_metrics" CARGO_TARGET_DIR=target/nometrics \
        cargo bench -q --bench "$bench" --no-run 2>/dev/null
    for round in $(seq "$ROUNDS"); do
        run on "$bench" "$round"
        run off "$bench" "$round"
    done
done

# criterion prints "name\n   time:   [low mid high]" (or both on one line).
python3 - "$OUT" "$ROUNDS" <<'PY'
import glob, os, re, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
unit = {"ps": 1e-3, "ns": 1.0, "µs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9}
def parse(path):
    rows, name = {}, None
    for line in open(path, encoding="utf-8"):
        m = re.match(r"^(\S+/\S+)", line)
        if m and "time:" not in line.split(m.group(1))[0]:
            name = m.group(1)
        t = re.search(r"time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", line)
        if t and name:
            rows[name] = float(t.group(1)) * unit[t.group(2)]
    return rows
data = {}
for path in glob.glob(os.path.join(out, "*.txt")):
    variant = os.path.basename(path).split("-")[0]
    for name, ns in parse(path).items():
        data.setdefault(name, {}).setdefault(variant, []).append(ns)
print(f"{'benchmark':<40}{'counters on':>14}{'off':>12}{'on/off':>9}   (medians of {rounds})")
for name in sorted(data):
    on, off = data[name].get("on", []), data[name].get("off", [])
    if not on or not off:
        continue
    a, b = statistics.median(on), statistics.median(off)
    print(f"{name:<40}{a:>11.1f} ns{b:>9.1f} ns{a / b:>9.3f}")
PY
