//! `Semaphore`: counted permits, FIFO-fair, for greenlets and threads.

use std::fmt;
use std::time::{Duration, Instant};

use crate::greenlet::runinfo::WaitKind;
use crate::loom::SpinLock;
use crate::sync::waitlist::{Granted, WaitList, wait_granted};

/// A counting semaphore: gevent's `Semaphore` and `BoundedSemaphore`.
///
/// [`acquire`](Self::acquire) takes a permit, parking the caller (a
/// greenlet, or a plain thread) while none is free; the returned
/// [`SemaphorePermit`] gives it back on drop. Waiters are served strictly in
/// arrival order, and a caller never overtakes a waiter: with 2 free permits
/// and a waiter asking for 3 at the head, a request for 1 waits behind it.
///
/// A waiter that is killed or times out leaves the queue without taking
/// anything; a permit granted to it at the same moment is kept (and given
/// back when the permit drops), never lost.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
/// use std::time::Duration;
///
/// greenhub::run(|| {
///     let sem = Arc::new(greenhub::sync::Semaphore::new(2));
///     let (running, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
///     let hs: Vec<_> = (0..6)
///         .map(|_| {
///             let (sem, running, peak) = (sem.clone(), running.clone(), peak.clone());
///             greenhub::spawn(move || {
///                 let _permit = sem.acquire();
///                 let now = running.fetch_add(1, SeqCst) + 1;
///                 peak.fetch_max(now, SeqCst);
///                 greenhub::sleep(Duration::from_millis(5));
///                 running.fetch_sub(1, SeqCst);
///             })
///         })
///         .collect();
///     hs.into_iter().for_each(|h| h.join().unwrap());
///     assert_eq!(peak.load(SeqCst), 2);
/// });
/// ```
pub struct Semaphore {
    state: SpinLock<State>,
    /// `Some(n)`: a bounded semaphore, whose permits may never exceed `n`.
    bound: Option<usize>,
}

struct State {
    permits: usize,
    /// Permits held by live (unforgotten) permits: counted against a bound.
    held: usize,
    waiters: WaitList<Request>,
}

/// A queued acquire: how many permits it wants, and whether it got them.
struct Request {
    want: usize,
    granted: bool,
}

/// Releasing more permits than a bounded semaphore was created with.
///
/// ```
/// let sem = greenhub::sync::Semaphore::bounded(1);
/// let err = sem.release(1).unwrap_err();
/// assert!(err.to_string().contains("bound"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseError {
    bound: usize,
}

impl fmt::Display for ReleaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "semaphore released too many times: permits would exceed the bound of {}",
            self.bound
        )
    }
}

impl std::error::Error for ReleaseError {}

impl Semaphore {
    /// A semaphore with `permits` free permits and no upper bound.
    ///
    /// ```
    /// let sem = greenhub::sync::Semaphore::new(3);
    /// assert_eq!(sem.available_permits(), 3);
    /// ```
    pub fn new(permits: usize) -> Semaphore {
        Semaphore {
            state: SpinLock::new(State {
                permits,
                held: 0,
                waiters: WaitList::new(),
            }),
            bound: None,
        }
    }

    /// A semaphore whose free permits may never exceed `permits`: a
    /// [`release`](Self::release) beyond that is an error (gevent's
    /// `BoundedSemaphore`). Permits held by live [`SemaphorePermit`]s count
    /// against the bound (they come back on drop); forgotten ones do not.
    ///
    /// ```
    /// let sem = greenhub::sync::Semaphore::bounded(1);
    /// let p = sem.acquire();
    /// assert!(sem.release(1).is_err()); // `p` will give its permit back
    /// drop(p);
    /// assert!(sem.release(1).is_err());
    /// sem.acquire().forget();
    /// assert!(sem.release(1).is_ok());
    /// ```
    pub fn bounded(permits: usize) -> Semaphore {
        Semaphore {
            bound: Some(permits),
            ..Semaphore::new(permits)
        }
    }

    /// Takes one permit, waiting for it if none is free.
    ///
    /// ```
    /// let sem = greenhub::sync::Semaphore::new(1);
    /// let permit = sem.acquire();
    /// assert!(sem.try_acquire().is_none());
    /// drop(permit);
    /// assert!(sem.try_acquire().is_some());
    /// ```
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        self.acquire_many(1)
    }

    /// Takes `n` permits at once, waiting until they are free.
    ///
    /// # Panics
    ///
    /// Panics if the semaphore is bounded and `n` exceeds its bound (the
    /// call could never return).
    ///
    /// ```
    /// let sem = greenhub::sync::Semaphore::new(4);
    /// let p = sem.acquire_many(3);
    /// assert_eq!(sem.available_permits(), 1);
    /// drop(p);
    /// assert_eq!(sem.available_permits(), 4);
    /// ```
    pub fn acquire_many(&self, n: usize) -> SemaphorePermit<'_> {
        self.acquire_until(n, None)
            .expect("greenhub: acquire without deadline timed out")
    }

    /// Takes one permit if one is free now (and nobody is queued).
    ///
    /// ```
    /// let sem = greenhub::sync::Semaphore::new(0);
    /// assert!(sem.try_acquire().is_none());
    /// ```
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.try_acquire_many(1)
    }

    /// Takes `n` permits if they are free now (and nobody is queued).
    ///
    /// ```
    /// let sem = greenhub::sync::Semaphore::new(2);
    /// assert!(sem.try_acquire_many(3).is_none());
    /// assert!(sem.try_acquire_many(2).is_some());
    /// ```
    pub fn try_acquire_many(&self, n: usize) -> Option<SemaphorePermit<'_>> {
        let mut st = self.state.lock();
        if st.waiters.is_empty() && st.permits >= n {
            st.permits -= n;
            st.held += n;
            Some(SemaphorePermit { sem: self, n })
        } else {
            None
        }
    }

    /// Takes one permit, waiting at most `dur`; `None` if it timed out.
    ///
    /// ```
    /// use std::time::Duration;
    /// greenhub::run(|| {
    ///     let sem = greenhub::sync::Semaphore::new(0);
    ///     assert!(sem.acquire_timeout(Duration::from_millis(5)).is_none());
    /// });
    /// ```
    pub fn acquire_timeout(&self, dur: Duration) -> Option<SemaphorePermit<'_>> {
        self.acquire_until(1, Instant::now().checked_add(dur))
    }

    /// Takes `n` permits, waiting until `deadline` at the latest (`None`:
    /// no deadline); `None` if it timed out.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let sem = greenhub::sync::Semaphore::new(1);
    /// let soon = Instant::now() + Duration::from_millis(5);
    /// assert!(sem.acquire_until(2, Some(soon)).is_none());
    /// assert!(sem.acquire_until(1, Some(soon)).is_some());
    /// ```
    pub fn acquire_until(
        &self,
        n: usize,
        deadline: Option<Instant>,
    ) -> Option<SemaphorePermit<'_>> {
        if let Some(bound) = self.bound {
            assert!(
                n <= bound,
                "greenhub: acquiring {n} permits from a semaphore bounded to {bound} would never return"
            );
        }
        let st = self.state.lock();
        if st.waiters.is_empty() && st.permits >= n {
            let mut st = st;
            st.permits -= n;
            st.held += n;
            return Some(SemaphorePermit { sem: self, n });
        }
        let req = Request {
            want: n,
            granted: false,
        };
        match wait_granted(
            &self.state,
            st,
            |s| &mut s.waiters,
            req,
            deadline,
            WaitKind::Semaphore,
        ) {
            Granted::Done(req) => {
                debug_assert!(req.granted);
                Some(SemaphorePermit { sem: self, n })
            }
            Granted::TimedOut(mut st, _) => {
                // Our leaving may let the next waiter through.
                let woken = grant(&mut st);
                drop(st);
                woken.into_iter().for_each(|w| w.wake());
                None
            }
            Granted::Interrupted(mut st, _, interrupt) => {
                let woken = grant(&mut st);
                drop(st);
                woken.into_iter().for_each(|w| w.wake());
                interrupt.raise()
            }
        }
    }

    /// Adds `n` permits, waking waiters in FIFO order. Use it to give back
    /// permits taken with [`SemaphorePermit::forget`], or to raise an
    /// unbounded semaphore's count. A bounded semaphore refuses to go over
    /// its bound, and then adds nothing.
    ///
    /// ```
    /// let sem = greenhub::sync::Semaphore::new(0);
    /// sem.release(2).unwrap();
    /// assert_eq!(sem.available_permits(), 2);
    /// ```
    pub fn release(&self, n: usize) -> Result<(), ReleaseError> {
        let mut st = self.state.lock();
        if let Some(bound) = self.bound {
            // Held permits come back on drop: count them too, or a release
            // while one is out would take the semaphore over its bound then.
            let total = st.permits.saturating_add(st.held).saturating_add(n);
            if total > bound {
                return Err(ReleaseError { bound });
            }
        }
        st.permits += n;
        let woken = grant(&mut st);
        drop(st);
        woken.into_iter().for_each(|w| w.wake());
        Ok(())
    }

    /// The number of free permits now.
    ///
    /// ```
    /// let sem = greenhub::sync::Semaphore::new(1);
    /// let _p = sem.acquire();
    /// assert_eq!(sem.available_permits(), 0);
    /// ```
    pub fn available_permits(&self) -> usize {
        self.state.lock().permits
    }

    /// Whether an `acquire` of one permit would have to wait now (gevent's
    /// `locked()`).
    ///
    /// ```
    /// let sem = greenhub::sync::Semaphore::new(1);
    /// let p = sem.acquire();
    /// assert!(sem.is_locked());
    /// drop(p);
    /// assert!(!sem.is_locked());
    /// ```
    pub fn is_locked(&self) -> bool {
        let st = self.state.lock();
        st.permits == 0 || !st.waiters.is_empty()
    }

    fn give_back(&self, n: usize) {
        let mut st = self.state.lock();
        st.held -= n;
        st.permits += n;
        let woken = grant(&mut st);
        drop(st);
        woken.into_iter().for_each(|w| w.wake());
    }
}

/// Hands free permits to the waiters at the head, in order, while the head's
/// request fits. Returns whom to wake (after the lock is released).
fn grant(st: &mut State) -> Vec<crate::greenlet::waiter::Waiter> {
    let mut woken = Vec::new();
    while let Some(req) = st.waiters.front() {
        if req.want > st.permits {
            break;
        }
        st.permits -= req.want;
        st.held += req.want;
        let mut popped = st.waiters.pop().expect("front exists");
        popped.data().granted = true;
        woken.push(popped.grant());
    }
    woken
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.state.lock();
        f.debug_struct("Semaphore")
            .field("permits", &st.permits)
            .field("waiters", &st.waiters.len())
            .field("bound", &self.bound)
            .finish()
    }
}

/// Permits taken from a [`Semaphore`], given back when dropped.
///
/// ```
/// let sem = greenhub::sync::Semaphore::new(1);
/// {
///     let _permit = sem.acquire();
///     assert_eq!(sem.available_permits(), 0);
/// }
/// assert_eq!(sem.available_permits(), 1);
/// ```
#[must_use = "the permit is released at once if it is not kept"]
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
    n: usize,
}

impl SemaphorePermit<'_> {
    /// Keeps the permits taken: they are not given back on drop (give them
    /// back later with [`Semaphore::release`]).
    ///
    /// ```
    /// let sem = greenhub::sync::Semaphore::new(1);
    /// sem.acquire().forget();
    /// assert_eq!(sem.available_permits(), 0);
    /// sem.release(1).unwrap();
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn forget(self) {
        self.sem.state.lock().held -= self.n;
        std::mem::forget(self);
    }

    /// How many permits this holds.
    ///
    /// ```
    /// let sem = greenhub::sync::Semaphore::new(5);
    /// assert_eq!(sem.acquire_many(3).count(), 3);
    /// ```
    pub fn count(&self) -> usize {
        self.n
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        self.sem.give_back(self.n);
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit")
            .field("n", &self.n)
            .finish()
    }
}
