//! A hub's inbox: greenlets woken by other threads, waiting for their hub.
//!
//! A started greenlet only ever runs on its own hub. When a thread other than
//! that hub wakes it, the greenlet is pushed here and the hub's doorbell is rung; the
//! hub moves the inbox into its ready queue when its ready queue runs dry and
//! every 61 ticks. A mutex-protected queue is enough: remote wake-ups are
//! already the slow path (they may end in a syscall), and the lock makes
//! "push unless the hub has shut down" exact, so no greenlet is ever stranded
//! in the inbox of a hub that has exited.

use std::collections::VecDeque;

use crate::hub::doorbell::Doorbell;
use crate::loom::{AtomicUsize, Mutex, Ordering::*};

pub struct Inbox<T> {
    inner: Mutex<Inner<T>>,
    /// Number of queued items, readable without the lock.
    len: AtomicUsize,
}

struct Inner<T> {
    queue: VecDeque<T>,
    closed: bool,
}

impl<T> Inbox<T> {
    pub fn new() -> Inbox<T> {
        Inbox {
            inner: Mutex::new(Inner {
                queue: VecDeque::new(),
                closed: false,
            }),
            len: AtomicUsize::new(0),
        }
    }

    /// Queues `item`, or gives it back if the hub has shut down.
    pub fn push(&self, item: T) -> Result<(), T> {
        let mut inner = self.inner.lock();
        if inner.closed {
            return Err(item);
        }
        inner.queue.push_back(item);
        self.len.store(inner.queue.len(), Release);
        Ok(())
    }

    /// Another thread hands `item` to the inbox's hub: queues it, then
    /// rings the hub's doorbell (`doorbell.rs`), running `wake` (the write to its poller's
    /// waker) if it is parked. The push comes first: the hub's doorbell
    /// orders it before the hub's next look at its inbox. Gives `item` back
    /// (and rings nobody) if the hub has shut down.
    #[inline]
    pub fn push_and_ring(
        &self,
        item: T,
        doorbell: &Doorbell,
        wake: impl FnOnce(),
    ) -> Result<(), T> {
        self.push(item)?;
        doorbell.ring_with(wake);
        Ok(())
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len.load(Acquire) == 0
    }

    /// Moves everything queued to the back of `dest`; returns how many.
    pub fn drain_into(&self, dest: &mut VecDeque<T>) -> usize {
        if self.is_empty() {
            return 0;
        }
        let mut inner = self.inner.lock();
        let n = inner.queue.len();
        debug_assert!(
            n > 0,
            "Inbox: len said non-empty but the queue is empty (drained by a thread other than its hub?)"
        );
        dest.extend(inner.queue.drain(..));
        self.len.store(0, Release);
        n
    }

    /// Refuses further pushes and returns what was still queued.
    pub fn close(&self) -> VecDeque<T> {
        let mut inner = self.inner.lock();
        inner.closed = true;
        self.len.store(0, Release);
        std::mem::take(&mut inner.queue)
    }
}
