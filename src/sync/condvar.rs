//! `Condvar`: condition variables over greenhub's [`Mutex`], FIFO wake order.
//!
//! A waiter links its node into the condvar's wait list *before* it unlocks
//! the mutex (holding the condvar's internal lock across both), so a notify
//! issued by anyone who took the mutex after it cannot be missed. A notify
//! pops nodes from the front under that internal lock, so wake order is
//! arrival order. A woken waiter then locks the mutex again (queueing FIFO
//! behind other lockers).

use std::fmt;
use std::time::{Duration, Instant};

use crate::greenlet::runinfo::WaitKind;
use crate::loom::SpinLock;
use crate::sync::mutex::MutexGuard;
use crate::sync::waitlist::{WaitList, Waited, wait, wake_all};

/// A condition variable for greenlets and threads, used with
/// [`greenhub::sync::Mutex`](super::Mutex) (std's API).
///
/// [`wait`](Self::wait) atomically unlocks the mutex and parks the caller
/// until a [`notify_one`](Self::notify_one) or
/// [`notify_all`](Self::notify_all), then locks the mutex again. Waiters are
/// notified in the order they started waiting. Wake-ups are never spurious
/// here, but (as with every condvar) the condition may have changed again by
/// the time the waiter holds the mutex: loop on it, or use
/// [`wait_while`](Self::wait_while).
///
/// Differences from [`std::sync::Condvar`]: no poisoning; one condvar may be
/// used with several mutexes (std panics); a waiter that is killed or whose
/// [`greenhub::timeout`](crate::timeout) expires unwinds *without* locking
/// the mutex again, and a notification it had already received is not lost:
/// it is treated as received (as a waiter that returned would).
///
/// ```
/// use std::sync::Arc;
/// use greenhub::sync::{Condvar, Mutex};
///
/// greenhub::run(|| {
///     let pair = Arc::new((Mutex::new(false), Condvar::new()));
///     let p2 = pair.clone();
///     let h = greenhub::spawn(move || {
///         let (ready, cv) = &*p2;
///         let mut r = ready.lock();
///         while !*r {
///             r = cv.wait(r);
///         }
///     });
///     *pair.0.lock() = true;
///     pair.1.notify_one();
///     h.join().unwrap();
/// });
/// ```
pub struct Condvar {
    waiters: SpinLock<WaitList<()>>,
}

/// Whether a timed condvar wait returned because its time ran out.
///
/// ```
/// use std::time::Duration;
/// use greenhub::sync::{Condvar, Mutex};
/// let (m, cv) = (Mutex::new(()), Condvar::new());
/// let (_g, res) = cv.wait_timeout(m.lock(), Duration::from_millis(1));
/// assert!(res.timed_out());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// `true` if the wait ended because the timeout passed (not notified).
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenhub::sync::{Condvar, Mutex};
    /// let (m, cv) = (Mutex::new(1), Condvar::new());
    /// let (g, res) = cv.wait_timeout_while(m.lock(), Duration::from_secs(5), |v| *v == 0);
    /// assert!(!res.timed_out());
    /// assert_eq!(*g, 1);
    /// ```
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

impl Default for Condvar {
    fn default() -> Self {
        Condvar::new()
    }
}

impl Condvar {
    /// A condvar with no waiters.
    ///
    /// ```
    /// let cv = greenhub::sync::Condvar::new();
    /// cv.notify_all(); // nobody waits: a no-op
    /// ```
    pub fn new() -> Condvar {
        Condvar {
            waiters: SpinLock::new(WaitList::new()),
        }
    }

    /// Unlocks `guard`'s mutex, parks until notified, then locks it again.
    ///
    /// A cancellation point: a kill or an expired `timeout` frame unwinds
    /// out of it (the mutex is then left unlocked).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use greenhub::sync::{Condvar, Mutex};
    /// greenhub::run(|| {
    ///     let s = Arc::new((Mutex::new(0), Condvar::new()));
    ///     let s2 = s.clone();
    ///     greenhub::spawn(move || {
    ///         *s2.0.lock() = 7;
    ///         s2.1.notify_all();
    ///     });
    ///     let mut g = s.0.lock();
    ///     while *g == 0 {
    ///         g = s.1.wait(g);
    ///     }
    ///     assert_eq!(*g, 7);
    /// });
    /// ```
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.wait_until(guard, None).0
    }

    /// Waits until `condition` returns `false`, re-checking it (with the
    /// mutex held) after every notification. Returns with it false.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use greenhub::sync::{Condvar, Mutex};
    /// greenhub::run(|| {
    ///     let s = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
    ///     let s2 = s.clone();
    ///     greenhub::spawn(move || {
    ///         for i in 0..3 {
    ///             s2.0.lock().push(i);
    ///             s2.1.notify_one();
    ///         }
    ///     });
    ///     let g = s.1.wait_while(s.0.lock(), |v| v.len() < 3);
    ///     assert_eq!(*g, [0, 1, 2]);
    /// });
    /// ```
    pub fn wait_while<'a, T: ?Sized>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> MutexGuard<'a, T> {
        while condition(&mut *guard) {
            guard = self.wait(guard);
        }
        guard
    }

    /// [`wait`](Self::wait), but for at most `dur`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenhub::sync::{Condvar, Mutex};
    /// greenhub::run(|| {
    ///     let (m, cv) = (Mutex::new(()), Condvar::new());
    ///     let (_g, res) = cv.wait_timeout(m.lock(), Duration::from_millis(5));
    ///     assert!(res.timed_out());
    /// });
    /// ```
    pub fn wait_timeout<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        dur: Duration,
    ) -> (MutexGuard<'a, T>, WaitTimeoutResult) {
        self.wait_until(guard, Instant::now().checked_add(dur))
    }

    /// [`wait_while`](Self::wait_while), but for at most `dur` in all.
    /// Times out only if the condition still holds at the end.
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenhub::sync::{Condvar, Mutex};
    /// let (m, cv) = (Mutex::new(0), Condvar::new());
    /// let (g, res) = cv.wait_timeout_while(m.lock(), Duration::from_millis(2), |v| *v == 0);
    /// assert!(res.timed_out());
    /// assert_eq!(*g, 0);
    /// ```
    pub fn wait_timeout_while<'a, T: ?Sized>(
        &self,
        mut guard: MutexGuard<'a, T>,
        dur: Duration,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> (MutexGuard<'a, T>, WaitTimeoutResult) {
        let deadline = Instant::now().checked_add(dur);
        while condition(&mut *guard) {
            let (g, res) = self.wait_until(guard, deadline);
            guard = g;
            if res.timed_out() {
                let still = condition(&mut *guard);
                return (guard, WaitTimeoutResult(still));
            }
        }
        (guard, WaitTimeoutResult(false))
    }

    /// Wakes the longest-waiting waiter, if any.
    ///
    /// ```
    /// let cv = greenhub::sync::Condvar::new();
    /// cv.notify_one();
    /// ```
    pub fn notify_one(&self) {
        let mut list = self.waiters.lock();
        let waiter = list.pop_front().map(|(_, w)| w);
        drop(list);
        if let Some(w) = waiter {
            w.wake();
        }
    }

    /// Wakes every waiter (they then lock the mutex one after another, in
    /// the order they started waiting).
    ///
    /// ```
    /// let cv = greenhub::sync::Condvar::new();
    /// cv.notify_all();
    /// ```
    pub fn notify_all(&self) {
        let woken = self.waiters.lock().drain(|_| {});
        wake_all(woken);
    }

    fn wait_until<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Option<Instant>,
    ) -> (MutexGuard<'a, T>, WaitTimeoutResult) {
        let mutex = MutexGuard::mutex(&guard);
        let list = self.waiters.lock();
        // Unlock while holding `waiters`: no notify can slip in between the
        // unlock and our node being linked (`wait` links it, then releases
        // `waiters`, then parks).
        drop(guard);
        let (list, waited) = wait(&self.waiters, list, |l| l, (), deadline, WaitKind::Condvar);
        drop(list);
        let timed_out = match waited {
            Waited::Done(()) => false,
            Waited::TimedOut(()) => true,
            Waited::Interrupted((), interrupt) => interrupt.raise(),
        };
        (mutex.lock(), WaitTimeoutResult(timed_out))
    }
}

// No user code runs under the internal lock, so a panic never leaves the
// state half-updated: sharing a `&Condvar` across `catch_unwind` is fine.
impl std::panic::RefUnwindSafe for Condvar {}
impl std::panic::UnwindSafe for Condvar {}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar")
            .field("waiters", &self.waiters.lock().len())
            .finish()
    }
}
