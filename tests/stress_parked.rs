//! Stress: 1,000,000 greenlets parked at the same time, then all woken.
//!
//! Every greenlet starts (so each holds a stack of its own) and parks; all
//! are parked at once before any is woken (checked: none has gone past its
//! wait). Two wake paths:
//!
//! - M:N, two hubs: all block on one shared `sync::Event`; one `set` wakes
//!   all of them across both hubs.
//! - single-threaded: each `park`s; the main greenlet wakes each one with
//!   its own `Greenlet::unpark`.
//!
//! Every join, return value and destructor is counted.
//!
//! Run by `.ci/run` in release (`cargo test --release --test 'stress_*' --
//! --ignored`); figures in RELIABILITY.md.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use common::{DropCounter, with_deadline};
use greenhub::Builder;
use greenhub::sync::Event;

const N: usize = 1_000_000;

/// How the greenlets wait and are woken.
#[derive(Clone, Copy)]
enum Wake {
    /// One `Event`, one `set`.
    Event,
    /// `park` in a loop on a flag; one `unpark` each.
    Unpark,
}

fn park_and_wake(builder: Builder, wake: Wake, what: &'static str) {
    with_deadline(what, 240, move || {
        let started = Instant::now();
        let rt = builder.stack_size(16 * 1024).build().unwrap();
        let parked = Arc::new(AtomicUsize::new(0));
        let woke = Arc::new(AtomicUsize::new(0));
        let drops = Arc::new(AtomicUsize::new(0));
        let (p, w, d) = (parked.clone(), woke.clone(), drops.clone());
        let sum = rt.block_on(move || {
            let go = Arc::new(Event::new());
            let flag = Arc::new(AtomicBool::new(false));
            let handles: Vec<_> = (0..N)
                .map(|i| {
                    let (p, w, go, flag) = (p.clone(), w.clone(), go.clone(), flag.clone());
                    let guard = DropCounter(d.clone());
                    greenhub::spawn(move || {
                        let _guard = guard;
                        p.fetch_add(1, SeqCst);
                        match wake {
                            Wake::Event => go.wait(),
                            Wake::Unpark => {
                                while !flag.load(SeqCst) {
                                    greenhub::park();
                                }
                            }
                        }
                        w.fetch_add(1, SeqCst);
                        i as u64
                    })
                })
                .collect();
            let t0 = Instant::now();
            while p.load(SeqCst) < N {
                assert!(
                    t0.elapsed() < Duration::from_secs(180),
                    "{what}: not all parked"
                );
                greenhub::sleep(Duration::from_millis(5));
            }
            // All N are parked at once: none is past its wait.
            assert_eq!(w.load(SeqCst), 0, "{what}");
            let parked_after = t0.elapsed();
            match wake {
                Wake::Event => go.set(),
                Wake::Unpark => {
                    flag.store(true, SeqCst);
                    for h in &handles {
                        h.greenlet().unpark();
                    }
                }
            }
            let mut sum = 0u64;
            for h in handles {
                sum += h.join().unwrap_or_else(|e| panic!("{what}: {e}"));
            }
            eprintln!("{what}: all parked after {parked_after:?}");
            sum
        });
        drop(rt);
        assert_eq!(parked.load(SeqCst), N, "{what}: parked");
        assert_eq!(woke.load(SeqCst), N, "{what}: woken");
        assert_eq!(drops.load(SeqCst), N, "{what}: destructors");
        assert_eq!(
            sum,
            (N as u64) * (N as u64 - 1) / 2,
            "{what}: return values"
        );
        eprintln!(
            "STRESS {what}: greenlets={N} parked=N woken=N duration={:.1}s",
            started.elapsed().as_secs_f64()
        );
    });
}

#[test]
#[ignore = "stress: run by .ci/run in release"]
fn million_parked_then_woken_mn() {
    park_and_wake(Builder::new().hubs(2), Wake::Event, "1M parked, M:N 2 hubs");
}

#[test]
#[ignore = "stress: run by .ci/run in release"]
fn million_parked_then_unparked_single() {
    park_and_wake(
        Builder::new().single_threaded(),
        Wake::Unpark,
        "1M parked, single-threaded",
    );
}
