//! The greenlet state word: who may resume a greenlet, and when.
//!
//! Every greenlet has one `AtomicUsize` that all threads agree on. It holds a
//! lifecycle in its low two bits and four flags above them.
//!
//! # Lifecycle
//!
//! | state       | user code runs? | on a run queue?              | who owns the stack           |
//! |-------------|-----------------|------------------------------|------------------------------|
//! | `SCHEDULED` | maybe           | yes, or running on its hub   | the hub that dequeues it     |
//! | `PARKED`    | no              | no; referenced by wait lists | nobody: the first waker wins |
//! | `COMPLETE`  | never again     | no                           | nobody (the stack is freed)  |
//!
//! The textbook protocol has separate `QUEUED` and `RUNNING` states (see
//! docs/ARCHITECTURE.md, 'Rejected designs'). They are merged here into
//! `SCHEDULED` because no other thread can tell them apart or acts differently
//! on them: a waker that finds a greenlet queued or running only leaves a
//! token (`NOTIFIED`). Merging them removes two atomic read-modify-writes
//! from every switch (dequeue and yield touch no atomics at all).
//!
//! Transitions, and who may make them:
//!
//! - `SCHEDULED -> PARKED`: only the owning hub, after the greenlet has
//!   suspended with `Suspend::Park` (the "final CAS after the switch"), and only
//!   if `NOTIFIED` is clear. If it is set, the hub clears it and resumes the
//!   greenlet at once instead. Because the CAS runs after the greenlet's
//!   registers are saved, a waker can never resume a stack that is still
//!   running.
//! - `PARKED -> SCHEDULED`: any thread, by a successful CAS in [`State::wake`].
//!   Exactly one waker wins and must push the greenlet to its owning hub; every
//!   other concurrent waker sees `SCHEDULED` and only sets `NOTIFIED`. This is
//!   the "never two resumes" rule.
//! - `SCHEDULED -> COMPLETE`: only the owning hub, when the greenlet's closure
//!   has returned (or it was cancelled before it started).
//!
//! # Flags
//!
//! - `NOTIFIED`: a wake-up arrived while the greenlet was not parked. Its next
//!   park returns at once (the token of `std::thread::park`). Set by wakers,
//!   cleared only by the greenlet itself or its hub.
//! - `KILLED`: [`State::kill`] was called. Sticky. The greenlet unwinds at its
//!   next blocking point; an unstarted one never runs.
//! - `JOIN_INTEREST`: a `JoinHandle` still exists. When it is clear at
//!   completion, the hub drops the output itself.
//! - `JOIN_WAITER`: the join slot holds a waiter. While it is set the slot
//!   belongs to the completing hub; the joiner may rewrite the slot only after
//!   clearing the flag, which fails once `COMPLETE` is set.
//!
//! The protocol is model-checked in `tests/loom_park.rs`, `tests/loom_kill.rs`
//! and `tests/loom_join.rs`.

use crate::loom::{AtomicUsize, Ordering::*};

const LIFECYCLE: usize = 0b11;
const SCHEDULED: usize = 0b00;
const PARKED: usize = 0b01;
const COMPLETE: usize = 0b10;

const NOTIFIED: usize = 1 << 2;
const KILLED: usize = 1 << 3;
const JOIN_INTEREST: usize = 1 << 4;
const JOIN_WAITER: usize = 1 << 5;

/// A snapshot of the state word, as returned by the transitions.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Snapshot(usize);

impl Snapshot {
    pub fn is_complete(self) -> bool {
        self.0 & LIFECYCLE == COMPLETE
    }
    pub fn is_parked(self) -> bool {
        self.0 & LIFECYCLE == PARKED
    }
    pub fn is_killed(self) -> bool {
        self.0 & KILLED != 0
    }
    pub fn has_join_interest(self) -> bool {
        self.0 & JOIN_INTEREST != 0
    }
    pub fn has_join_waiter(self) -> bool {
        self.0 & JOIN_WAITER != 0
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let life = match self.0 & LIFECYCLE {
            SCHEDULED => "SCHEDULED",
            PARKED => "PARKED",
            _ => "COMPLETE",
        };
        write!(f, "{life}")?;
        for (bit, name) in [
            (NOTIFIED, "NOTIFIED"),
            (KILLED, "KILLED"),
            (JOIN_INTEREST, "JOIN_INTEREST"),
            (JOIN_WAITER, "JOIN_WAITER"),
        ] {
            if self.0 & bit != 0 {
                write!(f, "|{name}")?;
            }
        }
        Ok(())
    }
}

/// The state word of one greenlet. See the module docs for the protocol.
pub struct State(AtomicUsize);

impl State {
    /// A new, scheduled greenlet. `join_interest` is true when a `JoinHandle`
    /// will be returned to the spawner.
    pub fn new(join_interest: bool) -> State {
        let interest = if join_interest { JOIN_INTEREST } else { 0 };
        State(AtomicUsize::new(SCHEDULED | interest))
    }

    #[inline]
    pub fn load(&self) -> Snapshot {
        Snapshot(self.0.load(Acquire))
    }

    /// Any thread: the wake-up half of park/unpark. Returns `true` when the
    /// caller moved the greenlet from `PARKED` to `SCHEDULED` and therefore
    /// must push it to its owning hub. Otherwise the wake-up is recorded as a
    /// `NOTIFIED` token (or dropped, for a completed greenlet).
    pub fn wake(&self) -> bool {
        let mut cur = self.0.load(Acquire);
        loop {
            let next = match cur & LIFECYCLE {
                COMPLETE => return false,
                PARKED => (cur & !LIFECYCLE) | SCHEDULED,
                // Even when the token looks set already, we CAS (a no-op
                // write when `cur` is current): a stale load could show a
                // token that the greenlet consumed before parking again,
                // and returning early would lose this wake-up (found by
                // `tests/loom_park.rs`).
                _ => cur | NOTIFIED,
            };
            match self.0.compare_exchange_weak(cur, next, AcqRel, Acquire) {
                Ok(_) => return cur & LIFECYCLE == PARKED,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Any thread: marks the greenlet killed, then wakes it. Returns `true`
    /// when the caller must push it to its owning hub (as for [`State::wake`]).
    pub fn kill(&self) -> bool {
        let prev = self.0.fetch_or(KILLED, AcqRel);
        if prev & LIFECYCLE == COMPLETE {
            return false;
        }
        self.wake()
    }

    /// The greenlet itself, on entry to a park: consumes a pending token.
    /// Returns `true` if there was one (the park must return at once).
    #[inline]
    pub fn take_notified(&self) -> bool {
        if self.0.load(Acquire) & NOTIFIED == 0 {
            return false;
        }
        // Only the running greenlet and its hub clear NOTIFIED, and the
        // lifecycle cannot change under a running greenlet, so a plain
        // fetch_and is enough here.
        let prev = self.0.fetch_and(!NOTIFIED, AcqRel);
        debug_assert!(
            prev & LIFECYCLE == SCHEDULED && prev & NOTIFIED != 0,
            "State::take_notified: the token or lifecycle of a running greenlet changed under it \
             (only it and its hub clear NOTIFIED; only its hub parks or completes it): {:?}",
            Snapshot(prev)
        );
        true
    }

    /// The owning hub, after the greenlet suspended to park: the final CAS
    /// `SCHEDULED -> PARKED`. Returns `false` if a wake-up arrived since the
    /// greenlet last checked (the token is consumed and the hub must resume
    /// the greenlet again at once).
    pub fn park_commit(&self) -> bool {
        let mut cur = self.0.load(Acquire);
        loop {
            debug_assert_eq!(
                cur & LIFECYCLE,
                SCHEDULED,
                "State::park_commit: only the owning hub parks, and only a greenlet that it \
                 just ran (SCHEDULED): {:?}",
                Snapshot(cur)
            );
            let (next, parked) = if cur & NOTIFIED != 0 {
                (cur & !NOTIFIED, false)
            } else {
                ((cur & !LIFECYCLE) | PARKED, true)
            };
            match self.0.compare_exchange_weak(cur, next, AcqRel, Acquire) {
                Ok(_) => return parked,
                Err(actual) => cur = actual,
            }
        }
    }

    /// The owning hub: `SCHEDULED -> COMPLETE` (or `PARKED -> COMPLETE` for a
    /// greenlet leaked at shutdown, which will never run again). The output
    /// must already be stored. Returns the previous snapshot, from which the
    /// hub learns whether to wake a joiner (`JOIN_WAITER`) and whether anyone
    /// will read the output (`JOIN_INTEREST`).
    pub fn complete(&self) -> Snapshot {
        let mut cur = self.0.load(Acquire);
        loop {
            debug_assert_ne!(
                cur & LIFECYCLE,
                COMPLETE,
                "State::complete: completed twice (only the owning hub completes, once)"
            );
            let next = (cur & !LIFECYCLE & !NOTIFIED) | COMPLETE;
            match self.0.compare_exchange_weak(cur, next, AcqRel, Acquire) {
                Ok(_) => return Snapshot(cur),
                Err(actual) => cur = actual,
            }
        }
    }

    /// The joiner, after writing the join slot: publishes it. Fails (returns
    /// `false`) if the greenlet already completed; the slot is then not read.
    pub fn set_join_waiter(&self) -> bool {
        let mut cur = self.0.load(Acquire);
        loop {
            if cur & LIFECYCLE == COMPLETE {
                return false;
            }
            debug_assert!(
                cur & JOIN_INTEREST != 0 && cur & JOIN_WAITER == 0,
                "State::set_join_waiter: only the JoinHandle (JOIN_INTEREST) publishes the join \
                 slot, and only after taking it back (JOIN_WAITER clear): {:?}",
                Snapshot(cur)
            );
            match self
                .0
                .compare_exchange_weak(cur, cur | JOIN_WAITER, AcqRel, Acquire)
            {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// The joiner: takes back ownership of the join slot so it can rewrite it.
    /// Fails (returns `false`) if the greenlet already completed.
    pub fn unset_join_waiter(&self) -> bool {
        let mut cur = self.0.load(Acquire);
        loop {
            if cur & LIFECYCLE == COMPLETE {
                return false;
            }
            debug_assert!(
                cur & JOIN_INTEREST != 0 && cur & JOIN_WAITER != 0,
                "State::unset_join_waiter: only the JoinHandle (JOIN_INTEREST) takes back a join \
                 slot that it published (JOIN_WAITER set): {:?}",
                Snapshot(cur)
            );
            match self
                .0
                .compare_exchange_weak(cur, cur & !JOIN_WAITER, AcqRel, Acquire)
            {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// The `JoinHandle`'s drop: clears `JOIN_INTEREST`. Returns `true` if the
    /// greenlet already completed, in which case the caller drops the output.
    pub fn drop_join_interest(&self) -> bool {
        let mut cur = self.0.load(Acquire);
        loop {
            if cur & LIFECYCLE == COMPLETE {
                return true;
            }
            debug_assert!(
                cur & JOIN_INTEREST != 0,
                "State::drop_join_interest: the JoinHandle dropped twice: {:?}",
                Snapshot(cur)
            );
            match self
                .0
                .compare_exchange_weak(cur, cur & !JOIN_INTEREST, AcqRel, Acquire)
            {
                Ok(_) => return false,
                Err(actual) => cur = actual,
            }
        }
    }
}
