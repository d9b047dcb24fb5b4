//! `AsyncResult`: a value or an error delivered once to many waiters
//! (gevent.event.AsyncResult).

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::greenlet::runinfo::WaitKind;
use crate::loom::SpinLock;
use crate::sync::broadcast::{Broadcast, wait_for};
use crate::sync::waitlist::wake_all;

/// The error an [`AsyncResult`] was completed with. Cheap to clone: every
/// waiter gets the same error.
///
/// ```
/// let r = greenhub::sync::AsyncResult::<u32>::new();
/// r.set_error("backend down").unwrap();
/// let err = r.get().unwrap_err();
/// assert_eq!(err.to_string(), "backend down");
/// ```
#[derive(Clone)]
pub struct AsyncError(Arc<dyn Error + Send + Sync>);

impl AsyncError {
    /// The error as given to [`AsyncResult::set_error`].
    ///
    /// ```
    /// let r = greenhub::sync::AsyncResult::<()>::new();
    /// r.set_error(std::io::Error::other("x")).unwrap();
    /// assert!(r.get().unwrap_err().get_ref().is::<std::io::Error>());
    /// ```
    pub fn get_ref(&self) -> &(dyn Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl fmt::Debug for AsyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for AsyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Error for AsyncError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.0)
    }
}

/// A one-shot result that many greenlets (or threads) can wait for:
/// gevent's `AsyncResult`.
///
/// One party completes it with [`set`](Self::set) or
/// [`set_error`](Self::set_error); every waiter, present or future, then
/// gets a clone of the outcome. It can be completed only once: a second
/// `set` is refused and hands the value back (gevent lets a second `set`
/// overwrite; here a waiter can never see two different outcomes).
///
/// Like [`Event`](crate::sync::Event), a `wait` or `get` that finds it
/// completed while the waiters woken by the completion have not run yet
/// waits its turn behind them (gevent's order).
///
/// ```
/// use std::sync::Arc;
///
/// greenhub::run(|| {
///     let answer = Arc::new(greenhub::sync::AsyncResult::new());
///     let readers: Vec<_> = (0..3)
///         .map(|_| {
///             let answer = answer.clone();
///             greenhub::spawn(move || answer.get().unwrap())
///         })
///         .collect();
///     answer.set(42).unwrap();
///     for r in readers {
///         assert_eq!(r.join().unwrap(), 42);
///     }
/// });
/// ```
pub struct AsyncResult<T> {
    state: SpinLock<State>,
    /// The outcome, behind greenhub's parking mutex rather than the spin
    /// lock: `get` clones it, and a user `Clone` may block (no user code
    /// runs under a `SpinLock`). A getter blocked in `clone` makes the other
    /// getters park on this mutex, never spin.
    outcome: crate::sync::Mutex<Option<Result<T, AsyncError>>>,
}

struct State {
    /// `Some(successful)` once completed (the outcome is stored first).
    done: Option<bool>,
    waiters: Broadcast,
}

impl<T> Default for AsyncResult<T> {
    fn default() -> Self {
        AsyncResult::new()
    }
}

impl<T> AsyncResult<T> {
    /// A result that is not ready yet.
    ///
    /// ```
    /// let r = greenhub::sync::AsyncResult::<i32>::new();
    /// assert!(!r.is_ready());
    /// ```
    pub fn new() -> AsyncResult<T> {
        AsyncResult {
            state: SpinLock::new(State {
                done: None,
                waiters: Broadcast::new(),
            }),
            outcome: crate::sync::Mutex::new(None),
        }
    }

    /// Completes it with a value and wakes every waiter. Refused (the value
    /// is handed back) if it was already completed.
    ///
    /// ```
    /// let r = greenhub::sync::AsyncResult::new();
    /// assert!(r.set(1).is_ok());
    /// assert_eq!(r.set(2), Err(2));
    /// assert_eq!(r.get().unwrap(), 1);
    /// ```
    pub fn set(&self, value: T) -> Result<(), T> {
        self.complete(Ok(value)).map_err(|r| match r {
            Ok(v) => v,
            Err(_) => unreachable!(),
        })
    }

    /// Completes it with an error and wakes every waiter. Refused (`Err`) if
    /// it was already completed.
    ///
    /// ```
    /// let r = greenhub::sync::AsyncResult::<u8>::new();
    /// r.set_error("failed").unwrap();
    /// assert!(r.set_error("again").is_err());
    /// assert!(!r.is_successful());
    /// ```
    pub fn set_error(
        &self,
        err: impl Into<Box<dyn Error + Send + Sync>>,
    ) -> Result<(), AsyncError> {
        let err = AsyncError(Arc::from(err.into()));
        self.complete(Err(err)).map_err(|r| match r {
            Err(e) => e,
            Ok(_) => unreachable!(),
        })
    }

    fn complete(&self, outcome: Result<T, AsyncError>) -> Result<(), Result<T, AsyncError>> {
        // The outcome first (under its own mutex: it may wait for a getter's
        // `clone`), then the flag and the waiters (under the spin lock).
        let mut slot = self.outcome.lock();
        if slot.is_some() {
            return Err(outcome);
        }
        let successful = outcome.is_ok();
        *slot = Some(outcome);
        drop(slot);
        let mut st = self.state.lock();
        st.done = Some(successful);
        let woken = st.waiters.wake_all();
        drop(st);
        wake_all(woken);
        Ok(())
    }

    /// Whether it has been completed (gevent's `ready()`).
    ///
    /// ```
    /// let r = greenhub::sync::AsyncResult::new();
    /// r.set("x").unwrap();
    /// assert!(r.is_ready());
    /// ```
    pub fn is_ready(&self) -> bool {
        self.state.lock().done.is_some()
    }

    /// Whether it has been completed with a value (gevent's `successful()`).
    ///
    /// ```
    /// let r = greenhub::sync::AsyncResult::new();
    /// assert!(!r.is_successful());
    /// r.set(()).unwrap();
    /// assert!(r.is_successful());
    /// ```
    pub fn is_successful(&self) -> bool {
        self.state.lock().done == Some(true)
    }

    /// Waits until it is completed.
    ///
    /// ```
    /// use std::sync::Arc;
    /// greenhub::run(|| {
    ///     let r = Arc::new(greenhub::sync::AsyncResult::new());
    ///     let r2 = r.clone();
    ///     greenhub::spawn(move || r2.set(5).unwrap());
    ///     r.wait();
    ///     assert!(r.is_ready());
    /// });
    /// ```
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Waits until it is completed or `dur` passed; returns whether it is
    /// completed.
    ///
    /// ```
    /// use std::time::Duration;
    /// let r = greenhub::sync::AsyncResult::<()>::new();
    /// assert!(!r.wait_timeout(Duration::from_millis(2)));
    /// ```
    pub fn wait_timeout(&self, dur: Duration) -> bool {
        self.wait_until(Instant::now().checked_add(dur))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        match wait_for(
            &self.state,
            self.state.lock(),
            |s| &mut s.waiters,
            |s| s.done.is_some(),
            deadline,
            WaitKind::AsyncResult,
        ) {
            Ok(done) => done,
            Err(interrupt) => interrupt.raise(),
        }
    }
}

impl<T: Clone> AsyncResult<T> {
    /// Waits until it is completed and returns a clone of the outcome.
    ///
    /// ```
    /// let r = greenhub::sync::AsyncResult::new();
    /// r.set(String::from("hi")).unwrap();
    /// assert_eq!(r.get().unwrap(), "hi");
    /// ```
    pub fn get(&self) -> Result<T, AsyncError> {
        self.wait();
        self.try_get()
            .expect("greenhub: completed AsyncResult has no outcome")
    }

    /// Waits at most `dur`; `None` if it was not completed by then.
    ///
    /// ```
    /// use std::time::Duration;
    /// let r = greenhub::sync::AsyncResult::<u8>::new();
    /// assert!(r.get_timeout(Duration::from_millis(1)).is_none());
    /// r.set(3).unwrap();
    /// assert_eq!(r.get_timeout(Duration::from_millis(1)).unwrap().unwrap(), 3);
    /// ```
    pub fn get_timeout(&self, dur: Duration) -> Option<Result<T, AsyncError>> {
        self.wait_timeout(dur);
        self.try_get()
    }

    /// The outcome if it is completed, without waiting for completion
    /// (gevent's `get(block=False)`). Clones are made one at a time: if
    /// another caller's `T::clone` is in progress (and blocks), this waits
    /// for it to finish.
    ///
    /// ```
    /// let r = greenhub::sync::AsyncResult::<u8>::new();
    /// assert!(r.try_get().is_none());
    /// ```
    pub fn try_get(&self) -> Option<Result<T, AsyncError>> {
        // Pending: `None` without touching the parking mutex.
        self.state.lock().done?;
        // `T::clone` is user code: under the parking mutex, not the spin lock.
        self.outcome.lock().clone()
    }
}

impl<T> fmt::Debug for AsyncResult<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.state.lock();
        let state = match st.done {
            None => "pending",
            Some(true) => "value",
            Some(false) => "error",
        };
        f.debug_struct("AsyncResult")
            .field("state", &state)
            .field("waiters", &st.waiters.len())
            .finish()
    }
}
