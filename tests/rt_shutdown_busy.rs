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
