//! Greenlet task blocks come from greenhub's own allocator
//! (`src/greenlet/alloc.rs`: per-thread caches, a process-wide pool). These
//! tests free blocks where the allocator must not assume anything: on other
//! threads than the one that allocated them, after the hub threads that ran
//! the greenlets have ended, from threads that exit right after (their cache
//! goes to the pool), and for tasks too large or too aligned for the size
//! classes. Each greenlet's output is checked, so a block handed out twice
//! or reused while referenced would show as a wrong value (or a crash).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use common::{DropCounter, in_each_mode, mode_builders, with_deadline};

#[repr(align(64))]
#[derive(Clone, Copy)]
struct Aligned([u64; 8]);

fn check_small(i: usize, v: (usize, String)) {
    assert_eq!(v, (i, format!("g{i}")));
}

#[test]
fn handles_outlive_their_hub_threads() {
    with_deadline("handles_outlive_their_hub_threads", 60, || {
        for (mode, builder) in mode_builders() {
            let rt = builder.build().unwrap();
            let drops = Arc::new(AtomicUsize::new(0));
            // More than two batches, so some blocks reach the pool.
            let small: Vec<_> = (0..300)
                .map(|i| {
                    let d = DropCounter(drops.clone());
                    rt.spawn(move || {
                        let _d = d;
                        (i, format!("g{i}"))
                    })
                })
                .collect();
            // An output too large for the size classes (the closure itself
            // must stay small: corosensei moves it onto the stack, at most
            // 1 KiB).
            let big: Vec<_> = (0..20).map(|i| rt.spawn(move || [i as u8; 2000])).collect();
            let aligned: Vec<_> = (0..20)
                .map(|i| {
                    let a = Aligned([i; 8]);
                    rt.spawn(move || a)
                })
                .collect();
            // Let them all finish (the unjoined ones too), then end the
            // runtime.
            let ended = drops.clone();
            rt.block_on(move || {
                while ended.load(SeqCst) < 300 {
                    greenhub::sleep(std::time::Duration::from_millis(1));
                }
            });
            // The hub threads end here; the handles hold the blocks.
            drop(rt);
            std::thread::spawn(move || {
                for (i, h) in small.into_iter().enumerate() {
                    if i % 2 == 0 {
                        check_small(i, h.join().unwrap());
                    } // the odd ones are dropped unjoined
                }
                for (i, h) in big.into_iter().enumerate() {
                    assert!(h.join().unwrap().iter().all(|&b| b == i as u8));
                }
                for (i, h) in aligned.into_iter().enumerate() {
                    let a = h.join().unwrap();
                    assert!(a.0.iter().all(|&x| x == i as u64));
                }
            })
            .join()
            .unwrap();
            assert_eq!(drops.load(SeqCst), 300, "{mode}");
        }
    });
}

#[test]
fn blocks_freed_on_other_threads_are_reused() {
    in_each_mode("blocks_freed_on_other_threads_are_reused", |_mode| {
        let handle = greenhub::Handle::current();
        for _round in 0..5 {
            // Spawned here, joined on short-lived threads that exit (their
            // caches go to the pool), then spawned again from here.
            let hs: Vec<_> = (0..400)
                .map(|i| greenhub::spawn(move || (i, format!("g{i}"))))
                .collect();
            let mut chunks = Vec::new();
            let mut hs = hs.into_iter().enumerate().peekable();
            while hs.peek().is_some() {
                let part: Vec<_> = hs.by_ref().take(100).collect();
                chunks.push(std::thread::spawn(move || {
                    for (i, h) in part {
                        check_small(i, h.join().unwrap());
                    }
                }));
            }
            // And greenlets spawned by threads that exit at once.
            let spawners: Vec<_> = (0..4)
                .map(|t| {
                    let handle = handle.clone();
                    std::thread::spawn(move || {
                        (0..100)
                            .map(|i| {
                                handle.spawn(move || (t * 100 + i, format!("g{}", t * 100 + i)))
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for c in chunks {
                greenhub::blocking::unblock(move || c.join()).unwrap();
            }
            for s in spawners {
                let hs = greenhub::blocking::unblock(move || s.join()).unwrap();
                for h in hs {
                    let (i, s) = h.join().unwrap();
                    assert_eq!(s, format!("g{i}"));
                }
            }
        }
    });
}

/// A closure larger than the 1 KiB that corosensei moves onto a new stack
/// at once: the greenlet still runs, in each mode, and its captures are
/// dropped exactly once (also for one killed before it starts).
#[test]
fn a_closure_larger_than_a_kib_runs() {
    in_each_mode("a_closure_larger_than_a_kib_runs", |_mode| {
        let big = [7u64; 1024]; // 8 KiB captured by value
        let drops = Arc::new(AtomicUsize::new(0));
        let d = DropCounter(drops.clone());
        let sum = greenhub::spawn(move || {
            let _d = d;
            big.iter().sum::<u64>()
        })
        .join()
        .unwrap();
        assert_eq!(sum, 7 * 1024);
        assert_eq!(drops.load(SeqCst), 1);
        // Killed at once: in M:N another hub may have started it already.
        let d = DropCounter(drops.clone());
        let h = greenhub::spawn(move || {
            let _d = d;
            big.iter().sum::<u64>()
        });
        h.kill();
        match h.join() {
            Ok(sum) => assert_eq!(sum, 7 * 1024),
            Err(e) => assert!(e.is_killed()),
        }
        assert_eq!(drops.load(SeqCst), 2);
    });
}
