//! The tokio runtime behind [`block_on`](super::block_on) (cargo feature
//! `tokio`): which one, when it starts, and entering its context around a
//! poll.

use std::sync::OnceLock;

use tokio::runtime::{EnterGuard, Handle, Runtime};

/// The environment variable that sizes the runtime greenhub starts.
const THREADS_VAR: &str = "GREENHUB_TOKIO_THREADS";

/// The handle every `block_on` enters: set by [`set_tokio_handle`], or that
/// of [`RUNTIME`].
static HANDLE: OnceLock<Handle> = OnceLock::new();

/// The runtime greenhub started itself, if it did. Never dropped: its worker
/// threads sit parked in the reactor until the process exits.
static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// The tokio runtime that [`block_on`](super::block_on) enters around each
/// poll, started on first use unless [`set_tokio_handle`] chose one.
///
/// # One per process
///
/// greenhub starts one tokio runtime per process, not one per greenhub
/// [`Runtime`](crate::Runtime): tokio objects are tied to the runtime that
/// created them (a `reqwest::Client`'s connection pool, a `TcpStream`, a
/// timer), and such objects are routinely kept in statics or shared between
/// threads and greenhub runtimes; a tokio runtime that died with one greenhub
/// runtime would break them all. It is never shut down: its threads hold no
/// user data between polls (the futures live on greenlet stacks and are
/// dropped there), so the process exit that ends them loses nothing.
///
/// # Cost and sizing
///
/// A multi-threaded tokio runtime with **one worker thread** by default: it
/// runs the reactor (epoll) and the timer wheel, and wakes greenlets when
/// their futures can progress; the futures themselves are polled on the
/// greenlets, not on that thread. One thread serves many thousands of
/// pending futures. Set the environment variable `GREENHUB_TOKIO_THREADS`
/// (a positive integer, read once at start) for more worker threads, e.g.
/// when futures also `tokio::spawn` work of their own. Tokio's
/// `spawn_blocking` pool (used by some crates, e.g. for DNS lookups) starts
/// its threads on demand.
///
/// # Panics
///
/// If the runtime cannot be started (its thread cannot be spawned), or
/// `GREENHUB_TOKIO_THREADS` is not a positive integer.
///
/// ```
/// greenhub::run(|| {
///     // Spawn a task of your own on the runtime greenhub uses ...
///     let task = greenhub::future::tokio_handle().spawn(async { 7 });
///     // ... and await it from a greenlet.
///     assert_eq!(greenhub::future::block_on(task).unwrap(), 7);
/// });
/// ```
pub fn tokio_handle() -> &'static Handle {
    HANDLE.get_or_init(|| RUNTIME.get_or_init(start).handle().clone())
}

/// Makes [`block_on`](super::block_on) use the tokio runtime of `handle`
/// (e.g. the application's own) instead of starting one. Must be called
/// before greenhub first needs one; returns `Err(handle)` if it already
/// has one.
///
/// The runtime must stay alive as long as greenlets await tokio futures,
/// and must be multi-threaded (or otherwise driven by a thread of its own):
/// its reactor has to run while the greenlets are parked.
///
/// ```no_run
/// let tokio_rt = tokio::runtime::Runtime::new().unwrap();
/// greenhub::future::set_tokio_handle(tokio_rt.handle().clone()).unwrap();
/// greenhub::run(|| {
///     greenhub::future::block_on(async {
///         tokio::time::sleep(std::time::Duration::from_millis(1)).await
///     });
/// });
/// ```
pub fn set_tokio_handle(handle: Handle) -> Result<(), Handle> {
    HANDLE.set(handle)
}

fn start() -> Runtime {
    let threads = match std::env::var(THREADS_VAR) {
        Err(_) => 1,
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => panic!("greenhub: {THREADS_VAR}={v:?}: expected a positive integer"),
        },
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("greenhub-tokio")
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("greenhub: could not start the tokio runtime: {e}"))
}

/// Enters the runtime's context until the guard drops. The guard is created
/// and dropped around one poll (or drop) of a future, with no greenlet
/// switch in between (the poll runs inside `no_switch`), so tokio's
/// thread-local context nests properly on a hub thread whose greenlets
/// interleave.
pub(super) fn enter() -> EnterGuard<'static> {
    tokio_handle().enter()
}
