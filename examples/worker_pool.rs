//! The worker-pool pattern with greenhub's `Pool` (asyncio's "workers and a
//! queue" tutorial, gevent's `Pool`): 20 jobs with random sleeps on 3
//! workers take about a third of their summed time; `map` collects results in
//! input order; a `scope` lets greenlets borrow the caller's data; and a
//! `local!` counter shows each greenlet its own value.
//!
//! Run with `cargo run --example worker_pool`.

use std::cell::Cell;
use std::time::{Duration, Instant};

use greenhub::pool::Pool;

greenhub::local! {
    /// Jobs run by the current greenlet (each pool job is a fresh greenlet).
    static JOBS_HERE: Cell<u32> = Cell::new(0);
}

/// A small deterministic "random" sleep in 1..=20 ms.
fn sleep_ms(i: u64) -> u64 {
    (i.wrapping_mul(2654435761) >> 7) % 20 + 1
}

fn main() {
    greenhub::run(|| {
        // 1. Workers: a pool of 3, 20 jobs of random length.
        let pool = Pool::new(3);
        let sleeps: Vec<u64> = (0..20).map(sleep_ms).collect();
        let total: u64 = sleeps.iter().sum();
        let t = Instant::now();
        for (i, &ms) in sleeps.iter().enumerate() {
            // Waits here while 3 jobs run.
            pool.spawn(move || {
                greenhub::sleep(Duration::from_millis(ms));
                JOBS_HERE.with(|n| n.set(n.get() + 1));
                println!("job {i:2} slept {ms:2} ms");
            });
        }
        pool.join();
        let took = t.elapsed();
        println!(
            "3 workers: {} ms of sleeps took {:.0} ms",
            total,
            took.as_secs_f64() * 1000.0
        );

        // 2. map: results in input order, whatever order the jobs finish in.
        let lengths = pool.map(["a", "bbb", "cc"], |s: &str| {
            greenhub::sleep(Duration::from_millis(10 - s.len() as u64));
            s.len()
        });
        println!("map: {lengths:?}");

        // 3. scope: greenlets that borrow from this stack.
        let words = ["green", "threads", "scale"];
        let mut counts = vec![0; words.len()];
        greenhub::scope(|s| {
            for (w, c) in words.iter().zip(counts.iter_mut()) {
                s.spawn(move || *c = w.len());
            }
        });
        println!("scope: {counts:?}");
        println!("main ran {} job(s) itself", JOBS_HERE.with(Cell::get));
    });
}
