//! gevent conformance of `Event`/`AsyncResult` fairness and of the
//! rendezvous channel's hand-off (issue 20, points 1 and 2).
//!
//! - A late waiter on an event (or result) that is still waking earlier
//!   waiters returns only after they ran (gevent #1520): exact order in
//!   single-threaded mode, no hang and every waiter done in M:N.
//! - A send to a waiting receiver on a rendezvous channel switches to the
//!   receiver at once, and the sender resumes after it (gevent's `Channel`):
//!   exact log in single-threaded mode, the values in order in every mode.
//!   Killing or timing out either side, or sending inside `no_switch`, loses
//!   no value and does not hang.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::in_each_mode;
use greenhub::channel;
use greenhub::sync::{AsyncResult, Event};

type Log = Arc<Mutex<Vec<String>>>;

fn log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

fn push(log: &Log, s: impl Into<String>) {
    log.lock().unwrap().push(s.into());
}

fn entries(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The log is exactly `want` in single-threaded mode, and holds the same
/// entries in another order elsewhere (`want` sorted).
fn assert_log(mode: &str, log: &Log, want: &[&str]) {
    let got = entries(log);
    if mode == "single" {
        assert_eq!(got, want);
    } else {
        assert_eq!(sorted(got), want);
    }
}

/// Lets the greenlets spawned so far run until they block (single mode);
/// in M:N a short sleep, so that they are most likely parked.
fn settle() {
    for _ in 0..4 {
        greenhub::yield_now();
    }
    greenhub::sleep(Duration::from_millis(5));
}

/// Spawns waiters `1..=n` that each wait on `ev` and then log their number.
fn event_waiters(ev: &Arc<Event>, log: &Log, n: u32) -> Vec<greenhub::JoinHandle<()>> {
    (1..=n)
        .map(|i| {
            let (ev, log) = (ev.clone(), log.clone());
            greenhub::spawn(move || {
                ev.wait();
                push(&log, i.to_string());
            })
        })
        .collect()
}

#[test]
fn event_setter_waiting_again_runs_after_the_woken_waiters() {
    in_each_mode("event setter waits behind", |mode| {
        let ev = Arc::new(Event::new());
        let log = log();
        let hs = event_waiters(&ev, &log, 2);
        settle();
        ev.set();
        // The setter is the late waiter: 1 and 2 are woken, not yet run.
        ev.wait();
        push(&log, "3");
        hs.into_iter().for_each(|h| h.join().unwrap());
        assert_log(mode, &log, &["1", "2", "3"]);
    });
}

#[test]
fn event_late_waiter_greenlet_runs_after_the_woken_waiters() {
    in_each_mode("event late greenlet waits behind", |mode| {
        let ev = Arc::new(Event::new());
        let log = log();
        let mut hs = event_waiters(&ev, &log, 2);
        settle();
        // Waiter 3 is queued before 1 and 2 are woken, so it calls `wait`
        // while they are woken but have not run yet.
        let (ev3, log3) = (ev.clone(), log.clone());
        hs.push(greenhub::spawn(move || {
            ev3.wait();
            push(&log3, "3");
        }));
        ev.set();
        hs.into_iter().for_each(|h| h.join().unwrap());
        assert_log(mode, &log, &["1", "2", "3"]);
    });
}

#[test]
fn event_late_waiter_is_not_stuck_behind_a_killed_woken_waiter() {
    in_each_mode("event late waiter, woken waiter killed", |_mode| {
        let ev = Arc::new(Event::new());
        let log = log();
        let hs = event_waiters(&ev, &log, 2);
        settle();
        ev.set();
        // Killed after it was woken, before it ran.
        hs[0].kill();
        ev.wait();
        push(&log, "3");
        for h in hs {
            // Killed or not (the kill may land after the wait returned),
            // each greenlet finished.
            let _ = h.join();
        }
        assert!(entries(&log).contains(&"3".to_string()));
        assert!(entries(&log).contains(&"2".to_string()));
    });
}

#[test]
fn event_late_waiter_times_out_or_is_killed_cleanly() {
    in_each_mode("event late waiter timeout / kill", |_mode| {
        let ev = Arc::new(Event::new());
        let log = log();
        let hs = event_waiters(&ev, &log, 2);
        settle();
        ev.set();
        // A timed wait on a set event says "set", whether it had to wait
        // behind the woken waiters or not.
        assert!(ev.wait_timeout(Duration::ZERO));
        assert!(ev.wait_timeout(Duration::from_millis(50)));
        hs.into_iter().for_each(|h| h.join().unwrap());

        // A late waiter killed while it waits behind the others unwinds,
        // and the event still works.
        let hs = event_waiters(&ev, &log, 2);
        ev.clear();
        settle();
        ev.set();
        let ev2 = ev.clone();
        let late = greenhub::spawn(move || ev2.wait());
        late.kill();
        let _ = late.join();
        hs.into_iter().for_each(|h| h.join().unwrap());
        ev.wait();
        assert!(ev.is_set());
    });
}

#[test]
fn event_late_waiter_killed_while_it_waits_behind() {
    in_each_mode("event late waiter killed behind", |mode| {
        let ev = Arc::new(Event::new());
        let log = log();
        let mut hs = event_waiters(&ev, &log, 2);
        settle();
        // Queued before 1 and 2 are woken: `late` parks behind them, then
        // `killer` (next in line, still before 1 and 2) kills it there.
        let (ev3, log3) = (ev.clone(), log.clone());
        let late = greenhub::spawn(move || {
            ev3.wait();
            push(&log3, "late");
        });
        let log_k = log.clone();
        let killer = greenhub::spawn(move || {
            late.kill();
            push(&log_k, "killed");
            late.join()
        });
        ev.set();
        let late_outcome = killer.join().unwrap();
        hs.drain(..).for_each(|h| h.join().unwrap());
        let got = entries(&log);
        if mode == "single" {
            // The kill puts `late` behind 1 and 2 in the run queue; 2 hands
            // the turn to the late waiters before `late` ran, and a granted
            // wait keeps its grant (the kill is raised at its next blocking
            // point, and it has none).
            assert!(late_outcome.is_ok());
            assert_eq!(got, ["killed", "1", "2", "late"]);
        } else if late_outcome.is_ok() {
            assert_eq!(sorted(got), ["1", "2", "killed", "late"]);
        } else {
            assert!(late_outcome.unwrap_err().is_killed());
            assert_eq!(sorted(got), ["1", "2", "killed"]);
        }
        // The event still works for the next late waiter.
        let hs = event_waiters(&ev, &log, 2);
        ev.clear();
        settle();
        ev.set();
        ev.wait();
        hs.into_iter().for_each(|h| h.join().unwrap());
    });
}

#[test]
fn event_wait_inside_no_switch_on_a_set_event_returns_at_once() {
    in_each_mode("event wait in no_switch", |_mode| {
        let ev = Arc::new(Event::new());
        let log = log();
        let hs = event_waiters(&ev, &log, 2);
        settle();
        ev.set();
        // Must not try to switch (which would panic inside `no_switch`).
        greenhub::no_switch(|| ev.wait());
        hs.into_iter().for_each(|h| h.join().unwrap());
    });
}

#[test]
fn event_late_waiter_from_a_plain_thread() {
    in_each_mode("event late waiter thread", |_mode| {
        let ev = Arc::new(Event::new());
        let log = log();
        let hs = event_waiters(&ev, &log, 3);
        settle();
        ev.set();
        let ev2 = ev.clone();
        let t = std::thread::spawn(move || {
            ev2.wait();
            ev2.wait_timeout(Duration::from_millis(10))
        });
        hs.into_iter().for_each(|h| h.join().unwrap());
        while !t.is_finished() {
            greenhub::sleep(Duration::from_millis(1));
        }
        assert!(t.join().unwrap());
    });
}

#[test]
fn async_result_late_getter_runs_after_the_woken_getters() {
    in_each_mode("async result late getter", |mode| {
        let r = Arc::new(AsyncResult::new());
        let log = log();
        let mut hs: Vec<_> = (1..=2)
            .map(|i| {
                let (r, log) = (r.clone(), log.clone());
                greenhub::spawn(move || {
                    let v: u32 = r.get().unwrap();
                    push(&log, format!("{i}:{v}"));
                })
            })
            .collect();
        settle();
        let (r3, log3) = (r.clone(), log.clone());
        hs.push(greenhub::spawn(move || {
            let v = r3.get().unwrap();
            push(&log3, format!("3:{v}"));
        }));
        r.set(7).unwrap();
        // The setter too waits behind the woken getters; it called `get`
        // before getter 3 ran, so it goes first of the two late ones.
        let v = r.get().unwrap();
        push(&log, format!("4:{v}"));
        hs.into_iter().for_each(|h| h.join().unwrap());
        let got = entries(&log);
        if mode == "single" {
            assert_eq!(got, ["1:7", "2:7", "4:7", "3:7"]);
        } else {
            assert_eq!(sorted(got), ["1:7", "2:7", "3:7", "4:7"]);
        }
    });
}

/// gevent's `Channel` example: the receiver logs each value, the sender
/// logs "sending" once, then "sent <v>" after each send.
fn rendezvous_log(mode: &str) {
    let (tx, rx) = channel::rendezvous::<&'static str>();
    let log = log();
    let log_r = log.clone();
    let receiver = greenhub::spawn(move || {
        while let Ok(v) = rx.recv() {
            push(&log_r, v);
        }
    });
    let log_s = log.clone();
    let sender = greenhub::spawn(move || {
        push(&log_s, "sending");
        for v in ["hello", "world"] {
            tx.send(v).unwrap();
            push(&log_s, format!("sent {v}"));
        }
    });
    sender.join().unwrap();
    receiver.join().unwrap();
    let got = entries(&log);
    if mode == "single" {
        assert_eq!(
            got,
            ["sending", "hello", "sent hello", "world", "sent world"]
        );
    } else {
        let values: Vec<_> = got
            .iter()
            .filter(|s| *s == "hello" || *s == "world")
            .collect();
        assert_eq!(values, ["hello", "world"]);
        let sent: Vec<_> = got.iter().filter(|s| s.starts_with("sent ")).collect();
        assert_eq!(sent, ["sent hello", "sent world"]);
        assert_eq!(got[0], "sending");
    }
}

#[test]
fn rendezvous_send_switches_to_the_waiting_receiver() {
    in_each_mode("rendezvous hand-off log", rendezvous_log);
}

#[test]
fn rendezvous_hand_off_from_the_main_greenlet() {
    in_each_mode("rendezvous hand-off from main", |mode| {
        let (tx, rx) = channel::bounded::<u32>(0);
        let log = log();
        let log_r = log.clone();
        let receiver = greenhub::spawn(move || {
            for v in rx.iter() {
                push(&log_r, format!("got {v}"));
            }
        });
        settle();
        for v in 0..3 {
            tx.send(v).unwrap();
            push(&log, format!("sent {v}"));
        }
        drop(tx);
        receiver.join().unwrap();
        let got = entries(&log);
        if mode == "single" {
            assert_eq!(
                got,
                ["got 0", "sent 0", "got 1", "sent 1", "got 2", "sent 2"]
            );
        } else {
            let recvd: Vec<_> = got.iter().filter(|s| s.starts_with("got")).collect();
            assert_eq!(recvd, ["got 0", "got 1", "got 2"]);
        }
    });
}

#[test]
fn rendezvous_send_inside_no_switch_does_not_switch() {
    in_each_mode("rendezvous send in no_switch", |_mode| {
        let (tx, rx) = channel::rendezvous::<u32>();
        let receiver = greenhub::spawn(move || rx.recv().unwrap());
        settle();
        // The receiver waits: the send completes without waiting, so it is
        // allowed inside `no_switch`, and must not switch there.
        greenhub::no_switch(|| tx.send(5).unwrap());
        assert_eq!(receiver.join().unwrap(), 5);
    });
}

#[test]
fn rendezvous_sender_killed_during_hand_off_keeps_the_value_delivered() {
    in_each_mode("rendezvous sender killed in hand-off", |_mode| {
        let (tx, rx) = channel::rendezvous::<u32>();
        let (htx, hrx) = channel::unbounded::<greenhub::JoinHandle<bool>>();
        let receiver = greenhub::spawn(move || {
            let sender = hrx.recv().unwrap();
            let v = rx.recv().unwrap();
            // The sender is (in single mode) switched out right after it
            // handed the value over: kill it there.
            sender.kill();
            (v, sender.join())
        });
        let sender = greenhub::spawn(move || {
            let sent = tx.send(9).is_ok();
            // The next blocking point raises the kill.
            greenhub::sleep(Duration::from_secs(30));
            sent
        });
        htx.send(sender).unwrap();
        let (v, sender_outcome) = receiver.join().unwrap();
        assert_eq!(v, 9);
        // Killed, or (M:N) finished `send` and then killed in its sleep.
        assert!(sender_outcome.unwrap_err().is_killed());
    });
}

#[test]
fn rendezvous_hand_off_with_timeouts_on_both_sides() {
    in_each_mode("rendezvous hand-off with timeouts", |_mode| {
        let (tx, rx) = channel::rendezvous::<u32>();
        let receiver = greenhub::spawn(move || {
            let mut got = Vec::new();
            while let Ok(v) = rx.recv_timeout(Duration::from_secs(30)) {
                got.push(v);
            }
            got
        });
        settle();
        for v in 0..5 {
            tx.send_timeout(v, Duration::from_secs(30)).unwrap();
        }
        // A `timeout` frame around the send: the hand-off inside it
        // completes; the value is delivered exactly once.
        let r = greenhub::timeout(Duration::from_secs(30), || tx.send(5));
        assert!(matches!(r, Ok(Ok(()))));
        drop(tx);
        assert_eq!(receiver.join().unwrap(), [0, 1, 2, 3, 4, 5]);
    });
}

#[test]
fn rendezvous_receiver_killed_after_hand_off_does_not_lose_or_hang() {
    in_each_mode("rendezvous receiver killed", |mode| {
        let (tx, rx) = channel::rendezvous::<u32>();
        let rx2 = rx.clone();
        let first = greenhub::spawn(move || rx.recv().unwrap());
        let second = greenhub::spawn(move || rx2.recv().unwrap());
        settle();
        tx.send(1).unwrap();
        // In single mode `first` took 1 and ran to its end in the hand-off;
        // killing it now cannot take the value back. (In M:N it may not have
        // been waiting yet: then `second` took 1 and `first` dies waiting.)
        first.kill();
        let sent2 = tx.send_timeout(2, Duration::from_millis(200)).is_ok();
        let mut got = Vec::new();
        if let Ok(v) = first.join() {
            got.push(v);
        }
        if mode == "single" {
            assert!(sent2);
        }
        if sent2 || got.is_empty() {
            got.push(second.join().unwrap());
        } else {
            second.kill();
            let _ = second.join();
        }
        got.sort();
        // Exactly the values whose send returned Ok were received.
        let want: Vec<u32> = if sent2 { vec![1, 2] } else { vec![1] };
        assert_eq!(got, want);
    });
}

#[test]
fn rendezvous_ping_pong_across_modes() {
    in_each_mode("rendezvous ping-pong", |_mode| {
        let (ping_tx, ping_rx) = channel::rendezvous::<u32>();
        let (pong_tx, pong_rx) = channel::rendezvous::<u32>();
        let echo = greenhub::spawn(move || {
            for v in ping_rx.iter() {
                pong_tx.send(v + 1).unwrap();
            }
        });
        for i in 0..1000 {
            ping_tx.send(i).unwrap();
            assert_eq!(pong_rx.recv().unwrap(), i + 1);
        }
        drop(ping_tx);
        echo.join().unwrap();
    });
}

#[test]
fn rendezvous_thread_sender_and_greenlet_receiver() {
    in_each_mode("rendezvous thread sender", |_mode| {
        let (tx, rx) = channel::rendezvous::<u32>();
        let t = std::thread::spawn(move || {
            for v in 0..50 {
                tx.send(v).unwrap();
            }
        });
        let got: Vec<u32> = rx.iter().collect();
        assert_eq!(got, (0..50).collect::<Vec<_>>());
        t.join().unwrap();
    });
}
