//! Lock cost: greenhub's `sync::Mutex` against `parking_lot`, `std` and
//! tokio's async mutex.
//!
//! One criterion iteration is one lock + increment + unlock, so the times
//! criterion prints are **nanoseconds per lock/unlock pair**; lower is better.
//!
//! Benchmarks (group `mutex_uncontended`): one caller locks, increments the
//! value and unlocks, in a loop, on the bench's own thread (greenhub's mutex
//! works off a greenlet, and its uncontended path is the same on one):
//! `greenhub`, `parking_lot`, `std`.
//!
//! Benchmarks (group `mutex_contended`): 4 tasks share one mutex; each does
//! `iters / 4` rounds of lock, read, `yield_now`, write back, unlock, so every
//! round yields *inside* the critical section and the other tasks queue on
//! the lock (each unlock hands it over to the next waiter). The timed region
//! runs inside the runtime (spawn, run, join) and the final count is checked.
//!
//! - `greenhub/single_threaded`: 4 greenlets on one hub.
//! - `greenhub/mn_2_hubs`: 4 greenlets spawned on an M:N runtime with 2 hubs
//!   (a yield inside the lock lets the other hub's greenlets contend for real).
//! - `tokio/current_thread`: 4 tasks on a current-thread runtime with
//!   `tokio::sync::Mutex` and `tokio::task::yield_now().await`, the same shape.
//!
//! Run with `CARGO_TARGET_DIR=target/bench cargo bench --bench mutex`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};

const TASKS: u64 = 4;

fn uncontended(c: &mut Criterion) {
    let mut group = c.benchmark_group("mutex_uncontended");
    let gh = greenhub::sync::Mutex::new(0u64);
    group.bench_function("greenhub", |b| b.iter(|| *black_box(&gh).lock() += 1));
    let pl = parking_lot::Mutex::new(0u64);
    group.bench_function("parking_lot", |b| b.iter(|| *black_box(&pl).lock() += 1));
    let st = std::sync::Mutex::new(0u64);
    group.bench_function("std", |b| b.iter(|| *black_box(&st).lock().unwrap() += 1));
    group.finish();
}

/// `TASKS` greenlets doing `rounds` locked increments each, yielding inside
/// the lock; returns the time taken, measured inside the runtime.
fn greenhub_contended(rt: &greenhub::Runtime, rounds: u64) -> Duration {
    rt.block_on(move || {
        let m = Arc::new(greenhub::sync::Mutex::new(0u64));
        let start = Instant::now();
        let hs: Vec<_> = (0..TASKS)
            .map(|_| {
                let m = m.clone();
                greenhub::spawn(move || {
                    for _ in 0..rounds {
                        let mut g = m.lock();
                        let v = *g;
                        greenhub::yield_now();
                        *g = v + 1;
                    }
                })
            })
            .collect();
        hs.into_iter().for_each(|h| h.join().expect("worker"));
        let elapsed = start.elapsed();
        assert_eq!(*m.lock(), rounds * TASKS, "lost updates");
        elapsed
    })
}

/// The tokio twin of [`greenhub_contended`].
fn tokio_contended(rt: &tokio::runtime::Runtime, rounds: u64) -> Duration {
    rt.block_on(async move {
        let m = Arc::new(tokio::sync::Mutex::new(0u64));
        let start = Instant::now();
        let hs: Vec<_> = (0..TASKS)
            .map(|_| {
                let m = m.clone();
                tokio::spawn(async move {
                    for _ in 0..rounds {
                        let mut g = m.lock().await;
                        let v = *g;
                        tokio::task::yield_now().await;
                        *g = v + 1;
                    }
                })
            })
            .collect();
        for h in hs {
            h.await.expect("worker");
        }
        let elapsed = start.elapsed();
        assert_eq!(*m.lock().await, rounds * TASKS, "lost updates");
        elapsed
    })
}

fn contended(c: &mut Criterion) {
    let mut group = c.benchmark_group("mutex_contended");
    let rounds = |iters: u64| iters.div_ceil(TASKS).max(1);

    let single = greenhub::Builder::new()
        .single_threaded()
        .build()
        .expect("single-threaded runtime");
    group.bench_function("greenhub/single_threaded", |b| {
        b.iter_custom(|iters| greenhub_contended(&single, rounds(iters)))
    });
    drop(single);

    let mn = greenhub::Builder::new()
        .hubs(2)
        .build()
        .expect("M:N runtime");
    group.bench_function("greenhub/mn_2_hubs", |b| {
        b.iter_custom(|iters| greenhub_contended(&mn, rounds(iters)))
    });
    drop(mn);

    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    group.bench_function("tokio/current_thread", |b| {
        b.iter_custom(|iters| tokio_contended(&tokio_rt, rounds(iters)))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = uncontended, contended
}
criterion_main!(benches);
