//! Runtimes: a set of hubs, how to start them, run a main greenlet on them,
//! and stop them.
//!
//! [`run`] is the one-line entry point; [`Builder`] configures hubs, mode and
//! stack size; [`Runtime::block_on`] runs a closure as the main greenlet and
//! returns its value; dropping (or [`Runtime::shutdown`]) stops the hubs after
//! killing the greenlets still alive, so their destructors run and no thread is
//! left behind. [`Handle`] spawns onto a runtime from anywhere, and
//! [`Handle::wait_idle`] waits until the runtime has nothing left to do
//! (gevent's `gevent.wait()`). `deadlock.rs` is the opt-in deadlock report
//! of `block_on` (`Builder::deadlock_timeout`).

mod builder;
#[cfg(not(loom))]
mod deadlock;

use std::fmt;
use std::io;
use std::panic;
use std::sync::Arc;

pub use builder::Builder;

use crate::error::drop_output_safely;
use crate::greenlet::{self, JoinHandle};
use crate::hub::context;
use crate::hub::escalate::{Escalation, Left};
use crate::hub::shared::Shared;

/// Starts a default runtime (M:N, one hub per CPU), runs `f` as its main
/// greenlet, shuts the runtime down and returns `f`'s value.
///
/// Greenlets still running when `f` returns are killed (gevent exits the same
/// way when its main greenlet ends).
///
/// # Panics
///
/// If the runtime cannot start (see [`Builder::build`]), if `f` panics (the
/// panic is resumed here), if a greenlet spawned with
/// [`greenlet::Builder::escalate`](crate::greenlet::Builder::escalate)
/// panics (see [`Runtime::block_on`]; the runtime is then shut down as after
/// a return), if called from inside a runtime's greenlet, or, with the
/// deadlock report turned on ([`Builder::deadlock_timeout`], or the
/// environment variable `GREENHUB_DEADLOCK_REPORT`), on a deadlock.
///
/// ```
/// let answer = greenhub::run(|| {
///     let h = greenhub::spawn(|| 21);
///     h.join().unwrap() * 2
/// });
/// assert_eq!(answer, 42);
/// ```
#[track_caller]
pub fn run<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let rt = Builder::new()
        .build()
        .unwrap_or_else(|e| panic!("greenhub::run: cannot start the runtime: {e}"));
    rt.block_on(f)
}

/// A running set of hubs.
///
/// ```
/// let rt = greenhub::Runtime::new().unwrap();
/// let v = rt.block_on(|| greenhub::spawn(|| 7).join().unwrap());
/// assert_eq!(v, 7);
/// rt.shutdown();
/// ```
pub struct Runtime {
    handle: Handle,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// The blocking monitor's registration and the dump-on-signal thread;
    /// dropped after the hubs have stopped.
    inspect: Inspect,
}

/// A runtime's observers (`crate::inspect`).
#[derive(Default)]
struct Inspect {
    #[cfg(not(loom))]
    monitor: Option<crate::inspect::monitor::Registration>,
    #[cfg(not(loom))]
    on_signal: Option<crate::inspect::on_signal::DumpOnSignal>,
}

impl Runtime {
    /// A runtime with the default configuration ([`Builder::new`]).
    ///
    /// # Errors
    ///
    /// See [`Builder::build`].
    ///
    /// ```
    /// let rt = greenhub::Runtime::new().unwrap();
    /// # drop(rt);
    /// ```
    pub fn new() -> io::Result<Runtime> {
        Builder::new().build()
    }

    /// Runs `f` as a greenlet on this runtime and blocks the calling thread
    /// until it returns; returns its value, or resumes its panic.
    ///
    /// # Escalation
    ///
    /// When a greenlet spawned with
    /// [`greenlet::Builder::escalate`](crate::greenlet::Builder::escalate)
    /// panics, `f`'s greenlet is killed (it unwinds from whatever it waits
    /// on, destructors run) and `block_on` resumes that panic, with its
    /// original payload, even if `f` returned or panicked meanwhile. The
    /// first escalation wins; one that arrives while no `block_on` runs
    /// waits for the next, which resumes it without running its closure.
    /// Other greenlets keep running until the runtime is dropped ([`run`]
    /// drops it while the panic unwinds).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = greenhub::Builder::new().single_threaded().build().unwrap();
    /// let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
    ///     rt.block_on(|| {
    ///         greenhub::greenlet::Builder::new()
    ///             .escalate(true)
    ///             .spawn(|| std::panic::panic_any(42_i32))
    ///             .unwrap();
    ///         greenhub::sleep(Duration::from_secs(3600)); // interrupted
    ///     })
    /// }));
    /// assert_eq!(caught.unwrap_err().downcast_ref::<i32>(), Some(&42));
    /// ```
    ///
    /// # Panics
    ///
    /// If `f` panics or is killed, if an escalating greenlet panics (above),
    /// or if called from one of greenhub's hub threads (that would block a
    /// hub; use [`crate::spawn`] and `join`). With
    /// [`Builder::deadlock_timeout`] (or `GREENHUB_DEADLOCK_REPORT`), also
    /// when `f` waits for something that nothing in the runtime can bring any
    /// more: the panic message starts with `greenhub: deadlock` and holds the
    /// run-info dump of who waits on what.
    ///
    /// ```
    /// let rt = greenhub::Builder::new().single_threaded().build().unwrap();
    /// assert_eq!(rt.block_on(|| "hi"), "hi");
    /// ```
    #[track_caller]
    pub fn block_on<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        if context::hub().is_some() {
            panic!(
                "greenhub: Runtime::block_on called from a hub thread; \
                 that would block every greenlet of the hub (spawn and join instead)"
            );
        }
        let escalation = &self.handle.shared.escalation;
        if let Some(payload) = escalation.take_waiting() {
            drop(f);
            panic::resume_unwind(payload);
        }
        let handle = greenlet::Builder::new()
            .name("main".into())
            .stay_put()
            .spawn_on(&self.handle.shared, f)
            .unwrap_or_else(|e| panic!("greenhub: block_on: {e}"));
        let mut main = Main {
            escalation,
            id: handle.id(),
            left: false,
        };
        escalation.enter(handle.greenlet());
        #[cfg(not(loom))]
        let outcome = match self.handle.shared.deadlock_after {
            // A `match`, not a closure: the panic names the caller's line.
            Some(after) => match deadlock::join_main(&self.handle.shared, handle, after) {
                Ok(outcome) => outcome,
                Err(report) => panic!("{report}"),
            },
            None => handle.join(),
        };
        #[cfg(loom)]
        let outcome = handle.join();
        main.left = true;
        match escalation.leave(main.id) {
            Left::Normal => {}
            Left::Escalated(payload) => {
                drop_output_safely(Some(outcome));
                panic::resume_unwind(payload);
            }
            Left::Stopped => {
                drop_output_safely(Some(outcome));
                panic!(
                    "greenhub: block_on: the main greenlet was killed by an escalated panic, \
                     which another block_on of this runtime resumed"
                );
            }
        }
        match outcome {
            Ok(value) => value,
            Err(e) => match e.try_into_panic() {
                Ok(payload) => panic::resume_unwind(payload),
                Err(e) => panic!("greenhub: the main greenlet did not finish: {e}"),
            },
        }
    }

    /// Spawns a greenlet on this runtime from any thread.
    ///
    /// ```
    /// let rt = greenhub::Runtime::new().unwrap();
    /// let h = rt.spawn(|| 5);
    /// assert_eq!(h.join().unwrap(), 5); // joined from the main thread
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.handle.spawn(f)
    }

    /// A handle for spawning onto this runtime from elsewhere.
    ///
    /// ```
    /// let rt = greenhub::Runtime::new().unwrap();
    /// let h = rt.handle().clone();
    /// std::thread::spawn(move || h.spawn(|| ()).join().unwrap()).join().unwrap();
    /// ```
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// The number of hubs.
    ///
    /// ```
    /// assert_eq!(greenhub::Builder::new().hubs(2).build().unwrap().hubs(), 2);
    /// ```
    pub fn hubs(&self) -> usize {
        self.handle.shared.hubs.len()
    }

    /// Stops the runtime: kills every greenlet still alive, lets them unwind
    /// (destructors run), and joins the hub threads. Dropping the runtime does
    /// the same.
    ///
    /// ```
    /// let rt = greenhub::Runtime::new().unwrap();
    /// let h = rt.spawn(|| greenhub::sleep(std::time::Duration::from_secs(3600)));
    /// rt.shutdown();
    /// assert!(h.join().unwrap_err().is_killed());
    /// ```
    pub fn shutdown(self) {
        drop(self)
    }
}

/// A `block_on`'s main greenlet, registered for escalation until it ended
/// (or `join` unwound: a `timeout` frame around `block_on` on its thread).
struct Main<'a> {
    escalation: &'a Escalation,
    id: crate::greenlet::GreenletId,
    left: bool,
}

impl Drop for Main<'_> {
    fn drop(&mut self) {
        if !self.left {
            if let Left::Escalated(payload) = self.escalation.leave(self.id) {
                // Unwinding already: keep the panic for the next block_on.
                self.escalation.put_back(payload);
            }
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let shared = &self.handle.shared;
        shared.begin_shutdown();
        let on_own_hub = context::hub().is_some_and(|h| Arc::ptr_eq(&h.shared, shared));
        if on_own_hub {
            // Dropped by one of its own greenlets: the hubs stop by
            // themselves; waiting here would wait for ourselves.
            return;
        }
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                eprintln!("greenhub: a hub thread panicked during shutdown");
            }
        }
        shared.cancel_injected();
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("hubs", &self.hubs())
            .field("mode", &self.handle.shared.mode)
            .finish()
    }
}

/// A cloneable reference to a runtime, for spawning from any thread.
///
/// ```
/// greenhub::run(|| {
///     let handle = greenhub::Handle::current();
///     let t = std::thread::spawn(move || handle.spawn(|| 3).join().unwrap());
///     assert_eq!(t.join().unwrap(), 3);
/// });
/// ```
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl Handle {
    /// The runtime of the calling greenlet.
    ///
    /// # Panics
    ///
    /// Off a hub thread; see [`try_current`](Self::try_current).
    ///
    /// ```
    /// greenhub::run(|| {
    ///     let _h = greenhub::Handle::current();
    /// });
    /// ```
    #[track_caller]
    pub fn current() -> Handle {
        Handle::try_current().expect("greenhub::Handle::current() called outside a runtime")
    }

    /// The runtime of the calling greenlet, or `None` off a hub thread.
    ///
    /// ```
    /// assert!(greenhub::Handle::try_current().is_none());
    /// ```
    pub fn try_current() -> Option<Handle> {
        context::hub().map(|h| Handle {
            shared: h.shared.clone(),
        })
    }

    /// Spawns a greenlet on this runtime. From one of its greenlets this is
    /// [`crate::spawn`]; from elsewhere the greenlet goes through the
    /// runtime's global queue to whichever hub is free. After shutdown the
    /// greenlet never runs and its handle reports it as killed.
    ///
    /// ```
    /// let rt = greenhub::Runtime::new().unwrap();
    /// let h = rt.handle().spawn(|| "from outside");
    /// assert_eq!(h.join().unwrap(), "from outside");
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        greenlet::Builder::new()
            .spawn_on(&self.shared, f)
            .unwrap_or_else(|e| panic!("greenhub: Handle::spawn: {e}"))
    }
}

impl Handle {
    /// Waits until the runtime has nothing left to do, or `timeout` passes:
    /// gevent's `gevent.wait()` without arguments (`wait(timeout=...)` with
    /// one). Returns `true` once idle, `false` on timeout; `None` waits for
    /// as long as it takes.
    ///
    /// Idle means: every greenlet of the runtime other than the caller has
    /// ended (finished, panicked, been killed, or never started and been
    /// cancelled), none is queued to start, and no
    /// [`blocking::unblock`](crate::blocking::unblock) job is queued or
    /// running. Timers, fds and signal subscriptions count only through the
    /// greenlets that wait on them: once those have ended, a leftover timer
    /// or an open socket is no work. Called from a plain thread (or a
    /// greenlet of another runtime), it waits for every greenlet, the main
    /// greenlet of a running `block_on` included.
    ///
    /// Idleness is a moment, not a promise: an OS thread holding a
    /// [`Handle`] may spawn again right after `wait_idle` returned `true`.
    /// The caller looks every few milliseconds (it sleeps cooperatively
    /// between looks on a greenlet, blocks on a plain thread), so it wakes
    /// up to 10 ms after the runtime went idle.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// greenhub::run(|| {
    ///     for ms in [10, 20, 30] {
    ///         greenhub::spawn(move || greenhub::sleep(Duration::from_millis(ms)));
    ///     }
    ///     let handle = greenhub::Handle::current();
    ///     assert!(!handle.wait_idle(Some(Duration::ZERO))); // still sleeping
    ///     assert!(handle.wait_idle(None)); // all three done
    /// });
    /// ```
    pub fn wait_idle(&self, timeout: Option<std::time::Duration>) -> bool {
        use std::time::{Duration, Instant};
        const FIRST: Duration = Duration::from_millis(1);
        const MOST: Duration = Duration::from_millis(10);
        let deadline = timeout.map(|t| Instant::now().checked_add(t));
        let me = context::hub()
            .is_some_and(|h| Arc::ptr_eq(&h.shared, &self.shared) && h.current().is_some());
        let mut pause = FIRST;
        loop {
            if self.shared.is_idle(u64::from(me)) {
                return true;
            }
            let now = Instant::now();
            let nap = match deadline {
                None | Some(None) => pause,
                Some(Some(d)) if now >= d => return false,
                Some(Some(d)) => pause.min(d - now),
            };
            // `greenhub::sleep`: cooperative on a greenlet, `thread::sleep`
            // on a plain thread.
            greenlet::sleep(nap);
            pause = (pause * 2).min(MOST);
        }
    }
}

/// [`Handle::wait_idle`] for the runtime of the calling greenlet: waits
/// until every other greenlet has ended and no blocking-pool job is left,
/// or `timeout` passes (gevent's `gevent.wait()`). Returns `true` once
/// idle, `false` on timeout.
///
/// # Panics
///
/// Outside a runtime (use [`Handle::wait_idle`] there).
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::time::Duration;
///
/// greenhub::run(|| {
///     let done = Arc::new(AtomicUsize::new(0));
///     for _ in 0..3 {
///         let done = done.clone();
///         // Fire and forget: nobody keeps the handles.
///         greenhub::spawn(move || {
///             greenhub::sleep(Duration::from_millis(5));
///             done.fetch_add(1, Ordering::SeqCst);
///         });
///     }
///     assert!(greenhub::wait_idle(None));
///     assert_eq!(done.load(Ordering::SeqCst), 3);
/// });
/// ```
#[track_caller]
pub fn wait_idle(timeout: Option<std::time::Duration>) -> bool {
    Handle::try_current()
        .expect("greenhub::wait_idle() called outside a runtime (use Handle::wait_idle)")
        .wait_idle(timeout)
}

#[cfg(not(loom))]
impl Handle {
    /// The runtime's shared state, for crate modules that place greenlets
    /// on given hubs (`server`).
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Every live greenlet of the runtime: id, name, state (and what it is
    /// parked on), hub, spawn site, parent and age. See
    /// [`inspect`](crate::inspect).
    ///
    /// Each hub describes itself between two greenlets; the call waits up
    /// to one second for a busy hub. A hub that does not answer is held by
    /// a greenlet that does not yield: its entry says so, and names that
    /// greenlet when the blocking monitor is on. May be called from any
    /// thread or greenlet (a greenlet waits cooperatively).
    ///
    /// ```
    /// greenhub::run(|| {
    ///     let h = greenhub::spawn(|| greenhub::sleep(std::time::Duration::from_millis(50)));
    ///     greenhub::yield_now();
    ///     let info = greenhub::Handle::current().run_info();
    ///     assert!(info.greenlet(h.id()).is_some());
    ///     println!("{info}");
    ///     h.join().unwrap();
    /// });
    /// ```
    pub fn run_info(&self) -> crate::inspect::RunInfo {
        crate::inspect::dump::collect(&self.shared, std::time::Duration::from_secs(1))
    }

    /// A snapshot of the runtime's counters, per hub and in total. See
    /// [`inspect::Metrics`](crate::inspect::Metrics).
    ///
    /// ```
    /// let rt = greenhub::Runtime::new().unwrap();
    /// rt.block_on(|| ());
    /// let m = rt.handle().metrics();
    /// assert_eq!(m.spawned_outside, 1); // the main greenlet
    /// assert_eq!(m.total().finished, 1);
    /// ```
    pub fn metrics(&self) -> crate::inspect::Metrics {
        crate::inspect::Metrics::read(&self.shared)
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("hubs", &self.shared.hubs.len())
            .finish()
    }
}
