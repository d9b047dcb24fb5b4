//! The comparison workloads on tokio: `--mode current` (current-thread
//! runtime) or `multi` (multi-thread, `--threads` workers). Tasks are
//! `tokio::spawn`ed; `yield_now`, `mpsc::channel(1)`, `Notify` and
//! `time::sleep` stand in for greenhub's primitives.

use greenhub_compare::{self as c, Args};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

fn main() {
    let a = c::args();
    let mode = if a.mode.is_empty() {
        "current".to_string()
    } else {
        a.mode.clone()
    };
    let name = format!("tokio-{mode}");
    let rt = match mode.as_str() {
        "current" => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        "multi" => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(a.threads)
            .enable_all()
            .build(),
        m => panic!("unknown mode {m}"),
    }
    .expect("build runtime");
    let n = if a.n == 0 {
        c::default_n(&a.workload)
    } else {
        a.n
    };
    // Run the driver as a spawned task so multi-thread workers run it too.
    let w = a.workload.clone();
    if w == "switch" {
        // Both tasks on this thread, as "two tasks on one thread" asks.
        return tokio::task::LocalSet::new().block_on(&rt, switch(&name, &a, n));
    }
    rt.block_on(async move {
        tokio::spawn(async move {
            match w.as_str() {
                "spawn" => spawn(&name, &a, n).await,
                "pingpong" => pingpong(&name, &a, n).await,
                "skynet" => skynet_main(&name, &a, n).await,
                "idle" => idle(&name, &a, n).await,
                "mixed" => mixed(&name, &a, n).await,
                w => panic!("unknown workload {w}"),
            }
        })
        .await
        .unwrap()
    });
}

async fn switch(name: &str, a: &Args, n: usize) {
    let t = Instant::now();
    let half = n / 2;
    let f = move || async move {
        for _ in 0..half {
            tokio::task::yield_now().await;
        }
    };
    let x = tokio::task::spawn_local(f());
    let y = tokio::task::spawn_local(f());
    x.await.unwrap();
    y.await.unwrap();
    c::report(name, a, n, t.elapsed(), n, "");
}

async fn spawn(name: &str, a: &Args, n: usize) {
    let t = Instant::now();
    let hs: Vec<_> = (0..n)
        .map(|i| tokio::spawn(async move { i as u64 }))
        .collect();
    let mut sum = 0;
    for h in hs {
        sum += h.await.unwrap();
    }
    let el = t.elapsed();
    assert_eq!(sum, c::sum_to(n));
    c::report(name, a, n, el, n, "");
}

async fn pingpong(name: &str, a: &Args, n: usize) {
    let t = Instant::now();
    let (ptx, mut prx) = tokio::sync::mpsc::channel::<u64>(1);
    let (qtx, mut qrx) = tokio::sync::mpsc::channel::<u64>(1);
    let echo = tokio::spawn(async move {
        while let Some(v) = prx.recv().await {
            qtx.send(v + 1).await.unwrap();
        }
    });
    let mut acc = 0u64;
    for i in 0..n as u64 {
        ptx.send(i).await.unwrap();
        acc += qrx.recv().await.unwrap() - i;
    }
    drop(ptx);
    echo.await.unwrap();
    let el = t.elapsed();
    assert_eq!(acc, n as u64);
    c::report(name, a, n, el, n, "");
}

fn skynet(num: u64, size: u64) -> std::pin::Pin<Box<dyn Future<Output = u64> + Send>> {
    Box::pin(async move {
        if size == 1 {
            return num;
        }
        let sub = size / 10;
        let hs: Vec<_> = (0..10)
            .map(|i| tokio::spawn(skynet(num + i * sub, sub)))
            .collect();
        let mut sum = 0;
        for h in hs {
            sum += h.await.unwrap();
        }
        sum
    })
}

async fn skynet_main(name: &str, a: &Args, n: usize) {
    let t = Instant::now();
    let sum = skynet(0, n as u64).await;
    let el = t.elapsed();
    assert_eq!(sum, c::skynet_expected(n));
    c::report(name, a, n, el, n, "");
}

async fn idle(name: &str, a: &Args, n: usize) {
    let parked = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(tokio::sync::Notify::new());
    let mut hs = Vec::with_capacity(n);
    let before = c::rss_kib();
    let t = Instant::now();
    for _ in 0..n {
        let (p, r) = (parked.clone(), release.clone());
        hs.push(tokio::spawn(async move {
            let wait = r.notified();
            p.fetch_add(1, Ordering::Relaxed);
            wait.await;
        }));
    }
    while parked.load(Ordering::Relaxed) < n {
        tokio::task::yield_now().await;
    }
    let el = t.elapsed();
    let kib = (c::rss_kib() - before) as f64 / n as f64;
    release.notify_waiters();
    for h in hs {
        h.await.unwrap();
    }
    c::report(name, a, n, el, n, &format!("kib_per_task={kib:.3}"));
}

async fn mixed(name: &str, a: &Args, n: usize) {
    let rounds = n / c::MIXED_TASKS;
    let t = Instant::now();
    let hs: Vec<_> = (0..c::MIXED_TASKS)
        .map(|k| {
            tokio::spawn(async move {
                let mut x = 0u64;
                for r in 0..rounds {
                    x ^= c::cpu_chunk((k * rounds + r) as u64);
                    tokio::time::sleep(c::MIXED_SLEEP).await;
                }
                x
            })
        })
        .collect();
    for h in hs {
        std::hint::black_box(h.await.unwrap());
    }
    let chunks = rounds * c::MIXED_TASKS;
    c::report(name, a, chunks, t.elapsed(), chunks, "");
}
