//! `RwLock<T>`: a FIFO-fair reader-writer lock for greenlets and threads.
//!
//! The state (reader count, writer flag) and one wait list of requests live
//! behind one internal (loom-shim) mutex. A caller gets the lock at once only
//! if nobody is queued and the lock is compatible; otherwise it queues. Each
//! release runs `grant`, which serves the queue from the front: a writer when
//! the lock is free, or every consecutive reader at the head at once while no
//! writer holds it. So a reader arriving while a writer waits queues behind
//! it (no writer starvation), and a writer never barges past readers queued
//! before it.

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use crate::greenlet::runinfo::WaitKind;
use crate::greenlet::waiter::Waiter;
use crate::loom::SpinLock;
use crate::sync::waitlist::{WaitList, Waited, wait, wake_all};

/// A reader-writer lock for greenlets and threads: std's `RwLock` API, with
/// FIFO fairness.
///
/// Any number of [`read`](Self::read) guards, or one [`write`](Self::write)
/// guard, at a time. Requests are served in arrival order: when a writer
/// waits, later readers queue behind it even while readers hold the lock;
/// when the lock is released to readers, all readers at the head of the queue
/// get it together.
///
/// As [`Mutex`](super::Mutex): no poisoning, parks greenlets (not hubs) and
/// plain threads alike, every blocking call has a timeout variant and is a
/// cancellation point; a waiter that gives up leaves the lock usable, and
/// one granted the lock at the moment it gave up keeps it. Not reentrant:
/// taking a read guard while holding one deadlocks if a writer queued in
/// between (it waits for the writer, which waits for the first guard).
///
/// ```
/// use std::sync::Arc;
/// greenhub::run(|| {
///     let cfg = Arc::new(greenhub::sync::RwLock::new(String::from("a")));
///     let c = cfg.clone();
///     greenhub::spawn(move || c.write().push('b')).join().unwrap();
///     assert_eq!(*cfg.read(), "ab");
/// });
/// ```
pub struct RwLock<T: ?Sized> {
    state: SpinLock<State>,
    data: UnsafeCell<T>,
}

struct State {
    readers: usize,
    writer: bool,
    waiters: WaitList<Request>,
}

/// A queued request: which kind, and whether it was granted.
struct Request {
    write: bool,
    granted: bool,
}

// SAFETY: the lock moves `T` between threads (`Send`) and shares it between
// readers on several threads (`Sync`), as std's `RwLock`.
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}

impl<T> RwLock<T> {
    /// A new, unlocked lock holding `value`.
    ///
    /// ```
    /// let l = greenhub::sync::RwLock::new(3);
    /// assert_eq!(*l.read(), 3);
    /// ```
    pub fn new(value: T) -> RwLock<T> {
        RwLock {
            state: SpinLock::new(State {
                readers: 0,
                writer: false,
                waiters: WaitList::new(),
            }),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the lock and returns its value.
    ///
    /// ```
    /// let l = greenhub::sync::RwLock::new(1);
    /// *l.write() += 1;
    /// assert_eq!(l.into_inner(), 2);
    /// ```
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Shared access, waiting while a writer holds the lock or any request
    /// is queued.
    ///
    /// ```
    /// let l = greenhub::sync::RwLock::new(5);
    /// let (a, b) = (l.read(), l.read());
    /// assert_eq!(*a + *b, 10);
    /// ```
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        self.acquire(false, None)
            .expect("greenhub: read without deadline timed out");
        RwLockReadGuard::new(self)
    }

    /// Exclusive access, waiting while anyone holds the lock or any request
    /// is queued.
    ///
    /// ```
    /// let l = greenhub::sync::RwLock::new(vec![1]);
    /// l.write().push(2);
    /// assert_eq!(*l.read(), [1, 2]);
    /// ```
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.acquire(true, None)
            .expect("greenhub: write without deadline timed out");
        RwLockWriteGuard::new(self)
    }

    /// Shared access if it can be had now without queueing.
    ///
    /// ```
    /// let l = greenhub::sync::RwLock::new(());
    /// let w = l.write();
    /// assert!(l.try_read().is_none());
    /// drop(w);
    /// assert!(l.try_read().is_some());
    /// ```
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        let mut st = self.state.lock();
        (st.try_take(false)).then(|| RwLockReadGuard::new(self))
    }

    /// Exclusive access if it can be had now without queueing.
    ///
    /// ```
    /// let l = greenhub::sync::RwLock::new(());
    /// let r = l.read();
    /// assert!(l.try_write().is_none());
    /// drop(r);
    /// assert!(l.try_write().is_some());
    /// ```
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        let mut st = self.state.lock();
        (st.try_take(true)).then(|| RwLockWriteGuard::new(self))
    }

    /// [`read`](Self::read), waiting at most `dur`; `None` if it timed out.
    ///
    /// ```
    /// use std::time::Duration;
    /// let l = greenhub::sync::RwLock::new(());
    /// let _w = l.write();
    /// assert!(l.read_timeout(Duration::from_millis(2)).is_none());
    /// ```
    pub fn read_timeout(&self, dur: Duration) -> Option<RwLockReadGuard<'_, T>> {
        self.acquire(false, Instant::now().checked_add(dur))
            .map(|()| RwLockReadGuard::new(self))
    }

    /// [`write`](Self::write), waiting at most `dur`; `None` if it timed out.
    ///
    /// ```
    /// use std::time::Duration;
    /// let l = greenhub::sync::RwLock::new(());
    /// let _r = l.read();
    /// assert!(l.write_timeout(Duration::from_millis(2)).is_none());
    /// ```
    pub fn write_timeout(&self, dur: Duration) -> Option<RwLockWriteGuard<'_, T>> {
        self.acquire(true, Instant::now().checked_add(dur))
            .map(|()| RwLockWriteGuard::new(self))
    }

    /// A mutable reference to the value, without locking (`&mut self`
    /// proves exclusive access).
    ///
    /// ```
    /// let mut l = greenhub::sync::RwLock::new(0);
    /// *l.get_mut() = 9;
    /// assert_eq!(*l.read(), 9);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    fn acquire(&self, write: bool, deadline: Option<Instant>) -> Option<()> {
        let mut st = self.state.lock();
        if st.try_take(write) {
            return Some(());
        }
        let req = Request {
            write,
            granted: false,
        };
        let (mut st, waited) = wait(
            &self.state,
            st,
            |s| &mut s.waiters,
            req,
            deadline,
            WaitKind::RwLock,
        );
        let interrupt = match waited {
            Waited::Done(req) => {
                debug_assert!(req.granted);
                return Some(());
            }
            Waited::TimedOut(_) => None,
            Waited::Interrupted(_, i) => Some(i),
        };
        // A writer leaving the head may let the readers behind it in.
        let woken = st.grant();
        drop(st);
        wake_all(woken);
        match interrupt {
            Some(i) => i.raise(),
            None => None,
        }
    }

    fn release(&self, write: bool) {
        let mut st = self.state.lock();
        if write {
            st.writer = false;
        } else {
            st.readers -= 1;
        }
        let woken = st.grant();
        drop(st);
        wake_all(woken);
    }
}

impl State {
    /// Takes the lock without queueing, if allowed.
    fn try_take(&mut self, write: bool) -> bool {
        if !self.waiters.is_empty() || self.writer {
            return false;
        }
        if write {
            if self.readers > 0 {
                return false;
            }
            self.writer = true;
        } else {
            self.readers += 1;
        }
        true
    }

    /// Serves the queue from the front while the head's request fits.
    fn grant(&mut self) -> Vec<Waiter> {
        let mut woken = Vec::new();
        while let Some(front) = self.waiters.front() {
            let fits = !self.writer && (!front.write || self.readers == 0);
            if !fits {
                break;
            }
            let (req, waiter) = self.waiters.pop_front().expect("front exists");
            req.granted = true;
            if req.write {
                self.writer = true;
            } else {
                self.readers += 1;
            }
            woken.push(waiter);
        }
        woken
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> Self {
        RwLock::new(T::default())
    }
}

impl<T> From<T> for RwLock<T> {
    fn from(value: T) -> Self {
        RwLock::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.try_read() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

/// Shared access to an [`RwLock`]'s value, released on drop.
///
/// ```
/// let l = greenhub::sync::RwLock::new(1);
/// let g = l.read();
/// assert_eq!(*g, 1);
/// ```
#[must_use = "the lock is released at once if the guard is not kept"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    _not_send: PhantomData<*const ()>,
}

/// Exclusive access to an [`RwLock`]'s value, released on drop.
///
/// ```
/// let l = greenhub::sync::RwLock::new(1);
/// *l.write() = 2;
/// assert_eq!(*l.read(), 2);
/// ```
#[must_use = "the lock is released at once if the guard is not kept"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a shared guard only gives `&T`.
unsafe impl<T: ?Sized + Sync> Sync for RwLockReadGuard<'_, T> {}
// SAFETY: a shared write guard only gives `&T`.
unsafe impl<T: ?Sized + Sync> Sync for RwLockWriteGuard<'_, T> {}

impl<'a, T: ?Sized> RwLockReadGuard<'a, T> {
    fn new(lock: &'a RwLock<T>) -> Self {
        RwLockReadGuard {
            lock,
            _not_send: PhantomData,
        }
    }
}

impl<'a, T: ?Sized> RwLockWriteGuard<'a, T> {
    fn new(lock: &'a RwLock<T>) -> Self {
        RwLockWriteGuard {
            lock,
            _not_send: PhantomData,
        }
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a read guard proves no writer holds the lock.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a write guard proves exclusive access.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: a write guard proves exclusive access; `&mut self` makes
        // this reference unique.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.release(false);
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.release(true);
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
