//! The run-info dump, the metrics and the blocking monitor (`greenhub::inspect`).

mod common;

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use greenhub::inspect::{GreenletState, RunInfo, WaitKind};
use greenhub::{Builder, Handle};

fn parked_on(info: &RunInfo, id: greenhub::GreenletId) -> (WaitKind, u64, Option<Instant>) {
    match info.greenlet(id).map(|g| g.state) {
        Some(GreenletState::Parked { on, object, until }) => (on, object, until),
        other => panic!("greenlet {id} is not parked: {other:?}\n{info}"),
    }
}

/// Known states show up as such, in both modes: a channel wait, a sleep
/// with its deadline, a mutex, an event, a join, a socket read; names,
/// spawn sites, parents; a killed greenlet disappears.
#[test]
fn dump_shows_what_each_greenlet_waits_for() {
    common::in_each_mode("dump", |mode| {
        let me = greenhub::current().id();
        let (tx, rx) = greenhub::channel::unbounded::<u32>();
        let line = line!() + 3;
        let receiver = greenhub::greenlet::Builder::new()
            .name("receiver".into())
            .spawn(move || rx.recv().unwrap())
            .unwrap();
        let sleep_deadline = Instant::now() + Duration::from_secs(30);
        let sleeper = greenhub::spawn(|| greenhub::sleep(Duration::from_secs(30)));
        let sleeper_id = sleeper.id();
        let lock = Arc::new(greenhub::sync::Mutex::new(()));
        let guard = lock.lock();
        let l2 = lock.clone();
        let locker = greenhub::spawn(move || drop(l2.lock()));
        let ev = Arc::new(greenhub::sync::Event::new());
        let e2 = ev.clone();
        let ev_waiter = greenhub::spawn(move || e2.wait());
        let receiver_id = receiver.id();
        let joiner = greenhub::spawn(move || receiver.join().unwrap());
        let listener = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = greenhub::net::TcpStream::connect(addr).unwrap();
        let (server, _) = listener.accept().unwrap();
        let server_fd = std::os::fd::AsRawFd::as_raw_fd(&server);
        let reader = greenhub::spawn(move || {
            let mut server = server;
            let mut b = [0u8; 1];
            server.read(&mut b).unwrap()
        });
        // Let all of them start and block.
        greenhub::sleep(Duration::from_millis(50));

        let info = Handle::current().run_info();
        assert!(info.hubs.iter().all(|h| h.answered), "{mode}: {info}");
        assert_eq!(info.greenlet(me).unwrap().state, GreenletState::Running);
        let r = info.greenlet(receiver_id).unwrap();
        assert_eq!(r.name.as_deref(), Some("receiver"));
        assert_eq!(r.parent, Some(me));
        assert!(r.spawned_at.file().ends_with("inspect_dump.rs"));
        assert_eq!(r.spawned_at.line(), line, "{mode}");
        assert_eq!(parked_on(&info, receiver_id).0, WaitKind::ChannelRecv);
        let (on, _, until) = parked_on(&info, sleeper.id());
        assert_eq!(on, WaitKind::Sleep);
        let until = until.expect("a sleep has a deadline");
        assert!(until.duration_since(sleep_deadline) < Duration::from_secs(1));
        assert!(sleep_deadline.duration_since(until) < Duration::from_secs(1));
        assert_eq!(parked_on(&info, locker.id()).0, WaitKind::Mutex);
        assert_eq!(parked_on(&info, ev_waiter.id()).0, WaitKind::Event);
        assert_eq!(
            parked_on(&info, joiner.id()),
            (WaitKind::Join, receiver_id.as_u64(), None)
        );
        assert_eq!(
            parked_on(&info, reader.id()),
            (WaitKind::Readable, server_fd as u64, None)
        );
        let text = info.to_string();
        assert!(
            text.contains("\"receiver\": parked on ChannelRecv"),
            "{text}"
        );
        assert!(text.contains("parked on sleep until +"), "{text}");

        // Wake or kill them all; the killed sleeper disappears.
        sleeper.kill();
        assert!(sleeper.join().unwrap_err().is_killed());
        drop(guard);
        ev.set();
        tx.send(1).unwrap();
        std::io::Write::write_all(&mut &client, b"x").unwrap();
        let sleeper_gone = Handle::current().run_info();
        for h in [locker, ev_waiter] {
            h.join().unwrap();
        }
        assert_eq!(joiner.join().unwrap(), 1);
        assert_eq!(reader.join().unwrap(), 1);
        assert!(sleeper_gone.greenlet(sleeper_id).is_none());
        let after = Handle::current().run_info();
        assert_eq!(
            after.greenlets().count(),
            1,
            "{mode}: only main is left: {after}"
        );
    });
}

/// A dump from a plain thread while a greenlet holds the only hub: the hub
/// does not answer, and the monitor names the greenlet that holds it.
#[test]
fn dump_names_the_greenlet_that_blocks_a_hub() {
    let rt = Builder::new()
        .single_threaded()
        .max_blocking_time(Some(Duration::from_millis(50)))
        .on_blocking(|_| {})
        .build()
        .unwrap();
    let release = Arc::new(AtomicBool::new(false));
    let r2 = release.clone();
    let hog = rt.spawn(move || {
        greenhub::greenlet::Builder::new()
            .name("hog".into())
            .spawn(move || {
                while !r2.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(5)); // blocks the hub
                }
            })
            .unwrap()
            .join()
            .unwrap()
    });
    std::thread::sleep(Duration::from_millis(100));
    let info = rt.handle().run_info();
    release.store(true, Ordering::SeqCst);
    let hub = &info.hubs[0];
    assert!(!hub.answered, "{info}");
    assert_eq!(hub.greenlets.len(), 1, "{info}");
    assert_eq!(hub.greenlets[0].name.as_deref(), Some("hog"));
    assert_eq!(hub.greenlets[0].state, GreenletState::Running);
    assert!(info.to_string().contains("did not answer"));
    hog.join().unwrap();
    // Once it yields again, the hub answers.
    let info = rt.handle().run_info();
    assert!(info.hubs[0].answered, "{info}");
}

/// Counts of a known workload, exactly, in both modes.
#[test]
fn metrics_count_a_known_workload_exactly() {
    common::with_deadline("metrics", 120, || {
        for (mode, builder) in common::mode_builders() {
            let rt = builder.build().unwrap();
            rt.block_on(|| {
                let done: Vec<_> = (0..100).map(|i| greenhub::spawn(move || i)).collect();
                let parked: Vec<_> = (0..10)
                    .map(|_| greenhub::spawn(|| greenhub::sleep(Duration::from_secs(60))))
                    .collect();
                let panics: Vec<_> = (0..5)
                    .map(|_| greenhub::spawn(|| panic!("expected panic (metrics test)")))
                    .collect();
                let sum: i32 = done.into_iter().map(|h| h.join().unwrap()).sum();
                assert_eq!(sum, 4950);
                greenhub::sleep(Duration::from_millis(20));
                for h in &parked {
                    h.kill();
                }
                for h in parked {
                    assert!(h.join().unwrap_err().is_killed());
                }
                for h in panics {
                    assert!(h.join().unwrap_err().is_panic());
                }
            });
            let m = rt.handle().metrics();
            let t = m.total();
            assert_eq!(m.spawned_outside, 1, "{mode}: main");
            assert_eq!(t.spawned, 115, "{mode}\n{m}");
            assert_eq!(t.started, 116, "{mode}\n{m}");
            assert_eq!(t.finished, 101, "{mode}\n{m}");
            assert_eq!(t.killed, 10, "{mode}\n{m}");
            assert_eq!(t.panicked, 5, "{mode}\n{m}");
            assert_eq!(t.cancelled, 0, "{mode}\n{m}");
            assert_eq!(t.joins, 116, "{mode}: 115 in main, main by block_on\n{m}");
            assert_eq!(m.alive(), 0, "{mode}\n{m}");
            assert!(t.parks >= 10 && t.switches >= 116, "{mode}\n{m}");
            assert!(t.timers_armed >= 11, "{mode}\n{m}");
            assert_eq!(t.stolen, t.stolen_from.iter().sum::<u64>(), "{mode}");
            assert!(m.stacks.mapped_bytes > 0 && m.stacks.resident_bytes > 0);
            assert!(m.stacks.resident_bytes <= m.stacks.mapped_bytes);
            let table = m.to_string();
            assert!(
                table.contains("spawned") && table.contains("total"),
                "{table}"
            );
        }
    });
}

/// A rendezvous ping-pong of 1,000 round trips: each side parks at least
/// once per message; every greenlet of it is counted alive while it runs.
#[test]
fn metrics_count_parks_and_wakes() {
    let rt = Builder::new().single_threaded().build().unwrap();
    rt.block_on(|| {
        let before = Handle::current().metrics().total();
        let (tx, rx) = greenhub::channel::rendezvous::<u32>();
        let (back_tx, back_rx) = greenhub::channel::rendezvous::<u32>();
        let echo = greenhub::spawn(move || {
            while let Ok(v) = rx.recv() {
                back_tx.send(v).unwrap();
            }
        });
        assert_eq!(Handle::current().metrics().alive(), 2);
        for i in 0..1000 {
            tx.send(i).unwrap();
            assert_eq!(back_rx.recv().unwrap(), i);
        }
        drop(tx);
        echo.join().unwrap();
        let after = Handle::current().metrics().total();
        assert!(after.parks - before.parks >= 1000, "{after:?}");
        assert!(after.wakes_local - before.wakes_local >= 1000, "{after:?}");
        assert!(after.switches - before.switches >= 2000, "{after:?}");
    });
}

/// The monitor reports a greenlet that blocks its hub once per episode,
/// with name, spawn site, hub and duration; cooperative code is not
/// reported.
#[test]
fn monitor_reports_a_blocking_greenlet() {
    let reports = Arc::new(Mutex::new(Vec::new()));
    let r2 = reports.clone();
    let rt = Builder::new()
        .hubs(2)
        .max_blocking_time(Some(Duration::from_millis(50)))
        .on_blocking(move |r| r2.lock().unwrap().push(r.clone()))
        .build()
        .unwrap();
    rt.block_on(|| {
        // Cooperative waits, however long, are not blocking.
        let hs: Vec<_> = (0..20)
            .map(|_| greenhub::spawn(|| greenhub::sleep(Duration::from_millis(200))))
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
    assert!(
        reports.lock().unwrap().is_empty(),
        "{:?}",
        reports.lock().unwrap()
    );
    let line = line!() + 4;
    rt.block_on(|| {
        greenhub::greenlet::Builder::new()
            .name("sleepy".into())
            .spawn(|| std::thread::sleep(Duration::from_millis(400)))
            .unwrap()
            .join()
            .unwrap();
    });
    let reports = reports.lock().unwrap();
    assert_eq!(reports.len(), 1, "once per episode: {reports:?}");
    let r = &reports[0];
    assert_eq!(r.name.as_deref(), Some("sleepy"));
    assert_eq!(r.spawned_at.line(), line);
    assert!(
        r.blocked_for >= Duration::from_millis(50) && r.blocked_for < Duration::from_millis(400)
    );
    assert!(r.to_string().contains("blocked for"));
    // The report names the call the thread is stuck in (std's sleep is
    // `clock_nanosleep` under glibc, `nanosleep` elsewhere).
    let call = r.syscall.as_deref().expect("the blocked call is named");
    assert!(call.contains("nanosleep"), "{call}");
    assert!(r.to_string().contains(call), "{r}");
    let m = rt.handle().metrics();
    assert_eq!(m.hubs[r.hub].blocked_reports, 1);
    assert_eq!(m.total().blocked_reports, 1);
}

/// The blocking monitor names the system call a hub is stuck in: a std
/// `Mutex` held by a plain thread is a `futex`; a `read` on a pipe names the
/// fd and says it is a pipe; a long computation names no call.
#[test]
fn monitor_names_the_blocking_call() {
    use std::io::Read;
    use std::os::fd::FromRawFd;

    let reports = Arc::new(Mutex::new(Vec::<greenhub::inspect::BlockingReport>::new()));
    let r2 = reports.clone();
    let rt = Builder::new()
        .single_threaded()
        .max_blocking_time(Some(Duration::from_millis(30)))
        .on_blocking(move |r| r2.lock().unwrap().push(r.clone()))
        .build()
        .unwrap();
    // A std lock held by a plain thread for 300 ms.
    let lock = Arc::new(std::sync::Mutex::new(0u32));
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let l2 = lock.clone();
    let holder = std::thread::spawn(move || {
        let _g = l2.lock().unwrap();
        held_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(300));
    });
    held_rx.recv().unwrap();
    let l3 = lock.clone();
    rt.block_on(move || *l3.lock().unwrap() += 1);
    holder.join().unwrap();
    // A read on a pipe whose writer writes after 300 ms.
    let mut fds = [0; 2];
    // SAFETY: a valid array of two fds for pipe(2) to fill.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: pipe(2) just opened both fds, each owned once here.
    let (mut rd, wr) = unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    };
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let mut wr = wr;
        std::io::Write::write_all(&mut wr, b"x").unwrap();
    });
    let got = rt.block_on(move || {
        let mut b = [0u8; 1];
        rd.read_exact(&mut b).unwrap();
        b[0]
    });
    assert_eq!(got, b'x');
    writer.join().unwrap();
    // A long computation: no call.
    rt.block_on(|| {
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(300) {
            std::hint::spin_loop();
        }
    });
    let reports = reports.lock().unwrap();
    assert_eq!(reports.len(), 3, "{reports:?}");
    let futex = reports[0].syscall.as_deref().unwrap_or_default();
    assert!(futex.starts_with("futex"), "{reports:?}");
    let read = reports[1].syscall.as_deref().unwrap_or_default();
    assert!(
        read.starts_with(&format!("read(fd {}: a pipe)", fds[0])),
        "{reports:?}"
    );
    assert_eq!(reports[2].syscall, None, "{reports:?}");
    assert!(reports[2].to_string().contains("runs without yielding"));
}

/// `run_info_on_signal`: the dump and the metrics go to stderr on the
/// signal (a child process, which signals itself).
#[test]
fn run_info_on_signal_prints_the_dump() {
    let out = common::run_child("child_run_info_on_signal", &[], 60);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("greenhub run info"), "{stderr}");
    assert!(
        stderr.contains("\"waiter\": parked on ChannelRecv"),
        "{stderr}"
    );
    assert!(stderr.contains("switches"), "{stderr}");
}

#[test]
#[ignore = "child process of run_info_on_signal_prints_the_dump"]
fn child_run_info_on_signal() {
    if !common::is_child("child_run_info_on_signal") {
        return;
    }
    let rt = Builder::new()
        .single_threaded()
        .run_info_on_signal(libc::SIGUSR1)
        .build()
        .unwrap();
    rt.block_on(|| {
        let (tx, rx) = greenhub::channel::unbounded::<()>();
        let waiter = greenhub::greenlet::Builder::new()
            .name("waiter".into())
            .spawn(move || rx.recv().unwrap())
            .unwrap();
        greenhub::sleep(Duration::from_millis(20));
        // SAFETY: raising a signal that the runtime has a handler for.
        assert_eq!(unsafe { libc::raise(libc::SIGUSR1) }, 0);
        greenhub::sleep(Duration::from_millis(500));
        tx.send(()).unwrap();
        waiter.join().unwrap();
    });
}

/// A zero blocking limit is refused with a clear error, not a report storm.
#[test]
fn zero_blocking_limit_is_invalid_input() {
    let err = Builder::new()
        .max_blocking_time(Some(Duration::ZERO))
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("max_blocking_time"), "{err}");
}
