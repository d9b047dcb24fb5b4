//! Who to wake: a parked greenlet or a blocked OS thread.
//!
//! Every blocking operation in greenhub parks "the current waiter" and hands
//! a [`Waiter`] to whoever will end the wait. On a greenlet that is the
//! greenlet (woken through its state word and its hub); on a plain thread it
//! is the thread (woken with `Thread::unpark`). That is how every greenhub
//! primitive also works from ordinary threads. A third kind, an async task's
//! `std::task::Waker`, is what a `JoinHandle` awaited as a future registers
//! in its join slot (`src/future/`).

use crate::greenlet::task::TaskRef;
use crate::loom::thread;

/// A handle that can end one park of a greenlet or a thread, or wake an
/// async task.
pub(crate) enum Waiter {
    Greenlet(TaskRef),
    Thread(thread::Thread),
    /// An async task awaiting a `JoinHandle` (see `future::join`).
    Async(std::task::Waker),
}

/// Identifies a waiter, to tell whether a registered waiter is the caller.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WaiterKey {
    Greenlet(usize),
    Thread(std::thread::ThreadId),
    /// An async task's `Waker`, by the addresses of its data and vtable
    /// (what `Waker::will_wake` compares).
    Async(usize, usize),
}

impl WaiterKey {
    /// The key of an async task's waker.
    pub(crate) fn of_waker(waker: &std::task::Waker) -> WaiterKey {
        WaiterKey::Async(
            waker.data() as usize,
            waker.vtable() as *const std::task::RawWakerVTable as usize,
        )
    }
}

impl Waiter {
    /// The caller: its greenlet if it runs on one, else its OS thread.
    pub(crate) fn current() -> Waiter {
        match crate::hub::context::current_task() {
            Some(task) => Waiter::Greenlet(task),
            None => Waiter::Thread(thread::current()),
        }
    }

    /// The key of [`Waiter::current`], without cloning anything.
    pub(crate) fn current_key() -> WaiterKey {
        match crate::hub::context::current_task_ptr() {
            Some(ptr) => WaiterKey::Greenlet(ptr),
            None => WaiterKey::Thread(std::thread::current().id()),
        }
    }

    /// The key of this waiter (see [`Waiter::current_key`]).
    #[cfg(not(loom))]
    pub(crate) fn key(&self) -> WaiterKey {
        match self {
            Waiter::Greenlet(task) => {
                WaiterKey::Greenlet(TaskRef::as_ptr(task) as *const () as usize)
            }
            Waiter::Thread(t) => WaiterKey::Thread(t.id()),
            Waiter::Async(w) => WaiterKey::of_waker(w),
        }
    }

    /// A second handle to the same waiter.
    pub(crate) fn clone_waiter(&self) -> Waiter {
        match self {
            Waiter::Greenlet(task) => Waiter::Greenlet(task.clone()),
            Waiter::Thread(t) => Waiter::Thread(t.clone()),
            Waiter::Async(w) => Waiter::Async(w.clone()),
        }
    }

    /// Ends the waiter's current (or next) park.
    pub(crate) fn wake(self) {
        match self {
            Waiter::Greenlet(task) => {
                if task.header().state.wake() {
                    #[cfg(feature = "tracing")]
                    crate::greenlet::tracing::wake(task.header().id);
                    crate::hub::schedule(task);
                }
            }
            Waiter::Thread(t) => t.unpark(),
            // The waker is an async runtime's code, run on whichever thread
            // ends the wait (a hub completing a greenlet): a panic in it must
            // not take that hub down, so it is caught and dropped.
            Waiter::Async(w) => {
                if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| w.wake()))
                {
                    crate::error::drop_payload_safely(p);
                }
            }
        }
    }
}
