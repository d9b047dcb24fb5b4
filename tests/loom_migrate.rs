//! Loom models of **migration**: how a started migratable greenlet moves
//! between hubs, as `src/hub/migrate.rs` describes in its module docs
//! (*wake*, *requeue*, *adopt*), and why a waker may read the greenlet's
//! `owner` (`Header::owner`/`owner_arc` in `src/greenlet/task.rs`) without
//! racing with the hub that adopts it (`Header::migrate_to`).
//!
//! The moves are greenhub's own steps, driven the way the runtime drives
//! them, over the real [`State`], `Inbox`/`Doorbell` (`loom_common`) and
//! [`StealQueue`]/[`Stealer`] (under loom, the mutex-based stand-in for
//! `crossbeam-deque`):
//!
//! - the greenlet has started on hub 0 and is parked there (`owner` is 0);
//! - a waker calls [`State::wake`] and, when it returns `true`, reads `owner`
//!   and hands the greenlet to that hub the way `hub::schedule` does from
//!   another thread (the real `Inbox::push_and_ring`; loom's thread park
//!   stands in for the hub's poller, as in `tests/loom_park.rs`);
//! - hub 0 (a loom thread) waits for its inbox (the real
//!   `Doorbell::idle_with`), drains it and *releases* the greenlet with the
//!   real [`release_to`] (`take_inbox` -> `requeue` -> `release`: push it on
//!   its own stealable deque). Then it pops its deque
//!   (`next_local`); if it gets the greenlet back it runs it (`run_task`);
//! - hub 1 (a loom thread) searches: it steals from hub 0's deque until it
//!   gets the greenlet or knows that hub 0 took it; if it gets it, it runs
//!   it;
//! - whichever hub runs it first *adopts* it with the real [`adopt_by`]
//!   (`run_task` -> `adopt`: reads `owner`, and writes its own index there
//!   unless it is already the owner), then runs it with the
//!   hub's real resume loop ([`run_until_suspended`]: the final CAS when it
//!   parks), waits for its inbox when it parked, and completes it when its
//!   closure returns.
//!
//! A third model, `adopt_on_wake`, has a *hub* wake the greenlet: hub 1
//! wins it from `PARKED` and queues it on itself whoever owns it (adopt on
//! wake, `hub::schedule`), racing with a plain thread's wake-up, which
//! pushes it to its owner's inbox; the greenlet parks once more wherever it
//! ran, and the wake-up that wins that park runs it again, on hub 1 or
//! through its owner's inbox.
//!
//! Stand-ins: the greenlet's stack and its `owner` field are loom
//! `UnsafeCell`s. The stack is
//! written by whoever owns the greenlet at that moment (the waker that won
//! it from `PARKED` until it pushes it, the hub that resumes it). `owner` is
//! written only by a hub that has the greenlet dequeued (`adopt_by`) and
//! read by the adopting hub and by a waker right after its `wake` returned
//! `true`. (The real `owner` is an `AtomicPtr`, so the hazard there is not a
//! torn read but a waker using, or queueing onto, a hub `Arc` that an
//! adopter is releasing at the same time; the `UnsafeCell` makes loom check
//! the happens-before edges that the `# Safety` of `migrate_to` relies on.)
//! Glue that stays here: the greenlet's own code between suspensions (the
//! shared live set of migratable greenlets plays no part in the moves).
//!
//! Invariants asserted by every model:
//!
//! - **one run, one owner**: the greenlet is taken off the deque by exactly
//!   one hub, adopted and resumed by it, and completes; loom fails the
//!   model if two accesses to the stack or to `owner` are not ordered by
//!   happens-before (in particular, the waker's read of `owner` must happen
//!   before any adopter's write, through the inbox and the deque);
//! - **pushed to the right hub**: a waker pushes the greenlet to the hub that
//!   owns it, and a hub that parks it gets it back from its own inbox (a push
//!   to the wrong inbox would leave the owner waiting forever, which loom
//!   reports as a deadlock);
//! - **nothing left behind**: every inbox and deque is empty at the end.
//!
//! Does the model bite? Each mutation below was tried, then undone, and
//! loom failed the models named. In `src`:
//!
//! - `adopt_by` never takes the greenlet over: `migrate_then_park_again`
//!   (deadlock: the second wake-up goes to hub 0, which has moved on).
//!   `migrate_on_wake` cannot catch this: nobody reads `owner` after the
//!   move; nor can `adopt_on_wake`, where hub 0 still runs whatever reaches
//!   its inbox;
//! - `run_until_suspended` ignores a failed final CAS:
//!   `migrate_then_park_again` (deadlock) and `adopt_on_wake` (the lost
//!   wake-up leaves a hub waiting until loom gives up on the branch count);
//! - `State::wake` reports a win whenever the greenlet is not complete, so
//!   a wake-up of a running greenlet queues it a second time:
//!   `adopt_on_wake` ("Causality violation: Concurrent write accesses" on
//!   the stack: two hubs run it at once);
//! - `Inbox::push_and_ring` unparks before it pushes: both models (hub 0
//!   never wakes; hub 1 spins until loom gives up on the branch count).
//!
//! In the model's glue, checking the claims about `owner`:
//!
//! - the waker reads `owner` *before* its `wake` (and pushes to that hub if
//!   the wake wins): `migrate_then_park_again` ("Causality violation:
//!   Concurrent read and write accesses" on `owner`: the second waker's read
//!   against hub 1's adoption write). `migrate_on_wake` cannot catch this:
//!   with one wake-up nobody can adopt the greenlet before it;
//! - hub 1 writes `owner` *before* it has the greenlet dequeued (the write
//!   of `adopt_by` moved in front of `steal_into`): both models (hub 1's
//!   write against the first waker's read).

#![cfg(loom)]

mod loom_common;

use loom_common::Remote;

use greenhub::__private::{
    Migrant, Ran, Resumed, State, StealQueue, Stealer, adopt_by, release_to, run_until_suspended,
};
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

/// What the deques hold: a reference to the greenlet (`TaskRef`).
struct Task(Arc<Greenlet>);

impl Migrant for Task {
    type Hub = usize;

    fn owned_by(&self, hub: &usize) -> bool {
        self.0.owner() == *hub
    }

    unsafe fn migrate_to(&self, hub: &usize) {
        // SAFETY: the caller has the greenlet dequeued: nobody else reads or
        // writes its owner now (`hub::migrate`); loom reports it if that is
        // wrong.
        self.0.owner.with_mut(|p| unsafe { *p = *hub });
    }
}

/// The hubs' remote halves, by hub index.
type Remotes = [Remote; 2];

/// A waker: wakes the greenlet and, if it moved it out of `PARKED`, pushes
/// it to the hub that owns it (`hub::schedule` from another thread).
fn waker(g: &Greenlet, remotes: &Remotes, hubs: &[thread::Thread]) {
    g.wakes_started.fetch_add(1, SeqCst);
    if g.state.wake() {
        // We own the parked greenlet until the hub takes it; only now may
        // `owner` be read (nobody has the greenlet dequeued).
        g.touch_stack();
        let owner = g.owner();
        g.wins.fetch_add(1, SeqCst);
        remotes[owner].push(0, &hubs[owner]);
    }
}

/// The greenlet's closure from where it stopped to its next suspension:
/// it was parked on hub 0 and, if `parks`, calls `park()` once more after
/// the move, then returns. `second`: this resume returns from that second
/// park.
fn resume(g: &Greenlet, parks: bool, second: &mut bool) -> Resumed {
    if !*second {
        // Back from the `park()` the greenlet was parked in on hub 0.
        g.touch_stack();
        if !parks {
            return Resumed::Return;
        }
        *second = true;
        // `park_greenlet_until`: a token makes the park return at once;
        // else the greenlet suspends and the hub makes the final CAS.
        if !g.state.take_notified() {
            return Resumed::Park;
        }
    }
    // The second park returned: resumed again (at once, or from the inbox).
    g.touch_stack();
    assert_eq!(
        g.wakes_started.load(SeqCst),
        2,
        "park returned before the second wake-up"
    );
    Resumed::Return
}

/// `run_task` on hub `me` for the greenlet it just took off a deque: adopt
/// it, then run it (the real resume loop), waiting for this hub's inbox
/// whenever it parked for good; complete it at the end.
fn run_migrated(task: &Task, me: usize, remote: &Remote, parks: bool) {
    let g = &*task.0;
    g.taken.store(true, SeqCst);
    g.dequeued.fetch_add(1, SeqCst);
    // `run_task_as::<true>`: a started migratable greenlet is adopted first.
    // SAFETY: we have it dequeued.
    unsafe { adopt_by(task, &me) };
    let mut second = false;
    loop {
        match run_until_suspended(&g.state, || resume(g, parks, &mut second)) {
            Ran::Returned => break,
            // Parked on this hub: the second wake-up must come here.
            Ran::Parked => assert_eq!(remote.wait_inbox(), 1, "greenlet pushed twice"),
            Ran::Yielded => unreachable!("the greenlet never yields"),
            Ran::Abandoned => unreachable!("the model never abandons a greenlet"),
        }
    }
    // The closure returned.
    let prev = g.state.complete();
    assert!(!prev.is_complete(), "completed twice");
}

/// Hub 0: waits for the wake-up in its inbox, releases the greenlet onto
/// its deque, then pops the deque; runs the greenlet if it got it back.
fn hub0(g: &Arc<Greenlet>, remote: &Remote, fresh: &StealQueue<Task>, parks: bool) {
    assert_eq!(remote.wait_inbox(), 1, "greenlet pushed twice");
    // `release` (`release_to`); no hub goes idle
    // in these models, so `notify_one` would find no hub to wake.
    release_to(fresh, Task(g.clone()), || {});
    // `next_local`: only hub 1 can have taken it since the push.
    if let Some(task) = fresh.pop() {
        run_migrated(&task, 0, remote, parks);
    }
}

/// Hub 1, out of work: steals from hub 0's deque until it gets the greenlet
/// or hub 0 has taken it back; runs it if it stole it.
fn hub1(
    g: &Greenlet,
    remote: &Remote,
    victim: &Stealer<Task>,
    fresh: &StealQueue<Task>,
    parks: bool,
) {
    while !g.taken.load(SeqCst) {
        if let Some(task) = victim.steal_into(fresh) {
            run_migrated(&task, 1, remote, parks);
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
    let remotes: Arc<Remotes> = Arc::new([Remote::new(), Remote::new()]);
    let fresh0 = StealQueue::new();
    let stealer0 = fresh0.stealer();
    let fresh1 = StealQueue::new();
    let h0 = {
        let (g, remotes) = (g.clone(), remotes.clone());
        thread::spawn(move || {
            hub0(&g, &remotes[0], &fresh0, parks);
            fresh0.is_empty()
        })
    };
    let h1 = {
        let (g, remotes) = (g.clone(), remotes.clone());
        thread::spawn(move || {
            hub1(&g, &remotes[1], &stealer0, &fresh1, parks);
            stealer0.is_empty()
        })
    };
    let hubs = [h0.thread().clone(), h1.thread().clone()];
    let wakers: Vec<_> = (0..nwakers)
        .map(|_| {
            let (g, remotes, hubs) = (g.clone(), remotes.clone(), hubs.clone());
            thread::spawn(move || waker(&g, &remotes, &hubs))
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
    check_end(&g, &remotes, 1 + parks as usize);
}

/// The end state of every model, once all its threads are joined: the
/// stack touched once per winning wake-up and once per resume (`resumes`),
/// the greenlet complete, no inbox holding it, and a late wake-up dropped.
fn check_end(g: &Greenlet, remotes: &Remotes, resumes: usize) {
    // SAFETY: every thread that touched the stack has been joined.
    let touches = g.stack.with(|s| unsafe { *s });
    assert_eq!(
        touches,
        g.wins.load(SeqCst) + resumes,
        "greenlet resumed more or less than once per wake-up"
    );
    assert!(g.state.load().is_complete());
    for remote in remotes.iter() {
        assert!(
            remote.inbox.is_empty(),
            "greenlet pushed after it completed"
        );
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
/// A wake-up that lands while the greenlet is queued or running only
/// leaves a token.
#[test]
fn migrate_then_park_again() {
    loom::model(|| model(2, true));
}

// ---- Adopt on wake ----

/// An inbox item that stops a hub's loop (any other item is the greenlet).
const STOP: usize = usize::MAX;

/// `run_task` on hub `me` for the greenlet it took off its own deque, in the
/// adopt-on-wake model: adopt it, run it until it parks or returns. A park
/// ends the run (the next wake-up may come through any hub); a return
/// completes it.
fn run_once(task: &Task, me: usize) {
    let g = &*task.0;
    g.dequeued.fetch_add(1, SeqCst);
    // SAFETY: we have it dequeued.
    unsafe { adopt_by(task, &me) };
    let mut second = g.stack.with(|s| {
        // SAFETY: we own the greenlet (dequeued); loom checks it.
        unsafe { *s > 1 }
    });
    match run_until_suspended(&g.state, || resume(g, true, &mut second)) {
        Ran::Parked => {}
        Ran::Returned => {
            let prev = g.state.complete();
            assert!(!prev.is_complete(), "completed twice");
        }
        Ran::Yielded => unreachable!("the greenlet never yields"),
        Ran::Abandoned => unreachable!("the model never abandons a greenlet"),
    }
}

/// Queues the greenlet on hub `me`'s own deque (`requeue` ->
/// `release_to`), then takes it back off and runs it (`next_local`): with
/// no thief in this model, it is the one there.
fn queue_and_run(g: &Arc<Greenlet>, me: usize, fresh: &StealQueue<Task>) {
    release_to(fresh, Task(g.clone()), || {});
    let task = fresh.pop().expect("our own deque holds the greenlet");
    run_once(&task, me);
}

/// A hub's loop in the adopt-on-wake model: runs every greenlet that comes
/// through its inbox, until `STOP`.
fn hub_loop(g: &Arc<Greenlet>, me: usize, remote: &Remote, fresh: &StealQueue<Task>) {
    let mut items = std::collections::VecDeque::new();
    loop {
        while let Some(item) = items.pop_front() {
            if item == STOP {
                return;
            }
            queue_and_run(g, me, fresh);
        }
        if remote.inbox.drain_into(&mut items) == 0 {
            remote.doorbell.idle_with(thread::park);
        }
    }
}

/// Hub `me` wakes the greenlet (`hub::schedule` on a hub): if it moved it
/// out of `PARKED` it reads `owner` and, the greenlet being migratable and
/// of its runtime, queues it on itself and runs it, whoever owned it.
fn hub_wake(g: &Arc<Greenlet>, me: usize, fresh: &StealQueue<Task>) {
    g.wakes_started.fetch_add(1, SeqCst);
    if g.state.wake() {
        g.touch_stack();
        // `may_adopt_woken` reads the owner (to compare runtimes).
        let _owner = g.owner();
        g.wins.fetch_add(1, SeqCst);
        queue_and_run(g, me, fresh);
    }
}

/// The greenlet parked on hub 0 and parks once more after its first
/// resume. Two wake-ups race: hub 1's own (adopt on wake) and a plain
/// thread's (to the owner's inbox). Whichever wins, and wherever the
/// greenlet parks the second time, it runs once per wake-up and completes;
/// the plain waker's read of `owner` is ordered after hub 1's adoption
/// write, and every touch of the stack is ordered after the last.
fn adopt_model() {
    let g = Arc::new(Greenlet::parked_on_hub0());
    let remotes: Arc<Remotes> = Arc::new([Remote::new(), Remote::new()]);
    let h0 = {
        let (g, remotes) = (g.clone(), remotes.clone());
        thread::spawn(move || {
            let fresh = StealQueue::new();
            hub_loop(&g, 0, &remotes[0], &fresh);
            fresh.is_empty()
        })
    };
    let h1 = {
        let (g, remotes) = (g.clone(), remotes.clone());
        thread::spawn(move || {
            let fresh = StealQueue::new();
            hub_wake(&g, 1, &fresh);
            hub_loop(&g, 1, &remotes[1], &fresh);
            fresh.is_empty()
        })
    };
    let hubs = [h0.thread().clone(), h1.thread().clone()];
    let w = {
        let (g, remotes, hubs) = (g.clone(), remotes.clone(), hubs.clone());
        thread::spawn(move || waker(&g, &remotes, &hubs))
    };
    w.join().unwrap();
    while !g.state.load().is_complete() {
        thread::yield_now();
    }
    for (remote, hub) in remotes.iter().zip(&hubs) {
        remote.push(STOP, hub);
    }
    assert!(h0.join().unwrap(), "hub 0's deque not empty");
    assert!(h1.join().unwrap(), "hub 1's deque not empty");
    assert_eq!(
        g.dequeued.load(SeqCst),
        g.wins.load(SeqCst),
        "one run per winning wake-up"
    );
    // Two resumes: the first, and one more after the second park.
    check_end(&g, &remotes, 2);
}

/// See [`adopt_model`].
#[test]
fn adopt_on_wake() {
    loom::model(adopt_model);
}
