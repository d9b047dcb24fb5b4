#!/usr/bin/env bash
# End-to-end check of examples/http_server.rs with real clients:
#   bash scripts/http_check.sh
# Builds the example in release, starts it on a free port, waits for its
# "listening on" line, checks with curl and nc: /, /json, a 404, a
# malformed request (400 and close), Connection: close; runs a short wrk
# load if wrk is installed (non-zero requests, no socket errors, no non-2xx);
# then sends SIGTERM and checks a clean exit 0. Installs curl, wrk and
# netcat with apt if missing. Exits non-zero on any failure.
#
# Environment: MODE (single|mn|migrate|pinned, default mn), HUBS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=${MODE:-mn}
HUBS=${HUBS:-2}

fail() {
    echo "http_check: FAIL: $*" >&2
    exit 1
}

need=()
command -v curl >/dev/null || need+=(curl)
command -v wrk >/dev/null || need+=(wrk)
command -v nc >/dev/null || need+=(netcat-openbsd)
if ((${#need[@]})); then
    echo "http_check: installing ${need[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${need[@]}" >/dev/null ||
        echo "http_check: could not install ${need[*]}" >&2
fi
command -v curl >/dev/null || fail "curl is required"
command -v nc >/dev/null || fail "nc is required"

cargo build --release --example http_server
BIN=target/release/examples/http_server

LOG=$(mktemp)
trap 'kill "$PID" 2>/dev/null || true; rm -f "$LOG"' EXIT
"$BIN" --port 0 --mode "$MODE" --hubs "$HUBS" --header-timeout-ms 2000 >"$LOG" 2>&1 &
PID=$!

ADDR=""
for _ in $(seq 1 100); do
    ADDR=$(sed -n 's/^listening on //p' "$LOG")
    [ -n "$ADDR" ] && break
    kill -0 "$PID" 2>/dev/null || fail "the server exited early: $(cat "$LOG")"
    sleep 0.1
done
[ -n "$ADDR" ] || fail "no 'listening on' line within 10 s"
HOST=${ADDR%:*}
PORT=${ADDR##*:}
URL="http://$ADDR"
echo "http_check: server pid $PID on $ADDR (mode $MODE, $HUBS hubs)"

# check_curl PATH STATUS BODY [CONTENT_TYPE]
check_curl() {
    local path=$1 want_status=$2 want_body=$3 want_type=${4:-}
    local out status body ctype
    out=$(curl -sS --max-time 5 -o - -w '\n%{http_code} %{content_type}' "$URL$path") ||
        fail "curl $path failed"
    body=$(printf '%s' "$out" | sed '$d')
    status=$(printf '%s' "$out" | tail -n1 | cut -d' ' -f1)
    ctype=$(printf '%s' "$out" | tail -n1 | cut -d' ' -f2-)
    [ "$status" = "$want_status" ] || fail "$path: status $status, want $want_status"
    [ "$body" = "$want_body" ] || fail "$path: body '$body', want '$want_body'"
    if [ -n "$want_type" ]; then
        [ "$ctype" = "$want_type" ] || fail "$path: content type '$ctype', want '$want_type'"
    fi
    echo "http_check: ok: GET $path -> $status '$body'"
}

check_curl / 200 'Hello, World!' text/plain
check_curl /plaintext 200 'Hello, World!' text/plain
check_curl /json 200 '{"message":"Hello, World!"}' application/json
check_curl /missing 404 'Not Found' text/plain

# Keep-alive: two requests on one connection (curl reuses it).
n=$(curl -sS --max-time 5 -v "$URL/" "$URL/json" 2>&1 | grep -c 'Re-using existing connection\|Reusing existing' || true)
[ "$n" -ge 1 ] || fail "curl did not reuse the connection"
echo "http_check: ok: keep-alive connection reused"

# Exact bytes, and the close after a malformed request (nc returns when the
# server closes; -q/-w bound it otherwise).
raw() { printf "$1" | timeout 5 nc -w 3 "$HOST" "$PORT" || true; }

got=$(raw 'GET /json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' | od -An -c | tr -s ' \n' ' ')
want=$(printf 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 27\r\nConnection: close\r\n\r\n{"message":"Hello, World!"}' | od -An -c | tr -s ' \n' ' ')
[ "$got" = "$want" ] || fail "exact /json bytes: got [$got] want [$want]"
echo "http_check: ok: exact bytes of /json with Connection: close"

start=$(date +%s%N)
got=$(raw 'THIS IS NOT HTTP\r\n\r\n')
took_ms=$((($(date +%s%N) - start) / 1000000))
want=$(printf 'HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nConnection: close\r\n\r\nBad Request')
[ "$got" = "$want" ] || fail "malformed request: got [$got]"
[ "$took_ms" -lt 2500 ] || fail "malformed request: the server did not close (${took_ms} ms)"
echo "http_check: ok: malformed request -> 400 and close (${took_ms} ms)"

status=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' --request-target 'a b' "$URL/") ||
    fail "curl --request-target failed"
[ "$status" = 400 ] || fail "bad request target: status $status, want 400"
echo "http_check: ok: bad request target -> 400"

big=$(head -c 9000 /dev/zero | tr '\0' a)
status=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' -H "X-Big: $big" "$URL/") ||
    fail "curl with a big header failed"
[ "$status" = 431 ] || fail "9000-byte header: status $status, want 431"
echo "http_check: ok: 9000-byte header -> 431"

if command -v wrk >/dev/null; then
    out=$(wrk -t1 -c64 -d3s "$URL/") || fail "wrk failed"
    echo "$out"
    reqs=$(echo "$out" | awk '/requests in/ {print $1}')
    [ -n "$reqs" ] && [ "$reqs" -gt 0 ] || fail "wrk made no requests"
    if echo "$out" | grep -q 'Socket errors'; then
        fail "wrk saw socket errors: $(echo "$out" | grep 'Socket errors')"
    fi
    if echo "$out" | grep -q 'Non-2xx'; then
        fail "wrk saw non-2xx responses"
    fi
    echo "http_check: ok: wrk made $reqs requests, no socket errors"
else
    echo "http_check: wrk not installed: load step skipped"
fi

kill -TERM "$PID"
rc=0
wait "$PID" || rc=$?
trap 'rm -f "$LOG"' EXIT
echo "http_check: server output:"
sed 's/^/    /' "$LOG"
[ "$rc" -eq 0 ] || fail "the server exited with $rc after SIGTERM"
grep -q '^caught SIGTERM' "$LOG" || fail "no shutdown line after SIGTERM"
echo "http_check: ok: SIGTERM -> graceful exit 0"
echo "http_check: all checks passed"
