//! Blocking offload: run a blocking call on a pool thread and park only the
//! calling greenlet until it returns (gevent's `threadpool`, tokio's
//! `spawn_blocking`).
//!
//! Each runtime has one bounded pool (`src/offload.rs`), sized with
//! [`Builder::max_blocking_threads`](crate::Builder::max_blocking_threads)
//! and [`Builder::blocking_keep_alive`](crate::Builder::blocking_keep_alive).
//! [`unblock`] hands the closure to it and waits for the result on a
//! rendezvous channel, so the wait is an ordinary greenhub blocking call: it
//! parks the greenlet, honours [`timeout`](crate::timeout) and kills.

use std::panic::{self, AssertUnwindSafe};

use crate::hub::context;

/// Runs `f` on the runtime's blocking pool and returns its value; the
/// calling greenlet is parked meanwhile, so the other greenlets of its hub
/// keep running. Use it for anything that blocks an OS thread: file IO,
/// `std::net` calls, CPU-heavy work, C libraries.
///
/// - A panic in `f` is raised again in the caller, with its payload.
/// - Off a greenlet (on a plain thread) `f` simply runs on the calling
///   thread, which may block.
/// - If the caller is killed or its [`timeout`](crate::timeout) expires
///   while it waits, it unwinds at once; `f` itself cannot be interrupted and
///   runs to completion on its pool thread, and its value is dropped there.
/// - At most `max_blocking_threads` calls run at once per runtime; the
///   others queue in FIFO order.
///
/// # Panics
///
/// If the runtime is shutting down (no more offloaded work is accepted) or
/// no pool thread can be started at all; the message says which.
///
/// ```
/// use std::time::Duration;
///
/// greenhub::run(|| {
///     let ticker = greenhub::spawn(|| {
///         for _ in 0..5 {
///             greenhub::sleep(Duration::from_millis(2));
///         }
///     });
///     // A blocking std call, off the hub: the ticker keeps ticking.
///     let n = greenhub::blocking::unblock(|| {
///         std::thread::sleep(Duration::from_millis(30));
///         std::fs::read_dir(".").map(|d| d.count()).unwrap_or(0)
///     });
///     assert!(n > 0);
///     assert!(ticker.is_finished());
/// });
/// ```
pub fn unblock<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let Some(hub) = context::hub() else {
        return f();
    };
    let pool = hub.shared.blocking.clone();
    let (tx, rx) = crate::channel::bounded(1);
    let job = Box::new(move || {
        let outcome = panic::catch_unwind(AssertUnwindSafe(f));
        // The caller may be gone (killed, timed out): then the value is
        // dropped here, on the pool thread.
        let _ = tx.send(outcome);
    });
    if let Err(e) = pool.submit(job) {
        panic!("greenhub::blocking::unblock: {e}");
    }
    match rx.recv() {
        Ok(Ok(value)) => value,
        Ok(Err(payload)) => panic::resume_unwind(payload),
        Err(_) => unreachable!("greenhub: the blocking pool dropped a job"),
    }
}
