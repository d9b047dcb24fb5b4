//! The FIFO wait queue every blocking primitive is built on.
//!
//! A primitive keeps its state and one or more [`WaitList`]s behind one mutex
//! (the loom shim's, so the models in `tests/loom_*.rs` run the real code).
//! A caller that must block calls [`wait`]: it links a [`Node`] that lives on
//! its own stack at the back of the list, releases the lock and parks. A
//! notifier, holding the lock, unlinks nodes from the front with
//! [`WaitList::pop_front`], writes the outcome into the node's data (a value,
//! a permit, "closed") and wakes the waiter after it released the lock. No
//! allocation per wait, and strict FIFO order, as gevent's primitives have.
//!
//! # Node states (all changes under the primitive's lock)
//!
//! ```text
//!   linked ──pop_front (notifier)──▶ granted ──▶ owner returns Done(data)
//!     │
//!     └──deadline / kill / timeout frame (owner)──▶ removed ──▶ owner returns
//!                                                              TimedOut / Interrupted
//! ```
//!
//! Only the owner ever frees a node (by returning from `wait`), and it does so
//! only after it saw, under the lock, that the node is not linked. A notifier
//! touches a node only while it is linked and it holds the lock, and moves the
//! waiter out before it releases the lock, so it never touches a node its
//! owner may have freed. A granted node stays granted: a kill or a deadline
//! that races with the grant loses, and the owner keeps what it was given
//! (the interrupt is raised at its next blocking point). That is how no value
//! or permit is ever lost to a timeout or a kill.

use std::marker::PhantomPinned;
use std::ptr;
use std::time::Instant;

use crate::greenlet::runinfo::{WaitKind, WaitOn};
use crate::greenlet::wait::{Interrupt, Wake, park_until};
use crate::greenlet::waiter::Waiter;
use crate::loom::{AtomicBool, Ordering, SpinLock, SpinLockGuard};

/// One blocked caller. Lives on the caller's stack inside [`wait`].
pub(crate) struct Node<T> {
    prev: *mut Node<T>,
    next: *mut Node<T>,
    linked: bool,
    /// Set (Release) by a notifier that dequeued the node through
    /// [`Popped::grant`] after it wrote the outcome, still under the lock:
    /// the owner may then take the outcome without taking the lock again.
    granted: AtomicBool,
    waiter: Option<Waiter>,
    data: T,
    /// Linked nodes are addressed by raw pointers: they must not move.
    _pin: PhantomPinned,
}

impl<T> Node<T> {
    /// An unlinked node for the current waiter (see [`wait`]).
    pub(crate) fn new(data: T) -> Node<T> {
        Node {
            prev: ptr::null_mut(),
            next: ptr::null_mut(),
            linked: false,
            granted: AtomicBool::new(false),
            waiter: Some(Waiter::current()),
            data,
            _pin: PhantomPinned,
        }
    }

    /// An unlinked node without a waiter yet, for `select`, which
    /// [`arms`](Node::arm) it each time it links it: the node then wakes
    /// whoever is selecting, wherever and whenever the node was made.
    pub(crate) fn unarmed(data: T) -> Node<T> {
        Node {
            prev: ptr::null_mut(),
            next: ptr::null_mut(),
            linked: false,
            granted: AtomicBool::new(false),
            waiter: None,
            data,
            _pin: PhantomPinned,
        }
    }

    /// Makes the current caller the node's waiter (replacing any earlier
    /// one; a grant takes it). Only the owner, while the node is not linked.
    pub(crate) fn arm(&mut self) {
        self.waiter = Some(Waiter::current());
    }

    /// The node's data. Only the owner, while the node is not linked, or
    /// under the lock.
    pub(crate) fn data_mut(&mut self) -> &mut T {
        &mut self.data
    }
}

/// An intrusive doubly linked FIFO of [`Node`]s. Every method requires the
/// primitive's lock, which `&mut self` proves (the list lives inside it).
pub(crate) struct WaitList<T> {
    head: *mut Node<T>,
    tail: *mut Node<T>,
    len: usize,
}

// SAFETY: the list only holds pointers to nodes whose owners are blocked in
// `wait` until the node is unlinked; it is only used under the primitive's
// lock, so moving it (inside that lock) between threads moves nothing but
// the right to touch those nodes, which hold `T` (hence `T: Send`) and a
// `Waiter` (Send).
unsafe impl<T: Send> Send for WaitList<T> {}

impl<T> Default for WaitList<T> {
    fn default() -> Self {
        WaitList::new()
    }
}

impl<T> WaitList<T> {
    pub(crate) const fn new() -> Self {
        WaitList {
            head: ptr::null_mut(),
            tail: ptr::null_mut(),
            len: 0,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether any waiter's data satisfies `pred` (front to back).
    pub(crate) fn any(&self, mut pred: impl FnMut(&T) -> bool) -> bool {
        let mut p = self.head;
        // SAFETY: linked nodes are alive while we hold the lock (`&self`
        // comes from inside it).
        while let Some(node) = unsafe { p.as_ref() } {
            if pred(&node.data) {
                return true;
            }
            p = node.next;
        }
        false
    }

    /// The data of the first waiter, without dequeuing it.
    pub(crate) fn front(&mut self) -> Option<&mut T> {
        // SAFETY: a linked node is alive (its owner is blocked in `wait` until
        // it sees the node unlinked, which needs the lock we hold through
        // `&mut self`).
        unsafe { self.head.as_mut() }.map(|n| &mut n.data)
    }

    /// Dequeues the first waiter. The caller writes the outcome into the
    /// returned data while it still holds the lock, and wakes the returned
    /// [`Waiter`] (preferably after releasing the lock).
    pub(crate) fn pop_front(&mut self) -> Option<(&mut T, Waiter)> {
        let node = self.head;
        if node.is_null() {
            return None;
        }
        // SAFETY: `node` is linked, hence alive (see `front`), and we hold
        // the lock.
        unsafe {
            self.unlink(node);
            let waiter = (*node)
                .waiter
                .take()
                .expect("greenhub: wait node without waiter");
            Some((&mut (*node).data, waiter))
        }
    }

    /// Dequeues the first waiter as a [`Popped`] handle: the caller writes
    /// the outcome into it and then either [`grants`](Popped::grant) it
    /// (the owner returns `Done` without re-taking the lock) or, for a stale
    /// select node, drops it.
    pub(crate) fn pop(&mut self) -> Option<Popped<'_, T>> {
        let node = self.head;
        if node.is_null() {
            return None;
        }
        // SAFETY: `node` is linked, hence alive (see `front`), lock held.
        unsafe { self.unlink(node) };
        Some(Popped {
            node,
            _list: std::marker::PhantomData,
        })
    }

    /// Dequeues every waiter, handing each to `f` (which writes its outcome)
    /// and collecting the waiters to wake.
    pub(crate) fn drain(&mut self, mut f: impl FnMut(&mut T)) -> Vec<Waiter> {
        let mut woken = Vec::with_capacity(self.len);
        while let Some(mut p) = self.pop() {
            f(p.data());
            woken.push(p.grant());
        }
        woken
    }

    /// Links `node` at the back.
    ///
    /// # Safety
    ///
    /// `node` is valid, unlinked, and stays at its address until it is
    /// unlinked; the caller holds the lock.
    pub(crate) unsafe fn push_back(&mut self, node: *mut Node<T>) {
        // SAFETY: per the contract, and `tail` is linked hence alive.
        unsafe {
            (*node).prev = self.tail;
            (*node).next = ptr::null_mut();
            (*node).linked = true;
            match self.tail.as_mut() {
                Some(tail) => tail.next = node,
                None => self.head = node,
            }
        }
        self.tail = node;
        self.len += 1;
    }

    /// Unlinks `node` if it is still linked (its owner giving up); returns
    /// whether it was.
    ///
    /// # Safety
    ///
    /// `node` is valid and, if linked, linked in this list; the caller holds
    /// the lock.
    pub(crate) unsafe fn remove(&mut self, node: *mut Node<T>) -> bool {
        // SAFETY: per the contract.
        unsafe {
            if !(*node).linked {
                return false;
            }
            self.unlink(node);
        }
        true
    }

    /// Unlinks `node`.
    ///
    /// # Safety
    ///
    /// `node` is linked in this list; the caller holds the lock.
    unsafe fn unlink(&mut self, node: *mut Node<T>) {
        // SAFETY: per the contract `node` and its neighbours are linked here,
        // hence alive.
        unsafe {
            let (prev, next) = ((*node).prev, (*node).next);
            match prev.as_mut() {
                Some(p) => p.next = next,
                None => self.head = next,
            }
            match next.as_mut() {
                Some(n) => n.prev = prev,
                None => self.tail = prev,
            }
            (*node).prev = ptr::null_mut();
            (*node).next = ptr::null_mut();
            (*node).linked = false;
        }
        self.len -= 1;
    }
}

/// A node just dequeued by a notifier, which still holds the lock (the
/// handle borrows the list).
pub(crate) struct Popped<'a, T> {
    node: *mut Node<T>,
    _list: std::marker::PhantomData<&'a mut WaitList<T>>,
}

impl<T> Popped<'_, T> {
    /// The node's data, to write the outcome into.
    pub(crate) fn data(&mut self) -> &mut T {
        // SAFETY: the node was linked when popped and its owner cannot free
        // it before it takes the lock, which the borrow of the list holds.
        unsafe { &mut (*self.node).data }
    }

    /// Marks the outcome final and returns the waiter to wake (after the
    /// lock is released).
    pub(crate) fn grant(self) -> Waiter {
        // SAFETY: as in `data`; the Release store publishes the outcome
        // written before it to the owner's Acquire load in `wait_granted`.
        unsafe {
            let waiter = (*self.node)
                .waiter
                .take()
                .expect("greenhub: wait node without waiter");
            (*self.node).granted.store(true, Ordering::Release);
            waiter
        }
    }
}

/// How a [`wait`] ended. Each variant gives the node's data back.
pub(crate) enum Waited<T> {
    /// A notifier dequeued the node; its outcome is in the data.
    Done(T),
    /// The deadline passed first; the node was removed.
    TimedOut(T),
    /// Killed or a `timeout` frame expired first; the node was removed. The
    /// primitive fixes up its state, releases the lock, then raises.
    Interrupted(T, Interrupt),
}

/// How a [`wait_granted`] ended: like [`Waited`], but `Done` comes without
/// the lock when the notifier granted the node.
pub(crate) enum Granted<'a, S, T> {
    /// Dequeued by a notifier; the outcome is in the data.
    Done(T),
    /// The deadline passed first; node removed, lock held.
    TimedOut(SpinLockGuard<'a, S>, T),
    /// Killed or a `timeout` frame expired first; node removed, lock held.
    Interrupted(SpinLockGuard<'a, S>, T, Interrupt),
}

/// Blocks the caller on the list `list(&mut *guard)` until a notifier
/// dequeues it, `deadline` passes, or it is interrupted. `guard` is the
/// primitive's lock, held by the caller, which decided to wait; the lock is
/// held again when this returns, so the caller can fix up its state.
pub(crate) fn wait<'a, S, T>(
    lock: &'a SpinLock<S>,
    guard: SpinLockGuard<'a, S>,
    list: impl Fn(&mut S) -> &mut WaitList<T>,
    data: T,
    deadline: Option<Instant>,
    kind: WaitKind,
) -> (SpinLockGuard<'a, S>, Waited<T>) {
    match wait_granted(lock, guard, list, data, deadline, kind) {
        Granted::Done(data) => (lock.lock(), Waited::Done(data)),
        Granted::TimedOut(guard, data) => (guard, Waited::TimedOut(data)),
        Granted::Interrupted(guard, data, i) => (guard, Waited::Interrupted(data, i)),
    }
}

/// [`wait`] without re-taking the lock when a notifier granted the node
/// (one lock round trip less per wake-up, on the channels' hot path).
pub(crate) fn wait_granted<'a, S, T>(
    lock: &'a SpinLock<S>,
    mut guard: SpinLockGuard<'a, S>,
    list: impl Fn(&mut S) -> &mut WaitList<T>,
    data: T,
    deadline: Option<Instant>,
    kind: WaitKind,
) -> Granted<'a, S, T> {
    let on = WaitOn::at(kind, lock);
    let mut node = Node::new(data);
    let raw: *mut Node<T> = &mut node;
    // SAFETY: `node` stays in this frame, unmoved, until we return, and we
    // return only after seeing it unlinked (under the lock, or through the
    // `granted` flag, which a notifier sets last, under the lock, after
    // which it never touches the node) or unlinking it ourselves. Nothing
    // between here and there can unwind: `park_until` reports interrupts
    // instead of raising them, and the lock does not poison or panic. (If
    // the greenlet is never resumed, its stack is leaked with the node on
    // it, never reused.)
    unsafe { list(&mut guard).push_back(raw) };
    loop {
        drop(guard);
        let wake = park_until(deadline, on);
        // SAFETY: `raw` is our own live node; `granted` is atomic.
        if unsafe { (*raw).granted.load(Ordering::Acquire) } {
            return Granted::Done(node.data);
        }
        guard = lock.lock();
        // SAFETY: we hold the lock; `raw` is our own live node.
        if !unsafe { (*raw).linked } {
            return Granted::Done(node.data);
        }
        match wake {
            Wake::Woken => {}
            Wake::TimedOut => {
                // SAFETY: linked in this list (checked above), lock held.
                unsafe { list(&mut guard).unlink(raw) };
                return Granted::TimedOut(guard, node.data);
            }
            Wake::Interrupted(i) => {
                // SAFETY: as above.
                unsafe { list(&mut guard).unlink(raw) };
                return Granted::Interrupted(guard, node.data, i);
            }
        }
    }
}

/// Wakes every waiter in `waiters` (collected under a lock, woken after it).
pub(crate) fn wake_all(waiters: Vec<Waiter>) {
    for w in waiters {
        w.wake();
    }
}
