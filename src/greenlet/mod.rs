//! Greenlets: spawning, joining, and the calls that block only the caller.
//!
//! This module mirrors `std::thread`: [`spawn`] returns a [`JoinHandle`],
//! [`current`] names the running greenlet, [`yield_now`], [`sleep`], [`park`]
//! and [`Greenlet::unpark`] behave like their std twins, and [`Builder`] sets
//! a name and stack size. The difference is the unit: a greenlet is a stackful
//! coroutine scheduled by a greenhub hub, and a blocking call suspends only
//! the greenlet, letting the hub run others.
//!
//! Every blocking call also works off a greenlet, on a plain OS thread: there
//! it blocks the thread, exactly like std.
//!
//! Internals: `task.rs` is the control block, `state.rs` the park/wake
//! protocol, `completion.rs` the join protocol, `reason.rs` the reason of
//! `JoinHandle::kill_with`, `waiter.rs` the "greenlet or thread" wake-up
//! target.

pub(crate) mod alloc;
pub(crate) mod completion;
pub(crate) mod reason;
pub(crate) mod runinfo;
pub(crate) mod state;
pub(crate) mod task;
#[cfg(feature = "tracing")]
pub(crate) mod tracing;
pub(crate) mod wait;
pub(crate) mod waiter;

mod builder;
mod join;
// Greenlet-local storage (`greenhub::local!`); its per-greenlet map lives in
// the task `Header`.
pub(crate) mod local;
// Per-stack state (ambient deadline, locals, `no_switch` depth) and how raw
// switches keep it with its stack.
pub(crate) mod stack_state;
pub(crate) mod timeout;

use std::any::Any;
use std::fmt;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub use builder::Builder;
pub use join::{JoinAll, JoinHandle, Joined, joinall};
pub use local::{AccessError, LocalKey};
pub use stack_state::no_switch;

use crate::hub::{HubContext, context};
use runinfo::{WaitKind, WaitOn};
use task::{HubRef, RawTask, Suspend, TaskRef};
use waiter::Waiter;

/// A greenlet's unique identifier within the process.
///
/// ```
/// greenhub::run(|| {
///     let a = greenhub::spawn(|| greenhub::current().id());
///     let b = greenhub::spawn(|| greenhub::current().id());
///     let (ida, idb) = (a.id(), b.id());
///     assert_ne!(ida, idb);
///     assert_eq!(a.join().unwrap(), ida);
/// # b.join().unwrap();
/// });
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GreenletId(NonZeroU64);

/// Process-wide id counter (not part of any protocol, hence a plain std
/// atomic rather than the loom shim).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl GreenletId {
    /// Reserves `n` consecutive ids and returns the first.
    pub(crate) fn reserve(n: u64) -> u64 {
        NEXT_ID.fetch_add(n, Ordering::Relaxed)
    }

    pub(crate) fn from_u64(id: u64) -> GreenletId {
        GreenletId(NonZeroU64::new(id).expect("greenhub: greenlet id 0"))
    }

    /// A fresh id, for greenlets spawned off the hubs.
    pub(crate) fn next() -> GreenletId {
        GreenletId::from_u64(GreenletId::reserve(1))
    }

    /// The id as a number (unique in the process, never 0).
    ///
    /// ```
    /// greenhub::run(|| assert!(greenhub::current().id().as_u64() > 0));
    /// ```
    pub fn as_u64(&self) -> u64 {
        self.0.get()
    }
}

impl fmt::Debug for GreenletId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GreenletId({})", self.0)
    }
}

impl fmt::Display for GreenletId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A handle to a greenlet: its identity, and a way to unpark it.
///
/// The twin of `std::thread::Thread`. Obtained from [`current`] or
/// [`JoinHandle::greenlet`].
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
///
/// greenhub::run(|| {
///     let flag = Arc::new(AtomicBool::new(false));
///     let f2 = flag.clone();
///     let waiter = greenhub::spawn(move || {
///         while !f2.load(Ordering::Acquire) {
///             greenhub::park();
///         }
///     });
///     flag.store(true, Ordering::Release);
///     waiter.greenlet().unpark();
///     waiter.join().unwrap();
/// });
/// ```
#[derive(Clone)]
pub struct Greenlet {
    task: TaskRef,
}

impl Greenlet {
    pub(crate) fn from_task(task: TaskRef) -> Greenlet {
        Greenlet { task }
    }

    /// The greenlet's id.
    ///
    /// ```
    /// greenhub::run(|| {
    ///     let me = greenhub::current();
    ///     assert_eq!(me.id(), greenhub::current().id());
    /// });
    /// ```
    pub fn id(&self) -> GreenletId {
        self.task.header().id
    }

    /// The greenlet's name, if it was given one with [`Builder::name`].
    ///
    /// ```
    /// greenhub::run(|| {
    ///     let h = greenhub::greenlet::Builder::new()
    ///         .name("worker".into())
    ///         .spawn(|| greenhub::current().name().map(String::from))
    ///         .unwrap();
    ///     assert_eq!(h.join().unwrap().as_deref(), Some("worker"));
    /// });
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.task.header().name()
    }

    /// Makes the greenlet's current or next [`park`] return, like
    /// `std::thread::Thread::unpark`. May be called from any thread.
    ///
    /// ```
    /// greenhub::run(|| {
    ///     let me = greenhub::current();
    ///     me.unpark(); // the token makes the next park return at once
    ///     greenhub::park();
    /// });
    /// ```
    pub fn unpark(&self) {
        Waiter::Greenlet(self.task.clone()).wake();
    }

    /// Kills the greenlet, exactly as [`JoinHandle::kill`] does. Crate-internal:
    /// `pool::Group` (and `Pool`, `scope`) kill their members through the
    /// `Greenlet` handles they keep, since the members' `JoinHandle`s belong to
    /// the caller.
    pub(crate) fn kill(&self) {
        if self.task.header().state.kill() {
            crate::hub::schedule(self.task.clone());
        }
    }
}

impl fmt::Debug for Greenlet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Greenlet")
            .field("id", &self.id())
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}

/// Spawns a greenlet on the current runtime and returns its [`JoinHandle`].
///
/// In M:N mode (the default) the greenlet is queued on the calling hub and
/// may be stolen by an idle hub *before it starts*; once started it stays on
/// one OS thread for its whole life. In pinned and single-threaded mode it
/// runs on the calling hub.
///
/// # Panics
///
/// Panics when called outside a greenhub runtime (use
/// [`Handle::spawn`](crate::Handle::spawn) or [`Builder::spawn`] for a
/// `Result`). During a runtime shutdown the greenlet is not started and its
/// handle reports it as killed.
///
/// ```
/// greenhub::run(|| {
///     let h = greenhub::spawn(|| 6 * 7);
///     assert_eq!(h.join().unwrap(), 42);
/// });
/// ```
#[track_caller]
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Builder::new()
        .spawn(f)
        .unwrap_or_else(|e| panic!("greenhub::spawn: {e}"))
}

/// Spawns a greenlet that stays on the current hub, from a closure that need
/// not be `Send`.
///
/// The greenlet is never moved to another hub, so it can share `Rc` and
/// `RefCell` state with the greenlets of this hub. Combined with pinned or
/// single-threaded mode this is gevent's model: state shared between the
/// greenlets of one hub needs no lock.
///
/// # Panics
///
/// Panics when not called from a greenlet or hub thread.
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
///
/// let rt = greenhub::Builder::new().single_threaded().build().unwrap();
/// rt.block_on(|| {
///     let log = Rc::new(RefCell::new(Vec::new()));
///     let l2 = log.clone();
///     let h = greenhub::spawn_local(move || l2.borrow_mut().push("child"));
///     h.join().unwrap();
///     assert_eq!(*log.borrow(), ["child"]);
/// });
/// ```
#[track_caller]
pub fn spawn_local<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    Builder::new()
        .spawn_local(f)
        .unwrap_or_else(|e| panic!("greenhub::spawn_local: {e}"))
}

/// The greenlet that calls it.
///
/// # Panics
///
/// Panics when called off a greenlet; see [`try_current`].
///
/// ```
/// greenhub::run(|| {
///     println!("I am greenlet {}", greenhub::current().id());
/// });
/// ```
#[track_caller]
pub fn current() -> Greenlet {
    try_current().expect("greenhub::current() called outside a greenlet")
}

/// The greenlet that calls it, or `None` on a plain thread.
///
/// ```
/// assert!(greenhub::greenlet::try_current().is_none());
/// greenhub::run(|| assert!(greenhub::greenlet::try_current().is_some()));
/// ```
pub fn try_current() -> Option<Greenlet> {
    context::current_task().map(Greenlet::from_task)
}

/// Lets the hub run other greenlets, then continues. Like gevent's `sleep(0)`.
/// On a plain thread, `std::thread::yield_now`.
///
/// The caller goes to the back of its hub's run queue. In single-threaded
/// mode that means every greenlet runnable at the time of the call runs
/// first, exactly as in gevent; in M:N mode other hubs may of course run
/// greenlets in parallel.
///
/// A killed greenlet, or one whose [`timeout`](crate::timeout) expired,
/// unwinds here.
///
/// ```
/// let rt = greenhub::Builder::new().single_threaded().build().unwrap();
/// rt.block_on(|| {
///     let h = greenhub::spawn(|| "ran");
///     greenhub::yield_now(); // the child gets a turn
///     assert!(h.is_finished());
/// # h.join().unwrap();
/// });
/// ```
#[inline]
pub fn yield_now() {
    match context::current_raw() {
        Some(task) => {
            // SAFETY: the hub holds an `Arc` to the running greenlet, and a
            // started greenlet stays alive (in its hub's live set) while it
            // is suspended.
            let task = unsafe { task.as_ref() };
            if let Some(i) = wait::pending_interrupt(task, None) {
                i.raise();
            }
            let before = unwinding_now();
            suspend(task, Suspend::Yield);
            if let Some(i) = wait::pending_interrupt(task, before) {
                i.raise();
            }
        }
        None => {
            std::thread::yield_now();
            if let wait::Wake::Interrupted(i) = wait::check_thread_interrupt() {
                i.raise();
            }
        }
    }
}

/// Wakes `waiter`, which the running caller has just handed something to
/// (a rendezvous send), and, when it is a greenlet of the caller's own hub,
/// switches to it at once: it goes to the front of the run queue and the
/// caller to the back, so it runs next and the caller resumes after it
/// (gevent's `Channel` order; Go's `runnext`, which also makes ping-pong
/// cheap). Anywhere else (a plain thread on either side, another hub, a
/// migratable greenlet, inside `no_switch`, a killed or unwinding caller) it
/// is a plain wake-up.
///
/// Never raises: what was handed over stays handed over, and a kill or an
/// expired `timeout` frame that arrives while the caller is switched out is
/// raised at its next blocking point (the wait lists' rule for a grant).
pub(crate) fn wake_and_yield_to(waiter: Waiter) {
    let target = match waiter {
        Waiter::Greenlet(task) => task,
        other => return other.wake(),
    };
    let Some(me) = context::current_raw() else {
        return Waiter::Greenlet(target).wake();
    };
    // SAFETY: the hub holds an `Arc` to the running greenlet, and a started
    // greenlet stays alive (in its hub's live set) while it is suspended.
    let me = unsafe { me.as_ref() };
    let header = me.header();
    if header.state.load().is_killed()
        || header.stack().switch_forbidden()
        || std::thread::panicking()
    {
        return Waiter::Greenlet(target).wake();
    }
    if !target.header().state.wake() {
        return;
    }
    #[cfg(feature = "tracing")]
    crate::greenlet::tracing::wake(target.header().id);
    if crate::hub::schedule_next(target) {
        suspend(me, Suspend::Yield);
    }
}

/// Blocks the calling greenlet until its token is made available by
/// [`Greenlet::unpark`], like `std::thread::park` (and on a plain thread it is
/// `std::thread::park`). May return spuriously: call it in a loop that checks
/// a condition.
///
/// If the greenlet has been killed, or the deadline of an enclosing
/// [`timeout`](crate::timeout) passes, `park` unwinds instead of blocking.
///
/// ```
/// greenhub::run(|| {
///     let me = greenhub::current();
///     let h = greenhub::spawn(move || me.unpark());
///     greenhub::park();
///     h.join().unwrap();
/// });
/// ```
pub fn park() {
    if let wait::Wake::Interrupted(i) = wait::park_until(None, WaitOn::new(WaitKind::Park, 0)) {
        i.raise();
    }
}

/// Like [`park`], returning after `dur` at the latest. Like `park` it may
/// return early (spuriously), so wait in a loop:
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::time::{Duration, Instant};
///
/// greenhub::run(|| {
///     let ready = Arc::new(AtomicBool::new(false)); // nobody sets it
///     let deadline = Instant::now() + Duration::from_millis(20);
///     while !ready.load(Ordering::Acquire) {
///         let now = Instant::now();
///         if now >= deadline {
///             break; // timed out
///         }
///         greenhub::greenlet::park_timeout(deadline - now);
///     }
///     assert!(Instant::now() >= deadline);
/// });
/// ```
pub fn park_timeout(dur: Duration) {
    if let wait::Wake::Interrupted(i) = wait::park_until(
        Instant::now().checked_add(dur),
        WaitOn::new(WaitKind::Park, 0),
    ) {
        i.raise();
    }
}

/// Suspends the calling greenlet for at least `dur`; other greenlets run
/// meanwhile. `sleep(Duration::ZERO)` is [`yield_now`] (gevent's `sleep(0)`).
/// On a plain thread, `std::thread::sleep`.
///
/// ```
/// use std::time::{Duration, Instant};
/// greenhub::run(|| {
///     let t = Instant::now();
///     let a = greenhub::spawn(|| greenhub::sleep(Duration::from_millis(50)));
///     let b = greenhub::spawn(|| greenhub::sleep(Duration::from_millis(50)));
///     a.join().unwrap();
///     b.join().unwrap();
///     // Both slept at the same time.
///     assert!(t.elapsed() < Duration::from_millis(100));
/// });
/// ```
pub fn sleep(dur: Duration) {
    if dur.is_zero() {
        return yield_now();
    }
    let deadline = Instant::now().checked_add(dur);
    loop {
        match wait::park_until(deadline, WaitOn::new(WaitKind::Sleep, 0)) {
            wait::Wake::TimedOut => return,
            wait::Wake::Interrupted(i) => i.raise(),
            wait::Wake::Woken => {}
        }
    }
}

/// Ends the running greenlet without unwinding it: it suspends for good, and
/// its hub never resumes it, forgets its stack (leaked, never freed or
/// reused, so whatever its frames lend out stays valid) and completes it as
/// killed, so that joiners return (`HubContext::abandon`). Destructors of
/// its frames never run, and what they hold (a lock guard, an open socket, a
/// reference count) is held for good. For a killed greenlet that cannot
/// unwind: blocked inside foreign code behind an `extern "C"` boundary (the
/// `patch` hooks: `killed.rs`, the futex hook). Off a greenlet it aborts the
/// process: there is nothing to abandon, and no way back.
///
/// The caller must hold nothing that other greenlets or threads wait for
/// through greenhub's wait lists (it left every one). On a raw greenlet's
/// stack the whole family goes with it: the raw stacks are owned by frames
/// that are never dropped.
#[cfg(all(feature = "patch", not(loom)))]
pub(crate) fn abandon_current() -> ! {
    if let Some(task) = context::current_raw() {
        // SAFETY: the hub holds an `Arc` to the running greenlet.
        let task = unsafe { task.as_ref() };
        suspend(task, Suspend::Abandon);
    }
    // Never reached on a greenlet: its hub never resumes it.
    std::process::abort()
}

/// Suspends the running greenlet `task` and returns the hub that resumed it.
#[inline]
fn suspend<'a>(task: &dyn RawTask, why: Suspend) -> &'a HubContext {
    crate::loom::assert_no_spin_lock();
    // SAFETY: `task` is the running greenlet (callers got it from the hub's
    // current pointer), so we are on its stack.
    let yielder = unsafe { task.header().yielder() };
    let hub: HubRef = yielder.suspend(why);
    hub.get()
}

/// Whether an unwinding payload is greenhub's kill signal.
pub(crate) fn is_kill_payload(payload: &(dyn Any + Send)) -> bool {
    payload.is::<wait::KillSignal>()
}

/// Whether the running greenlet is unwinding (from a panic or a kill), if
/// that can be told. `std::thread::panicking()` counts per OS thread, and a
/// greenlet suspended while it unwinds (blocked in a destructor) keeps it set
/// for every greenlet of its hub; but when the thread was not panicking when
/// the hub resumed us, a panic in progress now is ours.
#[inline]
fn unwinding_now() -> Option<bool> {
    if !std::thread::panicking() {
        Some(false)
    } else {
        unwinding_while_thread_panics()
    }
}

#[cold]
fn unwinding_while_thread_panics() -> Option<bool> {
    if context::hub().is_some_and(|h| !h.panicking_at_resume()) {
        Some(true)
    } else {
        None
    }
}
