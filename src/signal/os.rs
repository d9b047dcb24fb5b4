//! The operating-system side of `greenhub::signal`: which signal numbers may
//! be handled, their names, the async-signal-safe handler with its pending
//! flags and wake-up pipe, and installing and restoring dispositions.
//!
//! Nothing here blocks or allocates in the handler: it sets the signal's
//! flag in [`PENDING`], writes one byte to the wake-up pipe and restores
//! `errno`. The dispatcher thread (`registry.rs`) does everything else.

use std::io::{self, Read};
use std::mem::MaybeUninit;
use std::os::fd::{IntoRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering::SeqCst};

/// The highest signal number accepted (Linux has 64 signals, real-time ones
/// included; other Unix systems 31 classic ones).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) const MAX_SIGNAL: i32 = 64;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) const MAX_SIGNAL: i32 = 31;

/// Slots indexed by signal number (index 0 unused).
pub(crate) const SLOTS: usize = MAX_SIGNAL as usize + 1;

/// One flag per signal, set by the handler and taken by the dispatcher. The
/// flags, not the pipe's bytes, say which signals arrived: a full pipe drops
/// bytes, a flag is never lost (it only coalesces with itself).
static PENDING: [AtomicBool; SLOTS] = [const { AtomicBool::new(false) }; SLOTS];

/// The non-blocking write end of the wake-up pipe; -1 until the dispatcher
/// runs. Never closed once set.
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

/// Checks that `sig` is a signal greenhub may handle.
pub(crate) fn check(sig: i32) -> io::Result<()> {
    let why = match sig {
        libc::SIGKILL | libc::SIGSTOP => "cannot be caught or ignored",
        libc::SIGSEGV | libc::SIGBUS => {
            "is a fault signal, and greenhub's own handler uses it to report greenlet \
             stack overflows"
        }
        libc::SIGILL | libc::SIGFPE => {
            "is a fault signal: it must be handled on the faulting thread, not in another greenlet"
        }
        #[cfg(target_os = "linux")]
        32..=MAX_SIGNAL if sig < libc::SIGRTMIN() => {
            "is reserved by the C library for its own threads"
        }
        1..=MAX_SIGNAL => return Ok(()),
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("greenhub::signal: {sig} is not a signal number (1..={MAX_SIGNAL})"),
            ));
        }
    };
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("greenhub::signal: {} {why}", describe(sig)),
    ))
}

/// The conventional name of a classic signal (`"SIGTERM"`).
pub(crate) fn name(sig: i32) -> Option<&'static str> {
    const NAMES: &[(i32, &str)] = &[
        (libc::SIGHUP, "SIGHUP"),
        (libc::SIGINT, "SIGINT"),
        (libc::SIGQUIT, "SIGQUIT"),
        (libc::SIGILL, "SIGILL"),
        (libc::SIGTRAP, "SIGTRAP"),
        (libc::SIGABRT, "SIGABRT"),
        (libc::SIGBUS, "SIGBUS"),
        (libc::SIGFPE, "SIGFPE"),
        (libc::SIGKILL, "SIGKILL"),
        (libc::SIGUSR1, "SIGUSR1"),
        (libc::SIGSEGV, "SIGSEGV"),
        (libc::SIGUSR2, "SIGUSR2"),
        (libc::SIGPIPE, "SIGPIPE"),
        (libc::SIGALRM, "SIGALRM"),
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGCHLD, "SIGCHLD"),
        (libc::SIGCONT, "SIGCONT"),
        (libc::SIGSTOP, "SIGSTOP"),
        (libc::SIGTSTP, "SIGTSTP"),
        (libc::SIGTTIN, "SIGTTIN"),
        (libc::SIGTTOU, "SIGTTOU"),
        (libc::SIGURG, "SIGURG"),
        (libc::SIGXCPU, "SIGXCPU"),
        (libc::SIGXFSZ, "SIGXFSZ"),
        (libc::SIGVTALRM, "SIGVTALRM"),
        (libc::SIGPROF, "SIGPROF"),
        (libc::SIGWINCH, "SIGWINCH"),
        (libc::SIGIO, "SIGIO"),
        (libc::SIGSYS, "SIGSYS"),
        #[cfg(any(target_os = "linux", target_os = "android"))]
        (libc::SIGSTKFLT, "SIGSTKFLT"),
        #[cfg(any(target_os = "linux", target_os = "android"))]
        (libc::SIGPWR, "SIGPWR"),
    ];
    NAMES.iter().find(|(n, _)| *n == sig).map(|(_, s)| *s)
}

/// `"SIGTERM (15)"`, `"SIGRTMIN+2 (36)"` or `"signal 99"`, for messages.
pub(crate) fn describe(sig: i32) -> String {
    if let Some(n) = name(sig) {
        return format!("{n} ({sig})");
    }
    #[cfg(target_os = "linux")]
    if (libc::SIGRTMIN()..=MAX_SIGNAL).contains(&sig) {
        return format!("SIGRTMIN+{} ({sig})", sig - libc::SIGRTMIN());
    }
    format!("signal {sig}")
}

/// Takes (clears and returns) the pending flag of `sig`.
pub(crate) fn take_pending(sig: i32) -> bool {
    PENDING[sig as usize].swap(false, SeqCst)
}

/// Forgets a stale arrival of `sig` (one from before its first subscriber).
pub(crate) fn clear_pending(sig: i32) {
    PENDING[sig as usize].store(false, SeqCst);
}

/// The wake-up pipe: a connected pair of Unix sockets (std creates them
/// close-on-exec atomically). Returns the reading end for the dispatcher and
/// the writing end, made non-blocking, for [`publish_wake_fd`].
pub(crate) fn wake_pipe() -> io::Result<(WakeReader, OwnedFd)> {
    let (read, write) = UnixStream::pair()?;
    write.set_nonblocking(true)?;
    Ok((WakeReader(read), OwnedFd::from(write)))
}

/// Makes `fd` the handler's wake-up target, for the rest of the process's
/// life (the descriptor is deliberately leaked: a handler may be writing to
/// it at any moment).
pub(crate) fn publish_wake_fd(fd: OwnedFd) {
    WAKE_FD.store(fd.into_raw_fd(), SeqCst);
}

/// The dispatcher's end of the wake-up pipe.
pub(crate) struct WakeReader(UnixStream);

impl WakeReader {
    /// Blocks until the handler has written at least one byte, and consumes
    /// what is there (up to a buffer's worth; the rest wakes the next call).
    pub(crate) fn wait(&mut self) -> io::Result<()> {
        let mut buf = [0u8; 64];
        loop {
            match self.0.read(&mut buf) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the wake-up pipe was closed",
                    ));
                }
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// The process-wide handler. Async-signal-safe: two atomic operations, one
/// `write(2)`, and `errno` saved and restored around them.
extern "C" fn on_signal(sig: libc::c_int) {
    let saved = errno::get();
    if let Some(flag) = usize::try_from(sig).ok().and_then(|i| PENDING.get(i)) {
        flag.store(true, SeqCst);
    }
    let fd = WAKE_FD.load(SeqCst);
    if fd >= 0 {
        let byte = sig as u8;
        // SAFETY: write(2) is async-signal-safe; `byte` is a valid one-byte
        // buffer and `fd` an open descriptor that is never closed. On a full
        // pipe the non-blocking write fails with EAGAIN and the byte is
        // dropped: the flag above records the signal, and the unread bytes
        // already queued will wake the dispatcher.
        unsafe { libc::write(fd, (&raw const byte).cast(), 1) };
    }
    errno::set(saved);
}

/// A disposition saved by [`install`], to be given back by [`restore`].
#[derive(Clone, Copy)]
pub(crate) struct Disposition(libc::sigaction);

// SAFETY: a `sigaction` is plain data (a handler address, flags and a mask);
// on some targets it holds a raw `sa_restorer` pointer to code, which is
// equally valid from every thread.
unsafe impl Send for Disposition {}

/// Installs greenhub's handler for `sig` and returns the disposition it
/// replaced.
pub(crate) fn install(sig: i32) -> io::Result<Disposition> {
    // SAFETY: an all-zero sigaction is a valid value; we set the fields
    // sigaction(2) reads.
    let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
    new.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SA_RESTART: other threads' system calls are not cut short with EINTR.
    // SA_ONSTACK: on a thread with an alternate signal stack (hub threads
    // have one) the handler does not run on a greenlet's small stack.
    new.sa_flags = libc::SA_RESTART | libc::SA_ONSTACK;
    // SAFETY: `sa_mask` is ours to initialise.
    unsafe { libc::sigemptyset(&mut new.sa_mask) };
    let mut old = MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: valid pointers to a sigaction and to room for the old one.
    if unsafe { libc::sigaction(sig, &new, old.as_mut_ptr()) } != 0 {
        return Err(os_error(sig, "cannot install a handler for"));
    }
    // SAFETY: sigaction succeeded and filled `old`.
    Ok(Disposition(unsafe { old.assume_init() }))
}

/// Gives `sig` back the disposition [`install`] replaced.
pub(crate) fn restore(sig: i32, old: &Disposition) -> io::Result<()> {
    // SAFETY: `old.0` is a sigaction returned by the kernel.
    if unsafe { libc::sigaction(sig, &old.0, std::ptr::null_mut()) } != 0 {
        return Err(os_error(sig, "cannot restore the previous disposition of"));
    }
    Ok(())
}

fn os_error(sig: i32, what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(
        e.kind(),
        format!("greenhub::signal: {what} {}: {e}", describe(sig)),
    )
}

/// `errno` access for the handler, which must leave it as it found it.
mod errno {
    #[cfg(any(
        target_os = "android",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "cygwin"
    ))]
    use libc::__errno as location;
    #[cfg(any(target_os = "linux", target_os = "emscripten", target_os = "hurd"))]
    use libc::__errno_location as location;
    #[cfg(any(
        target_vendor = "apple",
        target_os = "freebsd",
        target_os = "dragonfly"
    ))]
    use libc::__error as location;

    pub(super) fn get() -> libc::c_int {
        // SAFETY: the thread's errno location is always valid to read.
        unsafe { *location() }
    }

    pub(super) fn set(value: libc::c_int) {
        // SAFETY: the thread's errno location is always valid to write.
        unsafe { *location() = value };
    }
}
