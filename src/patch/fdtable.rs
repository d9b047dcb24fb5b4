//! Which fds the hooks manage, and their state.
//!
//! An fd is *tracked* when a hooked `socket`, `accept` or `accept4` created
//! it on a greenlet while patching was enabled, or when it is a `dup` of a
//! tracked fd. A tracked fd's open file description is really non-blocking;
//! what the program asked for (`O_NONBLOCK` through `fcntl` or `FIONBIO`, and
//! the `SO_RCVTIMEO`/`SO_SNDTIMEO` timeouts) is kept in its [`Desc`], shared
//! by its dups as the kernel shares the description. Every other fd (stdin,
//! stdout, stderr, inherited fds, files, pipes, the hubs' own fds) is not in
//! the table, and every hook passes it straight to libc.
//!
//! # An entry's poller registration
//!
//! Each entry has its own [`Registration`] (dups have their own entries, so
//! each fd number is registered on its own: the poller keys registrations
//! by description *and* number). Its readiness state is the poller's token,
//! so it must outlive the registration; the registration is the hard part,
//! since the poller drops it only when the open file description goes, and
//! a dup (`dup`, `dup2`, `F_DUPFD`, a forked child) can keep the
//! description open after this fd is gone. The rules:
//!
//! - The hooked `close`, `dup2` and `dup3` take the entry out ([`remove`])
//!   *before* the kernel closes or replaces the fd, while the number still
//!   names the registered description, so the deregistration meets it.
//! - A removed entry is *closed* (`Registration::close_shared`): a greenlet
//!   still holding it (blocked on the fd when another closed it) gets
//!   `EBADF` and never registers the number again. Otherwise it would
//!   register whatever the number names by then (a new socket, or the
//!   description `dup2` put there) under a state that no table entry owns
//!   any more, freed when the greenlet lets go, with the registration left
//!   in the poller.
//! - An fd closed behind the hooks' back (a raw `close` syscall, as rustix
//!   makes, `close_range`) leaves a stale entry. The next deregistration
//!   through the number (a new entry there, a hooked `close`, `dup2` or
//!   `fcntl`) cannot reach the old registration, which outlives the fd if a
//!   dup keeps the description open: the registration recorded the socket's
//!   identity, the deregistration is issued only if the number still names
//!   it, and otherwise the state is leaked rather than freed
//!   (`io/registration.rs` has the rule). A leak per such fd, only when it
//!   was registered.
//!
//! # The table
//!
//! The table is a vector indexed by fd behind a read-write lock, with a count
//! of tracked fds and a bitmap of them in front: while nothing is tracked
//! (the feature compiled in but not enabled, or no socket made on a
//! greenlet), a lookup is one atomic load, and a lookup of an untracked fd
//! below 2^20 two, without the lock. So a signal handler writing to its
//! self-pipe (greenhub's own does) never touches the lock, which the thread
//! it interrupted may hold.

use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::time::Duration;

use parking_lot::RwLock;

use crate::hub::readiness::Direction;
use crate::io::registration::Registration;

/// The program's view of an open file description (shared by dups).
#[derive(Debug, Default)]
pub(crate) struct Desc {
    /// Whether the program asked for `O_NONBLOCK` (the real flag is always
    /// set).
    nonblocking: AtomicBool,
    /// `SO_RCVTIMEO` in nanoseconds; 0: none.
    recv_timeout: AtomicU64,
    /// `SO_SNDTIMEO` in nanoseconds; 0: none.
    send_timeout: AtomicU64,
}

impl Desc {
    pub(crate) fn new(nonblocking: bool) -> Arc<Desc> {
        let d = Desc::default();
        d.nonblocking.store(nonblocking, Relaxed);
        Arc::new(d)
    }

    pub(crate) fn nonblocking(&self) -> bool {
        self.nonblocking.load(Relaxed)
    }

    pub(crate) fn set_nonblocking(&self, on: bool) {
        self.nonblocking.store(on, Relaxed)
    }

    /// The timeout of blocking calls in `dir` (`SO_RCVTIMEO` for reads).
    pub(crate) fn timeout(&self, dir: Direction) -> Option<Duration> {
        let ns = match dir {
            Direction::Read => self.recv_timeout.load(Relaxed),
            Direction::Write => self.send_timeout.load(Relaxed),
        };
        (ns != 0).then(|| Duration::from_nanos(ns))
    }

    pub(crate) fn set_timeout(&self, dir: Direction, t: Option<Duration>) {
        let ns = t.map_or(0, |t| t.as_nanos().clamp(1, u64::MAX as u128) as u64);
        match dir {
            Direction::Read => self.recv_timeout.store(ns, Relaxed),
            Direction::Write => self.send_timeout.store(ns, Relaxed),
        }
    }
}

/// One tracked fd: its registration with a hub poller (made by the first
/// wait; shared, see the module docs) and its description's state.
pub(crate) struct Entry {
    pub(crate) reg: Registration,
    pub(crate) desc: Arc<Desc>,
}

static TRACKED: AtomicUsize = AtomicUsize::new(0);
static TABLE: RwLock<Vec<Option<Arc<Entry>>>> = RwLock::new(Vec::new());

/// One bit per fd below `BITMAP_FDS`: set while the fd may be tracked.
const BITMAP_FDS: usize = 1 << 20;
static BITMAP: [AtomicU64; BITMAP_FDS / 64] = [const { AtomicU64::new(0) }; BITMAP_FDS / 64];

/// Whether `fd` may be tracked (`true` for fds past the bitmap).
#[inline]
fn maybe_tracked(fd: RawFd) -> bool {
    match BITMAP.get(fd as usize / 64) {
        Some(word) => word.load(SeqCst) & (1 << (fd as usize % 64)) != 0,
        None => true,
    }
}

fn mark(fd: RawFd, on: bool) {
    if let Some(word) = BITMAP.get(fd as usize / 64) {
        let bit = 1 << (fd as usize % 64);
        if on {
            word.fetch_or(bit, SeqCst);
        } else {
            word.fetch_and(!bit, SeqCst);
        }
    }
}

/// The entry of `fd`, if it is tracked.
#[inline]
pub(crate) fn get(fd: RawFd) -> Option<Arc<Entry>> {
    if TRACKED.load(Relaxed) == 0 || fd < 0 || !maybe_tracked(fd) {
        return None;
    }
    TABLE.read().get(fd as usize)?.clone()
}

/// Starts tracking `fd` (a new fd from the kernel) with description `desc`.
pub(crate) fn insert(fd: RawFd, desc: Arc<Desc>) {
    if fd < 0 {
        return;
    }
    let entry = Arc::new(Entry {
        reg: Registration::new_shared(),
        desc,
    });
    let old = {
        let mut table = TABLE.write();
        let i = fd as usize;
        if table.len() <= i {
            table.resize(i + 1, None);
        }
        table[i].replace(entry)
    };
    mark(fd, true);
    // Outside the lock: waking waiters writes to hubs' wakers, through the
    // hooked `write`, which reads the table.
    match old {
        // A stale entry: the fd was closed behind the hooks' back (a raw
        // syscall) and the kernel gave the number out again. Its
        // registration, if any, left the poller with its description,
        // unless a dup keeps that open: then it cannot be taken off, and
        // its state is kept (see the module docs).
        Some(old) => {
            old.reg.close_shared(fd);
        }
        None => {
            TRACKED.fetch_add(1, Relaxed);
        }
    }
}

/// Stops tracking `fd` (before it is closed, or replaced by `dup2`): takes it
/// off its poller, while it still names its description, and wakes whoever
/// waits on it (they get `EBADF`). Returns the entry it had, closed.
pub(crate) fn remove(fd: RawFd) -> Option<Arc<Entry>> {
    if TRACKED.load(Relaxed) == 0 || fd < 0 {
        return None;
    }
    // The guard is a temporary: the lock is released before the wake-ups
    // (see `insert`).
    let old = TABLE.write().get_mut(fd as usize)?.take()?;
    mark(fd, false);
    TRACKED.fetch_sub(1, Relaxed);
    old.reg.close_shared(fd);
    Some(old)
}

/// In a forked child: treat every fd as untracked from now on, without
/// touching the table (its lock may be held by a thread that does not exist
/// in the child).
pub(crate) fn forget_all() {
    TRACKED.store(0, Relaxed);
}
