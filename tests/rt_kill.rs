//! Killing greenlets and shutting runtimes down: `kill` of a sleeping, parked
//! or joining greenlet unwinds it with its destructors run and `join` reports
//! `is_killed`; a greenlet killed before it starts never runs; a user
//! `catch_unwind` around a blocking call cannot keep a killed greenlet alive
//! (the kill is raised again at its next blocking point); and dropping a
//! runtime with greenlets still blocked kills them (destructors run, their
//! handles, joined from the main thread after the drop, report killed) and
//! leaves no hub thread behind (counted through `/proc/self/task`).

mod common;

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{DropCounter, eventually, is_child, run_child, threads_named, with_deadline};
use greenhub::{Builder, JoinHandle};

const FOREVER: Duration = Duration::from_secs(3600);

/// Waits (from a greenlet or a thread) until `c` reaches `n`.
fn wait_for(c: &AtomicUsize, n: usize) {
    while c.load(Ordering::SeqCst) < n {
        greenhub::sleep(Duration::from_millis(1));
    }
}

/// How a victim greenlet blocks.
#[derive(Clone, Copy, Debug)]
enum Block {
    Sleep,
    Park,
    ParkTimeout,
}

/// Spawns a greenlet that holds a `DropCounter` and blocks as `how`;
/// `started` counts it in, `after` would count it out (it must not).
fn victim(
    how: Block,
    started: &Arc<AtomicUsize>,
    drops: &Arc<AtomicUsize>,
    after: &Arc<AtomicUsize>,
) -> JoinHandle<()> {
    let (started, drops, after) = (started.clone(), drops.clone(), after.clone());
    greenhub::spawn(move || {
        let _guard = DropCounter(drops);
        started.fetch_add(1, Ordering::SeqCst);
        match how {
            Block::Sleep => greenhub::sleep(FOREVER),
            Block::Park => loop {
                greenhub::park();
            },
            Block::ParkTimeout => loop {
                greenhub::greenlet::park_timeout(FOREVER);
            },
        }
        after.fetch_add(1, Ordering::SeqCst);
    })
}

#[test]
fn kill_blocked_greenlets_runs_destructors() {
    with_deadline("kill_blocked_greenlets", 60, || {
        for (mode, builder) in common::mode_builders() {
            for how in [Block::Sleep, Block::Park, Block::ParkTimeout] {
                let rt = builder.clone().build().unwrap();
                let started = Arc::new(AtomicUsize::new(0));
                let drops = Arc::new(AtomicUsize::new(0));
                let after = Arc::new(AtomicUsize::new(0));
                let (s, d, a) = (started.clone(), drops.clone(), after.clone());
                rt.block_on(move || {
                    let hs: Vec<_> = (0..10).map(|_| victim(how, &s, &d, &a)).collect();
                    wait_for(&s, 10);
                    assert_eq!(d.load(Ordering::SeqCst), 0, "{mode} {how:?}: dropped early");
                    for h in &hs {
                        assert!(!h.is_finished());
                        h.kill();
                        h.kill(); // idempotent
                    }
                    for h in hs {
                        let e = h.join().unwrap_err();
                        assert!(e.is_killed(), "{mode} {how:?}: {e:?}");
                        assert!(!e.is_panic() && e.io_error().is_none());
                        assert_eq!(e.to_string(), "greenlet was killed");
                    }
                });
                assert_eq!(
                    drops.load(Ordering::SeqCst),
                    10,
                    "{mode} {how:?}: destructors"
                );
                assert_eq!(
                    after.load(Ordering::SeqCst),
                    0,
                    "{mode} {how:?}: kept running"
                );
            }
        }
    });
}

#[test]
fn kill_joining_greenlet() {
    with_deadline("kill_joining_greenlet", 60, || {
        for (mode, builder) in common::mode_builders() {
            let rt = builder.build().unwrap();
            let drops = Arc::new(AtomicUsize::new(0));
            let d = drops.clone();
            rt.block_on(move || {
                let inner_drops = Arc::new(AtomicUsize::new(0));
                let id = inner_drops.clone();
                let inner = greenhub::spawn(move || {
                    let _g = DropCounter(id);
                    loop {
                        greenhub::park();
                    }
                });
                let inner_g = inner.greenlet();
                let joined = Arc::new(AtomicBool::new(false));
                let after = Arc::new(AtomicBool::new(false));
                let (j2, a2, d2) = (joined.clone(), after.clone(), d.clone());
                let joiner = greenhub::spawn(move || {
                    let _g = DropCounter(d2);
                    j2.store(true, Ordering::SeqCst);
                    let r = inner.join();
                    a2.store(true, Ordering::SeqCst);
                    r.is_ok()
                });
                while !joined.load(Ordering::SeqCst) {
                    greenhub::sleep(Duration::from_millis(1));
                }
                greenhub::sleep(Duration::from_millis(5));
                assert!(!joiner.is_finished(), "{mode}: join returned early");
                joiner.kill();
                let e = joiner.join().unwrap_err();
                assert!(e.is_killed(), "{mode}: {e:?}");
                assert!(!after.load(Ordering::SeqCst), "{mode}: joiner went on");
                assert_eq!(d.load(Ordering::SeqCst), 1, "{mode}: joiner's destructor");
                // The joined greenlet is unaffected (its handle was dropped
                // with the joiner's frame: it is detached now) and still
                // parked; an unpark makes it loop and park again.
                inner_g.unpark();
                greenhub::sleep(Duration::from_millis(2));
                assert_eq!(inner_drops.load(Ordering::SeqCst), 0, "{mode}: inner died");
            });
            // Shutdown kills the detached inner greenlet.
            drop(rt);
            assert_eq!(drops.load(Ordering::SeqCst), 1);
        }
    });
}

#[test]
fn kill_from_plain_thread_and_from_another_greenlet() {
    with_deadline("kill_from_plain_thread", 60, || {
        let rt = Builder::new().hubs(2).build().unwrap();
        let drops = Arc::new(AtomicUsize::new(0));
        let started = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..20)
            .map(|_| {
                let (d, s) = (drops.clone(), started.clone());
                rt.spawn(move || {
                    let _g = DropCounter(d);
                    s.fetch_add(1, Ordering::SeqCst);
                    greenhub::sleep(FOREVER);
                })
            })
            .collect();
        assert!(eventually(30, || started.load(Ordering::SeqCst) == 20));
        // Kill half from another std thread, half from a greenlet.
        let (a, b): (Vec<_>, Vec<_>) = hs.into_iter().enumerate().partition(|(i, _)| i % 2 == 0);
        let a: Vec<_> = a.into_iter().map(|(_, h)| h).collect();
        let b: Vec<_> = b.into_iter().map(|(_, h)| h).collect();
        let a = std::thread::spawn(move || {
            for h in &a {
                h.kill();
            }
            a
        })
        .join()
        .unwrap();
        let b = rt
            .spawn(move || {
                for h in &b {
                    h.kill();
                }
                b
            })
            .join()
            .unwrap();
        for h in a.into_iter().chain(b) {
            assert!(h.join().unwrap_err().is_killed());
        }
        assert_eq!(drops.load(Ordering::SeqCst), 20);
    });
}

#[test]
fn kill_after_finish_keeps_the_value() {
    with_deadline("kill_after_finish", 60, || {
        let rt = Builder::new().single_threaded().build().unwrap();
        rt.block_on(|| {
            let h = greenhub::spawn(|| 17);
            while !h.is_finished() {
                greenhub::yield_now();
            }
            h.kill();
            assert_eq!(h.join().unwrap(), 17);
        });
    });
}

#[test]
fn kill_unstarted_greenlet_never_runs() {
    with_deadline("kill_unstarted_greenlet", 60, || {
        // Single-threaded and pinned: the spawner does not block between
        // spawn and kill, so the greenlet cannot have started.
        for (mode, builder) in common::mode_builders()
            .into_iter()
            .filter(|(m, _)| *m != "mn")
        {
            let rt = builder.build().unwrap();
            let ran = Arc::new(AtomicUsize::new(0));
            let drops = Arc::new(AtomicUsize::new(0));
            let (r, d) = (ran.clone(), drops.clone());
            rt.block_on(move || {
                let hs: Vec<_> = (0..100)
                    .map(|_| {
                        let (r, guard) = (r.clone(), DropCounter(d.clone()));
                        greenhub::spawn(move || {
                            let _guard = guard;
                            r.fetch_add(1, Ordering::SeqCst);
                        })
                    })
                    .collect();
                for h in &hs {
                    h.kill();
                }
                greenhub::yield_now();
                for h in hs {
                    assert!(h.join().unwrap_err().is_killed(), "{mode}");
                }
                // Later greenlets are unaffected.
                assert_eq!(greenhub::spawn(|| 5).join().unwrap(), 5);
            });
            assert_eq!(
                ran.load(Ordering::SeqCst),
                0,
                "{mode}: a killed greenlet ran"
            );
            // Its closure (and what it captured) was dropped, not leaked.
            assert_eq!(drops.load(Ordering::SeqCst), 100, "{mode}: closure drops");
        }
    });
}

#[test]
fn kill_unstarted_in_mn_mode_never_runs() {
    with_deadline("kill_unstarted_in_mn_mode", 60, || {
        let rt = Builder::new().hubs(2).build().unwrap();
        let (killed, ran) = rt.block_on(|| {
            // Occupy the other hub with a greenlet that spins without ever
            // blocking, so it cannot steal: the greenlets spawned below then
            // certainly have not started when they are killed. (This hub is
            // busy running us, so the blocker can only run on the other one.)
            let release = Arc::new(AtomicBool::new(false));
            let running = Arc::new(AtomicBool::new(false));
            let (rel, run) = (release.clone(), running.clone());
            let me = std::thread::current().id();
            let blocker = greenhub::spawn(move || {
                run.store(true, Ordering::SeqCst);
                while !rel.load(Ordering::SeqCst) {
                    std::hint::spin_loop();
                }
                std::thread::current().id()
            });
            while !running.load(Ordering::SeqCst) {
                std::hint::spin_loop(); // not a blocking call: stay on this hub
            }

            let flags: Vec<_> = (0..2000)
                .map(|_| Arc::new(AtomicBool::new(false)))
                .collect();
            let hs: Vec<_> = flags
                .iter()
                .map(|f| {
                    let f = f.clone();
                    greenhub::spawn(move || f.store(true, Ordering::SeqCst))
                })
                .collect();
            for h in &hs {
                h.kill();
            }
            release.store(true, Ordering::SeqCst);
            assert_ne!(
                blocker.join().unwrap(),
                me,
                "the blocker ran on the other hub"
            );
            let mut killed = 0;
            for h in hs {
                assert!(h.join().unwrap_err().is_killed());
                killed += 1;
            }
            (
                killed,
                flags.iter().filter(|f| f.load(Ordering::SeqCst)).count(),
            )
        });
        assert_eq!(killed, 2000);
        assert_eq!(ran, 0, "a greenlet killed before it started ran");
    });
}

#[test]
fn kill_racing_with_start_in_mn_mode() {
    // Without a blocker, the other hub may start a greenlet before its kill
    // lands; what must hold is: killed => never ran, returned => ran.
    with_deadline("kill_racing_with_start_in_mn_mode", 60, || {
        let rt = Builder::new().hubs(2).build().unwrap();
        let (killed, ok) = rt.block_on(|| {
            let flags: Vec<_> = (0..2000)
                .map(|_| Arc::new(AtomicBool::new(false)))
                .collect();
            let hs: Vec<_> = flags
                .iter()
                .map(|f| {
                    let f = f.clone();
                    let h = greenhub::spawn(move || f.store(true, Ordering::SeqCst));
                    h.kill();
                    h
                })
                .collect();
            let (mut killed, mut ok) = (0, 0);
            for (h, f) in hs.into_iter().zip(&flags) {
                match h.join() {
                    Ok(()) => {
                        assert!(f.load(Ordering::SeqCst));
                        ok += 1;
                    }
                    Err(e) => {
                        assert!(e.is_killed());
                        assert!(!f.load(Ordering::SeqCst), "a killed greenlet ran");
                        killed += 1;
                    }
                }
            }
            (killed, ok)
        });
        assert_eq!(killed + ok, 2000);
    });
}

#[test]
fn kill_while_running_unwinds_at_next_blocking_point() {
    with_deadline("kill_while_running", 60, || {
        let rt = Builder::new().hubs(2).build().unwrap();
        let steps = Arc::new(AtomicUsize::new(0));
        let killed = Arc::new(AtomicBool::new(false));
        let drops = Arc::new(AtomicUsize::new(0));
        let (s, k, d) = (steps.clone(), killed.clone(), drops.clone());
        let h = rt.spawn(move || {
            let _g = DropCounter(d);
            s.fetch_add(1, Ordering::SeqCst);
            // Busy, never blocking, until the kill has been issued.
            while !k.load(Ordering::SeqCst) {
                std::hint::spin_loop();
            }
            s.fetch_add(1, Ordering::SeqCst); // still runs: no blocking point yet
            greenhub::yield_now(); // unwinds here
            s.fetch_add(1, Ordering::SeqCst);
        });
        assert!(eventually(30, || steps.load(Ordering::SeqCst) == 1));
        h.kill();
        killed.store(true, Ordering::SeqCst);
        assert!(h.join().unwrap_err().is_killed());
        assert_eq!(steps.load(Ordering::SeqCst), 2);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn catch_unwind_cannot_keep_a_killed_greenlet_alive() {
    with_deadline("catch_unwind_cannot_keep_alive", 60, || {
        #[derive(Clone, Copy, Debug)]
        enum Next {
            Yield,
            Sleep,
            Park,
            Join,
            SleepZero,
        }
        for (mode, builder) in common::mode_builders() {
            for next in [
                Next::Yield,
                Next::Sleep,
                Next::Park,
                Next::Join,
                Next::SleepZero,
            ] {
                let rt = builder.clone().build().unwrap();
                let caught = Arc::new(AtomicUsize::new(0));
                let reached = Arc::new(AtomicBool::new(false));
                let drops = Arc::new(AtomicUsize::new(0));
                let started = Arc::new(AtomicUsize::new(0));
                let (c, r, d, s) = (
                    caught.clone(),
                    reached.clone(),
                    drops.clone(),
                    started.clone(),
                );
                rt.block_on(move || {
                    let h = greenhub::spawn(move || {
                        let _outer = DropCounter(d.clone());
                        let res = panic::catch_unwind(AssertUnwindSafe(|| {
                            let _inner = DropCounter(d.clone());
                            s.fetch_add(1, Ordering::SeqCst);
                            greenhub::sleep(FOREVER);
                        }));
                        let payload = res.expect_err("the kill must unwind out of sleep");
                        // It is not an ordinary panic payload.
                        assert!(payload.downcast_ref::<&str>().is_none());
                        assert!(payload.downcast_ref::<String>().is_none());
                        drop(payload);
                        c.fetch_add(1, Ordering::SeqCst);
                        // Try to live on: the next blocking call unwinds again.
                        match next {
                            Next::Yield => greenhub::yield_now(),
                            Next::Sleep => greenhub::sleep(Duration::from_millis(1)),
                            Next::SleepZero => greenhub::sleep(Duration::ZERO),
                            Next::Park => greenhub::park(),
                            Next::Join => {
                                // A join that must block (joining a greenlet
                                // that already finished is no blocking point).
                                let _ = greenhub::spawn(|| {
                                    loop {
                                        greenhub::park();
                                    }
                                })
                                .join();
                            }
                        }
                        r.store(true, Ordering::SeqCst);
                    });
                    wait_for(&started, 1);
                    h.kill();
                    let e = h.join().unwrap_err();
                    assert!(e.is_killed(), "{mode} {next:?}: {e:?}");
                });
                assert_eq!(caught.load(Ordering::SeqCst), 1, "{mode} {next:?}");
                assert!(
                    !reached.load(Ordering::SeqCst),
                    "{mode} {next:?}: survived the kill"
                );
                assert_eq!(
                    drops.load(Ordering::SeqCst),
                    2,
                    "{mode} {next:?}: destructors"
                );
            }
        }
    });
}

const SHUTDOWN_PREFIX: &str = "gsd";

/// Starts greenlets that block in every way, waits until all have started,
/// and returns their handles (for the runtime `rt`).
fn start_blocked(
    rt: &greenhub::Runtime,
    drops: &Arc<AtomicUsize>,
    started: &Arc<AtomicUsize>,
) -> Vec<JoinHandle<()>> {
    let mut hs = Vec::new();
    for i in 0..40 {
        let (d, s) = (drops.clone(), started.clone());
        hs.push(rt.spawn(move || {
            let _g = DropCounter(d.clone());
            match i % 4 {
                0 => {
                    s.fetch_add(1, Ordering::SeqCst);
                    greenhub::sleep(FOREVER);
                }
                1 => {
                    s.fetch_add(1, Ordering::SeqCst);
                    loop {
                        greenhub::park();
                    }
                }
                2 => {
                    // Joins a child that parks forever (the child counts too).
                    let child = greenhub::spawn(move || {
                        let _g = DropCounter(d);
                        s.fetch_add(1, Ordering::SeqCst);
                        loop {
                            greenhub::park();
                        }
                    });
                    // At shutdown the child may be killed (on the other
                    // hub) before we are: stay blocked, never return.
                    child.join().ok();
                    loop {
                        greenhub::park();
                    }
                }
                _ => {
                    // Detached children that sleep.
                    for _ in 0..2 {
                        let (d, s) = (d.clone(), s.clone());
                        drop(greenhub::spawn(move || {
                            let _g = DropCounter(d);
                            s.fetch_add(1, Ordering::SeqCst);
                            greenhub::sleep(FOREVER);
                        }));
                    }
                    s.fetch_add(1, Ordering::SeqCst);
                    greenhub::sleep(FOREVER);
                }
            }
        }));
    }
    hs
}

/// Greenlets that `start_blocked` creates in all: 40 with handles, 10 joined
/// children, 20 detached children; each holds one `DropCounter`.
const BLOCKED_TOTAL: usize = 40 + 10 + 20;
/// Of those, the ones that count themselves in `started` (the 10 joiners do
/// not: their child does).
const STARTED_TOTAL: usize = BLOCKED_TOTAL - 10;

#[test]
fn shutdown_kills_blocked_greenlets_and_stops_hub_threads() {
    with_deadline("shutdown_kills_blocked_greenlets", 60, || {
        for (mode, builder) in common::mode_builders() {
            // Thread names are cut to 15 bytes: keep "<prefix>-<index>" short.
            let prefix = format!("{SHUTDOWN_PREFIX}{}", &mode[..1]);
            assert_eq!(threads_named(&prefix), 0);
            let rt = builder.thread_name(prefix.clone()).build().unwrap();
            let hubs = rt.hubs();
            // (A thread names itself when it starts, a moment after build.)
            assert!(
                eventually(10, || threads_named(&prefix) == hubs),
                "{mode}: one thread per hub: {:?}",
                common::thread_names()
            );
            let drops = Arc::new(AtomicUsize::new(0));
            let started = Arc::new(AtomicUsize::new(0));
            let hs = start_blocked(&rt, &drops, &started);
            assert!(
                eventually(30, || started.load(Ordering::SeqCst) == STARTED_TOTAL),
                "{mode}: only {} started",
                started.load(Ordering::SeqCst)
            );
            assert_eq!(drops.load(Ordering::SeqCst), 0);
            let handle = rt.handle().clone();

            drop(rt);

            // Every destructor ran before drop returned.
            assert_eq!(
                drops.load(Ordering::SeqCst),
                BLOCKED_TOTAL,
                "{mode}: destructors"
            );
            // Joined from this (main) thread after the drop: all killed.
            for h in hs {
                let e = h.join().unwrap_err();
                assert!(e.is_killed(), "{mode}: {e:?}");
            }
            // Spawning through a handle of a stopped runtime: the greenlet
            // never runs and reports killed.
            let ran = Arc::new(AtomicBool::new(false));
            let r2 = ran.clone();
            let late = handle.spawn(move || r2.store(true, Ordering::SeqCst));
            assert!(late.join().unwrap_err().is_killed());
            assert!(!ran.load(Ordering::SeqCst));
            // No hub thread is left.
            assert!(
                eventually(10, || threads_named(&prefix) == 0),
                "{mode}: hub threads left: {:?}",
                common::thread_names()
            );
        }
    });
}

/// A destructor that blocks (sleeps, yields) while its greenlet unwinds.
struct SleepyDrop(Arc<AtomicUsize>);

impl Drop for SleepyDrop {
    fn drop(&mut self) {
        greenhub::sleep(Duration::from_millis(20));
        greenhub::yield_now();
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A destructor that blocks forever (nobody unparks it).
struct StuckDrop(Arc<AtomicUsize>);

impl Drop for StuckDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
        loop {
            greenhub::park();
        }
    }
}

#[test]
fn kill_waits_for_a_destructor_that_sleeps() {
    with_deadline("kill_waits_for_sleeping_destructor", 60, || {
        for (mode, builder) in common::mode_builders() {
            let rt = builder.build().unwrap();
            let done = Arc::new(AtomicUsize::new(0));
            let d = done.clone();
            rt.block_on(move || {
                let started = Arc::new(AtomicUsize::new(0));
                let s = started.clone();
                let d2 = d.clone();
                let h = greenhub::spawn(move || {
                    let _g = SleepyDrop(d2);
                    s.fetch_add(1, Ordering::SeqCst);
                    greenhub::sleep(FOREVER);
                });
                wait_for(&started, 1);
                h.kill();
                assert!(h.join().unwrap_err().is_killed(), "{mode}");
                assert_eq!(
                    d.load(Ordering::SeqCst),
                    1,
                    "{mode}: joined before the destructor ended"
                );
            });
            assert_eq!(done.load(Ordering::SeqCst), 1);
        }
    });
}

#[test]
fn shutdown_waits_for_a_destructor_that_sleeps() {
    with_deadline("shutdown_waits_for_sleeping_destructor", 60, || {
        for (mode, builder) in common::mode_builders() {
            let rt = builder.build().unwrap();
            let done = Arc::new(AtomicUsize::new(0));
            let started = Arc::new(AtomicUsize::new(0));
            let (d, s) = (done.clone(), started.clone());
            let h = rt.spawn(move || {
                let _g = SleepyDrop(d);
                s.fetch_add(1, Ordering::SeqCst);
                greenhub::sleep(FOREVER);
            });
            assert!(eventually(30, || started.load(Ordering::SeqCst) == 1));
            drop(rt);
            assert_eq!(
                done.load(Ordering::SeqCst),
                1,
                "{mode}: the destructor completed"
            );
            assert!(h.join().unwrap_err().is_killed(), "{mode}");
        }
    });
}

#[test]
fn shutdown_with_a_destructor_blocked_forever_terminates() {
    with_deadline("shutdown_with_destructor_blocked_forever", 60, || {
        for (mode, builder) in common::mode_builders() {
            let prefix = format!("gstk{}", &mode[..1]);
            let rt = builder.thread_name(prefix.clone()).build().unwrap();
            let entered = Arc::new(AtomicUsize::new(0));
            let started = Arc::new(AtomicUsize::new(0));
            let (e, s) = (entered.clone(), started.clone());
            let stuck = rt.spawn(move || {
                let _g = StuckDrop(e);
                s.fetch_add(1, Ordering::SeqCst);
                greenhub::sleep(FOREVER);
            });
            assert!(eventually(30, || started.load(Ordering::SeqCst) == 1));
            drop(rt); // must return: the stuck greenlet is leaked, not waited for
            assert_eq!(entered.load(Ordering::SeqCst), 1, "{mode}");
            assert!(stuck.join().unwrap_err().is_killed(), "{mode}");
            assert!(eventually(10, || threads_named(&prefix) == 0), "{mode}");
        }
    });
}

// The two tests below fail (hang) because of a greenhub bug: a greenlet that
// blocks inside a destructor while it unwinds leaves the hub thread's
// `std::thread::panicking()` set, and `greenlet::unwind_killed` then refuses
// to raise the kill in *every other* greenlet of that hub, which go on
// blocking as if never killed (the kill is dropped, not deferred). A fix:
// the hub records `std::thread::panicking()` before each resume; when it was
// false, a panic in progress is the greenlet's own (do not raise), and when
// it was true the kill is deferred and retried by the hub once no greenlet of
// it is suspended mid-unwind.

#[test]
fn kill_is_not_lost_while_another_greenlet_unwinds() {
    with_deadline("kill_is_not_lost_while_another_unwinds", 30, || {
        let rt = Builder::new().single_threaded().build().unwrap();
        rt.block_on(|| {
            let done = Arc::new(AtomicUsize::new(0));
            let started = Arc::new(AtomicUsize::new(0));
            let (d, s) = (done.clone(), started.clone());
            let a = greenhub::spawn(move || {
                let _g = SleepyDrop(d);
                s.fetch_add(1, Ordering::SeqCst);
                greenhub::sleep(FOREVER);
            });
            let s = started.clone();
            let b = greenhub::spawn(move || {
                s.fetch_add(1, Ordering::SeqCst);
                greenhub::sleep(FOREVER);
            });
            wait_for(&started, 2);
            // `a` unwinds first and sleeps in its destructor; `b` is resumed
            // to unwind while `a` is suspended mid-unwind.
            a.kill();
            b.kill();
            assert!(b.join().unwrap_err().is_killed());
            assert!(a.join().unwrap_err().is_killed());
            assert_eq!(done.load(Ordering::SeqCst), 1);
        });
    });
}

#[test]
fn shutdown_with_several_blocking_destructors_on_one_hub() {
    with_deadline("shutdown_with_several_blocking_destructors", 30, || {
        let rt = Builder::new().single_threaded().build().unwrap();
        let done = Arc::new(AtomicUsize::new(0));
        let entered = Arc::new(AtomicUsize::new(0));
        let normal = Arc::new(AtomicUsize::new(0));
        let started = Arc::new(AtomicUsize::new(0));
        let mut hs = Vec::new();
        for i in 0..6 {
            let (d, e, n, s) = (
                done.clone(),
                entered.clone(),
                normal.clone(),
                started.clone(),
            );
            hs.push(rt.spawn(move || {
                let _a = DropCounter(n);
                let _b = (i == 0).then(|| StuckDrop(e));
                let _c = (i % 2 == 1).then(|| SleepyDrop(d));
                s.fetch_add(1, Ordering::SeqCst);
                greenhub::sleep(FOREVER);
            }));
        }
        assert!(eventually(30, || started.load(Ordering::SeqCst) == 6));
        drop(rt);
        assert_eq!(entered.load(Ordering::SeqCst), 1);
        assert_eq!(
            done.load(Ordering::SeqCst),
            3,
            "the sleeping destructors completed"
        );
        // All but the stuck greenlet unwound completely.
        assert_eq!(normal.load(Ordering::SeqCst), 5);
        for h in hs {
            assert!(h.join().unwrap_err().is_killed());
        }
    });
}

/// Parent of `child_shutdown_thread_count`: the exact OS-thread count of a
/// process is only meaningful when no other test runs in it, so the check
/// runs in a child process with one test thread.
#[test]
fn shutdown_leaves_no_thread_behind() {
    let out = run_child("child_shutdown_thread_count", &[], 120);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child failed: {}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("THREADS before=") && stdout.contains("CHILD-OK"),
        "child output:\n{stdout}\n{stderr}"
    );
}

#[test]
#[ignore = "child-process helper of shutdown_leaves_no_thread_behind"]
fn child_shutdown_thread_count() {
    if !is_child("child_shutdown_thread_count") {
        return;
    }
    let before = common::thread_count();
    for (mode, builder) in common::mode_builders() {
        let rt = builder.build().unwrap();
        // Debug builds also start the blocking monitor's thread (one per
        // process, gone with the last runtime: checked below).
        let hubs = rt.hubs() + usize::from(cfg!(debug_assertions));
        assert_eq!(
            common::thread_count(),
            before + hubs,
            "{mode}: one thread per hub"
        );
        let drops = Arc::new(AtomicUsize::new(0));
        let started = Arc::new(AtomicUsize::new(0));
        let hs = start_blocked(&rt, &drops, &started);
        assert!(eventually(30, || started.load(Ordering::SeqCst) == STARTED_TOTAL));
        // Greenlets are not threads.
        assert_eq!(common::thread_count(), before + hubs, "{mode}");
        drop(rt);
        assert_eq!(drops.load(Ordering::SeqCst), BLOCKED_TOTAL);
        for h in hs {
            assert!(h.join().unwrap_err().is_killed());
        }
        assert!(
            eventually(10, || common::thread_count() == before),
            "{mode}: {} threads after shutdown, {before} before: {:?}",
            common::thread_count(),
            common::thread_names()
        );
        println!(
            "THREADS before={before} mode={mode} hubs={hubs} after={}",
            common::thread_count()
        );
    }
    println!("CHILD-OK");
}
