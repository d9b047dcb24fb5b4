//! The futex table's protocol: parked waiters keyed by address, linked only
//! after a check of the futex word under the address's bucket lock, and
//! unlinked by a waker (or by the waiter itself, when it gives up).
//!
//! This is the part of the futex hook (`futex.rs`) and of the shared std
//! thread parker (`parker.rs`) that runs between threads, kept apart from
//! the hook so that it runs under `--cfg loom` too, where the hook's libc
//! symbols must not exist (a test binary defining `syscall` would intercept
//! loom's own calls). Its atomics and locks come from `crate::loom`, and it
//! is generic over what a waiter is: the hook links greenhub `Waiter`s, the
//! loom models (`tests/loom_futex.rs`) link something a loom thread can be
//! woken by.
//!
//! # The protocol
//!
//! - **Link** ([`Table::link`]): under the bucket lock, raise the table's
//!   waiter count, a SeqCst fence, then the caller's check of the futex
//!   word; if it fails, lower the count and give up (`EAGAIN`), else link
//!   the node.
//! - **Wake** ([`Table::wake`]): a SeqCst fence, then skip everything if the
//!   count is zero (no greenlet waits anywhere: the common case); else,
//!   under the bucket lock, unlink up to `n` matching nodes, and every
//!   parker wait of the address whatever `n`; wake their waiters after the
//!   lock is released.
//! - **After a park** ([`Table::after_park`]): under the lock, the node's
//!   owner learns whether a waker unlinked it; if not and it gives up (a
//!   deadline, a kill's grace), it unlinks itself, under that same lock.
//!
//! No wake-up is lost: a waker changes the word before it calls wake; the
//! fences make the waiter's check see the new word or the waker see the
//! raised count (Dekker's pattern), and in the second case the waker's
//! lock comes after the waiter's link. A node is touched by others only
//! while linked, and only under its bucket's lock, so its owner may free it
//! once [`Table::after_park`] reported it woken or unlinked.

use std::ptr::NonNull;

use crate::loom::{AtomicBool, AtomicUsize, Ordering, SpinLock, fence};

/// log2 of the number of buckets (one bucket under loom: the protocol does
/// not depend on how addresses spread, and fewer objects keep models small).
#[cfg(not(loom))]
const BUCKETS_LOG2: u32 = 8;
#[cfg(loom)]
const BUCKETS_LOG2: u32 = 1;
const BUCKETS: usize = 1 << BUCKETS_LOG2;

/// What a linked waiter is woken with: the table takes it from the node
/// under the lock and calls this after the lock is released.
pub trait WakeUp {
    /// Wakes the waiter (schedules its greenlet, unparks its thread).
    fn wake_up(self);
}

/// One parked waiter. Lives (on the waiter's stack) at a fixed address while
/// linked.
pub struct Node<W> {
    addr: usize,
    bitset: u32,
    /// Taken by the waker that unlinks the node (under the bucket lock).
    waiter: Option<W>,
    /// Set by that waker, under the lock: the wait ends with 0.
    woken: bool,
    /// A wait on a hub thread's std parker word (`parker.rs`): every wake
    /// of the address wakes all of them, whatever its count, and unlinking
    /// one updates its thread's [`Lot`].
    parker: Option<&'static Lot>,
    /// This parker wait keeps its thread's sweep tick (`parker.rs`).
    leader: bool,
}

impl<W> Node<W> {
    /// A futex wait on `addr` for the wake bits `bitset`.
    pub fn new(addr: usize, bitset: u32, waiter: W) -> Node<W> {
        Node {
            addr,
            bitset,
            waiter: Some(waiter),
            woken: false,
            parker: None,
            leader: false,
        }
    }

    /// A wait on the std parker word at `addr` of the thread whose parker
    /// waits `lot` counts.
    pub fn parker(addr: usize, waiter: W, lot: &'static Lot) -> Node<W> {
        Node {
            parker: Some(lot),
            ..Node::new(addr, u32::MAX, waiter)
        }
    }

    /// Drops the waiter of a node that is not linked (an abandoned wait).
    pub fn forget_waiter(&mut self) {
        self.waiter = None;
    }
}

/// Pointers to linked nodes. Only touched under the bucket's lock.
struct List<W>(Vec<NonNull<Node<W>>>);

// SAFETY: the nodes' owners are parked until they see, under the lock, that
// their node is unlinked; the list only moves between threads inside that
// lock, with the right to touch those nodes (which hold a `Send` waiter).
unsafe impl<W: Send> Send for List<W> {}

/// The parker waits of one hub thread (`parker.rs`), shared with wakers on
/// any thread.
pub struct Lot {
    /// Parker waits linked (changed under the word's bucket lock).
    count: AtomicUsize,
    /// One of them is the leader (under the same lock).
    leader: AtomicBool,
}

impl Lot {
    /// No waits.
    pub fn new() -> Lot {
        Lot {
            count: AtomicUsize::new(0),
            leader: AtomicBool::new(false),
        }
    }

    /// Parker waits linked now.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// One of this lot's waits was unlinked (under the bucket lock).
    fn unlinked(&self, leader: bool) {
        self.count.fetch_sub(1, Ordering::Relaxed);
        if leader {
            self.leader.store(false, Ordering::Relaxed);
        }
    }
}

/// How a park of a linked node ended ([`Table::after_park`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parked {
    /// A waker unlinked the node: the wait succeeded.
    Woken,
    /// Still linked (a spurious resume, a tick); `leader`: the node keeps its
    /// thread's sweep tick.
    Linked {
        /// The node is its lot's leader.
        leader: bool,
    },
    /// The owner gave up and unlinked the node itself.
    Unlinked {
        /// The node was its lot's leader.
        leader: bool,
        /// Parker waits of the same lot are still linked.
        others: bool,
    },
}

/// The table of parked waiters, keyed by futex address.
pub struct Table<W> {
    buckets: [SpinLock<List<W>>; BUCKETS],
    /// Nodes linked in the whole table (raised before the waiter's check).
    waiters: AtomicUsize,
}

impl<W> Table<W> {
    /// An empty table (`const`: the hook's is a static).
    #[cfg(not(loom))]
    pub const fn new() -> Table<W> {
        Table {
            buckets: [const { SpinLock::new(List(Vec::new())) }; BUCKETS],
            waiters: AtomicUsize::new(0),
        }
    }

    /// An empty table.
    #[cfg(loom)]
    pub fn new() -> Table<W> {
        Table {
            buckets: std::array::from_fn(|_| SpinLock::new(List(Vec::new()))),
            waiters: AtomicUsize::new(0),
        }
    }

    fn bucket(&self, addr: usize) -> &SpinLock<List<W>> {
        // Futex words are 4-byte aligned; mix the bits above.
        let h = (addr >> 2).wrapping_mul(0x9E37_79B9_7F4A_7C15_u64 as usize);
        &self.buckets[h >> (usize::BITS - BUCKETS_LOG2)]
    }

    /// Nodes linked in the whole table.
    #[cfg_attr(not(loom), allow(dead_code))]
    pub fn waiters(&self) -> usize {
        self.waiters.load(Ordering::SeqCst)
    }

    /// Nodes linked now in the bucket of `addr` (of any address that maps
    /// there). Counts the links without reading the nodes, so that a node
    /// left linked after its owner returned is counted, not read.
    #[cfg_attr(not(loom), allow(dead_code))]
    pub fn linked(&self, addr: usize) -> usize {
        self.bucket(addr).lock().0.len()
    }

    /// Links `node` if `check` (the futex word still holds the expected
    /// value), evaluated under the bucket lock after the count was raised
    /// and a SeqCst fence; `None` (`EAGAIN`) if it fails. A parker node
    /// becomes its lot's leader if the lot has none: `Some(leader)`.
    ///
    /// # Safety
    ///
    /// `node` is valid and not linked, and stays valid at the same address
    /// until [`Table::after_park`] reports it [`Parked::Woken`] or
    /// [`Parked::Unlinked`].
    pub unsafe fn link(
        &self,
        node: NonNull<Node<W>>,
        check: impl FnOnce() -> bool,
    ) -> Option<bool> {
        // SAFETY: the caller's node, not linked yet: ours alone.
        let addr = unsafe { node.as_ref().addr };
        let mut list = self.bucket(addr).lock();
        self.waiters.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if !check() {
            self.waiters.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        // SAFETY: as above; it is linked only below, under the lock.
        let n = unsafe { &mut *node.as_ptr() };
        if let Some(lot) = n.parker {
            n.leader = !lot.leader.swap(true, Ordering::Relaxed);
            lot.count.fetch_add(1, Ordering::Relaxed);
        }
        list.0.push(node);
        Some(n.leader)
    }

    /// After a park of the linked `node` ended: under the bucket lock,
    /// whether a waker unlinked it; if not, `give_up` (called under the
    /// lock) says whether its owner stops waiting, and then it is unlinked
    /// here.
    ///
    /// # Safety
    ///
    /// `node` was linked by [`Table::link`] and not yet reported woken or
    /// unlinked.
    pub unsafe fn after_park(
        &self,
        node: NonNull<Node<W>>,
        give_up: impl FnOnce() -> bool,
    ) -> Parked {
        // SAFETY: alive (the caller's promise); `addr` never changes.
        let addr = unsafe { node.as_ref().addr };
        let mut list = self.bucket(addr).lock();
        // SAFETY: wakers write the node only under the lock, which we hold.
        let n = unsafe { &mut *node.as_ptr() };
        if n.woken {
            return Parked::Woken;
        }
        let leader = n.leader;
        if !give_up() {
            return Parked::Linked { leader };
        }
        list.0.retain(|&p| p != node);
        self.waiters.fetch_sub(1, Ordering::Relaxed);
        let mut others = false;
        if let Some(lot) = n.parker {
            lot.unlinked(leader);
            others = lot.count.load(Ordering::Relaxed) > 0;
        }
        Parked::Unlinked { leader, others }
    }

    /// Unlinks and wakes up to `n` waiters on `addr` whose bitset shares a
    /// bit with `bitset`, and every parker wait on `addr` whatever `n`;
    /// returns how many.
    pub fn wake(&self, addr: usize, n: usize, bitset: u32) -> usize
    where
        W: WakeUp,
    {
        fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        let mut woken = Vec::new();
        {
            let mut list = self.bucket(addr).lock();
            list.0.retain(|&p| {
                // SAFETY: linked nodes are alive: their owners wait for us to
                // unlink them, under the lock we hold.
                let node = unsafe { &mut *p.as_ptr() };
                if node.addr != addr || node.bitset & bitset == 0 {
                    return true;
                }
                if let Some(lot) = node.parker {
                    lot.unlinked(node.leader);
                } else if woken.len() >= n {
                    return true;
                }
                if let Some(w) = node.waiter.take() {
                    woken.push(w);
                }
                node.woken = true;
                false
            });
            self.waiters.fetch_sub(woken.len(), Ordering::Relaxed);
        }
        let k = woken.len();
        for w in woken {
            w.wake_up();
        }
        k
    }
}

impl Default for Lot {
    fn default() -> Lot {
        Lot::new()
    }
}
