//! Graceful shutdown on SIGINT or SIGTERM.
//!
//! A small service: the main greenlet ticks every 100 ms while a few workers
//! do units of work. A signal handler for SIGINT and SIGTERM (gevent's
//! `signal_handler`) sets a stop [`Event`]; the main loop sees it, the
//! workers finish the unit they are doing and return, and the program exits
//! normally (destructors run, nothing is killed). Without a signal it stops
//! by itself when its time is up, so it also runs non-interactively.
//!
//! Run it with `cargo run --example signals` and press Ctrl-C (or
//! `kill -TERM <pid>` from another terminal) within two seconds;
//! `cargo run --example signals -- 10` runs for ten seconds. The test
//! `tests/examples_run.rs` runs [`run`] twice: once stopped by a SIGTERM it
//! sends to itself, once by its time limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use greenhub::signal::{self, SIGINT, SIGTERM, SignalHandler};
use greenhub::sync::Event;

/// The number of workers.
pub const WORKERS: usize = 3;

/// The main loop's tick.
pub const TICK: Duration = Duration::from_millis(100);

/// Where the example's lines go.
pub type Emit = Arc<dyn Fn(&str) + Send + Sync>;

/// Why the program stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// This signal arrived.
    Signal(i32),
    /// The time limit passed first.
    TimeUp,
}

/// What a run did.
#[derive(Debug)]
pub struct Outcome {
    /// Why it stopped.
    pub stop: Stop,
    /// Ticks of the main loop.
    pub ticks: u32,
    /// Units of work each worker completed before returning.
    pub units: Vec<u64>,
}

/// Runs the service until SIGINT or SIGTERM arrives or `run_for` passes.
pub fn run(run_for: Duration, emit: Emit) -> Outcome {
    greenhub::run(move || {
        let stop = Arc::new(Event::new());
        let caught = Arc::new(AtomicI32::new(0));
        // Keep the handlers alive for the whole run: dropping one cancels it
        // (and gives the signal its default action back).
        let _handlers: Vec<SignalHandler> = [SIGINT, SIGTERM]
            .into_iter()
            .map(|sig| {
                let (stop, caught, emit) = (stop.clone(), caught.clone(), emit.clone());
                signal::signal_handler(sig, move || {
                    // Runs in a new greenlet: it may block, print, lock.
                    if caught
                        .compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok()
                    {
                        let name = signal::name(sig).unwrap_or("a signal");
                        emit(&format!("caught {name}: shutting down"));
                    }
                    stop.set();
                })
                .expect("install the signal handler")
            })
            .collect();
        emit(&format!(
            "running for {run_for:?} (pid {}): press Ctrl-C or send SIGTERM to stop",
            std::process::id()
        ));

        let workers: Vec<_> = (0..WORKERS)
            .map(|i| {
                let (stop, emit) = (stop.clone(), emit.clone());
                greenhub::spawn(move || {
                    let mut units = 0u64;
                    while !stop.is_set() {
                        greenhub::sleep(Duration::from_millis(15 + 5 * i as u64)); // a unit of work
                        units += 1;
                    }
                    emit(&format!("worker {i} stopped after {units} units"));
                    units
                })
            })
            .collect();

        let start = Instant::now();
        let mut ticks = 0;
        let why = loop {
            if stop.wait_timeout(TICK) {
                break Stop::Signal(caught.load(Ordering::SeqCst));
            }
            ticks += 1;
            emit(&format!("tick {ticks}"));
            if start.elapsed() >= run_for {
                emit("time is up: shutting down");
                break Stop::TimeUp;
            }
        };
        stop.set(); // tells the workers, whoever stopped us
        let units = workers
            .into_iter()
            .map(|w| w.join().expect("a worker failed"))
            .collect();
        emit("all workers stopped; bye");
        Outcome {
            stop: why,
            ticks,
            units,
        }
    })
}

#[allow(dead_code)]
fn main() {
    let secs = std::env::args()
        .nth(1)
        .map(|s| s.parse::<f64>().expect("usage: signals [SECONDS]"))
        .unwrap_or(2.0);
    let outcome = run(
        Duration::from_secs_f64(secs),
        Arc::new(|line| println!("{line}")),
    );
    println!("{outcome:?}");
}
