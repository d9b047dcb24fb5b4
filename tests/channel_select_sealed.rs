//! `select!` after its macro support was sealed (issue 18): the macro keeps
//! working in a crate that forbids `unsafe`, with many arms, with kills and
//! `timeout`s landing while it waits, and a select that timed out leaves
//! nothing linked (later sends reach live receivers, each value exactly
//! once). The doc-hidden items the macro calls stay safe when called
//! directly: a case used for a second select, or made on another greenlet,
//! still wakes the greenlet selecting with it. (That a user cannot implement
//! the case trait, call `link`, or get a `Selector` is pinned by the
//! `compile_fail` doctests in `src/channel/select.rs`.)
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use greenhub::channel::{self, __select, Receiver, RecvCase, SelectCase, Sender, TrySendError};
use greenhub::{Builder, Runtime};

/// Runs `f` on its own thread; a hang fails the test after `secs` seconds.
/// (Not `tests/common`: that module uses `unsafe`, which this crate forbids
/// to show the macro needs none.)
fn with_deadline<F: FnOnce() + Send + 'static>(what: &str, secs: u64, f: F) {
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(()) => t.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(payload) = t.join() {
                std::panic::resume_unwind(payload);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: hangs after {secs} s"),
    }
}

fn single() -> Runtime {
    Builder::new().single_threaded().build().unwrap()
}

fn mn() -> Runtime {
    Builder::new().hubs(2).build().unwrap()
}

const CHANS: usize = 8;
const PER_CHAN: usize = 250;
const TOTAL: usize = CHANS * PER_CHAN;

/// Channel `c`: rendezvous, bounded(2) or unbounded, in turn.
fn make_chan(c: usize) -> (Sender<usize>, Receiver<usize>) {
    match c % 3 {
        0 => channel::rendezvous(),
        1 => channel::bounded(2),
        _ => channel::unbounded(),
    }
}

/// One select over all eight receivers; `wait: None` waits without limit.
/// `Some(value)` if an arm received one, `None` on timeout.
fn select_all(rx: &[Receiver<usize>], wait: Option<Duration>) -> Option<usize> {
    match wait {
        Some(d) => greenhub::select! {
            recv(rx[0]) -> v => Some(v.unwrap()),
            recv(rx[1]) -> v => Some(v.unwrap()),
            recv(rx[2]) -> v => Some(v.unwrap()),
            recv(rx[3]) -> v => Some(v.unwrap()),
            recv(rx[4]) -> v => Some(v.unwrap()),
            recv(rx[5]) -> v => Some(v.unwrap()),
            recv(rx[6]) -> v => Some(v.unwrap()),
            recv(rx[7]) -> v => Some(v.unwrap()),
            default(d) => None,
        },
        None => greenhub::select! {
            recv(rx[0]) -> v => Some(v.unwrap()),
            recv(rx[1]) -> v => Some(v.unwrap()),
            recv(rx[2]) -> v => Some(v.unwrap()),
            recv(rx[3]) -> v => Some(v.unwrap()),
            recv(rx[4]) -> v => Some(v.unwrap()),
            recv(rx[5]) -> v => Some(v.unwrap()),
            recv(rx[6]) -> v => Some(v.unwrap()),
            recv(rx[7]) -> v => Some(v.unwrap()),
        },
    }
}

/// Counts each value received; `seen[v]` must end at exactly 1.
struct Tally {
    seen: Vec<AtomicUsize>,
    total: AtomicUsize,
}

impl Tally {
    fn record(&self, v: usize) {
        self.seen[v].fetch_add(1, SeqCst);
        self.total.fetch_add(1, SeqCst);
    }

    fn done(&self) -> bool {
        self.total.load(SeqCst) >= TOTAL
    }
}

/// Whether a value sent on `tx` now reaches a live receiver or the buffer,
/// never a node a finished select left behind: a rendezvous channel with no
/// receiver waiting must refuse it, a buffered one must hand it to `rx`.
fn assert_nothing_linked(c: usize, tx: &Sender<usize>, rx: &Receiver<usize>, probe: usize) {
    if c % 3 == 0 {
        assert!(
            matches!(tx.try_send(probe), Err(TrySendError::Full(_))),
            "channel {c}: a rendezvous send found a receiver, but none is waiting"
        );
    } else {
        tx.send(probe).unwrap();
        assert_eq!(
            rx.try_recv(),
            Ok(probe),
            "channel {c}: the value went astray"
        );
    }
}

/// Eight channels, a producer on each; consumers select over all eight:
/// some with a short `default(..)`, some inside a short `timeout`, some with
/// no limit that keep being killed (and replaced) while they wait. Every
/// value arrives exactly once, and afterwards no channel holds a node of a
/// select that ended.
#[test]
fn many_arms_with_kills_and_timeouts_lose_nothing() {
    with_deadline("select kills and timeouts", 90, || {
        mn().block_on(|| {
            let (txs, rxs): (Vec<_>, Vec<_>) = (0..CHANS).map(make_chan).unzip();
            let rxs = Arc::new(rxs);
            let tally = Arc::new(Tally {
                seen: (0..TOTAL).map(|_| AtomicUsize::new(0)).collect(),
                total: AtomicUsize::new(0),
            });
            let producers: Vec<_> = txs
                .iter()
                .enumerate()
                .map(|(c, tx)| {
                    let tx = tx.clone();
                    greenhub::spawn(move || {
                        for i in 0..PER_CHAN {
                            tx.send(c * PER_CHAN + i).unwrap();
                            if i % 5 == 0 {
                                // Spread the run out, so kills and
                                // timeouts land while selects wait.
                                greenhub::sleep(Duration::from_micros(200));
                            }
                        }
                    })
                })
                .collect();
            let mut quiet = Vec::new();
            for _ in 0..2 {
                let (rxs, tally) = (rxs.clone(), tally.clone());
                quiet.push(greenhub::spawn(move || {
                    while !tally.done() {
                        if let Some(v) = select_all(&rxs, Some(Duration::from_micros(150))) {
                            tally.record(v);
                        }
                    }
                }));
            }
            let timeouts = Arc::new(AtomicUsize::new(0));
            for _ in 0..2 {
                let (rxs, tally, timeouts) = (rxs.clone(), tally.clone(), timeouts.clone());
                quiet.push(greenhub::spawn(move || {
                    while !tally.done() {
                        let r = greenhub::timeout(Duration::from_micros(150), || {
                            // Recorded inside: a value that won just as the
                            // frame expired is kept, and counted here.
                            if let Some(v) = select_all(&rxs, None) {
                                tally.record(v);
                            }
                        });
                        if r.is_err() {
                            timeouts.fetch_add(1, SeqCst);
                        }
                    }
                }));
            }
            let spawn_waiter = || {
                let (rxs, tally) = (rxs.clone(), tally.clone());
                greenhub::spawn(move || {
                    loop {
                        if let Some(v) = select_all(&rxs, None) {
                            tally.record(v);
                        }
                    }
                })
            };
            let mut waiters: Vec<_> = (0..3).map(|_| spawn_waiter()).collect();
            let mut turn = 0;
            while !tally.done() {
                greenhub::sleep(Duration::from_millis(1));
                let old = std::mem::replace(&mut waiters[turn % 3], spawn_waiter());
                old.kill();
                assert!(old.join().unwrap_err().is_killed());
                turn += 1;
            }
            producers.into_iter().for_each(|h| h.join().unwrap());
            quiet.into_iter().for_each(|h| h.join().unwrap());
            // Nothing is left to receive: these wait in their select.
            for h in waiters {
                h.kill();
                assert!(h.join().unwrap_err().is_killed());
            }
            for (v, n) in tally.seen.iter().enumerate() {
                assert_eq!(n.load(SeqCst), 1, "value {v} received {n:?} times");
            }
            assert_eq!(tally.total.load(SeqCst), TOTAL);
            for (c, (tx, rx)) in txs.iter().zip(rxs.iter()).enumerate() {
                assert_nothing_linked(c, tx, rx, TOTAL + c);
            }
        });
    });
}

/// Selects that time out (`default(..)`, `default` and a `timeout` frame),
/// each followed by sends on every channel it waited on: nothing of the
/// select is left linked, so each value arrives once, where it should, and
/// a send arm that lost did not send.
fn timed_out_selects_then_sends() {
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..CHANS).map(make_chan).unzip();
    let (full_tx, full_rx) = channel::bounded::<usize>(1);
    full_tx.send(usize::MAX).unwrap();
    for round in 0..60 {
        let probe = TOTAL + round * CHANS;
        let timed_out = match round % 3 {
            0 => greenhub::select! {
                recv(rxs[0]) -> _v => false,
                recv(rxs[1]) -> _v => false,
                recv(rxs[2]) -> _v => false,
                send(full_tx, round) -> _r => false,
                recv(rxs[3]) -> _v => false,
                default(Duration::from_micros(200)) => true,
            },
            1 => greenhub::select! {
                recv(rxs[4]) -> _v => false,
                send(full_tx, round) -> _r => false,
                recv(rxs[5]) -> _v => false,
                default => true,
            },
            _ => greenhub::timeout(Duration::from_micros(200), || {
                select_all(&rxs, None);
            })
            .is_err(),
        };
        assert!(timed_out, "round {round}: nothing was ready");
        for (c, (tx, rx)) in txs.iter().zip(&rxs).enumerate() {
            assert_nothing_linked(c, tx, rx, probe + c);
        }
        assert_eq!(full_rx.len(), 1, "round {round}: a losing send arm sent");
    }
    assert_eq!(full_rx.try_recv(), Ok(usize::MAX));
    assert!(full_rx.try_recv().is_err());
}

#[test]
fn sends_after_timed_out_selects_arrive_once_on_a_greenlet() {
    with_deadline("timed-out selects, greenlet", 30, || {
        single().block_on(timed_out_selects_then_sends);
    });
}

#[test]
fn sends_after_timed_out_selects_arrive_once_on_a_thread() {
    with_deadline(
        "timed-out selects, thread",
        30,
        timed_out_selects_then_sends,
    );
}

/// The macro's support items called directly: one `RecvCase` used for two
/// selects. Its first win used up the node's waiter; the second select must
/// give it one again, or the sender's wake-up finds none.
#[test]
fn a_case_used_for_a_second_select_is_woken_again() {
    with_deadline("case used again", 30, || {
        single().block_on(|| {
            let (tx, rx) = channel::unbounded::<u32>();
            let mut case = RecvCase::new(&rx);
            for v in [1, 2] {
                let tx = tx.clone();
                let sender = greenhub::spawn(move || tx.send(v).unwrap());
                let won = __select(&mut [&mut case as &mut dyn SelectCase], None);
                assert_eq!(won, Some(0));
                assert_eq!(case.take(), Ok(v));
                sender.join().unwrap();
            }
        });
    });
}

/// A `RecvCase` made on one greenlet and selected on by another wakes the
/// one selecting, not the one that made it.
#[test]
fn a_case_made_on_another_greenlet_wakes_the_selecting_one() {
    with_deadline("case from another greenlet", 30, || {
        single().block_on(|| {
            let (tx, rx) = channel::unbounded::<u32>();
            let rx: &'static Receiver<u32> = Box::leak(Box::new(rx));
            let selecting = Arc::new(AtomicBool::new(false));
            let mut case = RecvCase::new(rx); // made here, on the main greenlet
            let flag = selecting.clone();
            let h = greenhub::spawn_local(move || {
                flag.store(true, SeqCst);
                let won = __select(&mut [&mut case as &mut dyn SelectCase], None);
                (won, case.take())
            });
            while !selecting.load(SeqCst) {
                greenhub::yield_now();
            }
            greenhub::yield_now(); // let it park
            tx.send(9).unwrap();
            assert_eq!(h.join().unwrap(), (Some(0), Ok(9)));
        });
    });
}
