//! Coordination between greenlets (and plain threads): gevent's `event` and
//! `lock` modules, with std's names where std has the type.
//!
//! Every primitive here keeps its state behind one lock and blocks callers
//! through `waitlist`: a FIFO of wait nodes living on the waiters' own
//! stacks, woken in arrival order. A blocked greenlet parks (its hub runs
//! others); a blocked plain thread parks the thread. Every blocking call has
//! a timeout variant, is a cancellation point for [`timeout`](crate::timeout),
//! and unwinds a killed greenlet without leaving the primitive in a bad
//! state or losing what was handed to it.

pub(crate) mod waitlist;

mod broadcast;

mod async_result;
mod barrier;
mod condvar;
mod event;
mod mutex;
mod rwlock;
mod semaphore;
mod wait_group;

pub use async_result::{AsyncError, AsyncResult};
pub use barrier::{Barrier, BarrierWaitResult};
pub use condvar::{Condvar, WaitTimeoutResult};
pub use event::Event;
pub use mutex::{Mutex, MutexGuard};
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use semaphore::{ReleaseError, Semaphore, SemaphorePermit};
pub use wait_group::WaitGroup;
