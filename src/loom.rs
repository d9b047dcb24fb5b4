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
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};

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
    #[derive(Default)]
    pub(crate) struct WaitLock<T> {
        locked: AtomicBool,
        value: std::cell::UnsafeCell<T>,
    }

    // SAFETY: the lock gives one thread at a time access to `value`, so it
    // can be shared when `T` can be sent (as `std::sync::Mutex`).
    unsafe impl<T: Send> Sync for WaitLock<T> {}
    // SAFETY: owning the lock is owning `T`.
    unsafe impl<T: Send> Send for WaitLock<T> {}

    impl<T> WaitLock<T> {
        pub(crate) const fn new(value: T) -> Self {
            WaitLock {
                locked: AtomicBool::new(false),
                value: std::cell::UnsafeCell::new(value),
            }
        }

        #[inline]
        pub(crate) fn lock(&self) -> WaitLockGuard<'_, T> {
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                self.lock_contended();
            }
            WaitLockGuard { lock: self }
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

    impl<T: std::fmt::Debug> std::fmt::Debug for WaitLock<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("WaitLock").finish_non_exhaustive()
        }
    }

    /// Holds a [`WaitLock`]; unlocks on drop.
    pub(crate) struct WaitLockGuard<'a, T> {
        lock: &'a WaitLock<T>,
    }

    impl<T> std::ops::Deref for WaitLockGuard<'_, T> {
        type Target = T;
        #[inline]
        fn deref(&self) -> &T {
            // SAFETY: the guard proves we hold the lock.
            unsafe { &*self.lock.value.get() }
        }
    }

    impl<T> std::ops::DerefMut for WaitLockGuard<'_, T> {
        #[inline]
        fn deref_mut(&mut self) -> &mut T {
            // SAFETY: the guard proves we hold the lock, exclusively.
            unsafe { &mut *self.lock.value.get() }
        }
    }

    impl<T> Drop for WaitLockGuard<'_, T> {
        #[inline]
        fn drop(&mut self) {
            self.lock.locked.store(false, Ordering::Release);
        }
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
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};

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
    pub(crate) type WaitLock<T> = Mutex<T>;
    pub(crate) type WaitLockGuard<'a, T> = MutexGuard<'a, T>;
}

pub(crate) use imp::*;
