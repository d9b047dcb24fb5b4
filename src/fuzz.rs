//! Crate internals exposed to the cargo-fuzz targets in `fuzz/` only
//! (`cfg(fuzzing)`, set by cargo-fuzz): the timer heap, a hub's stack pool
//! and the count of stacks that are out of the global allocator. Not part of
//! the API; production builds do not contain this module.

use std::io;
use std::time::Instant;

use crate::stack::{NUM_CLASSES, slab::ALLOCATOR};

/// A key of [`TimerHeap`], as the heap hands it out.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TimerKey(crate::time::heap::TimerKey);

/// The per-hub timer heap (`src/time/heap.rs`) with `u64` payloads.
#[derive(Default)]
pub struct TimerHeap(crate::time::heap::TimerHeap<u64>);

impl std::fmt::Debug for TimerHeap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TimerHeap")
    }
}

impl TimerHeap {
    /// Whether no live timer remains.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Inserts a timer.
    pub fn insert(&mut self, deadline: Instant, value: u64) -> TimerKey {
        TimerKey(self.0.insert(deadline, value))
    }

    /// Cancels a timer that has not fired; returns its value.
    pub fn cancel(&mut self, key: TimerKey) -> Option<u64> {
        self.0.cancel(key.0)
    }

    /// The earliest live deadline.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        self.0.next_deadline()
    }

    /// Pops the earliest timer due at `now`.
    pub fn pop_expired(&mut self, now: Instant) -> Option<u64> {
        self.0.pop_expired(now)
    }
}

/// One stack lent by a [`StackPool`]: its usable range.
pub struct Stack(crate::stack::Stack);

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Stack({:#x}..{:#x})", self.bottom(), self.top())
    }
}

impl Stack {
    /// Lowest usable address.
    pub fn bottom(&self) -> usize {
        self.0.bottom()
    }

    /// One past the highest usable address.
    pub fn top(&self) -> usize {
        self.0.top()
    }

    /// Bytes of guard region below [`Stack::bottom`].
    pub fn guard(&self) -> usize {
        crate::stack::guard_size()
    }

    /// The stack's size class.
    pub fn class(&self) -> usize {
        self.0.class()
    }
}

/// A hub's stack cache (`src/stack/pool.rs`) over the global allocator.
pub struct StackPool(crate::stack::StackPool);

impl std::fmt::Debug for StackPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StackPool")
    }
}

impl Default for StackPool {
    fn default() -> Self {
        StackPool(crate::stack::StackPool::new())
    }
}

impl StackPool {
    /// A stack with at least `size` usable bytes.
    pub fn alloc(&mut self, size: usize) -> io::Result<Stack> {
        self.0.alloc(size).map(Stack)
    }

    /// Gives a stack back.
    pub fn free(&mut self, stack: Stack) {
        self.0.free(stack.0)
    }

    /// Releases deep pages and flushes the overflow batch (as an idle hub).
    pub fn trim(&mut self) {
        self.0.trim()
    }
}

/// Stacks out of the global allocator (in hub caches or in use), all size
/// classes. Exact only while no runtime or pool is alive.
pub fn stacks_outstanding() -> usize {
    (0..NUM_CLASSES).map(|c| ALLOCATOR.outstanding(c)).sum()
}
