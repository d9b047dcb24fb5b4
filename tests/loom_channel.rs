//! Loom models of **channel send / recv / close** and of **select**: the
//! real `greenhub::channel` code (src/channel/chan.rs, select.rs) and the
//! wait lists under it (src/sync/waitlist.rs), on loom threads. Off a hub,
//! a blocked operation parks its loom thread; a park with a deadline models
//! the deadline passing at an arbitrary point (src/greenlet/wait.rs).
//!
//! Invariants asserted:
//!
//! - **no lost wake-up**: a blocked receiver or sender always finishes (loom
//!   reports a deadlock otherwise);
//! - **nothing lost or duplicated**: every value whose send returned `Ok` is
//!   received exactly once, also when a receive times out at the same moment
//!   or the channel closes;
//! - **close is seen**: receivers drain, then get `RecvError`; a sender
//!   blocked on a closed channel gets its value back;
//! - **one select arm**: a select completes exactly one operation.

#![cfg(loom)]

use greenhub::channel::{self, RecvTimeoutError};
use loom::thread;
use std::time::Duration;

#[test]
fn rendezvous_send_recv() {
    loom::model(|| {
        let (tx, rx) = channel::rendezvous::<u32>();
        let t = thread::spawn(move || tx.send(7).unwrap());
        assert_eq!(rx.recv(), Ok(7));
        t.join().unwrap();
    });
}

#[test]
fn bounded_two_senders_keep_per_sender_order() {
    loom::model(|| {
        let (tx, rx) = channel::bounded::<u32>(1);
        let tx2 = tx.clone();
        let a = thread::spawn(move || {
            tx.send(1).unwrap();
            tx.send(2).unwrap();
        });
        let b = thread::spawn(move || tx2.send(10).unwrap());
        let got: Vec<u32> = rx.iter().collect();
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(got.len(), 3);
        let ones: Vec<u32> = got.iter().copied().filter(|&v| v < 10).collect();
        assert_eq!(ones, [1, 2]);
        assert!(got.contains(&10));
    });
}

#[test]
fn close_races_send_and_blocked_recv() {
    loom::model(|| {
        let (tx, rx) = channel::bounded::<u32>(1);
        let closer = tx.clone();
        let s = thread::spawn(move || tx.send(5).is_ok());
        let c = thread::spawn(move || closer.close());
        let first = rx.recv();
        let sent = s.join().unwrap();
        c.join().unwrap();
        let second = rx.try_recv();
        // A value whose send succeeded is received; then the channel is closed.
        let received = first.ok().into_iter().chain(second.ok()).count();
        assert_eq!(received, sent as usize);
        assert!(rx.recv().is_err());
    });
}

#[test]
fn dropping_receiver_fails_blocked_sender() {
    loom::model(|| {
        let (tx, rx) = channel::rendezvous::<u32>();
        let s = thread::spawn(move || tx.send(3));
        drop(rx);
        let r = s.join().unwrap();
        assert_eq!(r.unwrap_err().into_inner(), 3);
    });
}

#[test]
fn recv_timeout_racing_send_loses_nothing() {
    loom::model(|| {
        let (tx, rx) = channel::rendezvous::<u32>();
        let rx2 = rx.clone();
        let r = thread::spawn(move || rx2.recv_timeout(Duration::from_millis(1)));
        // The sender gives up too (its own timeout), so neither blocks forever.
        let sent = tx.send_timeout(9, Duration::from_millis(1)).is_ok();
        let got = r.join().unwrap();
        match got {
            Ok(v) => {
                assert!(sent);
                assert_eq!(v, 9);
            }
            Err(RecvTimeoutError::Timeout) => assert!(!sent, "value sent but not received"),
            Err(RecvTimeoutError::Disconnected) => unreachable!(),
        }
    });
}

#[test]
fn select_completes_exactly_one_arm() {
    loom::model(|| {
        let (tx1, rx1) = channel::bounded::<u32>(1);
        let (tx2, rx2) = channel::bounded::<u32>(1);
        let a = thread::spawn(move || tx1.send(1).unwrap());
        let b = thread::spawn(move || tx2.send(2).unwrap());
        let first = greenhub::select! {
            recv(rx1) -> v => v.unwrap(),
            recv(rx2) -> v => v.unwrap(),
        };
        a.join().unwrap();
        b.join().unwrap();
        // The other value is still in its channel: nothing consumed twice.
        let rest: Vec<u32> = rx1.try_iter().chain(rx2.try_iter()).collect();
        assert_eq!(rest.len(), 1);
        assert_eq!(first + rest[0], 3);
    });
}

#[test]
fn select_timeout_racing_send_loses_nothing() {
    loom::model(|| {
        let (tx, rx) = channel::rendezvous::<u32>();
        let s = thread::spawn(move || tx.send_timeout(4, Duration::from_millis(1)).is_ok());
        let got = greenhub::select! {
            recv(rx) -> v => v.ok(),
            default(Duration::from_millis(1)) => None,
        };
        let sent = s.join().unwrap();
        assert_eq!(got.is_some(), sent);
    });
}
