//! Channels: send/recv/close in single-threaded and M:N mode and with plain
//! threads, FIFO wake order, kills and timeouts that lose nothing, select.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use common::with_deadline;
use greenhub::channel::{self, RecvTimeoutError, SendTimeoutError, TryRecvError, TrySendError};
use greenhub::{Builder, Runtime};

fn single() -> Runtime {
    Builder::new().single_threaded().build().unwrap()
}

fn mn() -> Runtime {
    Builder::new().hubs(2).build().unwrap()
}

/// Producers and consumers over a channel of capacity `cap`: every value
/// arrives exactly once.
fn transfer(rt: Runtime, cap: Option<usize>) {
    rt.block_on(move || {
        let (tx, rx) = match cap {
            Some(c) => channel::bounded(c),
            None => channel::unbounded(),
        };
        let producers: Vec<_> = (0..4u64)
            .map(|p| {
                let tx = tx.clone();
                greenhub::spawn(move || {
                    for i in 0..500 {
                        tx.send(p * 1000 + i).unwrap();
                        if i % 7 == 0 {
                            greenhub::yield_now();
                        }
                    }
                })
            })
            .collect();
        drop(tx);
        let consumers: Vec<_> = (0..3)
            .map(|_| {
                let rx = rx.clone();
                greenhub::spawn(move || rx.iter().collect::<Vec<u64>>())
            })
            .collect();
        drop(rx);
        producers.into_iter().for_each(|h| h.join().unwrap());
        let mut all: Vec<u64> = consumers
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        all.sort();
        let want: Vec<u64> = (0..4u64)
            .flat_map(|p| (0..500).map(move |i| p * 1000 + i))
            .collect();
        assert_eq!(all, want);
    });
}

#[test]
fn transfer_all_kinds_both_modes() {
    with_deadline("transfer", 60, || {
        for cap in [None, Some(0), Some(1), Some(16)] {
            transfer(single(), cap);
            transfer(mn(), cap);
        }
    });
}

#[test]
fn per_sender_order_is_kept() {
    mn().block_on(|| {
        let (tx, rx) = channel::bounded(3);
        let h = greenhub::spawn(move || {
            for i in 0..2000 {
                tx.send(i).unwrap();
            }
        });
        let got: Vec<i32> = rx.iter().collect();
        assert_eq!(got, (0..2000).collect::<Vec<_>>());
        h.join().unwrap();
    });
}

#[test]
fn plain_thread_and_greenlets() {
    with_deadline("threads", 30, || {
        let rt = mn();
        let (tx, rx) = channel::rendezvous::<u32>();
        let (back_tx, back_rx) = channel::bounded::<u32>(1);
        // A plain OS thread serves requests from greenlets.
        let server = std::thread::spawn(move || {
            for v in rx.iter() {
                back_tx.send(v * 2).unwrap();
            }
        });
        rt.block_on(move || {
            for i in 0..200 {
                tx.send(i).unwrap();
                assert_eq!(back_rx.recv().unwrap(), i * 2);
            }
        });
        server.join().unwrap();
    });
}

#[test]
fn close_drains_then_reports_closed() {
    single().block_on(|| {
        let (tx, rx) = channel::bounded(4);
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        let tx2 = tx.clone();
        tx.close();
        assert!(tx2.send(3).is_err());
        assert!(rx.is_closed());
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
        assert!(rx.recv().is_err());
    });
}

#[test]
fn close_wakes_blocked_receivers_and_senders() {
    with_deadline("close wakes", 30, || {
        mn().block_on(|| {
            let (tx, rx) = channel::rendezvous::<u8>();
            let receivers: Vec<_> = (0..3)
                .map(|_| {
                    let rx = rx.clone();
                    greenhub::spawn(move || rx.recv())
                })
                .collect();
            let (tx2, rx2) = channel::rendezvous::<u8>();
            let senders: Vec<_> = (0..3)
                .map(|i| {
                    let tx2 = tx2.clone();
                    greenhub::spawn(move || tx2.send(i))
                })
                .collect();
            greenhub::sleep(Duration::from_millis(20));
            tx.close();
            rx2.close();
            for h in receivers {
                assert!(h.join().unwrap().is_err());
            }
            for (i, h) in senders.into_iter().enumerate() {
                assert_eq!(h.join().unwrap().unwrap_err().into_inner(), i as u8);
            }
        });
    });
}

#[test]
fn dropping_receivers_fails_senders_and_drops_buffer() {
    single().block_on(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = channel::bounded(1);
        tx.send(common::DropCounter(drops.clone())).unwrap();
        let tx2 = tx.clone();
        let blocked = greenhub::spawn(move || {
            tx2.send(common::DropCounter(Arc::new(AtomicUsize::new(0))))
                .is_err()
        });
        greenhub::yield_now();
        drop(rx);
        assert!(blocked.join().unwrap());
        assert_eq!(drops.load(SeqCst), 1);
        assert!(matches!(
            tx.try_send(common::DropCounter(drops.clone())),
            Err(TrySendError::Disconnected(_))
        ));
    });
}

#[test]
fn receivers_are_served_in_fifo_order() {
    single().block_on(|| {
        let (tx, rx) = channel::unbounded();
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let hs: Vec<_> = (0..5)
            .map(|i| {
                let (rx, order) = (rx.clone(), order.clone());
                greenhub::spawn(move || {
                    let v = rx.recv().unwrap();
                    order.lock().unwrap().push((i, v));
                })
            })
            .collect();
        greenhub::yield_now(); // all five wait, in spawn order
        for v in 0..5 {
            tx.send(v * 10).unwrap();
        }
        hs.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(
            *order.lock().unwrap(),
            [(0, 0), (1, 10), (2, 20), (3, 30), (4, 40)]
        );
    });
}

#[test]
fn timeouts() {
    single().block_on(|| {
        let (tx, rx) = channel::bounded::<u8>(0);
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(5)),
            Err(RecvTimeoutError::Timeout)
        );
        assert_eq!(
            tx.send_timeout(1, Duration::from_millis(5)),
            Err(SendTimeoutError::Timeout(1))
        );
        let r = greenhub::timeout(Duration::from_millis(5), || rx.recv());
        assert!(r.is_err());
        // Still usable afterwards.
        let h = greenhub::spawn(move || rx.recv().unwrap());
        tx.send(9).unwrap();
        assert_eq!(h.join().unwrap(), 9);
    });
}

/// Receivers with short timeouts race senders: every value sent is either
/// received or still in the channel; none vanishes.
fn timeout_race(rt: Runtime) {
    rt.block_on(|| {
        let (tx, rx) = channel::bounded::<u32>(2);
        let received = Arc::new(AtomicUsize::new(0));
        let receivers: Vec<_> = (0..4)
            .map(|_| {
                let (rx, received) = (rx.clone(), received.clone());
                greenhub::spawn(move || {
                    let mut timeouts = 0;
                    for _ in 0..300 {
                        match rx.recv_timeout(Duration::from_micros(50)) {
                            Ok(_) => {
                                received.fetch_add(1, SeqCst);
                            }
                            Err(RecvTimeoutError::Timeout) => timeouts += 1,
                            Err(RecvTimeoutError::Disconnected) => break,
                        }
                    }
                    timeouts
                })
            })
            .collect();
        let mut sent = 0;
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(100) {
            if tx
                .send_timeout(sent as u32, Duration::from_micros(30))
                .is_ok()
            {
                sent += 1;
            }
            greenhub::yield_now();
        }
        for h in receivers {
            h.join().unwrap();
        }
        let left = rx.try_iter().count();
        assert_eq!(received.load(SeqCst) + left, sent);
    });
}

#[test]
fn timeouts_racing_values_lose_nothing() {
    with_deadline("timeout race", 60, || {
        timeout_race(single());
        timeout_race(mn());
    });
}

/// Greenlets blocked in recv and send are killed while messages flow; every
/// message that was sent successfully is received exactly once.
fn kill_storm(rt: Runtime) {
    rt.block_on(|| {
        let (tx, rx) = channel::bounded::<u32>(1);
        let got = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sent = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut victims = Vec::new();
        for round in 0..20u32 {
            for k in 0..3 {
                let (rx, got) = (rx.clone(), got.clone());
                victims.push(greenhub::spawn(move || {
                    while let Ok(v) = rx.recv() {
                        got.lock().unwrap().push(v);
                    }
                }));
                let (tx, sent) = (tx.clone(), sent.clone());
                victims.push(greenhub::spawn(move || {
                    for i in 0..20 {
                        let v = round * 10_000 + k * 100 + i;
                        tx.send(v).unwrap();
                        sent.lock().unwrap().push(v);
                    }
                }));
            }
            greenhub::yield_now();
            for h in victims.iter().skip(round as usize % 2).step_by(3) {
                h.kill();
            }
        }
        drop(tx);
        for h in victims {
            let _ = h.join();
        }
        // Drain what the killed receivers left.
        while let Ok(v) = rx.try_recv() {
            got.lock().unwrap().push(v);
        }
        let mut got = got.lock().unwrap().clone();
        let mut sent = sent.lock().unwrap().clone();
        got.sort();
        sent.sort();
        // A sender killed right after its send returned did not record it:
        // every recorded send is received, and nothing is received twice.
        let n = got.len();
        got.dedup();
        assert_eq!(got.len(), n, "a message was received twice");
        for v in &sent {
            assert!(got.binary_search(v).is_ok(), "sent {v} was lost");
        }
        assert!(got.len() <= 20 * 3 * 20);
    });
}

#[test]
fn killing_blocked_greenlets_loses_no_message() {
    with_deadline("kill storm", 60, || {
        kill_storm(single());
        kill_storm(mn());
    });
}

#[test]
fn select_picks_ready_arm_and_times_out() {
    single().block_on(|| {
        let (tx1, rx1) = channel::unbounded::<u32>();
        let (tx2, rx2) = channel::unbounded::<u32>();
        tx2.send(2).unwrap();
        let r = greenhub::select! {
            recv(rx1) -> v => ("one", v.unwrap()),
            recv(rx2) -> v => ("two", v.unwrap()),
        };
        assert_eq!(r, ("two", 2));
        let r = greenhub::select! {
            recv(rx1) -> _v => "value",
            default => "nothing ready",
        };
        assert_eq!(r, "nothing ready");
        let t = Instant::now();
        let r = greenhub::select! {
            recv(rx1) -> _v => "value",
            recv(rx2) -> _v => "value",
            default(Duration::from_millis(20)) => "timeout",
        };
        assert_eq!(r, "timeout");
        assert!(t.elapsed() >= Duration::from_millis(20));
        // Send arms: a full channel is skipped, the rendezvous receiver wins.
        let (full_tx, _full_rx) = channel::bounded::<u32>(0);
        let (rtx, rrx) = channel::rendezvous::<u32>();
        let h = greenhub::spawn(move || rrx.recv().unwrap());
        let r = greenhub::select! {
            send(full_tx, 1) -> _r => "full",
            send(rtx, 7) -> r => { r.unwrap(); "rendezvous" },
        };
        assert_eq!(r, "rendezvous");
        assert_eq!(h.join().unwrap(), 7);
        drop((tx1, tx2));
    });
}

#[test]
fn select_sees_close() {
    single().block_on(|| {
        let (tx, rx) = channel::unbounded::<u8>();
        let h = greenhub::spawn(move || {
            greenhub::select! {
                recv(rx) -> v => v.is_err(),
            }
        });
        greenhub::yield_now();
        drop(tx);
        assert!(h.join().unwrap());
    });
}

/// Two producers on two channels, consumers selecting over both, on two
/// hubs with timeouts firing now and then: every value is received once.
#[test]
fn select_stress_exact_counts() {
    with_deadline("select stress", 60, || {
        mn().block_on(|| {
            let (tx_a, rx_a) = channel::bounded::<u64>(0);
            let (tx_b, rx_b) = channel::bounded::<u64>(2);
            let total = Arc::new(AtomicUsize::new(0));
            let sum = Arc::new(AtomicUsize::new(0));
            let consumers: Vec<_> = (0..3)
                .map(|_| {
                    let (rx_a, rx_b) = (rx_a.clone(), rx_b.clone());
                    let (total, sum) = (total.clone(), sum.clone());
                    greenhub::spawn(move || {
                        // Stop once everything arrived (the senders stay
                        // open, so a closed arm never starves the other).
                        while total.load(SeqCst) < 4000 {
                            let v = greenhub::select! {
                                recv(rx_a) -> v => v.unwrap(),
                                recv(rx_b) -> v => v.unwrap(),
                                default(Duration::from_micros(200)) => continue,
                            };
                            total.fetch_add(1, SeqCst);
                            sum.fetch_add(v as usize, SeqCst);
                        }
                    })
                })
                .collect();
            let (tx_a2, tx_b2) = (tx_a.clone(), tx_b.clone());
            let pa = greenhub::spawn(move || (1..=2000u64).for_each(|v| tx_a.send(v).unwrap()));
            let pb = greenhub::spawn(move || (1..=2000u64).for_each(|v| tx_b.send(v).unwrap()));
            pa.join().unwrap();
            pb.join().unwrap();
            consumers.into_iter().for_each(|h| h.join().unwrap());
            drop((tx_a2, tx_b2));
            assert_eq!(total.load(SeqCst), 4000);
            assert_eq!(sum.load(SeqCst), 2 * 2000 * 2001 / 2);
        });
    });
}

/// A select sending and receiving on channels where another select does the
/// opposite: they must pair up, and a select never matches itself.
#[test]
fn select_send_and_recv_pair_up() {
    with_deadline("select pairs", 30, || {
        mn().block_on(|| {
            let (tx, rx) = channel::rendezvous::<u32>();
            let (tx2, rx2) = (tx.clone(), rx.clone());
            let a = greenhub::spawn(move || {
                let mut sent = 0;
                for i in 0..500 {
                    greenhub::select! {
                        send(tx2, i) -> r => { r.unwrap(); sent += 1; },
                    }
                }
                sent
            });
            let mut got = 0;
            for _ in 0..500 {
                greenhub::select! {
                    recv(rx2) -> v => { v.unwrap(); got += 1; },
                    send(tx, 9999) -> _r => panic!("matched its own receive"),
                }
            }
            assert_eq!(a.join().unwrap(), 500);
            assert_eq!(got, 500);
            drop(rx);
        });
    });
}

#[test]
fn select_killed_while_waiting_leaves_channels_usable() {
    single().block_on(|| {
        let (tx, rx) = channel::unbounded::<u8>();
        let rx2 = rx.clone();
        let h = greenhub::spawn(move || {
            greenhub::select! {
                recv(rx2) -> _v => (),
            }
        });
        greenhub::yield_now();
        h.kill();
        assert!(h.join().unwrap_err().is_killed());
        tx.send(5).unwrap();
        assert_eq!(rx.recv(), Ok(5));
    });
}
