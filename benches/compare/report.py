"""Turns the suite's results into BENCHMARKS.md and one SVG chart per workload.

Owns: medians and spreads, the ratio-to-greenhub columns, the target checks
of issue 7, the machine/version header, and the hand-written SVG bar charts
(no plotting library). `python3 benches/compare/run.py --report` rewrites
both from benches/compare/results/raw.jsonl without rerunning anything.
"""
import os, re, statistics, subprocess, datetime, platform, html

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HERE = os.path.join(ROOT, "benches", "compare")
CHARTS = os.path.join(HERE, "charts")

UNITS = {"switch": "ns per switch", "spawn": "ns per task (spawn + join)", "pingpong": "ns per round trip",
         "skynet": "ns per leaf", "idle": "resident KiB per parked task", "mixed": "wall ns per CPU chunk",
         "http": "requests per second"}
ORDER = ["greenhub-mn", "greenhub-migrate", "greenhub-single", "greenhub-pinned", "tokio-current", "tokio-multi", "may", "std"]

def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception:
        return "?"

def metric(w, d):
    if w == "idle":
        return float(d["kib_per_task"])
    if w == "http":
        return float(d["rps"])
    return float(d["ns_per_op"])

def groups(results):
    """{(w, threads, n, runtime): [dicts]} in a stable order."""
    g = {}
    for d in results:
        g.setdefault((d["workload"], int(d["threads"]), int(d["n"]), d["runtime"]), []).append(d)
    return g

def summary(ds, w, key=None):
    ok = [d for d in ds if d.get("ok") == "1"]
    vals = sorted(float(d[key]) if key else metric(w, d) for d in ok)
    errs = sorted({d.get("error", "") for d in ds if d.get("ok") != "1"})
    if not vals:
        return None, None, None, errs, len(ds)
    return statistics.median(vals), vals[0], vals[-1], errs, len(ds)

def fmt(v):
    if v is None:
        return "—"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"

def baseline(g, w, t, n):
    """greenhub-mn's median for (w, t), at n if measured, else its largest n."""
    cands = sorted((k for k in g if k[0] == w and k[1] == t and k[3] == "greenhub-mn"), key=lambda k: (k[2] != n, -k[2]))
    for k in cands:
        m = summary(g[k], w)[0]
        if m is not None:
            return m, k[2]
    return None, None

def med(g, w, t, n, rt, key=None):
    k = (w, t, n, rt)
    return summary(g[k], w, key)[0] if k in g else None

def how(w):
    """What got a met target there (why.HOW), if it is written down."""
    return ". " + HOW[w] + "." if w in HOW else ""

def targets(g):
    out = []
    def line(name, ok, text):
        out.append(f"- **{name}**: {'met' if ok else 'MISSED'}. {text}")
    gh, may = med(g, "switch", 1, 10_000_000, "greenhub-mn"), med(g, "switch", 1, 10_000_000, "may")
    if gh and may:
        r = gh / may
        line("switch ≤ 0.35× may's", r <= 0.35, f"greenhub-mn {fmt(gh)} ns vs may {fmt(may)} ns per switch (1 thread): {r:.2f}×"
             + (how("switch") if r <= 0.35 else f", {r / 0.35:.2f}× the target. " + WHY["switch"]))
    for w, lim in (("spawn", 0.6), ("pingpong", 0.5), ("skynet", 0.6)):
        gh, tk = med(g, w, 1, 1_000_000, "greenhub-mn"), med(g, w, 1, 1_000_000, "tokio-current")
        ghs = med(g, w, 1, 1_000_000, "greenhub-single")
        if gh and tk:
            r = gh / tk
            extra = f" (greenhub-single: {ghs / tk:.2f}×)" if ghs else ""
            line(f"{w} ≤ {lim}× tokio current-thread", r <= lim,
                 f"greenhub-mn (1 hub) {fmt(gh)} ns vs tokio-current {fmt(tk)} ns: {r:.2f}×{extra}"
                 + (how(w) if r <= lim else f", {r / lim:.2f}× the target. " + WHY[w]))
    kib = med(g, "idle", 1, 1_000_000, "greenhub-mn")
    if kib is not None:
        mc = sh("cat /proc/sys/vm/max_map_count")
        line("1,000,000 parked greenlets ≤ 4.5 KiB each", kib <= 4.5,
             f"{kib:.2f} KiB resident per parked greenlet at 1M (greenhub-mn, 1 hub), vm.max_map_count = {mc}.")
    gi = med(g, "idle", 1, 1_000_000, "greenhub-mn", "ns_per_op")
    ti = med(g, "idle", 1, 1_000_000, "tokio-current", "ns_per_op")
    if gi and ti:
        r = gi / ti
        line("1,000,000 parked: spawn-and-park ≤ 2× tokio current-thread", r <= 2.0,
             f"greenhub-mn (1 hub) {fmt(gi)} ns vs tokio-current {fmt(ti)} ns per task: {r:.2f}×"
             + ("" if r <= 2.0 else f", {r / 2.0:.2f}× the target. " + WHY["idle"]))
    a = b = None
    for k in g:
        if k[0] == "http" and k[3] == "greenhub-mn":
            a = (summary(g[k], "http")[0], summary(g[k], "http", "p99_us")[0])
        if k[0] == "http" and k[3] == "tokio-multi":
            b = (summary(g[k], "http")[0], summary(g[k], "http", "p99_us")[0])
    one = {}
    for k in g:
        if k[0] == "http" and k[3] in ("greenhub-single", "tokio-current"):
            one[k[3]] = (summary(g[k], "http")[0], summary(g[k], "http", "p99_us")[0])
    also = ""
    if one.get("greenhub-single") and one.get("tokio-current") and one["tokio-current"][0]:
        x, y = one["greenhub-single"], one["tokio-current"]
        also = (f" On one thread each: greenhub-single {x[0]:,.0f} req/s, p99 {x[1]:.0f} µs vs tokio-current "
                f"{y[0]:,.0f} req/s, p99 {y[1]:.0f} µs: {x[0] / y[0]:.2f}× req/s"
                + (" (met there)." if x[0] >= y[0] and x[1] <= y[1] else " (missed there too)."))
    if a and b and a[0] and b[0]:
        r = a[0] / b[0]
        ok = r >= 1.0 and a[1] <= b[1]
        line("HTTP ≥ 1.0× tokio req/s, p99 no worse (2 threads each)", ok,
             f"greenhub-mn (2 hubs) {a[0]:,.0f} req/s, p99 {a[1]:.0f} µs vs tokio-multi (2 workers) {b[0]:,.0f} req/s, p99 {b[1]:.0f} µs: {r:.2f}× req/s."
             + also + ("" if ok else " " + WHY["http"]))
        mk = [k for k in g if k[0] == "http" and k[3] == "greenhub-migrate"]
        if mk:
            c = (summary(g[mk[0]], "http")[0], summary(g[mk[0]], "http", "p99_us")[0])
            if c[0]:
                rm = c[0] / b[0]
                okm = rm >= 1.0 and c[1] <= b[1]
                line("HTTP with migration (`Builder::migratable`, unsafe opt-in) ≥ 1.0× tokio req/s, p99 no worse",
                     okm, f"greenhub-migrate (2 hubs) {c[0]:,.0f} req/s, p99 {c[1]:.0f} µs vs tokio-multi "
                     f"{b[0]:,.0f} req/s, p99 {b[1]:.0f} µs: {rm:.2f}× req/s, p99 {c[1] / b[1]:.2f}× "
                     f"(greenhub-mn's p99: {a[1] / b[1]:.2f}×)." + ("" if okm else " " + WHY["http_migrate"]))
    s, m = med(g, "mixed", 1, 400, "greenhub-single"), med(g, "mixed", 2, 400, "greenhub-mn")
    if s and m:
        r = s / m
        p = med(g, "mixed", 2, 400, "greenhub-pinned")
        mg = med(g, "mixed", 2, 400, "greenhub-migrate")
        line("mixed: M:N (2 hubs) ≥ 1.7× single-threaded", r >= 1.7,
             f"CPU-chunk throughput M:N/single = {r:.2f}×" + (f" (pinned/single = {s / p:.2f}×)" if p else "")
             + (how("mixed") if r >= 1.7 else f", {1.7 / r:.2f}× short. " + WHY["mixed"]))
        if mg:
            rm = s / mg
            line("mixed: M:N with migration (`Builder::migratable`, unsafe opt-in) ≥ 1.7× single-threaded",
                 rm >= 1.7, f"CPU-chunk throughput = {rm:.2f}× single-threaded"
                 + ("" if rm >= 1.7 else f", {1.7 / rm:.2f}× short"))
    return out

# Why a target is missed: filled in from the profile / reading of the code.
WHY = {
    "switch": "",
    "spawn": "",
    "pingpong": "",
    "skynet": "",
    "idle": "",
    "http": "",
    "http_migrate": "",
    "mixed": "",
}
# What got a met target there (optional).
HOW = {}
try:
    from why import WHY as _W, HOW as _H
    WHY.update(_W)
    HOW.update(_H)
except ImportError:
    pass

def chart(w, rows, unit, higher_better):
    """rows: [(label, median, lo, hi, failed_text)] -> SVG text."""
    bw, left, rh = 460, 300, 22
    h = 50 + rh * len(rows) + 20
    mx = max([r[3] for r in rows if r[1] is not None] or [1]) or 1
    mn = min([r[2] for r in rows if r[1] is not None] or [1]) or 1
    log = mx / mn > 50  # std's microseconds next to greenhub's nanoseconds
    import math
    lo_ref = mn / 2
    scale = (lambda v: math.log10(v / lo_ref) / math.log10(mx / lo_ref)) if log else (lambda v: v / mx)
    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + bw + 120}" height="{h}" font-family="sans-serif" font-size="12">',
         f'<rect width="100%" height="100%" fill="white"/>',
         f'<text x="10" y="20" font-size="14" font-weight="bold">{html.escape(w)}: median {html.escape(unit)} '
         f'({"higher" if higher_better else "lower"} is better; whiskers: min–max'
         f'{"; log scale" if log else ""})</text>']
    for i, (label, m, lo, hi, fail) in enumerate(rows):
        y = 40 + i * rh
        s.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{html.escape(label)}</text>')
        if m is None:
            s.append(f'<text x="{left + 4}" y="{y + 14}" fill="#b00">FAILED: {html.escape(fail[:70])}</text>')
            continue
        color = "#2a7" if label.startswith("greenhub") else "#58c"
        x = lambda v: left + bw * scale(v)
        s.append(f'<rect x="{left}" y="{y + 3}" width="{x(m) - left:.1f}" height="{rh - 6}" fill="{color}"/>')
        s.append(f'<line x1="{x(lo):.1f}" x2="{x(hi):.1f}" y1="{y + rh / 2}" y2="{y + rh / 2}" stroke="black"/>')
        s.append(f'<text x="{x(hi) + 4:.1f}" y="{y + 14}">{html.escape(fmt(m))}</text>')
    s.append("</svg>")
    return "\n".join(s)

def write(results, elapsed):
    g = groups(results)
    os.makedirs(CHARTS, exist_ok=True)
    rounds = len({d["round"] for d in results})
    cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2")
    mem = sh("free -g | awk '/Mem/ {print $2}'")
    L = ["# Benchmarks: greenhub against tokio, may and std threads", "",
         "Generated by `bash benches/compare/run.sh` (the suite is `benches/compare/`, its own Cargo",
         "package; each figure is the median of the interleaved rounds, min–max beside it). Rerun it",
         "to check these numbers on your machine; figures from different machines do not compare.", "",
         "## Machine and versions", "",
         f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC"
         + (f"; the whole run took {elapsed / 60:.1f} min" if elapsed else ""),
         f"- CPU: {cpu}, `nproc` = {sh('nproc')}",
         f"- kernel: {platform.release()}; memory: {mem} GiB; vm.max_map_count = {sh('cat /proc/sys/vm/max_map_count')}",
         f"- {sh('rustc --version')}; wrk: {sh('wrk -v 2>&1 | head -1').split(' Copyright')[0]}",
         "- crates (benches/compare/Cargo.lock): " + ", ".join(
             f"{c} {v}" for c, v in lock_versions(["tokio", "may", "corosensei", "crossbeam-deque", "mio"])),
         f"- rounds: {rounds} (every configuration once per round, rounds interleaved)", "",
         "## Targets (issue 21), as ratios in this run", ""]
    verdicts = targets(g)
    L += verdicts
    L += ["", "## Method", "", METHOD, ""]
    for w in ["switch", "spawn", "pingpong", "skynet", "idle", "http", "mixed"]:
        keys = sorted((k for k in g if k[0] == w), key=lambda k: (k[1], -k[2], ORDER.index(k[3])))
        if not keys:
            continue
        hb = w == "http"
        L += [f"## {w}", "", DESC.get(w, ""), "", f"![{w}](benches/compare/charts/{w}.svg)", ""]
        if w == "http":
            L += ["| runtime | threads | median req/s | min–max | p50 µs | p99 µs | req/s ÷ greenhub-mn |",
                  "|---|---|---|---|---|---|---|"]
        elif w == "idle":
            L += ["| runtime | threads | n | median KiB/task | min–max | spawn ns/task | KiB ÷ greenhub-mn | failures |",
                  "|---|---|---|---|---|---|---|---|"]
        else:
            L += ["| runtime | threads | n | median ns/op | min–max | ÷ greenhub-mn (time) | failures |",
                  "|---|---|---|---|---|---|---|"]
        rows = []
        for k in keys:
            _, t, n, rt = k
            m, lo, hi, errs, tot = summary(g[k], w)
            if w == "http":
                bm = None
                for kk in g:
                    if kk[0] == "http" and kk[3] == "greenhub-mn":
                        bm = summary(g[kk], w)[0]
                ratio = f"{m / bm:.2f}" if m and bm else "—"
                L.append(f"| {rt} | {t} | {fmt(m)} | {fmt(lo)}–{fmt(hi)} | {fmt(summary(g[k], w, 'p50_us')[0])} | "
                         f"{fmt(summary(g[k], w, 'p99_us')[0])} | {ratio} |")
            else:
                bt = 1 if w == "idle" else 2 if w == "mixed" else t
                bm, bn = baseline(g, w, bt, n)
                ratio = f"{m / bm:.2f}" if m and bm else "—"
                if bn and bn != n and ratio != "—":
                    ratio += f" (vs n={bn:,})"
                fails = f"{tot - len([d for d in g[k] if d.get('ok') == '1'])}/{tot}: {'; '.join(errs)[:160]}" if errs else ""
                if w == "idle":
                    sp = summary(g[k], w, "ns_per_op")[0]
                    L.append(f"| {rt} | {t} | {n:,} | {fmt(m)} | {fmt(lo) + '–' + fmt(hi) if m is not None else '—'} | {fmt(sp)} | {ratio} | {fails} |")
                else:
                    L.append(f"| {rt} | {t} | {n:,} | {fmt(m)} | {fmt(lo) + '–' + fmt(hi) if m is not None else '—'} | {ratio} | {fails} |")
            label = f"{rt} t={t}" + ("" if w == "http" else f" n={n:,}")
            rows.append((label, m, lo, hi, "; ".join(errs)))
        with open(os.path.join(CHARTS, f"{w}.svg"), "w") as f:
            f.write(chart(w, rows, UNITS[w], hb))
        L.append("")
    for extra in ("OFFLOAD.md", "VARIATION.md", "PROFILE.md"):
        path = os.path.join(HERE, extra)
        if os.path.exists(path):
            L += [open(path).read().rstrip(), ""]
    missed = [t.split("**")[1] for t in verdicts if ": MISSED." in t]
    L += ["## What is missing", "", MISSING.rstrip(), "- Issue 21's targets missed in this run (each verdict above gives the figures and the "
          "measured reason): " + ("; ".join(missed) if missed else "none") + ".", ""]
    with open(os.path.join(ROOT, "BENCHMARKS.md"), "w") as f:
        f.write("\n".join(L))

def lock_versions(names):
    txt = open(os.path.join(HERE, "Cargo.lock")).read()
    out = []
    for n in names:
        m = re.search(r'name = "' + re.escape(n) + r'"\nversion = "([^"]+)"', txt)
        out.append((n, m.group(1) if m else "?"))
    return out

METHOD = """\
- Every figure is one process run: `target/compare/release/<program> <workload> --threads T --n N [--mode M]`
  prints `result runtime=… workload=… ns_per_op=…` (see `benches/compare/src/lib.rs`). Each process has a
  120 s timeout; one that dies or times out without a result line is a failure row, with its last error line.
- `threads` is hubs for greenhub (`Builder::hubs`), worker threads for tokio multi-thread and may
  (`may::config().set_workers`); tokio current-thread and greenhub single-threaded are always 1. For std,
  `threads = 1` pins every thread to CPU 0, `threads = 2` leaves them free.
- The ratio column is this runtime's median divided by greenhub-mn's (M:N, `Builder::new().hubs(T)`)
  median at the same thread count: above 1 means greenhub-mn is faster (or smaller). Where a peer failed at
  the full size, a scaled-down run (smaller n) is shown too and compared per operation with greenhub's
  full-size figure; per-operation costs at smaller n are cheaper (warmer caches), so that flatters the peer.
- Channels: greenhub `channel::bounded(1)`, tokio `mpsc::channel(1)`, may `sync::mpsc::channel()` (may has no
  bounded channel), std `mpsc::sync_channel(1)`.
"""

DESC = {
    "switch": "Two tasks on one thread calling the runtime's `yield_now` in turn; n switches in all "
              "(greenhub: `spawn_local`; tokio: a `LocalSet`; may: 1 worker; std: two OS threads pinned to one CPU "
              "handing a flag back and forth with `thread::yield_now`, scaled to 1M switches).",
    "spawn": "Spawn n tasks returning their index, join all, check the sum. Spawned from a task of the runtime.",
    "pingpong": "n round trips between two tasks over two capacity-1 channels (std scaled to 100k). With 2 hubs "
                "or workers the echo task may run on the other thread, and then every hand-off crosses threads "
                "(greenhub-mn's 16 µs maximum is most likely such a run).",
    "skynet": "Skynet with n leaves, fanout 10, every inner task joins its 10 children (1,111,111 tasks at n = 1M).",
    "idle": "n tasks parked at once (greenhub `park`; tokio `Notify`; may and std a condvar). "
            "`VmRSS` growth per task while all are parked, and the time from the first spawn until all have parked. "
            "On the machine's default `vm.max_map_count`.",
    "http": "Keep-alive \"Hello, World!\" (`GET /`), `wrk -t1 -c64 -d10s --latency` on loopback, wrk on the same 2 CPUs. "
            "Servers: `examples/http_server.rs` (greenhub, `--mode`, `--hubs 2`) and its tokio twin "
            "`examples/http_tokio.rs` (current-thread, or `--threads 2`), sharing the protocol code of "
            "`examples/http_common/`. may (`--threads` workers, a coroutine per connection) and std (a thread "
            "per connection, shown as threads 0) run `benches/compare/src/http.rs`: the same `http_common` "
            "protocol code in a plain blocking read/write loop, without the deadlines and the drain on close "
            "of the other two.",
    "mixed": "8 tasks, each 50 rounds of a CPU-bound chunk (a fixed 1M-iteration hash loop, about 3 ms) followed by a "
             "1 ms sleep; ns_per_op is wall time per chunk, i.e. the inverse of the CPU-bound throughput. "
             "greenhub-pinned spreads the 8 tasks over the hubs as they are spawned from outside the runtime; "
             "greenhub-migrate is M:N built with the `unsafe` opt-in `Builder::migratable()`, so that an idle "
             "hub takes over greenlets that woke on a busy one.",
}

MISSING = """\
- `idle`, `spawn` and `skynet` at 1M on may and std fail on this machine (see the failure columns): may's
  `mmap` of a coroutine stack fails with ENOMEM, std's thread spawn with EAGAIN after 16k–33k threads; both
  match the default `vm.max_map_count` of 65,530 (a stack and its guard page are two mappings). The scaled
  rows (n = 10,000) give their per-task figures at a size they survive. Raising the limit was not tried: the
  issue asks for the default.
"""
