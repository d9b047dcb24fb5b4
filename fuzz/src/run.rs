//! Runs a decoded [`Program`] on a real greenhub runtime and checks it
//! against the model: the same ops completed and the same values received
//! by every worker, the blocked ones and every victim reported killed, the
//! critical-section counter exact (mutual exclusion), every helper run once,
//! every greenlet's closure dropped, every stack's log (coroutines,
//! `timeout` frames, `local!` values: [`crate::coro`]) exactly the model's,
//! no stack left out of the allocator, and the whole run within a bound.
//! Panics (a fuzzer crash) on any difference.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use greenhub::channel::{self, Receiver, Sender};
use greenhub::sync::{Event, Mutex};
use greenhub::{Builder, JoinHandle};

use crate::coro::{self, Sink, Steps, Teardown, Ws, Yield};
use crate::program::{ChanKind, CoDef, EVENTS, Node, Op, Program, VictimKind};

/// How long anything the model says must happen may take.
const BOUND: Duration = Duration::from_secs(20);

/// Counts drops of the value a greenlet's closure owns.
struct Owned(Arc<AtomicUsize>);

impl Drop for Owned {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// What all greenlets of a run share.
struct World {
    tx: Vec<Sender<u64>>,
    rx: Vec<Receiver<u64>>,
    events: Vec<Event>,
    done: Vec<Event>,
    counter: Mutex<usize>,
    /// Steps completed, per worker.
    pc: Vec<AtomicUsize>,
    /// The Kahn step each worker last began, plus one.
    entered: Vec<AtomicUsize>,
    /// Each worker's stack log.
    logs: Vec<Arc<Sink>>,
    received: Vec<parking_lot::Mutex<Vec<u64>>>,
    dead_rx: Receiver<u64>,
    dead_lock: Mutex<()>,
    helpers: AtomicUsize,
    drops: Arc<AtomicUsize>,
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < BOUND, "hang: {what}");
        greenhub::sleep(Duration::from_millis(1));
    }
}

/// The victims' handles: workers kill through them, the main greenlet takes
/// them to join.
type Victims = Arc<Vec<parking_lot::Mutex<Option<JoinHandle<()>>>>>;

/// The closure of a greenlet: owns an [`Owned`], so that its drop is
/// counted whether the greenlet ran, was killed, or never started.
fn owning<T, F: FnOnce() -> T>(world: &World, f: F) -> impl FnOnce() -> T + use<T, F> {
    let owned = Owned(world.drops.clone());
    move || {
        let _owned = owned;
        f()
    }
}

/// A worker's own stack: its Kahn ops and its step counters.
struct WorkerSteps {
    world: Arc<World>,
    victims: Victims,
    w: usize,
    sent: usize,
    steps: usize,
    helpers: Vec<JoinHandle<u8>>,
}

impl Steps for WorkerSteps {
    fn begin(&mut self, i: usize) {
        self.world.entered[self.w].store(i + 1, SeqCst);
    }

    fn done(&mut self) {
        self.steps += 1;
        self.world.pc[self.w].fetch_add(1, SeqCst);
    }

    fn count(&self) -> usize {
        self.steps
    }

    fn kahn(&mut self, op: Op) {
        let world = &self.world;
        let (w, n) = (self.w, world.tx.len());
        match op {
            Op::Send => {
                world.tx[w]
                    .send(crate::program::value(w, self.sent))
                    .expect("send: the main greenlet holds a receiver");
                self.sent += 1;
            }
            Op::Recv => {
                let v = world.rx[(w + n - 1) % n]
                    .recv()
                    .expect("recv: the main greenlet holds a sender");
                world.received[w].lock().push(v);
            }
            Op::Set(e) => world.events[e as usize].set(),
            Op::Wait(e) => world.events[e as usize].wait(),
            Op::Critical(k) => {
                let mut guard = world.counter.lock();
                let seen = *guard;
                for _ in 0..k {
                    greenhub::yield_now();
                }
                assert_eq!(*guard, seen, "mutual exclusion broken");
                *guard = seen + 1;
            }
            Op::Kill(v) => {
                if let Some(Some(h)) = self.victims.get(v as usize).map(|h| h.lock()).as_deref() {
                    h.kill();
                }
            }
            Op::Join(g) => world.done[g as usize].wait(),
            Op::Spawn => {
                let w2 = world.clone();
                self.helpers.push(greenhub::spawn(owning(world, move || {
                    greenhub::yield_now();
                    w2.helpers.fetch_add(1, SeqCst);
                    7u8
                })));
            }
            op => unreachable!("{op:?} is not a Kahn op"),
        }
    }
}

fn worker(world: Arc<World>, victims: Victims, w: usize, ops: Vec<Node>, cos: Arc<Vec<CoDef>>) {
    let ws = Ws::new(world.logs[w].clone(), cos, world.dead_rx.clone());
    // Dropped last (declared first): the coroutine handles go after
    // everything else of the closure, as the model says.
    let _teardown = Teardown(ws.clone());
    let mut steps = WorkerSteps {
        world: world.clone(),
        victims,
        w,
        sent: 0,
        steps: 0,
        helpers: Vec::new(),
    };
    coro::exec(&ws, 0, Yield::Own, &ops, &mut Some(&mut steps));
    for h in std::mem::take(&mut steps.helpers) {
        assert_eq!(h.join().expect("helper"), 7);
    }
    world.done[w].set();
}

fn victim(world: Arc<World>, kind: VictimKind) {
    match kind {
        VictimKind::Recv => {
            let _ = world.dead_rx.recv();
        }
        VictimKind::SendFull => {
            let (tx, _rx) = channel::bounded(1);
            tx.send(1u8).expect("first send fits");
            let _ = tx.send(2);
        }
        VictimKind::SendRendezvous => {
            let (tx, _rx) = channel::rendezvous();
            let _ = tx.send(1u8);
        }
        VictimKind::EventWait => Event::new().wait(),
        VictimKind::Lock => drop(world.dead_lock.lock()),
        VictimKind::Sleep => greenhub::sleep(Duration::from_secs(3600)),
        VictimKind::InTimeout => {
            let _ = greenhub::timeout(Duration::from_secs(3600), || world.dead_rx.recv());
        }
    }
    panic!("victim {kind:?} woke up");
}

/// Runs `p`, panicking on any difference from its model.
pub fn run(p: &Program) {
    coro::init_keys();
    let want = p.model();
    let n = p.workers.len();
    let cos = Arc::new(p.cos.clone());
    if let (Some(ops), Some(log)) = (p.thread.clone(), want.thread_log.clone()) {
        // The thread part: raw greenlets and generators on a plain thread
        // (its own, so that its stack cache and thread-locals go with it).
        let sink = Arc::new(Sink::new("thread".into(), log));
        let (s2, cos2) = (sink.clone(), cos.clone());
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            let (_dead_tx, dead_rx) = channel::unbounded::<u64>();
            let ws = Ws::new(s2, cos2, dead_rx);
            let teardown = Teardown(ws.clone());
            coro::exec(&ws, 0, Yield::Own, &ops, &mut None);
            drop(teardown);
            let _ = done_tx.send(());
        });
        assert!(done_rx.recv_timeout(BOUND).is_ok(), "hang: the thread part");
        t.join().expect("the thread part panicked");
        sink.finish();
    }
    let builder = match p.mode {
        0 => Builder::new().single_threaded(),
        1 => Builder::new().work_stealing().hubs(2),
        2 => Builder::new().pinned().hubs(2),
        // SAFETY: the program's greenlets keep channels, events, greenhub
        // mutexes, join handles and `Arc`s of atomics across their blocking
        // calls: nothing tied to an OS thread.
        _ => unsafe { Builder::new().work_stealing().hubs(2).migratable() },
    };
    let rt = builder.build().expect("runtime");
    let drops = Arc::new(AtomicUsize::new(0));
    let (dead_tx, dead_rx) = channel::unbounded();
    let (tx, rx): (Vec<_>, Vec<_>) = p
        .chans
        .iter()
        .map(|k| match *k {
            ChanKind::Unbounded => channel::unbounded(),
            ChanKind::Rendezvous => channel::rendezvous(),
            ChanKind::Bounded(c) => channel::bounded(c),
        })
        .unzip();
    let world = Arc::new(World {
        tx,
        rx,
        events: (0..EVENTS).map(|_| Event::new()).collect(),
        done: (0..n).map(|_| Event::new()).collect(),
        counter: Mutex::new(0),
        pc: (0..n).map(|_| AtomicUsize::new(0)).collect(),
        entered: (0..n).map(|_| AtomicUsize::new(0)).collect(),
        logs: (0..n)
            .map(|w| Arc::new(Sink::new(format!("worker {w}"), want.logs[w].clone())))
            .collect(),
        received: (0..n).map(|_| Default::default()).collect(),
        dead_rx,
        dead_lock: Mutex::new(()),
        helpers: AtomicUsize::new(0),
        drops: drops.clone(),
    });
    let started = Instant::now();
    let p2 = p.clone();
    let w2 = world.clone();
    let want2 = want.clone();
    rt.block_on(move || check(&p2, &w2, &want2, &cos));
    drop(rt);
    assert!(started.elapsed() < 2 * BOUND, "the run took too long");
    drop(dead_tx);
    let spawned = n + p.victims.len() + want.helpers;
    assert_eq!(drops.load(SeqCst), spawned, "a greenlet's closure leaked");
    drop(world);
    assert_eq!(
        greenhub::__fuzz::stacks_outstanding(),
        0,
        "a stack was not returned to the allocator"
    );
}

/// The main greenlet: spawns everything, waits for the model's fixpoint,
/// kills what must be blocked and compares.
fn check(p: &Program, world: &Arc<World>, want: &crate::program::Outcome, cos: &Arc<Vec<CoDef>>) {
    let held = world.dead_lock.lock();
    let victims: Victims = Arc::new(
        p.victims
            .iter()
            .map(|&k| {
                let w2 = world.clone();
                let f = owning(world, move || victim(w2, k));
                parking_lot::Mutex::new(Some(greenhub::spawn(f)))
            })
            .collect(),
    );
    let mut workers: Vec<JoinHandle<()>> = p
        .workers
        .iter()
        .enumerate()
        .map(|(w, ops)| {
            let (w2, victims, ops) = (world.clone(), victims.clone(), ops.clone());
            let cos2 = cos.clone();
            let f = owning(world, move || worker(w2, victims, w, ops, cos2));
            // A worker that keeps `Rc`s (coroutines, local values) across
            // blocking calls must not migrate: `spawn_local` from this
            // greenlet (`block_on`'s, which never migrates) pins it.
            if p.mode == 3 && p.uses_stacks(w) {
                greenhub::spawn_local(f)
            } else {
                greenhub::spawn(f)
            }
        })
        .collect();
    // 1. Everyone reaches the model's fixpoint.
    for (w, h) in workers.iter_mut().enumerate() {
        if want.finished[w] {
            let r = h.join_timeout(BOUND);
            assert!(
                matches!(r, Some(Ok(()))),
                "worker {w} did not finish: {r:?}"
            );
        }
        wait_for("a worker reaching its blocking op", || {
            world.pc[w].load(SeqCst) >= want.pc[w]
                && (want.finished[w] || world.entered[w].load(SeqCst) > want.pc[w])
        });
    }
    // 2. Nothing moves past it (a model that is wrong shows here).
    greenhub::sleep(Duration::from_millis(2));
    for _ in 0..4 {
        greenhub::yield_now();
    }
    let pcs: Vec<usize> = world.pc.iter().map(|a| a.load(SeqCst)).collect();
    assert_eq!(pcs, want.pc, "ops completed differ from the model");
    // 3. Kill the blocked workers and every victim; all report killed.
    for (w, h) in workers.into_iter().enumerate() {
        if !want.finished[w] {
            h.kill();
            let r = h.join();
            assert!(
                r.as_ref().is_err_and(|e| e.is_killed()),
                "worker {w}: {r:?}"
            );
        }
    }
    for (i, v) in victims.iter().enumerate() {
        let v = v.lock().take().expect("joined once");
        v.kill();
        let r = v.join();
        assert!(
            r.as_ref().is_err_and(|e| e.is_killed()),
            "victim {i}: {r:?}"
        );
    }
    drop(held);
    wait_for("helpers", || world.helpers.load(SeqCst) == want.helpers);
    // 4. Values, critical sections.
    for w in 0..p.workers.len() {
        assert_eq!(
            *world.received[w].lock(),
            want.received[w],
            "worker {w} received"
        );
        assert_eq!(
            world.pc[w].load(SeqCst),
            want.pc[w],
            "worker {w} after the kill"
        );
    }
    assert_eq!(*world.counter.lock(), want.criticals, "critical sections");
    for log in &world.logs {
        log.finish();
    }
}
