//! `Mutex<T>`: mutual exclusion for greenlets and threads, FIFO-fair, with
//! direct handoff (gevent's `Lock`, with std's `Mutex` API).
//!
//! # Protocol
//!
//! A state word holds two bits: `LOCKED` (someone owns the lock) and
//! `QUEUED` (the wait list is not empty). The wait list lives behind an
//! internal (loom-shim) mutex, and `QUEUED` only changes under it, so
//! `QUEUED` is set exactly while someone waits; and it is only set while
//! `LOCKED` is.
//!
//! - Uncontended `lock` is one CAS `0 → LOCKED`, uncontended unlock one CAS
//!   `LOCKED → 0`. Both fail while `QUEUED` is set, so nobody barges past a
//!   waiter.
//! - A contended `lock` takes the internal mutex, sets `QUEUED` (or takes the
//!   lock, if it was released meanwhile) and waits in the list.
//! - An unlock that sees `QUEUED` takes the internal mutex, pops the first
//!   waiter and hands the lock over without clearing `LOCKED` (clearing
//!   `QUEUED` if the list became empty). The handoff is written into the
//!   waiter's node; it wins over a racing timeout or kill, and that waiter
//!   then returns the guard.
//! - A waiter that times out or is killed unlinks itself and clears `QUEUED`
//!   if it was the last one; the lock stays with its owner.

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use crate::greenlet::runinfo::WaitKind;
use crate::loom::{AtomicUsize, Ordering, SpinLock};
use crate::sync::waitlist::{WaitList, Waited, wait};

const LOCKED: usize = 1;
const QUEUED: usize = 2;

/// A mutual-exclusion lock for greenlets and threads: std's `Mutex` API,
/// gevent's `Lock` behaviour.
///
/// [`lock`](Self::lock) parks the calling greenlet (its hub runs others
/// meanwhile) or, off a greenlet, the calling thread, so one mutex can be
/// shared between greenlets on any hubs and plain OS threads.
///
/// Differences from [`std::sync::Mutex`]:
///
/// - **FIFO-fair**: waiters get the lock in arrival order. Unlocking with
///   waiters hands the lock directly to the first one; a caller arriving
///   meanwhile (even the one that just unlocked) queues behind them.
/// - **No poisoning**: a holder that panics (or is killed) just unlocks, as
///   with `parking_lot`. `lock` returns the guard directly.
/// - **Timeouts and cancellation**: [`lock_timeout`](Self::lock_timeout), and
///   `lock` is a cancellation point for [`greenhub::timeout`](crate::timeout)
///   and for kills. A waiter that gives up leaves the mutex usable; if the
///   lock was handed to it at the same moment, it keeps it (and the guard is
///   returned, the interrupt being raised at its next blocking point).
/// - **Not reentrant**: locking a mutex the caller already holds is a
///   deadlock, as with std: the caller waits for itself forever (a greenlet
///   stays parked until killed, a thread hangs). Hold guards across blocking
///   calls with care for the same reason.
///
/// `Mutex<T>` is `Sync` iff `T: Send`; [`MutexGuard`] is `!Send`, as std's.
///
/// ```
/// use std::sync::Arc;
///
/// greenhub::run(|| {
///     let total = Arc::new(greenhub::sync::Mutex::new(0));
///     let hs: Vec<_> = (0..4)
///         .map(|_| {
///             let total = total.clone();
///             greenhub::spawn(move || {
///                 for _ in 0..100 {
///                     let mut t = total.lock();
///                     let v = *t;
///                     greenhub::yield_now(); // others queue, none gets in
///                     *t = v + 1;
///                 }
///             })
///         })
///         .collect();
///     hs.into_iter().for_each(|h| h.join().unwrap());
///     assert_eq!(*total.lock(), 400);
/// });
/// ```
pub struct Mutex<T: ?Sized> {
    state: AtomicUsize,
    queue: SpinLock<WaitList<Handoff>>,
    data: UnsafeCell<T>,
}

/// A queued `lock`: set when the lock was handed to it.
struct Handoff {
    granted: bool,
}

// SAFETY: the mutex hands out access to `T` to one caller at a time, possibly
// on another thread, which needs `T: Send` only (as std's `Mutex`).
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: as above: `&Mutex<T>` only gives exclusive access to `T`.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

impl<T> Mutex<T> {
    /// A new, unlocked mutex holding `value`.
    ///
    /// ```
    /// static COUNT: greenhub::sync::Mutex<u32> = greenhub::sync::Mutex::new(0);
    /// *COUNT.lock() += 1;
    /// assert_eq!(*COUNT.lock(), 1);
    /// ```
    #[cfg(not(loom))]
    pub const fn new(value: T) -> Mutex<T> {
        Mutex {
            state: AtomicUsize::new(0),
            queue: SpinLock::new(WaitList::new()),
            data: UnsafeCell::new(value),
        }
    }

    /// A new, unlocked mutex holding `value` (not `const` under loom).
    #[cfg(loom)]
    pub fn new(value: T) -> Mutex<T> {
        Mutex {
            state: AtomicUsize::new(0),
            queue: SpinLock::new(WaitList::new()),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the mutex and returns its value.
    ///
    /// ```
    /// let m = greenhub::sync::Mutex::new(vec![1]);
    /// m.lock().push(2);
    /// assert_eq!(m.into_inner(), [1, 2]);
    /// ```
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks the mutex, parking the caller (never its hub) until it is free
    /// and every earlier waiter has had it.
    ///
    /// A cancellation point: a kill or an expired
    /// [`greenhub::timeout`](crate::timeout) frame unwinds out of it, unless
    /// the lock was already handed over (then the guard is returned).
    /// Locking a mutex the caller holds deadlocks (see the type docs).
    ///
    /// ```
    /// let m = greenhub::sync::Mutex::new(1);
    /// *m.lock() += 1;
    /// assert_eq!(*m.lock(), 2);
    /// ```
    pub fn lock(&self) -> MutexGuard<'_, T> {
        if self.fast_lock() {
            return self.guard();
        }
        self.lock_slow(None)
            .expect("greenhub: lock without deadline timed out")
    }

    /// Locks the mutex if it is free now and nobody is queued for it.
    ///
    /// ```
    /// let m = greenhub::sync::Mutex::new(());
    /// let g = m.try_lock().unwrap();
    /// assert!(m.try_lock().is_none());
    /// drop(g);
    /// assert!(m.try_lock().is_some());
    /// ```
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.fast_lock().then(|| self.guard())
    }

    /// Locks the mutex, waiting at most `dur`; `None` if it timed out.
    ///
    /// ```
    /// use std::time::Duration;
    /// let m = greenhub::sync::Mutex::new(());
    /// let g = m.lock();
    /// assert!(m.lock_timeout(Duration::from_millis(5)).is_none());
    /// drop(g);
    /// assert!(m.lock_timeout(Duration::from_millis(5)).is_some());
    /// ```
    pub fn lock_timeout(&self, dur: Duration) -> Option<MutexGuard<'_, T>> {
        if self.fast_lock() {
            return Some(self.guard());
        }
        // An overflowing deadline is no deadline.
        self.lock_slow(Instant::now().checked_add(dur))
    }

    /// A mutable reference to the value: no locking needed, since `&mut self`
    /// proves nobody else can hold the lock.
    ///
    /// ```
    /// let mut m = greenhub::sync::Mutex::new(1);
    /// *m.get_mut() = 5;
    /// assert_eq!(*m.lock(), 5);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// Whether the mutex is locked now (a snapshot, for diagnostics).
    ///
    /// ```
    /// let m = greenhub::sync::Mutex::new(());
    /// let g = m.lock();
    /// assert!(m.is_locked());
    /// drop(g);
    /// assert!(!m.is_locked());
    /// ```
    pub fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) & LOCKED != 0
    }

    #[inline]
    fn fast_lock(&self) -> bool {
        self.state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    #[inline]
    fn guard(&self) -> MutexGuard<'_, T> {
        MutexGuard {
            mutex: self,
            _not_send: PhantomData,
        }
    }

    #[cold]
    fn lock_slow(&self, deadline: Option<Instant>) -> Option<MutexGuard<'_, T>> {
        let mut q = self.queue.lock();
        let mut cur = self.state.load(Ordering::Relaxed);
        loop {
            // Free (then nobody is queued either): take it. Else mark that
            // we queue, so the owner's unlock takes the slow path.
            let new = if cur & LOCKED == 0 {
                LOCKED
            } else {
                cur | QUEUED
            };
            match self
                .state
                .compare_exchange(cur, new, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) if new == LOCKED => return Some(self.guard()),
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
        let (queue, waited) = wait(
            &self.queue,
            q,
            |l| l,
            Handoff { granted: false },
            deadline,
            WaitKind::Mutex,
        );
        q = queue;
        let interrupt = match waited {
            Waited::Done(h) => {
                debug_assert!(h.granted);
                return Some(self.guard());
            }
            Waited::TimedOut(_) => None,
            Waited::Interrupted(_, i) => Some(i),
        };
        // We left the queue; the lock stays with its owner.
        if q.is_empty() {
            self.state.fetch_and(!QUEUED, Ordering::Relaxed);
        }
        drop(q);
        match interrupt {
            Some(i) => i.raise(),
            None => None,
        }
    }

    /// Releases the lock (the guard's drop).
    #[inline]
    pub(crate) fn unlock(&self) {
        if self
            .state
            .compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            self.unlock_slow();
        }
    }

    #[cold]
    fn unlock_slow(&self) {
        let mut q = self.queue.lock();
        match q.pop_front() {
            Some((handoff, waiter)) => {
                // The lock passes to `waiter` as it is: `LOCKED` stays set.
                handoff.granted = true;
                if q.is_empty() {
                    self.state.store(LOCKED, Ordering::Relaxed);
                }
                drop(q);
                waiter.wake();
            }
            // The last waiter left (timed out, killed) between our failed
            // CAS and here, and cleared `QUEUED`: nobody to hand over to.
            None => self.state.store(0, Ordering::Release),
        }
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(value: T) -> Self {
        Mutex::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

/// Exclusive access to a [`Mutex`]'s value; unlocks (handing the lock to the
/// first waiter, if any) when dropped.
///
/// ```
/// let m = greenhub::sync::Mutex::new(String::new());
/// let mut g = m.lock();
/// g.push_str("hi");
/// drop(g);
/// assert_eq!(*m.lock(), "hi");
/// ```
#[must_use = "the mutex is unlocked at once if the guard is not kept"]
pub struct MutexGuard<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
    /// `!Send`, as std's guard.
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a shared guard only gives `&T`, which is fine to share across
// threads iff `T: Sync`.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// The mutex this guard locks (for [`Condvar`](super::Condvar)).
    pub(crate) fn mutex(this: &Self) -> &'a Mutex<T> {
        this.mutex
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves we hold the lock, so nobody else accesses
        // the value until it drops.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this access unique.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.mutex.unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}
