//! `timeout`: gevent's `Timeout` as a scoped call.
//!
//! A frame records its deadline as the caller's *ambient* deadline (see
//! `greenlet::wait`), runs the closure, and restores the previous one. The
//! ambient deadline belongs to the caller's stack (`greenlet::stack_state`),
//! so frames on different stacks (greenlets, raw greenlets, generators) never
//! restore each other's. Every
//! blocking call inside parks with the ambient deadline too; when it is what
//! ends the park, the call unwinds with the frame's id and the frame returns
//! `Err(Elapsed)`.

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
/// `Err(Elapsed)`. gevent's `with Timeout(dur):`.
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
    let frame = NEXT_FRAME.fetch_add(1, Ordering::Relaxed);
    let prev = with_ambient(|c| c.ptr()).flatten();
    let mine = Ambient {
        at: deadline,
        frame,
    };
    // An outer deadline that comes first stays in force.
    // SAFETY: `prev` was stored by an enclosing frame that is still running.
    let outer_first = prev.is_some_and(|p| unsafe { p.as_ref() }.at <= deadline);
    let in_force = if outer_first {
        prev
    } else {
        Some(NonNull::from(&mine))
    };
    // Declared after `mine`, so dropped (restoring `prev`) before it.
    let _restore = Restore(prev);
    // SAFETY: `mine` lives in this frame until after `_restore` put `prev`
    // back, on return and on unwind; the cell is this stack's own (every
    // switch exchanges per-stack state, `greenlet::stack_state`), so no other
    // stack's frame can restore over it or read it once this frame is gone.
    with_ambient(|c| unsafe { c.set(in_force) });
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => Ok(value),
        Err(payload) => match payload.downcast_ref::<TimeoutSignal>() {
            Some(sig) if sig.0 == frame => Err(Elapsed(())),
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
