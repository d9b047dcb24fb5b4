//! Many greenlets blocked at once: 100,000 greenlets parked at the same time
//! (each with its own stack) on the default `vm.max_map_count` (65530), with
//! the default stack size and with `Builder::stack_size(16 KiB)`, then all
//! woken and joined, with every count checked; and 100,000 in a long sleep
//! (100,000 timers), all killed and unwound.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use common::{DropCounter, with_deadline};
use greenhub::Builder;

const N: usize = 100_000;

/// The tests of this file run one at a time: each holds up to ~1 GiB of
/// stack pages at its peak. (Several runtimes allocating stacks at the same
/// time are the subject of `concurrent_runtimes_park_100k_each`.)
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn map_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

fn max_map_count() -> usize {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(65530)
}

/// Parks `N` greenlets until a flag is set, checks that all of them are
/// parked at the same time, wakes and joins them.
fn park_all(builder: Builder, what: &'static str) {
    let _serial = one_at_a_time();
    park_all_now(builder, what);
}

fn park_all_now(builder: Builder, what: &'static str) {
    with_deadline(what, 120, move || {
        let rt = builder.build().unwrap();
        let parked = Arc::new(AtomicUsize::new(0));
        let woke = Arc::new(AtomicUsize::new(0));
        let go = Arc::new(AtomicBool::new(false));
        let (p, w, g) = (parked.clone(), woke.clone(), go.clone());
        let (sum, maps_while_parked) = rt.block_on(move || {
            let handles: Vec<_> = (0..N)
                .map(|i| {
                    let (p, w, g) = (p.clone(), w.clone(), g.clone());
                    greenhub::spawn(move || {
                        // Touch a little stack so each greenlet really uses its own.
                        let buf = std::hint::black_box([i as u8; 256]);
                        p.fetch_add(1, Ordering::SeqCst);
                        while !g.load(Ordering::Acquire) {
                            greenhub::park();
                        }
                        w.fetch_add(1, Ordering::SeqCst);
                        i as u64 + buf[0] as u64 - (i as u8) as u64
                    })
                })
                .collect();
            while p.load(Ordering::SeqCst) < N {
                greenhub::sleep(Duration::from_millis(5));
            }
            // All N are parked at once: none has gone past its park.
            assert_eq!(w.load(Ordering::SeqCst), 0, "{what}");
            assert!(handles.iter().all(|h| !h.is_finished()), "{what}");
            let maps = map_count();
            g.store(true, Ordering::Release);
            for h in &handles {
                h.greenlet().unpark();
            }
            let mut sum = 0u64;
            for h in handles {
                sum += h.join().unwrap_or_else(|e| panic!("{what}: {e}"));
            }
            (sum, maps)
        });
        assert_eq!(parked.load(Ordering::SeqCst), N, "{what}");
        assert_eq!(woke.load(Ordering::SeqCst), N, "{what}");
        assert_eq!(sum, (N as u64) * (N as u64 - 1) / 2, "{what}");
        // The stacks did not cost a mapping each (guard pages from
        // MADV_GUARD_INSTALL; Linux >= 6.13).
        assert!(
            maps_while_parked < max_map_count(),
            "{what}: {maps_while_parked} mappings"
        );
        eprintln!("{what}: {N} parked at once with {maps_while_parked} memory mappings");
    });
}

#[test]
fn hundred_thousand_parked_default_stack() {
    park_all(Builder::new().hubs(2), "100k parked, default stack");
}

#[test]
fn hundred_thousand_parked_16k_stack() {
    park_all(
        Builder::new().hubs(2).stack_size(16 * 1024),
        "100k parked, 16 KiB stack",
    );
}

#[test]
fn hundred_thousand_parked_single_threaded() {
    park_all(
        Builder::new().single_threaded().stack_size(16 * 1024),
        "100k parked, single-threaded",
    );
}

#[test]
fn hundred_thousand_in_a_long_sleep_killed() {
    let _serial = one_at_a_time();
    with_deadline("100k sleeping", 120, || {
        let rt = Builder::new()
            .hubs(2)
            .stack_size(16 * 1024)
            .build()
            .unwrap();
        let asleep = Arc::new(AtomicUsize::new(0));
        let drops = Arc::new(AtomicUsize::new(0));
        let after = Arc::new(AtomicUsize::new(0));
        let (s, d, a) = (asleep.clone(), drops.clone(), after.clone());
        let killed = rt.block_on(move || {
            let handles: Vec<_> = (0..N)
                .map(|_| {
                    let (s, d, a) = (s.clone(), d.clone(), a.clone());
                    greenhub::spawn(move || {
                        let _g = DropCounter(d);
                        s.fetch_add(1, Ordering::SeqCst);
                        greenhub::sleep(Duration::from_secs(3600));
                        a.fetch_add(1, Ordering::SeqCst);
                    })
                })
                .collect();
            while s.load(Ordering::SeqCst) < N {
                greenhub::sleep(Duration::from_millis(5));
            }
            assert_eq!(d.load(Ordering::SeqCst), 0);
            for h in &handles {
                h.kill();
            }
            handles
                .into_iter()
                .map(|h| h.join())
                .filter(|r| r.as_ref().is_err_and(|e| e.is_killed()))
                .count()
        });
        assert_eq!(killed, N);
        assert_eq!(asleep.load(Ordering::SeqCst), N);
        assert_eq!(drops.load(Ordering::SeqCst), N);
        assert_eq!(after.load(Ordering::SeqCst), 0);
    });
}

/// Four runtimes (twelve hubs on this 2-core machine) park 100,000
/// greenlets each at the same time, all with 16 KiB stacks, so that hubs
/// race for the same size class of the process-wide stack allocator.
#[test]
fn concurrent_runtimes_park_100k_each() {
    let _serial = one_at_a_time();
    let runs: Vec<_> = [
        "concurrent 0",
        "concurrent 1",
        "concurrent 2",
        "concurrent 3",
    ]
    .into_iter()
    .map(|what| {
        std::thread::spawn(move || park_all_now(Builder::new().hubs(3).stack_size(16 * 1024), what))
    })
    .collect();
    for r in runs {
        if let Err(p) = r.join() {
            std::panic::resume_unwind(p);
        }
    }
}
