//! `Event`: a flag that greenlets and threads wait on (gevent.event.Event).

use std::fmt;
use std::time::{Duration, Instant};

use crate::greenlet::runinfo::WaitKind;
use crate::loom::SpinLock;
use crate::sync::broadcast::{Broadcast, wait_for};
use crate::sync::waitlist::wake_all;

/// A flag that wakes every waiter when it is set: gevent's `Event`.
///
/// [`wait`](Self::wait) returns at once while the flag is set and otherwise
/// parks until [`set`](Self::set). Setting wakes *all* waiters (in the order
/// they started waiting); [`clear`](Self::clear) makes later waits block
/// again. A waiter that was woken by a `set` returns `true` even if the flag
/// was cleared again before it ran.
///
/// As in gevent, a `wait` that finds the flag set while the waiters woken
/// by the `set` have not run yet waits its turn behind them, instead of
/// overtaking them (so `set(); wait()` in the setter lets the waiters run
/// first). It returns at once as soon as they all ran.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// greenhub::run(|| {
///     let ready = Arc::new(greenhub::sync::Event::new());
///     let waiters: Vec<_> = (0..3)
///         .map(|i| {
///             let ready = ready.clone();
///             greenhub::spawn(move || {
///                 ready.wait();
///                 i
///             })
///         })
///         .collect();
///     greenhub::sleep(Duration::from_millis(5));
///     ready.set();
///     let ids: Vec<_> = waiters.into_iter().map(|h| h.join().unwrap()).collect();
///     assert_eq!(ids, [0, 1, 2]);
/// });
/// ```
pub struct Event {
    state: SpinLock<State>,
}

struct State {
    set: bool,
    waiters: Broadcast,
}

impl Default for Event {
    fn default() -> Self {
        Event::new()
    }
}

impl Event {
    /// A new, unset event.
    ///
    /// ```
    /// assert!(!greenhub::sync::Event::new().is_set());
    /// ```
    pub fn new() -> Event {
        Event {
            state: SpinLock::new(State {
                set: false,
                waiters: Broadcast::new(),
            }),
        }
    }

    /// Sets the flag and wakes every waiter.
    ///
    /// ```
    /// let ev = greenhub::sync::Event::new();
    /// ev.set();
    /// assert!(ev.is_set());
    /// ev.wait(); // returns at once
    /// ```
    pub fn set(&self) {
        let mut st = self.state.lock();
        st.set = true;
        let woken = st.waiters.wake_all();
        drop(st);
        wake_all(woken);
    }

    /// Clears the flag: later waits block until the next `set`.
    ///
    /// ```
    /// let ev = greenhub::sync::Event::new();
    /// ev.set();
    /// ev.clear();
    /// assert!(!ev.is_set());
    /// ```
    pub fn clear(&self) {
        self.state.lock().set = false;
    }

    /// Whether the flag is set.
    ///
    /// ```
    /// let ev = greenhub::sync::Event::new();
    /// assert!(!ev.is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        self.state.lock().set
    }

    /// Waits until the flag is set.
    ///
    /// ```
    /// use std::sync::Arc;
    /// greenhub::run(|| {
    ///     let ev = Arc::new(greenhub::sync::Event::new());
    ///     let ev2 = ev.clone();
    ///     let h = greenhub::spawn(move || ev2.set());
    ///     ev.wait();
    ///     h.join().unwrap();
    /// });
    /// ```
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Waits until the flag is set or `dur` passed; returns whether it was
    /// set (gevent's `wait(timeout)`).
    ///
    /// ```
    /// use std::time::Duration;
    /// greenhub::run(|| {
    ///     let ev = greenhub::sync::Event::new();
    ///     assert!(!ev.wait_timeout(Duration::from_millis(5)));
    ///     ev.set();
    ///     assert!(ev.wait_timeout(Duration::from_millis(5)));
    /// });
    /// ```
    pub fn wait_timeout(&self, dur: Duration) -> bool {
        self.wait_until(Instant::now().checked_add(dur))
    }

    /// Waits until the flag is set or `deadline` passed (`None`: no
    /// deadline); returns whether it was set.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let ev = greenhub::sync::Event::new();
    /// assert!(!ev.wait_until(Some(Instant::now() + Duration::from_millis(1))));
    /// ```
    pub fn wait_until(&self, deadline: Option<Instant>) -> bool {
        match wait_for(
            &self.state,
            self.state.lock(),
            |s| &mut s.waiters,
            |s| s.set,
            deadline,
            WaitKind::Event,
        ) {
            Ok(set) => set,
            Err(interrupt) => interrupt.raise(),
        }
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.state.lock();
        f.debug_struct("Event")
            .field("set", &st.set)
            .field("waiters", &st.waiters.len())
            .finish()
    }
}
