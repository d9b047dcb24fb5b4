//! Greenlets blocked forever in each blocking primitive greenhub has, for the
//! kill, timeout and shutdown stress tests: [`Blockers`] owns one instance of
//! every primitive set up so that it never lets a waiter through (a channel
//! nobody sends on, a mutex another greenlet holds, a semaphore without
//! permits...), and [`Blockers::block`] parks the caller in primitive `kind`.

use std::sync::Arc;
use std::time::Duration;

use greenhub::channel::{self, Receiver, Sender};
use greenhub::sync::{AsyncResult, Barrier, Condvar, Event, Mutex, RwLock, Semaphore, WaitGroup};

/// The primitives, by [`Blockers::block`]'s `kind`.
pub const KINDS: [&str; 16] = [
    "channel recv",
    "bounded send (full)",
    "rendezvous send",
    "event wait",
    "mutex lock",
    "rwlock write",
    "rwlock read",
    "semaphore acquire",
    "condvar wait",
    "barrier wait",
    "wait group wait",
    "async result get",
    "sleep",
    "park",
    "join",
    "timeout around recv",
];

/// Primitives that never let a waiter through, while [`Blockers::holders`]
/// run.
pub struct Blockers {
    dead_rx: Receiver<u64>,
    _dead_tx: Sender<u64>,
    full_tx: Sender<u64>,
    _full_rx: Receiver<u64>,
    rdv_tx: Sender<u64>,
    _rdv_rx: Receiver<u64>,
    event: Event,
    mutex: Mutex<()>,
    rw_written: RwLock<()>,
    rw_read: RwLock<()>,
    sem: Semaphore,
    cv_mutex: Mutex<()>,
    cv: Condvar,
    barrier: Barrier,
    wg: WaitGroup,
    result: AsyncResult<u64>,
    /// Holders of `mutex`, `rw_written` (write) and `rw_read` (read), and
    /// the greenlet that `join` victims wait for, wait on this.
    release: Event,
    ready: WaitGroup,
}

impl Blockers {
    /// The primitives, and greenlets (on the current runtime) that hold the
    /// locks until [`Blockers::release`]. Returns once the locks are held.
    pub fn new() -> (Arc<Blockers>, Vec<greenhub::JoinHandle<()>>) {
        let (dead_tx, dead_rx) = channel::unbounded();
        let (full_tx, full_rx) = channel::bounded(1);
        full_tx.send(0).unwrap();
        let (rdv_tx, rdv_rx) = channel::rendezvous();
        let wg = WaitGroup::new();
        wg.add(1);
        let b = Arc::new(Blockers {
            dead_rx,
            _dead_tx: dead_tx,
            full_tx,
            _full_rx: full_rx,
            rdv_tx,
            _rdv_rx: rdv_rx,
            event: Event::new(),
            mutex: Mutex::new(()),
            rw_written: RwLock::new(()),
            rw_read: RwLock::new(()),
            sem: Semaphore::new(0),
            cv_mutex: Mutex::new(()),
            cv: Condvar::new(),
            barrier: Barrier::new(usize::MAX),
            wg,
            result: AsyncResult::new(),
            release: Event::new(),
            ready: WaitGroup::new(),
        });
        b.ready.add(3);
        let holders = (0..3)
            .map(|i| {
                let b = b.clone();
                greenhub::spawn(move || match i {
                    0 => {
                        let _g = b.mutex.lock();
                        b.ready.done();
                        b.release.wait();
                    }
                    1 => {
                        let _g = b.rw_written.write();
                        b.ready.done();
                        b.release.wait();
                    }
                    _ => {
                        let _g = b.rw_read.read();
                        b.ready.done();
                        b.release.wait();
                    }
                })
            })
            .collect();
        b.ready.wait();
        (b, holders)
    }

    /// Lets the lock holders finish.
    pub fn release(&self) {
        self.release.set();
    }

    /// Blocks the calling greenlet in primitive `kind` (an index of
    /// [`KINDS`]) until it is killed.
    pub fn block(&self, kind: usize) {
        match kind {
            0 => {
                let _ = self.dead_rx.recv();
            }
            1 => {
                let _ = self.full_tx.send(1);
            }
            2 => {
                let _ = self.rdv_tx.send(1);
            }
            3 => self.event.wait(),
            4 => {
                let _ = self.mutex.lock();
            }
            5 => {
                let _ = self.rw_read.write();
            }
            6 => {
                let _ = self.rw_written.read();
            }
            7 => {
                let _ = self.sem.acquire();
            }
            8 => {
                let g = self.cv_mutex.lock();
                let _g = self.cv.wait(g);
            }
            9 => {
                let _ = self.barrier.wait();
            }
            10 => self.wg.wait(),
            11 => {
                let _ = self.result.get();
            }
            12 => greenhub::sleep(Duration::from_secs(3600)),
            13 => loop {
                greenhub::park();
            },
            14 => {
                let h = greenhub::spawn(|| greenhub::sleep(Duration::from_secs(3600)));
                let _ = h.join();
            }
            _ => {
                let _ = greenhub::timeout(Duration::from_secs(3600), || self.dead_rx.recv());
            }
        }
        // Got through: only possible once `release` lets the lock holders
        // go, or when a shutdown kills them. A greenlet killed while a lock
        // is handed to it keeps the lock and unwinds at its next blocking
        // point. Callers that must see a kill check the join result.
    }
}
