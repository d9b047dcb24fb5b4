//! Shared helpers of the comparison programs: argument parsing, the one-line
//! result format, resident-memory reading, the `mixed` CPU chunk and the
//! expected results the programs check.
//!
//! Every program is invoked as `<program> <workload> [--threads T] [--n N]`
//! and prints one line per result:
//!
//! ```text
//! result runtime=greenhub-mn workload=spawn threads=2 n=1000000 ok=1 ns_per_op=123.4 total_ms=123.4
//! result runtime=std workload=idle threads=1 n=1000000 ok=0 error="..."
//! ```
//!
//! `run.sh` collects these lines; `report.py` turns them into tables/charts.

use std::time::Duration;

/// Parsed command line of a comparison program.
pub struct Args {
    /// The workload name (`switch`, `spawn`, `pingpong`, `skynet`, `idle`, `mixed`).
    pub workload: String,
    /// OS threads / hubs / workers the runtime may use.
    pub threads: usize,
    /// Problem size override (0: the workload's default).
    pub n: usize,
    /// Free-form mode (greenhub: `mn`, `single`, `pinned`; tokio: `current`, `multi`).
    pub mode: String,
}

/// Parses `<workload> [--threads T] [--n N] [--mode M]`.
pub fn args() -> Args {
    let mut it = std::env::args().skip(1);
    let workload = it
        .next()
        .expect("usage: <workload> [--threads T] [--n N] [--mode M]");
    let mut a = Args {
        workload,
        threads: 1,
        n: 0,
        mode: String::new(),
    };
    while let Some(flag) = it.next() {
        let v = it.next().expect("flag value");
        match flag.as_str() {
            "--threads" => a.threads = v.parse().expect("--threads"),
            "--n" => a.n = v.parse().expect("--n"),
            "--mode" => a.mode = v,
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// The default problem size of a workload.
pub fn default_n(workload: &str) -> usize {
    match workload {
        "switch" => 10_000_000,
        "spawn" | "pingpong" | "skynet" | "idle" => 1_000_000,
        "mixed" => 400,
        _ => panic!("unknown workload {workload}"),
    }
}

/// Prints a successful result: `ns_per_op = elapsed / ops` plus extra fields.
pub fn report(runtime: &str, a: &Args, n: usize, elapsed: Duration, ops: usize, extra: &str) {
    let ns = elapsed.as_nanos() as f64 / ops as f64;
    println!(
        "result runtime={runtime} workload={} threads={} n={n} ok=1 ns_per_op={ns:.2} total_ms={:.1}{}{extra}",
        a.workload,
        a.threads,
        elapsed.as_secs_f64() * 1e3,
        if extra.is_empty() { "" } else { " " },
    );
}

/// Prints a failed result with its error (quotes removed).
pub fn fail(runtime: &str, a: &Args, n: usize, error: &str) {
    let e = error.replace('"', "'").replace('\n', " ");
    println!(
        "result runtime={runtime} workload={} threads={} n={n} ok=0 error=\"{e}\"",
        a.workload, a.threads
    );
}

/// Resident set size of this process in KiB (`VmRSS` of `/proc/self/status`).
pub fn rss_kib() -> usize {
    let s = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Sum of `0..n`, the expected result of `spawn`.
pub fn sum_to(n: usize) -> u64 {
    let n = n as u64;
    n * (n - 1) / 2
}

/// The expected skynet sum for `leaves` leaves numbered `0..leaves`.
pub fn skynet_expected(leaves: usize) -> u64 {
    sum_to(leaves)
}

/// Iterations of the `mixed` CPU chunk (about 3 ms on this kind of machine).
pub const MIXED_SPIN: u64 = 1_000_000;
/// The `mixed` IO wait after each chunk.
pub const MIXED_SLEEP: Duration = Duration::from_millis(1);
/// Tasks in `mixed`; each does `n / MIXED_TASKS` rounds.
pub const MIXED_TASKS: usize = 8;

/// The `mixed` CPU-bound chunk: a fixed xorshift/multiply hash loop.
pub fn cpu_chunk(seed: u64) -> u64 {
    let mut x = seed | 1;
    for i in 0..MIXED_SPIN {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(i);
    }
    std::hint::black_box(x)
}

/// Pins the calling OS thread to CPU `cpu` (used by `std` for 1-thread runs).
pub fn pin_to_cpu(cpu: usize) {
    // SAFETY: cpu_set_t is plain data; zeroed is a valid empty set, and
    // sched_setaffinity only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

pub mod http;
