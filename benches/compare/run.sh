#!/usr/bin/env bash
# Builds and runs the comparison suite, then writes BENCHMARKS.md (repo root)
# and benches/compare/charts/*.svg. About 10-15 minutes on 2 cores.
#   bash benches/compare/run.sh               # everything, 3 rounds
#   ROUNDS=5 ONLY=switch,spawn bash benches/compare/run.sh
#   SKIP_HTTP=1 bash benches/compare/run.sh
#   python3 benches/compare/run.py --report   # rewrite the report from results/raw.jsonl
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v wrk >/dev/null || {
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq wrk >/dev/null
}
CARGO_TARGET_DIR=target/compare cargo build --release --manifest-path benches/compare/Cargo.toml
cargo build --release --example http_server --example http_tokio
# Fresh page-cache pages for the binaries just built: a binary whose cached
# pages landed badly in this VM once switched 2.5x slower than a
# byte-identical copy (benches/compare/VARIATION.md). Needs root; skipped
# otherwise.
sync
if [ -w /proc/sys/vm/drop_caches ]; then echo 1 >/proc/sys/vm/drop_caches; fi
exec python3 benches/compare/run.py
