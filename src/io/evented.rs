//! [`Evented`]: an owned non-blocking fd (a socket, a pipe) plus its lazy
//! poller registration and its read and write timeouts. Every cooperative
//! stream type in the crate is one of these around a std type.

use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use super::registration::{Ready, Registration};
use crate::hub::readiness::Direction;

/// See the module docs. Drop takes the fd off its poller, then closes it.
pub(crate) struct Evented<T: AsRawFd> {
    reg: Registration,
    inner: ManuallyDrop<T>,
    timeouts: Timeouts,
}

impl<T: AsRawFd> Evented<T> {
    /// Wraps `inner`, which the caller has put in non-blocking mode.
    pub(crate) fn new(inner: T) -> Evented<T> {
        Evented {
            reg: Registration::new(),
            inner: ManuallyDrop::new(inner),
            timeouts: Timeouts::default(),
        }
    }

    #[inline]
    pub(crate) fn get_ref(&self) -> &T {
        &self.inner
    }

    #[inline]
    pub(crate) fn fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }

    /// Runs a read-side syscall until it does not block, up to the read
    /// timeout (then `WouldBlock`, like a std socket with `SO_RCVTIMEO`).
    #[inline]
    pub(crate) fn read_with<R>(&self, op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        let deadline = self.timeouts.read_deadline();
        self.with(Direction::Read, deadline, would_block, op)
    }

    /// Runs a write-side syscall until it does not block, up to the write
    /// timeout.
    #[inline]
    pub(crate) fn write_with<R>(&self, op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        let deadline = self.timeouts.write_deadline();
        self.with(Direction::Write, deadline, would_block, op)
    }

    /// Runs `op` until it does not block, waiting for `dir` readiness up to
    /// `deadline` (then `Err(on_timeout())`).
    #[inline]
    pub(crate) fn with<R>(
        &self,
        dir: Direction,
        deadline: Option<Instant>,
        on_timeout: fn() -> io::Error,
        mut op: impl FnMut(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        let inner = &*self.inner;
        if self.timeouts.nonblocking.load(Relaxed) {
            return op(inner);
        }
        self.reg
            .io(self.fd(), dir, deadline, on_timeout, || op(inner))
    }

    /// Waits once for `dir` readiness (or `deadline`), without a syscall
    /// first: for a non-blocking `connect` in progress.
    pub(crate) fn wait(
        &self,
        dir: Direction,
        seq: usize,
        deadline: Option<Instant>,
    ) -> io::Result<Ready> {
        self.reg.wait(self.fd(), dir, seq, deadline)
    }

    /// The event counter of `dir` (see `scheduled.rs`).
    pub(crate) fn seq(&self, dir: Direction) -> usize {
        self.reg.seq(dir)
    }

    /// Wakes the greenlets waiting to read, to retry (see
    /// `Registration::wake`).
    pub(crate) fn wake_readers(&self) {
        self.reg.wake(Direction::Read);
    }

    pub(crate) fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// Takes the fd off its poller and gives it back.
    pub(crate) fn into_inner(mut self) -> T {
        let fd = self.fd();
        self.reg.deregister(fd);
        // SAFETY: `self` is forgotten right after, so `inner` is taken out
        // exactly once and `Drop` does not run; the registration and the
        // timeouts are dropped by hand.
        unsafe {
            let inner = ManuallyDrop::take(&mut self.inner);
            std::ptr::drop_in_place(&mut self.reg);
            std::mem::forget(self);
            inner
        }
    }
}

impl<T: AsRawFd> Drop for Evented<T> {
    fn drop(&mut self) {
        let fd = self.fd();
        self.reg.deregister(fd);
        // SAFETY: dropped once, here; `inner` is not used after.
        unsafe { ManuallyDrop::drop(&mut self.inner) };
    }
}

impl<T: AsRawFd + std::fmt::Debug> std::fmt::Debug for Evented<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

/// The error a read or write timeout gives, as a std socket gives it
/// (`EAGAIN`, kind `WouldBlock`).
pub(crate) fn would_block() -> io::Error {
    io::Error::from_raw_os_error(libc::EAGAIN)
}

/// Read and write timeouts (`set_read_timeout`), in nanoseconds, 0 = none,
/// and the user's `set_nonblocking`.
#[derive(Default, Debug)]
pub(crate) struct Timeouts {
    read: AtomicU64,
    write: AtomicU64,
    /// `set_nonblocking(true)`: calls return `WouldBlock` instead of waiting.
    nonblocking: AtomicBool,
}

impl Timeouts {
    /// Takes over another handle's settings (for `try_clone`).
    pub(crate) fn copy_from(&self, other: &Timeouts) {
        self.read.store(other.read.load(Relaxed), Relaxed);
        self.write.store(other.write.load(Relaxed), Relaxed);
        self.nonblocking
            .store(other.nonblocking.load(Relaxed), Relaxed);
    }

    pub(crate) fn set_nonblocking(&self, on: bool) {
        self.nonblocking.store(on, Relaxed);
    }

    /// std's rule: `Some(Duration::ZERO)` is refused.
    pub(crate) fn set_read(&self, dur: Option<Duration>) -> io::Result<()> {
        self.read.store(encode(dur)?, Relaxed);
        Ok(())
    }

    pub(crate) fn set_write(&self, dur: Option<Duration>) -> io::Result<()> {
        self.write.store(encode(dur)?, Relaxed);
        Ok(())
    }

    pub(crate) fn read(&self) -> Option<Duration> {
        decode(self.read.load(Relaxed))
    }

    pub(crate) fn write(&self) -> Option<Duration> {
        decode(self.write.load(Relaxed))
    }

    #[inline]
    fn read_deadline(&self) -> Option<Instant> {
        deadline(self.read.load(Relaxed))
    }

    #[inline]
    fn write_deadline(&self) -> Option<Instant> {
        deadline(self.write.load(Relaxed))
    }
}

fn encode(dur: Option<Duration>) -> io::Result<u64> {
    match dur {
        None => Ok(0),
        Some(d) if d.is_zero() => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot set a 0 duration timeout",
        )),
        Some(d) => Ok(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
    }
}

fn decode(nanos: u64) -> Option<Duration> {
    (nanos != 0).then(|| Duration::from_nanos(nanos))
}

#[inline]
fn deadline(nanos: u64) -> Option<Instant> {
    if nanos == 0 {
        return None;
    }
    Instant::now().checked_add(Duration::from_nanos(nanos))
}
