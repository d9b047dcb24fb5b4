#!/usr/bin/env python3
"""Runs the comparison suite and writes BENCHMARKS.md and the charts.

Owns: the job list (which program, which workload, threads, n), the
interleaved rounds, the HTTP runs with wrk, the medians, the target checks,
BENCHMARKS.md and benches/compare/charts/*.svg. Called by run.sh after the
build; every benchmark runs in its own process with a timeout, and a process
that dies without a result line is recorded as a failure.

Environment: ROUNDS (default 3), HTTP_SECS (default 10), ONLY (comma list of
workloads), SKIP_HTTP=1.
"""
import os, re, subprocess, statistics, time, datetime, platform, json, sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HERE = os.path.join(ROOT, "benches", "compare")
BIN = os.path.join(ROOT, "target", "compare", "release")
EX = os.path.join(ROOT, "target", "release", "examples")
ROUNDS = int(os.environ.get("ROUNDS", "3"))
HTTP_SECS = int(os.environ.get("HTTP_SECS", "10"))
ONLY = [w for w in os.environ.get("ONLY", "").split(",") if w]
TIMEOUT = 120

M, K = 1_000_000, 1_000
# (label, program, mode args, threads)
GH = lambda t: [("greenhub-mn", "greenhub", ["--mode", "mn"], t),
                ("greenhub-pinned", "greenhub", ["--mode", "pinned"], t)] + (
               [("greenhub-single", "greenhub", ["--mode", "single"], 1)] if t == 1 else [])
TK = lambda t: ([("tokio-current", "tokio", ["--mode", "current"], 1)] if t == 1 else []) + [
               ("tokio-multi", "tokio", ["--mode", "multi"], t)]
MAY = lambda t: [("may", "may", [], t)]
STD = lambda t: [("std", "std", [], t)]

def jobs():
    """(workload, label, program, args, threads, n)"""
    out = []
    def add(w, cfgs, n):
        for label, prog, extra, t in cfgs:
            out.append((w, label, prog, extra, t, n))
    # switch: two tasks on one thread. std is scaled to 1M switches (1.8 us each).
    add("switch", GH(1) + [("tokio-current", "tokio", ["--mode", "current"], 1)] + MAY(1), 10 * M)
    add("switch", STD(1), 1 * M)
    for t in (1, 2):
        add("spawn", GH(t) + TK(t) + MAY(t) + STD(t), 1 * M)
        add("spawn", MAY(t) + STD(t), 10 * K)  # the 1M runs fail: a scaled figure
        add("pingpong", GH(t) + TK(t) + MAY(t), 1 * M)
        add("pingpong", STD(t), 100 * K)
        add("skynet", GH(t) + TK(t) + MAY(t) + STD(t), 1 * M)
        add("skynet", MAY(t) + STD(t), 10 * K)
    for n in (100 * K, 1 * M):
        add("idle", GH(1) + TK(1) + MAY(1) + STD(1), n)
    add("idle", MAY(1) + STD(1), 10 * K)
    add("mixed", GH(2) + [("greenhub-migrate", "greenhub", ["--mode", "migrate"], 2),
                          ("greenhub-single", "greenhub", ["--mode", "single"], 1)]
        + TK(2) + [("tokio-current", "tokio", ["--mode", "current"], 1)] + MAY(2) + STD(2), 400)
    return [j for j in out if not ONLY or j[0] in ONLY]

LINE = re.compile(r'(\w+)=("[^"]*"|\S+)')

def run_job(j):
    w, label, prog, extra, t, n = j
    cmd = [os.path.join(BIN, prog), w, "--threads", str(t), "--n", str(n)] + extra
    env = dict(os.environ, RUST_BACKTRACE="0")
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, env=env)
        res = [l for l in p.stdout.splitlines() if l.startswith("result ")]
        if res:
            d = dict((k, v.strip('"')) for k, v in LINE.findall(res[-1]))
        else:
            err = [l for l in p.stderr.splitlines() if l.strip() and not l.startswith(" ")]
            msg = (err[-1] if err else "") + f" (exit {p.returncode})"
            d = {"ok": "0", "error": msg.strip()}
    except subprocess.TimeoutExpired:
        d = {"ok": "0", "error": f"timed out after {TIMEOUT} s"}
    d.update(workload=w, runtime=label, threads=str(t), n=str(n), cmd=" ".join(cmd[0:1]).replace(ROOT + "/", "") + " " + " ".join(cmd[1:]))
    return d

# ---------- HTTP ----------
HTTP = [("greenhub-mn", 2, [f"{EX}/http_server", "--port", "0", "--mode", "mn", "--hubs", "2"]),
        ("greenhub-migrate", 2, [f"{EX}/http_server", "--port", "0", "--mode", "migrate", "--hubs", "2"]),
        ("greenhub-pinned", 2, [f"{EX}/http_server", "--port", "0", "--mode", "pinned", "--hubs", "2"]),
        ("greenhub-single", 1, [f"{EX}/http_server", "--port", "0", "--mode", "single"]),
        ("tokio-multi", 2, [f"{EX}/http_tokio", "--port", "0", "--threads", "2"]),
        ("tokio-current", 1, [f"{EX}/http_tokio", "--port", "0"]),
        ("may", 2, [f"{BIN}/http_may", "--port", "0", "--threads", "2"]),
        ("may", 1, [f"{BIN}/http_may", "--port", "0", "--threads", "1"]),
        ("std", 0, [f"{BIN}/http_std", "--port", "0"])]  # threads 0: one per connection

def to_us(v):
    n = float(re.match(r"[\d.]+", v).group())
    return n * (1 if v.endswith("us") else 1e3 if v.endswith("ms") else 1e6 if v.endswith("s") else 1)

def run_http(label, threads, cmd):
    log = open("/tmp/compare_http.log", "w+")
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    addr = None
    for _ in range(100):
        time.sleep(0.1)
        log.seek(0)
        m = re.search(r"listening on (\S+)", log.read())
        if m:
            addr = m.group(1)
            break
    d = {"workload": "http", "runtime": label, "threads": str(threads), "n": str(HTTP_SECS),
         "cmd": " ".join(cmd).replace(ROOT + "/", "")}
    if not addr:
        p.kill(); p.wait()
        d.update(ok="0", error="no listening line")
        return d
    out = subprocess.run(["wrk", "-t1", "-c64", f"-d{HTTP_SECS}s", "--latency", f"http://{addr}/"],
                         capture_output=True, text=True).stdout
    p.terminate(); p.wait()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    if not (rps and p50 and p99) or "Non-2xx" in out or "Socket errors" in out:
        d.update(ok="0", error="wrk: " + " ".join(out.split())[-200:])
    else:
        d.update(ok="1", rps=rps.group(1), p50_us=str(to_us(p50.group(1))), p99_us=str(to_us(p99.group(1))))
    return d

# ---------- main ----------
def main():
    js = jobs()
    results = []
    t0 = time.time()
    for r in range(ROUNDS):
        for j in js:
            d = run_job(j)
            d["round"] = str(r)
            results.append(d)
            print(f"[{time.time()-t0:6.0f}s] round {r} {d['workload']} {d['runtime']} t={d['threads']} n={d['n']}: "
                  + (d.get("ns_per_op", "?") + " ns/op" if d.get("ok") == "1" else "FAIL " + d.get("error", "")), flush=True)
        if os.environ.get("SKIP_HTTP") != "1" and (not ONLY or "http" in ONLY):
            for label, threads, cmd in HTTP:
                d = run_http(label, threads, cmd)
                d["round"] = str(r)
                results.append(d)
                print(f"[{time.time()-t0:6.0f}s] round {r} http {label}: {d.get('rps', 'FAIL ' + d.get('error', ''))}", flush=True)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    raw = os.path.join(HERE, "results", "raw.jsonl")
    if ONLY and os.path.exists(raw):
        # A partial rerun replaces only its workloads' records.
        old = [json.loads(l) for l in open(raw)]
        results = [d for d in old if d["workload"] not in ONLY] + results
    with open(os.path.join(HERE, "results", "raw.jsonl"), "w") as f:
        for d in results:
            f.write(json.dumps(d) + "\n")
    import report
    report.write(results, None if ONLY else time.time() - t0)

if __name__ == "__main__":
    sys.path.insert(0, HERE)
    if len(sys.argv) > 1 and sys.argv[1] == "--report":
        import report
        rs = [json.loads(l) for l in open(os.path.join(HERE, "results", "raw.jsonl"))]
        report.write(rs, None)
    else:
        main()
