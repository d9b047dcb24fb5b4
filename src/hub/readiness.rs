//! Readiness of one file descriptor, shared between the greenlets that wait
//! on it and the hub whose poller watches it.
//!
//! It belongs to the hub layer: the hub's poller (`hub/io.rs`) turns each
//! event into a [`ScheduledIo`] and wakes its waiters; the sockets and fd
//! waits of `crate::io` own the cells and wait on them.
//!
//! A [`ScheduledIo`] lives in an `Arc` owned by the socket (or by a one-off
//! fd wait); its address is the `mio::Token` under which the fd is registered
//! (edge-triggered, read and write interest) with the poller of each hub
//! whose greenlets waited on it (`io/registration.rs`, "Several hubs"): any
//! of them may dispatch an edge, and a second dispatch of the same edge is a
//! spurious wake-up.
//!
//! # Protocol
//!
//! Each direction (read, write) has an event counter `seq` and a list of
//! waiters.
//!
//! - **Hub** (on an event for the direction): `seq += 1`, then, under the
//!   waiter lock, pops every waiter and wakes it.
//! - **Waiter**: loads `seq` (before its syscall), tries the syscall; on
//!   `WouldBlock` it takes the waiter lock, loads `seq` again and, if it is
//!   unchanged, pushes itself and parks after unlocking. If it changed, an
//!   edge arrived since the syscall: it retries at once.
//!
//! No lost wake-up: the hub's increment happens before it takes the lock. If
//! the waiter locks first, the hub finds it in the list; if the hub locks
//! first, the waiter's second load (after the hub's unlock) sees the new
//! `seq`. Because the fd is edge-triggered, an edge is produced only by a
//! change after the previous syscall drained it, and every such edge bumps
//! `seq` after the waiter's first load. A waiter that stops waiting (timeout,
//! kill, spurious wake-up) removes itself under the lock. Waking is
//! idempotent: a stale or spurious wake only makes the waiter retry its
//! syscall.
//!
//! # Lifetime of a token
//!
//! The hub turns a token back into a `&ScheduledIo`, so the `ScheduledIo`
//! must outlive every event batch that may name it. Whoever drops the last
//! socket handle first deregisters the fd (no later `epoll_wait` returns the
//! token), then hands its `Arc` to the hub (`HubRemote::release`; one clone
//! to each hub it was registered with), which drops
//! the released `Arc`s only right before its next `epoll_wait`, that is, after
//! it finished dispatching the batch that might still name the token. A hub
//! that has exited never dispatches again, so its released list is simply
//! dropped with it.
//!
//! "Deregisters" means an `EPOLL_CTL_DEL` that succeeded while the fd still
//! named the open file description it was registered with: epoll keeps a
//! registration for as long as its description is open (a dup of the fd
//! keeps it open after the fd is closed) and finds it for a DEL only through
//! the number naming it. A state whose registration cannot be shown gone
//! that way is leaked, never released (`registration.rs`, "Taking a
//! registration off").

use crate::greenlet::waiter::Waiter;
#[cfg(not(loom))]
use crate::greenlet::waiter::WaiterKey;
use crate::loom::{AtomicUsize, Ordering::*, SpinLock};

/// One direction of readiness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Read,
    Write,
}

#[derive(Default)]
struct Side {
    seq: AtomicUsize,
    waiters: SpinLock<Vec<Waiter>>,
}

impl Side {
    fn fire(&self) {
        self.seq.fetch_add(1, AcqRel);
        let mut waiters = self.waiters.lock();
        while let Some(w) = waiters.pop() {
            w.wake();
        }
    }
}

/// See the module docs. (`pub` only for the loom model in
/// `tests/loom_io.rs`; the module itself is private.)
#[derive(Default)]
pub struct ScheduledIo {
    read: Side,
    write: Side,
}

impl ScheduledIo {
    fn side(&self, dir: Direction) -> &Side {
        match dir {
            Direction::Read => &self.read,
            Direction::Write => &self.write,
        }
    }

    /// The event counter of `dir`, to load before a syscall.
    #[inline]
    pub(crate) fn seq(&self, dir: Direction) -> usize {
        self.side(dir).seq.load(Acquire)
    }

    /// Registers `waiter` for the next event of `dir`, unless an event
    /// arrived since `seq` was loaded (then returns `false`: retry now).
    pub(crate) fn add_waiter(&self, dir: Direction, seq: usize, waiter: Waiter) -> bool {
        let side = self.side(dir);
        let mut waiters = side.waiters.lock();
        if side.seq.load(Acquire) != seq {
            return false;
        }
        waiters.push(waiter);
        true
    }

    /// Takes the waiter with `key` off the list of `dir`, if still there.
    #[cfg(not(loom))]
    pub(crate) fn remove_waiter(&self, dir: Direction, key: WaiterKey) {
        let mut waiters = self.side(dir).waiters.lock();
        if let Some(i) = waiters.iter().position(|w| w.key() == key) {
            // Dropped after the lock: no destructor runs under a `SpinLock`
            // (this is the caller's own waiter, never its greenlet's last
            // reference, but nothing should depend on that).
            let removed = waiters.swap_remove(i);
            drop(waiters);
            drop(removed);
        }
    }

    /// The hub: an event arrived for `dir` (what `dispatch` does per
    /// direction).
    pub fn fire(&self, dir: Direction) {
        self.side(dir).fire();
    }

    /// The event counter of `dir` (for the loom model).
    #[cfg(loom)]
    pub fn load_seq(&self, dir: Direction) -> usize {
        self.seq(dir)
    }

    /// Registers the calling (loom) thread as a waiter; see `add_waiter`.
    #[cfg(loom)]
    pub fn add_current_waiter(&self, dir: Direction, seq: usize) -> bool {
        self.add_waiter(dir, seq, Waiter::current())
    }

    /// The hub: an event arrived for this fd.
    pub(crate) fn dispatch(&self, event: &mio::event::Event) {
        let error = event.is_error();
        if event.is_readable() || event.is_read_closed() || error || event.is_priority() {
            self.fire(Direction::Read);
        }
        if event.is_writable() || event.is_write_closed() || error {
            self.fire(Direction::Write);
        }
    }

    /// Wakes every waiter of both directions (the fd is going away, or its
    /// hub is).
    pub(crate) fn wake_all(&self) {
        self.read.fire();
        self.write.fire();
    }
}
