//! What both servers share: the worker greenlets (acceptors or receivers),
//! the handler greenlets with their optional limit, the counters, and the
//! stop protocol (see the module docs of `server` for its states).

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::{ServerStats, StopReport};
use crate::greenlet::wait::KillSignal;
use crate::greenlet::{self, JoinHandle};
use crate::pool::Group;
use crate::runtime::Handle;
use crate::sync::{Event, Semaphore};

/// Where the workers run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Placement {
    /// Worker `i` starts on hub `i` and stays there.
    PerHub,
    /// Wherever `spawn` puts it.
    Anywhere,
}

/// See the module docs of `server`.
#[derive(Clone, Copy, Debug)]
enum State {
    Running,
    Stopping,
    Stopped(StopReport),
}

/// The shared half of a server: its handle types hold it in an `Arc`.
pub(super) struct Core {
    state: Mutex<State>,
    /// Set when the state becomes `Stopped`.
    stopped: Event,
    handlers: Group,
    /// The free handler slots, with a limit.
    slots: Option<Arc<Semaphore>>,
    /// The acceptors or receivers, until `stop` takes them.
    workers: Mutex<Vec<JoinHandle<()>>>,
    counters: Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    /// Connections accepted (datagrams received), per worker.
    taken: Box<[AtomicU64]>,
    errors: AtomicU64,
    returned: AtomicU64,
    panicked: AtomicU64,
    killed: AtomicU64,
}

/// A handler slot, given back when dropped (with the handler's closure).
pub(super) struct Slot(Option<Arc<Semaphore>>);

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(sem) = &self.0 {
            // Unbounded semaphore: giving back cannot fail.
            let _ = sem.release(1);
        }
    }
}

/// How a handler ended; counted when dropped. Starts as `Killed`, which is
/// also what a handler cancelled before it ran (or that got no stack) is.
struct Outcome {
    counters: Arc<Counters>,
    ended: Ended,
}

enum Ended {
    Killed,
    Returned,
    Panicked,
}

impl Drop for Outcome {
    fn drop(&mut self) {
        let c = match self.ended {
            Ended::Killed => &self.counters.killed,
            Ended::Returned => &self.counters.returned,
            Ended::Panicked => &self.counters.panicked,
        };
        c.fetch_add(1, Relaxed);
    }
}

impl Core {
    /// A running core for `workers` workers, with at most `limit` handlers.
    pub(super) fn new(workers: usize, limit: Option<usize>) -> Arc<Core> {
        Arc::new(Core {
            state: Mutex::new(State::Running),
            stopped: Event::new(),
            handlers: Group::new(),
            slots: limit.map(|n| Arc::new(Semaphore::new(n))),
            workers: Mutex::new(Vec::new()),
            counters: Arc::new(Counters {
                taken: (0..workers).map(|_| AtomicU64::new(0)).collect(),
                ..Counters::default()
            }),
        })
    }

    /// Whether handlers are limited.
    pub(super) fn is_limited(&self) -> bool {
        self.slots.is_some()
    }

    /// Spawns worker `index` running `f` on `handle`'s runtime.
    ///
    /// # Errors
    ///
    /// The spawn error (none expected: the stack size is the default).
    pub(super) fn start_worker(
        &self,
        handle: &Handle,
        placement: Placement,
        index: usize,
        name: String,
        f: impl FnOnce() + Send + 'static,
    ) -> io::Result<()> {
        let builder = greenlet::Builder::new().name(name);
        let worker = match placement {
            Placement::PerHub => builder.spawn_to_hub(handle.shared(), index, f)?,
            Placement::Anywhere => builder.spawn_on(handle.shared(), f)?,
        };
        self.workers.lock().push(worker);
        Ok(())
    }

    /// Takes a handler slot, parking while all are taken.
    pub(super) fn reserve(&self) -> Slot {
        Slot(self.slots.as_ref().map(|sem| {
            sem.acquire().forget();
            sem.clone()
        }))
    }

    /// Worker `index` took a connection or a datagram.
    pub(super) fn took(&self, index: usize) {
        self.counters.taken[index].fetch_add(1, Relaxed);
    }

    /// Runs `f` in a new handler greenlet holding `slot`. A panic in `f` is
    /// counted and contained (the panic hook has reported it already).
    pub(super) fn spawn_handler(&self, slot: Slot, f: impl FnOnce() + Send + 'static) {
        // Made out here, so that it is counted even if the greenlet never
        // runs (its closure is dropped unrun).
        let outcome = Outcome {
            counters: self.counters.clone(),
            ended: Ended::Killed,
        };
        self.handlers.spawn(move || {
            let mut outcome = outcome;
            let _slot = slot;
            match panic::catch_unwind(AssertUnwindSafe(f)) {
                Ok(()) => outcome.ended = Ended::Returned,
                // A kill must go on unwinding: the greenlet ends killed.
                Err(p) if p.is::<KillSignal>() => panic::resume_unwind(p),
                Err(_) => outcome.ended = Ended::Panicked,
            }
        });
    }

    /// The number of handlers that have not finished.
    pub(super) fn active(&self) -> usize {
        self.handlers.len()
    }

    pub(super) fn stats(&self) -> ServerStats {
        let c = &self.counters;
        ServerStats {
            accepted: c.taken.iter().map(|n| n.load(Relaxed)).collect(),
            errors: c.errors.load(Relaxed),
            active: self.active(),
            returned: c.returned.load(Relaxed),
            panicked: c.panicked.load(Relaxed),
            killed: c.killed.load(Relaxed),
        }
    }

    /// Whether no `stop` has begun.
    pub(super) fn is_running(&self) -> bool {
        matches!(*self.state.lock(), State::Running)
    }

    pub(super) fn is_stopped(&self) -> bool {
        self.stopped.is_set()
    }

    pub(super) fn wait(&self) {
        self.stopped.wait();
    }

    /// `Running -> Stopping -> Stopped`; see the module docs of `server`.
    pub(super) fn stop(&self, timeout: Duration) -> StopReport {
        {
            let mut st = self.state.lock();
            match *st {
                State::Running => *st = State::Stopping,
                State::Stopping => {
                    drop(st);
                    return self.wait_report();
                }
                State::Stopped(report) => return report,
            }
        }
        let deadline = Instant::now().checked_add(timeout);
        // 1. No new work: kill the workers, whose listeners (sockets) close
        //    as they unwind. Once they are joined no handler is added.
        let workers = std::mem::take(&mut *self.workers.lock());
        for w in &workers {
            w.kill();
        }
        for w in workers {
            let _ = w.join();
        }
        let killed_before = self.counters.killed.load(Relaxed);
        let guard = StopGuard {
            core: self,
            live: self.handlers.len(),
            killed_before,
        };
        // 2. Drain: handlers may finish until the deadline.
        let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let drained = match remaining {
            None => {
                self.handlers.join();
                true
            }
            Some(d) => self.handlers.join_timeout(d),
        };
        // 3. Kill the rest and wait until they are gone.
        if !drained {
            self.handlers.kill();
            self.handlers.join();
        }
        let report = guard.report();
        drop(guard); // publishes `Stopped(report)`
        report
    }

    fn wait_report(&self) -> StopReport {
        self.stopped.wait();
        match *self.state.lock() {
            State::Stopped(report) => report,
            _ => unreachable!("greenhub::server: stopped is set only in Stopped"),
        }
    }
}

/// Moves `Stopping -> Stopped` when `stop` returns, or when the greenlet
/// running it unwinds (killed, e.g. by a runtime shutdown): then the
/// handlers still running are killed without waiting, so that `wait` and
/// other `stop` callers do not wait for good.
struct StopGuard<'a> {
    core: &'a Core,
    live: usize,
    killed_before: u64,
}

impl StopGuard<'_> {
    fn report(&self) -> StopReport {
        let killed = self.core.counters.killed.load(Relaxed) - self.killed_before;
        let killed = usize::try_from(killed).unwrap_or(usize::MAX);
        StopReport {
            drained: self.live.saturating_sub(killed),
            killed,
        }
    }
}

impl Drop for StopGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.core.handlers.kill();
        }
        let report = self.report();
        *self.core.state.lock() = State::Stopped(report);
        self.core.stopped.set();
    }
}

/// The error policy of one worker: count, log at most once a second, and
/// pause after errors that would repeat at once, so a worker never spins.
pub(super) struct Errors {
    what: &'static str,
    delay: Duration,
    last_log: Option<Instant>,
    unlogged: u64,
}

const PAUSE_MIN: Duration = Duration::from_millis(5);
const PAUSE_MAX: Duration = Duration::from_secs(1);

impl Errors {
    pub(super) fn new(what: &'static str) -> Errors {
        Errors {
            what,
            delay: Duration::ZERO,
            last_log: None,
            unlogged: 0,
        }
    }

    /// A call succeeded: the next error starts the pauses over.
    pub(super) fn reset(&mut self) {
        self.delay = Duration::ZERO;
    }

    /// Records `e`. `backs_off` says that the socket itself pauses after
    /// resource errors (`TcpListener` does after `EMFILE` and the like).
    pub(super) fn record(&mut self, core: &Core, e: &io::Error, backs_off: bool) {
        core.counters.errors.fetch_add(1, Relaxed);
        self.log(e);
        if is_transient(e) || (backs_off && crate::net::sys::is_resource_error(e)) {
            return;
        }
        self.delay = (self.delay * 2).clamp(PAUSE_MIN, PAUSE_MAX);
        crate::sleep(self.delay);
    }

    fn log(&mut self, e: &io::Error) {
        let now = Instant::now();
        if self
            .last_log
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            self.unlogged += 1;
            return;
        }
        let more = std::mem::take(&mut self.unlogged);
        if more > 0 {
            eprintln!(
                "greenhub::server: {} failed: {e} ({more} more errors)",
                self.what
            );
        } else {
            eprintln!("greenhub::server: {} failed: {e}", self.what);
        }
        self.last_log = Some(now);
    }
}

/// Errors about one connection or datagram, not the socket: retry at once.
/// (`accept(2)` on Linux passes on network errors of the new connection.)
fn is_transient(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | WouldBlock
    ) || matches!(
        e.raw_os_error(),
        Some(
            libc::EPROTO
                | libc::ENETDOWN
                | libc::ENOPROTOOPT
                | libc::EHOSTDOWN
                | libc::ENONET
                | libc::EHOSTUNREACH
                | libc::EOPNOTSUPP
                | libc::ENETUNREACH
        )
    )
}
