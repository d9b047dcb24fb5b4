//! `Pool`: a group with a concurrency limit (gevent.pool.Pool), the
//! thread-pool replacement.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::greenlet::JoinHandle;
use crate::pool::Group;
use crate::pool::imap::{Imap, ImapUnordered, jobs};
use crate::sync::{Semaphore, SemaphorePermit};

/// A set of at most `size` running greenlets: gevent's `Pool`.
///
/// [`spawn`](Self::spawn) waits (parks the caller) until fewer than `size`
/// members run, then spawns; so a loop that spawns jobs on a pool of 4 keeps
/// 4 of them running and never a 5th. A member's slot is freed when it
/// finishes however it ends: it returns, panics, is killed, or is killed
/// before it started.
///
/// [`map`](Self::map), [`imap`](Self::imap) and
/// [`imap_unordered`](Self::imap_unordered) run a function over the items of
/// an iterator with the pool's concurrency. A job that panics resumes its
/// panic in the caller when its result is due (`std::thread::JoinHandle`
/// leaves that choice to the caller; here the result type is `T`, so the
/// panic propagates, as a failed job raises in gevent).
///
/// Members are those of an inner [`Group`]: the pool keeps no outcome, the
/// returned [`JoinHandle`]s do. Share a pool between greenlets with an `Arc`.
/// A member that spawns into its own full pool waits for a slot that it
/// holds itself: with every slot taken that way, it never returns.
///
/// ```
/// use std::time::{Duration, Instant};
///
/// greenhub::run(|| {
///     let pool = greenhub::pool::Pool::new(3);
///     let t = Instant::now();
///     for _ in 0..6 {
///         pool.spawn(|| greenhub::sleep(Duration::from_millis(20)));
///     }
///     pool.join();
///     // Two waves of three.
///     assert!(t.elapsed() >= Duration::from_millis(40));
/// });
/// ```
pub struct Pool {
    size: usize,
    slots: Arc<Semaphore>,
    group: Group,
}

/// A taken slot, given back when dropped (with the member's closure).
struct Slot(Arc<Semaphore>);

impl Drop for Slot {
    fn drop(&mut self) {
        // The semaphore is unbounded: giving back cannot fail.
        let _ = self.0.release(1);
    }
}

impl Pool {
    /// A pool that runs at most `size` greenlets at once.
    ///
    /// # Panics
    ///
    /// If `size` is 0 (nothing could ever run).
    ///
    /// ```
    /// let pool = greenhub::pool::Pool::new(4);
    /// assert_eq!(pool.size(), 4);
    /// assert_eq!(pool.free_count(), 4);
    /// ```
    #[track_caller]
    pub fn new(size: usize) -> Pool {
        assert!(
            size > 0,
            "greenhub::pool::Pool::new: a pool of size 0 could never run anything"
        );
        Pool {
            size,
            slots: Arc::new(Semaphore::new(size)),
            group: Group::new(),
        }
    }

    /// Waits for a free slot, then spawns `f` in it (see [`crate::spawn`]).
    /// Waiting callers are served in arrival order.
    ///
    /// # Panics
    ///
    /// Outside a greenhub runtime, like [`crate::spawn`]. A kill of the
    /// caller (or an expired [`timeout`](crate::timeout)) while it waits
    /// unwinds from here, and `f` is dropped unrun.
    ///
    /// ```
    /// greenhub::run(|| {
    ///     let pool = greenhub::pool::Pool::new(2);
    ///     let hs: Vec<_> = (0..5).map(|i| pool.spawn(move || i * 10)).collect();
    ///     let v: Vec<i32> = hs.into_iter().map(|h| h.join().unwrap()).collect();
    ///     assert_eq!(v, [0, 10, 20, 30, 40]);
    /// });
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit = self.slots.acquire();
        self.spawn_in(permit, f)
    }

    /// Spawns `f` if a slot is free now; gives `f` back otherwise.
    ///
    /// ```
    /// use std::time::Duration;
    /// greenhub::run(|| {
    ///     let pool = greenhub::pool::Pool::new(1);
    ///     let busy = pool.spawn(|| greenhub::sleep(Duration::from_millis(20)));
    ///     let refused = pool.try_spawn(|| 1).unwrap_err();
    ///     busy.join().unwrap();
    ///     let h = pool.try_spawn(refused).ok().expect("a slot is free");
    ///     assert_eq!(h.join().unwrap(), 1);
    /// });
    /// ```
    #[track_caller]
    pub fn try_spawn<F, T>(&self, f: F) -> Result<JoinHandle<T>, F>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        match self.slots.try_acquire() {
            Some(permit) => Ok(self.spawn_in(permit, f)),
            None => Err(f),
        }
    }

    /// Like [`spawn`](Self::spawn), waiting at most `dur` for a slot; gives
    /// `f` back if none freed up in time.
    ///
    /// ```
    /// use std::time::Duration;
    /// greenhub::run(|| {
    ///     let pool = greenhub::pool::Pool::new(1);
    ///     let _busy = pool.spawn(|| greenhub::sleep(Duration::from_secs(60)));
    ///     assert!(pool.spawn_timeout(Duration::from_millis(5), || ()).is_err());
    ///     pool.kill();
    /// });
    /// ```
    #[track_caller]
    pub fn spawn_timeout<F, T>(&self, dur: Duration, f: F) -> Result<JoinHandle<T>, F>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        match self.slots.acquire_timeout(dur) {
            Some(permit) => Ok(self.spawn_in(permit, f)),
            None => Err(f),
        }
    }

    #[track_caller]
    fn spawn_in<F, T>(&self, permit: SemaphorePermit<'_>, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        // The permit becomes a `'static` slot that travels with the closure:
        // dropped when the closure ends (return, panic, kill) or is dropped
        // unrun (killed before it started, spawn refused).
        permit.forget();
        let slot = Slot(self.slots.clone());
        self.group.spawn(move || {
            let _slot = slot;
            f()
        })
    }

    /// Runs `f` on every item with the pool's concurrency and returns the
    /// results in input order, once all are done.
    ///
    /// # Panics
    ///
    /// If a job panics, its panic is resumed here (the first one in input
    /// order), after the jobs still running are killed. A job killed by
    /// someone else (e.g. [`Pool::kill`]) also makes `map` panic.
    ///
    /// ```
    /// greenhub::run(|| {
    ///     let pool = greenhub::pool::Pool::new(4);
    ///     assert_eq!(pool.map(1..=5, |x: u32| x * x), [1, 4, 9, 16, 25]);
    /// });
    /// ```
    pub fn map<I, F, T>(&self, items: I, f: F) -> Vec<T>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        self.imap(items, f).collect()
    }

    /// Runs `f` on every item with the pool's concurrency, yielding the
    /// results in input order as they become available. Items are taken from
    /// `items` lazily: at most [`size`](Self::size) jobs are in flight
    /// (running, or finished but not yet yielded). Dropping the iterator kills
    /// the jobs still in flight.
    ///
    /// # Panics
    ///
    /// `next` resumes the panic of the job whose result is due (iteration may
    /// go on after it is caught); see [`map`](Self::map).
    ///
    /// ```
    /// greenhub::run(|| {
    ///     let pool = greenhub::pool::Pool::new(2);
    ///     let mut it = pool.imap(["a", "bb", "ccc"], |s: &str| s.len());
    ///     assert_eq!(it.next(), Some(1));
    ///     assert_eq!(it.collect::<Vec<_>>(), [2, 3]);
    /// });
    /// ```
    pub fn imap<'a, I, F, T>(&'a self, items: I, f: F) -> Imap<'a, T>
    where
        I: IntoIterator,
        I::IntoIter: 'a,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        Imap::new(self, jobs(items, f))
    }

    /// Like [`imap`](Self::imap), but yields the results in the order the
    /// jobs finish.
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = greenhub::Builder::new().single_threaded().build().unwrap();
    /// rt.block_on(|| {
    ///     let pool = greenhub::pool::Pool::new(3);
    ///     let order: Vec<u64> = pool
    ///         .imap_unordered([30, 10, 20], |ms: u64| {
    ///             greenhub::sleep(Duration::from_millis(ms));
    ///             ms
    ///         })
    ///         .collect();
    ///     assert_eq!(order, [10, 20, 30]);
    /// });
    /// ```
    pub fn imap_unordered<'a, I, F, T>(&'a self, items: I, f: F) -> ImapUnordered<'a, T>
    where
        I: IntoIterator,
        I::IntoIter: 'a,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        ImapUnordered::new(self, jobs(items, f))
    }

    /// The most greenlets the pool runs at once.
    ///
    /// ```
    /// assert_eq!(greenhub::pool::Pool::new(8).size(), 8);
    /// ```
    pub fn size(&self) -> usize {
        self.size
    }

    /// The number of members that have not finished.
    ///
    /// ```
    /// greenhub::run(|| {
    ///     let pool = greenhub::pool::Pool::new(2);
    ///     let h = pool.spawn(greenhub::park);
    ///     assert_eq!(pool.len(), 1);
    ///     h.kill();
    ///     pool.join();
    ///     assert_eq!(pool.len(), 0);
    /// });
    /// ```
    pub fn len(&self) -> usize {
        self.group.len()
    }

    /// Whether no member is running.
    ///
    /// ```
    /// assert!(greenhub::pool::Pool::new(1).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.group.is_empty()
    }

    /// The number of free slots now.
    ///
    /// ```
    /// greenhub::run(|| {
    ///     let pool = greenhub::pool::Pool::new(3);
    ///     let h = pool.spawn(greenhub::park);
    ///     assert_eq!(pool.free_count(), 2);
    ///     h.kill();
    ///     pool.join();
    ///     assert_eq!(pool.free_count(), 3);
    /// });
    /// ```
    pub fn free_count(&self) -> usize {
        self.slots.available_permits()
    }

    /// Waits until a slot is free (behind callers of `spawn` already
    /// waiting), and returns the number of free slots.
    ///
    /// ```
    /// use std::time::Duration;
    /// greenhub::run(|| {
    ///     let pool = greenhub::pool::Pool::new(1);
    ///     pool.spawn(|| greenhub::sleep(Duration::from_millis(10)));
    ///     assert_eq!(pool.wait_available(), 1);
    /// });
    /// ```
    pub fn wait_available(&self) -> usize {
        drop(self.slots.acquire());
        self.free_count()
    }

    /// Waits until every member has finished (see [`Group::join`]).
    ///
    /// ```
    /// greenhub::run(|| {
    ///     let pool = greenhub::pool::Pool::new(2);
    ///     for _ in 0..4 {
    ///         pool.spawn(|| greenhub::sleep(std::time::Duration::from_millis(5)));
    ///     }
    ///     pool.join();
    ///     assert_eq!(pool.free_count(), 2);
    /// });
    /// ```
    pub fn join(&self) {
        self.group.join()
    }

    /// Like [`join`](Self::join), giving up after `dur`; returns whether all
    /// members finished.
    ///
    /// ```
    /// use std::time::Duration;
    /// greenhub::run(|| {
    ///     let pool = greenhub::pool::Pool::new(2);
    ///     pool.spawn(|| greenhub::sleep(Duration::from_secs(60)));
    ///     assert!(!pool.join_timeout(Duration::from_millis(5)));
    ///     pool.kill();
    ///     assert!(pool.join_timeout(Duration::from_secs(10)));
    /// });
    /// ```
    pub fn join_timeout(&self, dur: Duration) -> bool {
        self.group.join_timeout(dur)
    }

    /// Kills every member; does not wait (see [`Group::kill`]).
    ///
    /// ```
    /// greenhub::run(|| {
    ///     let pool = greenhub::pool::Pool::new(2);
    ///     let h = pool.spawn(greenhub::park);
    ///     pool.kill();
    ///     assert!(h.join().unwrap_err().is_killed());
    /// });
    /// ```
    pub fn kill(&self) {
        self.group.kill()
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("size", &self.size)
            .field("len", &self.len())
            .field("free", &self.free_count())
            .finish()
    }
}
