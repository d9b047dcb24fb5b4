//! Loom models of the **futex hook's wait/wake protocol** and of the
//! **shared std thread parker** built on it (`src/patch/futex.rs`,
//! `src/patch/parker.rs`).
//!
//! The protocol code is greenhub's own: the futex table of
//! `src/patch/table.rs` ([`Table::link`] with its check, [`Table::wake`],
//! [`Table::after_park`] with the unlink of a waiter that gives up, the
//! waiter count and its fences) and the parker word's steps of
//! `src/patch/parkword.rs` (the hook's [`parkword::link`], a woken wait's
//! [`parkword::woken`], the switch guard's [`parkword::settle`] and
//! [`parkword::idle`], [`parkword::sweep`]). The hook calls exactly these,
//! with std's words and a `static` table; here they run on loom atomics,
//! with a table per execution.
//!
//! # Futex models (a)
//!
//! Waiters are loom threads: a waiter links a node whose waiter is its
//! [`loom::thread::Thread`], then parks (loom's thread park, sticky like
//! the greenlet's park: an unpark before it still ends it) until
//! [`Table::after_park`] reports it woken. This plays the hook's `wait`
//! less the greenlet switch (`park_uninterruptible`), the kernel probe and
//! deadlines. Wakers change the word with a `Release` store (std's unlock
//! and `unpark` use `Release` swaps), then call [`Table::wake`], as the
//! hook's `FUTEX_WAKE` does (its kernel half, for OS-thread waiters, is not
//! modelled: there are none). A timeout is a waiter that gives up at once
//! after linking (any time is a valid time for a deadline to pass).
//!
//! Asserted: no lost wake-up (every waiter returns: else loom reports a
//! deadlock); a wait either fails its check (`EAGAIN`) or is woken, and
//! the waker's count agrees; `wake(n)` wakes at most `n`; nothing stays
//! linked and the waiter count is back to zero.
//!
//! # Parker model (b)
//!
//! One loom thread is a hub running two greenlets that each do
//! `while !flag { thread::park() }` (or, in the `park_timeout` models, one
//! of them makes a single `park_timeout` call whose deadline passes);
//! another thread sets the flags and calls `unpark` (std's code: swap in
//! `NOTIFIED`, futex-wake from `PARKED`). What cannot run under loom is the greenlet switch itself:
//! each greenlet is a small state machine (`Greenlet::run`) whose steps are
//! std's `park` (`fetch_sub`, the check, the futex wait, the
//! `compare_exchange` loop) or `park_timeout` (the same, then `swap(EMPTY)`)
//! and the hook's parker wait (`parker::park`: link, park, after the park
//! the woken step, the leader's tick, or the unlink and
//! [`parkword::left`] when the deadline passed); a
//! suspension returns to the hub loop, which resumes a greenlet when its
//! waiter was woken. The hub loop calls the switch guard's functions where
//! the hub does (`after` after each greenlet, `idle` before it blocks,
//! `settle` after), installs the guard when a parker wait links and removes
//! it when `after` finds no waits, as `parker.rs` does. The hub's poller is
//! a sticky flag under a loom mutex with a condvar; a waker on another
//! thread rings it, a wake from the hub's own thread does not (as in
//! greenhub: it only pushes onto the hub's own queue).
//!
//! A deadline fires when the hub would otherwise block (nothing ready,
//! nothing rung). The leader's **tick** (a timer) fires only when the hub
//! would otherwise block for good (every unpark done, nothing ready, nothing
//! rung), and only if, while a parker wait was linked, a running greenlet
//! took in std's code a token that arrived after the hook's last look at
//! the word: the holes the sweep exists for (`parker.rs`, "The protocol"):
//! std's fast path; std's `compare_exchange` after a woken wait stored its
//! token when an `unpark` came in between (one word, two tokens; told by
//! ghost state that counts `unpark`s); `park_timeout`'s `swap(EMPTY)` after
//! [`parkword::left`] found no token. The model found the last two, which
//! the docs had missed. The tick then does what `parker::tick` decides:
//! sweep if other greenlets ran since the leader parked. Every other lost
//! wake-up is a deadlock. Not modelled: the probe that finds the word, kills
//! of parker waits (their grace ends like a deadline), the tick's timing
//! and back-off.
//!
//! Asserted: both greenlets finish (their flag set, they returned from
//! `park`); hub code between greenlets never finds the word `PARKED`; no
//! `park` starts from `PARKED` (it would spin on `PARKED - 1`); at the end
//! nothing is linked and the lot counts no wait.
//!
//! # Does the model bite?
//!
//! Each mutation below was made in `src/patch`, then undone, and loom failed
//! the models named:
//!
//! - no fence in `Table::wake`: every model but `timed_out_wait_vs_wake`
//!   (deadlocks: the waker read a stale zero count and skipped the table
//!   while the waiter's check read the old word);
//! - no fence in `Table::link`: `wait_vs_wake`, `two_waiters_wake_one_each`,
//!   `two_waiters_wake_all` (deadlocks);
//! - `Table::after_park` does not unlink a node whose owner gives up:
//!   `timed_out_wait_vs_wake` ("a node stayed linked") and both
//!   `park_timeout` models;
//! - `parkword::idle` ignores a token (treats `NOTIFIED` like `PARKED`):
//!   every parker model (a deadlock: the hub blocks with a token that came
//!   without a wake-up);
//! - `Table::wake` no longer wakes every parker wait (the broadcast; it
//!   honours `n` for them too): every parker model (deadlocks);
//! - `parkword::woken` does not sweep when a token is already there:
//!   `parker_unpark_first_then_second`, `parker_unpark_second_then_first`
//!   (deadlocks);
//! - `parkword::left` never sweeps, or not when the leader leaves:
//!   `parker_park_timeout_first_vs_unpark` (deadlocks: the wait left
//!   behind has no leader, so no tick).

#![cfg(loom)]

use std::cell::Cell;
use std::collections::VecDeque;
use std::ptr::NonNull;
use std::sync::Arc;

use greenhub::__private::{Lot, Node, Parked, Table, WakeUp, parkword};
use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering::*};
use loom::sync::{Condvar, Mutex};
use loom::thread;

use parkword::{EMPTY, NOTIFIED, PARKED};

/// `loom::model` with at least 3 preemptions (CI's 2 and more: these models
/// are small, 3 takes seconds).
fn model<F: Fn() + Sync + Send + 'static>(f: F) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = b.preemption_bound.map(|p| p.max(3));
    b.check(f);
}

/// A waiter that is a loom thread.
struct ThreadWaiter(thread::Thread);

impl WakeUp for ThreadWaiter {
    fn wake_up(self) {
        self.0.unpark();
    }
}

fn addr_of(word: &AtomicU32) -> usize {
    word as *const AtomicU32 as usize
}

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waited {
    Again,
    Woken,
    TimedOut,
}

/// The hook's `wait` on a loom thread: link if the word still holds
/// `expected`, then park until woken; with `give_up`, the deadline passes
/// right after the link instead.
fn futex_wait(
    table: &Table<ThreadWaiter>,
    word: &AtomicU32,
    expected: u32,
    give_up: bool,
) -> Waited {
    let mut node = Node::new(addr_of(word), u32::MAX, ThreadWaiter(thread::current()));
    let raw = NonNull::from(&mut node);
    // SAFETY: `node` stays on this stack until `after_park` reports it woken
    // or unlinked (this function returns only then).
    if unsafe { table.link(raw, || word.load(SeqCst) == expected) }.is_none() {
        return Waited::Again;
    }
    loop {
        if !give_up {
            thread::park();
        }
        // SAFETY: linked above, not reported woken or unlinked yet.
        match unsafe { table.after_park(raw, || give_up) } {
            Parked::Woken => return Waited::Woken,
            Parked::Linked { .. } => continue,
            Parked::Unlinked { .. } => return Waited::TimedOut,
        }
    }
}

struct Futex {
    table: Table<ThreadWaiter>,
    word: AtomicU32,
}

impl Futex {
    fn new() -> Arc<Futex> {
        Arc::new(Futex {
            table: Table::new(),
            word: AtomicU32::new(0),
        })
    }

    fn addr(&self) -> usize {
        addr_of(&self.word)
    }

    fn assert_clean(&self) {
        assert_eq!(self.table.linked(self.addr()), 0, "a node stayed linked");
        assert_eq!(self.table.waiters(), 0, "the waiter count did not balance");
    }
}

/// One waiter, one waker: the waker opens a gate (0 -> 1) and wakes one.
/// The waiter either sees the open gate (`EAGAIN`) or is woken, and the
/// waker's count says which.
#[test]
fn wait_vs_wake() {
    model(|| {
        let f = Futex::new();
        let f2 = f.clone();
        let waiter = thread::spawn(move || futex_wait(&f2.table, &f2.word, 0, false));
        f.word.store(1, Release);
        let k = f.table.wake(f.addr(), 1, u32::MAX);
        let r = waiter.join().unwrap();
        match r {
            Waited::Again => assert_eq!(k, 0),
            Waited::Woken => assert_eq!(k, 1),
            Waited::TimedOut => unreachable!(),
        }
        f.assert_clean();
    });
}

/// Two waiters on a semaphore (the word counts permits), a poster that
/// posts two permits, each followed by `wake(1)`: each waiter takes one
/// permit, and neither wake-up is lost although each wakes only one.
#[test]
fn two_waiters_wake_one_each() {
    model(|| {
        let f = Futex::new();
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let f = f.clone();
                thread::spawn(move || {
                    loop {
                        let v = f.word.load(Acquire);
                        if v > 0 {
                            if f.word.compare_exchange(v, v - 1, Acquire, Relaxed).is_ok() {
                                return;
                            }
                            continue;
                        }
                        futex_wait(&f.table, &f.word, 0, false);
                    }
                })
            })
            .collect();
        for _ in 0..2 {
            f.word.fetch_add(1, Release);
            let k = f.table.wake(f.addr(), 1, u32::MAX);
            assert!(k <= 1, "wake(1) woke {k}");
        }
        for w in waiters {
            w.join().unwrap();
        }
        assert_eq!(f.word.load(Relaxed), 0);
        f.assert_clean();
    });
}

/// Two waiters behind a gate, one `wake(all)`: both pass.
#[test]
fn two_waiters_wake_all() {
    model(|| {
        let f = Futex::new();
        let woken = Arc::new(AtomicUsize::new(0));
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let (f, woken) = (f.clone(), woken.clone());
                thread::spawn(move || {
                    while f.word.load(Acquire) == 0 {
                        if futex_wait(&f.table, &f.word, 0, false) == Waited::Woken {
                            woken.fetch_add(1, Relaxed);
                        }
                    }
                })
            })
            .collect();
        f.word.store(1, Release);
        let k = f.table.wake(f.addr(), usize::MAX, u32::MAX);
        for w in waiters {
            w.join().unwrap();
        }
        assert_eq!(
            k,
            woken.load(Relaxed),
            "the count and the woken waits differ"
        );
        f.assert_clean();
    });
}

/// A waiter whose deadline passes (it unlinks itself) races a wake: the
/// wake's count and the waiter's outcome agree, and nothing dangles.
#[test]
fn timed_out_wait_vs_wake() {
    model(|| {
        let f = Futex::new();
        let f2 = f.clone();
        let waiter = thread::spawn(move || futex_wait(&f2.table, &f2.word, 0, true));
        f.word.store(1, Release);
        let k = f.table.wake(f.addr(), 1, u32::MAX);
        let r = waiter.join().unwrap();
        match r {
            Waited::Again | Waited::TimedOut => assert_eq!(k, 0, "{r:?} but counted as woken"),
            Waited::Woken => assert_eq!(k, 1),
        }
        f.assert_clean();
    });
}

// ---------------------------------------------------------------------------
// The shared parker (b)
// ---------------------------------------------------------------------------

/// What the greenlets' waiter wakes: a hub. Pushes `(greenlet, wait)` onto
/// the hub's queue; from another thread it also rings the hub's poller.
struct GreenWaiter {
    g: usize,
    wait: u32,
    hub: Arc<Hub>,
}

impl WakeUp for GreenWaiter {
    fn wake_up(self) {
        self.hub
            .ready
            .lock()
            .unwrap()
            .push_back((self.g, self.wait));
        if thread::current().id() != self.hub.id {
            let mut p = self.hub.poller.lock().unwrap();
            p.rung = true;
            self.hub.cv.notify_one();
        }
    }
}

#[derive(Default)]
struct Poller {
    rung: bool,
    /// The unparker is done (the model's end; see `block`).
    done: bool,
}

/// What other threads share with the hub.
struct Hub {
    id: thread::ThreadId,
    word: AtomicU32,
    table: Table<GreenWaiter>,
    lot: &'static Lot,
    flags: [AtomicBool; 2],
    ready: Mutex<VecDeque<(usize, u32)>>,
    /// Ghost state (not part of the protocol, so not a loom atomic): how
    /// many `unpark`s swapped in their token.
    unparks: std::sync::atomic::AtomicUsize,
    poller: Mutex<Poller>,
    cv: Condvar,
}

impl Hub {
    fn addr(&self) -> usize {
        addr_of(&self.word)
    }

    /// std's `Thread::unpark` of the hub's thread, its futex wake through
    /// the hook (`FUTEX_WAKE`, one).
    fn unpark(&self) {
        let prev = self.word.swap(NOTIFIED, Release);
        self.unparks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if prev == PARKED {
            self.table.wake(self.addr(), 1, u32::MAX);
        }
    }
}

/// Where a greenlet's code is.
#[derive(Clone, Copy)]
enum Step {
    /// `while !flag`: check its flag, else `park()`.
    Check,
    /// std's `futex_wait(&state, PARKED)`: the hook's parker wait.
    FutexWait,
    /// Suspended in the hook's parker wait.
    Waiting {
        node: NonNull<Node<GreenWaiter>>,
        wait: u32,
        /// `local.runs` when it last parked.
        runs: u64,
        leader: bool,
        /// The wait has a deadline (`park_timeout`).
        deadline: bool,
    },
    /// Back from the futex wait: std's `compare_exchange(NOTIFIED, EMPTY)`.
    /// `woken`: `Hub::unparks` before the woken wait stored its token.
    AfterFutex {
        woken: Option<usize>,
    },
    /// `park_timeout` back from its futex wait: std's `swap(EMPTY)`, then
    /// it returns. `woken` as for `AfterFutex`; `left`: the wait timed out,
    /// and `parkword::left` woke the others (or not).
    AfterTimed {
        woken: Option<usize>,
        left: Option<bool>,
    },
    Done,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Resume {
    Start,
    Woken,
    Tick,
    Deadline,
}

/// The hub's own state (its thread only).
struct Local {
    hub: Arc<Hub>,
    steps: [Cell<Step>; 2],
    /// Greenlet `g` makes one `park_timeout` call instead of its flag loop.
    timed: [bool; 2],
    waits: Cell<u32>,
    /// `parker.rs`'s `local.runs`.
    runs: Cell<u64>,
    guard: Cell<bool>,
    /// A running greenlet took a token that may be another's while a parker
    /// wait was linked (see the module docs: what the tick is for).
    token_taken: Cell<bool>,
    ticks: Cell<u32>,
}

impl Local {
    /// Runs greenlet `g` until it suspends or finishes.
    fn run(&self, g: usize, why: Resume) {
        let h = &*self.hub;
        for _ in 0..16 {
            match self.steps[g].get() {
                Step::Check => {
                    if self.timed[g] {
                        // std's `park_timeout`: a token, or a futex wait
                        // with a deadline.
                        let prev = h.word.fetch_sub(1, Acquire);
                        assert_ne!(prev, PARKED, "park from PARKED: spins on PARKED - 1");
                        if prev == NOTIFIED {
                            if h.lot.count() > 0 {
                                self.token_taken.set(true);
                            }
                            self.steps[g].set(Step::Done);
                            return;
                        }
                        self.steps[g].set(Step::FutexWait);
                        continue;
                    }
                    if h.flags[g].load(Acquire) {
                        self.steps[g].set(Step::Done);
                        return;
                    }
                    // std's `park`.
                    let prev = h.word.fetch_sub(1, Acquire);
                    assert_ne!(prev, PARKED, "park from PARKED: spins on PARKED - 1");
                    if prev == NOTIFIED {
                        if h.lot.count() > 0 {
                            self.token_taken.set(true);
                        }
                        continue;
                    }
                    self.steps[g].set(Step::FutexWait);
                }
                Step::FutexWait => {
                    let wait = self.waits.get();
                    self.waits.set(wait + 1);
                    let waiter = GreenWaiter {
                        g,
                        wait,
                        hub: self.hub.clone(),
                    };
                    let node = Box::into_raw(Box::new(Node::parker(h.addr(), waiter, h.lot)));
                    // SAFETY: from `Box::into_raw`.
                    let node = unsafe { NonNull::new_unchecked(node) };
                    // SAFETY: the box is freed only once `after_park`
                    // reports the node woken (below), or now if not linked.
                    match unsafe { parkword::link(&h.table, node, &h.word) } {
                        None => {
                            // SAFETY: not linked: ours alone.
                            drop(unsafe { Box::from_raw(node.as_ptr()) });
                            self.steps[g].set(if self.timed[g] {
                                Step::AfterTimed {
                                    woken: None,
                                    left: None,
                                }
                            } else {
                                Step::AfterFutex { woken: None }
                            });
                        }
                        Some(leader) => {
                            self.guard.set(true);
                            self.steps[g].set(Step::Waiting {
                                node,
                                wait,
                                runs: self.runs.get(),
                                leader,
                                deadline: self.timed[g],
                            });
                            return;
                        }
                    }
                }
                Step::Waiting {
                    node,
                    wait,
                    runs,
                    deadline,
                    ..
                } => {
                    let give_up = why == Resume::Deadline;
                    let unparks = h.unparks.load(std::sync::atomic::Ordering::Relaxed);
                    // SAFETY: linked, not yet reported woken or unlinked.
                    match unsafe { h.table.after_park(node, || give_up) } {
                        Parked::Woken => {
                            // SAFETY: unlinked by a waker: ours alone.
                            drop(unsafe { Box::from_raw(node.as_ptr()) });
                            parkword::woken(&h.table, h.addr(), &h.word);
                            let woken = Some(unparks);
                            self.steps[g].set(if deadline {
                                Step::AfterTimed { woken, left: None }
                            } else {
                                Step::AfterFutex { woken }
                            });
                        }
                        Parked::Linked { leader } => {
                            assert!(why != Resume::Woken, "resumed by a wake but still linked");
                            assert!(!give_up);
                            if why == Resume::Tick && leader {
                                // `parker::tick`: sweep if others ran.
                                if self.runs.get().wrapping_sub(runs) > 1 {
                                    parkword::sweep(&h.table, h.addr());
                                }
                            }
                            self.steps[g].set(Step::Waiting {
                                node,
                                wait,
                                runs: self.runs.get(),
                                leader,
                                deadline,
                            });
                            return;
                        }
                        Parked::Unlinked { leader, others } => {
                            assert!(give_up);
                            // SAFETY: unlinked by its owner: ours alone.
                            drop(unsafe { Box::from_raw(node.as_ptr()) });
                            let swept = parkword::left(&h.table, h.addr(), &h.word, leader, others);
                            self.steps[g].set(Step::AfterTimed {
                                woken: None,
                                left: Some(swept),
                            });
                        }
                    }
                }
                Step::AfterTimed { woken, left } => {
                    let prev = h.word.swap(EMPTY, Acquire);
                    // A token that came after the wait's own look at the
                    // word is eaten here: after a woken wait stored its
                    // own (as in `AfterFutex`), or after `parkword::left`
                    // found none (its load may not see an `unpark` that
                    // this swap does).
                    let now = h.unparks.load(std::sync::atomic::Ordering::Relaxed);
                    let unseen = woken.is_some_and(|u| u != now) || left == Some(false);
                    if prev == NOTIFIED && unseen && h.lot.count() > 0 {
                        self.token_taken.set(true);
                    }
                    self.steps[g].set(Step::Done);
                    return;
                }
                Step::AfterFutex { woken } => {
                    let r = h.word.compare_exchange(NOTIFIED, EMPTY, Acquire, Acquire);
                    // An `unpark` since the woken wait stored its own token:
                    // two tokens in one word, and this one takes both.
                    let now = h.unparks.load(std::sync::atomic::Ordering::Relaxed);
                    if r.is_ok() && woken.is_some_and(|u| u != now) && h.lot.count() > 0 {
                        self.token_taken.set(true);
                    }
                    self.steps[g].set(if r.is_ok() {
                        Step::Check
                    } else {
                        Step::FutexWait
                    });
                }
                Step::Done => unreachable!("resumed after it finished"),
            }
        }
        panic!("greenlet {g} spins in park");
    }

    /// The guard's `after` (`parker::guard_after`).
    fn after(&self) {
        if !self.guard.get() {
            return;
        }
        let h = &*self.hub;
        if parkword::settle(&h.table, h.addr(), &h.word, h.lot) > 0 {
            self.runs.set(self.runs.get().wrapping_add(1));
        } else {
            self.guard.set(false);
        }
    }

    /// The next greenlet to resume, from the hub's queue (stale wakes of an
    /// earlier wait skipped, as a greenlet's state word does).
    fn next(&self) -> Option<usize> {
        loop {
            let (g, wait) = self.hub.ready.lock().unwrap().pop_front()?;
            if let Step::Waiting { wait: w, .. } = self.steps[g].get() {
                if w == wait {
                    return Some(g);
                }
            }
        }
    }

    /// A wait with a deadline, whose timer may fire.
    fn deadline_due(&self) -> Option<usize> {
        (0..2).find(|&g| matches!(self.steps[g].get(), Step::Waiting { deadline: true, .. }))
    }

    /// The leader waiting for its tick, if a tick may fire.
    fn tick_due(&self) -> Option<usize> {
        if !self.token_taken.get() {
            return None;
        }
        (0..2).find(|&g| matches!(self.steps[g].get(), Step::Waiting { leader: true, .. }))
    }

    fn all_done(&self) -> bool {
        self.steps.iter().all(|s| matches!(s.get(), Step::Done))
    }

    /// The hub loop.
    fn run_hub(&self) {
        let h = &*self.hub;
        let mut start: VecDeque<usize> = (0..2).collect();
        loop {
            let next = match start.pop_front() {
                Some(g) => Some((g, Resume::Start)),
                None => self.next().map(|g| (g, Resume::Woken)),
            };
            if let Some((g, why)) = next {
                assert_ne!(
                    h.word.load(SeqCst),
                    PARKED,
                    "hub code finds the word PARKED"
                );
                self.run(g, why);
                self.after();
                continue;
            }
            if self.all_done() {
                break;
            }
            let block = !self.guard.get() || parkword::idle(&h.table, h.addr(), &h.word, h.lot);
            let tick = {
                let mut p = h.poller.lock().unwrap();
                loop {
                    if p.rung || !block {
                        p.rung = false;
                        break None;
                    }
                    if let Some(g) = self.deadline_due() {
                        break Some((g, Resume::Deadline));
                    }
                    if p.done {
                        if let Some(g) = self.tick_due() {
                            break Some((g, Resume::Tick));
                        }
                    }
                    p = h.cv.wait(p).unwrap();
                }
            };
            if !block {
                // A poll without blocking: the other threads run meanwhile
                // (loom needs the hint; the hub's wake-ups may still be in
                // flight on the unparker's thread).
                thread::yield_now();
            }
            if self.guard.get() {
                // `guard_settle`.
                let _ = parkword::settle(&h.table, h.addr(), &h.word, h.lot);
            }
            if let Some((g, why)) = tick {
                self.ticks.set(self.ticks.get() + 1);
                assert!(self.ticks.get() < 8, "the leader ticks without end");
                assert_ne!(
                    h.word.load(SeqCst),
                    PARKED,
                    "hub code finds the word PARKED"
                );
                self.run(g, why);
                self.after();
            }
        }
        assert_eq!(h.table.linked(h.addr()), 0, "a parker wait stayed linked");
        assert_eq!(h.table.waiters(), 0);
        assert_eq!(h.lot.count(), 0);
        assert_ne!(h.word.load(SeqCst), PARKED);
    }
}

/// The hub (this thread) runs greenlets 0 and 1 (a `while !flag { park() }`
/// loop, or one `park_timeout` where `timed`); another thread sets the flags
/// in `order`, each followed by an `unpark`.
fn parker_model(order: &'static [usize], timed: [bool; 2]) {
    model(move || {
        let hub = Arc::new(Hub {
            id: thread::current().id(),
            word: AtomicU32::new(EMPTY),
            table: Table::new(),
            lot: Box::leak(Box::new(Lot::new())),
            flags: [AtomicBool::new(false), AtomicBool::new(false)],
            ready: Mutex::new(VecDeque::new()),
            unparks: std::sync::atomic::AtomicUsize::new(0),
            poller: Mutex::new(Poller::default()),
            cv: Condvar::new(),
        });
        let h2 = hub.clone();
        let unparker = thread::spawn(move || {
            for &g in order {
                h2.flags[g].store(true, Release);
                h2.unpark();
            }
            h2.poller.lock().unwrap().done = true;
            h2.cv.notify_one();
        });
        let local = Local {
            hub: hub.clone(),
            steps: [Cell::new(Step::Check), Cell::new(Step::Check)],
            timed,
            waits: Cell::new(0),
            runs: Cell::new(0),
            guard: Cell::new(false),
            token_taken: Cell::new(false),
            ticks: Cell::new(0),
        };
        local.run_hub();
        unparker.join().unwrap();
    });
}

/// The flag of the greenlet that runs first is set first.
#[test]
fn parker_unpark_first_then_second() {
    parker_model(&[0, 1], [false, false]);
}

/// The flag of the greenlet that runs second is set first: the second
/// greenlet may take the first one's token on std's fast path (the sweep's
/// case).
#[test]
fn parker_unpark_second_then_first() {
    parker_model(&[1, 0], [false, false]);
}

/// Greenlet 1's `park_timeout` times out (its wait unlinks itself) while
/// greenlet 0 waits for its flag: the leaving wait may be the leader, and
/// std's `swap(EMPTY)` after it may eat greenlet 0's token.
#[test]
fn parker_park_timeout_vs_unpark() {
    parker_model(&[0], [false, true]);
}

/// As `parker_park_timeout_vs_unpark`, the timed greenlet running first.
#[test]
fn parker_park_timeout_first_vs_unpark() {
    parker_model(&[1], [true, false]);
}
