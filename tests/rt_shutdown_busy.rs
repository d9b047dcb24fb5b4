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
