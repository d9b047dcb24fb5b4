//! Spawn + join cost: batches of `N = 100_000` tasks that return their index.
//!
//! One batch spawns `N` tasks, each returning its index, keeps the `N`
//! handles, then joins them all in spawn order and checks that the results
//! sum to `N * (N - 1) / 2`. The timed region is the whole batch (spawns,
//! runs, joins), measured from inside the runtime under test: from greenhub's
//! main greenlet, or from tokio's `block_on` future (`current_thread`) or a
//! task spawned onto a worker (`multi_thread`), so the spawner itself is a
//! task of the runtime in every case. Building the runtime is not timed.
//!
//! One criterion iteration is **one task**: for `iters` iterations the
//! routine runs `ceil(iters / N)` whole batches and reports their time per
//! task times `iters` (so every batch really has `N` tasks, and criterion's
//! iteration planning stays right). The times criterion prints are therefore
//! **nanoseconds per task** (spawn + run + join); lower is better.
//!
//! Benchmarks (group `spawn_join`):
//!
//! - `greenhub/single_threaded`: `Builder::single_threaded()`.
//! - `greenhub/mn_2hubs`: M:N, `Builder::new().hubs(2)`; the idle hub steals
//!   unstarted greenlets, so tasks run on both hubs.
//! - `tokio/current_thread`: `tokio::spawn` + `.await` on the `JoinHandle`.
//! - `tokio/multi_thread_2`: the same on a 2-worker `multi_thread` runtime.
//!
//! Target (from the issue): `greenhub/single_threaded` faster per task than
//! `tokio/current_thread`.
//!
//! Caveat when reading the figures: with glibc's malloc, a large share of
//! every runtime's per-task time here is page faults, because each batch
//! allocates ~`N` task blocks, frees them all, and malloc trims the freed heap
//! before the next batch faults it in again. Both runtimes pay it; running
//! with `GLIBC_TUNABLES=glibc.malloc.trim_threshold=4000000000` shows the
//! figures without it.
//!
//! Run with `CARGO_TARGET_DIR=target/bench cargo bench --bench spawn`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};

/// Tasks per batch.
const N: u64 = 100_000;
/// What a correct batch sums to.
const SUM: u64 = N * (N - 1) / 2;

/// Runs as many whole batches as `iters` tasks need, with `batch` timing one
/// batch; returns the measured time per task times `iters`.
fn per_task(iters: u64, mut batch: impl FnMut() -> Duration) -> Duration {
    let batches = iters.div_ceil(N).max(1);
    let mut total = Duration::ZERO;
    for _ in 0..batches {
        total += batch();
    }
    let tasks = u128::from(batches * N);
    let nanos = total.as_nanos() * u128::from(iters) / tasks;
    Duration::from_nanos(u64::try_from(nanos).expect("duration overflow"))
}

/// One greenhub batch, timed inside the runtime's main greenlet.
fn greenhub_batch(rt: &greenhub::Runtime) -> Duration {
    rt.block_on(|| {
        let start = Instant::now();
        let handles: Vec<_> = (0..N)
            .map(|i| greenhub::spawn(move || black_box(i)))
            .collect();
        let sum: u64 = handles
            .into_iter()
            .map(|h| h.join().expect("greenlet failed"))
            .sum();
        let elapsed = start.elapsed();
        assert_eq!(sum, SUM, "wrong sum of greenlet results");
        elapsed
    })
}

/// One tokio batch, timed inside the runtime: spawns, awaits and checks.
async fn tokio_batch() -> Duration {
    let start = Instant::now();
    let handles: Vec<_> = (0..N)
        .map(|i| tokio::spawn(async move { black_box(i) }))
        .collect();
    let mut sum = 0u64;
    for h in handles {
        sum += h.await.expect("tokio task failed");
    }
    let elapsed = start.elapsed();
    assert_eq!(sum, SUM, "wrong sum of tokio task results");
    elapsed
}

fn spawn_join(c: &mut Criterion) {
    let mut group = c.benchmark_group("spawn_join");

    let single = greenhub::Builder::new()
        .single_threaded()
        .build()
        .expect("single-threaded runtime");
    group.bench_function("greenhub/single_threaded", |b| {
        b.iter_custom(|iters| per_task(iters, || greenhub_batch(&single)))
    });
    drop(single);

    let mn = greenhub::Builder::new()
        .hubs(2)
        .build()
        .expect("M:N runtime");
    group.bench_function("greenhub/mn_2hubs", |b| {
        b.iter_custom(|iters| per_task(iters, || greenhub_batch(&mn)))
    });
    drop(mn);

    let current = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio current_thread runtime");
    group.bench_function("tokio/current_thread", |b| {
        b.iter_custom(|iters| per_task(iters, || current.block_on(tokio_batch())))
    });
    drop(current);

    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("tokio multi_thread runtime");
    group.bench_function("tokio/multi_thread_2", |b| {
        b.iter_custom(|iters| {
            per_task(iters, || {
                // Spawned so that the spawner runs on a worker, like
                // greenhub's main greenlet runs on a hub.
                multi
                    .block_on(multi.spawn(tokio_batch()))
                    .expect("tokio driver task failed")
            })
        })
    });
    drop(multi);

    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = spawn_join
}
criterion_main!(benches);
