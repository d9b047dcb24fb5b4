//! Regression (found by `tests/stress_shutdown.rs`): a runtime shut down
//! while a hub is never out of work — greenlets that only `yield_now`, or
//! wake each other forever — must still stop. The hub used to begin its
//! shutdown (kill every live greenlet) only once its run queue was empty,
//! which a yielding greenlet keeps from ever happening: `shutdown` hung.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use common::{DropCounter, mode_builders, with_deadline};
use greenhub::Builder;
use greenhub::channel;

fn shutdown_with_yielders(builder: Builder, what: &'static str) {
    with_deadline(what, 30, move || {
        let rt = builder.build().unwrap();
        let drops = Arc::new(AtomicUsize::new(0));
        let running = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (d, r) = (DropCounter(drops.clone()), running.clone());
                rt.spawn(move || {
                    let _d = d;
                    r.fetch_add(1, SeqCst);
                    loop {
                        greenhub::yield_now();
                    }
                })
            })
            .collect();
        while running.load(SeqCst) < 4 {
            std::thread::sleep(Duration::from_millis(1));
        }
        rt.shutdown();
        for h in handles {
            let r = h.join();
            assert!(r.as_ref().is_err_and(|e| e.is_killed()), "{what}: {r:?}");
        }
        assert_eq!(drops.load(SeqCst), 4, "{what}: destructors");
    });
}

#[test]
fn shutdown_stops_greenlets_that_only_yield() {
    for (what, builder) in mode_builders() {
        shutdown_with_yielders(builder, what);
    }
    shutdown_with_yielders(Builder::new().pinned().hubs(2), "pinned");
}

/// Two greenlets passing a token back and forth forever over rendezvous
/// channels: each blocks in every step, yet the hub always has one of them
/// ready, so it is never idle either.
fn shutdown_with_ping_pong(builder: Builder, what: &'static str) {
    with_deadline(what, 30, move || {
        let rt = builder.build().unwrap();
        let drops = Arc::new(AtomicUsize::new(0));
        let passes = Arc::new(AtomicUsize::new(0));
        let (to_b, from_a) = channel::rendezvous::<u64>();
        let (to_a, from_b) = channel::rendezvous::<u64>();
        let (d, p) = (DropCounter(drops.clone()), passes.clone());
        let a = rt.spawn(move || {
            let _d = d;
            let mut v = 0;
            while to_b.send(v).is_ok() {
                let Ok(back) = from_b.recv() else { return };
                v = back + 1;
                p.fetch_add(1, SeqCst);
            }
        });
        let d = DropCounter(drops.clone());
        let b = rt.spawn(move || {
            let _d = d;
            while let Ok(v) = from_a.recv() {
                if to_a.send(v).is_err() {
                    return;
                }
            }
        });
        while passes.load(SeqCst) < 100 {
            std::thread::sleep(Duration::from_millis(1));
        }
        rt.shutdown();
        // The first one killed unwinds and drops its channel ends, so the
        // other may end normally instead.
        let results = [a.join(), b.join()];
        let killed = |r: &Result<(), greenhub::JoinError>| r.as_ref().is_err_and(|e| e.is_killed());
        assert!(results.iter().any(killed), "{what}: {results:?}");
        assert!(
            results.iter().all(|r| r.is_ok() || killed(r)),
            "{what}: {results:?}"
        );
        assert_eq!(drops.load(SeqCst), 2, "{what}: destructors");
    });
}

#[test]
fn shutdown_stops_greenlets_that_wake_each_other_forever() {
    for (what, builder) in mode_builders() {
        shutdown_with_ping_pong(builder, what);
    }
    shutdown_with_ping_pong(Builder::new().pinned().hubs(2), "pinned");
}

/// Greenlets spawned from outside an M:N runtime wait in the hubs'
/// `incoming` queues until a hub takes them. A shutdown while both hubs are
/// stuck in greenlets that never give them back (so nothing was taken) must
/// still end every one of them: each join returns, and each closure is
/// dropped exactly once, run or not.
#[test]
fn shutdown_ends_greenlets_still_placed_on_stuck_hubs() {
    with_deadline("shutdown_placed_on_stuck_hubs", 60, || {
        let rt = Builder::new().hubs(2).build().unwrap();
        let release = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stuck = Arc::new(AtomicUsize::new(0));
        let blockers: Vec<_> = (0..2)
            .map(|_| {
                let (release, stuck) = (release.clone(), stuck.clone());
                rt.spawn(move || {
                    stuck.fetch_add(1, SeqCst);
                    while !release.load(SeqCst) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        // Both hubs stuck: one blocker each (each hub runs one at a time, and
        // neither blocker ends before the release).
        while stuck.load(SeqCst) < 2 {
            std::thread::yield_now();
        }
        let dropped = Arc::new(AtomicUsize::new(0));
        let ran = Arc::new(AtomicUsize::new(0));
        let placed: Vec<_> = (0..10)
            .map(|_| {
                let guard = DropCounter(dropped.clone());
                let ran = ran.clone();
                rt.spawn(move || {
                    let _guard = guard;
                    ran.fetch_add(1, SeqCst);
                })
            })
            .collect();
        assert_eq!(ran.load(SeqCst), 0, "no hub was free to run them");
        let releaser = std::thread::spawn({
            let release = release.clone();
            move || {
                std::thread::sleep(Duration::from_millis(50));
                release.store(true, SeqCst);
            }
        });
        drop(rt);
        releaser.join().unwrap();
        for h in blockers {
            let _ = h.join();
        }
        let mut killed = 0;
        for h in placed {
            if h.join().is_err() {
                killed += 1;
            }
        }
        assert_eq!(dropped.load(SeqCst), 10, "every closure dropped once");
        assert_eq!(
            killed + ran.load(SeqCst),
            10,
            "each one either ran or was cancelled"
        );
    });
}
