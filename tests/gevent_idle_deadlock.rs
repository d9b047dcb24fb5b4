//! gevent conformance, "the runtime has nothing left to do":
//!
//! - `wait_idle` (gevent's `gevent.wait()` with no arguments, or with a
//!   timeout): true once every other greenlet has ended and no
//!   blocking-pool job is left, false on timeout;
//! - the deadlock report (gevent's `LoopExit`, Go's "all goroutines are
//!   asleep"): with `Builder::deadlock_timeout` or
//!   `GREENHUB_DEADLOCK_REPORT`, `block_on` panics with the run-info dump
//!   when the main greenlet waits for something nothing in the runtime can
//!   bring; and never on a program that an outside thread, a timer or a
//!   pool job completes.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use common::{in_each_mode, is_child, mode_builders, run_child, with_deadline};
use greenhub::sync::Event;

const LONG: Option<Duration> = Some(Duration::from_secs(30));

// ---------------------------------------------------------------- wait_idle

#[test]
fn wait_idle_returns_true_once_sleepers_finished() {
    in_each_mode("wait_idle_sleepers", |mode| {
        let done = Arc::new(AtomicUsize::new(0));
        for ms in [5u64, 20, 40] {
            let done = done.clone();
            // Nobody keeps the handles: gevent's fire-and-forget spawn.
            greenhub::spawn(move || {
                greenhub::sleep(Duration::from_millis(ms));
                done.fetch_add(1, SeqCst);
            });
        }
        assert!(greenhub::wait_idle(LONG), "{mode}: not idle");
        assert_eq!(done.load(SeqCst), 3, "{mode}");
        // Idle stays idle.
        assert!(greenhub::wait_idle(Some(Duration::ZERO)), "{mode}");
    });
}

#[test]
fn wait_idle_returns_false_on_timeout() {
    in_each_mode("wait_idle_timeout", |mode| {
        let stop = Arc::new(Event::new());
        let s = stop.clone();
        let h = greenhub::spawn(move || s.wait());
        assert!(
            !greenhub::wait_idle(Some(Duration::from_millis(50))),
            "{mode}: idle while a greenlet waits"
        );
        assert!(!greenhub::wait_idle(Some(Duration::ZERO)), "{mode}");
        stop.set();
        assert!(greenhub::wait_idle(LONG), "{mode}");
        assert!(h.is_finished(), "{mode}");
    });
}

#[test]
fn wait_idle_waits_for_greenlets_spawned_by_greenlets() {
    fn chain(left: u32, done: Arc<AtomicUsize>) {
        greenhub::yield_now();
        done.fetch_add(1, SeqCst);
        if left > 0 {
            greenhub::spawn(move || chain(left - 1, done));
        }
    }
    in_each_mode("wait_idle_chain", |mode| {
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..4 {
            let d = done.clone();
            greenhub::spawn(move || chain(49, d));
        }
        assert!(greenhub::wait_idle(LONG), "{mode}");
        assert_eq!(done.load(SeqCst), 200, "{mode}");
    });
}

#[test]
fn wait_idle_counts_unstarted_greenlets() {
    in_each_mode("wait_idle_unstarted", |mode| {
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..100 {
            let d = done.clone();
            greenhub::spawn(move || {
                d.fetch_add(1, SeqCst);
            });
        }
        // None has started yet in single-threaded mode.
        assert!(greenhub::wait_idle(LONG), "{mode}");
        assert_eq!(done.load(SeqCst), 100, "{mode}");
    });
}

#[test]
fn wait_idle_waits_for_blocking_pool_jobs() {
    in_each_mode("wait_idle_pool", |mode| {
        let finished = Arc::new(AtomicBool::new(false));
        let f = finished.clone();
        let started = Arc::new(Event::new());
        let s = started.clone();
        let g = greenhub::spawn(move || {
            greenhub::blocking::unblock(move || {
                s.set();
                std::thread::sleep(Duration::from_millis(200));
                f.store(true, SeqCst);
            })
        });
        started.wait();
        // The greenlet that asked for the job ends; the job runs on.
        g.kill();
        assert!(g.join().unwrap_err().is_killed(), "{mode}");
        assert!(greenhub::wait_idle(LONG), "{mode}");
        assert!(finished.load(SeqCst), "{mode}: idle while a pool job ran");
    });
}

#[test]
fn wait_idle_from_another_greenlet_counts_the_main_greenlet() {
    in_each_mode("wait_idle_other", |mode| {
        // The main greenlet waits (in join) for the caller: not idle.
        let w = greenhub::spawn(|| greenhub::wait_idle(Some(Duration::from_millis(50))));
        assert!(
            !w.join().unwrap(),
            "{mode}: the main greenlet was not counted"
        );
    });
}

#[test]
fn wait_idle_with_migrating_greenlets() {
    with_deadline("wait_idle_migratable", 60, || {
        // SAFETY: the greenlets keep only integers and `Arc`s across
        // blocking calls.
        let rt = unsafe { greenhub::Builder::new().hubs(2).migratable() }
            .build()
            .unwrap();
        rt.block_on(|| {
            let done = Arc::new(AtomicUsize::new(0));
            for i in 0..50u64 {
                let d = done.clone();
                greenhub::spawn(move || {
                    for _ in 0..3 {
                        greenhub::sleep(Duration::from_millis(i % 7));
                    }
                    d.fetch_add(1, SeqCst);
                });
            }
            assert!(greenhub::wait_idle(LONG));
            assert_eq!(done.load(SeqCst), 50);
        });
    });
}

#[test]
fn wait_idle_from_a_plain_thread() {
    with_deadline("wait_idle_thread", 60, || {
        for (mode, builder) in mode_builders() {
            let rt = builder.build().unwrap();
            let done = Arc::new(AtomicUsize::new(0));
            for _ in 0..3 {
                let d = done.clone();
                rt.spawn(move || {
                    greenhub::sleep(Duration::from_millis(20));
                    d.fetch_add(1, SeqCst);
                });
            }
            let handle = rt.handle().clone();
            let idle = std::thread::spawn(move || handle.wait_idle(LONG))
                .join()
                .unwrap();
            assert!(idle, "{mode}");
            assert_eq!(done.load(SeqCst), 3, "{mode}");
            // From a plain thread the main greenlet of a `block_on` counts.
            let handle = rt.handle().clone();
            let waiter =
                std::thread::spawn(move || handle.wait_idle(Some(Duration::from_millis(50))));
            let seen = rt.block_on(move || waiter.join().unwrap());
            assert!(!seen, "{mode}: idle while block_on's greenlet ran");
        }
    });
}

// ---------------------------------------------------------- deadlock report

/// Runs `body` as the main greenlet of a runtime of `builder` with the
/// report on after `after`; returns the panic message of `block_on`, if it
/// panicked.
fn block_on_report(
    builder: greenhub::Builder,
    after: Duration,
    body: impl FnOnce() + Send + 'static,
) -> Option<String> {
    let rt = builder.deadlock_timeout(Some(after)).build().unwrap();
    let outcome = catch_unwind(AssertUnwindSafe(|| rt.block_on(body)));
    drop(rt);
    match outcome {
        Ok(()) => None,
        Err(p) => Some(
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default(),
        ),
    }
}

#[test]
fn deadlock_main_waits_on_event_nobody_sets() {
    with_deadline("deadlock_event", 60, || {
        for (mode, builder) in mode_builders() {
            let msg = block_on_report(builder, Duration::from_millis(200), || {
                let never = Event::new();
                never.wait();
                unreachable!("the event was set");
            })
            .unwrap_or_else(|| panic!("{mode}: block_on returned"));
            assert!(msg.contains("deadlock"), "{mode}: {msg}");
            assert!(
                msg.contains("\"main\": parked on Event"),
                "{mode}: no dump line for the main greenlet: {msg}"
            );
        }
    });
}

#[test]
fn deadlock_main_joins_a_greenlet_stuck_on_a_channel() {
    with_deadline("deadlock_join", 60, || {
        for (mode, builder) in mode_builders() {
            let msg = block_on_report(builder, Duration::from_millis(200), || {
                let (tx, rx) = greenhub::channel::unbounded::<u32>();
                let h = greenhub::greenlet::Builder::new()
                    .name("receiver".into())
                    .spawn(move || rx.recv())
                    .unwrap();
                let _ = h.join(); // holds `tx`: the receiver waits for ever
                drop(tx);
            })
            .unwrap_or_else(|| panic!("{mode}: block_on returned"));
            assert!(msg.contains("deadlock"), "{mode}: {msg}");
            assert!(
                msg.contains("\"main\": parked on join of greenlet"),
                "{mode}: {msg}"
            );
            assert!(
                msg.contains("\"receiver\": parked on ChannelRecv"),
                "{mode}: {msg}"
            );
        }
    });
}

#[test]
fn deadlock_report_kills_the_main_greenlet_so_destructors_run() {
    with_deadline("deadlock_kill", 60, || {
        let drops = Arc::new(AtomicUsize::new(0));
        let d = common::DropCounter(drops.clone());
        let (_, builder) = mode_builders().remove(0);
        let msg = block_on_report(builder, Duration::from_millis(100), move || {
            let _d = d;
            Event::new().wait();
        });
        assert!(msg.is_some_and(|m| m.contains("deadlock")));
        assert_eq!(drops.load(SeqCst), 1);
    });
}

#[test]
fn no_report_when_an_os_thread_sets_the_event_later() {
    with_deadline("no_report_thread", 60, || {
        for (mode, builder) in mode_builders() {
            // Default (off): waits however long the thread takes.
            let rt = builder.clone().build().unwrap();
            rt.block_on(|| {
                let ev = Arc::new(Event::new());
                let e = ev.clone();
                let t = std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(300));
                    e.set();
                });
                ev.wait();
                t.join().unwrap();
            });
            // On, with a timeout longer than the thread takes.
            let msg = block_on_report(builder, Duration::from_secs(5), || {
                let ev = Arc::new(Event::new());
                let e = ev.clone();
                let t = std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(300));
                    e.set();
                });
                ev.wait();
                t.join().unwrap();
            });
            assert_eq!(msg, None, "{mode}");
        }
    });
}

#[test]
fn no_report_while_an_outside_thread_keeps_waking_greenlets() {
    with_deadline("no_report_ticks", 60, || {
        for (mode, builder) in mode_builders() {
            // Each wake-up runs a greenlet, which starts the clock again:
            // 20 wake-ups 100 ms apart outlast the 1 s timeout (with room
            // for a loaded machine that oversleeps).
            let msg = block_on_report(builder, Duration::from_secs(1), || {
                let (tx, rx) = greenhub::channel::unbounded::<u32>();
                let t = std::thread::spawn(move || {
                    for i in 0..20 {
                        std::thread::sleep(Duration::from_millis(100));
                        tx.send(i).unwrap();
                    }
                });
                let got: Vec<u32> = rx.iter().collect();
                assert_eq!(got.len(), 20);
                t.join().unwrap();
            });
            assert_eq!(msg, None, "{mode}");
        }
    });
}

#[test]
fn no_report_while_a_timer_or_a_pool_job_can_complete_the_wait() {
    with_deadline("no_report_timer_pool", 60, || {
        for (mode, builder) in mode_builders() {
            // A sleeping greenlet will set the event: its timer is armed.
            let msg = block_on_report(builder.clone(), Duration::from_millis(50), || {
                let ev = Arc::new(Event::new());
                let e = ev.clone();
                greenhub::spawn(move || {
                    greenhub::sleep(Duration::from_millis(400));
                    e.set();
                });
                ev.wait();
            });
            assert_eq!(msg, None, "{mode}: timer");
            // A pool job will answer.
            let msg = block_on_report(builder.clone(), Duration::from_millis(50), || {
                let n = greenhub::blocking::unblock(|| {
                    std::thread::sleep(Duration::from_millis(400));
                    7
                });
                assert_eq!(n, 7);
            });
            assert_eq!(msg, None, "{mode}: pool");
            // A wait with a deadline ends by itself.
            let msg = block_on_report(builder, Duration::from_millis(50), || {
                assert!(!Event::new().wait_timeout(Duration::from_millis(400)));
            });
            assert_eq!(msg, None, "{mode}: deadline");
        }
    });
}

#[test]
fn no_report_while_waiting_on_an_fd_or_a_park() {
    with_deadline("no_report_fd_park", 60, || {
        for (mode, builder) in mode_builders() {
            // The main greenlet waits for bytes that an OS thread writes
            // later: the fd wait is the outside world, never a deadlock.
            let msg = block_on_report(builder.clone(), Duration::from_millis(50), || {
                use std::io::{Read, Write};
                let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
                let mut a = greenhub::net::unix::UnixStream::from(a);
                let t = std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(400));
                    b.write_all(b"x").unwrap();
                });
                let mut buf = [0u8; 1];
                a.read_exact(&mut buf).unwrap();
                t.join().unwrap();
            });
            assert_eq!(msg, None, "{mode}: fd");
            // A bare `park`: any thread may hold the `unpark`.
            let msg = block_on_report(builder, Duration::from_millis(50), || {
                let me = greenhub::current();
                let flag = Arc::new(AtomicBool::new(false));
                let f = flag.clone();
                let t = std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(400));
                    f.store(true, SeqCst);
                    me.unpark();
                });
                while !flag.load(SeqCst) {
                    greenhub::park();
                }
                t.join().unwrap();
            });
            assert_eq!(msg, None, "{mode}: park");
        }
    });
}

#[test]
fn no_report_while_a_signal_handler_can_wake_the_main_greenlet() {
    with_deadline("no_report_signal", 60, || {
        for (mode, builder) in mode_builders() {
            // gevent's graceful stop: wait for SIGUSR2 (sent here by an OS
            // thread, later than the timeout).
            let msg = block_on_report(builder, Duration::from_millis(50), || {
                let stop = Arc::new(Event::new());
                let s = stop.clone();
                let _guard =
                    greenhub::signal::signal_handler(greenhub::signal::SIGUSR2, move || s.set())
                        .unwrap();
                let t = std::thread::spawn(|| {
                    std::thread::sleep(Duration::from_millis(400));
                    // SAFETY: signals this process, which handles SIGUSR2.
                    unsafe { libc::kill(libc::getpid(), libc::SIGUSR2) };
                });
                stop.wait();
                t.join().unwrap();
            });
            assert_eq!(msg, None, "{mode}");
        }
    });
}

#[test]
fn deadlock_timeout_zero_is_refused() {
    let err = greenhub::Builder::new()
        .deadlock_timeout(Some(Duration::ZERO))
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("deadlock_timeout"), "{err}");
}

#[test]
#[ignore = "child process of deadlock_report_from_the_environment"]
fn child_env_deadlock() {
    if !is_child("child_env_deadlock") {
        return;
    }
    greenhub::run(|| Event::new().wait());
}

#[test]
fn deadlock_report_from_the_environment() {
    let out = run_child(
        "child_env_deadlock",
        &[("GREENHUB_DEADLOCK_REPORT", "200ms")],
        60,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("greenhub: deadlock"), "{stderr}");
    assert!(stderr.contains("\"main\": parked on Event"), "{stderr}");
}

#[test]
#[ignore = "child process of a_bad_environment_value_is_a_build_error"]
fn child_env_bad() {
    if !is_child("child_env_bad") {
        return;
    }
    let err = greenhub::Builder::new().build().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(
        err.to_string().contains("GREENHUB_DEADLOCK_REPORT"),
        "{err}"
    );
    // The builder's own setting wins over the variable.
    let rt = greenhub::Builder::new()
        .deadlock_timeout(None)
        .build()
        .unwrap();
    assert_eq!(rt.block_on(|| 3), 3);
}

#[test]
fn a_bad_environment_value_is_a_build_error() {
    let out = run_child("child_env_bad", &[("GREENHUB_DEADLOCK_REPORT", "soon")], 60);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
}

/// The deadlock report's probes are run-info dumps, which may overlap a
/// program's own `run_info` calls: every dump must get every hub's answer.
/// (Each hub used to keep one request only: a second dump posted before
/// the hub answered replaced the first, whose caller then waited its full
/// second and reported the hub as not answering.)
#[test]
fn overlapping_dumps_all_get_every_hub_answer() {
    in_each_mode("overlapping_dumps", |mode| {
        let dumpers: Vec<_> = (0..8)
            .map(|_| greenhub::spawn(|| greenhub::Handle::current().run_info()))
            .collect();
        for d in dumpers {
            let info = d.join().unwrap();
            assert!(
                info.hubs.iter().all(|h| h.answered),
                "{mode}: a dump lost a hub's answer:\n{info}"
            );
        }
    });
}
