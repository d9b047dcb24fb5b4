//! The one blocking core under every greenhub primitive: park until woken, a
//! deadline, or an interrupt (a kill or an expired [`timeout`] frame).
//!
//! Primitives (channels, locks, events, join) never suspend a greenlet
//! themselves; they call [`park_until`], which
//!
//! - on a greenlet arms a hub timer for the earlier of the caller's own
//!   deadline and the innermost `timeout` deadline, and suspends the greenlet;
//! - on a plain OS thread parks the thread (`park_timeout`);
//! - never unwinds. It *reports* an interrupt as [`Wake::Interrupted`], so the
//!   primitive can first take its wait node out of its queue (or keep a value
//!   that was handed over meanwhile: a value that arrived wins over a timeout
//!   or a kill, which are then raised at the next blocking point), and only
//!   then call [`Interrupt::raise`].
//!
//! # Timeouts
//!
//! `timeout(dur, f)` does not arm anything itself: it records a deadline (the
//! *ambient* deadline) for the current greenlet, or for the current thread off
//! a greenlet, and every blocking call inside `f` parks with that deadline as
//! well as its own. When the ambient deadline is what ends a park, the
//! blocking call unwinds with a payload naming the `timeout` frame that set
//! it, and that frame's `catch_unwind` turns it into `Err(Elapsed)`. The
//! frames of one stack form a chain, and the earliest deadline among them is
//! the one in force, so each frame fires for itself; a frame that catches
//! another frame's payload re-raises it. A frame's deadline may change while
//! it runs (`timeout_with`'s `Timeout::cancel` and `reset`): it is read
//! afresh by every blocking call, never copied into another frame.
//!
//! [`timeout`]: crate::timeout

use std::any::Any;
use std::cell::Cell;
use std::panic;
use std::ptr::NonNull;
use std::time::Instant;

use crate::greenlet::runinfo::WaitOn;
use crate::greenlet::stack_state::{self, StackState, with_current};
use crate::greenlet::task::{RawTask, Suspend};
use crate::greenlet::waiter::Waiter;
use crate::greenlet::{suspend, unwinding_now};
use crate::hub::context;

/// One `timeout` frame's deadline record, living in that frame (it is the
/// inside of the public [`Timeout`](crate::Timeout) handle). Frames of one
/// stack form a chain, innermost first, through `prev`.
pub(crate) struct Ambient {
    /// The frame's deadline; `None` once cancelled
    /// ([`Timeout::cancel`](crate::Timeout::cancel)). Changed only by the
    /// code of the frame's own block, through its `&Timeout`.
    pub(crate) at: Cell<Option<Instant>>,
    /// The frame's id, which its timeout payload names.
    pub(crate) frame: u64,
    /// The enclosing frame on the same stack, if any. It encloses this one,
    /// so it outlives it: the whole chain from a live frame is alive.
    pub(crate) prev: Option<NonNull<Ambient>>,
}

/// The deadline in force, and which frame set it (a snapshot).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline {
    pub(crate) at: Instant,
    pub(crate) frame: u64,
}

impl Ambient {
    /// The earliest deadline among `first` and the frames enclosing it, and
    /// the frame that set it; on a tie the outer frame wins, so that it
    /// fires for itself.
    ///
    /// # Safety
    ///
    /// `first` points at a live frame (then so do all its `prev`s).
    unsafe fn earliest(first: NonNull<Ambient>) -> Option<(Deadline, NonNull<Ambient>)> {
        let mut best: Option<(Deadline, NonNull<Ambient>)> = None;
        let mut next = Some(first);
        while let Some(p) = next {
            // SAFETY: the caller's promise: the chain from a live frame is
            // alive; only shared references are made (the fields that
            // change are `Cell`s).
            let a = unsafe { p.as_ref() };
            if let Some(at) = a.at.get() {
                if best.is_none_or(|(b, _)| at <= b.at) {
                    best = Some((Deadline { at, frame: a.frame }, p));
                }
            }
            next = a.prev;
        }
        best
    }
}

/// Where a stack keeps its ambient deadline (see `greenlet::stack_state`): a
/// pointer to the [`Ambient`] of its innermost `timeout` frame, which lives
/// in that frame (the enclosing ones are reached through its chain), and,
/// for a raw greenlet while it runs, one to the frame in force where it was
/// resumed from (its *outer* deadline).
pub(crate) struct AmbientCell {
    own: Cell<Option<NonNull<Ambient>>>,
    outer: Cell<Option<NonNull<Ambient>>>,
}

impl AmbientCell {
    pub(crate) const fn new() -> AmbientCell {
        AmbientCell {
            own: Cell::new(None),
            outer: Cell::new(None),
        }
    }

    /// Whether no frame is open (its deadline may still be cancelled when
    /// one is).
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.own.get().is_none() && self.outer.get().is_none()
    }

    /// The deadline in force (the earliest of the stack's own frames and its
    /// outer one) and the frame that set it, if any.
    #[inline]
    fn earliest(&self) -> Option<(Deadline, NonNull<Ambient>)> {
        // SAFETY: a pointer is only stored by `set`, whose caller keeps the
        // `Ambient` alive until it stores the previous pointer back, or by
        // `set_outer`, whose caller keeps it alive until it clears it; only
        // the owning stack's context reads the cell.
        let own = self.own.get().and_then(|p| unsafe { Ambient::earliest(p) });
        let outer = self.outer.get().and_then(|p| {
            // SAFETY: as above. Only the outer frame itself counts: it was
            // the earliest in force for the resumer when it was stored, and
            // the resumer's frames cannot change while it waits for us.
            let a = unsafe { p.as_ref() };
            a.at.get().map(|at| (Deadline { at, frame: a.frame }, p))
        });
        match (own, outer) {
            (Some(o), Some(u)) => Some(if u.0.at < o.0.at { u } else { o }),
            (o, u) => o.or(u),
        }
    }

    /// The frame whose deadline is in force, if any.
    #[inline]
    pub(crate) fn in_force(&self) -> Option<NonNull<Ambient>> {
        self.earliest().map(|(_, p)| p)
    }

    /// The deadline in force, if any.
    #[inline]
    pub(crate) fn get(&self) -> Option<Deadline> {
        self.earliest().map(|(d, _)| d)
    }

    /// The stack's own innermost frame (what a new frame restores).
    pub(crate) fn ptr(&self) -> Option<NonNull<Ambient>> {
        self.own.get()
    }

    /// # Safety
    ///
    /// `p` points at an `Ambient` that stays alive, unmoved, until the cell
    /// is set back to what it held before; only the owner calls this.
    pub(crate) unsafe fn set(&self, p: Option<NonNull<Ambient>>) {
        self.own.set(p)
    }

    /// # Safety
    ///
    /// `p` points at an `Ambient` that stays alive, unmoved, until the cell's
    /// outer pointer is cleared; only the raw switching engine calls this
    /// (`stack_state::Entered`).
    pub(crate) unsafe fn set_outer(&self, p: Option<NonNull<Ambient>>) {
        self.outer.set(p)
    }

    /// Exchanges the contents of two cells (a raw switch).
    #[inline]
    pub(crate) fn swap(&self, other: &AmbientCell) {
        self.own.swap(&other.own);
        self.outer.swap(&other.outer);
    }
}

/// Runs `f` with the ambient-deadline cell of the caller's stack; `None`
/// only during thread teardown (see `stack_state::with_current`).
pub(crate) fn with_ambient<R>(f: impl FnOnce(&AmbientCell) -> R) -> Option<R> {
    with_current(|s| f(&s.ambient))
}

/// Why a blocking call must end by unwinding.
#[derive(Debug)]
pub(crate) enum Interrupt {
    /// The greenlet was killed.
    Kill,
    /// The deadline of the `timeout` frame with this id passed.
    Timeout(u64),
    /// The call would switch greenlets inside a `no_switch` scope.
    NoSwitch,
}

/// The payload a killed greenlet unwinds with.
pub(crate) struct KillSignal;

/// The payload a blocking call unwinds with when a `timeout` frame expires.
pub(crate) struct TimeoutSignal(pub(crate) u64);

impl Interrupt {
    /// Unwinds the caller (without running the panic hook, except for
    /// `NoSwitch`, a usage error that panics with its message).
    pub(crate) fn raise(self) -> ! {
        let payload: Box<dyn Any + Send> = match self {
            Interrupt::Kill => Box::new(KillSignal),
            Interrupt::Timeout(frame) => Box::new(TimeoutSignal(frame)),
            Interrupt::NoSwitch => panic!("{}", stack_state::NO_SWITCH_MSG),
        };
        panic::resume_unwind(payload)
    }
}

/// How a [`park_until`] ended.
#[derive(Debug)]
pub(crate) enum Wake {
    /// Woken, or spuriously: the caller re-checks its condition.
    Woken,
    /// The caller's own deadline passed.
    TimedOut,
    /// Killed, or a `timeout` frame expired: clean up, then `raise`.
    Interrupted(Interrupt),
}

/// Parks the caller until it is woken (through the [`Waiter`] it registered),
/// `deadline` passes, or it is interrupted. May return `Woken` spuriously.
/// Never unwinds.
/// `on` says what the caller waits for, for the run-info dump.
pub(crate) fn park_until(deadline: Option<Instant>, on: WaitOn) -> Wake {
    match context::current_raw() {
        // SAFETY: the hub holds an `Arc` to the running greenlet, and a
        // started greenlet stays alive (in its hub's live set) while it is
        // suspended.
        Some(task) => park_greenlet_until(unsafe { task.as_ref() }, deadline, on),
        None => park_thread_until(deadline),
    }
}

/// Returns the interrupt pending for the running greenlet `task`, if one can
/// be raised now. `before` is whether the greenlet was unwinding when it last
/// suspended, if known (see `unwinding_now`).
#[inline]
pub(crate) fn pending_interrupt(task: &dyn RawTask, before: Option<bool>) -> Option<Interrupt> {
    let header = task.header();
    let killed = header.state.load().is_killed();
    if !killed && header.stack().quiet() {
        return None;
    }
    pending_interrupt_slow(killed, header.stack(), before)
}

#[cold]
fn pending_interrupt_slow(
    killed: bool,
    stack: &StackState,
    before: Option<bool>,
) -> Option<Interrupt> {
    let found = interrupt_now(killed, stack.ambient.get(), before);
    // A call that is about to suspend inside `no_switch` must not: it
    // raises instead (a panic; if the stack is already unwinding, Rust
    // aborts the process, after the panic hook printed the message). Only
    // the check before a suspend can see this: nothing suspends while the
    // scope is open, so none is open when a greenlet is resumed.
    if found.is_none() && stack.switch_forbidden() {
        return Some(Interrupt::NoSwitch);
    }
    found
}

fn interrupt_now(
    killed: bool,
    ambient: Option<Deadline>,
    before: Option<bool>,
) -> Option<Interrupt> {
    match unwinding_now().or(before) {
        Some(false) => {}
        // Raising while already unwinding (a destructor that blocks during a
        // kill or a panic) would abort the process; the greenlet then blocks
        // normally and is interrupted at its next blocking point after the
        // unwinding ends.
        Some(true) => return None,
        // Another greenlet of this hub is suspended mid-unwind, and we may be
        // unwinding too: do not raise now, but do not lose a kill either. The
        // hub wakes us again once none of its greenlets is mid-unwind.
        None => {
            if killed {
                if let (Some(hub), Some(task)) = (context::hub(), context::current_task()) {
                    hub.defer_kill(task);
                }
            }
            return None;
        }
    }
    if killed {
        return Some(Interrupt::Kill);
    }
    match ambient {
        Some(a) if Instant::now() >= a.at => Some(Interrupt::Timeout(a.frame)),
        _ => None,
    }
}

/// The deadline to arm: the earlier of the caller's and the ambient one.
///
/// An ambient deadline that has already passed is kept (the park then ends
/// at once and the interrupt check after it raises the frame's timeout),
/// unless `raisable` says it cannot be raised now (the caller is unwinding,
/// see `pending_interrupt_slow`): then arming it would only spin, and it is
/// left out. It may have passed after the caller's interrupt check, a moment
/// ago; dropping it then would park with no deadline at all, for ever.
fn effective(
    deadline: Option<Instant>,
    ambient: Option<Deadline>,
    raisable: impl FnOnce() -> bool,
) -> Option<Instant> {
    let ambient = ambient
        .map(|a| a.at)
        .filter(|&at| deadline.is_some_and(|d| d <= at) || at > Instant::now() || raisable());
    match (deadline, ambient) {
        (Some(d), Some(a)) => Some(d.min(a)),
        (d, a) => d.or(a),
    }
}

fn outcome(deadline: Option<Instant>) -> Wake {
    match deadline {
        Some(d) if Instant::now() >= d => Wake::TimedOut,
        _ => Wake::Woken,
    }
}

fn park_greenlet_until(task: &dyn RawTask, deadline: Option<Instant>, on: WaitOn) -> Wake {
    if let Some(i) = pending_interrupt(task, None) {
        return Wake::Interrupted(i);
    }
    let header = task.header();
    if !header.state.take_notified() {
        let until = effective(deadline, header.stack().ambient.get(), || {
            unwinding_now() == Some(false)
        });
        header.wait_record().set_wait(on, until);
        #[cfg(feature = "tracing")]
        crate::greenlet::tracing::park(on);
        let _timer = until.map(TimerGuard::arm);
        let before = unwinding_now();
        suspend(task, Suspend::Park);
        if let Some(i) = pending_interrupt(task, before) {
            return Wake::Interrupted(i);
        }
    }
    outcome(deadline)
}

/// Parks the running greenlet `task` until it is woken or `deadline` passes,
/// ignoring kills and `timeout` frames: they stay pending for the next
/// interruptible blocking point (a kill's wake-up may end this park early,
/// spuriously). For a wait that cannot report an interrupt to its caller
/// (the `patch` futex hook: std retries an interrupted futex wait at once).
/// Returns `Woken` (maybe spuriously) or `TimedOut`.
#[cfg(all(feature = "patch", not(loom)))]
pub(crate) fn park_uninterruptible(
    task: &dyn RawTask,
    deadline: Option<Instant>,
    on: WaitOn,
) -> Wake {
    let header = task.header();
    if !header.state.take_notified() {
        header.wait_record().set_wait(on, deadline);
        #[cfg(feature = "tracing")]
        crate::greenlet::tracing::park(on);
        let _timer = deadline.map(TimerGuard::arm);
        suspend(task, Suspend::Park);
    }
    outcome(deadline)
}

#[cfg(not(loom))]
fn park_thread_until(deadline: Option<Instant>) -> Wake {
    crate::loom::assert_no_spin_lock();
    let ambient = with_ambient(AmbientCell::get).flatten();
    let interrupt = || match ambient {
        Some(a) if !std::thread::panicking() && Instant::now() >= a.at => {
            Some(Interrupt::Timeout(a.frame))
        }
        _ => None,
    };
    if let Some(i) = interrupt() {
        return Wake::Interrupted(i);
    }
    match effective(deadline, ambient, || !std::thread::panicking()) {
        None => std::thread::park(),
        Some(at) => {
            let now = Instant::now();
            if at > now {
                std::thread::park_timeout(at - now);
            }
        }
    }
    if let Some(i) = interrupt() {
        return Wake::Interrupted(i);
    }
    outcome(deadline)
}

/// Under loom, time does not exist: a park with a deadline models the
/// deadline passing at an arbitrary point, by yielding to the other threads
/// once and then reporting `TimedOut`; a park without one is loom's park.
#[cfg(loom)]
fn park_thread_until(deadline: Option<Instant>) -> Wake {
    match deadline {
        None => {
            crate::loom::thread::park();
            Wake::Woken
        }
        Some(_) => {
            crate::loom::thread::yield_now();
            Wake::TimedOut
        }
    }
}

/// A timer that wakes the current greenlet, disarmed on drop.
pub(crate) struct TimerGuard {
    key: crate::time::heap::TimerKey,
    /// Index of the hub whose heap holds the timer. A greenlet only ever
    /// runs on hubs of its own runtime, so the index names the hub.
    hub: usize,
}

impl TimerGuard {
    pub(crate) fn arm(deadline: Instant) -> TimerGuard {
        let hub = context::hub().expect("greenhub: timer outside a hub");
        let key = hub.add_timer(deadline, Waiter::current());
        TimerGuard {
            key,
            hub: hub.index,
        }
    }
}

impl Drop for TimerGuard {
    fn drop(&mut self) {
        // Only the hub that armed the timer may touch its heap. A greenlet
        // that stays on its hub (the default) always drops the guard there.
        // A migratable one may have moved (`hub::migrate`): the old hub is
        // asked to cancel it (a timer that fires before it does is a
        // spurious wake-up, which every park tolerates). Left armed, it would
        // keep the greenlet alive and hold up a shutdown until it fired.
        if let Some(hub) = context::hub() {
            if hub.index == self.hub {
                hub.cancel_timer(self.key);
            } else if let Some(armed_on) = hub.shared.hubs.get(self.hub) {
                armed_on.cancel_timer_later(self.key);
            }
        }
    }
}

/// Off a greenlet: the deadline to block until, the earlier of `deadline`
/// and the thread's `timeout` frame.
#[cfg(not(loom))]
pub(crate) fn thread_deadline(deadline: Option<Instant>) -> Option<Instant> {
    effective(deadline, with_ambient(AmbientCell::get).flatten(), || {
        !std::thread::panicking()
    })
}

/// Off a greenlet: the expired `timeout` frame to raise, if any (as
/// `Wake::Interrupted`; else `Wake::Woken`).
pub(crate) fn check_thread_interrupt() -> Wake {
    #[cfg(not(loom))]
    if let Some(a) = with_ambient(AmbientCell::get).flatten() {
        if !std::thread::panicking() && Instant::now() >= a.at {
            return Wake::Interrupted(Interrupt::Timeout(a.frame));
        }
    }
    Wake::Woken
}
