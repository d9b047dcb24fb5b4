//! The child-process hooks: `waitpid`, `wait4`, `waitid` and `wait` (std's
//! `Child::wait`, `Command::status` and `Command::output` end in `waitpid`,
//! or `waitid(P_PIDFD)` for a child made with a pidfd).
//!
//! On a greenlet, with patching enabled, a wait without `WNOHANG` parks the
//! greenlet instead of blocking the hub: the hook asks the real function
//! with `WNOHANG` and, while no child is ready, waits
//!
//! - for one child's exit (`waitpid`/`wait4` with a pid above 0, `waitid`
//!   with `P_PID` or `P_PIDFD`, waiting for exits only) on a pidfd
//!   (`pidfd_open(2)`, Linux 5.3+), which becomes readable when the process
//!   exits, registered with the hub's poller;
//! - otherwise (any child, a process group, stops and continues, or no
//!   pidfd: `ENOSYS`, a seccomp filter) by asking again after a cooperative
//!   sleep, 1 ms at first, doubling up to 50 ms.
//!
//! The answer is the real function's: the status, `ECHILD` for a pid that is
//! not an unwaited child, `EINVAL`.
//!
//! A kill or an expired `greenhub::timeout` frame ends the wait with -1 and
//! `ECANCELED` or `ETIMEDOUT` (std's `Child::wait` returns that error). The
//! child is left as it is: running, or a zombie until something waits for
//! it, exactly as after a blocking `waitpid` interrupted by a signal; its
//! pid stays the program's to wait for (greenhub never reaps a child behind
//! the program's back, which could hand a later wait a recycled pid). A
//! dropped `std::process::Child` does not wait for its process, patched or
//! not: kill and wait for it, or use `greenhub::process`, whose `Child` can
//! be waited for with a timeout.
//!
//! Calls with `WNOHANG` (a `SIGCHLD` handler's), off a greenlet, and inside
//! `no_switch` pass straight through.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use libc::{c_int, idtype_t, pid_t, rusage, siginfo_t};

use super::emul::{self, select_coop, set_errno, sleep_for};
use super::real;

/// The first pause between two looks when no pidfd can be waited on.
const FIRST_PAUSE: Duration = Duration::from_millis(1);
/// The longest pause between two looks.
const MAX_PAUSE: Duration = Duration::from_millis(50);

/// `idtype_t` of `waitid` for a pidfd (Linux 5.4+; not in every `libc`).
const P_PIDFD: idtype_t = 3;

/// Whether a wait with `options` is to park the greenlet.
fn cooperative(options: c_int) -> bool {
    options & libc::WNOHANG == 0 && super::enabled() && emul::on_greenlet()
}

/// What a wait can watch for readiness.
enum Watch {
    /// A pidfd the hook opened.
    Own(OwnedFd),
    /// The caller's pidfd (`waitid(P_PIDFD, fd, ..)`).
    Borrowed(RawFd),
    /// Nothing: look again after a pause.
    Poll,
}

impl Watch {
    /// The pidfd of `pid`, if one can be opened.
    fn of_pid(pid: pid_t) -> Watch {
        if pid <= 0 {
            return Watch::Poll;
        }
        // SAFETY: pidfd_open takes a pid and flags, no pointers; the result
        // is checked.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0 as libc::c_uint) };
        if fd < 0 {
            return Watch::Poll;
        }
        // SAFETY: the kernel just returned this fd (close-on-exec, as every
        // pidfd is); nothing else owns it.
        Watch::Own(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
    }

    fn fd(&self) -> Option<RawFd> {
        match self {
            Watch::Own(fd) => Some(std::os::fd::AsRawFd::as_raw_fd(fd)),
            Watch::Borrowed(fd) => Some(*fd),
            Watch::Poll => None,
        }
    }
}

/// Asks `try_wait` (the real wait with `WNOHANG` added, returning 0 while no
/// child is ready) until it answers, parking in between (module docs).
fn wait_coop(watch: Watch, mut try_wait: impl FnMut() -> c_int) -> c_int {
    let mut pause = FIRST_PAUSE;
    loop {
        let r = try_wait();
        if r != 0 {
            return r;
        }
        let parked = match watch.fd() {
            Some(fd) => {
                let pfd = libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                select_coop(&[pfd], None).map(drop)
            }
            None => {
                let nap = pause;
                pause = (pause * 2).min(MAX_PAUSE);
                sleep_for(nap)
            }
        };
        if let Err(e) = parked {
            set_errno(e);
            return -1;
        }
    }
}

/// Whether a wait with `options` can watch a pidfd: it waits for exits
/// only (a pidfd says nothing of stops and continues).
fn exits_only(options: c_int) -> bool {
    options & (libc::WUNTRACED | libc::WCONTINUED) == 0
}

/// # Safety
/// As `waitpid(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn waitpid(pid: pid_t, status: *mut c_int, options: c_int) -> pid_t {
    if !cooperative(options) {
        // SAFETY: the caller's arguments, as given.
        return unsafe { real::waitpid(pid, status, options) };
    }
    let watch = if exits_only(options) {
        Watch::of_pid(pid)
    } else {
        Watch::Poll
    };
    wait_coop(watch, || {
        // SAFETY: the caller's arguments, with WNOHANG added.
        unsafe { real::waitpid(pid, status, options | libc::WNOHANG) }
    })
}

/// # Safety
/// As `wait4(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wait4(
    pid: pid_t,
    status: *mut c_int,
    options: c_int,
    usage: *mut rusage,
) -> pid_t {
    if !cooperative(options) {
        // SAFETY: the caller's arguments, as given.
        return unsafe { real::wait4(pid, status, options, usage) };
    }
    let watch = if exits_only(options) {
        Watch::of_pid(pid)
    } else {
        Watch::Poll
    };
    wait_coop(watch, || {
        // SAFETY: the caller's arguments, with WNOHANG added.
        unsafe { real::wait4(pid, status, options | libc::WNOHANG, usage) }
    })
}

/// # Safety
/// As `wait(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wait(status: *mut c_int) -> pid_t {
    // SAFETY: `wait(s)` is `waitpid(-1, s, 0)`.
    unsafe { waitpid(-1, status, 0) }
}

/// # Safety
/// As `waitid(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn waitid(
    idtype: idtype_t,
    id: libc::id_t,
    infop: *mut siginfo_t,
    options: c_int,
) -> c_int {
    if !cooperative(options) {
        // SAFETY: the caller's arguments, as given.
        return unsafe { real::waitid(idtype, id, infop, options) };
    }
    let exits = options & (libc::WSTOPPED | libc::WCONTINUED) == 0;
    let watch = match idtype {
        libc::P_PID if exits => Watch::of_pid(id as pid_t),
        P_PIDFD if exits => Watch::Borrowed(id as RawFd),
        _ => Watch::Poll,
    };
    wait_coop(watch, || {
        // With WNOHANG, "no child ready" is 0 with `si_pid` left 0, so the
        // look goes into a zeroed siginfo of our own (the caller's may be
        // null), copied out once a child answered.
        // SAFETY: an all-zero siginfo_t is a valid value of the C struct.
        let mut info: siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: the caller's arguments, our siginfo, WNOHANG added.
        let r = unsafe { real::waitid(idtype, id, &mut info, options | libc::WNOHANG) };
        if r != 0 {
            return r; // -1, errno set
        }
        // SAFETY: `info` is initialised; si_pid reads the union as the
        // kernel filled it for SIGCHLD (or left it zero).
        if unsafe { info.si_pid() } == 0 {
            return 0; // not ready yet
        }
        if !infop.is_null() {
            // SAFETY: a non-null `infop` points at a siginfo_t to fill
            // (the caller's contract).
            unsafe { infop.write(info) };
        }
        1 // answered; waitid's own result is 0
    })
    .min(0)
}
