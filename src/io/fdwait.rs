//! Waiting for readiness of raw file descriptors that greenhub does not own
//! (a pipe from a C library, a device, a socket from another crate).
//!
//! On a greenlet each fd is watched through a private duplicate
//! (`F_DUPFD_CLOEXEC`) registered with the caller's hub for the duration of
//! the wait: the duplicate never collides with a registration of the same fd
//! elsewhere (one of greenhub's sockets, another waiter), and closing it
//! after the wait removes nothing that belongs to anyone else. Before
//! registering anything, one `poll(2)` with a zero timeout answers waits on
//! fds that are ready already. Off a greenlet the waits are plain `poll(2)`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::registration::{self, token};
use super::sys::{block_thread, poll_fds};
use crate::greenlet::runinfo::{WaitKind, WaitOn};
use crate::greenlet::wait::{self, Wake};
use crate::greenlet::waiter::Waiter;
use crate::hub::context;
use crate::hub::readiness::{Direction, ScheduledIo};

/// Parks the calling greenlet until `fd` is readable (or has an error or a
/// hang-up pending), or `timeout` passes. gevent's `wait_read`.
///
/// Off a greenlet it blocks the thread in `poll(2)`.
///
/// # Errors
///
/// `ErrorKind::TimedOut` when `timeout` passes first; `EBADF` for an fd that
/// is not open.
///
/// ```
/// use std::io::Write;
/// use std::os::fd::AsRawFd;
/// use std::os::unix::net::UnixStream;
/// use std::time::Duration;
///
/// greenhub::run(|| {
///     let (mut a, b) = UnixStream::pair().unwrap();
///     let fd = b.as_raw_fd();
///     let err = greenhub::io::wait_readable(fd, Some(Duration::from_millis(10))).unwrap_err();
///     assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
///     let writer = greenhub::spawn(move || a.write_all(b"x").unwrap());
///     greenhub::io::wait_readable(fd, None).unwrap(); // parks until the write
///     writer.join().unwrap();
/// });
/// ```
pub fn wait_readable(fd: RawFd, timeout: Option<Duration>) -> io::Result<()> {
    wait_one(fd, Direction::Read, timeout)
}

/// Parks the calling greenlet until `fd` is writable (or has an error or a
/// hang-up pending), or `timeout` passes. gevent's `wait_write`.
///
/// # Errors
///
/// As [`wait_readable`].
///
/// ```
/// use std::os::fd::AsRawFd;
/// use std::os::unix::net::UnixStream;
///
/// greenhub::run(|| {
///     let (a, _b) = UnixStream::pair().unwrap();
///     greenhub::io::wait_writable(a.as_raw_fd(), None).unwrap(); // an empty buffer
/// });
/// ```
pub fn wait_writable(fd: RawFd, timeout: Option<Duration>) -> io::Result<()> {
    wait_one(fd, Direction::Write, timeout)
}

fn wait_one(fd: RawFd, dir: Direction, timeout: Option<Duration>) -> io::Result<()> {
    let (read, write): (&[RawFd], &[RawFd]) = match dir {
        Direction::Read => (&[fd], &[]),
        Direction::Write => (&[], &[fd]),
    };
    let ready = select(read, write, timeout)?;
    if ready.is_empty() {
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "timed out waiting for the fd to become ready",
        ))
    } else {
        Ok(())
    }
}

/// The fds that [`select`] found ready.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Selected {
    /// Ready for reading (or with an error or hang-up pending), in the order
    /// given.
    pub readable: Vec<RawFd>,
    /// Ready for writing (or with an error or hang-up pending), in the order
    /// given.
    pub writable: Vec<RawFd>,
}

impl Selected {
    /// Whether no fd was ready (the wait timed out).
    ///
    /// ```
    /// assert!(greenhub::io::Selected::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.readable.is_empty() && self.writable.is_empty()
    }
}

/// Waits until at least one of `read` is readable or one of `write` is
/// writable, or `timeout` passes (`None`: no limit), parking only the calling
/// greenlet; returns the ready ones, or an empty [`Selected`] on timeout
/// (gevent's `select.select`, without the exceptional list). With no fds at
/// all it just sleeps for `timeout`.
///
/// # Errors
///
/// `EBADF` if an fd is not open; `InvalidInput` if there are no fds and no
/// timeout (it would wait forever).
///
/// ```
/// use std::io::Write;
/// use std::os::fd::AsRawFd;
/// use std::os::unix::net::UnixStream;
/// use std::time::Duration;
///
/// greenhub::run(|| {
///     let (mut a, b) = UnixStream::pair().unwrap();
///     let (_c, d) = UnixStream::pair().unwrap();
///     a.write_all(b"ping").unwrap();
///     let ready = greenhub::io::select(&[b.as_raw_fd(), d.as_raw_fd()], &[], Some(Duration::from_secs(1)))
///         .unwrap();
///     assert_eq!(ready.readable, [b.as_raw_fd()]);
/// });
/// ```
pub fn select(read: &[RawFd], write: &[RawFd], timeout: Option<Duration>) -> io::Result<Selected> {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    if read.is_empty() && write.is_empty() {
        if timeout.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "select: no fds and no timeout would wait forever",
            ));
        }
        crate::sleep(timeout.unwrap_or_default());
        return Ok(Selected::default());
    }
    let mut pfds = pollfds(read, write);
    loop {
        // One non-blocking look first: the answer when something is ready.
        if poll_fds(&mut pfds, 0)? > 0 {
            return collect(&pfds, read.len());
        }
        let timed_out = if context::current_raw().is_some() {
            park_on(&pfds, deadline)?
        } else {
            block_thread(&mut pfds, deadline)?
        };
        if timed_out {
            let n = poll_fds(&mut pfds, 0)?;
            return if n > 0 {
                collect(&pfds, read.len())
            } else {
                Ok(Selected::default())
            };
        }
    }
}

fn pollfds(read: &[RawFd], write: &[RawFd]) -> Vec<libc::pollfd> {
    let r = read.iter().map(|&fd| (fd, libc::POLLIN | libc::POLLPRI));
    let w = write.iter().map(|&fd| (fd, libc::POLLOUT));
    r.chain(w)
        .map(|(fd, events)| libc::pollfd {
            fd,
            events,
            revents: 0,
        })
        .collect()
}

fn collect(pfds: &[libc::pollfd], nread: usize) -> io::Result<Selected> {
    let mut out = Selected::default();
    for (i, p) in pfds.iter().enumerate() {
        if p.revents == 0 {
            continue;
        }
        if i < nread {
            out.readable.push(p.fd);
        } else {
            out.writable.push(p.fd);
        }
    }
    Ok(out)
}

/// One watched duplicate fd; deregistered and closed on drop.
struct Watch {
    dup: OwnedFd,
    io: Arc<ScheduledIo>,
}

/// On a greenlet: watch every fd through a registered duplicate, park until
/// an event, the deadline or an interrupt, then unwatch. Returns whether the
/// deadline passed.
fn park_on(pfds: &[libc::pollfd], deadline: Option<Instant>) -> io::Result<bool> {
    let hub = context::hub().expect("greenhub: a greenlet runs on a hub");
    let remote = hub.remote.clone();
    let mut watches: Vec<Watch> = Vec::with_capacity(pfds.len());
    let unwatch = |watches: Vec<Watch>| {
        for w in watches {
            let _ = remote.deregister(w.dup.as_raw_fd());
            registration::release(&remote, w.io);
            drop(w.dup);
        }
    };
    for p in pfds {
        let dir = if p.events & libc::POLLOUT != 0 {
            Direction::Write
        } else {
            Direction::Read
        };
        // SAFETY: F_DUPFD_CLOEXEC takes no pointer; the result is checked.
        let dup = unsafe { libc::fcntl(p.fd, libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            let e = io::Error::last_os_error();
            unwatch(watches);
            return Err(e);
        }
        // SAFETY: `dup` is a new fd that nothing else owns.
        let dup = unsafe { OwnedFd::from_raw_fd(dup) };
        let io = Arc::new(ScheduledIo::default());
        io.add_waiter(dir, 0, Waiter::current());
        if let Err(e) = remote.register(dup.as_raw_fd(), token(&io), false) {
            unwatch(watches);
            return Err(e);
        }
        watches.push(Watch { dup, io });
    }
    let first = pfds.first().map_or(0, |p| p.fd as u64);
    let woke = wait::park_until(deadline, WaitOn::new(WaitKind::FdWait, first));
    unwatch(watches);
    match woke {
        Wake::Woken => Ok(false),
        Wake::TimedOut => Ok(true),
        Wake::Interrupted(i) => i.raise(),
    }
}

#[cfg(feature = "patch")]
/// The epoll events that make `poll(2)` report one of `events` (a pollfd's
/// request): `EPOLLERR` and `EPOLLHUP` are always reported, so a request for
/// nothing else maps to 0.
fn epoll_events(events: i16) -> u32 {
    let mut ev = 0;
    for (poll, epoll) in [
        (libc::POLLIN | libc::POLLRDNORM, libc::EPOLLIN),
        (libc::POLLRDBAND, libc::EPOLLRDBAND),
        (libc::POLLPRI, libc::EPOLLPRI),
        (libc::POLLOUT | libc::POLLWRNORM, libc::EPOLLOUT),
        (libc::POLLWRBAND, libc::EPOLLWRBAND),
        (libc::POLLRDHUP, libc::EPOLLRDHUP),
    ] {
        if events & poll != 0 {
            ev |= epoll as u32;
        }
    }
    ev
}

#[cfg(feature = "patch")]
/// For the `patch` hooks of `poll`, `ppoll`, `select` and `pselect`: parks
/// the calling greenlet until one of `pfds` (a negative fd is skipped, as
/// `poll(2)` ignores it) may have become ready for its `events` (or has an
/// error or hang-up), `deadline` passes, or the greenlet is interrupted.
/// Returns the [`Wake`] without raising an interrupt; the caller asks the
/// kernel what is ready with a zero-timeout call, and waits again when
/// nothing is (a reader of the same fd elsewhere may have taken it).
///
/// Each fd is watched, as in [`select`], through a private duplicate
/// registered with the caller's hub, but for exactly the epoll events that
/// make `poll` report its `events`, so that an event for anything else
/// (readability of an fd asked only for `POLLPRI`) never wakes the wait.
/// Fds that epoll refuses (`EPERM`: regular files, directories, some
/// devices) always report the same fixed readiness to `poll`, so if they
/// were not ready at the caller's zero-timeout look they never will be:
/// they are skipped. An fd closed since that look ends the wait at once
/// (the caller's next look reports it). Any other failure (`EMFILE` for the
/// duplicate, `ENOSPC`/`ENOMEM` from epoll) is returned, having watched
/// nothing.
pub(crate) fn park_pollfds(pfds: &[libc::pollfd], deadline: Option<Instant>) -> io::Result<Wake> {
    let hub = context::hub().expect("greenhub: a greenlet runs on a hub");
    let remote = hub.remote.clone();
    let key = Waiter::current_key();
    let mut watches: Vec<Watch> = Vec::with_capacity(pfds.len());
    let unwatch = |watches: Vec<Watch>| {
        for w in watches {
            let _ = remote.deregister(w.dup.as_raw_fd());
            w.io.remove_waiter(Direction::Read, key);
            w.io.remove_waiter(Direction::Write, key);
            registration::release(&remote, w.io);
            drop(w.dup);
        }
    };
    for p in pfds.iter().filter(|p| p.fd >= 0) {
        // SAFETY: F_DUPFD_CLOEXEC takes no pointer; the result is checked.
        let dup = unsafe { libc::fcntl(p.fd, libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            let e = io::Error::last_os_error();
            unwatch(watches);
            return match e.raw_os_error() {
                Some(libc::EBADF) => Ok(Wake::Woken),
                _ => Err(e),
            };
        }
        // SAFETY: `dup` is a new fd that nothing else owns.
        let dup = unsafe { OwnedFd::from_raw_fd(dup) };
        let io = Arc::new(ScheduledIo::default());
        // Any event of this registration is one the caller asked for: wake
        // on either direction's dispatch.
        io.add_waiter(Direction::Read, 0, Waiter::current());
        io.add_waiter(Direction::Write, 0, Waiter::current());
        match remote.register_events(dup.as_raw_fd(), token(&io), epoll_events(p.events)) {
            Ok(()) => watches.push(Watch { dup, io }),
            // Never registered: nothing can name its token.
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
            Err(e) => {
                unwatch(watches);
                return Err(e);
            }
        }
    }
    let first = pfds.first().map_or(0, |p| p.fd as u64);
    let woke = wait::park_until(deadline, WaitOn::new(WaitKind::FdWait, first));
    unwatch(watches);
    Ok(woke)
}
