//! gevent's kill and join options, ported: `kill(exception=...)` as
//! `JoinHandle::kill_with` (the reason reaches `join`; the first kill
//! decides; a finished greenlet keeps its outcome; from any hub or thread),
//! `joinall(raise_error=True, count=n)` as `greenlet::JoinAll` (exact
//! completion orders in single-threaded mode; the handles not seen finished
//! come back and can still be joined), and gevent's re-raise of
//! `SystemExit` in the main greenlet as `greenlet::Builder::escalate` (the
//! main greenlet is interrupted and `block_on` resumes the original payload;
//! the first escalation wins; one with no `block_on` running waits for the
//! next).

mod common;

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use common::{DropCounter, in_each_mode, mode_builders, with_deadline};
use greenhub::JoinHandle;
use greenhub::greenlet::{Builder, JoinAll, Joined};

const FOREVER: Duration = Duration::from_secs(3600);

#[derive(Debug, PartialEq)]
struct Reason(u32);

#[derive(Debug, PartialEq)]
struct Fatal(u32);

fn sleeper() -> JoinHandle<()> {
    greenhub::spawn(|| greenhub::sleep(FOREVER))
}

fn reason_of(h: JoinHandle<()>) -> Option<u32> {
    let err = h.join().unwrap_err();
    assert!(err.is_killed(), "{err:?}");
    err.kill_reason()
        .map(|r| r.downcast_ref::<Reason>().expect("a Reason").0)
}

// ---------------------------------------------------------------- kill_with

#[test]
fn kill_with_reason_reaches_join_and_destructors_run() {
    in_each_mode("kill_with_reason", |mode| {
        let drops = Arc::new(AtomicUsize::new(0));
        let started = Arc::new(AtomicBool::new(false));
        let (d, s) = (drops.clone(), started.clone());
        let h = greenhub::spawn(move || {
            let _g = DropCounter(d);
            s.store(true, Ordering::SeqCst);
            greenhub::sleep(FOREVER);
        });
        while !started.load(Ordering::SeqCst) {
            greenhub::yield_now();
        }
        h.kill_with(Reason(3));
        let err = h.join().unwrap_err();
        assert!(err.is_killed(), "{mode}");
        assert!(!err.is_panic(), "{mode}");
        assert_eq!(err.to_string(), "greenlet was killed", "{mode}");
        assert_eq!(drops.load(Ordering::SeqCst), 1, "{mode}: destructor");
        let reason = err.try_into_kill_reason().unwrap();
        assert_eq!(*reason.downcast::<Reason>().unwrap(), Reason(3), "{mode}");

        // A string reason shows in the message.
        let h = sleeper();
        h.kill_with("shutting down");
        let err = h.join().unwrap_err();
        assert_eq!(
            err.to_string(),
            "greenlet was killed: shutting down",
            "{mode}"
        );
        assert_eq!(
            err.kill_reason().unwrap().downcast_ref::<&str>(),
            Some(&"shutting down")
        );
    });
}

#[test]
fn plain_kill_has_no_reason() {
    in_each_mode("plain_kill_has_no_reason", |mode| {
        let h = sleeper();
        h.kill();
        let err = h.join().unwrap_err();
        assert!(err.kill_reason().is_none(), "{mode}");
        assert!(
            err.try_into_kill_reason().unwrap_err().is_killed(),
            "{mode}"
        );
        let err = greenhub::spawn(|| panic!("p")).join().unwrap_err();
        assert!(err.kill_reason().is_none(), "{mode}");
    });
}

#[test]
fn kill_with_after_finish_keeps_the_real_outcome() {
    in_each_mode("kill_with_after_finish", |mode| {
        let drops = Arc::new(AtomicUsize::new(0));
        let h = greenhub::spawn(|| 17);
        while !h.is_finished() {
            greenhub::yield_now();
        }
        h.kill_with(DropCounter(drops.clone()));
        assert_eq!(h.join().unwrap(), 17, "{mode}");
        assert_eq!(drops.load(Ordering::SeqCst), 1, "{mode}: reason dropped");

        let h = greenhub::spawn(|| -> u32 { panic::panic_any(Fatal(1)) });
        while !h.is_finished() {
            greenhub::yield_now();
        }
        h.kill_with(Reason(9));
        let err = h.join().unwrap_err();
        assert_eq!(err.into_panic().downcast_ref::<Fatal>(), Some(&Fatal(1)));
    });
}

#[test]
fn the_first_kill_decides() {
    in_each_mode("the_first_kill_decides", |mode| {
        let h = sleeper();
        h.kill();
        h.kill_with(Reason(1));
        assert_eq!(reason_of(h), None, "{mode}: kill, then kill_with");

        let h = sleeper();
        h.kill_with(Reason(1));
        h.kill_with(Reason(2));
        h.kill();
        assert_eq!(reason_of(h), Some(1), "{mode}: kill_with 1, 2, kill");

        // Every reason is dropped exactly once: the used one with the error,
        // refused ones at once.
        let drops = Arc::new(AtomicUsize::new(0));
        let h = sleeper();
        h.kill_with(DropCounter(drops.clone()));
        h.kill_with(DropCounter(drops.clone()));
        assert_eq!(drops.load(Ordering::SeqCst), 1, "{mode}: refused reason");
        let err = h.join().unwrap_err();
        assert!(err.kill_reason().is_some(), "{mode}");
        assert_eq!(drops.load(Ordering::SeqCst), 1, "{mode}");
        drop(err);
        assert_eq!(drops.load(Ordering::SeqCst), 2, "{mode}: used reason");
    });
}

#[test]
fn kill_with_before_start_never_runs_and_keeps_the_reason() {
    with_deadline("kill_with_before_start", 60, || {
        // Single-threaded: the spawner does not block between spawn and
        // kill, so the greenlet cannot have started.
        let rt = greenhub::Builder::new().single_threaded().build().unwrap();
        rt.block_on(|| {
            let ran = Arc::new(AtomicBool::new(false));
            let r = ran.clone();
            let h = greenhub::spawn(move || r.store(true, Ordering::SeqCst));
            h.kill_with(Reason(5));
            assert_eq!(reason_of(h), Some(5));
            assert!(!ran.load(Ordering::SeqCst), "a killed greenlet started");
        });
    });
}

#[test]
fn kill_with_reason_survives_runtime_shutdown() {
    with_deadline("kill_with_then_shutdown", 60, || {
        for (mode, builder) in mode_builders() {
            let rt = builder.build().unwrap();
            // Killed with a reason from outside while the runtime is torn down.
            let h = rt.spawn(|| greenhub::sleep(FOREVER));
            h.kill_with(Reason(8));
            drop(rt);
            assert_eq!(reason_of(h), Some(8), "{mode}");
        }
    });
}

#[test]
fn kill_with_from_another_hub_and_from_a_thread() {
    with_deadline("kill_with_cross_hub", 60, || {
        let rt = greenhub::Builder::new().hubs(2).build().unwrap();
        let started = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..8u32)
            .map(|_| {
                let s = started.clone();
                rt.spawn(move || {
                    s.fetch_add(1, Ordering::SeqCst);
                    greenhub::sleep(FOREVER);
                })
            })
            .collect();
        assert!(common::eventually(30, || started.load(Ordering::SeqCst) == 8));
        let (a, b): (Vec<_>, Vec<_>) = hs.into_iter().enumerate().partition(|(i, _)| i % 2 == 0);
        // From an OS thread.
        std::thread::scope(|s| {
            s.spawn(|| {
                for (i, h) in &a {
                    h.kill_with(Reason(*i as u32));
                }
            });
        });
        // From greenlets, which may run on either hub.
        let b = rt
            .spawn(move || {
                let killers: Vec<_> = b
                    .into_iter()
                    .map(|(i, h)| {
                        greenhub::spawn(move || {
                            h.kill_with(Reason(i as u32));
                            (i, h)
                        })
                    })
                    .collect();
                killers
                    .into_iter()
                    .map(|k| k.join().unwrap())
                    .collect::<Vec<_>>()
            })
            .join()
            .unwrap();
        for (i, h) in a.into_iter().chain(b) {
            assert_eq!(reason_of(h), Some(i as u32));
        }
    });
}

#[test]
fn kill_with_io_error_converts_into_it() {
    in_each_mode("kill_with_io_error", |mode| {
        let h = sleeper();
        h.kill_with(io::Error::new(io::ErrorKind::TimedOut, "no reply"));
        let err = h.join().unwrap_err();
        assert_eq!(err.to_string(), "greenlet was killed: no reply", "{mode}");
        assert!(std::error::Error::source(&err).is_some(), "{mode}");
        let io_err = io::Error::from(err);
        assert_eq!(io_err.kind(), io::ErrorKind::TimedOut, "{mode}");
        assert_eq!(io_err.to_string(), "no reply", "{mode}");
    });
}

// ------------------------------------------------------------------ JoinAll

/// Spawns the workers of the ordering tests: greenlet `i` yields `yields[i]`
/// times, then returns `i` or (if `i == bad`) panics; `None` sleeps forever.
/// In single-threaded mode greenlet `i` finishes at its yield count's turn.
fn workers(yields: &[Option<usize>], bad: Option<usize>) -> Vec<JoinHandle<usize>> {
    yields
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            greenhub::spawn(move || {
                let Some(n) = n else {
                    greenhub::sleep(FOREVER);
                    unreachable!()
                };
                for _ in 0..n {
                    greenhub::yield_now();
                }
                if bad == Some(i) {
                    panic::panic_any(Fatal(i as u32));
                }
                i
            })
        })
        .collect()
}

fn indices<V>(v: &[(usize, V)]) -> Vec<usize> {
    v.iter().map(|(i, _)| *i).collect()
}

/// Joins what `JoinAll` left pending: the idlers are killed first.
fn finish_pending(mode: &str, pending: Vec<(usize, JoinHandle<usize>)>, idlers: &[usize]) {
    for (i, h) in pending {
        if idlers.contains(&i) {
            h.kill();
            assert!(h.join().unwrap_err().is_killed(), "{mode}: {i}");
        } else {
            assert_eq!(h.join().unwrap(), i, "{mode}: pending {i} lost its value");
        }
    }
}

#[test]
fn joinall_fail_fast_stops_at_the_first_error_in_completion_order() {
    in_each_mode("joinall_fail_fast", |mode| {
        // Finishing order in single mode: 1 (Ok), 2 (panic), 0 (Ok); 3 never.
        let hs = workers(&[Some(3), Some(1), Some(2), None], Some(2));
        let Joined { done, pending } = JoinAll::new(hs).fail_fast().join();
        let (last, outcome) = done.last().unwrap();
        assert_eq!(*last, 2, "{mode}");
        let payload = outcome.as_ref().unwrap_err();
        assert!(payload.is_panic(), "{mode}");
        for (i, r) in &done[..done.len() - 1] {
            assert_eq!(r.as_ref().unwrap(), i, "{mode}");
        }
        if mode == "single" {
            assert_eq!(indices(&done), [1, 2], "{mode}");
            // 0 finished too, after 2, unseen: its value is in its handle.
            assert_eq!(indices(&pending), [0, 3], "{mode}");
        } else {
            let mut all: Vec<_> = indices(&done)
                .into_iter()
                .chain(indices(&pending))
                .collect();
            all.sort();
            assert_eq!(all, [0, 1, 2, 3], "{mode}");
            assert!(indices(&pending).contains(&3), "{mode}");
        }
        finish_pending(mode, pending, &[3]);
    });
}

#[test]
fn joinall_fail_fast_without_errors_joins_all() {
    in_each_mode("joinall_fail_fast_ok", |mode| {
        let hs = workers(&[Some(3), Some(1), Some(2)], None);
        let Joined { done, pending } = JoinAll::new(hs).fail_fast().join();
        assert!(pending.is_empty(), "{mode}");
        if mode == "single" {
            assert_eq!(indices(&done), [1, 2, 0], "{mode}");
        }
        let mut values: Vec<_> = done.into_iter().map(|(_, r)| r.unwrap()).collect();
        values.sort();
        assert_eq!(values, [0, 1, 2], "{mode}");
    });
}

#[test]
fn joinall_count_returns_after_n_and_hands_back_the_rest() {
    in_each_mode("joinall_count", |mode| {
        let hs = workers(&[Some(3), Some(1), Some(2), None], None);
        let Joined { done, pending } = JoinAll::new(hs).count(2).join();
        assert_eq!(done.len(), 2, "{mode}");
        for (i, r) in &done {
            assert_eq!(r.as_ref().unwrap(), i, "{mode}");
        }
        assert!(!indices(&done).contains(&3), "{mode}");
        if mode == "single" {
            assert_eq!(indices(&done), [1, 2], "{mode}");
            assert_eq!(indices(&pending), [0, 3], "{mode}");
        }
        assert_eq!(pending.len(), 2, "{mode}");
        finish_pending(mode, pending, &[3]);

        // Errors count too, unless fail_fast stops first.
        let hs = workers(&[Some(1), Some(2), Some(3)], Some(0));
        let Joined { done, pending } = JoinAll::new(hs).count(2).join();
        assert_eq!(done.len(), 2, "{mode}");
        if mode == "single" {
            assert_eq!(indices(&done), [0, 1], "{mode}");
            assert!(done[0].1.as_ref().unwrap_err().is_panic(), "{mode}");
        }
        finish_pending(mode, pending, &[]);
    });
}

#[test]
fn joinall_count_zero_more_than_all_and_empty() {
    in_each_mode("joinall_count_edges", |mode| {
        let hs = workers(&[Some(0), Some(1)], None);
        let Joined { done, pending } = JoinAll::new(hs).count(0).join();
        assert!(done.is_empty(), "{mode}");
        assert_eq!(indices(&pending), [0, 1], "{mode}");
        finish_pending(mode, pending, &[]);

        let hs = workers(&[Some(0), Some(1)], None);
        let Joined { done, pending } = JoinAll::new(hs).count(10).join();
        assert_eq!(done.len(), 2, "{mode}");
        assert!(pending.is_empty(), "{mode}");

        let Joined { done, pending } = JoinAll::<u8>::new(Vec::new()).fail_fast().join();
        assert!(done.is_empty() && pending.is_empty(), "{mode}");
    });
}

#[test]
fn joinall_timeout_hands_back_the_unfinished() {
    in_each_mode("joinall_timeout", |mode| {
        let hs = workers(&[None, Some(0), None], None);
        while !hs[1].is_finished() {
            greenhub::yield_now();
        }
        let Joined { done, pending } = JoinAll::new(hs).timeout(Duration::from_millis(20)).join();
        assert_eq!(indices(&done), [1], "{mode}");
        assert_eq!(indices(&pending), [0, 2], "{mode}");
        finish_pending(mode, pending, &[0, 2]);
    });
}

#[test]
fn joinall_keeps_the_given_order() {
    in_each_mode("joinall_given_order", |mode| {
        // Completion order 1, 2, 0; joinall reports 0, 1, 2.
        let hs = workers(&[Some(3), Some(1), Some(2)], Some(1));
        let (done, pending) = greenhub::joinall(hs, None);
        assert!(pending.is_empty(), "{mode}");
        assert_eq!(done.len(), 3, "{mode}");
        assert_eq!(*done[0].as_ref().unwrap(), 0, "{mode}");
        assert!(done[1].as_ref().unwrap_err().is_panic(), "{mode}");
        assert_eq!(*done[2].as_ref().unwrap(), 2, "{mode}");
    });
}

#[test]
fn joinall_from_a_plain_thread() {
    with_deadline("joinall_from_a_plain_thread", 60, || {
        for (mode, builder) in mode_builders() {
            let rt = builder.build().unwrap();
            let hs = vec![
                rt.spawn(|| greenhub::sleep(FOREVER)),
                rt.spawn(|| panic::panic_any(Fatal(1))),
            ];
            let Joined { done, pending } = JoinAll::new(hs).fail_fast().join();
            assert_eq!(indices(&done), [1], "{mode}");
            assert_eq!(indices(&pending), [0], "{mode}");
            let err = done.into_iter().next().unwrap().1.unwrap_err();
            assert_eq!(err.into_panic().downcast_ref::<Fatal>(), Some(&Fatal(1)));
            pending[0].1.kill();
        }
    });
}

#[test]
fn joinall_joiner_killed_leaves_the_greenlets_running() {
    in_each_mode("joinall_joiner_killed", |mode| {
        let go = Arc::new(AtomicBool::new(false));
        let finished = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..3)
            .map(|_| {
                let (go, finished) = (go.clone(), finished.clone());
                greenhub::spawn(move || {
                    while !go.load(Ordering::SeqCst) {
                        greenhub::sleep(Duration::from_millis(1));
                    }
                    finished.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        let joiner = greenhub::spawn(move || JoinAll::new(hs).join().done.len());
        greenhub::sleep(Duration::from_millis(5));
        joiner.kill();
        assert!(joiner.join().unwrap_err().is_killed(), "{mode}");
        go.store(true, Ordering::SeqCst);
        while finished.load(Ordering::SeqCst) < 3 {
            greenhub::sleep(Duration::from_millis(1));
        }
    });
}

// ----------------------------------------------------------------- escalate

fn escalating<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
    Builder::new().escalate(true).spawn(f).unwrap()
}

/// How the main greenlet waits while an escalating greenlet panics.
#[derive(Clone, Copy, Debug)]
enum MainWaits {
    Sleep,
    Park,
    Join,
}

#[test]
fn escalated_panic_interrupts_the_main_greenlet_and_block_on_resumes_it() {
    with_deadline("escalate_to_block_on", 60, || {
        for (mode, builder) in mode_builders() {
            for how in [MainWaits::Sleep, MainWaits::Park, MainWaits::Join] {
                let rt = builder.clone().build().unwrap();
                let main_drops = Arc::new(AtomicUsize::new(0));
                let other_drops = Arc::new(AtomicUsize::new(0));
                let after = Arc::new(AtomicBool::new(false));
                let (md, od, a) = (main_drops.clone(), other_drops.clone(), after.clone());
                let caught = panic::catch_unwind(AssertUnwindSafe(|| {
                    rt.block_on(move || {
                        let _g = DropCounter(md);
                        let other = greenhub::spawn(move || {
                            let _g = DropCounter(od);
                            greenhub::sleep(FOREVER);
                        });
                        escalating(|| {
                            greenhub::yield_now();
                            panic::panic_any(Fatal(7))
                        });
                        match how {
                            MainWaits::Sleep => greenhub::sleep(FOREVER),
                            MainWaits::Park => loop {
                                greenhub::park();
                            },
                            MainWaits::Join => other.join().unwrap(),
                        }
                        a.store(true, Ordering::SeqCst);
                    })
                }));
                let payload = caught.expect_err("block_on must resume the escalated panic");
                assert_eq!(
                    payload.downcast_ref::<Fatal>(),
                    Some(&Fatal(7)),
                    "{mode} {how:?}"
                );
                assert!(
                    !after.load(Ordering::SeqCst),
                    "{mode} {how:?}: main went on"
                );
                assert_eq!(main_drops.load(Ordering::SeqCst), 1, "{mode} {how:?}");
                // The runtime is still up (block_on does not shut it down):
                // the other greenlet lives until it is dropped, as after a
                // normal return.
                assert_eq!(other_drops.load(Ordering::SeqCst), 0, "{mode} {how:?}");
                assert_eq!(rt.block_on(|| 5), 5, "{mode} {how:?}: runtime usable");
                drop(rt);
                assert_eq!(other_drops.load(Ordering::SeqCst), 1, "{mode} {how:?}");
            }
        }
    });
}

#[test]
fn escalation_through_run_shuts_the_runtime_down() {
    with_deadline("escalate_through_run", 60, || {
        let drops = Arc::new(AtomicUsize::new(0));
        let d = drops.clone();
        let caught = panic::catch_unwind(move || {
            greenhub::run(move || {
                greenhub::spawn(move || {
                    let _g = DropCounter(d);
                    greenhub::sleep(FOREVER);
                });
                escalating(|| -> () { panic!("fatal config error") });
                greenhub::sleep(FOREVER);
            })
        });
        assert_eq!(
            caught.unwrap_err().downcast_ref::<&str>(),
            Some(&"fatal config error")
        );
        assert_eq!(drops.load(Ordering::SeqCst), 1, "shutdown killed the rest");
    });
}

#[test]
fn the_first_escalation_wins() {
    with_deadline("first_escalation_wins", 60, || {
        for (mode, builder) in mode_builders() {
            let rt = builder.build().unwrap();
            let (tx, rx) = mpsc::channel();
            let caught = panic::catch_unwind(AssertUnwindSafe(|| {
                rt.block_on(move || {
                    let a = escalating(|| -> () { panic::panic_any(Fatal(1)) });
                    let tx_b = tx.clone();
                    // b panics after a escalated, before the main greenlet
                    // can end: its guard below joins b while unwinding.
                    let b = escalating(move || -> () {
                        tx_b.send(("a", a.join())).unwrap();
                        panic::panic_any(Fatal(2))
                    });
                    struct JoinOnDrop(
                        Option<JoinHandle<()>>,
                        mpsc::Sender<(&'static str, Result<(), greenhub::JoinError>)>,
                    );
                    impl Drop for JoinOnDrop {
                        fn drop(&mut self) {
                            let b = self.0.take().unwrap().join();
                            self.1.send(("b", b)).unwrap();
                        }
                    }
                    let _g = JoinOnDrop(Some(b), tx);
                    greenhub::sleep(FOREVER);
                })
            }));
            let payload = caught.unwrap_err();
            assert_eq!(payload.downcast_ref::<Fatal>(), Some(&Fatal(1)), "{mode}");
            let (who, a) = rx.recv().unwrap();
            assert_eq!(who, "a");
            // a's handle: a copy-less note, the payload went to block_on.
            let a = a.unwrap_err().into_panic();
            assert_eq!(
                a.downcast_ref::<&str>(),
                Some(&"greenhub: this panic was escalated; its payload went to block_on"),
                "{mode}"
            );
            let (who, b) = rx.recv().unwrap();
            assert_eq!(who, "b");
            // b's panic was not escalated: its handle has the original.
            assert_eq!(
                b.unwrap_err().into_panic().downcast_ref::<Fatal>(),
                Some(&Fatal(2)),
                "{mode}"
            );
            // Nothing is left waiting for the next block_on.
            assert_eq!(rt.block_on(|| 3), 3, "{mode}");
        }
    });
}

#[test]
fn escalation_wins_over_a_main_greenlet_that_returns() {
    with_deadline("escalation_wins_over_return", 60, || {
        for (mode, builder) in mode_builders() {
            let rt = builder.build().unwrap();
            let caught = panic::catch_unwind(AssertUnwindSafe(|| {
                rt.block_on(|| {
                    escalating(|| -> () { panic!("escalated") });
                    // Survive the kill without blocking again, and return.
                    while panic::catch_unwind(greenhub::yield_now).is_ok() {}
                    5
                })
            }));
            assert_eq!(
                caught.unwrap_err().downcast_ref::<&str>(),
                Some(&"escalated"),
                "{mode}"
            );
        }
    });
}

#[test]
fn escalation_with_no_block_on_running_waits_for_the_next() {
    with_deadline("escalation_waits_for_block_on", 60, || {
        for (mode, builder) in mode_builders() {
            let rt = builder.build().unwrap();
            let h = rt
                .spawn(|| escalating(|| -> () { panic!("{}", String::from("boom")) }))
                .join()
                .unwrap();
            // The handle has a copy of the string payload.
            let err = h.join().unwrap_err();
            assert_eq!(
                err.into_panic()
                    .downcast_ref::<String>()
                    .map(String::as_str),
                Some("boom"),
                "{mode}"
            );
            let ran = Arc::new(AtomicBool::new(false));
            let r = ran.clone();
            let caught = panic::catch_unwind(AssertUnwindSafe(|| {
                rt.block_on(move || r.store(true, Ordering::SeqCst))
            }));
            assert_eq!(
                caught
                    .unwrap_err()
                    .downcast_ref::<String>()
                    .map(String::as_str),
                Some("boom"),
                "{mode}"
            );
            assert!(!ran.load(Ordering::SeqCst), "{mode}: closure ran");
            assert_eq!(rt.block_on(|| 4), 4, "{mode}: only once");
        }
    });
}

#[test]
fn kills_and_unescalated_panics_do_not_escalate() {
    in_each_mode("no_escalation", |mode| {
        let h = escalating(|| greenhub::sleep(FOREVER));
        greenhub::yield_now();
        h.kill();
        assert!(h.join().unwrap_err().is_killed(), "{mode}");
        let h = Builder::new()
            .escalate(false)
            .spawn(|| panic::panic_any(Fatal(3)))
            .unwrap();
        let err = h.join().unwrap_err();
        assert_eq!(err.into_panic().downcast_ref::<Fatal>(), Some(&Fatal(3)));
        // Still running: nothing interrupted the main greenlet.
        greenhub::sleep(Duration::from_millis(2));
    });
}
