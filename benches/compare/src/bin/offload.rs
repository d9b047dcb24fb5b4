//! Offloading blocking calls from tokio tasks (issue 19): tokio's
//! `spawn_blocking` (a pool of up to 512 OS threads) against greenlets
//! spawned with `greenhub::Handle::spawn` and awaited through their
//! `JoinHandle` (a future). Each of `--n` tokio tasks (default 10,000, all
//! at once) offloads one blocking call that waits 50 ms: `std::thread::sleep`
//! on a blocking thread, `greenhub::sleep` on a greenlet (what a `patch`ed
//! std call or a greenhub socket read does). `--mode spawn_blocking` or
//! `greenlets`; `--threads` is the tokio worker count and the hub count.
//!
//! One result line: wall time, p50/p99 of the per-call latency (offload to
//! result, as the awaiting task sees it), the peak number of OS threads of
//! the process (sampled every millisecond) and its peak RSS (`VmHWM`).
//!
//! ```text
//! target/compare/release/offload offload --mode spawn_blocking --threads 2
//! target/compare/release/offload offload --mode greenlets --threads 2
//! ```

use greenhub_compare as c;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_millis(50);

fn status_field(name: &str) -> usize {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let a = c::args();
    let n = if a.n == 0 { 10_000 } else { a.n };
    let greenlets = match a.mode.as_str() {
        "greenlets" => true,
        "spawn_blocking" | "" => false,
        m => panic!("unknown mode {m}"),
    };
    let name = if greenlets {
        "greenhub-offload"
    } else {
        "tokio-spawn_blocking"
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(a.threads)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let gh = greenlets.then(|| {
        greenhub::Builder::new()
            .hubs(a.threads)
            .build()
            .expect("greenhub runtime")
    });
    let handle = gh.as_ref().map(|r| r.handle().clone());

    // Peak OS threads, sampled by a thread of its own (counted too).
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(status_field("Threads:"), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let threads_before = status_field("Threads:");

    let t = Instant::now();
    let mut lat: Vec<Duration> = rt.block_on(async move {
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let handle = handle.clone();
                tokio::spawn(async move {
                    let t0 = Instant::now();
                    match handle {
                        Some(gh) => gh.spawn(|| greenhub::sleep(WAIT)).await.unwrap(),
                        None => tokio::task::spawn_blocking(|| std::thread::sleep(WAIT))
                            .await
                            .unwrap(),
                    }
                    t0.elapsed()
                })
            })
            .collect();
        let mut lat = Vec::with_capacity(n);
        for task in tasks {
            lat.push(task.await.unwrap());
        }
        lat
    });
    let elapsed = t.elapsed();
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_micros();
    c::report(
        name,
        &a,
        n,
        elapsed,
        n,
        &format!(
            "mode={} p50_us={} p99_us={} max_us={} threads_before={threads_before} peak_threads={} peak_rss_kib={}",
            a.mode,
            pct(0.5),
            pct(0.99),
            lat.last().unwrap().as_micros(),
            peak.load(Ordering::Relaxed),
            status_field("VmHWM:"),
        ),
    );
}
