//! Migratable greenlets (`greenlet::Builder::migratable`,
//! `Builder::migratable`): started greenlets move to an idle hub, and
//! everything that holds for greenlets that stay put still holds when they
//! move: results, kills, timeouts, unwinding, shutdown, metrics.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use greenhub::greenlet::Builder as GreenletBuilder;

fn migrating_runtime(hubs: usize) -> greenhub::Runtime {
    // SAFETY: the greenlets of these tests keep only integers, `Arc`s of
    // atomics and greenhub channels across their blocking calls.
    unsafe { greenhub::Builder::new().hubs(hubs).migratable() }
        .build()
        .unwrap()
}

/// Busy for `d` without yielding: keeps its hub from running anything else.
fn spin(d: Duration) -> u64 {
    let start = Instant::now();
    let mut x = 0u64;
    while start.elapsed() < d {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
    x
}

/// Three greenlets on two hubs, woken together each round (one `Event`
/// per round, set by `block_on`'s greenlet), each then a CPU burst: some hub
/// has two of them woken at once and runs one while the other waits, which
/// a migratable greenlet would not (`a_woken_greenlet_moves_to_the_idle_hub`).
/// Returns the threads each greenlet ran on and the runtime's `migrated`
/// count.
fn uneven_load(rt: &greenhub::Runtime) -> (Vec<HashSet<ThreadId>>, u64) {
    const ROUNDS: usize = 10;
    let threads = rt.block_on(|| {
        let gates: Arc<Vec<greenhub::sync::Event>> =
            Arc::new((0..ROUNDS).map(|_| greenhub::sync::Event::new()).collect());
        let hs: Vec<_> = (0..3)
            .map(|_| {
                let gates = gates.clone();
                greenhub::spawn(move || {
                    let mut seen = HashSet::new();
                    for gate in gates.iter() {
                        gate.wait();
                        seen.insert(std::thread::current().id());
                        spin(Duration::from_millis(2));
                    }
                    seen
                })
            })
            .collect();
        for gate in gates.iter() {
            greenhub::sleep(Duration::from_millis(3));
            gate.set();
        }
        hs.into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    (threads, rt.handle().metrics().total().migrated)
}

/// Two migratable greenlets parked on one hub are woken together by a plain
/// thread (through the hub's inbox). The hub keeps the first on its own
/// queue (it runs it next anyway) and puts the second on its stealable
/// deque, where the idle hub takes it over while the first one runs.
/// Each try spawns the pair afresh and counts only if both parked on one
/// hub; the 2-core machines here place both on one hub in about a third of
/// the tries.
#[test]
fn a_woken_greenlet_moves_to_the_idle_hub() {
    let rt = migrating_runtime(2);
    let moved = rt.block_on(|| {
        for _ in 0..100 {
            let gate = Arc::new(greenhub::sync::Event::new());
            let parked = Arc::new(AtomicUsize::new(0));
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    let (gate, parked) = (gate.clone(), parked.clone());
                    greenhub::spawn(move || {
                        let before = std::thread::current().id();
                        parked.fetch_add(1, Ordering::SeqCst);
                        gate.wait();
                        let after = std::thread::current().id();
                        spin(Duration::from_millis(5));
                        (before, after)
                    })
                })
                .collect();
            while parked.load(Ordering::SeqCst) < 2 {
                greenhub::sleep(Duration::from_millis(1));
            }
            // Let both reach `wait` (they counted themselves just before).
            greenhub::sleep(Duration::from_millis(2));
            let waker = gate.clone();
            std::thread::spawn(move || waker.set()).join().unwrap();
            let ran: Vec<_> = hs.into_iter().map(|h| h.join().unwrap()).collect();
            if ran[0].0 != ran[1].0 {
                continue; // parked on different hubs: nothing to take over
            }
            if ran.iter().any(|(before, after)| before != after) {
                return true;
            }
        }
        false
    });
    assert!(moved, "no greenlet ever moved to the idle hub");
    assert!(rt.handle().metrics().total().migrated > 0);
}

#[test]
fn greenlets_stay_put_without_the_opt_in() {
    let rt = greenhub::Builder::new().hubs(2).build().unwrap();
    let (threads, migrated) = uneven_load(&rt);
    assert!(threads.iter().all(|s| s.len() == 1), "{threads:?}");
    assert_eq!(migrated, 0);
}

#[test]
fn the_opt_in_is_ignored_where_nothing_may_move() {
    for rt in [
        greenhub::Builder::new().hubs(2).pinned().build().unwrap(),
        greenhub::Builder::new().single_threaded().build().unwrap(),
    ] {
        let threads = rt.block_on(|| {
            let hs: Vec<_> = (0..3)
                .map(|_| {
                    // SAFETY: only integers are kept across the sleeps.
                    unsafe { GreenletBuilder::new().migratable() }
                        .spawn(|| {
                            let mut seen = HashSet::new();
                            for _ in 0..10 {
                                seen.insert(std::thread::current().id());
                                spin(Duration::from_millis(1));
                                greenhub::sleep(Duration::from_millis(1));
                            }
                            seen
                        })
                        .unwrap()
                })
                .collect();
            hs.into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        });
        assert!(threads.iter().all(|s| s.len() == 1));
        assert_eq!(rt.handle().metrics().total().migrated, 0);
    }
}

/// One greenlet marked migratable in a default runtime moves when a greenlet
/// of another hub wakes it (adopt on wake). It parks, then is woken from a
/// hub it does not run on, in one of two ways, depending on where it
/// started:
///
/// - on this hub (`block_on`'s greenlet never moves): this hub then stays
///   busy without yielding, and a plain greenlet, which the other hub
///   steals, wakes it; the busy hub cannot run it, so it finishes on the
///   other hub or not at all (10 s);
/// - on the other hub (stolen before this one ran it, which a loaded
///   machine makes likely: the spawn's wake-up of the idle hub can preempt
///   this one): this greenlet wakes it and it continues here, unless the
///   other hub steals it back first; then another attempt.
///
/// An earlier version waited for a timer wake-up to be stolen while hogs
/// kept a hub busy. That happened only if the hub had other greenlets
/// queued just then, and it failed a CI run with 30 tries.
#[test]
fn one_migratable_greenlet_in_a_default_runtime() {
    use std::sync::atomic::AtomicBool;
    let rt = greenhub::Builder::new().hubs(2).build().unwrap();
    let moved = rt.block_on(|| {
        let here = std::thread::current().id();
        for attempt in 0..50 {
            let (started_tx, started_rx) = greenhub::channel::bounded::<ThreadId>(1);
            let (go_tx, go_rx) = greenhub::channel::bounded::<()>(1);
            let done = Arc::new(AtomicBool::new(false));
            let done2 = done.clone();
            // SAFETY: only a thread id and greenhub channels are kept across
            // the park.
            let g = unsafe { GreenletBuilder::new().migratable() }
                .spawn(move || {
                    started_tx.send(std::thread::current().id()).unwrap();
                    go_rx.recv().unwrap();
                    done2.store(true, Ordering::SeqCst);
                    std::thread::current().id()
                })
                .unwrap();
            // It sent, then parked in `recv` before its hub ran anything else.
            let started_on = started_rx.recv().unwrap();
            if started_on != here {
                go_tx.send(()).unwrap();
                let ran_on = g.join().unwrap();
                if ran_on != started_on {
                    assert_eq!(ran_on, here, "it continued on the hub that woke it");
                    return true;
                }
                continue;
            }
            // The waker: a plain greenlet, left on this hub's stealable
            // deque; the other hub steals it, since this one is busy below.
            let waker = greenhub::spawn(move || {
                go_tx.send(()).unwrap();
                std::thread::current().id()
            });
            let start = Instant::now();
            while !done.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(10) {
                std::hint::spin_loop();
            }
            let finished_while_busy = done.load(Ordering::SeqCst);
            let ran_on = g.join().unwrap();
            let woken_from = waker.join().unwrap();
            assert!(
                finished_while_busy,
                "attempt {attempt}: the migratable greenlet waited for its busy hub"
            );
            assert_ne!(woken_from, here, "the waker ran on the other hub");
            assert_eq!(ran_on, woken_from, "it finished where it was woken");
            return true;
        }
        false
    });
    assert!(moved, "the migratable greenlet never moved in 50 attempts");
    let m = rt.handle().metrics().total();
    assert!(m.wakes_adopted >= 1 && m.migrated >= 1);
}

#[test]
fn spawn_local_is_refused_on_a_migratable_greenlet() {
    let rt = migrating_runtime(2);
    let err = rt.block_on(|| {
        // The main greenlet of `block_on` stays put: spawn_local works.
        let local = greenhub::spawn_local(|| 1);
        assert_eq!(local.join().unwrap(), 1);
        greenhub::spawn(|| {
            greenhub::greenlet::Builder::new()
                .spawn_local(|| ())
                .map(|_| ())
                .unwrap_err()
        })
        .join()
        .unwrap()
    });
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("migratable"), "{err}");
}

#[test]
fn messages_are_counted_exactly_while_greenlets_move() {
    let rt = migrating_runtime(2);
    let (sum, count) = rt.block_on(|| {
        let (tx, rx) = greenhub::channel::bounded::<u64>(8);
        let producers: Vec<_> = (0..20u64)
            .map(|p| {
                let tx = tx.clone();
                greenhub::spawn(move || {
                    for i in 0..500u64 {
                        if i % 50 == 0 {
                            spin(Duration::from_micros(300));
                        }
                        tx.send(p * 1_000 + i).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        let consumers: Vec<_> = (0..4)
            .map(|_| {
                let rx = rx.clone();
                greenhub::spawn(move || {
                    let (mut sum, mut n) = (0u64, 0u64);
                    while let Ok(v) = rx.recv() {
                        sum += v;
                        n += 1;
                    }
                    (sum, n)
                })
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        consumers
            .into_iter()
            .map(|c| c.join().unwrap())
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    });
    let expect: u64 = (0..20u64)
        .map(|p| (0..500u64).map(|i| p * 1_000 + i).sum::<u64>())
        .sum();
    assert_eq!((sum, count), (expect, 10_000));
    let m = rt.handle().metrics().total();
    assert_eq!(m.alive(), 0);
    assert_eq!(m.started, m.finished + m.panicked + m.killed);
}

#[test]
fn a_moving_greenlet_can_be_killed() {
    let rt = migrating_runtime(2);
    rt.block_on(|| {
        let dropped = Arc::new(AtomicUsize::new(0));
        struct Count(Arc<AtomicUsize>);
        impl Drop for Count {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let hs: Vec<_> = (0..16)
            .map(|_| {
                let c = Count(dropped.clone());
                greenhub::spawn(move || {
                    let _c = c;
                    loop {
                        spin(Duration::from_micros(200));
                        greenhub::sleep(Duration::from_micros(500));
                        greenhub::yield_now();
                    }
                })
            })
            .collect();
        greenhub::sleep(Duration::from_millis(30));
        for h in &hs {
            h.kill();
        }
        for h in hs {
            assert!(h.join().unwrap_err().is_killed());
        }
        assert_eq!(dropped.load(Ordering::SeqCst), 16);
    });
}

#[test]
fn timeouts_fire_and_cancel_across_moves() {
    let rt = migrating_runtime(2);
    let start = Instant::now();
    let (got, timed_out) = rt.block_on(|| {
        let (tx, rx) = greenhub::channel::unbounded::<u32>();
        // Receivers with long timeouts that are nearly always cancelled by a
        // message; they move between hubs, so many cancellations reach the
        // hub that armed the timer from another one.
        let receivers: Vec<_> = (0..6)
            .map(|_| {
                let rx = rx.clone();
                greenhub::spawn(move || {
                    let (mut got, mut timed_out) = (0u32, 0u32);
                    loop {
                        match greenhub::timeout(Duration::from_secs(60), || rx.recv()) {
                            Ok(Ok(_)) => got += 1,
                            Ok(Err(_)) => break,
                            Err(_) => timed_out += 1,
                        }
                        spin(Duration::from_micros(100));
                    }
                    // And short ones that do fire, wherever it now runs.
                    for _ in 0..3 {
                        assert!(
                            greenhub::timeout(Duration::from_millis(2), || {
                                greenhub::sleep(Duration::from_secs(60))
                            })
                            .is_err()
                        );
                    }
                    (got, timed_out)
                })
            })
            .collect();
        drop(rx);
        for i in 0..3_000 {
            tx.send(i).unwrap();
            if i % 100 == 0 {
                // Keep this hub busy while the receivers it woke wait: the
                // other hub takes them over, mid-timeout.
                spin(Duration::from_millis(1));
                greenhub::sleep(Duration::from_millis(1));
            }
        }
        drop(tx);
        receivers
            .into_iter()
            .map(|r| r.join().unwrap())
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    });
    assert_eq!((got, timed_out), (3_000, 0));
    // Dropping the runtime must not wait for a 60 s timer that a moved
    // greenlet left behind on another hub.
    drop(rt);
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_greenlet_that_blocks_while_unwinding_finishes_its_unwinding() {
    let rt = migrating_runtime(2);
    let dropped = Arc::new(AtomicUsize::new(0));
    let d = dropped.clone();
    let panics = rt.block_on(move || {
        struct SlowDrop(Arc<AtomicUsize>);
        impl Drop for SlowDrop {
            fn drop(&mut self) {
                // Blocks while its greenlet unwinds from the panic below.
                greenhub::sleep(Duration::from_millis(2));
                spin(Duration::from_micros(300));
                greenhub::sleep(Duration::from_millis(1));
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let hs: Vec<_> = (0..12)
            .map(|i| {
                let guard = SlowDrop(d.clone());
                greenhub::spawn(move || {
                    let _g = guard;
                    for _ in 0..5 {
                        spin(Duration::from_micros(500));
                        greenhub::sleep(Duration::from_millis(1));
                    }
                    if i % 2 == 0 {
                        panic!("greenlet {i} fails on purpose");
                    }
                    i
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join())
            .filter(|r| r.as_ref().is_err_and(|e| e.is_panic()))
            .count()
    });
    assert_eq!(panics, 6);
    assert_eq!(dropped.load(Ordering::SeqCst), 12);
}

#[test]
fn shutdown_unwinds_greenlets_that_are_moving() {
    let rt = migrating_runtime(2);
    let dropped = Arc::new(AtomicUsize::new(0));
    struct Count(Arc<AtomicUsize>);
    impl Drop for Count {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let hs: Vec<_> = (0..64)
        .map(|i| {
            let c = Count(dropped.clone());
            rt.spawn(move || {
                let _c = c;
                loop {
                    spin(Duration::from_micros(100 + i * 10));
                    if i % 3 == 0 {
                        greenhub::yield_now();
                    } else {
                        greenhub::sleep(Duration::from_micros(300));
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    drop(rt);
    for h in hs {
        assert!(h.join().unwrap_err().is_killed());
    }
    assert_eq!(dropped.load(Ordering::SeqCst), 64);
}

/// A migratable greenlet parked on a socket, on a hub that then runs a
/// greenlet that does not yield: the data arrives, the other hub's poller
/// sees it (a migratable greenlet's fds are in every hub's poller), and
/// that hub wakes the greenlet and runs it (adopt on wake), while the first
/// hub is still busy. Without that the greenlet waited for the busy
/// greenlet to end (here: 10 s).
#[test]
fn a_greenlet_woken_by_its_socket_runs_while_its_hub_is_busy() {
    use std::io::{Read, Write};
    use std::sync::atomic::AtomicBool;
    let rt = migrating_runtime(2);
    let moved = rt.block_on(|| {
        let listener = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // The reader must first park on this greenlet's hub (this greenlet
        // is `block_on`'s, which never moves). It runs on whichever hub
        // starts it: try again until it is this one.
        for attempt in 0..50 {
            let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
            let client = std::thread::spawn(move || {
                let mut c = std::net::TcpStream::connect(addr).unwrap();
                go_rx.recv().unwrap();
                c.write_all(b"x").unwrap();
                c
            });
            let (mut conn, _) = listener.accept().unwrap();
            let (tx, rx) = greenhub::channel::bounded::<ThreadId>(1);
            let done = Arc::new(AtomicBool::new(false));
            let done2 = done.clone();
            let reader = greenhub::spawn(move || {
                tx.send(std::thread::current().id()).unwrap();
                let mut b = [0u8; 1];
                conn.read_exact(&mut b).unwrap();
                done2.store(true, Ordering::SeqCst);
                std::thread::current().id()
            });
            // The reader sent, then parked in `read_exact` before this hub
            // ran us again, if it runs on this hub.
            let started_on = rx.recv().unwrap();
            let here = std::thread::current().id();
            go_tx.send(()).unwrap();
            if started_on != here {
                reader.join().unwrap();
                drop(client.join().unwrap());
                continue;
            }
            // Busy without yielding until the reader is done, 10 s at most.
            let start = Instant::now();
            while !done.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(10) {
                std::hint::spin_loop();
            }
            let finished_while_busy = done.load(Ordering::SeqCst);
            let ran_on = reader.join().unwrap();
            drop(client.join().unwrap());
            assert!(
                finished_while_busy,
                "attempt {attempt}: the reader waited for its busy hub"
            );
            assert_ne!(ran_on, here, "it finished on the other hub");
            return true;
        }
        false
    });
    assert!(moved, "the reader never started on block_on's hub");
    assert!(rt.handle().metrics().total().wakes_adopted >= 1);
}

/// A run-info dump lists the migratable greenlets with what they wait on,
/// whichever hub they are parked on.
#[test]
fn a_dump_lists_parked_migratable_greenlets() {
    use greenhub::inspect::{GreenletState, WaitKind};
    let rt = migrating_runtime(2);
    rt.block_on(|| {
        let ev = Arc::new(greenhub::sync::Event::new());
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let ev = ev.clone();
                greenhub::spawn(move || ev.wait())
            })
            .collect();
        let ids: Vec<_> = hs.iter().map(|h| h.id()).collect();
        let parked = |info: &greenhub::inspect::RunInfo| {
            ids.iter()
                .filter(|id| {
                    matches!(
                        info.greenlet(**id).map(|g| g.state),
                        Some(GreenletState::Parked {
                            on: WaitKind::Event,
                            ..
                        })
                    )
                })
                .count()
        };
        let start = Instant::now();
        let mut info = greenhub::Handle::current().run_info();
        while parked(&info) < ids.len() && start.elapsed() < Duration::from_secs(10) {
            greenhub::sleep(Duration::from_millis(5));
            info = greenhub::Handle::current().run_info();
        }
        assert_eq!(parked(&info), ids.len(), "{info}");
        ev.set();
        for h in hs {
            h.join().unwrap();
        }
        let after = greenhub::Handle::current().run_info();
        assert!(
            ids.iter().all(|id| after.greenlet(*id).is_none()),
            "{after}"
        );
    });
}
