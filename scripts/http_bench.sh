#!/usr/bin/env bash
# HTTP keep-alive benchmark: greenhub's examples/http_server.rs against its
# tokio twin examples/http_tokio.rs (the same httparse-based protocol code,
# examples/http_common/mod.rs), GET / ("Hello, World!"), with wrk.
#   bash scripts/http_bench.sh
# For each server configuration: RUNS runs (in rounds: one run per server
# per round) of
#   wrk -t1 -c64 -d${DURATION}s --latency http://127.0.0.1:PORT/
# then a table of the median req/s and the median p99 latency, the spread
# (min..max req/s), and the load average seen. wrk runs on the same machine and competes with
# the server for the CPUs: compare the servers with each other, not with
# figures from other machines.
#
# Environment: RUNS (default 3), DURATION seconds (default 10),
# CONNS (default 64), SERVERS (a space-separated subset of the names below),
# SCHED=1: also print (to stderr), for each run, where the server's threads
# and wrk's spent it: per thread, CPU time, time runnable but waiting for a
# CPU (the run-queue delay) and times put on a CPU, from
# /proc/<pid>/task/<tid>/schedstat (was a hub descheduled while its
# connections waited? BENCHMARKS.md, http):
#   SCHED=1 RUNS=1 SERVERS="greenhub-mn2 tokio-multi2" bash scripts/http_bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
SCHED=${SCHED:-0}

command -v wrk >/dev/null || {
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq wrk >/dev/null
}

cargo build --release --example http_server --example http_tokio
GH=target/release/examples/http_server
TK=target/release/examples/http_tokio

declare -A CMD=(
    [greenhub-single]="$GH --port 0 --mode single"
    [greenhub-mn2]="$GH --port 0 --mode mn --hubs 2"
    [greenhub-pinned2]="$GH --port 0 --mode pinned --hubs 2"
    [greenhub-migrate2]="$GH --port 0 --mode migrate --hubs 2"
    [tokio-current]="$TK --port 0"
    [tokio-multi2]="$TK --port 0 --threads 2"
)
ORDER=(greenhub-single greenhub-mn2 greenhub-migrate2 tokio-current tokio-multi2)
SERVERS=${SERVERS:-${ORDER[*]}}

# wrk's latency (e.g. 1.23ms, 850.00us, 1.02s) in microseconds.
to_us() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) print n
        else if (v ~ /ms$/) print n * 1000
        else if (v ~ /s$/) print n * 1000000
        else print n
    }'
}

median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

# SCHED=1: "tid name cpu_ns wait_ns slices" for every thread of process $1.
snap() {
    for t in /proc/"$1"/task/*; do
        [ -r "$t/schedstat" ] && echo "$(basename "$t") $(tr ' ' '_' <"$t/comm") $(cat "$t/schedstat")"
    done
    return 0
}

# SCHED=1: server $1's threads between snapshots $2 and $3; wrk's from $4.
sched_report() {
    echo "== $1"
    join <(echo "$2" | sort) <(echo "$3" | sort) | awk '
        { cpu = ($7 - $3) / 1e9; wait = ($8 - $4) / 1e9; n = $9 - $5
          if (cpu > 0.01) printf "  %-18s cpu %5.2f s  runnable-but-waiting %5.2f s  on a CPU %7d times\n", $2, cpu, wait, n }'
    echo "$4" | awk -v d=$((DURATION - 1)) '$3 > 1e7 {
        printf "  %-18s cpu %5.2f s  runnable-but-waiting %5.2f s  on a CPU %7d times (its first %d s)\n", "wrk", $3 / 1e9, $4 / 1e9, $5, d }'
}

# One wrk run against server $1; prints "RPS P99_US".
bench_once() {
    local name=$1 log pid addr out rps p99
    log=$(mktemp)
    # shellcheck disable=SC2086
    ${CMD[$name]} >"$log" 2>&1 &
    pid=$!
    addr=""
    for _ in $(seq 1 100); do
        addr=$(sed -n 's/^listening on //p' "$log")
        [ -n "$addr" ] && break
        sleep 0.1
    done
    if [ -z "$addr" ]; then
        echo "$name: no listening line: $(cat "$log")" >&2
        kill "$pid"
        exit 1
    fi
    if [ "$SCHED" = 1 ]; then
        local before wfile wpid wsnap
        before=$(snap "$pid")
        wfile=$(mktemp)
        wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "http://$addr/" >"$wfile" &
        wpid=$!
        sleep $((DURATION - 1))
        wsnap=$(snap "$wpid")
        wait "$wpid"
        out=$(cat "$wfile")
        rm -f "$wfile"
        sched_report "$name" "$before" "$(snap "$pid")" "$wsnap" >&2
    else
        out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "http://$addr/")
    fi
    kill -TERM "$pid"
    wait "$pid" || true
    rm -f "$log"
    if echo "$out" | grep -q 'Socket errors\|Non-2xx'; then
        echo "$name: wrk reported errors:" >&2
        echo "$out" >&2
    fi
    rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    echo "$rps $(to_us "$p99")"
}

# Rounds of one run per server, so that background load drifting over time
# hits every server alike.
declare -A RPS_RUNS P99_RUNS
LOADS=()
for run in $(seq 1 "$RUNS"); do
    for name in $SERVERS; do
        read -r rps p99 < <(bench_once "$name")
        load=$(cut -d' ' -f1 /proc/loadavg)
        LOADS+=("$load")
        echo "round $run: $name: $rps req/s, p99 ${p99} us (load average $load)"
        RPS_RUNS[$name]+="$rps "
        P99_RUNS[$name]+="$p99 "
    done
done

declare -A RPS P99 SPREAD
for name in $SERVERS; do
    RPS[$name]=$(printf '%s\n' ${RPS_RUNS[$name]} | median)
    P99[$name]=$(printf '%s\n' ${P99_RUNS[$name]} | median)
    SPREAD[$name]=$(printf '%s\n' ${RPS_RUNS[$name]} | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%.0f..%.0f", lo, hi}')
done

echo
echo "wrk -t1 -c$CONNS -d${DURATION}s --latency, GET /, $RUNS runs each (interleaved), $(nproc) CPUs shared with wrk"
echo "1-minute load average during the runs: $(printf '%s\n' "${LOADS[@]}" | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {print lo ".." hi}')"
printf '| %-16s | %12s | %16s | %10s |\n' server "median req/s" "req/s min..max" "median p99"
printf '|%s|%s|%s|%s|\n' ------------------ -------------- ------------------ ------------
for name in $SERVERS; do
    printf '| %-16s | %12.0f | %16s | %7.0f us |\n' "$name" "${RPS[$name]}" "${SPREAD[$name]}" "${P99[$name]}"
done
