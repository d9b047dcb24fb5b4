//! Each hub's hot cache of stacks, in front of the global slab allocator.
//!
//! A greenlet that finishes gives its stack back to its hub, which keeps up to
//! [`HOT_PER_CLASS`] of them per size class for the next greenlet: no lock, no
//! syscall, and the top pages are already resident and in cache. That is what
//! makes spawn+join cheap. Stacks beyond the cache go back to the global
//! allocator with all their pages released.
//!
//! Stacks that do not fit in the cache are released in batches
//! ([`RELEASE_BATCH`]): sorted by address, neighbouring stacks of a slab are
//! released with one `madvise` over the whole run (guard regions survive
//! `MADV_DONTNEED`), and returned to the allocator under one lock. When many
//! greenlets finish at once this turns one syscall per greenlet into a few.
//! Until that release a stack in the batch keeps its pages, so a hub whose
//! cache runs dry takes one back from there before asking the allocator,
//! whose stacks have no page resident: a hub that finishes greenlets and
//! starts new ones in waves would otherwise give back pages and fault fresh
//! ones in a moment later.
//!
//! Cached stacks may hold pages a deep call once touched. Releasing them on
//! every return would cost a syscall per greenlet, so the hub does it once it
//! has stayed idle for a while ([`StackPool::trim`], called by the hub after
//! [`TRIM_AFTER`] without work): every stack returned since the last trim
//! gives back everything below its top [`KEEP_RESIDENT`] bytes. The cache is a
//! LIFO whose first `clean` entries are trimmed; entries above are "dirty".
//!
//! Why not trim each time the hub goes idle: in M:N mode hubs go idle and
//! wake up again thousands of times a second (one hub wakes greenlets, the
//! other runs them), and every `madvise(MADV_DONTNEED)` of a multi-threaded
//! process flushes the TLBs of the other cores with an IPI. Trimming on every
//! idle made waking many parked greenlets across two hubs several times
//! slower (`benches/idle.rs`), almost all of it in those IPIs.

use std::io;

use super::slab::ALLOCATOR;
use super::{NUM_CLASSES, Stack, class_for, guard_size, release_range};

/// Stacks kept per size class and hub.
pub(crate) const HOT_PER_CLASS: usize = 64;
/// Bytes at the top of a cached stack that stay resident after a trim.
pub(crate) const KEEP_RESIDENT: usize = 16 << 10;
/// Stacks beyond the cache are released this many at a time.
pub(crate) const RELEASE_BATCH: usize = 256;
/// Stacks a hub takes from the allocator at once when its cache is empty:
/// neighbours in a slab, so that when they overflow the cache later their
/// pages go back with one `madvise` per run. Without it two hubs allocating
/// at once interleave slots and every release is a syscall of its own (with
/// a TLB-flush IPI to the other core), which made waking and joining parked
/// greenlets across two hubs several times slower (`benches/idle.rs`).
pub(crate) const REFILL_BATCH: usize = 32;
/// How long a hub stays idle before it trims its cache.
pub(crate) const TRIM_AFTER: std::time::Duration = std::time::Duration::from_millis(10);

#[derive(Default)]
struct ClassCache {
    hot: Vec<Stack>,
    /// `hot[..clean]` have been trimmed since they were last returned.
    clean: usize,
}

/// A hub's stack cache.
pub(crate) struct StackPool {
    classes: [ClassCache; NUM_CLASSES],
    /// Stacks waiting to be released and returned to the allocator.
    overflow: Vec<Stack>,
}

impl StackPool {
    pub(crate) fn new() -> StackPool {
        StackPool {
            classes: std::array::from_fn(|_| ClassCache::default()),
            overflow: Vec::new(),
        }
    }

    /// A stack with at least `size` usable bytes.
    #[inline]
    pub(crate) fn alloc(&mut self, size: usize) -> io::Result<Stack> {
        let class = class_for(size)?;
        let cache = &mut self.classes[class];
        match cache.hot.pop() {
            Some(stack) => {
                cache.clean = cache.clean.min(cache.hot.len());
                Ok(stack)
            }
            None => self.refill(class),
        }
    }

    /// [`StackPool::alloc`] with nothing cached for `class`.
    #[cold]
    fn refill(&mut self, class: usize) -> io::Result<Stack> {
        // A stack waiting in the overflow batch still has its pages: take it
        // back rather than release it and then fault a released one in.
        if let Some(i) = self.overflow.iter().rposition(|s| s.class() == class) {
            return Ok(self.overflow.swap_remove(i));
        }
        // No page of these is resident; each faults in its top page on first
        // use. Populating the batch's top pages ahead with one
        // `MADV_POPULATE_WRITE` call saves those traps but costs the kernel
        // more than they do (benches/compare/PROFILE.md), so it is not done.
        let mut batch = ALLOCATOR.alloc_batch(class, REFILL_BATCH)?;
        // Popped from the end: the lowest address first.
        let first = batch.remove(0);
        batch.reverse();
        let cache = &mut self.classes[class];
        cache.hot.extend(batch);
        // Fresh from the allocator: nothing resident to trim.
        cache.clean = cache.hot.len();
        Ok(first)
    }

    /// Takes back a stack nobody runs on any more.
    #[inline]
    pub(crate) fn free(&mut self, stack: Stack) {
        let cache = &mut self.classes[stack.class()];
        if cache.hot.len() < HOT_PER_CLASS {
            cache.hot.push(stack);
        } else {
            self.overflow.push(stack);
            if self.overflow.len() >= RELEASE_BATCH {
                self.flush();
            }
        }
    }

    /// Releases the pages of the overflow stacks, coalescing neighbours, and
    /// gives them back to the allocator.
    fn flush(&mut self) {
        if self.overflow.is_empty() {
            return;
        }
        let mut stacks = std::mem::take(&mut self.overflow);
        stacks.sort_unstable_by_key(|s| s.top());
        let mut run_start = stacks[0].bottom();
        let mut run_end = stacks[0].top();
        for s in &stacks[1..] {
            // Same class and adjacent in a slab: the next stack's guard
            // starts where this one's top is.
            if s.bottom() - guard_size() == run_end {
                run_end = s.top();
            } else {
                release_range(run_start, run_end);
                run_start = s.bottom();
                run_end = s.top();
            }
        }
        release_range(run_start, run_end);
        ALLOCATOR.free_released(stacks);
    }

    /// Whether [`StackPool::trim`] has anything to do.
    /// How many stacks the cache holds.
    pub(crate) fn cached(&self) -> usize {
        self.classes.iter().map(|c| c.hot.len()).sum::<usize>() + self.overflow.len()
    }

    #[inline]
    pub(crate) fn needs_trim(&self) -> bool {
        !self.overflow.is_empty() || self.classes.iter().any(|c| c.clean < c.hot.len())
    }

    /// Releases the deep pages of stacks returned since the last trim, and
    /// flushes the overflow batch.
    pub(crate) fn trim(&mut self) {
        self.flush();
        for cache in &mut self.classes {
            for stack in &cache.hot[cache.clean..] {
                stack.release(KEEP_RESIDENT);
            }
            cache.clean = cache.hot.len();
        }
    }
}

impl Drop for StackPool {
    fn drop(&mut self) {
        self.flush();
        // Cached stacks release themselves when dropped.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::DEFAULT_STACK_SIZE;

    fn mark(s: &Stack) {
        // SAFETY: the test owns the stack (lent to no coroutine); its top
        // word is usable read-write memory.
        unsafe { ((s.top() - 8) as *mut usize).write_volatile(s.top()) };
    }

    fn marked(s: &Stack) -> bool {
        // SAFETY: as in `mark`; a released page reads as zero.
        unsafe { ((s.top() - 8) as *const usize).read_volatile() == s.top() }
    }

    /// Stacks that overflow the hot cache wait in a batch with their pages
    /// before release; a hub that needs stacks again takes those back
    /// rather than fresh ones from the allocator, which it would fault in.
    #[test]
    fn overflow_stacks_are_reused_before_release() {
        let mut pool = StackPool::new();
        let n = HOT_PER_CLASS + 10;
        assert!(n < RELEASE_BATCH);
        let stacks: Vec<Stack> = (0..n)
            .map(|_| pool.alloc(DEFAULT_STACK_SIZE).unwrap())
            .collect();
        stacks.iter().for_each(mark);
        for s in stacks {
            pool.free(s);
        }
        assert!(!pool.overflow.is_empty());
        // What the pool holds now: the hot cache (the stacks freed, and
        // neighbours from its refills never lent) and the overflow batch.
        let mut held: Vec<usize> = pool
            .classes
            .iter()
            .flat_map(|c| c.hot.iter())
            .chain(pool.overflow.iter())
            .map(|s| s.top())
            .collect();
        let again: Vec<Stack> = (0..held.len())
            .map(|_| pool.alloc(DEFAULT_STACK_SIZE).unwrap())
            .collect();
        let kept = again.iter().filter(|s| marked(s)).count();
        assert_eq!(kept, n, "stacks freed came back without their pages");
        let mut tops: Vec<usize> = again.iter().map(|s| s.top()).collect();
        held.sort_unstable();
        tops.sort_unstable();
        assert_eq!(tops, held);
        for s in again {
            pool.free(s);
        }
        // Trimming still releases what waits in the overflow batch.
        pool.trim();
        assert!(pool.overflow.is_empty());
    }
}
