//! `Builder`: how many hubs, which mode, what stack size.

#[cfg(not(loom))]
use crate::inspect::monitor::{self, ReportFn};
#[cfg(not(loom))]
use crate::inspect::on_signal;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use crate::hub::HubContext;
use crate::hub::idle::Idle;
use crate::hub::queue::{Injector, StealQueue};
use crate::hub::remote::HubRemote;
use crate::hub::shared::{Mode, Shared};
use crate::loom::{AtomicBool, AtomicUsize};
use crate::offload::BlockingPool;
use crate::runtime::{Handle, Runtime};
use crate::stack::{DEFAULT_STACK_SIZE, MIN_STACK_SIZE, class_for, overflow};

/// Default bound of a runtime's blocking pool.
const DEFAULT_MAX_BLOCKING_THREADS: usize = 64;

/// Configures and builds a [`Runtime`].
///
/// Three modes:
///
/// - **M:N** (the default, [`work_stealing`](Self::work_stealing)): one hub
///   per core; idle hubs steal greenlets that have not started yet from busy
///   ones. A started greenlet stays on its hub. A hub starts its newest
///   unstarted greenlet first (work-first: a greenlet that spawns children
///   and joins them has them run before its siblings start), and greenlets
///   spawned from outside the runtime are spread over the hubs round robin.
/// - **single-threaded** ([`single_threaded`](Self::single_threaded)): one
///   hub and one FIFO run queue. Greenlets never run in parallel, and a run
///   is deterministic for a given input: gevent's semantics.
/// - **pinned** ([`pinned`](Self::pinned)): N hubs, no stealing; a greenlet
///   runs on the hub that spawned it, so the greenlets of one hub never run
///   in parallel with each other (single-threaded mode per hub).
///
/// ```
/// let rt = greenhub::Builder::new()
///     .hubs(2)
///     .stack_size(128 * 1024)
///     .build()
///     .unwrap();
/// assert_eq!(rt.block_on(|| 1 + 1), 2);
/// ```
#[derive(Debug, Clone)]
#[must_use = "a Builder does nothing until `build` is called"]
pub struct Builder {
    hubs: Option<usize>,
    mode: Mode,
    stack_size: usize,
    thread_name: String,
    max_blocking_threads: usize,
    blocking_keep_alive: Duration,
    max_blocking_time: Option<Duration>,
    #[cfg(not(loom))]
    on_blocking: Option<ReportFn>,
    run_info_signal: Option<i32>,
    deadlock_timeout: Option<Duration>,
    /// Whether `deadlock_timeout` was called (else `build` reads
    /// `GREENHUB_DEADLOCK_REPORT`).
    deadlock_set: bool,
    migratable: bool,
    #[cfg(feature = "patch")]
    patch: bool,
}

/// See [`Builder::max_blocking_time`].
const DEFAULT_MAX_BLOCKING_TIME: Option<Duration> = if cfg!(debug_assertions) && !cfg!(loom) {
    Some(Duration::from_millis(100))
} else {
    None
};

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// An M:N runtime with one hub per CPU and 256 KiB stacks.
    ///
    /// ```
    /// let rt = greenhub::Builder::new().build().unwrap();
    /// # drop(rt);
    /// ```
    pub fn new() -> Builder {
        Builder {
            hubs: None,
            mode: Mode::MN,
            stack_size: DEFAULT_STACK_SIZE,
            thread_name: "greenhub-hub".into(),
            max_blocking_threads: DEFAULT_MAX_BLOCKING_THREADS,
            blocking_keep_alive: Duration::from_secs(10),
            max_blocking_time: DEFAULT_MAX_BLOCKING_TIME,
            #[cfg(not(loom))]
            on_blocking: None,
            run_info_signal: None,
            deadlock_timeout: None,
            deadlock_set: false,
            migratable: false,
            #[cfg(feature = "patch")]
            patch: false,
        }
    }

    /// Sets the number of hubs (OS threads running greenlets). Default: the
    /// number of CPUs.
    ///
    /// ```
    /// let rt = greenhub::Builder::new().hubs(3).build().unwrap();
    /// assert_eq!(rt.hubs(), 3);
    /// ```
    pub fn hubs(mut self, n: usize) -> Builder {
        self.hubs = Some(n);
        self
    }

    /// M:N scheduling with work stealing (the default).
    ///
    /// ```
    /// let _b = greenhub::Builder::new().work_stealing();
    /// ```
    pub fn work_stealing(mut self) -> Builder {
        self.mode = Mode::MN;
        self
    }

    /// One hub, FIFO, deterministic: gevent's model. Setting
    /// [`hubs`](Self::hubs) to anything but 1 as well is an error.
    ///
    /// ```
    /// let rt = greenhub::Builder::new().single_threaded().build().unwrap();
    /// assert_eq!(rt.hubs(), 1);
    /// ```
    pub fn single_threaded(mut self) -> Builder {
        self.mode = Mode::Single;
        self
    }

    /// N hubs without stealing: greenlets stay on the hub they were spawned
    /// on (greenlets spawned from outside go to whichever hub is free).
    ///
    /// ```
    /// let rt = greenhub::Builder::new().pinned().hubs(2).build().unwrap();
    /// # drop(rt);
    /// ```
    pub fn pinned(mut self) -> Builder {
        self.mode = Mode::Pinned;
        self
    }

    /// Default stack size for the runtime's greenlets, in bytes (rounded up
    /// to a power of two, at least 16 KiB, at most 64 MiB). Default 256 KiB.
    ///
    /// ```
    /// let _b = greenhub::Builder::new().stack_size(64 * 1024);
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = bytes;
        self
    }

    /// Prefix of the hub threads' names (`<prefix>-<index>`).
    ///
    /// ```
    /// let _b = greenhub::Builder::new().thread_name("api-hub");
    /// ```
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Builder {
        self.thread_name = prefix.into();
        self
    }

    /// The most OS threads the runtime's blocking pool may run at once (for
    /// [`blocking::unblock`](crate::blocking::unblock)); more calls queue.
    /// Default 64. Zero is refused by [`build`](Self::build).
    ///
    /// ```
    /// let rt = greenhub::Builder::new().max_blocking_threads(4).build().unwrap();
    /// assert_eq!(rt.block_on(|| greenhub::blocking::unblock(|| 2 + 2)), 4);
    /// ```
    pub fn max_blocking_threads(mut self, n: usize) -> Builder {
        self.max_blocking_threads = n;
        self
    }

    /// How long an idle blocking-pool thread waits for work before it exits.
    /// Default 10 s.
    ///
    /// ```
    /// use std::time::Duration;
    /// let _b = greenhub::Builder::new().blocking_keep_alive(Duration::from_secs(1));
    /// ```
    pub fn blocking_keep_alive(mut self, dur: Duration) -> Builder {
        self.blocking_keep_alive = dur;
        self
    }

    /// Reports a hub held by one greenlet for longer than `limit` (gevent's
    /// `max_blocking_time`): a greenlet that calls something blocking its
    /// OS thread stalls every other greenlet of its hub. The report names
    /// the hub, the greenlet, its spawn site and the time so far, once per
    /// episode, on stderr or to [`on_blocking`](Builder::on_blocking).
    /// `None` turns the monitor off; a zero limit makes `build` fail with
    /// `InvalidInput`.
    ///
    /// Default: 100 ms in debug builds (of greenhub, so of a debug build of
    /// your program), off in release builds. The monitor is one thread per
    /// process, shared by the runtimes that use it (see
    /// [`inspect`](crate::inspect)).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = greenhub::Builder::new()
    ///     .max_blocking_time(Some(Duration::from_millis(250)))
    ///     .build()
    ///     .unwrap();
    /// # drop(rt);
    /// let quiet = greenhub::Builder::new().max_blocking_time(None);
    /// # drop(quiet);
    /// ```
    pub fn max_blocking_time(mut self, limit: Option<Duration>) -> Builder {
        self.max_blocking_time = limit;
        self
    }

    /// Sends the blocking monitor's reports to `f` instead of stderr. Turns
    /// the monitor on (at 100 ms) if [`max_blocking_time`](Builder::max_blocking_time)
    /// has not set a limit. `f` runs on the monitor's thread.
    ///
    /// ```
    /// let rt = greenhub::Builder::new()
    ///     .on_blocking(|report| eprintln!("slow greenlet: {report}"))
    ///     .build()
    ///     .unwrap();
    /// # drop(rt);
    /// ```
    #[cfg(not(loom))]
    pub fn on_blocking<F>(mut self, f: F) -> Builder
    where
        F: Fn(&crate::inspect::BlockingReport) + Send + Sync + 'static,
    {
        self.on_blocking = Some(ReportFn(Arc::new(f)));
        if self.max_blocking_time.is_none() {
            self.max_blocking_time = Some(Duration::from_millis(100));
        }
        self
    }

    /// Prints the run-info dump and the metrics to stderr each time the
    /// process receives `signum` (for example `libc::SIGQUIT`, as Go does,
    /// or `SIGUSR1`), from a thread of its own, so it works even when every
    /// hub is blocked. Off by default. `build` fails with `InvalidInput`
    /// for signals that cannot be handled (see [`signal`](crate::signal)).
    ///
    /// ```no_run
    /// let rt = greenhub::Builder::new()
    ///     .run_info_on_signal(libc::SIGUSR1)
    ///     .build()
    ///     .unwrap();
    /// // `kill -USR1 <pid>` now prints every greenlet and the counters.
    /// # drop(rt);
    /// ```
    pub fn run_info_on_signal(mut self, signum: i32) -> Builder {
        self.run_info_signal = Some(signum);
        self
    }

    /// Reports deadlocks: when the runtime has been *quiet* for `after`
    /// (every greenlet, the main one included, parked on a greenhub
    /// primitive that only another greenlet could release: a join, channel,
    /// queue, lock, event and the like, with no deadline; nothing runnable,
    /// no timer, no fd, future or `park` wait, no blocking-pool job, no
    /// signal subscription, and no greenlet run meanwhile),
    /// [`Runtime::block_on`] (and [`run`](crate::run)) kills the main
    /// greenlet and panics with a message that starts with
    /// `greenhub: deadlock` and holds the run-info dump of who waits on
    /// what, instead of hanging for ever: gevent's `LoopExit`, Go's "all
    /// goroutines are asleep". The panic is raised on `block_on`'s
    /// thread, never on a hub.
    ///
    /// **What it cannot see**: an OS thread outside the runtime (or a
    /// greenlet of another runtime) that holds an `Event`, a channel end, a
    /// `JoinHandle` or a [`Handle`] and would wake a greenlet *later than
    /// `after`*. Such a correct program gets a false report, so the report
    /// is off by default: turn it on (in tests, in debugging sessions) with
    /// an `after` longer than any outside thread takes to answer. An
    /// outside wake-up within `after` starts the clock again. It stays
    /// silent on deadlocks that involve a timer, an fd, a future, a `park`,
    /// a pool job or a signal subscription.
    ///
    /// `None` turns it off, which is the default unless the environment
    /// variable `GREENHUB_DEADLOCK_REPORT` is set when the runtime is
    /// built: a duration such as `500ms` or `2s` (a bare number is
    /// milliseconds), or `off`. Calling this method overrides the variable.
    /// `build` fails with `InvalidInput` for a zero `after` or a variable it
    /// cannot read.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = greenhub::Builder::new()
    ///     .deadlock_timeout(Some(Duration::from_millis(200)))
    ///     .build()
    ///     .unwrap();
    /// let report = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
    ///     rt.block_on(|| {
    ///         let never = greenhub::sync::Event::new();
    ///         never.wait(); // nobody will set it
    ///     })
    /// }))
    /// .unwrap_err();
    /// let msg = report.downcast_ref::<String>().unwrap();
    /// assert!(msg.starts_with("greenhub: deadlock"));
    /// assert!(msg.contains("\"main\": parked on Event"));
    /// ```
    pub fn deadlock_timeout(mut self, after: Option<Duration>) -> Builder {
        self.deadlock_timeout = after;
        self.deadlock_set = true;
        self
    }

    /// Turns on monkey patching ([`patch::enable`](crate::patch::enable))
    /// when the runtime starts: `build` runs its self-check (are the hooks
    /// really linked in and reached?) and fails with its `Unsupported` error
    /// if they are not, before any hub starts. Feature `patch` only.
    ///
    /// # Safety
    ///
    /// The caller makes the promise of [`patch::enable`](crate::patch::enable):
    /// no greenlet keeps thread-affine state (a C library's thread-local
    /// buffer, a lock) across a hooked blocking call.
    ///
    /// ```
    /// // SAFETY: the program's greenlets hold no thread-affine state across
    /// // blocking calls.
    /// let rt = unsafe { greenhub::Builder::new().monkey_patch() }.build().unwrap();
    /// rt.block_on(|| std::thread::sleep(std::time::Duration::from_millis(1)));
    /// assert!(greenhub::patch::is_enabled());
    /// ```
    #[cfg(feature = "patch")]
    pub unsafe fn monkey_patch(mut self) -> Builder {
        self.patch = true;
        self
    }

    /// Makes every greenlet that this runtime's `spawn` creates migratable
    /// (as [`greenlet::Builder::migratable`](crate::greenlet::Builder::migratable)):
    /// once started, it may be resumed by another hub, so that an idle hub
    /// takes over woken greenlets from a busy one. `spawn_local` greenlets
    /// and `block_on`'s closure stay put. Ignored in pinned and
    /// single-threaded mode.
    ///
    /// What it costs: a migratable greenlet's sockets are registered with
    /// every hub's poller (one `epoll_ctl` per hub when it first waits on
    /// one, and again when it closes), a hub that wakes one runs it, and
    /// starting and finishing one takes a lock shared by the hubs. What it
    /// buys: while one hub is busy, or waits for a CPU, another hub wakes
    /// and runs its greenlets (benches/compare/PROFILE.md, HTTP with 2 hubs).
    ///
    /// # Safety
    ///
    /// The caller makes the promise of
    /// [`greenlet::Builder::migratable`](crate::greenlet::Builder::migratable)
    /// for every greenlet spawned on this runtime with `spawn`: none holds
    /// anything tied to its OS thread (a `!Send` value another thread can
    /// reach, a std lock guard, a thread-local reference or cached address,
    /// per-thread C library state) across a blocking call.
    ///
    /// ```
    /// // SAFETY: the greenlets below keep only integers across blocking
    /// // calls.
    /// let rt = unsafe { greenhub::Builder::new().hubs(2).migratable() }
    ///     .build()
    ///     .unwrap();
    /// let n = rt.block_on(|| {
    ///     let h = greenhub::spawn(|| {
    ///         greenhub::sleep(std::time::Duration::from_millis(1));
    ///         7
    ///     });
    ///     h.join().unwrap()
    /// });
    /// assert_eq!(n, 7);
    /// ```
    pub unsafe fn migratable(mut self) -> Builder {
        self.migratable = true;
        self
    }

    /// Starts the hubs.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for zero hubs, more than one hub in single-threaded
    /// mode, a stack size over 64 MiB, or zero blocking threads; otherwise the OS error that kept a
    /// poller or a thread from being created.
    ///
    /// ```
    /// assert!(greenhub::Builder::new().hubs(0).build().is_err());
    /// ```
    pub fn build(mut self) -> io::Result<Runtime> {
        let n = match (self.mode, self.hubs) {
            (_, Some(0)) => return Err(invalid("a runtime needs at least one hub")),
            (Mode::Single, Some(n)) if n != 1 => {
                return Err(invalid(&format!(
                    "a single-threaded runtime has exactly one hub, not {n}"
                )));
            }
            (Mode::Single, _) => 1,
            (_, Some(n)) => n,
            (_, None) => num_cpus::get().max(1),
        };
        // An M:N runtime with one hub has nobody to steal from: its
        // stealable deque would only cost atomics and fences on every spawn
        // and pop (a large share of a spawn+join, see PROFILE.md). It
        // runs as one pinned hub, which schedules the same greenlets in the
        // same order (`newest_first`) through plain queues.
        let newest_first = self.mode == Mode::MN;
        if self.mode == Mode::MN && n == 1 {
            self.mode = Mode::Pinned;
        }
        if self.max_blocking_threads == 0 {
            return Err(invalid("the blocking pool needs at least one thread"));
        }
        if self.max_blocking_time.is_some_and(|t| t.is_zero()) {
            return Err(invalid(
                "max_blocking_time must be longer than zero (None turns the monitor off)",
            ));
        }
        class_for(self.stack_size)?;
        if !self.deadlock_set {
            self.deadlock_timeout = deadlock_from_env()?;
        }
        if self.deadlock_timeout.is_some_and(|t| t.is_zero()) {
            return Err(invalid(
                "deadlock_timeout must be longer than zero (None turns the report off)",
            ));
        }
        #[cfg(feature = "patch")]
        if self.patch {
            // SAFETY: the caller of `monkey_patch` made `enable`'s promise.
            unsafe { crate::patch::enable()? };
        }
        let stack_size = self.stack_size.max(MIN_STACK_SIZE);
        overflow::install(crate::hub::context::check_stack_fault);

        let pending = Arc::new(AtomicUsize::new(n));
        let mut remotes = Vec::with_capacity(n);
        let mut locals = Vec::with_capacity(n);
        for _ in 0..n {
            let poll = mio::Poll::new().map_err(fd_error)?;
            let waker =
                mio::Waker::new(poll.registry(), HubContext::waker_token()).map_err(fd_error)?;
            let fresh = StealQueue::new();
            let stealer = (self.mode == Mode::MN).then(|| fresh.stealer());
            let registry = poll.registry().try_clone().map_err(fd_error)?;
            remotes.push(Arc::new(HubRemote::new(
                waker,
                registry,
                stealer,
                pending.clone(),
                n,
            )));
            locals.push((fresh, poll));
        }
        let shared = Arc::new(Shared {
            mode: self.mode,
            newest_first,
            hubs: remotes.into_boxed_slice(),
            injector: Injector::new(),
            place: AtomicUsize::new(0),
            idle: Idle::new(n),
            shutdown: AtomicBool::new(false),
            terminated: AtomicBool::new(false),
            pending,
            stack_size,
            outside: Default::default(),
            watched: self.max_blocking_time.is_some(),
            migrate_all: self.migratable && self.mode == Mode::MN,
            migrating: AtomicBool::new(self.migratable && self.mode == Mode::MN),
            migrants: Default::default(),
            escalation: Default::default(),
            deadlock_after: self.deadlock_timeout,
            blocking: Arc::new(BlockingPool::new(
                self.max_blocking_threads,
                self.blocking_keep_alive,
                "greenhub-blocking".into(),
            )),
        });

        let mut threads = Vec::with_capacity(n);
        for (i, (fresh, poll)) in locals.into_iter().enumerate() {
            let shared2 = shared.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("{}-{i}", self.thread_name))
                .spawn(move || hub_main(i, shared2, fresh, poll));
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    let rt = Runtime {
                        handle: Handle { shared },
                        threads,
                        inspect: Default::default(),
                    };
                    drop(rt);
                    return Err(e);
                }
            }
        }
        #[cfg_attr(loom, allow(unused_mut))]
        let mut rt = Runtime {
            handle: Handle { shared },
            threads,
            inspect: Default::default(),
        };
        #[cfg(not(loom))]
        {
            let shared = &rt.handle.shared;
            if let Some(limit) = self.max_blocking_time {
                rt.inspect.monitor = Some(monitor::watch(shared, limit, self.on_blocking)?);
            }
            if let Some(sig) = self.run_info_signal {
                rt.inspect.on_signal = Some(on_signal::start(shared, sig)?);
            }
        }
        Ok(rt)
    }
}

fn hub_main(
    i: usize,
    shared: Arc<Shared>,
    fresh: StealQueue<crate::greenlet::task::TaskRef>,
    poll: mio::Poll,
) {
    let _altstack = match overflow::AltStack::ensure() {
        Ok(alt) => alt,
        Err(e) => {
            eprintln!(
                "greenhub: hub {i}: no alternate signal stack ({e}); stack overflows will not be reported"
            );
            None
        }
    };
    // SAFETY: gettid(2) has no preconditions and cannot fail.
    let tid = unsafe { libc::gettid() };
    shared.hubs[i]
        .tid
        .store(tid, std::sync::atomic::Ordering::Relaxed);
    let hub = HubContext::new(i, shared, fresh, poll);
    hub.run();
}

/// A hub's poller could not get its fds: name the limit when one was hit.
fn fd_error(e: io::Error) -> io::Error {
    let limit = match e.raw_os_error() {
        Some(libc::EMFILE) => "the process's open-file limit (RLIMIT_NOFILE, `ulimit -n`)",
        Some(libc::ENFILE) => "the system's open-file limit (fs.file-max)",
        _ => return e,
    };
    io::Error::new(
        e.kind(),
        format!("greenhub: cannot create a hub's poller (3 fds per hub): {e}: {limit} is reached"),
    )
}

/// The environment variable that turns the deadlock report on for runtimes
/// whose builder did not set it (`Builder::deadlock_timeout`).
const DEADLOCK_ENV: &str = "GREENHUB_DEADLOCK_REPORT";

/// `GREENHUB_DEADLOCK_REPORT`: unset, empty, `off` or `0` for off, else a
/// duration (`500ms`, `2s`, or a bare number of milliseconds).
fn deadlock_from_env() -> io::Result<Option<Duration>> {
    let Some(value) = std::env::var_os(DEADLOCK_ENV) else {
        return Ok(None);
    };
    let text = value.to_string_lossy();
    parse_deadlock(text.trim()).ok_or_else(|| {
        invalid(&format!(
            "{DEADLOCK_ENV}={text:?}: expected a duration such as 500ms, 2s or 1500              (milliseconds), or off"
        ))
    })
}

fn parse_deadlock(s: &str) -> Option<Option<Duration>> {
    if s.is_empty() || s.eq_ignore_ascii_case("off") || s == "0" {
        return Some(None);
    }
    let (digits, unit) = match s.strip_suffix("ms") {
        Some(d) => (d, 1),
        None => match s.strip_suffix('s') {
            Some(d) => (d, 1000),
            None => (s, 1),
        },
    };
    let n: u64 = digits.trim().parse().ok()?;
    let ms = n.checked_mul(unit)?;
    Some((ms > 0).then(|| Duration::from_millis(ms)))
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("greenhub: {msg}"))
}
