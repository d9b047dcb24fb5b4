//! What each greenlet records about itself for the run-info dump
//! (`crate::inspect`): where it was spawned, by whom, when, and what it is
//! parked on.
//!
//! The spawn site, parent and birth time are written once, before the
//! greenlet is queued, and never change. The wait reason is written by the
//! greenlet itself just before it parks (`greenlet::wait::park_until`) and
//! read by a hub while the greenlet is suspended: its own hub, on the same
//! thread, or, for a migratable greenlet (`hub::migrate`), whichever hub
//! answers the dump, while the greenlet may be woken and run elsewhere. So
//! the record is three relaxed atomics (plain stores on x86-64): a reader
//! racing with a park may pair the old kind with the new object, which a
//! diagnostic dump tolerates, and reads nothing torn. All of it costs a few
//! plain stores per spawn and per park.

use std::panic::Location;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

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

/// Every [`WaitKind`], at the index of its discriminant (the encoding in a
/// [`WaitRecord`]; `kinds_are_indexed` checks it).
const KINDS: [WaitKind; 23] = [
    WaitKind::Park,
    WaitKind::Sleep,
    WaitKind::Join,
    WaitKind::ChannelSend,
    WaitKind::ChannelRecv,
    WaitKind::ChannelSelect,
    WaitKind::QueuePut,
    WaitKind::QueueGet,
    WaitKind::QueueJoin,
    WaitKind::Mutex,
    WaitKind::RwLock,
    WaitKind::Semaphore,
    WaitKind::Condvar,
    WaitKind::Event,
    WaitKind::AsyncResult,
    WaitKind::Barrier,
    WaitKind::WaitGroup,
    WaitKind::Group,
    WaitKind::Readable,
    WaitKind::Writable,
    WaitKind::FdWait,
    WaitKind::Future,
    WaitKind::Futex,
];

/// What a started greenlet last parked on. Lives with the rest of its run
/// state (`greenlet::task::Running`): only a started greenlet parks. Atomics
/// (see the module docs): `kind` is 0 before the first park, else the
/// [`WaitKind`]'s index in `KINDS` plus one; `until` is 0 for no deadline,
/// else nanoseconds since [`epoch`] plus one.
pub(crate) struct WaitRecord {
    kind: AtomicU8,
    obj: AtomicU64,
    until: AtomicU64,
}

/// The origin of `WaitRecord::until`: the first deadline recorded.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl WaitRecord {
    pub(crate) const fn new() -> WaitRecord {
        WaitRecord {
            kind: AtomicU8::new(0),
            obj: AtomicU64::new(0),
            until: AtomicU64::new(0),
        }
    }

    /// Records what the greenlet is about to park on. Only the greenlet
    /// itself calls this (see the module docs).
    #[inline]
    pub(crate) fn set_wait(&self, on: WaitOn, until: Option<Instant>) {
        self.kind.store(on.kind as u8 + 1, Relaxed);
        self.obj.store(on.obj, Relaxed);
        let until = until.map_or(0, |t| {
            // A deadline before the epoch (a past one) reads back as the epoch.
            (t.saturating_duration_since(epoch()).as_nanos() as u64).saturating_add(1)
        });
        self.until.store(until, Relaxed);
    }

    /// What the greenlet last parked on, and until when. Only meaningful
    /// while it is parked.
    pub(crate) fn wait(&self) -> (Option<WaitOn>, Option<Instant>) {
        let on = match self.kind.load(Relaxed) {
            0 => None,
            k => KINDS
                .get(usize::from(k) - 1)
                .map(|&kind| WaitOn::new(kind, self.obj.load(Relaxed))),
        };
        let until = match self.until.load(Relaxed) {
            0 => None,
            n => Some(epoch() + Duration::from_nanos(n - 1)),
        };
        (on, until)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_indexed() {
        for (i, k) in KINDS.iter().enumerate() {
            assert_eq!(*k as usize, i, "{k:?}");
        }
        // The last variant is the last entry: none was left out.
        assert_eq!(WaitKind::Futex as usize, KINDS.len() - 1);
    }

    #[test]
    fn a_record_reads_back() {
        let r = WaitRecord::new();
        assert_eq!(r.wait(), (None, None));
        let t = Instant::now() + Duration::from_secs(3);
        r.set_wait(WaitOn::new(WaitKind::Readable, 7), Some(t));
        let (on, until) = r.wait();
        assert_eq!(on, Some(WaitOn::new(WaitKind::Readable, 7)));
        let until = until.unwrap();
        assert!(until <= t && t - until < Duration::from_micros(1));
        r.set_wait(WaitOn::new(WaitKind::Futex, 9), None);
        assert_eq!(r.wait(), (Some(WaitOn::new(WaitKind::Futex, 9)), None));
    }
}
