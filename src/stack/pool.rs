//! Each hub's hot cache of stacks, in front of the global slab allocator.
//!
//! A greenlet that finishes gives its stack back to its hub, which keeps up to
//! [`HOT_PER_CLASS`] of them per size class for the next greenlet: no lock, no
//! syscall, and the top pages are already resident and in cache. That is what
//! makes spawn+join cheap. Stacks beyond the cache go back to the global
//! allocator with all their pages released.
//!
//! Cached stacks may hold pages a deep call once touched. Releasing them on
//! every return would cost a syscall per greenlet, so the hub does it when it
//! goes idle ([`StackPool::trim`]): every stack returned since the last trim
//! gives back everything below its top [`KEEP_RESIDENT`] bytes. The cache is a
//! LIFO whose first `clean` entries are trimmed; entries above are "dirty".

use std::io;

use super::slab::ALLOCATOR;
use super::{NUM_CLASSES, Stack, class_for};

/// Stacks kept per size class and hub.
pub(crate) const HOT_PER_CLASS: usize = 64;
/// Bytes at the top of a cached stack that stay resident after a trim.
pub(crate) const KEEP_RESIDENT: usize = 16 << 10;

#[derive(Default)]
struct ClassCache {
    hot: Vec<Stack>,
    /// `hot[..clean]` have been trimmed since they were last returned.
    clean: usize,
}

/// A hub's stack cache.
pub(crate) struct StackPool {
    classes: [ClassCache; NUM_CLASSES],
}

impl StackPool {
    pub(crate) fn new() -> StackPool {
        StackPool {
            classes: std::array::from_fn(|_| ClassCache::default()),
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
            None => ALLOCATOR.alloc(class),
        }
    }

    /// Takes back a stack nobody runs on any more.
    #[inline]
    pub(crate) fn free(&mut self, stack: Stack) {
        let cache = &mut self.classes[stack.class()];
        if cache.hot.len() < HOT_PER_CLASS {
            cache.hot.push(stack);
        } else {
            // Dropping releases every page and returns it to the allocator.
            drop(stack);
        }
    }

    /// Releases the deep pages of stacks returned since the last trim.
    pub(crate) fn trim(&mut self) {
        for cache in &mut self.classes {
            for stack in &cache.hot[cache.clean..] {
                stack.release(KEEP_RESIDENT);
            }
            cache.clean = cache.hot.len();
        }
    }
}
