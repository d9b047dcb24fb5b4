//! A file descriptor's registration with a hub's poller, made lazily by the
//! first greenlet that has to wait on it, and the wait itself.
//!
//! [`Registration::io`] is the loop every cooperative call runs: load the
//! event counter, try the non-blocking syscall, and on `WouldBlock` wait for
//! the next readiness edge (protocol in `scheduled.rs`), up to a deadline.
//!
//! - On a greenlet the wait parks the greenlet. The fd is registered with the
//!   poller of the hub the greenlet runs on the first time it waits (a started
//!   greenlet never changes hub, so its sockets' events arrive where it runs);
//!   other greenlets, on any hub, may wait on it too: the registered hub wakes
//!   them through their own hubs.
//! - Off a greenlet the wait is a plain `poll(2)` on the fd, so sockets behave
//!   like std's on ordinary threads, with or without a runtime.
//!
//! If the registered hub's runtime has shut down, the next wait moves the
//! registration to the caller's hub.

use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Instant;

use super::scheduled::{Direction, ScheduledIo};
use crate::greenlet::trace::{WaitKind, WaitOn};
use crate::greenlet::wait::{self, Interrupt, Wake};
use crate::greenlet::waiter::Waiter;
use crate::hub::context;
use crate::hub::remote::HubRemote;
use crate::loom::Mutex;

/// How a wait for readiness ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ready {
    /// Readiness (or a spurious wake-up): retry the syscall.
    Retry,
    /// The deadline passed.
    TimedOut,
}

/// See the module docs. Drop deregisters the fd, so it must drop *before*
/// the fd is closed (declare it before the fd's owner in a struct).
pub(crate) struct Registration {
    io: Arc<ScheduledIo>,
    hub: Mutex<Option<Arc<HubRemote>>>,
}

impl Default for Registration {
    fn default() -> Self {
        Registration::new()
    }
}

impl Registration {
    pub(crate) fn new() -> Registration {
        Registration {
            io: Arc::new(ScheduledIo::default()),
            hub: Mutex::new(None),
        }
    }

    /// Runs `op` until it returns something other than `WouldBlock` (or
    /// `Interrupted`), waiting for `dir` readiness of `fd` in between. If
    /// `deadline` passes first, returns `Err(on_timeout())`.
    #[inline]
    pub(crate) fn io<R>(
        &self,
        fd: RawFd,
        dir: Direction,
        deadline: Option<Instant>,
        on_timeout: fn() -> io::Error,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        loop {
            let seq = self.io.seq(dir);
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
            if self.wait(fd, dir, seq, deadline)? == Ready::TimedOut {
                return Err(on_timeout());
            }
        }
    }

    /// Waits until `fd` may be ready in `dir` (an edge after `seq` was
    /// loaded), or `deadline`. Raises a kill or an expired `timeout` frame by
    /// unwinding.
    pub(crate) fn wait(
        &self,
        fd: RawFd,
        dir: Direction,
        seq: usize,
        deadline: Option<Instant>,
    ) -> io::Result<Ready> {
        if context::current_raw().is_none() {
            return poll_thread(fd, dir, deadline);
        }
        match self.park(fd, dir, seq, deadline)? {
            Ok(ready) => Ok(ready),
            Err(i) => i.raise(),
        }
    }

    /// On a greenlet: [`wait`](Self::wait), but a kill or an expired
    /// `timeout` frame is returned (`Ok(Err(..))`) instead of raised. It stays
    /// pending, so the greenlet's next blocking point raises it; for callers
    /// that must not unwind (the `patch` hooks).
    pub(crate) fn park(
        &self,
        fd: RawFd,
        dir: Direction,
        seq: usize,
        deadline: Option<Instant>,
    ) -> io::Result<Result<Ready, Interrupt>> {
        self.ensure_registered(fd)?;
        let waiter = Waiter::current();
        let key = waiter.key();
        if !self.io.add_waiter(dir, seq, waiter) {
            return Ok(Ok(Ready::Retry));
        }
        let kind = match dir {
            Direction::Read => WaitKind::Readable,
            Direction::Write => WaitKind::Writable,
        };
        let woke = wait::park_until(deadline, WaitOn::new(kind, fd as u64));
        self.io.remove_waiter(dir, key);
        Ok(match woke {
            Wake::Woken => Ok(Ready::Retry),
            Wake::TimedOut => Ok(Ready::TimedOut),
            Wake::Interrupted(i) => Err(i),
        })
    }

    /// Registers `fd` with the caller's hub unless it is registered with a
    /// live one already. Called on a greenlet only.
    fn ensure_registered(&self, fd: RawFd) -> io::Result<()> {
        let mut slot = self.hub.lock();
        if let Some(hub) = &*slot {
            if !hub.has_exited() {
                return Ok(());
            }
            // Its runtime is gone: nobody polls that poller any more.
            let _ = hub.deregister(fd);
            *slot = None;
        }
        let hub = context::hub().expect("greenhub: a greenlet runs on a hub");
        let remote = hub.remote.clone();
        remote.register(fd, token(&self.io))?;
        *slot = Some(remote);
        Ok(())
    }

    /// The event counter of `dir`, to load before a syscall that may block.
    #[inline]
    pub(crate) fn seq(&self, dir: Direction) -> usize {
        self.io.seq(dir)
    }

    /// Takes the fd off its poller (before it is closed or given away) and
    /// wakes whoever still waits on it.
    pub(crate) fn deregister(&mut self, fd: RawFd) {
        if self.deregister_shared(fd) {
            self.io = Arc::default();
        }
    }

    /// [`deregister`](Self::deregister) through a shared reference, for a
    /// registration shared by several users (the `patch` fd table): the
    /// readiness state stays with its owner, and a later wait registers the
    /// fd again under it. Returns whether the fd was registered.
    pub(crate) fn deregister_shared(&self, fd: RawFd) -> bool {
        let Some(hub) = self.hub.lock().take() else {
            return false;
        };
        let _ = hub.deregister(fd);
        self.io.wake_all();
        release(&hub, self.io.clone());
        true
    }
}

/// Drops the readiness state of a deregistered fd when that is safe: at once
/// on its own hub's thread (the hub is not dispatching while a greenlet
/// runs), else through the hub's released list.
pub(crate) fn release(hub: &Arc<HubRemote>, io: Arc<ScheduledIo>) {
    match context::hub() {
        Some(h) if Arc::ptr_eq(&h.remote, hub) => drop(io),
        _ => hub.release(io),
    }
}

/// The poller token of `io`: its address.
pub(crate) fn token(io: &Arc<ScheduledIo>) -> mio::Token {
    mio::Token(Arc::as_ptr(io) as usize)
}

/// Off a greenlet: block the thread in `poll(2)` until `fd` is ready in
/// `dir` or `deadline` (or the thread's `timeout` frame) passes.
pub(crate) fn poll_thread(
    fd: RawFd,
    dir: Direction,
    deadline: Option<Instant>,
) -> io::Result<Ready> {
    let events = match dir {
        Direction::Read => libc::POLLIN | libc::POLLPRI,
        Direction::Write => libc::POLLOUT,
    };
    let mut pfd = [libc::pollfd {
        fd,
        events,
        revents: 0,
    }];
    Ok(if super::sys::block_thread(&mut pfd, deadline)? {
        Ready::TimedOut
    } else {
        Ready::Retry
    })
}
