//! Blocking calls emulated on non-blocking fds, and cooperative waits that
//! never unwind.
//!
//! [`blocking`] is the loop behind every hooked read, write, accept and
//! connect on a tracked fd: try the real (non-blocking) call; on `EAGAIN`,
//! wait for readiness (parking the greenlet on its hub's poller, or `poll(2)`
//! off a greenlet) up to the socket's `SO_RCVTIMEO`/`SO_SNDTIMEO`, then try
//! again. A kill or an expired `greenhub::timeout` frame ends the wait with
//! an error return instead of an unwind ([`interrupted`]); the greenlet keeps
//! it pending, and its next greenhub blocking point raises it.

use std::any::Any;
use std::os::fd::RawFd;
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use libc::c_int;

use super::fdtable::{self, Entry};
use crate::greenlet::runinfo::{WaitKind, WaitOn};
use crate::greenlet::wait::{self, Interrupt, TimeoutSignal, Wake};
use crate::hub::context;
use crate::hub::readiness::Direction;
use crate::io::registration::Ready;
use crate::io::sys;

/// The calling thread's `errno`.
#[inline]
pub(crate) fn errno() -> c_int {
    // SAFETY: `__errno_location` returns the calling thread's errno slot.
    unsafe { *libc::__errno_location() }
}

#[inline]
pub(crate) fn set_errno(e: c_int) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = e }
}

/// Whether the caller runs on a greenlet that may switch: inside a
/// `greenhub::no_switch` scope, hooked calls block the thread as they would
/// unpatched (which switches nothing).
#[inline]
pub(crate) fn on_greenlet() -> bool {
    let task = context::current_raw();
    task.is_some() && !crate::greenlet::stack_state::switch_forbidden_for(task)
}

/// The errno that ends a hooked socket call cut short by `i`: `ECANCELED`
/// for a kill (not `EINTR`, which std's `read_exact`, `write_all` and
/// `connect` retry at once, forever, since the kill stays pending), and
/// `ETIMEDOUT` for an expired `greenhub::timeout` frame.
pub(crate) fn interrupted(i: &Interrupt) -> c_int {
    match i {
        Interrupt::Kill => {
            super::killed::kill_seen();
            libc::ECANCELED
        }
        Interrupt::Timeout(_) => libc::ETIMEDOUT,
        // Not reached: `on_greenlet` is false inside `no_switch`, so hooked
        // calls never park there.
        Interrupt::NoSwitch => libc::EDEADLK,
    }
}

/// Runs `op`, a real call on `fd` that returns -1 with `errno` on failure,
/// as the blocking call would run: see the module docs. `dontwait` is
/// whether the caller asked for a non-blocking call (`MSG_DONTWAIT`). The
/// socket's timeout ends it with `EAGAIN`, as it ends a blocking call.
pub(crate) fn blocking(
    fd: RawFd,
    dir: Direction,
    dontwait: bool,
    mut op: impl FnMut() -> isize,
) -> isize {
    let Some(entry) = fdtable::get(fd) else {
        return op();
    };
    if dontwait || entry.desc.nonblocking() {
        return op();
    }
    let deadline = entry
        .desc
        .timeout(dir)
        .and_then(|t| Instant::now().checked_add(t));
    loop {
        let seq = entry.reg.seq(dir);
        let r = op();
        if r >= 0 || errno() != libc::EAGAIN {
            return r;
        }
        if let Err(e) = wait_fd(&entry, fd, dir, seq, deadline, libc::EAGAIN) {
            set_errno(e);
            return -1;
        }
    }
}

/// Waits for `dir` readiness of the tracked `fd` (an edge after `seq`), or
/// `deadline` (then `Err(on_timeout)`).
pub(crate) fn wait_fd(
    entry: &Entry,
    fd: RawFd,
    dir: Direction,
    seq: usize,
    deadline: Option<Instant>,
    on_timeout: c_int,
) -> Result<(), c_int> {
    if !on_greenlet() {
        return poll_thread(fd, dir, deadline, on_timeout);
    }
    match entry.reg.park(fd, dir, seq, deadline) {
        Ok(Ok(Ready::Retry)) => Ok(()),
        Ok(Ok(Ready::TimedOut)) => Err(on_timeout),
        Ok(Err(i)) => Err(interrupted(&i)),
        // The fd is in this poller under another registration already (the
        // program wraps it in a greenhub socket too): wait on a duplicate.
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
            let pfd = libc::pollfd {
                fd,
                events: events(dir),
                revents: 0,
            };
            match select_coop(
                &[pfd],
                deadline.map(|d| d.saturating_duration_since(Instant::now())),
            )? {
                0 => Err(on_timeout),
                _ => Ok(()),
            }
        }
        Err(e) => Err(e.raw_os_error().unwrap_or(libc::EIO)),
    }
}

fn events(dir: Direction) -> i16 {
    match dir {
        Direction::Read => libc::POLLIN | libc::POLLPRI,
        Direction::Write => libc::POLLOUT,
    }
}

/// Off a greenlet: block the thread in `poll(2)` (the hook passes it
/// through there) until `fd` is ready or `deadline`, as the kernel would
/// block the call (signals restart the wait).
fn poll_thread(
    fd: RawFd,
    dir: Direction,
    deadline: Option<Instant>,
    on_timeout: c_int,
) -> Result<(), c_int> {
    let mut pfd = [libc::pollfd {
        fd,
        events: events(dir),
        revents: 0,
    }];
    loop {
        let ms = match deadline.map(sys::ms_until) {
            None => -1,
            Some(Some(ms)) => ms,
            Some(None) => return Err(on_timeout),
        };
        match sys::poll_fds(&mut pfd, ms) {
            Ok(0) => {}
            Ok(_) => return Ok(()),
            Err(e) => return Err(e.raw_os_error().unwrap_or(libc::EIO)),
        }
    }
}

/// On a greenlet: parks until one of `pfds` is ready (their `events`) or
/// `timeout` passes (`None`: no limit), through [`crate::io::select`].
/// Returns how many are ready (0: timed out); `revents` is not filled (the
/// caller asks the kernel with a zero-timeout `poll`). A kill or an expired
/// `timeout` frame becomes `Err(errno)`.
pub(crate) fn select_coop(
    pfds: &[libc::pollfd],
    timeout: Option<Duration>,
) -> Result<usize, c_int> {
    let mut read = Vec::new();
    let mut write = Vec::new();
    for p in pfds.iter().filter(|p| p.fd >= 0) {
        if p.events & (libc::POLLIN | libc::POLLPRI) != 0 {
            read.push(p.fd);
        }
        if p.events & libc::POLLOUT != 0 {
            write.push(p.fd);
        }
    }
    if read.is_empty() && write.is_empty() {
        return match timeout {
            Some(t) => sleep_for(t).map(|()| 0),
            // Nothing can ever wake it: as the kernel, sleep until killed.
            None => loop {
                sleep_for(Duration::from_secs(3600))?;
            },
        };
    }
    let r = panic::catch_unwind(AssertUnwindSafe(|| {
        crate::io::select(&read, &write, timeout)
    }));
    match r {
        Ok(Ok(sel)) => Ok(sel.readable.len() + sel.writable.len()),
        Ok(Err(e)) => Err(e.raw_os_error().unwrap_or(libc::EIO)),
        Err(payload) => Err(payload_errno(&*payload)),
    }
}

/// The errno for an unwind caught at a hook's boundary: a kill or an
/// expired `timeout` frame (still pending in the greenlet, see the module
/// docs); anything else is a bug reported as `EIO`.
pub(crate) fn payload_errno(payload: &(dyn Any + Send)) -> c_int {
    if crate::greenlet::is_kill_payload(payload) {
        super::killed::kill_seen();
        libc::ECANCELED
    } else if payload.is::<TimeoutSignal>() {
        libc::ETIMEDOUT
    } else {
        libc::EIO
    }
}

/// On a greenlet: sleeps for `dur` by parking on the hub's timers. A kill or
/// an expired `timeout` frame ends it early with `Err(errno)`.
pub(crate) fn sleep_for(dur: Duration) -> Result<(), c_int> {
    sleep_until(Instant::now().checked_add(dur))
}

/// As [`sleep_for`], until `deadline` (`None`: forever).
pub(crate) fn sleep_until(deadline: Option<Instant>) -> Result<(), c_int> {
    loop {
        match wait::park_until(deadline, WaitOn::new(WaitKind::Sleep, 0)) {
            Wake::TimedOut => return Ok(()),
            Wake::Interrupted(i) => return Err(interrupted(&i)),
            Wake::Woken => {}
        }
    }
}
