//! Single-threaded mode is deterministic: a program of many greenlets that
//! yield, `sleep(0)`, spawn, join and park, appending to a shared log, gives
//! the identical log on 20 runs (and its FIFO order is gevent's); and the
//! gevent tutorial's context-switch example prints exactly gevent's order.

mod common;

#[allow(dead_code)]
#[path = "../examples/gevent_switch.rs"]
mod gevent_switch;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::with_deadline;
use greenhub::{Builder, JoinHandle};

type Log = Arc<Mutex<Vec<String>>>;

fn push(log: &Log, s: String) {
    log.lock().unwrap().push(s);
}

const WORKERS: usize = 8;
const STEPS: usize = 6;

/// One run of the program on a fresh single-threaded runtime.
fn program() -> Vec<String> {
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let rt = Builder::new().single_threaded().build().unwrap();
    let l = log.clone();
    rt.block_on(move || {
        let log = l;
        let workers: Vec<JoinHandle<usize>> = (0..WORKERS)
            .map(|i| {
                let log = log.clone();
                greenhub::greenlet::Builder::new()
                    .name(format!("w{i}"))
                    .spawn(move || worker(i, log))
                    .unwrap()
            })
            .collect();
        push(&log, "main: spawned".into());
        greenhub::yield_now();
        push(&log, "main: yielded once".into());
        greenhub::sleep(Duration::ZERO);
        let done: Vec<_> = workers.iter().map(|w| w.is_finished()).collect();
        push(&log, format!("main: finished {done:?}"));
        for (i, w) in workers.into_iter().enumerate().rev() {
            let v = w.join().unwrap();
            push(&log, format!("main: joined w{i} = {v}"));
        }
    });
    Arc::try_unwrap(log).unwrap().into_inner().unwrap()
}

fn worker(i: usize, log: Log) -> usize {
    let me = greenhub::current().name().unwrap().to_owned();
    let mut detached: Vec<JoinHandle<()>> = Vec::new();
    let mut total = 0;
    for step in 0..STEPS {
        push(&log, format!("{me}:{step}"));
        match (i * 7 + step * 3) % 5 {
            0 => greenhub::yield_now(),
            1 => greenhub::sleep(Duration::ZERO),
            2 => {
                let l = log.clone();
                let name = format!("c{i}.{step}");
                let child = greenhub::spawn(move || {
                    push(&l, format!("{name} start"));
                    greenhub::yield_now();
                    push(&l, format!("{name} end"));
                    i * 100 + step
                });
                let v = child.join().unwrap();
                push(&log, format!("{me} joined c{i}.{step} = {v}"));
                total += v;
            }
            3 => {
                let l = log.clone();
                let name = format!("d{i}.{step}");
                detached.push(greenhub::spawn(move || {
                    push(&l, format!("{name} ran"));
                    greenhub::sleep(Duration::ZERO);
                    push(&l, format!("{name} done"));
                }));
                greenhub::yield_now();
            }
            _ => {
                // A token makes park return at once, without a switch.
                greenhub::current().unpark();
                greenhub::park();
                push(&log, format!("{me} unparked itself"));
            }
        }
    }
    for d in detached {
        d.join().unwrap();
    }
    push(&log, format!("{me} done"));
    total
}

#[test]
fn single_threaded_runs_are_identical() {
    let runs = with_deadline("single_threaded_runs_are_identical", 120, || {
        (0..20).map(|_| program()).collect::<Vec<_>>()
    });
    let first = &runs[0];
    for (n, run) in runs.iter().enumerate() {
        assert_eq!(run, first, "run {n} differs from run 0");
    }
    // FIFO from the start: main spawns everyone, then its yield lets every
    // worker run (until its first switch) in spawn order before main goes on.
    assert_eq!(first[0], "main: spawned");
    let pos = |tag: &str| first.iter().position(|l| l == tag).unwrap();
    let firsts: Vec<usize> = (0..WORKERS).map(|i| pos(&format!("w{i}:0"))).collect();
    assert!(firsts.windows(2).all(|w| w[0] < w[1]), "{firsts:?}");
    assert_eq!(firsts[0], 1);
    assert!(firsts[WORKERS - 1] < pos("main: yielded once"));
    // Everything happened exactly once.
    for i in 0..WORKERS {
        for step in 0..STEPS {
            let tag = format!("w{i}:{step}");
            assert_eq!(first.iter().filter(|l| **l == tag).count(), 1, "{tag}");
        }
        assert_eq!(
            first.iter().filter(|l| **l == format!("w{i} done")).count(),
            1
        );
    }
    let joined: Vec<_> = first
        .iter()
        .filter(|l| l.starts_with("main: joined"))
        .collect();
    assert_eq!(joined.len(), WORKERS);
    for i in 0..WORKERS {
        let total: usize = (0..STEPS)
            .filter(|step| (i * 7 + step * 3) % 5 == 2)
            .map(|step| i * 100 + step)
            .sum();
        // Joined in reverse order, each with its children's values.
        assert_eq!(
            joined[WORKERS - 1 - i],
            &format!("main: joined w{i} = {total}")
        );
    }
    assert_eq!(first.last().unwrap(), "main: joined w0 = 4");
    // A child spawned and joined by a worker logs start/end before the join.
    for (k, line) in first.iter().enumerate() {
        if let Some(rest) = line.strip_suffix(" start") {
            let end = first
                .iter()
                .position(|l| *l == format!("{rest} end"))
                .unwrap();
            assert!(end > k);
        }
    }
}

#[test]
fn gevent_context_switch_order() {
    let lines = with_deadline("gevent_context_switch_order", 60, || {
        (0..20)
            .map(|_| {
                let out = Arc::new(Mutex::new(Vec::<String>::new()));
                let o = out.clone();
                gevent_switch::run(Arc::new(move |line: &str| {
                    o.lock().unwrap().push(line.to_owned())
                }));
                out.lock().unwrap().clone()
            })
            .collect::<Vec<_>>()
    });
    for run in lines {
        assert_eq!(
            run,
            [
                "Running in foo",
                "Explicit context to bar",
                "Explicit context switch to foo again",
                "Implicit context switch back to bar",
            ]
        );
    }
}
