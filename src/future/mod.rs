//! Bridges to async Rust, both ways.
//!
//! **A greenlet waits for a future**: [`block_on`] polls a future on the
//! calling greenlet and, between polls, parks only that greenlet (its hub
//! runs the others); the future's [`Waker`] makes it poll again, from any
//! thread. Off a greenlet it blocks the calling thread, like every greenhub
//! blocking call. A kill or an expired [`timeout`](crate::timeout) ends the
//! wait the usual way: `block_on` unwinds, and the future is dropped right
//! there, on the greenlet (and thread) that polled it.
//!
//! **Async code waits for a greenlet**: a [`JoinHandle`](crate::JoinHandle)
//! is a `Future<Output = Result<T, JoinError>>`, awaitable from any executor.
//! From a task of another runtime, spawn with
//! [`Handle::spawn`](crate::Handle::spawn) (one call, from any thread) and
//! await the handle: that is how a tokio service moves its blocking calls
//! (sync database drivers, `patch`ed std sockets) from `spawn_blocking`
//! threads onto greenlets.
//!
//! ```
//! let rt = greenhub::Runtime::new().unwrap();
//! // Async code awaiting a greenlet ...
//! let h = rt.handle().spawn(|| {
//!     // ... which awaits a future itself.
//!     greenhub::future::block_on(async { 20 + 1 })
//! });
//! assert_eq!(greenhub::future::block_on(h).unwrap(), 21);
//! ```
//!
//! # Futures that need tokio
//!
//! Futures built on tokio (its timers, its sockets, and everything on top:
//! `reqwest`, `hyper`, `sqlx`, `tonic`) need tokio's reactor and timer
//! driver, and find them through a thread-local "current runtime" context.
//! With the cargo feature `tokio`, [`block_on`] provides both: it enters a
//! tokio runtime's context around each poll of the future (and around its
//! drop), never across a greenlet switch, since another greenlet of the hub
//! runs on the same thread meanwhile. The runtime is started lazily, on
//! first use, once per process (see [`tokio_handle`] for why, what it costs
//! and how to size it, and [`set_tokio_handle`] to use your own instead).
//! Create tokio objects inside the future you pass (`block_on(async {
//! tokio::time::sleep(d).await })`), since most of them look for the
//! context when they are created.
//!
//! # Limits
//!
//! - A poll must not block: inside `poll` (and so in the synchronous parts
//!   of an `async` block), a greenhub call that would switch greenlets panics
//!   (as in [`no_switch`]), since the tokio context is
//!   entered then. Await futures there instead, or call greenhub outside the
//!   `block_on`.
//! - The future need not be `Send` (it stays on the greenlet's stack and
//!   thread); but `tokio::spawn` inside it needs `Send` futures, as always.
//! - Without the `tokio` feature, tokio-based futures panic with tokio's "no
//!   reactor running" message; any other future (channels of
//!   `futures`/`async-channel`, a `JoinHandle`, your own) works.
//!
//! [`Waker`]: std::task::Waker

use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use crate::greenlet::no_switch;
use crate::greenlet::runinfo::{WaitKind, WaitOn};
use crate::greenlet::wait::{Wake as Woke, park_until};
use crate::greenlet::waiter::Waiter;

#[cfg(all(feature = "tokio", not(loom)))]
mod reactor;
#[cfg(all(feature = "tokio", not(loom)))]
pub use reactor::{set_tokio_handle, tokio_handle};

/// Runs `fut` to completion on the calling greenlet and returns its output.
///
/// Between polls only the greenlet is parked; whichever thread calls the
/// future's waker (a tokio worker, another greenlet, a plain thread) makes
/// its hub resume it for the next poll. Off a greenlet the calling thread
/// blocks between polls.
///
/// If the greenlet is killed, or a [`timeout`](crate::timeout) around the
/// call expires, while the future is pending, `block_on` unwinds like any
/// other blocking call and the future is dropped on the way, on this
/// greenlet. A panic inside the future propagates out of `block_on` like any
/// panic (and a greenlet's [`join`](crate::JoinHandle::join) reports it).
///
/// # Panics
///
/// If the future's `poll` tries to block the greenlet (see the [module
/// docs](self)).
///
/// ```
/// use std::time::Duration;
///
/// greenhub::run(|| {
///     // A oneshot from another greenlet: a future built on greenhub itself.
///     let worker = greenhub::spawn(|| {
///         greenhub::sleep(Duration::from_millis(5));
///         "done"
///     });
///     let out = greenhub::future::block_on(async move { worker.await.unwrap() });
///     assert_eq!(out, "done");
///
///     // A future that never completes, bounded by a greenhub timeout.
///     let r = greenhub::timeout(Duration::from_millis(5), || {
///         greenhub::future::block_on(std::future::pending::<()>())
///     });
///     assert!(r.is_err());
/// });
/// ```
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let waker = Waker::from(Arc::new(WakeWaiter(Waiter::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(InContext::new(fut));
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        // A wake-up during the poll left a token: the park returns at once.
        match park_until(None, WaitOn::new(WaitKind::Future, 0)) {
            Woke::Woken | Woke::TimedOut => {}
            // Unwinding drops `fut` here, on this greenlet.
            Woke::Interrupted(i) => i.raise(),
        }
    }
}

/// The waker `block_on` hands to its future: it wakes the greenlet (or
/// thread) that called `block_on`.
///
/// It holds a [`Waiter`], i.e. a reference-counted handle to the greenlet's
/// control block (or a `Thread`), never a pointer into a stack, so it may be
/// kept and called after `block_on` returned or after the greenlet ended: a
/// wake-up of a greenlet that moved on to another wait is a spurious wake-up
/// (which every park tolerates), and one of a finished greenlet is ignored
/// (`State::wake` on `COMPLETE`).
struct WakeWaiter(Waiter);

impl Wake for WakeWaiter {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.clone_waiter().wake();
    }
}

/// A future polled and dropped with the tokio context entered (with the
/// `tokio` feature; a plain wrapper without it), and polled inside a
/// [`no_switch`] scope.
struct InContext<F> {
    fut: ManuallyDrop<F>,
}

impl<F> InContext<F> {
    fn new(fut: F) -> Self {
        InContext {
            fut: ManuallyDrop::new(fut),
        }
    }

    fn inner(self: Pin<&mut Self>) -> Pin<&mut F> {
        // SAFETY: structural pinning of `fut`: it is never moved out of
        // `self` (only dropped in place, in `Drop`), `InContext` has no
        // `Unpin` impl of its own beyond the auto trait (which requires
        // `F: Unpin`), and nothing else hands out `&mut F`.
        unsafe { self.map_unchecked_mut(|s| &mut *s.fut) }
    }
}

impl<F: Future> Future for InContext<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        no_switch(|| {
            #[cfg(all(feature = "tokio", not(loom)))]
            let _tokio = reactor::enter();
            self.inner().poll(cx)
        })
    }
}

impl<F> Drop for InContext<F> {
    fn drop(&mut self) {
        #[cfg(all(feature = "tokio", not(loom)))]
        let _tokio = reactor::enter();
        // SAFETY: dropped once, in place (the pinning contract), and never
        // used again.
        unsafe { ManuallyDrop::drop(&mut self.fut) }
    }
}
