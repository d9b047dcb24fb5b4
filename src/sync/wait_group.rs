//! `WaitGroup`: wait for a counted set of tasks to finish (Go's
//! `sync.WaitGroup`).
//!
//! The counter and the wait list live behind one internal (loom-shim) mutex;
//! the `done` that brings the counter to zero drains the list.

use std::fmt;
use std::time::{Duration, Instant};

use crate::greenlet::runinfo::WaitKind;
use crate::loom::SpinLock;
use crate::sync::waitlist::{WaitList, Waited, wait, wake_all};

/// Waits for a collection of greenlets (or threads) to finish: Go's
/// `sync.WaitGroup`.
///
/// [`add`](Self::add) raises a counter by the number of tasks to wait for,
/// each task calls [`done`](Self::done) when it finishes, and
/// [`wait`](Self::wait) blocks until the counter is zero. All waiters are
/// released together, in arrival order. The group is reusable: once the
/// counter is zero, `add` starts a new round.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
///
/// greenhub::run(|| {
///     let wg = Arc::new(greenhub::sync::WaitGroup::new());
///     let finished = Arc::new(AtomicUsize::new(0));
///     for _ in 0..5 {
///         wg.add(1);
///         let (wg, finished) = (wg.clone(), finished.clone());
///         greenhub::spawn(move || {
///             greenhub::yield_now();
///             finished.fetch_add(1, SeqCst);
///             wg.done();
///         });
///     }
///     wg.wait();
///     assert_eq!(finished.load(SeqCst), 5);
/// });
/// ```
pub struct WaitGroup {
    state: SpinLock<State>,
}

struct State {
    count: usize,
    waiters: WaitList<()>,
}

impl Default for WaitGroup {
    fn default() -> Self {
        WaitGroup::new()
    }
}

impl WaitGroup {
    /// A group with a counter of zero (`wait` returns at once).
    ///
    /// ```
    /// greenhub::sync::WaitGroup::new().wait();
    /// ```
    pub fn new() -> WaitGroup {
        WaitGroup {
            state: SpinLock::new(State {
                count: 0,
                waiters: WaitList::new(),
            }),
        }
    }

    /// Adds `n` to the counter: `n` more `done` calls are awaited.
    ///
    /// # Panics
    ///
    /// If the counter would overflow `usize`.
    ///
    /// ```
    /// let wg = greenhub::sync::WaitGroup::new();
    /// wg.add(2);
    /// assert_eq!(wg.count(), 2);
    /// ```
    pub fn add(&self, n: usize) {
        let mut st = self.state.lock();
        let Some(count) = st.count.checked_add(n) else {
            drop(st);
            panic!("greenhub: WaitGroup counter overflow");
        };
        st.count = count;
    }

    /// Takes one off the counter; at zero, wakes every waiter.
    ///
    /// # Panics
    ///
    /// If the counter is already zero (more `done` calls than `add`ed), as
    /// Go's `WaitGroup` panics on a negative counter. The counter stays 0.
    ///
    /// ```
    /// let wg = greenhub::sync::WaitGroup::new();
    /// wg.add(1);
    /// wg.done();
    /// assert_eq!(wg.count(), 0);
    /// ```
    pub fn done(&self) {
        let mut st = self.state.lock();
        if st.count == 0 {
            drop(st);
            panic!("greenhub: WaitGroup::done called more times than add (negative counter)");
        }
        st.count -= 1;
        if st.count == 0 {
            let woken = st.waiters.drain(|_| {});
            drop(st);
            wake_all(woken);
        }
    }

    /// Blocks until the counter is zero. A cancellation point for kills and
    /// [`greenhub::timeout`](crate::timeout).
    ///
    /// ```
    /// use std::sync::Arc;
    /// let wg = Arc::new(greenhub::sync::WaitGroup::new());
    /// wg.add(1);
    /// let w = wg.clone();
    /// std::thread::spawn(move || w.done());
    /// wg.wait();
    /// assert_eq!(wg.count(), 0);
    /// ```
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Blocks until the counter is zero or `dur` passed; `true` if it
    /// reached zero.
    ///
    /// ```
    /// use std::time::Duration;
    /// let wg = greenhub::sync::WaitGroup::new();
    /// wg.add(1);
    /// assert!(!wg.wait_timeout(Duration::from_millis(2)));
    /// wg.done();
    /// assert!(wg.wait_timeout(Duration::from_millis(2)));
    /// ```
    pub fn wait_timeout(&self, dur: Duration) -> bool {
        self.wait_until(Instant::now().checked_add(dur))
    }

    /// The counter now (a snapshot).
    ///
    /// ```
    /// let wg = greenhub::sync::WaitGroup::new();
    /// assert_eq!(wg.count(), 0);
    /// ```
    pub fn count(&self) -> usize {
        self.state.lock().count
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        let st = self.state.lock();
        if st.count == 0 {
            return true;
        }
        let (st, waited) = wait(
            &self.state,
            st,
            |s| &mut s.waiters,
            (),
            deadline,
            WaitKind::WaitGroup,
        );
        drop(st);
        match waited {
            Waited::Done(()) => true,
            Waited::TimedOut(()) => false,
            Waited::Interrupted((), i) => i.raise(),
        }
    }
}

// No user code runs under the internal lock, so a panic never leaves the
// state half-updated: sharing a `&WaitGroup` across `catch_unwind` is fine.
impl std::panic::RefUnwindSafe for WaitGroup {}
impl std::panic::UnwindSafe for WaitGroup {}

impl fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.state.lock();
        f.debug_struct("WaitGroup")
            .field("count", &st.count)
            .field("waiters", &st.waiters.len())
            .finish()
    }
}
