//! Channel ping-pong: two green threads pass a counter back and forth over
//! a pair of channels of capacity 1.
//!
//! One criterion iteration is one **round trip** (A sends to B, B sends back
//! to A, each side receiving the other's message), so the times criterion
//! prints are nanoseconds per round trip; lower is better. Each round trip
//! includes two sends, two receives and two switches (each receiver parks
//! until the other side sends). The timed region runs inside the runtime
//! under test and covers spawning and joining the two tasks; criterion
//! sizes `iters` so that this is negligible. Every run checks the counter
//! made the full trip.
//!
//! Benchmarks (group `channel_pingpong`):
//!
//! - `greenhub/single_threaded`: `greenhub::channel::bounded(1)` both ways,
//!   both greenlets on the one hub of a single-threaded runtime;
//! - `greenhub/mn_local`: the same on a 2-hub M:N runtime, greenlets pinned
//!   to one hub with `spawn_local`;
//! - `tokio/current_thread`: the peer: `tokio::sync::mpsc::channel(1)` both
//!   ways, two tasks on a current-thread runtime.
//!
//! Target (from the issue): greenhub under half of tokio's round trip.
//!
//! Run with `cargo bench --bench channel`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};

fn greenhub_pingpong(rt: &greenhub::Runtime, local: bool, trips: u64) -> Duration {
    rt.block_on(move || {
        let (to_b, from_a) = greenhub::channel::bounded::<u64>(1);
        let (to_a, from_b) = greenhub::channel::bounded::<u64>(1);
        let start = Instant::now();
        let b = move || {
            for v in from_a.iter() {
                if to_a.send(v + 1).is_err() {
                    break;
                }
            }
        };
        let a = move || {
            let mut v = 0u64;
            for _ in 0..trips {
                to_b.send(v).unwrap();
                v = from_b.recv().unwrap();
            }
            black_box(v)
        };
        let (ha, hb) = if local {
            (greenhub::spawn_local(a), greenhub::spawn_local(b))
        } else {
            (greenhub::spawn(a), greenhub::spawn(b))
        };
        let v = ha.join().unwrap();
        hb.join().unwrap();
        let elapsed = start.elapsed();
        assert_eq!(v, trips, "lost a message");
        elapsed
    })
}

fn tokio_pingpong(rt: &tokio::runtime::Runtime, trips: u64) -> Duration {
    rt.block_on(async move {
        let (to_b, mut from_a) = tokio::sync::mpsc::channel::<u64>(1);
        let (to_a, mut from_b) = tokio::sync::mpsc::channel::<u64>(1);
        let start = Instant::now();
        let b = tokio::spawn(async move {
            while let Some(v) = from_a.recv().await {
                if to_a.send(v + 1).await.is_err() {
                    break;
                }
            }
        });
        let a = tokio::spawn(async move {
            let mut v = 0u64;
            for _ in 0..trips {
                to_b.send(v).await.unwrap();
                v = from_b.recv().await.unwrap();
            }
            black_box(v)
        });
        let v = a.await.unwrap();
        b.await.unwrap();
        let elapsed = start.elapsed();
        assert_eq!(v, trips, "lost a message");
        elapsed
    })
}

fn pingpong(c: &mut Criterion) {
    let mut group = c.benchmark_group("channel_pingpong");
    let single = greenhub::Builder::new().single_threaded().build().unwrap();
    group.bench_function("greenhub/single_threaded", |b| {
        b.iter_custom(|iters| greenhub_pingpong(&single, false, iters))
    });
    drop(single);
    let mn = greenhub::Builder::new().hubs(2).build().unwrap();
    group.bench_function("greenhub/mn_local", |b| {
        b.iter_custom(|iters| greenhub_pingpong(&mn, true, iters))
    });
    drop(mn);
    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    group.bench_function("tokio/current_thread", |b| {
        b.iter_custom(|iters| tokio_pingpong(&tokio_rt, iters))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = pingpong
}
criterion_main!(benches);
