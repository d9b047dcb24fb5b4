//! The comparison workloads on greenhub: `--mode mn` (M:N work stealing,
//! `--threads` hubs), `migrate` (M:N with the `unsafe` migration opt-in,
//! `Builder::migratable()`), `single` (`Builder::single_threaded()`) or
//! `pinned` (`Builder::pinned()`, `--threads` hubs). See `src/lib.rs` for
//! the format.

use greenhub_compare::{self as c, Args};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

fn main() {
    let a = c::args();
    let mode = if a.mode.is_empty() {
        "mn".to_string()
    } else {
        a.mode.clone()
    };
    let name = format!("greenhub-{mode}");
    let b = match mode.as_str() {
        "mn" => greenhub::Builder::new().hubs(a.threads),
        // SAFETY: the workloads' greenlets keep only integers, `Arc`s of
        // atomics and greenhub channels across their blocking calls: nothing
        // tied to an OS thread.
        "migrate" => unsafe { greenhub::Builder::new().hubs(a.threads).migratable() },
        "single" => greenhub::Builder::new().single_threaded(),
        "pinned" => greenhub::Builder::new().pinned().hubs(a.threads),
        m => panic!("unknown mode {m}"),
    };
    let rt = b.build().expect("build runtime");
    let n = if a.n == 0 {
        c::default_n(&a.workload)
    } else {
        a.n
    };
    let w = a.workload.clone();
    match w.as_str() {
        "switch" => rt.block_on(move || switch(&name, &a, n)),
        "spawn" => rt.block_on(move || spawn(&name, &a, n)),
        "pingpong" => rt.block_on(move || pingpong(&name, &a, n)),
        "skynet" => rt.block_on(move || skynet_main(&name, &a, n)),
        "idle" => rt.block_on(move || idle(&name, &a, n)),
        "mixed" => mixed(&rt, &name, &a, n),
        w => panic!("unknown workload {w}"),
    }
}

/// Two greenlets on the calling hub yielding to each other, `n` switches.
fn switch(name: &str, a: &Args, n: usize) {
    let t = Instant::now();
    let half = n / 2;
    let f = move || {
        for _ in 0..half {
            greenhub::yield_now();
        }
    };
    let x = greenhub::spawn_local(f);
    let y = greenhub::spawn_local(f);
    x.join().unwrap();
    y.join().unwrap();
    c::report(name, a, n, t.elapsed(), n, "");
}

/// Spawns `n` greenlets returning their index, joins all, checks the sum.
fn spawn(name: &str, a: &Args, n: usize) {
    let t = Instant::now();
    let hs: Vec<_> = (0..n).map(|i| greenhub::spawn(move || i as u64)).collect();
    let sum: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
    let el = t.elapsed();
    assert_eq!(sum, c::sum_to(n));
    c::report(name, a, n, el, n, "");
}

/// `n` round trips between two greenlets over two `bounded(1)` channels.
fn pingpong(name: &str, a: &Args, n: usize) {
    let t = Instant::now();
    let (ptx, prx) = greenhub::channel::bounded::<u64>(1);
    let (qtx, qrx) = greenhub::channel::bounded::<u64>(1);
    let echo = greenhub::spawn(move || {
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
    c::report(name, a, n, el, n, "");
}

fn skynet(num: u64, size: u64) -> u64 {
    if size == 1 {
        return num;
    }
    let sub = size / 10;
    let hs: Vec<_> = (0..10)
        .map(|i| greenhub::spawn(move || skynet(num + i * sub, sub)))
        .collect();
    hs.into_iter().map(|h| h.join().unwrap()).sum()
}

/// Skynet with `n` leaves (a power of 10), fanout 10; ops = leaves.
fn skynet_main(name: &str, a: &Args, n: usize) {
    let t = Instant::now();
    let sum = skynet(0, n as u64);
    let el = t.elapsed();
    assert_eq!(sum, c::skynet_expected(n));
    c::report(name, a, n, el, n, "");
}

static RELEASE: AtomicBool = AtomicBool::new(false);
static PARKED: AtomicUsize = AtomicUsize::new(0);

/// Parks `n` greenlets; resident KiB per greenlet and spawn time.
fn idle(name: &str, a: &Args, n: usize) {
    // Warm-up and the handle table, outside the measurement.
    for h in (0..64)
        .map(|i| greenhub::spawn(move || i))
        .collect::<Vec<_>>()
    {
        h.join().unwrap();
    }
    let mut hs = Vec::with_capacity(n);
    let before = c::rss_kib();
    let t = Instant::now();
    for _ in 0..n {
        hs.push(greenhub::spawn(|| {
            PARKED.fetch_add(1, Ordering::Relaxed);
            while !RELEASE.load(Ordering::Acquire) {
                greenhub::park();
            }
        }));
    }
    while PARKED.load(Ordering::Relaxed) < n {
        greenhub::yield_now();
    }
    let el = t.elapsed();
    let kib = (c::rss_kib() - before) as f64 / n as f64;
    RELEASE.store(true, Ordering::Release);
    for h in &hs {
        h.greenlet().unpark();
    }
    for h in hs {
        h.join().unwrap();
    }
    c::report(name, a, n, el, n, &format!("kib_per_task={kib:.3}"));
}

/// `mixed`: MIXED_TASKS greenlets spawned from outside the runtime, each
/// doing `n / MIXED_TASKS` rounds of a CPU chunk then a 1 ms sleep. ops =
/// chunks; `cpu_ns_per_op` is the CPU time per chunk summed over tasks
/// divided by wall time, i.e. the throughput of the CPU-bound part.
fn mixed(rt: &greenhub::Runtime, name: &str, a: &Args, n: usize) {
    let rounds = n / c::MIXED_TASKS;
    let t = Instant::now();
    let hs: Vec<_> = (0..c::MIXED_TASKS)
        .map(|k| {
            rt.spawn(move || {
                let mut x = 0u64;
                for r in 0..rounds {
                    x ^= c::cpu_chunk((k * rounds + r) as u64);
                    greenhub::sleep(c::MIXED_SLEEP);
                }
                // The hub it ended on (its thread's name ends in the index).
                let hub = std::thread::current().name().map(str::to_owned);
                (x, hub.unwrap_or_default())
            })
        })
        .collect();
    let mut per_hub = std::collections::BTreeMap::new();
    for h in hs {
        let (x, hub) = h.join().unwrap();
        std::hint::black_box(x);
        *per_hub.entry(hub).or_insert(0) += 1;
    }
    let el = t.elapsed();
    // How the tasks ended up spread over the hubs, largest share first
    // (e.g. `split=5/3`): what bounds default M:N here (BENCHMARKS.md).
    let mut split: Vec<usize> = per_hub.into_values().collect();
    split.sort_unstable_by(|a, b| b.cmp(a));
    let split: Vec<String> = split.iter().map(|k| k.to_string()).collect();
    let chunks = rounds * c::MIXED_TASKS;
    c::report(
        name,
        a,
        chunks,
        el,
        chunks,
        &format!("split={}", split.join("/")),
    );
}
