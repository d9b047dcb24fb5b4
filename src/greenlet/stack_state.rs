//! State that belongs to a *stack*, and the one mechanism that keeps it with
//! its stack across every switch.
//!
//! Some of greenhub's "current" state is a property of the code running on
//! one call stack, not of the OS thread or of the hub greenlet:
//!
//! - the *ambient deadline* of the innermost [`timeout`](crate::timeout)
//!   frame (a pointer into that frame, restored in nesting order);
//! - the greenlet-local values of [`local!`](crate::local!) (`with` hands out
//!   references that the stack may hold while it is suspended);
//! - the depth of [`no_switch`] scopes.
//!
//! A [`StackState`] holds all three. There is an *active* one per context: the
//! running hub greenlet's (in its task header) or, off a greenlet, the
//! thread's. Hub switches need nothing more, since each hub greenlet has its
//! own header. Raw greenlets and generators run several stacks inside one
//! context, so each raw greenlet keeps a saved `StackState` of its own, and
//! the raw switching engine exchanges it with the active one around every
//! resume ([`Entered`]): on the way in and, however the resume ends, on the
//! way out. So whatever a stack stores here is seen only by that stack, and
//! LIFO restores (a `timeout` frame putting back its predecessor) only ever
//! meet their own stack's values. A new per-stack feature adds a field here
//! and to [`StackState::swap`], and cannot repeat the bugs this fixes (a
//! freed stack's `timeout` frame restored into a live one; a raw greenlet's
//! `with` reference into its hub greenlet's values, freed before it).
//!
//! # The resumer's deadline
//!
//! A raw greenlet (or generator) also sees the deadline in force in the code
//! that runs its family (the main greenlet of its tree, waiting in the
//! `switch` or `resume` that runs the tree), as an *outer* deadline: a
//! `timeout` around `gen.next()` bounds the blocking calls made inside the
//! generator. It is a pointer to the frame whose deadline is in force for
//! that code when it resumes the child (one of its own frames, or its own
//! outer one), valid while the child runs because the code is suspended
//! inside that frame until the child hands control back (the root loop of
//! `raw::tree` runs on its stack), and it is cleared before the child's
//! state is saved again. It is taken afresh at every resume, so a deadline
//! that the resumer cancelled or moved (`Timeout`) counts from the next
//! resume on; while the child runs, the resumer's frames cannot change
//! (their `&Timeout` handles are on the resumer's stack, and a child's
//! closure is `'static`). When
//! the outer deadline is the one that expires, the child unwinds with a
//! payload its own frames do not claim; the switching engine raises it in
//! the child's parent, and from there it reaches the frame that set it.
//!
//! # Who touches what
//!
//! Only the context that owns an active state touches it (the greenlet on its
//! one thread, or the thread). A saved state is touched only by the raw
//! switching engine of its context, while its raw greenlet is not running.

use std::cell::Cell;
use std::ptr::NonNull;

use crate::greenlet::local::LocalMap;
use crate::greenlet::task::RawTask;
use crate::greenlet::wait::AmbientCell;
use crate::hub::context;

/// What belongs to one stack; see the module docs.
pub(crate) struct StackState {
    /// The innermost `timeout` frame's deadline (and the resumer's).
    pub(crate) ambient: AmbientCell,
    /// The stack's `local!` values.
    pub(crate) locals: LocalMap,
    /// How many [`no_switch`] scopes are open on the stack. Not exchanged
    /// by [`swap`](Self::swap): no switch happens while it is non-zero.
    no_switch: Cell<u32>,
}

impl StackState {
    pub(crate) const fn new() -> StackState {
        StackState {
            ambient: AmbientCell::new(),
            locals: LocalMap::new(),
            no_switch: Cell::new(0),
        }
    }

    /// Exchanges the per-stack values of `self` and `other`.
    #[inline]
    pub(crate) fn swap(&self, other: &StackState) {
        self.ambient.swap(&other.ambient);
        self.locals.swap(&other.locals);
    }

    /// Whether no `timeout` frame and no `no_switch` scope is in force: the
    /// common case, which lets a blocking call skip the interrupt checks.
    #[inline]
    pub(crate) fn quiet(&self) -> bool {
        self.ambient.is_empty() && self.no_switch.get() == 0
    }

    /// Whether a [`no_switch`] scope is open on this stack.
    #[inline]
    pub(crate) fn switch_forbidden(&self) -> bool {
        self.no_switch.get() != 0
    }
}

/// The thread's state, for code running off a greenlet; its `local!` values
/// are dropped when the thread exits.
struct ThreadStack(StackState);

impl Drop for ThreadStack {
    fn drop(&mut self) {
        self.0.locals.destroy();
    }
}

thread_local! {
    static THREAD_STACK: ThreadStack = const { ThreadStack(StackState::new()) };
}

/// Runs `f` with the active state of the caller's context: its greenlet's if
/// it runs on one, else its thread's. `None` only while the thread is being
/// torn down (its thread-locals destroyed); callers then behave as if no
/// per-stack state existed.
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(&StackState) -> R) -> Option<R> {
    with_state_of(context::current_raw(), f)
}

/// [`with_current`] for a caller that has already looked up its greenlet
/// (`context::current_raw()`), so the lookup is not made twice.
#[inline]
pub(crate) fn with_state_of<R>(
    task: Option<NonNull<dyn RawTask>>,
    f: impl FnOnce(&StackState) -> R,
) -> Option<R> {
    match task {
        // SAFETY: `task` is the running greenlet (the caller's own lookup);
        // the hub holds an `Arc` to it while it runs, and only the greenlet
        // itself (that is, the caller) touches the state.
        Some(task) => Some(f(unsafe { task.as_ref() }.header().stack())),
        None => THREAD_STACK.try_with(|t| f(&t.0)).ok(),
    }
}

/// Puts a raw greenlet's saved state in place of the active one until
/// dropped (see the module docs). Created by the raw switching engine right
/// before it resumes a coroutine, dropped right after the resume returns.
pub(crate) struct Entered<'a> {
    saved: &'a StackState,
    /// The active state of the context, null during thread teardown (then
    /// nothing is exchanged).
    active: *const StackState,
}

impl<'a> Entered<'a> {
    /// Makes `saved` the active state. `inherit`: whether the raw greenlet
    /// gets the resumer's deadline as its outer deadline (not when it is
    /// being unwound by a drop: nothing of it may raise then).
    #[inline]
    pub(crate) fn new(saved: &'a StackState, inherit: bool) -> Entered<'a> {
        let active = with_current(|s| s as *const StackState).unwrap_or(std::ptr::null());
        // SAFETY: `active` is the context's state (a task header the hub
        // keeps alive while its greenlet runs, or this thread's state, alive
        // until the thread exits), and only this context touches it.
        if let Some(a) = unsafe { active.as_ref() } {
            let outer = if inherit { a.ambient.in_force() } else { None };
            a.swap(saved);
            // SAFETY: `outer` is the frame in force for the resumer (on
            // its stack, or its own outer frame, on a stack that encloses
            // it), and the resumer stays suspended inside it until this
            // `Entered` drops: it is the code that resumes the child and
            // waits for it.
            unsafe { a.ambient.set_outer(outer) };
        }
        Entered { saved, active }
    }
}

impl Drop for Entered<'_> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: as in `new`: the same context, still alive.
        if let Some(a) = unsafe { self.active.as_ref() } {
            a.swap(self.saved);
            // The child's copy of the resumer's frame must not outlive the
            // resume.
            // SAFETY: clearing stores no pointer.
            unsafe { self.saved.ambient.set_outer(None) };
        }
    }
}

/// Runs `f` in a scope in which no greenlet switch may happen on the caller's
/// stack: a greenhub call that would suspend the greenlet (to wait, yield,
/// or run another greenlet) panics instead, and so does a
/// [`raw`](crate::raw) switch.
///
/// Use it around code that relies on stack discipline across the calls it
/// makes, the pattern greenlets cannot honour: a thread-local that stores a
/// pointer to the current stack frame and restores the previous one in LIFO
/// order (the `scoped-tls` crate, `tracing`'s scoped dispatcher `with_default`,
/// a `RefCell` borrow or std lock guard that must end before anyone else on
/// the thread runs). If two greenlets of one hub interleave such scopes, each
/// restores the other's pointer, which then dangles into a suspended or freed
/// stack. Inside `no_switch`, such an interleaving becomes a clear panic at
/// the call that would have switched, instead of undefined behaviour later.
///
/// Greenhub calls that complete without switching (an uncontended lock, a
/// ready channel, `spawn`) work as usual. Off a greenlet, blocking calls
/// block the thread as usual (that switches nothing), and only raw switches
/// panic. A blocking call made inside the scope while the stack is already
/// unwinding from a panic cannot raise a second panic: it aborts the process
/// with a message. Scopes nest.
///
/// ```
/// use std::time::Duration;
///
/// greenhub::run(|| {
///     // Fine: nothing here switches (`spawn` only queues the greenlet).
///     let h = greenhub::no_switch(|| greenhub::spawn(|| 1));
///     assert_eq!(h.join().unwrap(), 1);
///
///     // A call that would suspend the greenlet panics instead.
///     let r = std::panic::catch_unwind(|| {
///         greenhub::no_switch(|| greenhub::sleep(Duration::from_millis(1)))
///     });
///     let msg = r.unwrap_err().downcast::<String>().unwrap();
///     assert!(msg.contains("no_switch"));
///
///     // Outside the scope, switching is allowed again.
///     greenhub::sleep(Duration::from_millis(1));
/// });
/// ```
pub fn no_switch<R>(f: impl FnOnce() -> R) -> R {
    /// Closes the scope on return and on unwind.
    struct Close;
    impl Drop for Close {
        fn drop(&mut self) {
            with_current(|s| s.no_switch.set(s.no_switch.get() - 1));
        }
    }
    if with_current(|s| s.no_switch.set(s.no_switch.get() + 1)).is_none() {
        // Thread teardown: nothing can be tracked; nothing is scheduled on
        // this thread any more either.
        return f();
    }
    let _close = Close;
    f()
}

/// Whether the caller is inside a [`no_switch`] scope.
#[inline]
pub(crate) fn switch_forbidden() -> bool {
    switch_forbidden_for(context::current_raw())
}

/// [`switch_forbidden`] for a caller that has already looked up its
/// greenlet (`task`: `context::current_raw()`).
#[inline]
pub(crate) fn switch_forbidden_for(task: Option<NonNull<dyn RawTask>>) -> bool {
    with_state_of(task, StackState::switch_forbidden).unwrap_or(false)
}

/// The panic message of a switch attempted inside [`no_switch`].
pub(crate) const NO_SWITCH_MSG: &str = "greenhub: a greenlet switch was attempted inside `greenhub::no_switch` (a blocking call that had to wait, a yield, or a raw switch); this scope forbids it because the code inside relies on no other greenlet running on this thread until it ends";
