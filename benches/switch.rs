//! Context-switch cost: a `yield_now` ping-pong between two green threads.
//!
//! Each benchmark runs two green threads that call `yield_now()` in a loop,
//! and counts one *switch* per `yield_now` call: the caller suspends, the
//! scheduler picks the other green thread and resumes it. One criterion
//! iteration is one switch (`iter_custom` runs `iters` yields in all, split
//! between the two), so the times criterion prints are **nanoseconds per
//! switch**; lower is better. The timed region starts before the two green
//! threads are spawned and ends after both are joined, from inside a green
//! thread of the runtime under test, so it includes two spawns and two joins;
//! criterion sizes `iters` to millions, which makes that overhead negligible.
//! Every run checks that each green thread yielded the expected number of
//! times.
//!
//! Benchmarks (group `switch`):
//!
//! - `greenhub/single_threaded`: `Builder::single_threaded()`; both greenlets
//!   on the one hub, so every yield switches to the other greenlet.
//! - `greenhub/mn_local`: M:N runtime with 2 hubs, both greenlets spawned
//!   with `spawn_local` so they stay on the spawning hub: the same one-hub
//!   ping-pong, paying M:N mode's scheduling overheads (the work-stealing
//!   queue is checked after every yield). This is the like-for-like figure
//!   against `may/1_worker`.
//! - `greenhub/mn_spawn`: M:N runtime with 2 hubs, both greenlets spawned
//!   with plain `spawn` from the main greenlet, which then joins. Where they
//!   run is up to the scheduler: usually the main greenlet's hub starts both
//!   before the idle hub (woken by the spawn) gets to steal one, and a started
//!   greenlet never moves, so this is normally the same one-hub ping-pong as
//!   `mn_local`. If the other hub does steal one, each greenlet yields to
//!   *itself* on its own hub, in parallel with the other, and the figure for
//!   that run is wall time per yield across two hubs (a throughput, not a
//!   switch latency). The bench counts such runs and prints
//!   `mn_spawn: greenlets on different hubs in K of R runs` on stderr after
//!   the benchmark, so the figure can be read accordingly.
//! - `may/1_worker`: the peer. `may` coroutines calling
//!   `may::coroutine::yield_now()`, with may configured to one worker thread
//!   (`may::config().set_workers(1)`) so both coroutines share it; timed from
//!   inside a may coroutine, like greenhub's from inside the main greenlet.
//!
//! Target (from the issue): `greenhub/single_threaded` and `greenhub/mn_local`
//! under half of `may/1_worker`'s time per switch.
//!
//! Run with `CARGO_TARGET_DIR=target/bench cargo bench --bench switch`.

use std::hint::black_box;
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};

/// How the two greenlets of a ping-pong are spawned.
#[derive(Clone, Copy)]
enum Spawn {
    /// `greenhub::spawn`.
    Plain,
    /// `greenhub::spawn_local`: stays on the spawning hub.
    Local,
}

/// One greenlet's half of the ping-pong: `n` yields; returns how many it made
/// and the hub thread it ran on.
fn greenhub_yielder(n: u64) -> (u64, ThreadId) {
    let mut done = 0u64;
    for _ in 0..black_box(n) {
        greenhub::yield_now();
        done += 1;
    }
    (black_box(done), thread::current().id())
}

/// Runs `switches` yields split over two greenlets on `rt`; returns the time
/// measured inside the runtime's main greenlet, and whether the two greenlets
/// ran on different hubs.
fn greenhub_pingpong(rt: &greenhub::Runtime, how: Spawn, switches: u64) -> (Duration, bool) {
    rt.block_on(move || {
        let na = switches.div_ceil(2);
        let nb = switches / 2;
        let start = Instant::now();
        let (a, b) = match how {
            Spawn::Plain => (
                greenhub::spawn(move || greenhub_yielder(na)),
                greenhub::spawn(move || greenhub_yielder(nb)),
            ),
            Spawn::Local => (
                greenhub::spawn_local(move || greenhub_yielder(na)),
                greenhub::spawn_local(move || greenhub_yielder(nb)),
            ),
        };
        let (done_a, hub_a) = a.join().expect("yielder a failed");
        let (done_b, hub_b) = b.join().expect("yielder b failed");
        let elapsed = start.elapsed();
        assert_eq!((done_a, done_b), (na, nb), "greenlets lost yields");
        (elapsed, hub_a != hub_b)
    })
}

/// One may coroutine's half of the ping-pong.
fn may_yielder(n: u64) -> u64 {
    let mut done = 0u64;
    for _ in 0..black_box(n) {
        may::coroutine::yield_now();
        done += 1;
    }
    black_box(done)
}

/// The may twin of [`greenhub_pingpong`], timed inside a may coroutine.
fn may_pingpong(switches: u64) -> Duration {
    let outer = may::go!(move || {
        let na = switches.div_ceil(2);
        let nb = switches / 2;
        let start = Instant::now();
        let a = may::go!(move || may_yielder(na));
        let b = may::go!(move || may_yielder(nb));
        let done_a = a.join().expect("may yielder a failed");
        let done_b = b.join().expect("may yielder b failed");
        let elapsed = start.elapsed();
        assert_eq!((done_a, done_b), (na, nb), "coroutines lost yields");
        elapsed
    });
    outer.join().expect("may driver coroutine failed")
}

fn switch(c: &mut Criterion) {
    let mut group = c.benchmark_group("switch");

    let single = greenhub::Builder::new()
        .single_threaded()
        .build()
        .expect("single-threaded runtime");
    group.bench_function("greenhub/single_threaded", |b| {
        b.iter_custom(|iters| {
            let (elapsed, split) = greenhub_pingpong(&single, Spawn::Plain, iters);
            assert!(!split, "one hub, yet two threads");
            elapsed
        })
    });
    drop(single);

    let mn = greenhub::Builder::new()
        .hubs(2)
        .build()
        .expect("M:N runtime");
    group.bench_function("greenhub/mn_local", |b| {
        b.iter_custom(|iters| {
            let (elapsed, split) = greenhub_pingpong(&mn, Spawn::Local, iters);
            assert!(!split, "spawn_local greenlets left their hub");
            elapsed
        })
    });
    let (mut runs, mut splits) = (0u64, 0u64);
    group.bench_function("greenhub/mn_spawn", |b| {
        b.iter_custom(|iters| {
            let (elapsed, split) = greenhub_pingpong(&mn, Spawn::Plain, iters);
            runs += 1;
            splits += u64::from(split);
            elapsed
        })
    });
    if runs > 0 {
        eprintln!("mn_spawn: greenlets on different hubs in {splits} of {runs} runs");
    }
    drop(mn);

    // Must happen before may's scheduler starts (its first spawn).
    may::config().set_workers(1);
    assert_eq!(may::config().get_workers(), 1);
    group.bench_function("may/1_worker", |b| b.iter_custom(may_pingpong));

    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = switch
}
criterion_main!(benches);
