//! Waiting for a child to exit without blocking a hub in `waitpid`.
//!
//! The first wait that finds the child still running opens a pidfd for it
//! (`pidfd_open(2)`, Linux 5.3+). A pidfd becomes readable when its process
//! exits, so the wait is the crate's ordinary "try the syscall, park on
//! `WouldBlock`" loop ([`Evented::with`]) on the read side of the pidfd,
//! whose syscall is std's non-blocking `try_wait` (`waitpid(WNOHANG)`). On
//! a greenlet that parks on the hub's poller; off a greenlet it is a
//! `poll(2)` on the pidfd.
//!
//! Opening the pidfd lazily is race-free: until something reaps the child,
//! its pid stays taken (a zombie at worst), and only the owning `Child`
//! reaps it; a reaped child's status is cached by std, so `try_wait` answers
//! without a pidfd.
//!
//! Without pidfds (`ENOSYS`, `EPERM` from a seccomp filter, or any other
//! failure to open one) the wait polls `try_wait`, sleeping cooperatively in
//! between, 1 ms at first, doubling up to 50 ms.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::process::{self, ExitStatus};
use std::time::{Duration, Instant};

use crate::hub::readiness::Direction;
use crate::io::evented::Evented;

/// The first pause between two looks at a child without a pidfd.
const FIRST_PAUSE: Duration = Duration::from_millis(1);
/// The longest pause between two looks at a child without a pidfd.
const MAX_PAUSE: Duration = Duration::from_millis(50);

/// How a child's exit is waited for; see the module docs.
pub(super) enum ExitWatch {
    /// Not decided yet: no wait has found the child running.
    Unopened,
    /// The child's pidfd.
    Pidfd(Evented<OwnedFd>),
    /// No pidfd could be opened: poll `try_wait` with a backoff sleep.
    Polling,
}

impl ExitWatch {
    /// Waits until `child` exits and reaps it, or until `deadline` passes
    /// (then `Ok(None)`). Raises a kill or an expired `timeout` frame by
    /// unwinding, leaving the child running.
    pub(super) fn wait(
        &mut self,
        child: &mut process::Child,
        deadline: Option<Instant>,
    ) -> io::Result<Option<ExitStatus>> {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if let ExitWatch::Unopened = self {
            *self = open(child.id());
        }
        match self {
            ExitWatch::Pidfd(pidfd) => wait_pidfd(pidfd, child, deadline),
            _ => wait_polling(child, deadline),
        }
    }
}

/// Opens a pidfd for `pid`, or settles for polling.
fn open(pid: u32) -> ExitWatch {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return ExitWatch::Polling;
    };
    // SAFETY: pidfd_open takes a pid and flags, no pointers; the result is
    // checked.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0 as libc::c_uint) };
    if fd < 0 {
        return ExitWatch::Polling;
    }
    // SAFETY: the kernel just returned this fd (close-on-exec, as every
    // pidfd is); nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    // Nothing ever reads the pidfd, so it need not be non-blocking.
    ExitWatch::Pidfd(Evented::new(fd))
}

/// The error `Evented::with` reports at the deadline; `waitpid` never fails
/// with `TimedOut`, so it cannot be confused with a real error.
fn deadline_passed() -> io::Error {
    io::Error::from(io::ErrorKind::TimedOut)
}

fn wait_pidfd(
    pidfd: &Evented<OwnedFd>,
    child: &mut process::Child,
    deadline: Option<Instant>,
) -> io::Result<Option<ExitStatus>> {
    let reaped = pidfd.with(
        Direction::Read,
        deadline,
        deadline_passed,
        |_| match child.try_wait() {
            Ok(Some(status)) => Ok(status),
            Ok(None) => Err(io::ErrorKind::WouldBlock.into()),
            Err(e) => Err(e),
        },
    );
    match reaped {
        Ok(status) => Ok(Some(status)),
        // One last look: the child may have exited right at the deadline.
        Err(e) if e.kind() == io::ErrorKind::TimedOut => child.try_wait(),
        Err(e) => Err(e),
    }
}

fn wait_polling(
    child: &mut process::Child,
    deadline: Option<Instant>,
) -> io::Result<Option<ExitStatus>> {
    let mut pause = FIRST_PAUSE;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let nap = match deadline {
            None => pause,
            Some(at) => {
                let left = at.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(None);
                }
                pause.min(left)
            }
        };
        // Parks only this greenlet (off a greenlet: the thread), and raises
        // a kill or an expired `timeout` frame.
        crate::sleep(nap);
        pause = (pause * 2).min(MAX_PAUSE);
    }
}
