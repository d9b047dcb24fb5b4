//! Panics: a panicking greenlet is reported by `join` with its payload (which
//! downcasts to the original type), while its hub survives and the other
//! greenlets finish; `block_on` resumes the main greenlet's panic in the
//! caller; and a panic payload (or a value) whose `Drop` panics does not take
//! the hub down.

mod common;

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::with_deadline;
use greenhub::Builder;

#[derive(Debug, PartialEq)]
struct CustomPayload {
    code: u32,
}

#[test]
fn join_reports_panic_payload_and_hub_survives() {
    with_deadline("join_reports_panic_payload", 60, || {
        // Single-threaded: the panic happens on the one and only hub, which
        // must go on running everything else.
        for builder in [
            Builder::new().single_threaded(),
            Builder::new().pinned().hubs(2),
            Builder::new().hubs(2),
        ] {
            let rt = builder.build().unwrap();
            let finished = Arc::new(AtomicUsize::new(0));
            let f2 = finished.clone();
            rt.block_on(move || {
                let a = greenhub::spawn(|| -> u32 { panic!("static str payload") });
                let b = greenhub::spawn(|| -> u32 {
                    greenhub::yield_now();
                    panic!("formatted payload {}", std::hint::black_box(42))
                });
                let c = greenhub::spawn(|| -> u32 {
                    greenhub::sleep(Duration::from_millis(1));
                    panic::panic_any(CustomPayload { code: 7 })
                });
                // Many ordinary greenlets interleaved with the panicking ones.
                let ok: Vec<_> = (0..200u32)
                    .map(|i| {
                        let f = f2.clone();
                        greenhub::spawn(move || {
                            greenhub::yield_now();
                            f.fetch_add(1, Ordering::SeqCst);
                            i
                        })
                    })
                    .collect();

                let e = a.join().unwrap_err();
                assert!(e.is_panic() && !e.is_killed() && e.io_error().is_none());
                assert_eq!(e.to_string(), "greenlet panicked: static str payload");
                assert_eq!(
                    e.into_panic().downcast_ref::<&str>(),
                    Some(&"static str payload")
                );

                let e = b.join().unwrap_err();
                assert!(e.is_panic());
                let payload = e.try_into_panic().expect("a panic");
                assert_eq!(
                    payload.downcast_ref::<String>().map(String::as_str),
                    Some("formatted payload 42")
                );

                let e = c.join().unwrap_err();
                assert!(e.is_panic());
                let payload = e.into_panic().downcast::<CustomPayload>().unwrap();
                assert_eq!(*payload, CustomPayload { code: 7 });

                let sum: u32 = ok.into_iter().map(|h| h.join().unwrap()).sum();
                assert_eq!(sum, (0..200).sum::<u32>());

                // The hub(s) still run new greenlets after the panics.
                let after = greenhub::spawn(|| {
                    greenhub::sleep(Duration::from_millis(1));
                    "still alive"
                });
                assert_eq!(after.join().unwrap(), "still alive");
            });
            assert_eq!(finished.load(Ordering::SeqCst), 200);
        }
    });
}

#[test]
fn many_panics_in_mn_mode() {
    with_deadline("many_panics_in_mn_mode", 120, || {
        let rt = Builder::new().hubs(2).build().unwrap();
        let (panicked, sum) = rt.block_on(|| {
            let handles: Vec<_> = (0..2000u64)
                .map(|i| {
                    greenhub::spawn(move || {
                        if i % 3 == 0 {
                            greenhub::yield_now();
                        }
                        if i % 7 == 0 {
                            panic::panic_any(i);
                        }
                        i
                    })
                })
                .collect();
            let mut panicked = 0;
            let mut sum = 0;
            for (i, h) in handles.into_iter().enumerate() {
                match h.join() {
                    Ok(v) => sum += v,
                    Err(e) => {
                        assert_eq!(*e.into_panic().downcast::<u64>().unwrap(), i as u64);
                        panicked += 1;
                    }
                }
            }
            (panicked, sum)
        });
        assert_eq!(panicked, (0..2000).filter(|i| i % 7 == 0).count());
        assert_eq!(sum, (0..2000u64).filter(|i| i % 7 != 0).sum::<u64>());
    });
}

#[test]
fn panic_joined_from_plain_thread() {
    with_deadline("panic_joined_from_plain_thread", 60, || {
        let rt = Builder::new().hubs(2).build().unwrap();
        let h: greenhub::JoinHandle<()> = rt.spawn(|| {
            greenhub::sleep(Duration::from_millis(2));
            panic!("from a greenlet to a thread")
        });
        let e = h.join().unwrap_err();
        assert_eq!(
            e.into_panic().downcast_ref::<&str>(),
            Some(&"from a greenlet to a thread")
        );
        assert_eq!(rt.spawn(|| 9).join().unwrap(), 9);
    });
}

#[test]
fn block_on_resumes_main_greenlet_panic() {
    with_deadline("block_on_resumes_main_greenlet_panic", 60, || {
        for builder in [Builder::new().single_threaded(), Builder::new().hubs(2)] {
            let rt = builder.build().unwrap();
            let caught = panic::catch_unwind(AssertUnwindSafe(|| {
                rt.block_on(|| -> u32 {
                    let child = greenhub::spawn(|| 1);
                    child.join().unwrap();
                    greenhub::yield_now();
                    panic!("main greenlet failed")
                })
            }));
            let payload = caught.expect_err("block_on must resume the panic");
            assert_eq!(
                payload.downcast_ref::<&str>(),
                Some(&"main greenlet failed")
            );

            // The same payload object (not a re-formatted message) comes back.
            let caught = panic::catch_unwind(AssertUnwindSafe(|| {
                rt.block_on(|| -> u32 { panic::panic_any(CustomPayload { code: 99 }) })
            }));
            let payload = caught.unwrap_err().downcast::<CustomPayload>().unwrap();
            assert_eq!(payload.code, 99);

            // The runtime is still usable afterwards.
            assert_eq!(
                rt.block_on(|| greenhub::spawn(|| 40).join().unwrap() + 2),
                42
            );
        }

        // `greenhub::run` resumes it too.
        let caught = panic::catch_unwind(|| greenhub::run::<_, ()>(|| panic!("run failed")));
        assert_eq!(
            caught.unwrap_err().downcast_ref::<&str>(),
            Some(&"run failed")
        );
    });
}

/// A panic payload whose destructor panics.
struct PanicOnDrop {
    drops: Arc<AtomicUsize>,
}

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
        panic!("PanicOnDrop::drop panics");
    }
}

#[test]
fn payload_whose_drop_panics_does_not_kill_the_hub() {
    with_deadline("payload_whose_drop_panics", 60, || {
        let rt = Builder::new().single_threaded().build().unwrap();
        let drops = Arc::new(AtomicUsize::new(0));
        let d = drops.clone();
        let survived = rt.block_on(move || {
            // 1. Detached: the handle is dropped before the greenlet panics,
            //    so the hub itself drops the payload.
            let d1 = d.clone();
            let detached = greenhub::spawn(move || {
                greenhub::yield_now();
                panic::panic_any(PanicOnDrop { drops: d1 })
            });
            drop(detached);
            for _ in 0..3 {
                greenhub::yield_now();
            }

            // 2. The handle is dropped after the panic, without joining.
            let d2 = d.clone();
            let unjoined = greenhub::spawn(move || panic::panic_any(PanicOnDrop { drops: d2 }));
            while !unjoined.is_finished() {
                greenhub::yield_now();
            }
            drop(unjoined);

            // 3. A detached greenlet *returns* a value whose drop panics.
            let d3 = d.clone();
            drop(greenhub::spawn(move || {
                greenhub::yield_now();
                PanicOnDrop { drops: d3 }
            }));
            for _ in 0..3 {
                greenhub::yield_now();
            }

            // 4. Joined: the payload reaches the joiner intact.
            let d4 = d.clone();
            let joined = greenhub::spawn(move || panic::panic_any(PanicOnDrop { drops: d4 }));
            let payload = joined.join().unwrap_err().into_panic();
            assert!(payload.is::<PanicOnDrop>());
            // Dropping it here would panic in this greenlet; that is the
            // joiner's business, so keep the test quiet.
            std::mem::forget(payload);

            // The hub survived all of it.
            let hs: Vec<_> = (0..100u32)
                .map(|i| {
                    greenhub::spawn(move || {
                        greenhub::sleep(Duration::from_millis(1));
                        i
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum::<u32>()
        });
        assert_eq!(survived, (0..100).sum::<u32>());
        // The three payloads the runtime dropped had their destructor run
        // (and its panic contained); the joined one was forgotten.
        assert_eq!(drops.load(Ordering::SeqCst), 3);
        // And the runtime still works after the main greenlet.
        assert_eq!(rt.spawn(|| 1).join().unwrap(), 1);
    });
}

/// A closure capture whose destructor panics, for a greenlet killed before
/// it starts (its closure is dropped by the hub, never called).
#[test]
fn unstarted_closure_whose_drop_panics_does_not_kill_the_hub() {
    with_deadline("unstarted_closure_drop_panics", 60, || {
        let rt = Builder::new().single_threaded().build().unwrap();
        let drops = Arc::new(AtomicUsize::new(0));
        let d = drops.clone();
        let v = rt.block_on(move || {
            let bomb = PanicOnDrop { drops: d };
            let h: greenhub::JoinHandle<()> = greenhub::spawn(move || {
                let _keep = &bomb;
                unreachable!("a greenlet killed before it started must not run")
            });
            h.kill();
            assert!(h.join().unwrap_err().is_killed());
            greenhub::spawn(|| 11).join().unwrap()
        });
        assert_eq!(v, 11);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    });
}
