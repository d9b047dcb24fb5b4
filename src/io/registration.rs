//! A file descriptor's registration with a hub's poller, made lazily by the
//! first greenlet that has to wait on it, and the wait itself.
//!
//! [`Registration::io`] is the loop every cooperative call runs: load the
//! event counter, try the non-blocking syscall, and on `WouldBlock` wait for
//! the next readiness edge (protocol in `scheduled.rs`), up to a deadline.
//!
//! - On a greenlet the wait parks the greenlet. The fd is registered with the
//!   poller of the hub the greenlet runs on the first time it waits there
//!   (a started greenlet stays on its hub unless it opted into migration, so
//!   its sockets' events usually arrive where it runs). A greenlet of another
//!   hub that waits on it (a shared socket, a migrated greenlet) registers it
//!   with its own hub's poller too: see "Several hubs".
//! - Off a greenlet the wait is a plain `poll(2)` on the fd, so sockets behave
//!   like std's on ordinary threads, with or without a runtime.
//!
//! If a registered hub's runtime has shut down, the next wait takes that
//! hub off the list.
//!
//! # Several hubs
//!
//! A readiness edge must reach a waiting greenlet through a hub that is
//! polling, not through one that may be busy running a greenlet that does
//! not yield for a while. So every hub that has had a waiter on the fd
//! keeps it in its poller, under the same token (the one `ScheduledIo`):
//! an edge is dispatched by each of them, and whichever polls first wakes
//! the waiters, on whatever hub they are (a second dispatch only bumps the
//! counter again: a spurious wake-up, which waiters tolerate).
//!
//! The state of the pair (this fd, hub H), under the registration's lock:
//!
//! - *unregistered* → *registered*: only a greenlet running on H, in
//!   `ensure_registered`, before it adds itself as a waiter. The
//!   `EPOLL_CTL_ADD` reports the fd's readiness at that moment, and the
//!   waiter loaded the counter before its syscall: an edge between the
//!   syscall and the ADD is either dispatched by another registered hub
//!   (the counter moved: `add_waiter` refuses, the greenlet retries) or
//!   reported by H's poller after the ADD. So no edge is lost whichever hub
//!   the greenlet is on, and whether the other hubs poll or not.
//! - *registered* → *unregistered*: the owner's deregistration or close
//!   (any thread; `take_off` DELs it from every hub at once), or a later
//!   waiter when H has exited (its poller is never polled again).
//! - *closed* (shared registrations only): terminal; nobody registers.
//!
//! The state is freed only once every registered hub's DEL succeeded (or
//! the hub exited), through each hub's released list: each holds a clone,
//! so it lives until every hub that may still hold an event naming it has
//! begun its next poll.
//!
//! # Every hub, for a migratable greenlet
//!
//! When the greenlet that registers the fd is migratable (`hub::migrate`),
//! it registers it with the poller of every hub of its runtime at once,
//! not only its own: whichever hub polls first wakes it and, since a
//! migratable greenlet woken on another hub runs there, runs it. So a hub
//! that is busy, or waiting for a CPU, does not hold up its greenlets'
//! sockets: this is how an idle hub takes events from a busy hub's poller
//! (benches/compare/PROFILE.md, HTTP with 2 hubs). The other registrations
//! are the same *unregistered* → *registered* move as above, made by a
//! greenlet that is not on that hub, and the ADD's report of the current
//! readiness makes it as safe: an edge before it is either seen by the
//! caller's own registration (made first) or by this one. They are best
//! effort (the caller's own is what its wait relies on) and cost one ADD and
//! one DEL per hub and fd, and a spurious dispatch on each hub that polls the
//! edge after the first.
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
    /// The first hub whose poller has the fd, if registered.
    remote: Option<Arc<HubRemote>>,
    /// The other hubs whose pollers have it (greenlets of several hubs
    /// waited on it, see "Several hubs"); empty while `remote` is `None`.
    more: Vec<Arc<HubRemote>>,
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

    /// Registers `fd` with the caller's hub unless that hub's poller has it
    /// already (see "Several hubs" in the module docs). Called on a greenlet
    /// only. `EBADF` once closed.
    fn ensure_registered(&self, fd: RawFd) -> io::Result<()> {
        let hub = context::hub().expect("greenhub: a greenlet runs on a hub");
        let me = &hub.remote;
        let mut slot = self.hub.lock();
        if slot.closed {
            return Err(ebadf());
        }
        if slot.hubs().any(|h| Arc::ptr_eq(h, me)) {
            return Ok(());
        }
        // Hubs whose runtime is gone: nobody polls their pollers any more,
        // so the state is safe whatever the DEL does.
        slot.retain(|h| {
            if h.has_exited() {
                let _ = h.deregister(fd);
                false
            } else {
                true
            }
        });
        // Under the lock, so that a `close_shared` (which takes it) is
        // wholly before this or after.
        let file = if self.shared {
            let now = FileId::of(fd)?;
            // Registered elsewhere for another description: the number was
            // closed and reused behind the table's back.
            if slot.file.is_some_and(|f| f != now) {
                return Err(ebadf());
            }
            Some(now)
        } else {
            None
        };
        // EPOLL_CTL_ADD reports the fd's current readiness (an edge if it is
        // ready now), so nothing that arrived since the caller's syscall is
        // missed by this poller.
        let every_hub = Self::caller_migratable(hub);
        me.register(fd, token(&self.io), every_hub)?;
        slot.push(me.clone());
        slot.file = file;
        if every_hub {
            // See "Every hub, for a migratable greenlet": best effort, the
            // caller's own registration above is what the wait relies on.
            for other in hub.shared.hubs.iter() {
                if !slot.hubs().any(|h| Arc::ptr_eq(h, other))
                    && !other.has_exited()
                    && other.register(fd, token(&self.io), true).is_ok()
                {
                    slot.push(other.clone());
                }
            }
        }
        Ok(())
    }

    /// Whether the greenlet running on `hub` is migratable.
    fn caller_migratable(hub: &crate::hub::HubContext) -> bool {
        hub.current().is_some_and(|t| {
            // SAFETY: the hub holds an `Arc` to the greenlet it is running.
            unsafe { t.as_ref() }.header().migratable
        })
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
        let hubs: Vec<Arc<HubRemote>> = slot
            .remote
            .take()
            .into_iter()
            .chain(slot.more.drain(..))
            .collect();
        if hubs.is_empty() {
            return false;
        }
        // A DEL reaches whatever `fd` names now: issued only if that is
        // still the registered description (always so for a sole owner).
        let still_named = match slot.file.take() {
            None => true,
            Some(file) => FileId::of(fd).is_ok_and(|now| now == file),
        };
        // Every poller must be shown off (or dead) before the state may go.
        let mut all_off = true;
        for hub in &hubs {
            let off = still_named && hub.deregister(fd).is_ok();
            all_off &= off || hub.has_exited();
        }
        drop(slot);
        self.io.wake_all();
        if all_off {
            // One clone per hub: freed once every hub that may still hold
            // an event naming it has started its next poll.
            for hub in &hubs {
                release(hub, self.io.clone());
            }
        } else {
            // A registration may live on (a dup keeps its description
            // open) and name this state: it must never be freed.
            std::mem::forget(self.io.clone());
        }
        true
    }
}

impl Slot {
    /// Every hub whose poller has the fd.
    fn hubs(&self) -> impl Iterator<Item = &Arc<HubRemote>> {
        self.remote.iter().chain(self.more.iter())
    }

    fn push(&mut self, hub: Arc<HubRemote>) {
        if self.remote.is_none() {
            self.remote = Some(hub);
        } else {
            self.more.push(hub);
        }
    }

    /// Keeps the hubs for which `keep` says so (`remote` stays the first).
    fn retain(&mut self, mut keep: impl FnMut(&Arc<HubRemote>) -> bool) {
        let mut all: Vec<_> = self
            .remote
            .take()
            .into_iter()
            .chain(self.more.drain(..))
            .collect();
        all.retain(|h| keep(h));
        let mut all = all.into_iter();
        self.remote = all.next();
        self.more = all.collect();
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
