//! The one seam between greenhub's cross-thread protocols and the concurrency
//! primitives they run on.
//!
//! Every atomic, lock, cell and thread parker that a scheduler protocol uses
//! (the greenlet state word, the join slot, the hub parker, the idle-hub
//! protocol, the hub inbox) is imported from here, never from `std` or
//! `parking_lot` directly. Normally these are `std`'s atomics and cells and
//! `parking_lot`'s mutex; under `RUSTFLAGS="--cfg loom"` they are the `loom`
//! model checker's instrumented twins, so `tests/loom_*.rs` can explore every
//! interleaving of the real protocol code.
//!
//! Two things deliberately stay outside the shim:
//! - process-wide statics (the greenlet id counter, the stack allocator), which
//!   are not part of any protocol and cannot be loom types (loom's constructors
//!   are not `const`);
//! - `crossbeam-deque`, which is not loom-aware: `hub/queue.rs` puts a small
//!   mutex-based stand-in behind the same interface under loom.
//!
//! The wrappers give both twins one API: `Mutex::lock` returns the guard
//! directly (no poisoning) and `UnsafeCell` exposes loom's `with`/`with_mut`.

#![allow(dead_code, unused_imports)]

#[cfg(not(loom))]
mod imp {
    pub(crate) use std::sync::atomic::{
        AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
    };

    pub(crate) mod thread {
        pub(crate) use std::thread::{Thread, current, park, yield_now};
    }

    /// A mutex without poisoning (`parking_lot`'s).
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(parking_lot::Mutex<T>);

    pub(crate) type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        pub(crate) const fn new(value: T) -> Self {
            Mutex(parking_lot::Mutex::new(value))
        }

        #[inline]
        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock()
        }
    }

    /// The lock of a blocking primitive's state (channels, semaphores,
    /// events, ...): a test-and-test-and-set spin lock. Those critical
    /// sections are a few dozen instructions and never block (a waiter
    /// releases the lock before it parks), so spinning beats parking; and
    /// unlocking is a plain release store instead of `parking_lot`'s
    /// read-modify-write, which is measurable on the channel ping-pong.
    /// A holder preempted by the OS costs spinners a `yield_now` each.
    ///
    /// **No user code runs under this lock** (no `Clone`, `Ord`, `Eq`,
    /// `Hash` or `Drop` of a user value, no user callback), because user
    /// code may block: a greenlet that parks while holding the lock leaves
    /// every other greenlet that takes it spinning, and on a single-threaded
    /// hub the holder never runs again, so they spin forever. Values are
    /// moved in and out under the lock and cloned, compared or dropped after
    /// it is released; where user code must see a consistent state (the
    /// priority queue's heap, `AsyncResult`'s clones) it runs under
    /// greenhub's own parking `sync::Mutex` instead. In debug builds each
    /// thread counts the `SpinLock`s it holds, and a greenlet that suspends
    /// (or a thread that parks) while holding one aborts the process with
    /// that message ([`assert_no_spin_lock`]).
    #[derive(Default)]
    pub(crate) struct SpinLock<T> {
        locked: AtomicBool,
        value: std::cell::UnsafeCell<T>,
    }

    // SAFETY: the lock gives one thread at a time access to `value`, so it
    // can be shared when `T` can be sent (as `std::sync::Mutex`).
    unsafe impl<T: Send> Sync for SpinLock<T> {}
    // SAFETY: owning the lock is owning `T`.
    unsafe impl<T: Send> Send for SpinLock<T> {}

    impl<T> SpinLock<T> {
        pub(crate) const fn new(value: T) -> Self {
            SpinLock {
                locked: AtomicBool::new(false),
                value: std::cell::UnsafeCell::new(value),
            }
        }

        #[inline]
        pub(crate) fn lock(&self) -> SpinLockGuard<'_, T> {
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                self.lock_contended();
            }
            #[cfg(debug_assertions)]
            HELD.with(|h| h.set(h.get() + 1));
            SpinLockGuard { lock: self }
        }

        #[cold]
        fn lock_contended(&self) {
            let mut spins = 0u32;
            loop {
                while self.locked.load(Ordering::Relaxed) {
                    if spins < 64 {
                        std::hint::spin_loop();
                        spins += 1;
                    } else {
                        std::thread::yield_now();
                    }
                }
                if self
                    .locked
                    .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return;
                }
            }
        }
    }

    impl<T: std::fmt::Debug> std::fmt::Debug for SpinLock<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("SpinLock").finish_non_exhaustive()
        }
    }

    /// Holds a [`SpinLock`]; unlocks on drop.
    pub(crate) struct SpinLockGuard<'a, T> {
        lock: &'a SpinLock<T>,
    }

    impl<T> std::ops::Deref for SpinLockGuard<'_, T> {
        type Target = T;
        #[inline]
        fn deref(&self) -> &T {
            // SAFETY: the guard proves we hold the lock.
            unsafe { &*self.lock.value.get() }
        }
    }

    impl<T> std::ops::DerefMut for SpinLockGuard<'_, T> {
        #[inline]
        fn deref_mut(&mut self) -> &mut T {
            // SAFETY: the guard proves we hold the lock, exclusively.
            unsafe { &mut *self.lock.value.get() }
        }
    }

    impl<T> Drop for SpinLockGuard<'_, T> {
        #[inline]
        fn drop(&mut self) {
            self.lock.locked.store(false, Ordering::Release);
            #[cfg(debug_assertions)]
            HELD.with(|h| h.set(h.get().saturating_sub(1)));
        }
    }

    #[cfg(debug_assertions)]
    std::thread_local! {
        /// How many [`SpinLock`]s this thread holds (debug builds only).
        static HELD: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// Aborts (debug builds only) if this thread holds a [`SpinLock`]:
    /// called where a greenlet suspends and where a thread parks, since
    /// blocking under that lock can make its other users spin forever (see
    /// [`SpinLock`]: no user code under it). An abort, not a panic: the
    /// callers may have wait nodes linked on their stack, which unwinding
    /// would free while a notifier can still reach them.
    #[inline]
    pub(crate) fn assert_no_spin_lock() {
        #[cfg(debug_assertions)]
        if HELD.with(|h| h.get()) != 0 {
            wait_lock_held();
        }
    }

    /// How many [`SpinLock`]s this thread holds.
    #[cfg(all(test, debug_assertions))]
    pub(crate) fn wait_locks_held() -> usize {
        HELD.with(|h| h.get())
    }

    #[cfg(debug_assertions)]
    #[cold]
    #[inline(never)]
    fn wait_lock_held() -> ! {
        eprintln!(
            "greenhub bug: blocking while holding an internal SpinLock. No user \
             code may run under that lock (Clone, Ord, Drop, callbacks): the \
             others that take it spin until the holder runs again, forever on \
             a single-threaded hub. Aborting.\n{}",
            std::backtrace::Backtrace::force_capture()
        );
        std::process::abort();
    }

    /// `std::cell::UnsafeCell` with loom's closure-based accessors.
    #[derive(Debug, Default)]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) const fn new(value: T) -> Self {
            UnsafeCell(std::cell::UnsafeCell::new(value))
        }

        #[inline]
        pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }

        #[inline]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}

#[cfg(loom)]
mod imp {
    pub(crate) use loom::sync::atomic::{
        AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
    };

    pub(crate) mod thread {
        pub(crate) use loom::thread::{Thread, current, park, yield_now};
    }

    /// loom's mutex with the poisoning unwrapped.
    #[derive(Debug)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock().unwrap()
        }
    }

    impl<T: Default> Default for Mutex<T> {
        fn default() -> Self {
            Mutex::new(T::default())
        }
    }

    pub(crate) use loom::cell::UnsafeCell;

    /// Under loom the primitives' lock is loom's mutex, so the models
    /// explore every order in which the state is locked.
    pub(crate) type SpinLock<T> = Mutex<T>;
    pub(crate) type SpinLockGuard<'a, T> = MutexGuard<'a, T>;

    /// The debug check of the non-loom build; loom's mutex is not counted.
    #[inline]
    pub(crate) fn assert_no_spin_lock() {}
}

pub(crate) use imp::*;

/// Marks the calling OS thread as running greenhub's own code while the guard
/// lives: with the `patch` feature, a futex wait made meanwhile (a contended
/// std `Mutex`, a `OnceLock` being initialised by another thread) blocks the
/// thread as it would unpatched, instead of parking the greenlet
/// (`patch/futex.rs`). Taken around greenhub's own std lock acquisitions and
/// one-time initialisations that can run on a greenlet; nothing inside the
/// guarded region switches greenlets (the one thing that could, the futex
/// hook, checks the guard), so a per-thread counter is exact. Without the
/// feature (or under loom) it is a no-op.
#[must_use]
pub(crate) struct Internal(());

#[cfg(all(feature = "patch", not(loom)))]
std::thread_local! {
    static INTERNAL: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

impl Internal {
    #[inline]
    pub(crate) fn enter() -> Internal {
        #[cfg(all(feature = "patch", not(loom)))]
        let _ = INTERNAL.try_with(|d| d.set(d.get() + 1));
        Internal(())
    }
}

impl Drop for Internal {
    #[inline]
    fn drop(&mut self) {
        #[cfg(all(feature = "patch", not(loom)))]
        let _ = INTERNAL.try_with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// Whether the calling thread is inside an [`Internal`] region (always
/// `false` without the `patch` feature).
#[inline]
pub(crate) fn in_internal() -> bool {
    #[cfg(all(feature = "patch", not(loom)))]
    return INTERNAL.try_with(|d| d.get() != 0).unwrap_or(true);
    #[cfg(not(all(feature = "patch", not(loom))))]
    false
}

#[cfg(all(test, not(loom), debug_assertions))]
mod tests {
    use super::*;

    /// The debug count of held `SpinLock`s follows the guards, nested too.
    #[test]
    fn held_wait_locks_are_counted() {
        let (a, b) = (SpinLock::new(1), SpinLock::new(2));
        assert_eq!(wait_locks_held(), 0);
        let ga = a.lock();
        let gb = b.lock();
        assert_eq!(wait_locks_held(), 2);
        drop(ga);
        assert_eq!(wait_locks_held(), 1);
        drop(gb);
        assert_eq!(wait_locks_held(), 0);
        assert_no_spin_lock();
    }
}
