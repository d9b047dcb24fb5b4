#!/usr/bin/env bash
# Scaling of examples/http_server with the number of hubs, against its tokio
# twin examples/http_tokio with as many worker threads: for N in 1 2 4 8,
# greenhub M:N and pinned (one SO_REUSEPORT acceptor per hub) and tokio
# (current_thread for N=1, multi_thread otherwise), each loaded by
#   wrk -t4 -c256 -d5s --latency http://ADDR/
# on the same machine. Meant for a many-core machine (on 2 cores wrk and the
# server fight for the CPUs); prints one line per server.
#
#   cargo build --release --example http_server --example http_tokio
#   bash scripts/http_scale.sh
#
# Environment: BIN_DIR (default target/release/examples), WRK (default wrk).
set -u
cd "$(dirname "$0")/.."
BIN_DIR=${BIN_DIR:-target/release/examples}
WRK=${WRK:-wrk}
nproc
run() { # name cmd...
    local name=$1
    shift
    local log pid addr w
    log=$(mktemp)
    "$@" --port 0 >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
        grep -q "listening on" "$log" && break
        sleep 0.05
    done
    addr=$(grep -o "listening on [0-9.:]*" "$log" | awk '{print $3}')
    w=$("$WRK" -t4 -c256 -d5s --latency "http://$addr/" 2>&1)
    echo "$name req/s=$(echo "$w" | awk '/Requests\/sec/ {print $2}')" \
        "p50=$(echo "$w" | awk '$1=="50%" {print $2}')" \
        "p99=$(echo "$w" | awk '$1=="99%" {print $2}')" \
        "socket_errors=$(echo "$w" | grep -c "Socket errors" || true)"
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    rm -f "$log"
}
for n in 1 2 4 8; do
    run "greenhub-mn-$n" "$BIN_DIR/http_server" --mode mn --hubs "$n"
    run "greenhub-pinned-$n" "$BIN_DIR/http_server" --mode pinned --hubs "$n"
    if [ "$n" -eq 1 ]; then
        run "tokio-current" "$BIN_DIR/http_tokio"
    else
        run "tokio-multi-$n" "$BIN_DIR/http_tokio" --threads "$n"
    fi
done
run "greenhub-single" "$BIN_DIR/http_server" --mode single
