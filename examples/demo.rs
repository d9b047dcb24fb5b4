//! greenhub's main demo: straight-line blocking code, many thousands of
//! concurrent tasks, in each scheduling mode.
//!
//! Run it with `cargo run --release --example demo`.
//!
//! Each mode runs the same program: 10,000 "requests", each a greenlet that
//! blocks three times (simulated IO waits of 10-40 ms with `greenhub::sleep`)
//! and does a little CPU work in between. With threads this would need 10,000
//! OS threads; here it needs one per core. The demo prints how long it took
//! (close to one request's latency, not the sum), how many OS threads ran
//! greenlets, and the resident memory per parked greenlet.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const REQUESTS: u64 = 10_000;

fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4
}

/// One simulated request: wait, compute, wait, compute, wait.
fn request(i: u64) -> u64 {
    let mut acc = i;
    for step in 0..3 {
        greenhub::sleep(Duration::from_millis(10 + (i * 7 + step * 13) % 31));
        for _ in 0..1000 {
            acc = acc.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
    }
    acc
}

fn run_mode(name: &str, builder: greenhub::Builder) {
    let rt = builder.build().expect("cannot start runtime");
    let threads = Arc::new(Mutex::new(HashSet::new()));
    let t2 = threads.clone();
    let started = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let (checksum, rss_per) = rt.block_on(move || {
        let before = rss_kib();
        let handles: Vec<_> = (0..REQUESTS)
            .map(|i| {
                let threads = t2.clone();
                let started = started.clone();
                greenhub::spawn(move || {
                    started.fetch_add(1, Ordering::Relaxed);
                    threads.lock().unwrap().insert(std::thread::current().id());
                    request(i)
                })
            })
            .collect();
        // Let every request start and park in its first wait.
        while started.load(Ordering::Relaxed) < REQUESTS {
            greenhub::sleep(Duration::from_millis(1));
        }
        let parked_rss = rss_kib().saturating_sub(before);
        let sum = handles
            .into_iter()
            .map(|h| h.join().expect("request failed"))
            .fold(0u64, u64::wrapping_add);
        (sum, parked_rss as f64 / REQUESTS as f64)
    });
    println!(
        "{name:<16} {REQUESTS} requests x 3 waits in {:>7.1?} | OS threads used: {} | \
         ~{rss_per:.1} KiB RSS per parked greenlet | checksum {checksum:x}",
        start.elapsed(),
        threads.lock().unwrap().len(),
    );
}

fn main() {
    println!("greenhub demo: {} CPUs", num_cpus());
    run_mode("M:N (default)", greenhub::Builder::new());
    run_mode("pinned", greenhub::Builder::new().pinned());
    run_mode(
        "single-threaded",
        greenhub::Builder::new().single_threaded(),
    );

    // gevent's first tutorial example, in single-threaded mode.
    let rt = greenhub::Builder::new().single_threaded().build().unwrap();
    rt.block_on(|| {
        let first = greenhub::spawn(|| {
            println!("Running in foo");
            greenhub::sleep(Duration::ZERO);
            println!("Explicit context switch to foo again");
        });
        let bar = greenhub::spawn(|| {
            println!("Explicit context to bar");
            greenhub::sleep(Duration::ZERO);
            println!("Implicit context switch back to bar");
        });
        first.join().unwrap();
        bar.join().unwrap();
    });
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
