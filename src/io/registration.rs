//! A file descriptor's registration with a hub's poller, made lazily by the
//! first greenlet that has to wait on it, and the wait itself.
//!
//! [`Registration::io`] is the loop every cooperative call runs: load the
//! event counter, try the non-blocking syscall, and on `WouldBlock` wait for
//! the next readiness edge (protocol in `scheduled.rs`), up to a deadline.
//!
//! - On a greenlet the wait parks the greenlet. The fd is registered with the
//!   poller of the hub the greenlet runs on the first time it waits (a started
//!   greenlet stays on its hub unless it opted into migration, so its
//!   sockets' events usually arrive where it runs); other greenlets, on any
//!   hub, may wait on it too, and so may a migrated greenlet: the registered
//!   hub wakes them through their own hubs.
//! - Off a greenlet the wait is a plain `poll(2)` on the fd, so sockets behave
//!   like std's on ordinary threads, with or without a runtime.
//!
//! If the registered hub's runtime has shut down, the next wait moves the
//! registration to the caller's hub.
//!
//! # Taking a registration off
//!
//! The poller (epoll) keys a registration by *(open file description, fd
//! number)* and drops it by itself only when the description is released,
//! that is when its last fd, here or in any process, is closed. An
//! `EPOLL_CTL_DEL` finds the registration through what the number names *at
//! the time of the call*. So a registration can be taken off only while its
//! fd still names the description it was made for; afterwards (the fd
//! closed, or replaced by `dup2`, while a dup keeps the description open)
//! it stays in the poller, under its token, until the description goes.
//!
//! The rule, which `ScheduledIo`'s token lifetime (`scheduled.rs`) rests on:
//! **a registration's `ScheduledIo` is released to the hub (freed after its
//! next dispatch) only after an `EPOLL_CTL_DEL` that succeeded while the fd
//! still named the registered description, or once the hub has exited.**
//! Whenever that cannot be shown, the state is leaked instead, so that
//! whatever the poller still returns under its token stays valid.
//!
//! - A registration with a sole owner ([`Evented`](super::evented)) owns its
//!   fd: it is taken off before the fd is closed or given away, so the DEL
//!   always meets its description.
//! - A *shared* registration (`Registration::new_shared`, the `patch` fd
//!   table) is reached through an fd number the program owns and may close
//!   or replace behind the table's back (a raw syscall). It records what the
//!   fd named when registered ([`FileId`]) and issues the DEL only if the fd
//!   still names that (a DEL through a number that now names another
//!   description would take *that* description's registration off,
//!   someone else's, and leave its own). It is *closed* (`close_shared`)
//!   before its fd is closed or replaced, and a closed registration never
//!   registers again: a greenlet still holding it (blocked on the fd when
//!   it was closed) gets `EBADF` rather than registering the number anew,
//!   by then possibly another socket's, under a state nobody would take
//!   off.
//!
//! Leaks happen only when an fd was closed or replaced behind the owner's
//! back while registered: one `ScheduledIo` each.

use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Instant;

use super::sys::FileId;
use crate::greenlet::runinfo::{WaitKind, WaitOn};
use crate::greenlet::wait::{self, Interrupt, Wake};
use crate::greenlet::waiter::Waiter;
use crate::hub::context;
use crate::hub::readiness::{Direction, ScheduledIo};
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

/// See the module docs. Its owner takes it off the poller
/// ([`deregister`](Self::deregister)) before the fd is closed; one dropped
/// while still registered leaks its state (see "Taking a registration
/// off").
pub(crate) struct Registration {
    io: Arc<ScheduledIo>,
    hub: Mutex<Slot>,
    /// Made by `new_shared`.
    shared: bool,
}

/// Where a [`Registration`] stands, under its lock.
#[derive(Default)]
struct Slot {
    /// The hub whose poller has the fd, if registered.
    remote: Option<Arc<HubRemote>>,
    /// A shared registration's fd's description when it was registered.
    file: Option<FileId>,
    /// A shared registration is closed for good (see `close_shared`).
    closed: bool,
}

impl Default for Registration {
    fn default() -> Self {
        Registration::new()
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // Its owner took it off first, unless the fd went behind its back
        // without a deregistration: then the poller may still name the
        // state, which must outlive it.
        if self.hub.lock().remote.is_some() {
            std::mem::forget(self.io.clone());
        }
    }
}

impl Registration {
    pub(crate) fn new() -> Registration {
        Registration {
            io: Arc::new(ScheduledIo::default()),
            hub: Mutex::new(Slot::default()),
            shared: false,
        }
    }

    /// A registration reached through an fd number that its user does not
    /// own (the `patch` fd table): see the module docs. It costs a
    /// `getsockopt` at each registration and deregistration.
    #[cfg(feature = "patch")]
    pub(crate) fn new_shared() -> Registration {
        Registration {
            io: Arc::new(ScheduledIo::default()),
            hub: Mutex::new(Slot::default()),
            shared: true,
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
            // Woken by `close_shared`: the number may name another socket
            // by now; the call must not go on there.
            Wake::Woken if self.shared && self.hub.lock().closed => return Err(ebadf()),
            Wake::Woken => Ok(Ready::Retry),
            Wake::TimedOut => Ok(Ready::TimedOut),
            Wake::Interrupted(i) => Err(i),
        })
    }

    /// Registers `fd` with the caller's hub unless it is registered with a
    /// live one already. Called on a greenlet only. `EBADF` once closed.
    fn ensure_registered(&self, fd: RawFd) -> io::Result<()> {
        let mut slot = self.hub.lock();
        if slot.closed {
            return Err(ebadf());
        }
        if let Some(hub) = &slot.remote {
            if !hub.has_exited() {
                return Ok(());
            }
            // Its runtime is gone: nobody polls that poller any more, so
            // the state is safe whatever the DEL does.
            let _ = hub.deregister(fd);
            slot.remote = None;
        }
        let hub = context::hub().expect("greenhub: a greenlet runs on a hub");
        let remote = hub.remote.clone();
        // Under the lock, so that a `close_shared` (which takes it) is
        // wholly before this or after.
        let file = if self.shared {
            Some(FileId::of(fd)?)
        } else {
            None
        };
        remote.register(fd, token(&self.io))?;
        slot.remote = Some(remote);
        slot.file = file;
        Ok(())
    }

    /// The event counter of `dir`, to load before a syscall that may block.
    #[inline]
    pub(crate) fn seq(&self, dir: Direction) -> usize {
        self.io.seq(dir)
    }

    /// Wakes whoever waits for `dir` as an event would: they retry their
    /// syscall (a spurious wake-up, which every waiter tolerates). For a
    /// caller that changed what that syscall's closure decides (a server
    /// that stops accepting).
    pub(crate) fn wake(&self, dir: Direction) {
        self.io.fire(dir);
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
        self.take_off(fd, false)
    }

    /// Takes a shared registration off for good, before its fd is closed or
    /// replaced (or once it was, behind the table's back): wakes whoever
    /// waits, and from now on waits fail with `EBADF` instead of
    /// registering `fd` again.
    #[cfg(feature = "patch")]
    pub(crate) fn close_shared(&self, fd: RawFd) {
        self.take_off(fd, true);
    }

    /// See [`deregister_shared`](Self::deregister_shared) and
    /// `close_shared`, and the module docs for when the state is released
    /// or leaked.
    fn take_off(&self, fd: RawFd, close: bool) -> bool {
        let mut slot = self.hub.lock();
        slot.closed |= close;
        let Some(hub) = slot.remote.take() else {
            return false;
        };
        // A DEL reaches whatever `fd` names now: issued only if that is
        // still the registered description (always so for a sole owner).
        let still_named = match slot.file.take() {
            None => true,
            Some(file) => FileId::of(fd).is_ok_and(|now| now == file),
        };
        let off = still_named && hub.deregister(fd).is_ok();
        drop(slot);
        self.io.wake_all();
        if off || hub.has_exited() {
            release(&hub, self.io.clone());
        } else {
            // The registration may live on (a dup keeps its description
            // open) and name this state: it must never be freed.
            std::mem::forget(self.io.clone());
        }
        true
    }
}

fn ebadf() -> io::Error {
    io::Error::from_raw_os_error(libc::EBADF)
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
