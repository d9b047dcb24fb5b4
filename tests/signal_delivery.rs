//! `greenhub::signal`: handler greenlets run on real signals (sent to this
//! process with `kill`) in both modes, also while every hub is busy or one
//! is blocked; `Signals` receives from greenlets (parking only them) and
//! plain threads, times out, closes, and loses no arrival; refused signals;
//! the previous disposition comes back after the last subscriber; a clean
//! shutdown on SIGTERM.
//!
//! The tests of this binary share the process, and a signal's disposition
//! is process-wide: each test uses its own signal, and sends it only while
//! it is subscribed (several of them terminate the process by default).

mod common;

use std::hint::black_box;
use std::io::ErrorKind;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use common::{eventually, in_each_mode, threads_named, with_deadline};
use greenhub::Builder;
use greenhub::signal::{SIGHUP, SIGTERM, SIGUSR1, SIGUSR2, Signals, signal_handler};
use greenhub::sync::Event;

/// How long a delivery may take before a test fails (generous: CI machines
/// can be slow; nothing here asserts a tight bound).
const DELIVERY: Duration = Duration::from_secs(5);

fn send(sig: i32) {
    // SAFETY: kill(2) on our own pid; every caller is subscribed to `sig`.
    let rc = unsafe { libc::kill(libc::getpid(), sig) };
    assert_eq!(rc, 0, "kill({sig})");
}

/// The handler address of `sig`'s current disposition.
fn disposition(sig: i32) -> libc::sighandler_t {
    let mut old = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: a query (null new action) into valid memory.
    let rc = unsafe { libc::sigaction(sig, std::ptr::null(), old.as_mut_ptr()) };
    assert_eq!(rc, 0);
    // SAFETY: filled by sigaction.
    unsafe { old.assume_init() }.sa_sigaction
}

/// Waits (parking a greenlet, or sleeping a thread) until `count` reaches
/// `n`; false after [`DELIVERY`].
fn wait_count(count: &AtomicUsize, n: usize) -> bool {
    let deadline = Instant::now() + DELIVERY;
    while count.load(SeqCst) < n {
        if Instant::now() >= deadline {
            return false;
        }
        greenhub::sleep(Duration::from_millis(1));
    }
    true
}

fn counter() -> (Arc<AtomicUsize>, impl Fn() + Send + Sync + 'static) {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    (count, move || {
        c.fetch_add(1, SeqCst);
    })
}

#[test]
fn a_handler_greenlet_runs_on_each_signal() {
    in_each_mode("handler runs", |mode| {
        let runs = Arc::new(AtomicUsize::new(0));
        let in_greenlet = Arc::new(AtomicBool::new(true));
        let (r, g) = (runs.clone(), in_greenlet.clone());
        let handler = signal_handler(SIGUSR1, move || {
            if greenhub::greenlet::try_current().is_none() {
                g.store(false, SeqCst);
            }
            r.fetch_add(1, SeqCst);
        })
        .unwrap();
        // One dispatcher thread for the process (it names itself as it
        // starts, so give it a moment).
        assert!(
            eventually(5, || threads_named("greenhub-signal") == 1),
            "{mode}: {:?}",
            common::thread_names()
        );
        send(SIGUSR1);
        assert!(wait_count(&runs, 1), "{mode}: no handler run");
        // It stays installed after firing (gevent): a second signal, a
        // second run.
        send(SIGUSR1);
        assert!(wait_count(&runs, 2), "{mode}: no second run");
        assert!(in_greenlet.load(SeqCst), "{mode}: ran off a greenlet");
        handler.cancel();
        assert_eq!(runs.load(SeqCst), 2, "{mode}");
    });
}

#[test]
fn the_handler_runs_while_every_hub_is_busy() {
    in_each_mode("busy hubs", |mode| {
        let hubs = if mode == "single" { 1 } else { 2 };
        let fired = Arc::new(AtomicBool::new(false));
        let f = fired.clone();
        let _handler = signal_handler(SIGUSR2, move || f.store(true, SeqCst)).unwrap();
        // One CPU loop per hub, plus the main greenlet's own: every hub is
        // busy and yields only every 1000 iterations.
        let spin = |fired: Arc<AtomicBool>| {
            move || {
                let start = Instant::now();
                let mut x = 0u64;
                while !fired.load(SeqCst) && start.elapsed() < DELIVERY {
                    for i in 0..1000u64 {
                        x = black_box(x.wrapping_mul(31).wrapping_add(i));
                    }
                    greenhub::yield_now();
                }
                fired.load(SeqCst)
            }
        };
        let busy: Vec<_> = (0..hubs)
            .map(|_| greenhub::spawn(spin(fired.clone())))
            .collect();
        greenhub::yield_now(); // let them start
        send(SIGUSR2);
        assert!(spin(fired.clone())(), "{mode}: no handler run");
        for h in busy {
            assert!(h.join().unwrap(), "{mode}");
        }
    });
}

#[test]
fn the_handler_runs_while_a_hub_is_blocked() {
    with_deadline("blocked hub", 60, || {
        let rt = Builder::new().hubs(2).build().unwrap();
        rt.block_on(|| {
            let fired = Arc::new(AtomicBool::new(false));
            let f = fired.clone();
            let _handler = signal_handler(libc::SIGURG, move || f.store(true, SeqCst)).unwrap();
            // Blocks its hub's OS thread (no yield) until the handler ran:
            // the handler can only have run on the other hub.
            let f = fired.clone();
            let blocker = greenhub::spawn(move || {
                let start = Instant::now();
                while !f.load(SeqCst) && start.elapsed() < DELIVERY {
                    std::thread::sleep(Duration::from_millis(1));
                }
                f.load(SeqCst)
            });
            send(libc::SIGURG);
            assert!(
                blocker.join().unwrap(),
                "no handler run beside a blocked hub"
            );
        });
    });
}

#[test]
fn recv_parks_only_the_calling_greenlet() {
    in_each_mode("recv parks", |mode| {
        let signals = Signals::new(&[libc::SIGWINCH]).unwrap();
        let ticks = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (t, s) = (ticks.clone(), stop.clone());
        let ticker = greenhub::spawn(move || {
            while !s.load(SeqCst) {
                greenhub::sleep(Duration::from_millis(1));
                t.fetch_add(1, SeqCst);
            }
        });
        // A plain thread sends once the ticker has ticked 20 times, which
        // it can only do while this greenlet waits in `recv` (in the
        // single-threaded mode they share the hub).
        let t = ticks.clone();
        let sender = std::thread::spawn(move || {
            eventually(10, || t.load(SeqCst) >= 20);
            send(libc::SIGWINCH);
        });
        assert_eq!(signals.recv().unwrap(), libc::SIGWINCH, "{mode}");
        assert!(ticks.load(SeqCst) >= 20, "{mode}: the ticker did not run");
        stop.store(true, SeqCst);
        ticker.join().unwrap();
        sender.join().unwrap();
    });
}

#[test]
fn recv_on_a_plain_thread() {
    with_deadline("plain recv", 60, || {
        let sig = libc::SIGCONT;
        let signals = Signals::new(&[sig]).unwrap();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            send(sig);
        });
        assert_eq!(signals.recv().unwrap(), sig);
        sender.join().unwrap();
        send(sig);
        assert_eq!(signals.iter().next(), Some(sig));
    });
}

#[test]
fn recv_timeout_try_recv_and_greenhub_timeout() {
    with_deadline("recv timeout", 60, || {
        let sig = libc::SIGVTALRM; // never sent
        let signals = Arc::new(Signals::new(&[sig]).unwrap());
        assert_eq!(signals.try_recv().unwrap(), None);
        let start = Instant::now();
        assert_eq!(
            signals.recv_timeout(Duration::from_millis(50)).unwrap(),
            None
        );
        assert!(start.elapsed() >= Duration::from_millis(50));
        let s = signals.clone();
        Builder::new()
            .single_threaded()
            .build()
            .unwrap()
            .block_on(move || {
                assert_eq!(s.recv_timeout(Duration::from_millis(20)).unwrap(), None);
                let r = greenhub::timeout(Duration::from_millis(20), || s.recv());
                assert!(r.is_err(), "recv did not honour greenhub::timeout");
            });
    });
}

#[test]
fn close_and_kill_end_a_blocked_recv() {
    with_deadline("close recv", 60, || {
        let sig = libc::SIGIO; // never sent
        let signals = Arc::new(Signals::new(&[sig]).unwrap());
        let s = signals.clone();
        let waiter = std::thread::spawn(move || s.recv());
        std::thread::sleep(Duration::from_millis(20));
        signals.close();
        let err = waiter.join().unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotConnected);
        assert!(signals.is_closed());
        assert!(signals.signals().is_empty());
        assert_eq!(
            signals.add(sig).unwrap_err().kind(),
            ErrorKind::NotConnected
        );
        assert_eq!(disposition(sig), libc::SIG_DFL);

        greenhub::run(move || {
            let signals = Signals::new(&[sig]).unwrap();
            let waiter = greenhub::spawn(move || signals.recv());
            greenhub::sleep(Duration::from_millis(10));
            waiter.kill();
            assert!(waiter.join().unwrap_err().is_killed());
        });
        assert_eq!(disposition(sig), libc::SIG_DFL); // dropped by the killed greenlet
    });
}

#[test]
fn clean_shutdown_on_sigterm() {
    with_deadline("sigterm shutdown", 60, || {
        let rt = Builder::new().hubs(2).build().unwrap();
        let outcome = rt.block_on(|| {
            let stop = Arc::new(Event::new());
            let (jobs_tx, jobs_rx) = greenhub::channel::unbounded::<u32>();
            let (s, tx) = (stop.clone(), jobs_tx.clone());
            let _handler = signal_handler(SIGTERM, move || {
                tx.close(); // workers drain what is queued, then see the close
                s.set();
            })
            .unwrap();
            let done = Arc::new(AtomicUsize::new(0));
            let workers: Vec<_> = (0..3)
                .map(|_| {
                    let (rx, done) = (jobs_rx.clone(), done.clone());
                    greenhub::spawn(move || {
                        for _job in rx.iter() {
                            greenhub::sleep(Duration::from_millis(1));
                            done.fetch_add(1, SeqCst);
                        }
                    })
                })
                .collect();
            // The main loop: produce work until asked to stop.
            let mut produced = 0;
            let start = Instant::now();
            while !stop.is_set() && start.elapsed() < DELIVERY {
                if jobs_tx.send(produced).is_ok() {
                    produced += 1;
                }
                if produced == 20 {
                    send(SIGTERM);
                }
                greenhub::sleep(Duration::from_millis(1));
            }
            let stopped = stop.is_set();
            for w in workers {
                w.join().unwrap(); // exited by themselves, not killed
            }
            (stopped, produced, done.load(SeqCst))
        });
        let (stopped, produced, done) = outcome;
        assert!(stopped, "SIGTERM did not stop the main loop");
        assert!(produced >= 20);
        assert_eq!(done as u32, produced, "every queued job was done");
    });
}

#[test]
fn refused_signals_are_invalid_input() {
    greenhub::run(|| {
        let refused = [
            (libc::SIGKILL, "SIGKILL"),
            (libc::SIGSTOP, "SIGSTOP"),
            (libc::SIGSEGV, "SIGSEGV"),
            (libc::SIGBUS, "SIGBUS"),
            (libc::SIGILL, "SIGILL"),
            (libc::SIGFPE, "SIGFPE"),
        ];
        for (sig, name) in refused {
            let e = signal_handler(sig, || ()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{name}");
            assert!(e.to_string().contains(name), "{name}: {e}");
            let e = Signals::new(&[sig]).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{name}");
            assert!(e.to_string().contains(name), "{name}: {e}");
        }
        for sig in [0, -1, 65, 1000] {
            let e = signal_handler(sig, || ()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{sig}");
            assert!(e.to_string().contains(&sig.to_string()), "{sig}: {e}");
        }
        #[cfg(target_os = "linux")]
        {
            // Reserved by glibc/musl for their threads.
            let e = Signals::new(&[libc::SIGRTMIN() - 1]).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        }
        // A refused signal after a good one: nothing stays subscribed.
        let e = Signals::new(&[libc::SIGTTOU, libc::SIGKILL]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(disposition(libc::SIGTTOU), libc::SIG_DFL);
    });
    // Off a runtime there is no runtime to spawn the handler on.
    let e = signal_handler(SIGUSR1, || ()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Other);
    assert!(e.to_string().contains("outside"), "{e}");
}

#[test]
fn the_previous_disposition_comes_back() {
    with_deadline("restore", 60, || {
        // SAFETY: sets SIGHUP to "ignore", a valid disposition.
        unsafe { libc::signal(SIGHUP, libc::SIG_IGN) };
        let rt = Builder::new().single_threaded().build().unwrap();
        let handler = greenhub::signal::signal_handler_on(rt.handle(), SIGHUP, || ()).unwrap();
        let ours = disposition(SIGHUP);
        assert_ne!(ours, libc::SIG_IGN);
        let signals = Signals::new(&[SIGHUP]).unwrap();
        handler.cancel();
        assert_eq!(disposition(SIGHUP), ours, "a subscriber is left");
        drop(signals); // the last one
        assert_eq!(disposition(SIGHUP), libc::SIG_IGN);
        send(SIGHUP); // ignored again: the process survives
        // SAFETY: back to the default disposition.
        unsafe { libc::signal(SIGHUP, libc::SIG_DFL) };

        // From the default, through a dropped (not cancelled) handler.
        let sig = libc::SIGXFSZ; // never sent
        let h = greenhub::signal::signal_handler_on(rt.handle(), sig, || ()).unwrap();
        assert_ne!(disposition(sig), libc::SIG_DFL);
        drop(h);
        assert_eq!(disposition(sig), libc::SIG_DFL);
    });
}

#[test]
fn every_subscriber_gets_the_signal() {
    with_deadline("several subscribers", 60, || {
        let sig = libc::SIGPROF;
        let rt1 = Builder::new().single_threaded().build().unwrap();
        let rt2 = Builder::new().hubs(2).build().unwrap();
        let (c1, f1) = counter();
        let (c2, f2) = counter();
        let (c3, f3) = counter();
        let h1 = greenhub::signal::signal_handler_on(rt1.handle(), sig, f1).unwrap();
        let h2 = greenhub::signal::signal_handler_on(rt2.handle(), sig, f2).unwrap();
        let h3 = greenhub::signal::signal_handler_on(rt2.handle(), sig, f3).unwrap();
        let on_thread = Signals::new(&[sig]).unwrap();
        let in_greenlet = Signals::new(&[sig]).unwrap();
        let ready = Arc::new(Event::new());
        let r = ready.clone();
        let waiter = rt1.spawn(move || {
            r.set();
            in_greenlet.recv_timeout(DELIVERY).unwrap()
        });
        ready.wait();
        send(sig);
        assert_eq!(on_thread.recv_timeout(DELIVERY).unwrap(), Some(sig));
        assert_eq!(waiter.join().unwrap(), Some(sig));
        for c in [&c1, &c2, &c3] {
            assert!(eventually(5, || c.load(SeqCst) >= 1));
        }
        drop((h1, h2, h3));
    });
}

#[test]
fn no_arrival_is_lost_and_a_storm_coalesces() {
    with_deadline("no loss", 120, || {
        let sig = libc::SIGALRM;
        let rt = Builder::new().hubs(2).build().unwrap();
        let (runs, f) = counter();
        let _h = greenhub::signal::signal_handler_on(rt.handle(), sig, f).unwrap();
        let signals = Signals::new(&[sig]).unwrap();
        for i in 1..=50 {
            send(sig);
            assert_eq!(signals.recv_timeout(DELIVERY).unwrap(), Some(sig), "#{i}");
            assert!(eventually(5, || runs.load(SeqCst) >= i), "run #{i}");
        }
        // 1000 arrivals nobody receives: the channel holds one entry.
        for _ in 0..1000 {
            send(sig);
        }
        assert_eq!(signals.recv_timeout(DELIVERY).unwrap(), Some(sig));
        std::thread::sleep(Duration::from_millis(200));
        let mut more = 0;
        while signals.try_recv().unwrap().is_some() {
            more += 1;
        }
        // At most one more: an arrival the dispatcher took after the first
        // entry was received.
        assert!(
            more <= 1,
            "{more} more entries: deliveries did not coalesce"
        );
    });
}

#[test]
fn cancel_stops_deliveries() {
    with_deadline("cancel stops", 60, || {
        let sig = libc::SIGXCPU;
        let rt = Builder::new().hubs(2).build().unwrap();
        let (runs, f) = counter();
        let h = greenhub::signal::signal_handler_on(rt.handle(), sig, f).unwrap();
        let signals = Signals::new(&[sig]).unwrap(); // keeps the signal handled
        send(sig);
        assert_eq!(signals.recv_timeout(DELIVERY).unwrap(), Some(sig));
        assert!(eventually(5, || runs.load(SeqCst) == 1));
        h.cancel();
        send(sig);
        assert_eq!(signals.recv_timeout(DELIVERY).unwrap(), Some(sig));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(runs.load(SeqCst), 1, "a cancelled handler ran");
    });
}

#[test]
fn a_panicking_handler_stays_installed() {
    with_deadline("panicking handler", 60, || {
        let sig = libc::SIGSYS;
        let rt = Builder::new().single_threaded().build().unwrap();
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        let _h = greenhub::signal::signal_handler_on(rt.handle(), sig, move || {
            if r.fetch_add(1, SeqCst) == 0 {
                panic!("expected: the first run of the SIGSYS handler panics");
            }
        })
        .unwrap();
        send(sig);
        assert!(eventually(5, || runs.load(SeqCst) == 1));
        send(sig);
        assert!(eventually(5, || runs.load(SeqCst) == 2));
        // The runtime survived its handler's panic.
        assert_eq!(rt.block_on(|| 7), 7);
    });
}
