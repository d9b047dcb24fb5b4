//! Greenlet-local storage: [`local!`](crate::local!) and [`LocalKey`], the
//! greenlet twins of `thread_local!` and `std::thread::LocalKey` (gevent's
//! `gevent.local`).
//!
//! A `thread_local!` is shared by every greenlet of a hub (they all run on the
//! hub's thread), so one greenlet's value leaks into the next. A `local!` key
//! gives each greenlet its own value instead, created lazily on its first
//! access and dropped when the greenlet ends.
//!
//! Raw greenlets and generators ([`raw`](crate::raw)) have values of their
//! own too, as gevent's `local` is keyed by the running greenlet: a value is
//! tied to the stack that touched it, so a reference handed out by `with` can
//! never outlive its value while that stack is suspended.
//!
//! Internals: every key gets a process-wide index on first use; every stack
//! has a [`LocalMap`] (part of its `greenlet::stack_state::StackState`: in the
//! task header for a greenlet, saved in the node for a raw greenlet, per
//! thread off a greenlet), a vector of slots indexed by key, touched only by
//! the code of that stack. Values are boxed, so a reference handed to `with`
//! stays valid while other keys are initialised (the vector may grow).

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::greenlet::stack_state;

/// Declares greenlet-local statics, like `thread_local!`: each greenlet that
/// touches one gets its own value, initialised on first access and dropped
/// when the greenlet ends (after its closure returned, panicked or was
/// killed). See [`LocalKey`].
///
/// ```
/// use std::cell::Cell;
///
/// greenhub::local! {
///     /// How many requests this greenlet served.
///     static SERVED: Cell<u32> = Cell::new(0);
/// }
///
/// greenhub::run(|| {
///     let hs: Vec<_> = (0..3u32)
///         .map(|i| {
///             greenhub::spawn(move || {
///                 for _ in 0..=i {
///                     SERVED.with(|n| n.set(n.get() + 1));
///                     greenhub::yield_now(); // others run; their counts stay theirs
///                 }
///                 SERVED.with(Cell::get)
///             })
///         })
///         .collect();
///     let counts: Vec<u32> = hs.into_iter().map(|h| h.join().unwrap()).collect();
///     assert_eq!(counts, [1, 2, 3]);
/// });
/// ```
#[macro_export]
macro_rules! local {
    () => {};
    ($(#[$attr:meta])* $vis:vis static $name:ident : $t:ty = $init:expr; $($rest:tt)*) => {
        $crate::local!($(#[$attr])* $vis static $name: $t = $init);
        $crate::local!($($rest)*);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident : $t:ty = $init:expr) => {
        $(#[$attr])*
        $vis static $name: $crate::greenlet::LocalKey<$t> = {
            fn __greenhub_local_init() -> $t {
                $init
            }
            $crate::greenlet::LocalKey::new(__greenhub_local_init)
        };
    };
}

/// A greenlet-local key, declared with [`local!`](crate::local!).
///
/// [`with`](Self::with) runs a closure on the calling greenlet's value,
/// creating it first if needed. Values live until the greenlet ends and are
/// then dropped on the greenlet's own stack, in key order; a panic in such a
/// destructor is caught (and reported by the panic hook), it does not reach
/// the hub. Each raw greenlet or generator has values of its own, dropped
/// when its closure ends. Off a greenlet (a plain thread, or a hub's own
/// code) the value is per OS thread, like `thread_local!`, and dropped when
/// the thread exits.
///
/// Like `thread_local!`, the value is shared, not mutable: use `Cell` or
/// `RefCell` for state. An initialiser may use other keys; one that uses its
/// own key panics.
///
/// ```
/// use std::cell::{Cell, RefCell};
///
/// greenhub::local! {
///     static LOG: RefCell<Vec<String>> = RefCell::new(Vec::new());
/// }
///
/// greenhub::run(|| {
///     LOG.with(|l| l.borrow_mut().push("main".into()));
///     let child = greenhub::spawn(|| LOG.with(|l| l.borrow().len()));
///     assert_eq!(child.join().unwrap(), 0); // a new greenlet starts empty
///     assert_eq!(LOG.with(|l| l.borrow().len()), 1);
/// });
/// ```
pub struct LocalKey<T: 'static> {
    init: fn() -> T,
    /// 0 while no index is allocated, else the key's index + 1.
    index: AtomicUsize,
}

/// The next free key index (process-wide; indices are never reused).
static NEXT_INDEX: AtomicUsize = AtomicUsize::new(0);

/// A greenlet-local value was accessed while the greenlet's (or thread's)
/// values were being dropped, after its own value had been dropped.
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
///
/// static SAW_ERROR: AtomicBool = AtomicBool::new(false);
/// struct Probe;
/// impl Drop for Probe {
///     fn drop(&mut self) {
///         // Our own value is being dropped: it is gone.
///         let err = PROBE.try_with(|_| ()).unwrap_err();
///         SAW_ERROR.store(err.to_string().contains("destroyed"), SeqCst);
///     }
/// }
/// greenhub::local! { static PROBE: Probe = Probe; }
///
/// greenhub::run(|| greenhub::spawn(|| PROBE.with(|_| ())).join().unwrap());
/// assert!(SAW_ERROR.load(SeqCst));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessError {
    _private: (),
}

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("greenlet-local value accessed after it was destroyed")
    }
}

impl std::error::Error for AccessError {}

impl<T: 'static> LocalKey<T> {
    /// A key whose values are made by `init`. Use [`local!`](crate::local!)
    /// rather than calling this.
    ///
    /// ```
    /// static K: greenhub::greenlet::LocalKey<u32> = greenhub::greenlet::LocalKey::new(|| 7);
    /// assert_eq!(K.with(|v| *v), 7);
    /// ```
    pub const fn new(init: fn() -> T) -> LocalKey<T> {
        LocalKey {
            init,
            index: AtomicUsize::new(0),
        }
    }

    /// Runs `f` on the caller's value, initialising it first if needed.
    ///
    /// # Panics
    ///
    /// If the value was already dropped (see [`try_with`](Self::try_with)), or
    /// if the initialiser accesses this same key.
    ///
    /// ```
    /// use std::cell::Cell;
    /// greenhub::local! { static N: Cell<i32> = Cell::new(0); }
    /// greenhub::run(|| {
    ///     N.with(|n| n.set(5));
    ///     assert_eq!(N.with(Cell::get), 5);
    /// });
    /// ```
    #[track_caller]
    pub fn with<F, R>(&'static self, f: F) -> R
    where
        F: FnOnce(&T) -> R,
    {
        self.try_with(f)
            .unwrap_or_else(|e| panic!("greenhub::local!: {e}"))
    }

    /// Like [`with`](Self::with), but returns an [`AccessError`] instead of
    /// panicking when the value is gone: accessed from the destructor of a
    /// greenlet-local value after this key's own value was dropped.
    ///
    /// ```
    /// greenhub::local! { static NAME: String = String::from("anon"); }
    /// greenhub::run(|| {
    ///     assert_eq!(NAME.try_with(|n| n.len()), Ok(4));
    /// });
    /// ```
    pub fn try_with<F, R>(&'static self, f: F) -> Result<R, AccessError>
    where
        F: FnOnce(&T) -> R,
    {
        let index = self.index();
        let value = stack_state::with_current(|s| s.locals.get_or_init(index, self.init))
            .ok_or(AccessError { _private: () })??;
        // SAFETY: `value` points into a box owned by the map of the caller's
        // stack (its greenlet's, raw greenlet's or thread's: each stack has
        // its own, see `greenlet::stack_state`). The box is only dropped by
        // `LocalMap::destroy` of that map, which runs on that same stack
        // after its code finished (so after this call returned), one slot at
        // a time, and never drops a slot that a running `with` on this stack
        // got a pointer from: it marks a slot destroyed before dropping it,
        // and a destroyed slot is never handed out again. So the box
        // outlives this call to `f`, even if the stack is suspended in `f`.
        Ok(f(unsafe { &*value }))
    }

    fn index(&self) -> usize {
        match self.index.load(Ordering::Acquire) {
            0 => {
                let fresh = NEXT_INDEX.fetch_add(1, Ordering::Relaxed) + 1;
                match self
                    .index
                    .compare_exchange(0, fresh, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => fresh - 1,
                    Err(won) => won - 1,
                }
            }
            n => n - 1,
        }
    }
}

impl<T: 'static> fmt::Debug for LocalKey<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKey").finish_non_exhaustive()
    }
}

enum Slot {
    Empty,
    /// The initialiser is running.
    Initializing,
    Alive(Box<dyn Any>),
    /// Dropped (or never created) during `destroy`; not handed out again.
    Destroyed,
}

/// One stack's local values, indexed by key.
pub(crate) struct LocalMap {
    /// A `Box` (from `Box::into_raw`), allocated on first use, or null: most
    /// greenlets never touch a local, and every byte of the header is paid
    /// by every spawn (8 bytes here instead of 32 for an inline
    /// `RefCell<Vec>`). A raw pointer in a `Cell` rather than a `OnceCell`
    /// so that two maps can exchange their boxes ([`swap`](Self::swap));
    /// the box itself never moves, so references into it stay valid.
    slots: Cell<*mut RefCell<Vec<Slot>>>,
}

impl LocalMap {
    pub(crate) const fn new() -> LocalMap {
        LocalMap {
            slots: Cell::new(std::ptr::null_mut()),
        }
    }

    /// Exchanges the values of two maps (a raw switch, see
    /// `greenlet::stack_state`).
    #[inline]
    pub(crate) fn swap(&self, other: &LocalMap) {
        self.slots.swap(&other.slots);
    }

    /// The value of key `index`, made by `init` if the slot is empty. The
    /// `RefCell` is never borrowed across user code (the initialiser runs with
    /// the slot marked `Initializing`), so initialisers may use other keys.
    fn get_or_init<T: 'static>(
        &self,
        index: usize,
        init: fn() -> T,
    ) -> Result<*const T, AccessError> {
        {
            let mut slots = self.slots().borrow_mut();
            if slots.len() <= index {
                slots.resize_with(index + 1, || Slot::Empty);
            }
            match &slots[index] {
                Slot::Alive(b) => return Ok(downcast::<T>(&**b)),
                Slot::Destroyed => return Err(AccessError { _private: () }),
                Slot::Initializing => {
                    drop(slots);
                    panic!("greenhub::local!: the initialiser of a key accessed that same key")
                }
                Slot::Empty => slots[index] = Slot::Initializing,
            }
        }
        /// Puts the slot back to `Empty` if the initialiser unwinds.
        struct Reset<'a>(&'a LocalMap, usize);
        impl Drop for Reset<'_> {
            fn drop(&mut self) {
                self.0.slots().borrow_mut()[self.1] = Slot::Empty;
            }
        }
        let reset = Reset(self, index);
        let value: Box<dyn Any> = Box::new(init());
        std::mem::forget(reset);
        let ptr = downcast::<T>(&*value);
        self.slots().borrow_mut()[index] = Slot::Alive(value);
        Ok(ptr)
    }

    /// The slots, allocated if needed. The reference is valid until the
    /// map that owns the box then is dropped: a swapped-out box belongs to
    /// a raw greenlet's saved state, which outlives every use of it (see
    /// `greenlet::stack_state`).
    fn slots(&self) -> &RefCell<Vec<Slot>> {
        let mut p = self.slots.get();
        if p.is_null() {
            p = Box::into_raw(Box::default());
            self.slots.set(p);
        }
        // SAFETY: `p` came from `Box::into_raw` and is freed only by the
        // `Drop` of the map holding it; maps are only exchanged between the
        // active state of a context and a saved state of a raw greenlet that
        // the switching engine keeps alive while the exchange lasts.
        unsafe { &*p }
    }

    /// Drops every value, in key order, each with its panic caught. A
    /// destructor may use keys not dropped yet (a key with a higher index,
    /// even one not created yet: it is created and dropped in turn); a key
    /// already dropped reports `AccessError`.
    pub(crate) fn destroy(&self) {
        if self.slots.get().is_null() {
            return;
        }
        let all = self.slots();
        let mut i = 0;
        loop {
            let taken = {
                let mut slots = all.borrow_mut();
                match slots.get_mut(i) {
                    Some(slot) => std::mem::replace(slot, Slot::Destroyed),
                    None => break,
                }
            };
            if let Slot::Alive(value) = taken {
                if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| drop(value))) {
                    crate::error::drop_payload_safely(payload);
                }
            }
            i += 1;
        }
    }
}

impl Drop for LocalMap {
    fn drop(&mut self) {
        // Values left here belong to a greenlet that never finished (leaked
        // at runtime shutdown): they may be `!Send` and this may be another
        // thread, so they are forgotten, like the greenlet's stack.
        let p = self.slots.get();
        if p.is_null() {
            return;
        }
        // SAFETY: `p` came from `Box::into_raw` and this map owns it.
        let mut all = unsafe { Box::from_raw(p) };
        for slot in all.get_mut().drain(..) {
            if let Slot::Alive(value) = slot {
                std::mem::forget(value);
            }
        }
    }
}

fn downcast<T: 'static>(value: &dyn Any) -> *const T {
    value
        .downcast_ref::<T>()
        .expect("greenhub::local!: key index collision") as *const T
}
