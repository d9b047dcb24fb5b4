//! Unix signals: run a handler in a new greenlet when a signal arrives
//! (gevent's `signal_handler`), or wait for signals from a greenlet or a
//! plain thread (signal-hook's `Signals`).
//!
//! This module owns greenhub's handling of *catchable, asynchronous*
//! signals: `SIGTERM`, `SIGINT`, `SIGQUIT`, `SIGHUP`, `SIGUSR1`, ... for
//! clean shutdown, reloads and the like. Fault signals are refused
//! (`SIGSEGV` and `SIGBUS` belong to greenhub's stack-overflow reports), and
//! so are `SIGKILL` and `SIGSTOP`, which cannot be caught.
//!
//! - [`signal_handler`] spawns a closure as a new greenlet, on the runtime
//!   it was installed from, each time the signal arrives, until the returned
//!   [`SignalHandler`] is cancelled or dropped.
//! - [`Signals`] subscribes to a set of signals and receives their numbers:
//!   [`recv`](Signals::recv) parks only the calling greenlet, or blocks a
//!   plain thread, and honours kills and [`timeout`](crate::timeout).
//!
//! ```
//! use std::sync::Arc;
//! use greenhub::signal::{self, SIGTERM};
//! use greenhub::sync::Event;
//!
//! greenhub::run(|| {
//!     let stop = Arc::new(Event::new());
//!     let s = stop.clone();
//!     let _guard = signal::signal_handler(SIGTERM, move || s.set()).unwrap();
//!     // ... serve until asked to stop; here we ask ourselves:
//!     // SAFETY: sends a signal to this process, which now handles it.
//!     unsafe { libc::kill(libc::getpid(), SIGTERM) };
//!     stop.wait();
//! }); // the guard is dropped: SIGTERM gets its previous disposition back
//! ```
//!
//! # Design
//!
//! A signal handler may only do async-signal-safe things, and it runs on
//! whatever thread the kernel picks, possibly a hub in the middle of a
//! greenlet. So greenhub's handler (one function for every signal) only
//! sets the signal's *pending flag* and writes one byte to a non-blocking,
//! close-on-exec *wake-up pipe* (dropping it if the pipe is full), keeping
//! `errno` intact. A *dispatcher* OS thread, `greenhub-signal`, started on
//! the first subscription, blocks on the pipe; woken, it takes the pending
//! flags and delivers each signal to its subscribers: it spawns handler
//! greenlets through the runtime's global queue, and sends numbers into
//! [`Signals`]' channels (greenhub's own [`channel`](crate::channel), which
//! works across greenlets and threads).
//!
//! Why this shape:
//!
//! - The dispatcher does not depend on any hub: a signal is taken in however
//!   busy the hubs are, and its handler greenlet goes to whichever hub is
//!   free (a busy hub also looks at the global queue every few dozen
//!   switches), so delivery "works whichever hub is busy". In gevent,
//!   signals reach only the main thread's hub.
//! - Flags, not the pipe's bytes, say which signals arrived, so a full pipe
//!   loses nothing: arrivals of one signal only coalesce. A [`Signals`]
//!   holds at most one undelivered entry per signal, so a signal storm
//!   cannot fill memory.
//! - `signalfd` or a `sigwait` thread would need the signals blocked in
//!   *every* thread, which a library cannot arrange for threads it did not
//!   start; a hub polling for signals would stall behind a busy greenlet.
//!
//! The cross-thread protocol (install and uninstall races included) is
//! documented in `registry.rs`.
//!
//! # Process-wide effects
//!
//! Signal dispositions belong to the process. While a signal has at least
//! one subscriber (handler or `Signals`, from any runtime or thread),
//! greenhub's handler replaces the previous disposition, and the previous
//! handler, if any, is *not* called; when its last subscriber goes away the
//! previous disposition (saved when the first came) is restored. So while
//! you handle `SIGINT`, Ctrl-C no longer kills the process: make the handler
//! do it. Someone who changes a disposition with `sigaction` while greenhub
//! holds the signal gets it overwritten by that restore. In a child forked
//! without `exec` no signal is delivered (the dispatcher thread does not
//! survive `fork`); after `exec` nothing is inherited.

mod os;
mod registry;
mod signals;

use std::fmt;
use std::io;
use std::sync::Arc;

pub use signals::{Iter, Signals};

use crate::Handle;
use registry::Sink;
pub(crate) use registry::has_subscribers;

/// Hangup (the terminal went away; by convention, daemons reload on it).
pub const SIGHUP: i32 = libc::SIGHUP;
/// Interrupt from the keyboard (Ctrl-C).
pub const SIGINT: i32 = libc::SIGINT;
/// Quit from the keyboard (Ctrl-\\).
pub const SIGQUIT: i32 = libc::SIGQUIT;
/// Termination request (`kill`'s default; service managers send it to stop).
pub const SIGTERM: i32 = libc::SIGTERM;
/// User-defined signal 1.
pub const SIGUSR1: i32 = libc::SIGUSR1;
/// User-defined signal 2.
pub const SIGUSR2: i32 = libc::SIGUSR2;

/// The conventional name of a signal number, for the classic signals.
///
/// ```
/// use greenhub::signal::{SIGTERM, name};
///
/// assert_eq!(name(SIGTERM), Some("SIGTERM"));
/// assert_eq!(name(0), None);
/// ```
pub fn name(signum: i32) -> Option<&'static str> {
    os::name(signum)
}

/// Runs `f` in a new greenlet each time signal `signum` arrives, on the
/// runtime of the caller (gevent's `gevent.signal_handler`).
///
/// The handler stays installed after firing, until the returned
/// [`SignalHandler`] is [`cancel`](SignalHandler::cancel)led or dropped:
/// keep it alive (bind it to a variable, store it) for as long as the
/// handler should run. Arrivals that come faster than the greenlets are
/// spawned may coalesce into one run, but every arrival is followed by at
/// least one run. Each run is a new greenlet, so `f` may block (sleep, send
/// on a channel, join); several runs may overlap.
///
/// The greenlets are spawned on the runtime that was current here, whatever
/// hub is busy. They do not keep the runtime alive (gevent's `ref=False`);
/// once it has shut down, deliveries run nothing. A panic in `f` ends only
/// that run: it is reported by the panic hook like any greenlet's panic, and
/// the handler stays installed (gevent re-raises in the main greenlet
/// instead).
///
/// While the signal is handled its previous disposition is suspended; see
/// the [module docs](self) for this and other process-wide effects.
///
/// # Errors
///
/// - `InvalidInput` if `signum` is not a signal number or cannot be handled
///   (`SIGKILL`, `SIGSTOP`, or a fault signal: `SIGSEGV`, `SIGBUS`, `SIGILL`,
///   `SIGFPE`); the message names the signal.
/// - An error of kind `Other` when called outside a runtime (not on a
///   greenlet); use [`signal_handler_on`] there.
/// - An OS error if the handler or the dispatcher thread cannot be set up.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use greenhub::signal::{SIGUSR1, signal_handler};
///
/// greenhub::run(|| {
///     let runs = Arc::new(AtomicUsize::new(0));
///     let r = runs.clone();
///     let handler = signal_handler(SIGUSR1, move || {
///         r.fetch_add(1, Ordering::SeqCst);
///     })
///     .unwrap();
///     // SAFETY: sends a signal to this process, which now handles it.
///     unsafe { libc::kill(libc::getpid(), SIGUSR1) };
///     while runs.load(Ordering::SeqCst) == 0 {
///         greenhub::sleep(std::time::Duration::from_millis(1));
///     }
///     handler.cancel();
///
///     assert!(signal_handler(libc::SIGKILL, || ()).is_err()); // cannot be caught
/// });
/// assert!(signal_handler(SIGUSR1, || ()).is_err()); // not on a runtime
/// ```
pub fn signal_handler<F>(signum: i32, f: F) -> io::Result<SignalHandler>
where
    F: Fn() + Send + Sync + 'static,
{
    os::check(signum)?;
    let handle = Handle::try_current().ok_or_else(|| {
        io::Error::other(
            "greenhub::signal::signal_handler called outside a greenhub runtime; \
             call it from a greenlet, or use signal_handler_on with the runtime's Handle",
        )
    })?;
    signal_handler_on(&handle, signum, f)
}

/// [`signal_handler`] for a given runtime, callable from anywhere (a plain
/// thread, `main` before [`Runtime::block_on`](crate::Runtime::block_on)).
///
/// # Errors
///
/// As [`signal_handler`], except that no runtime need be current.
///
/// ```
/// use std::sync::Arc;
/// use greenhub::signal::{SIGUSR2, signal_handler_on};
/// use greenhub::sync::Event;
///
/// let rt = greenhub::Runtime::new().unwrap();
/// let fired = Arc::new(Event::new());
/// let f = fired.clone();
/// let handler = signal_handler_on(rt.handle(), SIGUSR2, move || f.set()).unwrap();
/// // SAFETY: sends a signal to this process, which now handles it.
/// unsafe { libc::kill(libc::getpid(), SIGUSR2) };
/// fired.wait(); // from the main thread: blocks it
/// drop(handler);
/// ```
pub fn signal_handler_on<F>(handle: &Handle, signum: i32, f: F) -> io::Result<SignalHandler>
where
    F: Fn() + Send + Sync + 'static,
{
    let id = registry::next_id();
    let sink = Sink::Handler {
        handle: handle.clone(),
        f: Arc::new(f),
    };
    registry::subscribe(signum, id, sink)?;
    Ok(SignalHandler {
        signum,
        id,
        active: true,
    })
}

/// An installed [`signal_handler`]; cancels it when dropped.
///
/// ```
/// use greenhub::signal::{SIGHUP, signal_handler};
///
/// greenhub::run(|| {
///     let h = signal_handler(SIGHUP, || println!("reload")).unwrap();
///     assert_eq!(h.signum(), SIGHUP);
///     h.cancel(); // SIGHUP gets its previous disposition back
/// });
/// ```
#[must_use = "dropping a SignalHandler cancels it; keep it alive while the handler should run"]
pub struct SignalHandler {
    signum: i32,
    id: u64,
    active: bool,
}

impl SignalHandler {
    /// The signal this handler is for.
    ///
    /// ```
    /// greenhub::run(|| {
    ///     let h = greenhub::signal::signal_handler(libc::SIGWINCH, || ()).unwrap();
    ///     assert_eq!(h.signum(), libc::SIGWINCH);
    /// });
    /// ```
    pub fn signum(&self) -> i32 {
        self.signum
    }

    /// Uninstalls the handler: once this returns, no new greenlet is spawned
    /// for it (one spawned before may still be running). If it was the
    /// signal's last subscriber, the signal gets back the disposition it
    /// had before. Dropping the `SignalHandler` does the same.
    ///
    /// ```
    /// greenhub::run(|| {
    ///     let h = greenhub::signal::signal_handler(libc::SIGWINCH, || ()).unwrap();
    ///     h.cancel();
    /// });
    /// ```
    pub fn cancel(mut self) {
        self.uninstall();
    }

    fn uninstall(&mut self) {
        if std::mem::take(&mut self.active) {
            // Dropped here, after the registry lock is released.
            drop(registry::unsubscribe(self.signum, self.id));
        }
    }
}

impl Drop for SignalHandler {
    fn drop(&mut self) {
        self.uninstall();
    }
}

impl fmt::Debug for SignalHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignalHandler")
            .field("signum", &self.signum)
            .field("name", &name(self.signum))
            .finish()
    }
}
