//! Wake-everyone waiting with gevent's fairness: the wait lists of `Event`
//! and `AsyncResult`, and the rule that a late waiter queues behind the
//! waiters a wake-up is still delivering to.
//!
//! When the flag is set, every waiter is woken, but they run later (on
//! their hubs, in order). A caller that calls `wait` in between sees the
//! flag set; returning at once would let it overtake the waiters that were
//! there first. gevent (#1520) makes it wait its turn, and so does this: the
//! broadcast counts the waiters it woke that have not come back from their
//! `wait` yet (`notifying`), and a caller that finds the flag set while that
//! count is not zero waits on a second list (`late`). The last woken waiter
//! to come back wakes the late ones (counting them in turn), so they run
//! after it; the next `set`, if it comes first, wakes them as well.
//!
//! Every woken waiter comes back: its node was granted, and a granted wait
//! returns `Done` even when the waiter was killed or timed out meanwhile
//! (`waitlist`'s rule); a kill is raised at its next blocking point. So the
//! count always drains and a late waiter is never left behind. A late wait
//! with a deadline or a kill ends like any other wait (a deadline says "set",
//! since the flag was set when it started). Inside a `no_switch` scope, where
//! waiting is not allowed, a late wait returns at once, as it used to.

use std::time::Instant;

use crate::greenlet::runinfo::WaitKind;
use crate::greenlet::wait::Interrupt;
use crate::greenlet::waiter::Waiter;
use crate::loom::{SpinLock, SpinLockGuard};
use crate::sync::waitlist::{WaitList, Waited, wait, wake_all};

/// The waiters of a set-once-wakes-all flag (see the module docs). Lives in
/// the primitive's state, behind its lock, next to the flag.
pub(crate) struct Broadcast {
    /// Waiting for the flag.
    waiters: WaitList<()>,
    /// Waiting for the woken waiters to come back (the flag is set).
    late: WaitList<()>,
    /// Woken (granted) waiters that have not come back from `wait` yet.
    notifying: usize,
}

impl Broadcast {
    pub(crate) const fn new() -> Broadcast {
        Broadcast {
            waiters: WaitList::new(),
            late: WaitList::new(),
            notifying: 0,
        }
    }

    /// How many callers wait (for the flag, or behind the woken ones).
    pub(crate) fn len(&self) -> usize {
        self.waiters.len() + self.late.len()
    }

    /// The flag was just set: dequeues every waiter, to be woken after the
    /// lock is released. Late waiters still queued from an earlier `set`
    /// go too (first): they are then woken after the waiters they queued
    /// behind, which were woken before, and a flag set again and again
    /// while woken waiters are still coming back cannot hold them for ever.
    pub(crate) fn wake_all(&mut self) -> Vec<Waiter> {
        let mut woken = self.late.drain(|_| {});
        woken.extend(self.waiters.drain(|_| {}));
        self.notifying += woken.len();
        woken
    }

    /// A woken waiter came back: if it was the last one, the late waiters
    /// go next (returned, to be woken after the lock is released).
    fn came_back(&mut self) -> Vec<Waiter> {
        self.notifying -= 1;
        if self.notifying > 0 || self.late.is_empty() {
            return Vec::new();
        }
        let woken = self.late.drain(|_| {});
        self.notifying = woken.len();
        woken
    }
}

/// Waits on the broadcast `field(state)` until the flag `is_set(state)` is
/// set or `deadline` passes; `guard` is the primitive's lock, held. Returns
/// whether the flag was set (`Err` for a kill or an expired `timeout` frame,
/// to raise once the caller dropped what it holds). A caller that finds the
/// flag set returns at once, unless woken waiters have not run yet: then it
/// waits behind them (see the module docs).
pub(crate) fn wait_for<'a, S>(
    lock: &'a SpinLock<S>,
    mut guard: SpinLockGuard<'a, S>,
    field: impl Fn(&mut S) -> &mut Broadcast,
    is_set: impl Fn(&S) -> bool,
    deadline: Option<Instant>,
    kind: WaitKind,
) -> Result<bool, Interrupt> {
    let late = is_set(&guard);
    if late
        && (field(&mut guard).notifying == 0
            || deadline.is_some_and(|d| Instant::now() >= d)
            || crate::greenlet::stack_state::switch_forbidden())
    {
        return Ok(true);
    }
    let (mut st, waited) = wait(
        lock,
        guard,
        |s| {
            let b = field(s);
            if late { &mut b.late } else { &mut b.waiters }
        },
        (),
        deadline,
        kind,
    );
    match waited {
        Waited::Done(()) => {
            let woken = field(&mut st).came_back();
            drop(st);
            wake_all(woken);
            Ok(true)
        }
        Waited::TimedOut(()) => Ok(late || is_set(&st)),
        Waited::Interrupted((), interrupt) => Err(interrupt),
    }
}
