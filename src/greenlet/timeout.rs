//! `timeout`: gevent's `Timeout` as a scoped call, and `timeout_with`, whose
//! block gets a [`Timeout`] handle to cancel or move its own deadline.
//!
//! A frame links its deadline in front of the caller's chain of *ambient*
//! deadlines (see `greenlet::wait`), runs the closure, and unlinks it. The
//! ambient deadline belongs to the caller's stack (`greenlet::stack_state`),
//! so frames on different stacks (greenlets, raw greenlets, generators) never
//! restore each other's. Every
//! blocking call inside parks with the ambient deadline too; when it is what
//! ends the park, the call unwinds with the frame's id and the frame returns
//! `Err(Elapsed)`.

use std::cell::Cell;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::wait::{Ambient, TimeoutSignal, with_ambient};

/// Frame ids; process-wide so a payload can never name the wrong frame.
static NEXT_FRAME: AtomicU64 = AtomicU64::new(1);

/// The error of a [`timeout`] whose deadline passed before its closure
/// returned.
///
/// ```
/// use std::time::Duration;
/// greenhub::run(|| {
///     let err = greenhub::timeout(Duration::from_millis(5), || {
///         greenhub::sleep(Duration::from_secs(10))
///     })
///     .unwrap_err();
///     assert_eq!(err.to_string(), "deadline has elapsed");
///     let io: std::io::Error = err.into();
///     assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
/// });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Elapsed(());

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(e: Elapsed) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::TimedOut, e)
    }
}

/// Runs `f`, cancelling whatever blocking call it is in when `dur` has
/// passed: that call unwinds (destructors run) and `timeout` returns
/// `Err(Elapsed)`. gevent's `with Timeout(dur):`; [`timeout_with`] is the
/// form whose block can cancel its deadline (`Timeout.cancel()`).
///
/// Every blocking call of greenhub is a cancellation point: [`sleep`],
/// [`park`], [`yield_now`], joins, channel and queue operations, locks,
/// events. Code that computes without blocking is not interrupted (as in
/// gevent); it sees `Err(Elapsed)` only if it blocks after the deadline.
/// If `f` returns a value, that value is returned, even when the deadline
/// passed meanwhile: a value that arrived is never thrown away.
///
/// Frames nest; each fires for itself. An inner frame whose deadline is later
/// than its outer one's is cut short by the outer one, and only the outer
/// call returns `Err`.
///
/// Works on greenlets and on plain threads (where it interrupts greenhub's
/// blocking calls, not std's). A kill passes through a `timeout` untouched.
/// Differences from gevent: the deadline is a `Result`, not an exception the
/// caller catches, and a `catch_unwind` inside `f` that swallows the
/// cancellation only delays it: the next blocking call in the frame raises it
/// again.
///
/// ```
/// use std::time::Duration;
///
/// greenhub::run(|| {
///     let (tx, rx) = greenhub::channel::unbounded::<u32>();
///     let got = greenhub::timeout(Duration::from_millis(20), || rx.recv());
///     assert!(got.is_err()); // nobody sent anything
///
///     tx.send(7).unwrap();
///     let got = greenhub::timeout(Duration::from_millis(20), || rx.recv());
///     assert_eq!(got, Ok(Ok(7)));
///
///     // Nested frames: the outer one (10 ms) fires first.
///     let outer = greenhub::timeout(Duration::from_millis(10), || {
///         greenhub::timeout(Duration::from_secs(60), || {
///             greenhub::sleep(Duration::from_secs(60));
///         })
///     });
///     assert!(outer.is_err());
/// });
/// ```
///
/// [`sleep`]: crate::sleep
/// [`park`]: crate::park
/// [`yield_now`]: crate::yield_now
pub fn timeout<T>(dur: Duration, f: impl FnOnce() -> T) -> Result<T, Elapsed> {
    match Instant::now().checked_add(dur) {
        Some(at) => timeout_at(at, f),
        // A deadline past the end of time never fires.
        None => Ok(f()),
    }
}

/// [`timeout`] with an absolute deadline.
///
/// ```
/// use std::time::{Duration, Instant};
///
/// let deadline = Instant::now() + Duration::from_millis(10);
/// let r = greenhub::timeout_at(deadline, || greenhub::sleep(Duration::from_secs(5)));
/// assert!(r.is_err()); // works on a plain thread too
/// ```
pub fn timeout_at<T>(deadline: Instant, f: impl FnOnce() -> T) -> Result<T, Elapsed> {
    frame(Some(deadline), |_| f())
}

/// [`timeout`] whose block gets a [`Timeout`] handle to its own frame, to
/// cancel the deadline (gevent's `Timeout.cancel()`) or move it from inside
/// the block.
///
/// ```
/// use std::time::Duration;
///
/// greenhub::run(|| {
///     // Bound only the connect phase; once connected, take all the time
///     // needed.
///     let r = greenhub::timeout_with(Duration::from_millis(50), |t| {
///         greenhub::sleep(Duration::from_millis(1)); // "connect"
///         t.cancel();
///         greenhub::sleep(Duration::from_millis(100)); // past the 50 ms
///         "done"
///     });
///     assert_eq!(r, Ok("done"));
/// });
/// ```
pub fn timeout_with<T>(dur: Duration, f: impl FnOnce(&Timeout) -> T) -> Result<T, Elapsed> {
    // A deadline past the end of time never fires (a later `reset` may
    // still set one).
    frame(Instant::now().checked_add(dur), f)
}

/// [`timeout_with`] with an absolute deadline.
///
/// ```
/// use std::time::{Duration, Instant};
///
/// let deadline = Instant::now() + Duration::from_secs(60);
/// let r = greenhub::timeout_at_with(deadline, |t| {
///     assert_eq!(t.deadline(), Some(deadline));
///     t.reset(Duration::from_millis(10)); // sooner after all
///     greenhub::sleep(Duration::from_secs(5))
/// });
/// assert!(r.is_err()); // works on a plain thread too
/// ```
pub fn timeout_at_with<T>(deadline: Instant, f: impl FnOnce(&Timeout) -> T) -> Result<T, Elapsed> {
    frame(Some(deadline), f)
}

/// The frame of a [`timeout_with`] block, handed to the block by reference:
/// the block may cancel its deadline, or set a new one, while it runs.
/// gevent's `Timeout` object inside `with Timeout(...) as t:`.
///
/// Changes take effect at the block's next blocking call (the block is
/// running, not blocked, when it makes them): after
/// [`cancel`](Timeout::cancel) the frame never fires, and after
/// [`reset`](Timeout::reset) it fires at the new deadline. Enclosing frames
/// are not affected: an outer `timeout` that comes first still fires. A
/// deadline that has already cut a blocking call short (the call is
/// unwinding) cannot be taken back: the frame then returns `Err(Elapsed)`.
///
/// # Why a borrowed handle, not a guard
///
/// The handle only exists as `&Timeout` inside the closure, and the frame
/// it names lives on the block's stack for exactly as long as the closure
/// runs. So there is nothing to leak or to drop out of order: unlike a
/// `Timeout::start()` guard, which `mem::forget` could keep registered
/// after its stack frame is gone, or which two interleaved guards could
/// unregister in the wrong order, the frame is always removed when the
/// closure returns or unwinds, however the handle was used. `Timeout` is
/// neither `Send` nor `Sync`, so the handle cannot reach another greenlet
/// (not even a scoped one) or thread, and a raw greenlet or generator
/// resumed inside the block cannot reach it either (their closures are
/// `'static`).
///
/// ```compile_fail
/// use std::time::Duration;
///
/// greenhub::run(|| {
///     greenhub::timeout_with(Duration::from_secs(1), |t| {
///         // error: `Timeout` cannot be shared between threads safely
///         greenhub::scope(|s| s.spawn(|| t.cancel()).join())
///     })
/// });
/// ```
///
/// ```
/// use std::time::Duration;
///
/// greenhub::run(|| {
///     let (tx, rx) = greenhub::channel::unbounded::<u32>();
///     greenhub::spawn(move || {
///         for i in 0..3 {
///             greenhub::sleep(Duration::from_millis(5));
///             tx.send(i).unwrap();
///         }
///     });
///     // An idle timeout: each message re-arms the deadline.
///     let got = greenhub::timeout_with(Duration::from_millis(500), |t| {
///         let mut got = Vec::new();
///         while let Ok(v) = rx.recv() {
///             got.push(v);
///             t.reset(Duration::from_millis(500));
///         }
///         got
///     });
///     assert_eq!(got, Ok(vec![0, 1, 2]));
/// });
/// ```
pub struct Timeout(Ambient);

impl Timeout {
    /// Cancels the deadline: the frame no longer fires (gevent's
    /// `Timeout.cancel()`). Idempotent; [`reset`](Timeout::reset) arms it
    /// again.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let r = greenhub::timeout_with(Duration::from_millis(1), |t| {
    ///     t.cancel();
    ///     assert_eq!(t.deadline(), None);
    ///     greenhub::sleep(Duration::from_millis(20));
    /// });
    /// assert_eq!(r, Ok(()));
    /// ```
    pub fn cancel(&self) {
        self.0.at.set(None);
    }

    /// Sets the deadline to `dur` from now, whether or not it was cancelled
    /// (gevent's `cancel()` then `start()`). A `dur` past the end of time
    /// cancels it.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let r = greenhub::timeout_with(Duration::from_secs(60), |t| {
    ///     t.reset(Duration::from_millis(1));
    ///     greenhub::sleep(Duration::from_secs(60));
    /// });
    /// assert!(r.is_err());
    /// ```
    pub fn reset(&self, dur: Duration) {
        self.0.at.set(Instant::now().checked_add(dur));
    }

    /// Sets the deadline to `deadline` (see [`reset`](Timeout::reset)).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let r = greenhub::timeout_with(Duration::from_secs(60), |t| {
    ///     t.reset_at(Instant::now());
    ///     greenhub::sleep(Duration::from_secs(60));
    /// });
    /// assert!(r.is_err());
    /// ```
    pub fn reset_at(&self, deadline: Instant) {
        self.0.at.set(Some(deadline));
    }

    /// The frame's own deadline; `None` once cancelled (gevent's
    /// `pending`, roughly). Enclosing frames may still have one.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// greenhub::timeout_with(Duration::from_secs(1), |t| {
    ///     assert!(t.deadline().is_some());
    ///     t.cancel();
    ///     assert!(t.deadline().is_none());
    /// })
    /// .unwrap();
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        self.0.at.get()
    }
}

impl fmt::Debug for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("deadline", &self.deadline())
            .finish()
    }
}

/// One `timeout` frame: links a [`Timeout`] in front of the stack's chain of
/// frames, runs `f`, and unlinks it, on return and on unwind.
fn frame<T>(deadline: Option<Instant>, f: impl FnOnce(&Timeout) -> T) -> Result<T, Elapsed> {
    let id = NEXT_FRAME.fetch_add(1, Ordering::Relaxed);
    let prev = with_ambient(|c| c.ptr()).flatten();
    let mine = Timeout(Ambient {
        at: Cell::new(deadline),
        frame: id,
        prev,
    });
    // Declared after `mine`, so dropped (restoring `prev`) before it.
    let _restore = Restore(prev);
    // SAFETY: `mine` lives in this frame, unmoved, until after `_restore`
    // put `prev` back, on return and on unwind; `prev` is the enclosing
    // frame of this stack, which outlives this one. The cell is this
    // stack's own (every switch exchanges per-stack state,
    // `greenlet::stack_state`), so no other stack's frame can restore over
    // it or read it once this frame is gone. The block gets only `&mine`,
    // borrowed for the call of `f`: it can change the deadline (a `Cell`)
    // but can neither move the frame nor keep it past this call.
    with_ambient(|c| unsafe { c.set(Some(NonNull::from(&mine.0))) });
    match panic::catch_unwind(AssertUnwindSafe(|| f(&mine))) {
        Ok(value) => Ok(value),
        Err(payload) => match payload.downcast_ref::<TimeoutSignal>() {
            Some(sig) if sig.0 == id => Err(Elapsed(())),
            _ => panic::resume_unwind(payload),
        },
    }
}

/// Puts the enclosing frame's deadline back, on return and on unwind.
struct Restore(Option<NonNull<Ambient>>);

impl Drop for Restore {
    fn drop(&mut self) {
        // SAFETY: `self.0` is what the enclosing frame stored, still alive.
        with_ambient(|c| unsafe { c.set(self.0) });
    }
}
