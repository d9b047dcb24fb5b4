//! One raw-greenlet `switch` round trip (main to a child and back, as in
//! greenlet's `chain` benchmark), next to a bare corosensei resume/suspend
//! pair (the floor: one context switch each way) and a `Generator` step.
//!
//! `cargo bench --bench raw_switch`. Issue target: the round trip within 3x
//! of the bare corosensei pair.

use std::hint::black_box;
use std::time::Duration;

use corosensei::Coroutine;
use criterion::{Criterion, criterion_group, criterion_main};
use greenhub::raw::{Generator, RawGreenlet};

fn raw_switch(c: &mut Criterion) {
    let mut group = c.benchmark_group("raw_switch");

    let mut bare: Coroutine<u64, u64, ()> = Coroutine::new(|yielder, mut x: u64| {
        loop {
            x = yielder.suspend(x + 1);
        }
    });
    group.bench_function("corosensei/resume_suspend", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i = bare.resume(black_box(i)).as_yield().unwrap();
        })
    });

    let child = RawGreenlet::new(|mut x: u64| {
        let main = RawGreenlet::<u64>::current().parent().unwrap();
        loop {
            x = main.switch(x + 1).unwrap();
        }
    });
    group.bench_function("greenhub/raw_round_trip", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i = child.switch(black_box(i)).unwrap();
        })
    });

    let mut numbers = Generator::<u64, ()>::new(|co| {
        let mut i = 0;
        loop {
            co.yield_(i);
            i += 1;
        }
    });
    group.bench_function("greenhub/generator_next", |b| {
        b.iter(|| black_box(numbers.next()))
    });

    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = raw_switch
}
criterion_main!(benches);
