//! The comparison workloads on may (stackful coroutines, M:N): `--threads`
//! workers (`may::config().set_workers`), default coroutine stack size.
//! `may::sync::mpsc` is its channel (unbounded: may has no bounded one).

use greenhub_compare::{self as c, Args};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Spawns a may coroutine.
fn go<F, T>(f: F) -> may::coroutine::JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // SAFETY: may's spawn is unsafe because a coroutine must not block its
    // worker thread with thread-local state or OS blocking; these closures
    // only use may's primitives, atomics and pure computation.
    unsafe { may::coroutine::spawn(f) }
}

fn main() {
    let a = c::args();
    may::config().set_workers(a.threads);
    let n = if a.n == 0 {
        c::default_n(&a.workload)
    } else {
        a.n
    };
    let w = a.workload.clone();
    let h = go(move || match w.as_str() {
        "switch" => switch(&a, n),
        "spawn" => spawn(&a, n),
        "pingpong" => pingpong(&a, n),
        "skynet" => skynet_main(&a, n),
        "idle" => idle(&a, n),
        "mixed" => mixed(&a, n),
        w => panic!("unknown workload {w}"),
    });
    if let Err(e) = h.join() {
        let a = c::args();
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into());
        c::fail("may", &a, n, &msg);
    }
}

fn switch(a: &Args, n: usize) {
    let t = Instant::now();
    let half = n / 2;
    let f = move || {
        for _ in 0..half {
            may::coroutine::yield_now();
        }
    };
    let x = go(f);
    let y = go(f);
    x.join().unwrap();
    y.join().unwrap();
    c::report("may", a, n, t.elapsed(), n, "");
}

fn spawn(a: &Args, n: usize) {
    let t = Instant::now();
    let hs: Vec<_> = (0..n).map(|i| go(move || i as u64)).collect();
    let sum: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
    let el = t.elapsed();
    assert_eq!(sum, c::sum_to(n));
    c::report("may", a, n, el, n, "");
}

fn pingpong(a: &Args, n: usize) {
    let t = Instant::now();
    let (ptx, prx) = may::sync::mpsc::channel::<u64>();
    let (qtx, qrx) = may::sync::mpsc::channel::<u64>();
    let echo = go(move || {
        while let Ok(v) = prx.recv() {
            qtx.send(v + 1).unwrap();
        }
    });
    let mut acc = 0u64;
    for i in 0..n as u64 {
        ptx.send(i).unwrap();
        acc += qrx.recv().unwrap() - i;
    }
    drop(ptx);
    echo.join().unwrap();
    let el = t.elapsed();
    assert_eq!(acc, n as u64);
    c::report("may", a, n, el, n, "");
}

fn skynet(num: u64, size: u64) -> u64 {
    if size == 1 {
        return num;
    }
    let sub = size / 10;
    let hs: Vec<_> = (0..10)
        .map(|i| go(move || skynet(num + i * sub, sub)))
        .collect();
    hs.into_iter().map(|h| h.join().unwrap()).sum()
}

fn skynet_main(a: &Args, n: usize) {
    let t = Instant::now();
    let sum = skynet(0, n as u64);
    let el = t.elapsed();
    assert_eq!(sum, c::skynet_expected(n));
    c::report("may", a, n, el, n, "");
}

static PARKED: AtomicUsize = AtomicUsize::new(0);

fn idle(a: &Args, n: usize) {
    let gate = std::sync::Arc::new((may::sync::Mutex::new(false), may::sync::Condvar::new()));
    let mut hs = Vec::with_capacity(n);
    let before = c::rss_kib();
    let t = Instant::now();
    for _ in 0..n {
        let g = gate.clone();
        hs.push(go(move || {
            let mut open = g.0.lock().unwrap();
            PARKED.fetch_add(1, Ordering::Relaxed);
            while !*open {
                open = g.1.wait(open).unwrap();
            }
        }));
    }
    // A 1 ms sleep, not yield_now: with one worker, may's yield_now loop
    // here never let the new coroutines run (the run hung).
    while PARKED.load(Ordering::Relaxed) < n {
        may::coroutine::sleep(std::time::Duration::from_millis(1));
    }
    let el = t.elapsed();
    let kib = (c::rss_kib() - before) as f64 / n as f64;
    *gate.0.lock().unwrap() = true;
    gate.1.notify_all();
    for h in hs {
        h.join().unwrap();
    }
    c::report("may", a, n, el, n, &format!("kib_per_task={kib:.3}"));
}

fn mixed(a: &Args, n: usize) {
    let rounds = n / c::MIXED_TASKS;
    let t = Instant::now();
    let hs: Vec<_> = (0..c::MIXED_TASKS)
        .map(|k| {
            go(move || {
                let mut x = 0u64;
                for r in 0..rounds {
                    x ^= c::cpu_chunk((k * rounds + r) as u64);
                    may::coroutine::sleep(c::MIXED_SLEEP);
                }
                x
            })
        })
        .collect();
    for h in hs {
        std::hint::black_box(h.join().unwrap());
    }
    let chunks = rounds * c::MIXED_TASKS;
    c::report("may", a, chunks, t.elapsed(), chunks, "");
}
