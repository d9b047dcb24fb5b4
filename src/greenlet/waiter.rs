//! Who to wake: a parked greenlet or a blocked OS thread.
//!
//! Every blocking operation in greenhub parks "the current waiter" and hands
//! a [`Waiter`] to whoever will end the wait. On a greenlet that is the
//! greenlet (woken through its state word and its hub); on a plain thread it
//! is the thread (woken with `Thread::unpark`). That is how every greenhub
//! primitive also works from ordinary threads.

use crate::greenlet::task::TaskRef;
use crate::loom::thread;

/// A handle that can end one park of a greenlet or a thread.
pub(crate) enum Waiter {
    Greenlet(TaskRef),
    Thread(thread::Thread),
}

/// Identifies a waiter, to tell whether a registered waiter is the caller.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WaiterKey {
    Greenlet(usize),
    Thread(std::thread::ThreadId),
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
                WaiterKey::Greenlet(std::sync::Arc::as_ptr(task) as *const () as usize)
            }
            Waiter::Thread(t) => WaiterKey::Thread(t.id()),
        }
    }

    /// Ends the waiter's current (or next) park.
    pub(crate) fn wake(self) {
        match self {
            Waiter::Greenlet(task) => {
                if task.header().state.wake() {
                    #[cfg(feature = "tracing")]
                    crate::inspect::trace::wake(task.header().id);
                    crate::hub::schedule(task);
                }
            }
            Waiter::Thread(t) => t.unpark(),
        }
    }
}
