//! Loom models of **migration**: how a started migratable greenlet moves
//! between hubs, as `src/hub/migrate.rs` describes in its module docs
//! (*owned -> in transit -> owned*), and why a waker may read the greenlet's
//! `owner` (`Header::owner`/`owner_arc` in `src/greenlet/task.rs`) without
//! racing with the hub that adopts it (`Header::migrate_to`).
//!
//! The real [`State`], [`Inbox`] and [`LocalQueue`]/[`Stealer`] (under loom,
//! the mutex-based stand-in for `crossbeam-deque`) are driven the way the
//! runtime drives them:
//!
//! - the greenlet has started on hub 0 and is parked there (`owner` is 0);
//! - a waker calls [`State::wake`] and, when it returns `true`, reads `owner`
//!   and hands the greenlet to that hub the way `hub::schedule` does from
//!   another thread: push to the hub's inbox, then unpark the hub (loom's
//!   thread park stands in for the hub's poller, as in `tests/loom_park.rs`);
//! - hub 0 (a loom thread) waits for its inbox, drains it and *releases* the
//!   greenlet (`take_inbox` -> `requeue` -> `release`): pushes it on its own
//!   stealable deque. Then it pops its deque (`next_local`); if it gets the
//!   greenlet back it runs it (`run_task`);
//! - hub 1 (a loom thread) searches: it steals from hub 0's deque until it
//!   gets the greenlet or knows that hub 0 took it; if it gets it, it runs
//!   it;
//! - whichever hub runs it first *adopts* it (`run_task` -> `adopt`: reads
//!   `owner`, and writes its own index there unless it is already the
//!   owner), then resumes it, then completes it when its closure returns, or
//!   commits its park (`park_commit`) and waits for its inbox when it parks.
//!
//! Stand-ins: the greenlet's stack and its `owner` field are loom
//! `UnsafeCell`s. The stack is written by whoever owns the greenlet at that
//! moment (the waker that won it from `PARKED` until it pushes it, the hub
//! that resumes it). `owner` is written only by a hub that has the greenlet
//! dequeued (`adopt`) and read by the adopting hub and by a waker right after
//! its `wake` returned `true`. (The real `owner` is an `AtomicPtr`, so the
//! hazard there is not a torn read but a waker using, or queueing onto, a hub
//! `Arc` that an adopter is releasing at the same time; the `UnsafeCell`
//! makes loom check the happens-before edges that the `# Safety` of
//! `migrate_to` relies on.)
//!
//! Invariants asserted by every model:
//!
//! - **one run, one owner**: the greenlet is taken off the deque by exactly
//!   one hub, resumed by it, and completes; loom fails the model if two
//!   accesses to the stack or to `owner` are not ordered by happens-before
//!   (in particular, the waker's read of `owner` must happen before any
//!   adopter's write, through the inbox and the deque);
//! - **pushed to the right hub**: a waker pushes the greenlet to the hub that
//!   owns it, and a hub that parks it gets it back from its own inbox (a push
//!   to the wrong inbox would leave the owner waiting forever, which loom
//!   reports as a deadlock);
//! - **nothing left behind**: every inbox and deque is empty at the end.
//!
//! Does the model bite? Each mutation below was tried, then undone, and
//! loom failed the models named with "Causality violation: Concurrent read
//! and write accesses" on `owner`:
//!
//! - the waker reads `owner` *before* its `wake` (and pushes to that hub if
//!   the wake wins): `migrate_then_park_again` (the second waker's read
//!   against hub 1's adoption write). `migrate_on_wake` cannot catch this:
//!   with one wake-up nobody can adopt the greenlet before it;
//! - hub 1 writes `owner` *before* it has the greenlet dequeued (the write
//!   moved in front of `steal_into`): both models (hub 1's write against the
//!   first waker's read).

#![cfg(loom)]

mod loom_common;

use loom_common::wait_inbox;

use greenhub::__private::{Inbox, LocalQueue, State, Stealer};
use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use loom::thread;

/// The parts of one greenlet that migration touches.
struct Greenlet {
    state: State,
    /// Stands in for the greenlet's stack: written by whoever owns the
    /// greenlet at that moment (see the file docs).
    stack: UnsafeCell<usize>,
    /// Stands in for `Header::owner`: the index of the owning hub.
    owner: UnsafeCell<usize>,
    /// Set by the hub that took the greenlet off a deque.
    taken: AtomicBool,
    /// How many times a hub took it off a deque.
    dequeued: AtomicUsize,
    /// How many wakers have started their `wake` (set just before it).
    wakes_started: AtomicUsize,
    /// How many `wake` calls returned `true` (and pushed the greenlet).
    wins: AtomicUsize,
}

// SAFETY: `stack` and `owner` are the only `!Sync` parts. Every access to
// them goes through loom's `UnsafeCell`, which checks that no two accesses
// race; proving that they never do is what the models are for.
unsafe impl Sync for Greenlet {}

impl Greenlet {
    /// A greenlet that started on hub 0 and parked there.
    fn parked_on_hub0() -> Greenlet {
        let g = Greenlet {
            // Join interest plays no part in migration.
            state: State::new(false),
            stack: UnsafeCell::new(0),
            owner: UnsafeCell::new(0),
            taken: AtomicBool::new(false),
            dequeued: AtomicUsize::new(0),
            wakes_started: AtomicUsize::new(0),
            wins: AtomicUsize::new(0),
        };
        // Hub 0 ran it up to its first `park()`: the final CAS.
        assert!(g.state.park_commit());
        g
    }

    /// The current owner works on the greenlet's stack.
    fn touch_stack(&self) {
        // SAFETY: only the greenlet's owner of the moment calls this; loom
        // reports it if two callers are not ordered by happens-before.
        self.stack.with_mut(|s| unsafe { *s += 1 });
    }

    /// `Header::owner`, read by a waker that won the greenlet or by the hub
    /// that has it dequeued.
    fn owner(&self) -> usize {
        // SAFETY: the readers above are ordered after the last write (the
        // adopting hub's); loom reports it if they are not.
        self.owner.with(|p| unsafe { *p })
    }
}

/// The hubs' inboxes, by hub index.
type Inboxes = [Inbox<usize>; 2];

/// A waker: wakes the greenlet and, if it moved it out of `PARKED`, pushes
/// it to the hub that owns it (`hub::schedule` from another thread).
fn waker(g: &Greenlet, inboxes: &Inboxes, hubs: &[thread::Thread]) {
    g.wakes_started.fetch_add(1, SeqCst);
    if g.state.wake() {
        // We own the parked greenlet until the hub takes it; only now may
        // `owner` be read (nobody has the greenlet dequeued).
        g.touch_stack();
        let owner = g.owner();
        g.wins.fetch_add(1, SeqCst);
        inboxes[owner].push(0).expect("inbox closed");
        hubs[owner].unpark();
    }
}

/// `run_task` on hub `me` for the greenlet it just took off a deque: adopt
/// it, resume it, and then, if `parks` (the closure calls `park()` once
/// more after the move, then returns), commit its park and wait for the
/// wake-up in this hub's inbox. The greenlet completes at the end.
fn run_migrated(g: &Greenlet, me: usize, inbox: &Inbox<usize>, parks: bool) {
    g.taken.store(true, SeqCst);
    g.dequeued.fetch_add(1, SeqCst);
    // `adopt`: the old owner's index is only replaced if it is not ours.
    if g.owner() != me {
        // SAFETY: we have the greenlet dequeued: nobody else reads or writes
        // its owner now (`hub::migrate`); loom reports it if that is wrong.
        g.owner.with_mut(|p| unsafe { *p = me });
    }
    // Back from the `park()` the greenlet was parked in on hub 0.
    g.touch_stack();
    if parks {
        // `park_greenlet`: a token makes the park return at once; else the
        // greenlet suspends and the hub makes the final CAS.
        if !g.state.take_notified() && g.state.park_commit() {
            // Parked on this hub: the second wake-up must come here.
            assert_eq!(wait_inbox(inbox), 1, "greenlet pushed twice");
        }
        // The park returned: resumed again (at once, or from the inbox).
        g.touch_stack();
        assert_eq!(
            g.wakes_started.load(SeqCst),
            2,
            "park returned before the second wake-up"
        );
    }
    // The closure returned.
    let prev = g.state.complete();
    assert!(!prev.is_complete(), "completed twice");
}

/// Hub 0: waits for the wake-up in its inbox, releases the greenlet onto
/// its deque, then pops the deque; runs the greenlet if it got it back.
fn hub0(g: &Greenlet, inbox: &Inbox<usize>, fresh: &LocalQueue<usize>, parks: bool) {
    assert_eq!(wait_inbox(inbox), 1, "greenlet pushed twice");
    // `release`.
    fresh.push(0);
    // `next_local`: only hub 1 can have taken it since the push.
    if fresh.pop().is_some() {
        run_migrated(g, 0, inbox, parks);
    }
}

/// Hub 1, out of work: steals from hub 0's deque until it gets the greenlet
/// or hub 0 has taken it back; runs it if it stole it.
fn hub1(
    g: &Greenlet,
    inbox: &Inbox<usize>,
    victim: &Stealer<usize>,
    fresh: &LocalQueue<usize>,
    parks: bool,
) {
    while !g.taken.load(SeqCst) {
        if victim.steal_into(fresh).is_some() {
            run_migrated(g, 1, inbox, parks);
            break;
        }
        thread::yield_now();
    }
    assert!(fresh.is_empty(), "a steal moved more than the greenlet");
}

/// Runs one model: hubs 0 and 1 and `nwakers` wakers (each wakes the
/// greenlet once) as loom threads, the main thread checks the end state.
fn model(nwakers: usize, parks: bool) {
    let g = Arc::new(Greenlet::parked_on_hub0());
    let inboxes: Arc<Inboxes> = Arc::new([Inbox::new(), Inbox::new()]);
    let fresh0 = LocalQueue::new();
    let stealer0 = fresh0.stealer();
    let fresh1 = LocalQueue::new();
    let h0 = {
        let (g, inboxes) = (g.clone(), inboxes.clone());
        thread::spawn(move || {
            hub0(&g, &inboxes[0], &fresh0, parks);
            fresh0.is_empty()
        })
    };
    let h1 = {
        let (g, inboxes) = (g.clone(), inboxes.clone());
        thread::spawn(move || {
            hub1(&g, &inboxes[1], &stealer0, &fresh1, parks);
            stealer0.is_empty()
        })
    };
    let hubs = [h0.thread().clone(), h1.thread().clone()];
    let wakers: Vec<_> = (0..nwakers)
        .map(|_| {
            let (g, inboxes, hubs) = (g.clone(), inboxes.clone(), hubs.clone());
            thread::spawn(move || waker(&g, &inboxes, &hubs))
        })
        .collect();
    for w in wakers {
        w.join().unwrap();
    }
    assert!(h0.join().unwrap(), "hub 0's deque not empty");
    assert!(h1.join().unwrap(), "hub 0's deque not empty");

    assert_eq!(g.dequeued.load(SeqCst), 1, "greenlet taken by two hubs");
    // One touch per winning waker, one per resume: the first from the
    // deque, then one more after the second park.
    let resumes = 1 + parks as usize;
    // SAFETY: every thread that touched the stack has been joined.
    let touches = g.stack.with(|s| unsafe { *s });
    assert_eq!(
        touches,
        g.wins.load(SeqCst) + resumes,
        "greenlet resumed more or less than once per wake-up"
    );
    assert!(g.state.load().is_complete());
    for inbox in inboxes.iter() {
        assert!(inbox.is_empty(), "greenlet pushed after it completed");
    }
    // Late wake-ups of a completed greenlet are dropped.
    assert!(!g.state.wake());
}

/// A parked greenlet of hub 0 is woken from another thread; hub 0 releases
/// it onto its deque, where hub 1 may steal it: it runs exactly once, on
/// one hub or the other, and the waker's read of `owner` is ordered before
/// the adopting hub's write.
#[test]
fn migrate_on_wake() {
    loom::model(|| model(1, false));
}

/// As `migrate_on_wake`, with two wakers and a greenlet that parks once more
/// after it moved: the waker that wins the first wake-up reads hub 0 as the
/// owner; the one that wins the second must see the adopting hub's write
/// (hub 1, if it stole it) without a race and push to that hub's inbox.
/// A wake-up that lands while the greenlet is in transit or running only
/// leaves a token.
#[test]
fn migrate_then_park_again() {
    loom::model(|| model(2, true));
}
