//! A supervisor that keeps four workers alive, respawning those that die,
//! after gevent's tutorial pattern of a fixed set of greenlets that is kept
//! full (a bucket of four tokens: a dead worker gives its token back and the
//! supervisor spends it on a replacement).
//!
//! Each worker does units of work (a short sleep each); worker `s` of
//! generation `g` panics after `s + g` units while `g < s`, so slot 0 never
//! fails, slot 1 fails once, slot 2 twice, slot 3 three times: six respawns
//! in all, after which all four run for good. A dying worker tells the
//! supervisor through a drop guard (it runs while the panic unwinds) and an
//! `unpark`; the supervisor joins it, sees the panic payload and respawns the
//! slot. When every slot has a healthy worker, the demo stops the supervisor,
//! which hands back the live workers, and kills them.
//!
//! Run it with `cargo run --example supervisor`. The test `tests/examples_run.rs`
//! runs [`run`] and checks the respawn count and the survivors.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use greenhub::{Greenlet, JoinHandle};

/// The number of worker slots.
pub const WORKERS: usize = 4;

/// Where the example's lines go.
pub type Emit = Arc<dyn Fn(&str) + Send + Sync>;

/// When worker `slot` of `generation` panics: after that many units of work,
/// or never (`None`).
pub fn crash_plan(slot: usize, generation: u32) -> Option<u64> {
    (generation < slot as u32).then_some(slot as u64 + generation as u64)
}

/// Respawns the plan implies: slot `s` fails `s` times.
pub fn expected_respawns() -> usize {
    (0..WORKERS).sum()
}

/// State shared by the supervisor, its workers and whoever runs them.
pub struct Shared {
    /// Set by a worker's drop guard when it is about to exit.
    exited: [AtomicBool; WORKERS],
    /// Set by a worker of a generation that never fails, after one unit.
    healthy: [AtomicBool; WORKERS],
    /// Units of work done, all workers together.
    pub units: AtomicU64,
    /// Asks the supervisor to return.
    stop: AtomicBool,
}

impl Shared {
    fn new() -> Arc<Shared> {
        Arc::new(Shared {
            exited: std::array::from_fn(|_| AtomicBool::new(false)),
            healthy: std::array::from_fn(|_| AtomicBool::new(false)),
            units: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        })
    }

    fn all_healthy(&self) -> bool {
        self.healthy.iter().all(|h| h.load(Ordering::SeqCst))
    }
}

/// Tells the supervisor that a worker is exiting (by return, panic or kill).
struct ExitSignal {
    slot: usize,
    shared: Arc<Shared>,
    supervisor: Greenlet,
}

impl Drop for ExitSignal {
    fn drop(&mut self) {
        self.shared.exited[self.slot].store(true, Ordering::SeqCst);
        self.supervisor.unpark();
    }
}

fn worker(slot: usize, generation: u32, shared: Arc<Shared>, supervisor: Greenlet) {
    let _signal = ExitSignal {
        slot,
        shared: shared.clone(),
        supervisor,
    };
    let fail_after = crash_plan(slot, generation);
    for unit in 1.. {
        greenhub::sleep(Duration::from_millis(1 + slot as u64));
        shared.units.fetch_add(1, Ordering::Relaxed);
        match fail_after {
            Some(n) if unit == n => {
                panic!("worker {slot} (generation {generation}) failed after {unit} units")
            }
            Some(_) => {}
            None => shared.healthy[slot].store(true, Ordering::SeqCst),
        }
    }
}

/// What the supervisor hands back when it stops.
pub struct Stopped {
    /// How many workers it respawned.
    pub respawns: usize,
    /// `(slot, generation, panic message)` of every failure it saw.
    pub failures: Vec<(usize, u32, String)>,
    /// The workers alive at the end, by slot.
    pub workers: Vec<JoinHandle<()>>,
}

/// The supervisor greenlet: starts [`WORKERS`] workers and keeps every slot
/// filled until `shared.stop` is set.
fn supervise(shared: Arc<Shared>, emit: Emit) -> Stopped {
    let me = greenhub::current();
    let spawn = |slot: usize, generation: u32| {
        let (shared, me) = (shared.clone(), me.clone());
        greenhub::greenlet::Builder::new()
            .name(format!("worker-{slot}.{generation}"))
            .spawn(move || worker(slot, generation, shared, me))
            .expect("spawn a worker")
    };
    let mut slots: Vec<(Option<JoinHandle<()>>, u32)> =
        (0..WORKERS).map(|s| (Some(spawn(s, 0)), 0)).collect();
    let mut respawns = 0;
    let mut failures = Vec::new();
    loop {
        // Handle every exit signalled so far (a join below may swallow the
        // unpark of a later exit, so rescan until nothing is left).
        let mut any = true;
        while any {
            any = false;
            for (slot, (handle, generation)) in slots.iter_mut().enumerate() {
                if !shared.exited[slot].swap(false, Ordering::SeqCst) {
                    continue;
                }
                any = true;
                let h = handle.take().expect("a worker exited twice");
                match h.join() {
                    Err(e) if e.is_panic() => {
                        let msg = e.to_string();
                        emit(&format!("supervisor: {msg}; respawning slot {slot}"));
                        failures.push((slot, *generation, msg));
                    }
                    Err(e) => emit(&format!("supervisor: worker {slot}: {e}; respawning")),
                    Ok(()) => emit(&format!("supervisor: worker {slot} returned; respawning")),
                }
                *generation += 1;
                *handle = Some(spawn(slot, *generation));
                respawns += 1;
            }
        }
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        greenhub::park();
    }
    Stopped {
        respawns,
        failures,
        workers: slots
            .into_iter()
            .map(|(h, _)| h.expect("slot filled"))
            .collect(),
    }
}

/// What the demo observed.
pub struct Outcome {
    /// The supervisor's report.
    pub respawns: usize,
    /// Failures the supervisor saw.
    pub failures: Vec<(usize, u32, String)>,
    /// Workers still running when the supervisor stopped.
    pub alive_at_end: usize,
    /// Of those, how many reported `is_killed` after being killed.
    pub killed_at_end: usize,
    /// Units of work done in all.
    pub units: u64,
}

/// Runs the supervisor until all four slots hold a healthy worker, stops it,
/// then kills the surviving workers.
pub fn run(emit: Emit) -> Outcome {
    greenhub::run(move || {
        let shared = Shared::new();
        let s2 = shared.clone();
        let e2 = emit.clone();
        let sup = greenhub::greenlet::Builder::new()
            .name("supervisor".into())
            .spawn(move || supervise(s2, e2))
            .expect("spawn the supervisor");
        while !shared.all_healthy() {
            greenhub::sleep(Duration::from_millis(2));
        }
        shared.stop.store(true, Ordering::SeqCst);
        sup.greenlet().unpark();
        let stopped = sup.join().expect("the supervisor failed");
        let alive_at_end = stopped.workers.iter().filter(|h| !h.is_finished()).count();
        emit(&format!(
            "{} respawns; {alive_at_end} workers alive; killing them",
            stopped.respawns
        ));
        for h in &stopped.workers {
            h.kill();
        }
        let killed_at_end = stopped
            .workers
            .into_iter()
            .map(|h| h.join())
            .filter(|r| r.as_ref().is_err_and(|e| e.is_killed()))
            .count();
        Outcome {
            respawns: stopped.respawns,
            failures: stopped.failures,
            alive_at_end,
            killed_at_end,
            units: shared.units.load(Ordering::Relaxed),
        }
    })
}

#[allow(dead_code)]
fn main() {
    // The workers' panics are expected: print one line each instead of the
    // default panic report.
    std::panic::set_hook(Box::new(|info| {
        let name = greenhub::greenlet::try_current()
            .and_then(|g| g.name().map(str::to_owned))
            .unwrap_or_default();
        eprintln!("[{name}] panicked: {info}");
    }));
    let outcome = run(Arc::new(|line| println!("{line}")));
    println!(
        "done: {} respawns (expected {}), {} units of work, {} workers alive at the end, {} killed",
        outcome.respawns,
        expected_respawns(),
        outcome.units,
        outcome.alive_at_end,
        outcome.killed_at_end
    );
}
