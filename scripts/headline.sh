#!/usr/bin/env bash
# The headline comparison of monkey patching (examples/headline.rs):
# thread-per-connection vs the same unmodified std code on greenlets with
# `patch` enabled, N keep-alive connections in a closed loop, each request
# making a 50 ms downstream call (a std TcpStream round trip to a downstream
# server that answers after 50 ms). Prints req/s and p50/p99 for both sides.
#   bash scripts/headline.sh [CONNS] [SECS]     # defaults: 10000 5
# Environment: DOWNSTREAM=tcp|sleep (default tcp; sleep: std::thread::sleep
# instead of the call), DELAY_MS (default 50), PROFILE=release|dev (default
# release; dev reuses the test build's optimisation level). Clients,
# downstream server and service share the machine's CPUs: compare the two
# sides of one run, on one machine, and expect noise.
set -euo pipefail
cd "$(dirname "$0")/.."

CONNS=${1:-10000}
SECS=${2:-5}
DOWNSTREAM=${DOWNSTREAM:-tcp}
DELAY_MS=${DELAY_MS:-50}
PROFILE=${PROFILE:-release}

case "$PROFILE" in
release) cargo build --release --features patch --example headline; dir=release ;;
dev) cargo build --features patch --example headline; dir=debug ;;
*) echo "PROFILE must be release or dev, not $PROFILE" >&2; exit 2 ;;
esac

# The connections need file descriptors: 10,000 connections with a
# downstream call need about 20,000 in the service. Each process raises its
# limit to 65,536 where it may (CAP_SYS_RESOURCE), else its soft limit to
# the hard one; where that is about 20,000, a few connections of the 10,000
# fail (the service reports "Too many open files"; they are counted under
# failures).
echo "open-file limit: soft $(ulimit -Sn), hard $(ulimit -Hn)"
echo "+ headline --conns $CONNS --secs $SECS --downstream $DOWNSTREAM --delay-ms $DELAY_MS ($PROFILE)"
"${CARGO_TARGET_DIR:-target}/$dir/examples/headline" \
    --conns "$CONNS" --secs "$SECS" --downstream "$DOWNSTREAM" --delay-ms "$DELAY_MS"
