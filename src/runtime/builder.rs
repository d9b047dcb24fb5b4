//! `Builder`: how many hubs, which mode, what stack size.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use crate::blocking::pool::BlockingPool;
use crate::hub::HubContext;
use crate::hub::idle::Idle;
use crate::hub::queue::{Injector, LocalQueue};
use crate::hub::remote::HubRemote;
use crate::loom::{AtomicBool, AtomicUsize};
use crate::runtime::shared::{Mode, Shared};
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
///   ones. A started greenlet stays on its hub.
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
}

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
            mode: Mode::Steal,
            stack_size: DEFAULT_STACK_SIZE,
            thread_name: "greenhub-hub".into(),
            max_blocking_threads: DEFAULT_MAX_BLOCKING_THREADS,
            blocking_keep_alive: Duration::from_secs(10),
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
        self.mode = Mode::Steal;
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
    pub fn build(self) -> io::Result<Runtime> {
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
        if self.max_blocking_threads == 0 {
            return Err(invalid("the blocking pool needs at least one thread"));
        }
        class_for(self.stack_size)?;
        let stack_size = self.stack_size.max(MIN_STACK_SIZE);
        overflow::install();

        let pending = Arc::new(AtomicUsize::new(n));
        let mut remotes = Vec::with_capacity(n);
        let mut locals = Vec::with_capacity(n);
        for _ in 0..n {
            let poll = mio::Poll::new().map_err(fd_error)?;
            let waker =
                mio::Waker::new(poll.registry(), HubContext::waker_token()).map_err(fd_error)?;
            let fresh = LocalQueue::new();
            let stealer = (self.mode == Mode::Steal).then(|| fresh.stealer());
            let registry = poll.registry().try_clone().map_err(fd_error)?;
            remotes.push(Arc::new(HubRemote::new(
                waker,
                registry,
                stealer,
                pending.clone(),
            )));
            locals.push((fresh, poll));
        }
        let shared = Arc::new(Shared {
            mode: self.mode,
            hubs: remotes.into_boxed_slice(),
            injector: Injector::new(),
            idle: Idle::new(n),
            shutdown: AtomicBool::new(false),
            terminated: AtomicBool::new(false),
            pending,
            stack_size,
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
                    };
                    drop(rt);
                    return Err(e);
                }
            }
        }
        Ok(Runtime {
            handle: Handle { shared },
            threads,
        })
    }
}

fn hub_main(
    i: usize,
    shared: Arc<Shared>,
    fresh: LocalQueue<crate::greenlet::task::TaskRef>,
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

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("greenhub: {msg}"))
}
