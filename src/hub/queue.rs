//! The run queues that other hubs may take from: each hub's deque of
//! unstarted greenlets (its owner pops the newest, thieves take the oldest:
//! see `HubContext::pop_unstarted` for why), each hub's `incoming` queue and
//! the runtime's global injector.
//!
//! Normally these are `crossbeam-deque`'s `Worker`/`Stealer`/`Injector`. That
//! crate is not loom-instrumented, so under `--cfg loom` a mutex-protected
//! `VecDeque` with the same interface stands in: the loom models then explore
//! greenhub's use of the queues (who pops, who steals, each greenlet runs
//! once), while the deque's own correctness stays crossbeam's job.
//!
//! Only greenlets that have never run are put here (docs/ARCHITECTURE.md, 'The
//! soundness rule'): moving them to another thread moves nothing but their
//! `Send` closure. The one exception is a started greenlet spawned with the
//! `unsafe` migration opt-in, queued here by the hub that woke it or ran it
//! (`hub::migrate`).

/// At most this many greenlets move in one steal.
pub const STEAL_LIMIT: usize = 32;

#[cfg(not(loom))]
mod imp {
    use super::STEAL_LIMIT;
    use crossbeam_deque::Steal;

    /// A hub's own deque: its hub pushes and pops the newest end (LIFO),
    /// and takes the oldest through its own stealer; other hubs steal the
    /// oldest end.
    pub struct StealQueue<T>(crossbeam_deque::Worker<T>, crossbeam_deque::Stealer<T>);
    /// Another hub's handle on a `StealQueue`.
    pub struct Stealer<T>(crossbeam_deque::Stealer<T>);
    /// The global queue for work submitted from outside the hubs.
    pub struct Injector<T>(crossbeam_deque::Injector<T>);

    impl<T> StealQueue<T> {
        pub fn new() -> Self {
            let worker = crossbeam_deque::Worker::new_lifo();
            let oldest = worker.stealer();
            StealQueue(worker, oldest)
        }
        pub fn stealer(&self) -> Stealer<T> {
            Stealer(self.0.stealer())
        }
        #[inline]
        pub fn push(&self, item: T) {
            self.0.push(item)
        }
        /// The newest greenlet.
        #[inline]
        pub fn pop(&self) -> Option<T> {
            self.0.pop()
        }
        /// The oldest greenlet.
        pub fn pop_oldest(&self) -> Option<T> {
            retry(|| self.1.steal())
        }
        pub fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
        pub fn len(&self) -> usize {
            self.0.len()
        }
    }

    fn retry<T>(mut f: impl FnMut() -> Steal<T>) -> Option<T> {
        loop {
            match f() {
                Steal::Success(item) => return Some(item),
                Steal::Empty => return None,
                Steal::Retry => std::hint::spin_loop(),
            }
        }
    }

    impl<T> Stealer<T> {
        /// Moves up to half of the victim's greenlets (at most
        /// `STEAL_LIMIT`) into `dest` and returns one of them.
        pub fn steal_into(&self, dest: &StealQueue<T>) -> Option<T> {
            retry(|| self.0.steal_batch_with_limit_and_pop(&dest.0, STEAL_LIMIT))
        }
        pub fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
    }

    impl<T> Injector<T> {
        pub fn new() -> Self {
            Injector(crossbeam_deque::Injector::new())
        }
        pub fn push(&self, item: T) {
            self.0.push(item)
        }
        pub fn pop(&self) -> Option<T> {
            retry(|| self.0.steal())
        }
        /// Moves a batch into `dest` and returns one greenlet.
        pub fn steal_into(&self, dest: &StealQueue<T>) -> Option<T> {
            retry(|| self.0.steal_batch_with_limit_and_pop(&dest.0, STEAL_LIMIT))
        }
        pub fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
        pub fn len(&self) -> usize {
            self.0.len()
        }
    }
}

#[cfg(loom)]
mod imp {
    use super::STEAL_LIMIT;
    use crate::loom::{AtomicUsize, Mutex, Ordering::*};
    use loom::sync::Arc;
    use std::collections::VecDeque;

    /// A locked deque plus its length, published after every change so that
    /// `is_empty` is lock-free like crossbeam's (a lock there would order
    /// the idle protocol's queue checks by itself and hide its fences).
    struct Queue<T> {
        items: Mutex<VecDeque<T>>,
        len: AtomicUsize,
    }

    impl<T> Queue<T> {
        fn new() -> Self {
            Queue {
                items: Mutex::new(VecDeque::new()),
                len: AtomicUsize::new(0),
            }
        }
        fn with<R>(&self, f: impl FnOnce(&mut VecDeque<T>) -> R) -> R {
            let mut items = self.items.lock();
            let r = f(&mut items);
            self.len.store(items.len(), Release);
            r
        }
        fn is_empty(&self) -> bool {
            self.len.load(Acquire) == 0
        }
    }

    pub struct StealQueue<T>(Arc<Queue<T>>);
    pub struct Stealer<T>(Arc<Queue<T>>);
    pub struct Injector<T>(Queue<T>);

    impl<T> StealQueue<T> {
        pub fn new() -> Self {
            StealQueue(Arc::new(Queue::new()))
        }
        pub fn stealer(&self) -> Stealer<T> {
            Stealer(self.0.clone())
        }
        pub fn push(&self, item: T) {
            self.0.with(|q| q.push_back(item))
        }
        pub fn pop(&self) -> Option<T> {
            self.0.with(|q| q.pop_back())
        }
        pub fn pop_oldest(&self) -> Option<T> {
            self.0.with(|q| q.pop_front())
        }
        pub fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
        pub fn len(&self) -> usize {
            self.0.with(|q| q.len())
        }
    }

    /// Takes one greenlet and up to half of the rest out of `src`, then
    /// (with `src` unlocked, so two hubs stealing from each other cannot
    /// deadlock) moves the batch into `dest`.
    fn take_half<T>(src: &Queue<T>, dest: &StealQueue<T>) -> Option<T> {
        let (first, batch) = src.with(|src| {
            let first = src.pop_front()?;
            let n = (src.len() / 2).min(STEAL_LIMIT - 1);
            let batch: Vec<T> = src.drain(..n).collect();
            Some((first, batch))
        })?;
        dest.0.with(|d| d.extend(batch));
        Some(first)
    }

    impl<T> Stealer<T> {
        pub fn steal_into(&self, dest: &StealQueue<T>) -> Option<T> {
            take_half(&self.0, dest)
        }
        pub fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
    }

    impl<T> Injector<T> {
        pub fn new() -> Self {
            Injector(Queue::new())
        }
        pub fn push(&self, item: T) {
            self.0.with(|q| q.push_back(item))
        }
        pub fn pop(&self) -> Option<T> {
            self.0.with(|q| q.pop_front())
        }
        pub fn steal_into(&self, dest: &StealQueue<T>) -> Option<T> {
            take_half(&self.0, dest)
        }
        pub fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
        pub fn len(&self) -> usize {
            self.0.with(|q| q.len())
        }
    }
}

pub use imp::*;
