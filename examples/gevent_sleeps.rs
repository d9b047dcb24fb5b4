//! gevent's tutorial, "Synchronous & Asynchronous Execution", second part:
//! ten tasks that each sleep a random short time. Run one after the other
//! they take the sum of their sleeps; spawned as greenlets they run
//! concurrently and take about as long as the longest one.
//!
//! Run it with `cargo run --example gevent_sleeps`. The test
//! `tests/examples_run.rs` runs [`run`] and checks that the concurrent run takes
//! far less than the sum of the sleeps.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Shortest and longest sleep of a task, in milliseconds.
pub const MIN_MS: u64 = 50;
/// See [`MIN_MS`].
pub const MAX_MS: u64 = 250;
/// Number of tasks.
pub const TASKS: usize = 10;

/// A tiny xorshift64* generator (no `rand` dependency needed for this).
pub struct XorShift(u64);

impl XorShift {
    /// A generator seeded with `seed` (any value; 0 is mapped to 1).
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed.max(1))
    }

    /// A generator seeded from the clock.
    pub fn from_time() -> XorShift {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x2545_F491);
        XorShift::new(nanos ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// The next pseudo-random number.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// What a run measured.
#[derive(Debug)]
pub struct Report {
    /// The sleep each task was given, by task number.
    pub sleeps: Vec<Duration>,
    /// How long each task actually slept, by task number.
    pub slept: Vec<Duration>,
    /// Task numbers in the order they finished.
    pub done_order: Vec<usize>,
    /// Wall time of the whole concurrent run.
    pub elapsed: Duration,
}

impl Report {
    /// The sum of the sleeps: what a synchronous run would take.
    pub fn sum(&self) -> Duration {
        self.sleeps.iter().sum()
    }

    /// The longest sleep: about what the concurrent run takes.
    pub fn max(&self) -> Duration {
        self.sleeps.iter().copied().max().unwrap_or_default()
    }
}

/// The Python original:
///
/// ```python
/// def task(pid):
///     gevent.sleep(random.randint(0, 2) * 0.001)
///     print('Task %s done' % pid)
///
/// threads = [gevent.spawn(task, i) for i in range(10)]
/// gevent.joinall(threads)
/// ```
///
/// Runs the ten tasks concurrently on a default (M:N) runtime; `emit`
/// receives the "Task N done" lines.
pub fn run(rng: &mut XorShift, emit: Arc<dyn Fn(&str) + Send + Sync>) -> Report {
    let sleeps: Vec<Duration> = (0..TASKS)
        .map(|_| Duration::from_millis(rng.range(MIN_MS, MAX_MS)))
        .collect();
    let order = Arc::new(Mutex::new(Vec::new()));
    let (sl, ord) = (sleeps.clone(), order.clone());
    let start = Instant::now();
    let slept = greenhub::run(move || {
        let tasks: Vec<_> = sl
            .into_iter()
            .enumerate()
            .map(|(pid, d)| {
                let (emit, ord) = (emit.clone(), ord.clone());
                greenhub::spawn(move || {
                    let t = Instant::now();
                    greenhub::sleep(d);
                    let slept = t.elapsed();
                    ord.lock().unwrap().push(pid);
                    emit(&format!("Task {pid} done"));
                    slept
                })
            })
            .collect();
        tasks
            .into_iter()
            .map(|t| t.join().expect("a task failed"))
            .collect()
    });
    let elapsed = start.elapsed();
    let done_order = std::mem::take(&mut *order.lock().unwrap());
    Report {
        sleeps,
        slept,
        done_order,
        elapsed,
    }
}

#[allow(dead_code)]
fn main() {
    let report = run(
        &mut XorShift::from_time(),
        Arc::new(|line| println!("{line}")),
    );
    println!(
        "10 tasks, sleeps summing to {:?} (longest {:?}), ran concurrently in {:?}",
        report.sum(),
        report.max(),
        report.elapsed
    );
}
