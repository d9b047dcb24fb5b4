//! Pipes, FIFOs and anonymous inodes (eventfd, timerfd, ...), whoever made
//! them (`foreign.rs` decides which calls come here): a greenlet's blocking
//! `read`, `readv`, `write` or `writev` on one parks the greenlet until the
//! fd is ready, then makes the real call, which then does not block. This is what `std::process` needs: the pipes
//! of `Command::output` and of `Stdio::piped()` children are made with
//! `pipe2(O_CLOEXEC)`, and std reads the last one with a blocking
//! `read_to_end`.
//!
//! Unlike a tracked socket, a pipe's open file description is left exactly
//! as the program made it (a child that inherits the other end must not
//! find its stdout non-blocking): the wait is a readiness wait
//! ([`select_coop`], through a private duplicate registered with the hub's
//! poller), and the real call runs on the blocking description only once
//! the pipe is ready, so it returns at once:
//!
//! - a read after `POLLIN` (data, or the writers gone) returns what is
//!   there;
//! - a write after `POLLOUT` (at least one free page slot) of at most
//!   `PIPE_BUF` bytes fits without waiting, so longer writes go out
//!   `PIPE_BUF` bytes at a time: a short count, as after a signal, which
//!   std's `write_all` and `io::copy` continue. Writes of at most `PIPE_BUF`
//!   bytes stay atomic.
//!
//! Another reader or writer of the same pipe can take the readiness between
//! the wait and the call; the call then blocks the hub as it would have
//! unpatched, until the pipe is ready again.
//!
//! Left as they were: fds 0 to 2 (stdout's reentrant lock would let a
//! second greenlet of the hub into a write that parks), non-blocking
//! descriptions, zero-length calls and calls off a greenlet (`foreign.rs`).
//! `poll`, `ppoll`, `select` and `pselect` over any pollable fd park on
//! their own (`timing.rs`). The hooked `pipe` and `pipe2` still mark the fds they
//! make (`forget` clears a mark), which nothing requires any more.

use std::ffi::c_void;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use libc::{c_int, iovec, size_t, ssize_t};

use super::emul::{select_coop, set_errno};
use super::real;

/// One bit per fd below `PIPE_FDS`: set while the fd is (probably) a pipe
/// end made by a hooked `pipe`/`pipe2`. A stale bit (the fd closed behind
/// the hooks' back and reused for something else) is cleared by the next
/// call on the fd that checks it ([`cooperative`]); if the fd was reused
/// for another pipe, that pipe is simply treated as made by the hooks.
const PIPE_FDS: usize = 1 << 20;
static PIPES: [AtomicU64; PIPE_FDS / 64] = [const { AtomicU64::new(0) }; PIPE_FDS / 64];

fn mark(fd: RawFd, on: bool) {
    if let Some(word) = usize::try_from(fd).ok().and_then(|f| PIPES.get(f / 64)) {
        let bit = 1u64 << (fd as usize % 64);
        if on {
            word.fetch_or(bit, Relaxed);
        } else {
            word.fetch_and(!bit, Relaxed);
        }
    }
}

fn marked(fd: RawFd) -> bool {
    usize::try_from(fd)
        .ok()
        .and_then(|f| PIPES.get(f / 64))
        .is_some_and(|w| w.load(Relaxed) & (1u64 << (fd as usize % 64)) != 0)
}

/// The hooked `close`, `dup2` and `dup3` call this for the fd they close.
pub(crate) fn forget(fd: RawFd) {
    if marked(fd) {
        mark(fd, false);
    }
}

/// Waits until `fd` is ready for `events` (without consuming anything), then
/// runs `op`. A kill or an expired `timeout` frame ends the wait with -1 and
/// `ECANCELED` or `ETIMEDOUT`, as for a tracked socket.
fn when_ready(fd: RawFd, events: i16, op: impl FnOnce() -> isize) -> isize {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd; a zero timeout never blocks.
        let r = unsafe { real::poll(&mut pfd, 1, 0) };
        // Ready, or poll itself failed: the real call answers (with the
        // same error, or without blocking).
        if r != 0 {
            return op();
        }
        if let Err(e) = select_coop(&[pfd], None) {
            set_errno(e);
            return -1;
        }
    }
}

/// `read` on a pipe that [`cooperative`] accepted.
///
/// # Safety
/// As `read(2)`.
pub(crate) unsafe fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    // SAFETY: (both) the caller's arguments, as given.
    let op = || unsafe { real::read(fd, buf, n) };
    if n == 0 {
        return op();
    }
    when_ready(fd, libc::POLLIN, op)
}

/// `readv` on a pipe that [`cooperative`] accepted.
///
/// # Safety
/// As `readv(2)`.
pub(crate) unsafe fn readv(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
    // SAFETY: the caller's arguments, as given.
    when_ready(fd, libc::POLLIN, || unsafe { real::readv(fd, iov, n) })
}

/// `write` on a pipe that [`cooperative`] accepted.
///
/// # Safety
/// As `write(2)`.
pub(crate) unsafe fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
    // SAFETY: (both) the caller's arguments, with a count no larger.
    let op = || unsafe { real::write(fd, buf, n.min(libc::PIPE_BUF)) };
    if n == 0 {
        return op();
    }
    when_ready(fd, libc::POLLOUT, op)
}

/// `writev` on a pipe that [`cooperative`] accepted: the vector is cut to
/// `PIPE_BUF` bytes in all (see the module docs).
///
/// # Safety
/// As `writev(2)`.
pub(crate) unsafe fn writev(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
    // SAFETY: (both) the caller's arguments, as given.
    let passthrough = || unsafe { real::writev(fd, iov, n) };
    if iov.is_null() || !(1..=libc::UIO_MAXIOV).contains(&n) {
        return passthrough();
    }
    // SAFETY: the caller passes `n` valid iovecs at `iov`; copied, so only
    // the kernel reads the caller's memory.
    let mut cut = unsafe { std::slice::from_raw_parts(iov, n as usize) }.to_vec();
    let mut room = libc::PIPE_BUF;
    for v in &mut cut {
        v.iov_len = v.iov_len.min(room);
        room -= v.iov_len;
    }
    if room == libc::PIPE_BUF {
        return passthrough(); // nothing to write
    }
    when_ready(fd, libc::POLLOUT, || {
        // SAFETY: the caller's buffers, with lengths no larger.
        unsafe { real::writev(fd, cut.as_ptr(), n) }
    })
}

/// # Safety
/// As `pipe(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pipe(fds: *mut c_int) -> c_int {
    // SAFETY: as `pipe2` with no flags is `pipe`.
    unsafe { pipe2(fds, 0) }
}

/// # Safety
/// As `pipe2(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pipe2(fds: *mut c_int, flags: c_int) -> c_int {
    // SAFETY: the caller's arguments, as given.
    let r = unsafe { real::pipe2(fds, flags) };
    if r == 0 {
        // SAFETY: on success the kernel wrote two fds at `fds`.
        let [a, b] = unsafe { fds.cast::<[c_int; 2]>().read() };
        mark(a, true);
        mark(b, true);
    }
    r
}
