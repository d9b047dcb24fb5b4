//! Fds made elsewhere: sockets that the hooks did not create on a greenlet
//! (made by a pool's threads, before the runtime started, by a C library's
//! plain `socket` call) and pipes, FIFOs, socketpairs and anonymous-inode
//! fds (eventfd, timerfd, signalfd, inotify) whoever made them. A greenlet's
//! blocking call on one parks the greenlet until the fd is ready, while the
//! fd's open file description stays exactly as its maker set it: blocking,
//! for every plain thread (or child process) that shares it.
//!
//! - **Sockets**: the call runs as the same call with `MSG_DONTWAIT` (a
//!   per-call flag: `read` becomes `recv`, `readv` `recvmsg`, `write`
//!   `send`, `writev` `sendmsg`, which on a socket are the same calls); on
//!   `EAGAIN` the greenlet waits for readiness through its hub's poller
//!   ([`select_coop`], a private duplicate of the fd), up to the socket's
//!   `SO_RCVTIMEO`/`SO_SNDTIMEO`, read with `getsockopt` at the first wait,
//!   then fails with `EAGAIN` as the blocking call does. Another thread
//!   reading the same socket meanwhile only makes the greenlet wait again.
//!   A write may return a short count, as on a tracked socket (see the
//!   module docs of `patch`).
//! - **`accept`** on a listener made elsewhere waits for readiness first,
//!   then makes the real, blocking call.
//! - **`connect`** on a blocking socket made elsewhere runs on the blocking
//!   pool (no per-call flag makes a connect non-blocking): the greenlet
//!   parks meanwhile; a kill or a `timeout` frame ends its wait with
//!   `ECANCELED`/`ETIMEDOUT` while the connect completes on the pool thread.
//! - **Pipes and anonymous inodes** wait for readiness, then make the real
//!   blocking call (`pipes.rs`).
//!
//! Residual race: for `accept` and for pipes and anonymous inodes, another
//! reader or writer of the same description (a plain thread, another
//! process) can take the readiness between the greenlet's wait and its real
//! call; that call then blocks the hub, as it would have unpatched, until
//! the fd is ready again. Sockets' reads and writes have no such window.
//!
//! Left as they were: fds 0 to 2, descriptions the program made
//! non-blocking (it handles readiness itself: mio, tokio), regular files,
//! character devices, calls off a greenlet and zero timeouts.

use std::mem::MaybeUninit;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use libc::{c_int, sockaddr, socklen_t};

use super::emul::{self, errno, select_coop, set_errno};
use super::{fdtable, real};
use crate::hub::readiness::Direction;

/// What a greenlet's blocking call on an untracked fd is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A blocking socket: per-call `MSG_DONTWAIT`.
    Socket,
    /// A blocking pipe, FIFO or anonymous inode: readiness, then the call.
    Pollable,
}

/// What `fd` is, if a blocking call on it by the caller is to cooperate
/// here: patching enabled, on a greenlet, above stderr, not tracked, a
/// blocking description (`fcntl`), and a socket, pipe or anonymous inode
/// (`fstat`). `None`: the call goes on as before.
pub(crate) fn kind(fd: RawFd) -> Option<Kind> {
    if fd <= 2 || !super::enabled() || !emul::on_greenlet() || fdtable::get(fd).is_some() {
        return None;
    }
    // SAFETY: F_GETFL takes no argument.
    let flags = unsafe { real::fcntl(fd, libc::F_GETFL, 0) };
    if flags < 0 || flags & libc::O_NONBLOCK != 0 {
        return None;
    }
    let mut st = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat fills the stat buffer it is given.
    if unsafe { libc::fstat(fd, st.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: fstat succeeded, so it filled the buffer.
    match unsafe { st.assume_init() }.st_mode & libc::S_IFMT {
        libc::S_IFSOCK => Some(Kind::Socket),
        // Anonymous inodes (eventfd, timerfd, ...) have no type bits.
        libc::S_IFIFO | 0 => Some(Kind::Pollable),
        _ => None,
    }
}

/// Whether `fd` is a blocking socket made elsewhere (see [`kind`]).
#[inline]
pub(crate) fn is_socket(fd: RawFd) -> bool {
    kind(fd) == Some(Kind::Socket)
}

/// The socket's `SO_RCVTIMEO` (read) or `SO_SNDTIMEO` (write), if set.
fn sock_timeout(fd: RawFd, dir: Direction) -> Option<Duration> {
    let name = match dir {
        Direction::Read => libc::SO_RCVTIMEO,
        Direction::Write => libc::SO_SNDTIMEO,
    };
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut len = size_of::<libc::timeval>() as socklen_t;
    // SAFETY: the option is a timeval, of the size `len` says.
    let r = unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, name, (&raw mut tv).cast(), &mut len) };
    if r != 0 {
        return None;
    }
    let t = Duration::from_secs(tv.tv_sec.max(0) as u64)
        + Duration::from_micros(tv.tv_usec.max(0) as u64);
    (!t.is_zero()).then_some(t)
}

/// Parks until `fd` is ready in `dir` or `deadline`: `Ok(true)` when ready,
/// `Ok(false)` when the deadline passed, `Err(errno)` for a kill or an
/// expired `timeout` frame.
fn wait(fd: RawFd, dir: Direction, deadline: Option<Instant>) -> Result<bool, c_int> {
    let events = match dir {
        Direction::Read => libc::POLLIN | libc::POLLPRI,
        Direction::Write => libc::POLLOUT,
    };
    let timeout = match deadline {
        None => None,
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            Some(left)
        }
    };
    let pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    Ok(select_coop(&[pfd], timeout)? > 0)
}

/// Runs `op`, a real call on the socket `fd` with `MSG_DONTWAIT` added, as
/// the blocking call would run (see the module docs).
pub(crate) fn socket_io(fd: RawFd, dir: Direction, mut op: impl FnMut() -> isize) -> isize {
    let mut deadline = None;
    loop {
        let r = op();
        if r >= 0 || errno() != libc::EAGAIN {
            return r;
        }
        let deadline = *deadline.get_or_insert_with(|| {
            sock_timeout(fd, dir).and_then(|t| Instant::now().checked_add(t))
        });
        match wait(fd, dir, deadline) {
            Ok(true) => {}
            Ok(false) => {
                set_errno(libc::EAGAIN);
                return -1;
            }
            Err(e) => {
                set_errno(e);
                return -1;
            }
        }
    }
}

/// Before a blocking `accept` on a listener made elsewhere: waits until a
/// connection is pending (or `SO_RCVTIMEO`: `Err(EAGAIN)`, as `accept`
/// fails then).
pub(crate) fn before_accept(fd: RawFd) -> Result<(), c_int> {
    let deadline = sock_timeout(fd, Direction::Read).and_then(|t| Instant::now().checked_add(t));
    match wait(fd, Direction::Read, deadline)? {
        true => Ok(()),
        false => Err(libc::EAGAIN),
    }
}

/// A blocking `connect` of a socket made elsewhere, on the blocking pool.
///
/// # Safety
/// As `connect(2)`.
pub(crate) unsafe fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    // SAFETY: the caller's arguments, as given.
    let here = || unsafe { real::connect(fd, addr, len) };
    if addr.is_null() || len as usize > size_of::<libc::sockaddr_storage>() {
        return here();
    }
    // SAFETY: an all-zero sockaddr_storage is a valid value.
    let mut copy: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    // SAFETY: the caller's address is `len` readable bytes, and `copy` has
    // room for them (checked above); the two do not overlap. Copied so that
    // the pool thread never reads the caller's memory, which a killed
    // greenlet may free before the connect ends.
    unsafe {
        std::ptr::copy_nonoverlapping(
            addr.cast::<u8>(),
            (&raw mut copy).cast::<u8>(),
            len as usize,
        )
    };
    let job = move || {
        // SAFETY: `copy` holds the caller's address of `len` bytes; `fd` is
        // the caller's socket (if the program closes it meanwhile, the
        // kernel answers EBADF, or connects whatever the number names, as a
        // plain thread racing its own close would).
        let r = unsafe { real::connect(fd, (&raw const copy).cast(), len) };
        (r, errno())
    };
    match super::dns::offload(job) {
        super::dns::Offloaded::Done((r, e)) => {
            if r < 0 {
                set_errno(e);
            }
            r
        }
        super::dns::Offloaded::Interrupted(e) => {
            set_errno(e);
            -1
        }
        super::dns::Offloaded::NoPool => here(),
    }
}
