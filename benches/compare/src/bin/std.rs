//! The comparison workloads on plain OS threads (`std::thread`, 64 KiB
//! stacks). `--threads 1` pins every thread to CPU 0; `--threads 2` leaves
//! them free. `std::sync::mpsc::sync_channel(1)` is the channel. Spawning
//! past the kernel's limits (threads, `vm.max_map_count`) is reported as a
//! failure with the number of threads started.

use greenhub_compare::{self as c, Args};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Instant;

fn main() {
    let a = c::args();
    let n = if a.n == 0 {
        c::default_n(&a.workload)
    } else {
        a.n
    };
    if a.threads == 1 {
        c::pin_to_cpu(0);
    }
    let r = match a.workload.as_str() {
        "switch" => switch(&a, n),
        "spawn" => spawn(&a, n),
        "pingpong" => pingpong(&a, n),
        "skynet" => skynet_main(&a, n),
        "idle" => idle(&a, n),
        "mixed" => mixed(&a, n),
        w => panic!("unknown workload {w}"),
    };
    if let Err(e) = r {
        c::fail("std", &a, n, &e);
        // Threads may still be blocked; do not wait for them.
        std::process::exit(0);
    }
}

/// Spawns a thread with a 64 KiB stack (inherits the CPU affinity).
fn go<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<thread::JoinHandle<T>> {
    thread::Builder::new().stack_size(64 * 1024).spawn(f)
}

/// Two threads handing a turn flag back and forth with `yield_now`.
fn switch(a: &Args, n: usize) -> Result<(), String> {
    let turn = Arc::new(AtomicBool::new(false));
    let t = Instant::now();
    let half = n / 2;
    let mk = |me: bool| {
        let turn = turn.clone();
        move || {
            for _ in 0..half {
                while turn.load(Ordering::Acquire) != me {
                    thread::yield_now();
                }
                turn.store(!me, Ordering::Release);
            }
        }
    };
    let x = go(mk(false)).map_err(|e| e.to_string())?;
    let y = go(mk(true)).map_err(|e| e.to_string())?;
    x.join().unwrap();
    y.join().unwrap();
    c::report("std", a, n, t.elapsed(), n, "");
    Ok(())
}

fn spawn(a: &Args, n: usize) -> Result<(), String> {
    let t = Instant::now();
    let mut hs = Vec::with_capacity(n);
    for i in 0..n {
        match go(move || i as u64) {
            Ok(h) => hs.push(h),
            Err(e) => return Err(format!("spawned {i} threads, then: {e}")),
        }
    }
    let sum: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
    let el = t.elapsed();
    assert_eq!(sum, c::sum_to(n));
    c::report("std", a, n, el, n, "");
    Ok(())
}

fn pingpong(a: &Args, n: usize) -> Result<(), String> {
    let t = Instant::now();
    let (ptx, prx) = std::sync::mpsc::sync_channel::<u64>(1);
    let (qtx, qrx) = std::sync::mpsc::sync_channel::<u64>(1);
    let echo = go(move || {
        while let Ok(v) = prx.recv() {
            qtx.send(v + 1).unwrap();
        }
    })
    .map_err(|e| e.to_string())?;
    let mut acc = 0u64;
    for i in 0..n as u64 {
        ptx.send(i).unwrap();
        acc += qrx.recv().unwrap() - i;
    }
    drop(ptx);
    echo.join().unwrap();
    let el = t.elapsed();
    assert_eq!(acc, n as u64);
    c::report("std", a, n, el, n, "");
    Ok(())
}

static SPAWNED: AtomicUsize = AtomicUsize::new(0);

fn skynet(num: u64, size: u64) -> Result<u64, String> {
    if size == 1 {
        return Ok(num);
    }
    let sub = size / 10;
    let mut hs = Vec::with_capacity(10);
    for i in 0..10 {
        let h = go(move || skynet(num + i * sub, sub)).map_err(|e| {
            format!(
                "spawned {} threads, then: {e}",
                SPAWNED.load(Ordering::Relaxed)
            )
        })?;
        SPAWNED.fetch_add(1, Ordering::Relaxed);
        hs.push(h);
    }
    let mut sum = 0;
    for h in hs {
        sum += h.join().unwrap()?;
    }
    Ok(sum)
}

fn skynet_main(a: &Args, n: usize) -> Result<(), String> {
    let t = Instant::now();
    let sum = skynet(0, n as u64)?;
    let el = t.elapsed();
    assert_eq!(sum, c::skynet_expected(n));
    c::report("std", a, n, el, n, "");
    Ok(())
}

fn idle(a: &Args, n: usize) -> Result<(), String> {
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let parked = Arc::new(AtomicUsize::new(0));
    let mut hs = Vec::with_capacity(n);
    let before = c::rss_kib();
    let t = Instant::now();
    for i in 0..n {
        let (g, p) = (gate.clone(), parked.clone());
        let h = go(move || {
            let mut open = g.0.lock().unwrap();
            p.fetch_add(1, Ordering::Relaxed);
            while !*open {
                open = g.1.wait(open).unwrap();
            }
        })
        .map_err(|e| format!("spawned {i} threads, then: {e}"))?;
        hs.push(h);
    }
    while parked.load(Ordering::Relaxed) < n {
        thread::yield_now();
    }
    let el = t.elapsed();
    let kib = (c::rss_kib() - before) as f64 / n as f64;
    *gate.0.lock().unwrap() = true;
    gate.1.notify_all();
    for h in hs {
        h.join().unwrap();
    }
    c::report("std", a, n, el, n, &format!("kib_per_task={kib:.3}"));
    Ok(())
}

fn mixed(a: &Args, n: usize) -> Result<(), String> {
    let rounds = n / c::MIXED_TASKS;
    let t = Instant::now();
    let mut hs = Vec::new();
    for k in 0..c::MIXED_TASKS {
        hs.push(
            go(move || {
                let mut x = 0u64;
                for r in 0..rounds {
                    x ^= c::cpu_chunk((k * rounds + r) as u64);
                    thread::sleep(c::MIXED_SLEEP);
                }
                x
            })
            .map_err(|e| e.to_string())?,
        );
    }
    for h in hs {
        std::hint::black_box(h.join().unwrap());
    }
    let chunks = rounds * c::MIXED_TASKS;
    c::report("std", a, chunks, t.elapsed(), chunks, "");
    Ok(())
}
