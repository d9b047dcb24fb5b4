//! The state-tracking hooks: `close`, `dup`, `dup2`, `dup3`, `fcntl`,
//! `ioctl` and `setsockopt`. They never block; on a tracked fd they keep the
//! table (`fdtable.rs`) in step with the kernel and show the program the
//! `O_NONBLOCK` it asked for, not the real one. Untracked fds go straight to
//! libc.

use std::ffi::c_void;
use std::time::Duration;

use libc::{c_int, c_ulong, socklen_t};

use super::fdtable::{self, Entry};
use super::real;
use crate::hub::readiness::Direction;

/// # Safety
/// As `close(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    // Off the poller while the number still names the description (after
    // the close no DEL could reach the registration, which a dup may keep
    // alive), and closed: its waiters wake to EBADF and never register the
    // number again, whatever it names next.
    fdtable::remove(fd);
    super::pipes::forget(fd);
    // SAFETY: the caller's argument, as given.
    unsafe { real::close(fd) }
}

/// # Safety
/// As `dup(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dup(fd: c_int) -> c_int {
    // SAFETY: the caller's argument, as given.
    let new = unsafe { real::dup(fd) };
    track_dup(fd, new);
    new
}

/// # Safety
/// As `dup2(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dup2(fd: c_int, to: c_int) -> c_int {
    // SAFETY: the caller's arguments, as given.
    replace(fd, to, || unsafe { real::dup2(fd, to) })
}

/// # Safety
/// As `dup3(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dup3(fd: c_int, to: c_int, flags: c_int) -> c_int {
    // SAFETY: the caller's arguments, as given.
    replace(fd, to, || unsafe { real::dup3(fd, to, flags) })
}

/// `dup2`/`dup3`: `to` leaves the poller before the kernel closes it, as in
/// `close` (its events must not arrive under a token whose state is
/// released); a greenlet blocked on `to` gets `EBADF`, not the description
/// put there.
fn replace(fd: c_int, to: c_int, op: impl FnOnce() -> c_int) -> c_int {
    if fd == to {
        return op();
    }
    let old = fdtable::remove(to);
    super::pipes::forget(to);
    let new = op();
    if new < 0 {
        if let Some(old) = old {
            // Still open as before.
            fdtable::insert(to, old.desc.clone());
        }
    } else {
        track_dup(fd, new);
    }
    new
}

/// If `fd` is tracked, tracks its duplicate `new` with the same description.
fn track_dup(fd: c_int, new: c_int) {
    if new >= 0 {
        if let Some(e) = fdtable::get(fd) {
            fdtable::insert(new, e.desc.clone());
        }
    }
}

/// The program now handles readiness itself: leave the poller to it (a
/// greenhub socket made from this fd registers it there).
fn set_nonblocking(e: &Entry, fd: c_int, on: bool) {
    e.desc.set_nonblocking(on);
    if on {
        e.reg.deregister_shared(fd);
    }
}

/// Only the commands that touch what the hooks track are interpreted; the
/// optional argument is an int or a pointer, passed on as it came.
///
/// # Safety
/// As `fcntl(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    let Some(e) = fdtable::get(fd) else {
        // SAFETY: the caller's arguments, as given.
        return unsafe { real::fcntl(fd, cmd, arg) };
    };
    match cmd {
        libc::F_GETFL => {
            // SAFETY: F_GETFL takes no argument.
            let flags = unsafe { real::fcntl(fd, cmd, 0) };
            if flags < 0 || e.desc.nonblocking() {
                flags
            } else {
                flags & !libc::O_NONBLOCK
            }
        }
        libc::F_SETFL => {
            let flags = arg as c_int;
            // SAFETY: F_SETFL takes an int; the real flag stays set.
            let r = unsafe { real::fcntl(fd, cmd, (flags | libc::O_NONBLOCK) as c_ulong) };
            if r >= 0 {
                set_nonblocking(&e, fd, flags & libc::O_NONBLOCK != 0);
            }
            r
        }
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => {
            // SAFETY: the caller's arguments, as given.
            let new = unsafe { real::fcntl(fd, cmd, arg) };
            if new >= 0 {
                fdtable::insert(new, e.desc.clone());
            }
            new
        }
        // SAFETY: the caller's arguments, as given.
        _ => unsafe { real::fcntl(fd, cmd, arg) },
    }
}

/// `FIONBIO` on a tracked fd only records the program's wish (the real
/// description stays non-blocking); everything else goes to libc.
///
/// # Safety
/// As `ioctl(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ioctl(fd: c_int, request: c_ulong, arg: *mut c_void) -> c_int {
    match fdtable::get(fd) {
        Some(e) if request == libc::FIONBIO && !arg.is_null() => {
            // SAFETY: FIONBIO's argument points at an int (the caller's
            // contract); it is only read.
            let on = unsafe { *arg.cast::<c_int>() } != 0;
            set_nonblocking(&e, fd, on);
            0
        }
        // SAFETY: the caller's arguments, as given.
        _ => unsafe { real::ioctl(fd, request, arg) },
    }
}

/// Records `SO_RCVTIMEO`/`SO_SNDTIMEO` of tracked sockets (after the kernel
/// accepted them, so the errors and `getsockopt` stay the kernel's).
///
/// # Safety
/// As `setsockopt(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: socklen_t,
) -> c_int {
    // SAFETY: the caller's arguments, as given.
    let r = unsafe { real::setsockopt(fd, level, name, val, len) };
    let dir = match (level, name) {
        (libc::SOL_SOCKET, libc::SO_RCVTIMEO) => Direction::Read,
        (libc::SOL_SOCKET, libc::SO_SNDTIMEO) => Direction::Write,
        _ => return r,
    };
    if r != 0 || (len as usize) < size_of::<libc::timeval>() {
        return r;
    }
    if let Some(e) = fdtable::get(fd) {
        // SAFETY: the kernel just read a timeval of this size from `val`.
        let tv = unsafe { val.cast::<libc::timeval>().read_unaligned() };
        let t = Duration::from_secs(tv.tv_sec as u64) + Duration::from_micros(tv.tv_usec as u64);
        e.desc.set_timeout(dir, (!t.is_zero()).then_some(t));
    }
    r
}
