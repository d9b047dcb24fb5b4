//! The OS calls under the cooperative IO layer that need no hub: `poll(2)`
//! on a plain thread (how every greenhub IO call blocks off a greenlet) and
//! `O_NONBLOCK`.

use std::io;
use std::os::fd::RawFd;
use std::time::Instant;

use crate::greenlet::wait::{self, Wake};

/// One `poll(2)` over `pfds` with a timeout in milliseconds (-1: none),
/// retried on `EINTR`. Returns how many fds are ready; `EBADF` if one is not
/// open.
pub(crate) fn poll_fds(pfds: &mut [libc::pollfd], ms: i32) -> io::Result<usize> {
    for p in pfds.iter_mut() {
        p.revents = 0;
    }
    loop {
        // SAFETY: `pfds` is a valid, exclusively borrowed array of pollfds.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
        if n >= 0 {
            if pfds.iter().any(|p| p.revents & libc::POLLNVAL != 0) {
                return Err(io::Error::from_raw_os_error(libc::EBADF));
            }
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Off a greenlet: blocks the thread until one of `pfds` is ready
/// (`Ok(false)`) or `deadline` passes (`Ok(true)`). The thread's `timeout`
/// frame bounds the wait too; when it expires, this unwinds to that frame.
pub(crate) fn block_thread(
    pfds: &mut [libc::pollfd],
    deadline: Option<Instant>,
) -> io::Result<bool> {
    loop {
        if let Wake::Interrupted(i) = wait::check_thread_interrupt() {
            i.raise();
        }
        let ms = match wait::thread_deadline(deadline) {
            None => -1,
            Some(at) => match ms_until(at) {
                Some(ms) => ms,
                None if deadline.is_some_and(|d| d <= Instant::now()) => return Ok(true),
                // The frame's deadline passed after the check above: poll
                // once more without waiting, and the check raises it.
                None => 0,
            },
        };
        if poll_fds(pfds, ms)? > 0 {
            return Ok(false);
        }
    }
}

/// The time left until `at` as a `poll(2)` timeout in milliseconds, rounded
/// up so that a sub-millisecond rest does not spin; `None` once it passed.
pub(crate) fn ms_until(at: Instant) -> Option<i32> {
    let left = at.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return None;
    }
    Some(left.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32)
}

/// Sets or clears `O_NONBLOCK` on `fd`'s file description.
pub(crate) fn set_nonblocking(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: F_GETFL takes no pointer; the result is checked.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let want = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: F_SETFL takes an int; the result is checked.
    if want != flags && unsafe { libc::fcntl(fd, libc::F_SETFL, want) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// What an fd names, to tell whether a number still names the open file
/// description it named before (see `Registration::new_shared`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileId {
    /// A socket's `SO_COOKIE`: unique to the socket (so to its one open
    /// file description) for the life of the system, never reused.
    Socket(u64),
    /// Anything else (or a kernel without `SO_COOKIE`, before Linux 4.12):
    /// the inode, `st_dev` and `st_ino`. A socket's inode number comes from
    /// a 32-bit counter that could, after 2^32 allocations, repeat one of a
    /// socket still open: only there is the cookie needed.
    Inode(u64, u64),
}

impl FileId {
    /// What `fd` names now; `EBADF` if it is not open.
    pub(crate) fn of(fd: RawFd) -> io::Result<FileId> {
        let mut cookie: u64 = 0;
        let mut len = size_of::<u64>() as libc::socklen_t;
        // SAFETY: SO_COOKIE writes at most `len` bytes into `cookie`.
        let r = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_COOKIE,
                (&raw mut cookie).cast(),
                &mut len,
            )
        };
        if r == 0 && len as usize == size_of::<u64>() {
            return Ok(FileId::Socket(cookie));
        }
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: `fstat` fills the `stat` it is given; it is read only on
        // success.
        if unsafe { libc::fstat(fd, st.as_mut_ptr()) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: initialized by the successful `fstat`.
        let st = unsafe { st.assume_init() };
        Ok(FileId::Inode(st.st_dev, st.st_ino))
    }
}
