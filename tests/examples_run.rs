//! Runs the logic of the examples (`examples/gevent_switch.rs`,
//! `examples/gevent_sleeps.rs`, `examples/supervisor.rs`,
//! `examples/signals.rs`, included here as modules) and checks what they
//! print and measure: gevent's context-switch order, ten random sleeps that
//! overlap (total time near the longest sleep, not the sum), a supervisor
//! that respawns every panicked worker exactly once and keeps four alive,
//! and a graceful shutdown on SIGTERM (or when the time is up).

mod common;

#[allow(dead_code)]
#[path = "../examples/gevent_switch.rs"]
mod gevent_switch;

#[allow(dead_code)]
#[path = "../examples/gevent_sleeps.rs"]
mod gevent_sleeps;

#[allow(dead_code)]
#[path = "../examples/supervisor.rs"]
mod supervisor;

#[allow(dead_code)]
#[path = "../examples/signals.rs"]
mod signals;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::with_deadline;

type Lines = Arc<Mutex<Vec<String>>>;

/// A sink that records the lines an example emits.
fn recorder() -> (gevent_switch::Emit, Lines) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let l = lines.clone();
    (
        Arc::new(move |line: &str| l.lock().unwrap().push(line.to_owned())),
        lines,
    )
}

#[test]
fn gevent_switch_prints_gevents_order() {
    let lines = with_deadline("gevent_switch", 60, || {
        let (emit, lines) = recorder();
        gevent_switch::run(emit);
        lines.lock().unwrap().clone()
    });
    assert_eq!(
        lines,
        [
            "Running in foo",
            "Explicit context to bar",
            "Explicit context switch to foo again",
            "Implicit context switch back to bar",
        ]
    );
}

fn check_sleeps(seed: Option<u64>) {
    let (report, lines) = with_deadline("gevent_sleeps", 60, move || {
        let mut rng = match seed {
            Some(s) => gevent_sleeps::XorShift::new(s),
            None => gevent_sleeps::XorShift::from_time(),
        };
        let (emit, lines) = recorder();
        let report = gevent_sleeps::run(&mut rng, emit);
        let v = lines.lock().unwrap().clone();
        (report, v)
    });
    let ctx = format!("seed {seed:?}: {report:?}");
    assert_eq!(report.sleeps.len(), gevent_sleeps::TASKS, "{ctx}");
    for d in &report.sleeps {
        let ms = d.as_millis() as u64;
        assert!(
            (gevent_sleeps::MIN_MS..=gevent_sleeps::MAX_MS).contains(&ms),
            "{ctx}"
        );
    }
    // Every task ran once and printed its line.
    let mut order = report.done_order.clone();
    order.sort_unstable();
    assert_eq!(
        order,
        (0..gevent_sleeps::TASKS).collect::<Vec<_>>(),
        "{ctx}"
    );
    let expected: HashSet<String> = (0..gevent_sleeps::TASKS)
        .map(|i| format!("Task {i} done"))
        .collect();
    assert_eq!(lines.len(), gevent_sleeps::TASKS);
    assert_eq!(lines.into_iter().collect::<HashSet<_>>(), expected);
    // A sleep never ends early.
    for (asked, slept) in report.sleeps.iter().zip(&report.slept) {
        assert!(slept >= asked, "{ctx}");
    }
    // Concurrency (a loose behavioural bound): the sleeps overlapped, so
    // the run took far less than their sum and about the longest one. With
    // sleeps of 50..=250 ms, sum/2 exceeds the longest sleep by >= 100 ms.
    assert!(report.elapsed < report.sum() / 2, "{ctx}");
    assert!(
        report.elapsed < report.max() + Duration::from_secs(2),
        "{ctx}"
    );
}

#[test]
fn gevent_sleeps_run_concurrently() {
    check_sleeps(None); // seeded from the clock, as the example does
    check_sleeps(Some(0x5EED));
}

#[test]
fn supervisor_respawns_panicked_workers() {
    let (outcome, lines) = with_deadline("supervisor", 120, || {
        let (emit, lines) = recorder();
        let outcome = supervisor::run(emit);
        let v = lines.lock().unwrap().clone();
        (outcome, v)
    });
    let expected = supervisor::expected_respawns();
    assert_eq!(expected, 6);
    assert_eq!(outcome.respawns, expected, "respawns: {lines:#?}");
    // Every failure was seen once, with its panic message, per the plan.
    let mut seen: Vec<(usize, u32)> = outcome.failures.iter().map(|f| (f.0, f.1)).collect();
    seen.sort_unstable();
    let mut planned = Vec::new();
    for slot in 0..supervisor::WORKERS {
        for generation in 0..slot as u32 {
            planned.push((slot, generation));
        }
    }
    assert_eq!(seen, planned);
    for (slot, generation, msg) in &outcome.failures {
        let units = supervisor::crash_plan(*slot, *generation).unwrap();
        assert_eq!(
            msg,
            &format!(
                "greenlet panicked: worker {slot} (generation {generation}) failed after {units} units"
            )
        );
    }
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("respawning slot"))
            .count(),
        expected
    );
    // Four alive when the supervisor stopped; all four killed afterwards.
    assert_eq!(outcome.alive_at_end, supervisor::WORKERS);
    assert_eq!(outcome.killed_at_end, supervisor::WORKERS);
    assert!(outcome.units > 0);
    assert_eq!(
        lines.last().unwrap(),
        &format!("{expected} respawns; 4 workers alive; killing them")
    );
}

#[allow(dead_code)]
#[path = "../examples/echo_server.rs"]
mod echo_server;

/// The echo server example's self-test: every client's bytes come back, in
/// both modes.
#[test]
fn echo_server_example_self_test() {
    common::in_each_mode("echo_server example", |_| {
        let (sent, echoed) = echo_server::self_test(200);
        assert_eq!(sent, echoed);
        let want: usize = (0..200).map(|i| echo_server::payload(i).len()).sum();
        assert_eq!(sent as usize, want);
    });
}

#[test]
fn signals_example_shuts_down_gracefully() {
    // Both runs in one test: they would share the process's SIGTERM.
    let (by_signal, by_signal_lines) = with_deadline("signals: SIGTERM", 60, || {
        let (emit, lines) = recorder();
        let l = lines.clone();
        let sender = std::thread::spawn(move || {
            let running = || l.lock().unwrap().iter().any(|x| x.starts_with("running"));
            assert!(common::eventually(30, running), "the example did not start");
            std::thread::sleep(Duration::from_millis(150)); // a little work first
            // SAFETY: kill(2) on our own pid; the example handles SIGTERM
            // from before it prints "running" until it returns.
            assert_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGTERM) }, 0);
        });
        let outcome = signals::run(Duration::from_secs(30), emit);
        sender.join().unwrap();
        let v = lines.lock().unwrap().clone();
        (outcome, v)
    });
    assert_eq!(
        by_signal.stop,
        signals::Stop::Signal(libc::SIGTERM),
        "{by_signal_lines:#?}"
    );
    assert!(by_signal_lines.contains(&"caught SIGTERM: shutting down".to_string()));
    // Every worker did some work and returned by itself (not killed).
    assert_eq!(by_signal.units.len(), signals::WORKERS);
    assert!(by_signal.units.iter().all(|&u| u > 0), "{by_signal:?}");
    for i in 0..signals::WORKERS {
        let prefix = format!("worker {i} stopped after ");
        assert!(
            by_signal_lines.iter().any(|l| l.starts_with(&prefix)),
            "{by_signal_lines:#?}"
        );
    }
    assert_eq!(by_signal_lines.last().unwrap(), "all workers stopped; bye");

    let (timed, timed_lines) = with_deadline("signals: time up", 60, || {
        let (emit, lines) = recorder();
        let outcome = signals::run(Duration::from_millis(300), emit);
        let v = lines.lock().unwrap().clone();
        (outcome, v)
    });
    assert_eq!(timed.stop, signals::Stop::TimeUp, "{timed_lines:#?}");
    assert!(timed.ticks >= 1);
    assert!(timed_lines.contains(&"time is up: shutting down".to_string()));
    assert_eq!(timed_lines.last().unwrap(), "all workers stopped; bye");
}
