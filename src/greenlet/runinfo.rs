//! What each greenlet records about itself for the run-info dump
//! (`crate::inspect`): where it was spawned, by whom, when, and what it is
//! parked on.
//!
//! The spawn site, parent and birth time are written once, before the
//! greenlet is queued, and never change. The wait reason is written by the
//! greenlet itself just before it parks (`greenlet::wait::park_until`) and
//! read by its own hub while the greenlet is suspended (the dump runs on the
//! hub's thread), so it is a plain `Cell`: one thread, never at the same
//! time. All of it costs a few plain stores per spawn and per park.

use std::cell::Cell;
use std::panic::Location;
use std::time::Instant;

use crate::greenlet::GreenletId;

/// What a parked greenlet waits for. `obj` identifies the object: the
/// primitive's address, a file descriptor, or a greenlet id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WaitOn {
    pub(crate) kind: WaitKind,
    pub(crate) obj: u64,
}

/// The kinds of waits, as the dump names them. Public through
/// `greenhub::inspect::WaitKind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WaitKind {
    /// [`park`](crate::park) (or a primitive built on it outside greenhub).
    Park,
    /// [`sleep`](crate::sleep).
    Sleep,
    /// [`JoinHandle::join`](crate::JoinHandle::join); the object is the
    /// joined greenlet's id.
    Join,
    /// Sending on a [`channel`](crate::channel) that is full (or has no
    /// receiver ready, for a rendezvous channel).
    ChannelSend,
    /// Receiving from an empty [`channel`](crate::channel).
    ChannelRecv,
    /// A [`select!`](crate::select) over several channels.
    ChannelSelect,
    /// `Queue::put` on a full [`Queue`](crate::channel::Queue).
    QueuePut,
    /// `Queue::get` on an empty [`Queue`](crate::channel::Queue).
    QueueGet,
    /// `Queue::join`, waiting for every item to be done.
    QueueJoin,
    /// [`sync::Mutex`](crate::sync::Mutex).
    Mutex,
    /// [`sync::RwLock`](crate::sync::RwLock).
    RwLock,
    /// [`sync::Semaphore`](crate::sync::Semaphore).
    Semaphore,
    /// [`sync::Condvar`](crate::sync::Condvar).
    Condvar,
    /// [`sync::Event`](crate::sync::Event).
    Event,
    /// [`sync::AsyncResult`](crate::sync::AsyncResult).
    AsyncResult,
    /// [`sync::Barrier`](crate::sync::Barrier).
    Barrier,
    /// [`sync::WaitGroup`](crate::sync::WaitGroup).
    WaitGroup,
    /// A [`pool::Group`](crate::pool::Group) or pool, waiting for members.
    Group,
    /// A socket or other fd becoming readable; the object is the fd.
    Readable,
    /// A socket or other fd becoming writable; the object is the fd.
    Writable,
    /// [`io::select`](crate::io::select) or `io::wait_*` over fds.
    FdWait,
    /// [`future::block_on`](crate::future::block_on): a pending future.
    Future,
    /// A futex wait of unmodified code under the `patch` feature (a std
    /// `Mutex`, `Condvar`, `RwLock`, `Once`, channel or `thread::park`); the
    /// object is the futex word's address.
    Futex,
}

impl WaitOn {
    pub(crate) const fn new(kind: WaitKind, obj: u64) -> WaitOn {
        WaitOn { kind, obj }
    }

    /// A wait on the object at `p` (a primitive's shared state).
    pub(crate) fn at<T: ?Sized>(kind: WaitKind, p: *const T) -> WaitOn {
        WaitOn::new(kind, p as *const () as usize as u64)
    }
}

/// The per-greenlet record of its spawn. Lives in the greenlet's `Header`.
pub(crate) struct RunRecord {
    pub(crate) site: &'static Location<'static>,
    pub(crate) parent: Option<GreenletId>,
    /// Coarse monotonic time of the spawn, in nanoseconds ([`coarse_now`]).
    pub(crate) born: u64,
}

impl RunRecord {
    /// `born` is [`coarse_now`], or a hub's recent reading of it.
    pub(crate) fn new(
        site: &'static Location<'static>,
        parent: Option<GreenletId>,
        born: u64,
    ) -> RunRecord {
        RunRecord { site, parent, born }
    }
}

/// What a started greenlet last parked on. Lives with the rest of its run
/// state (`greenlet::task::Running`): only a started greenlet parks.
pub(crate) struct WaitRecord {
    wait: Cell<Option<WaitOn>>,
    until: Cell<Option<Instant>>,
}

impl WaitRecord {
    pub(crate) const fn new() -> WaitRecord {
        WaitRecord {
            wait: Cell::new(None),
            until: Cell::new(None),
        }
    }

    /// Records what the greenlet is about to park on. Only the greenlet
    /// itself calls this (see the module docs).
    #[inline]
    pub(crate) fn set_wait(&self, on: WaitOn, until: Option<Instant>) {
        self.wait.set(Some(on));
        self.until.set(until);
    }

    /// What the greenlet last parked on, and until when. Only meaningful
    /// while it is parked; read on its hub's thread.
    pub(crate) fn wait(&self) -> (Option<WaitOn>, Option<Instant>) {
        (self.wait.get(), self.until.get())
    }
}

/// `CLOCK_MONOTONIC_COARSE` in nanoseconds: a few nanoseconds per call (no
/// syscall, no TSC read), accurate to a scheduler tick, enough for ages.
pub(crate) fn coarse_now() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is valid on
    // Linux, and on failure `ts` stays zero, which only makes ages wrong.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
