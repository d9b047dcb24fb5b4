//! gevent and greenlet conformance, part 2: greenlet's kill of a dead raw
//! greenlet and parent restore after a kill on drop (`test_throw.py`,
//! `test_greenlet.py`), a timeout cancellable from inside its block (gevent's
//! `Timeout.cancel()`), and `StreamServer::stop_accepting` /
//! `start_accepting`.

mod common;

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::Duration;

use greenhub::raw::{GreenletExit, RawGreenlet, SwitchError};

// ---- raw greenlets (point 3) ----

/// greenlet's `test_throw.py::test_kill`: killing a dead greenlet is a no-op
/// that answers as the first kill did (the exit "is immediately eaten by the
/// already-dead greenlet").
#[test]
fn kill_of_a_dead_greenlet_returns_exit_again() {
    let g = RawGreenlet::new(|x: i32| {
        let main = RawGreenlet::<i32>::current().parent().unwrap();
        main.switch(x).unwrap(); // "ok"
        main.switch(-1).unwrap(); // "fail": never reached
        0
    });
    assert_eq!(g.switch(7).unwrap(), 7);
    assert_eq!(g.kill(), Err(SwitchError::Exit));
    assert!(g.is_dead());
    assert_eq!(g.kill(), Err(SwitchError::Exit));
    assert_eq!(g.throw(GreenletExit), Err(SwitchError::Exit));
    assert!(g.is_dead());
    // A greenlet that returned normally, and one killed before it started.
    let g = RawGreenlet::new(|x: i32| x + 1);
    assert_eq!(g.switch(1).unwrap(), 2);
    assert_eq!(g.kill(), Err(SwitchError::Exit));
    let g = RawGreenlet::new(|x: i32| x);
    assert_eq!(g.kill(), Err(SwitchError::Exit));
    assert_eq!(g.kill(), Err(SwitchError::Exit));
    // Any other error thrown into a dead greenlet is still raised in its
    // nearest live ancestor, the caller here.
    let err = catch_unwind(AssertUnwindSafe(|| g.throw("boom"))).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"boom"));
}

/// The exit of a dead greenlet goes where its return value went: to its
/// nearest live ancestor, which need not be the caller.
#[test]
fn kill_of_a_dead_greenlet_reaches_its_live_parent() {
    let log: Rc<RefCell<Vec<String>>> = Rc::default();
    let child_slot: Rc<RefCell<Option<RawGreenlet<i32>>>> = Rc::default();
    let (l, slot) = (log.clone(), child_slot.clone());
    let parent = RawGreenlet::new(move |_: i32| {
        let child = RawGreenlet::new(|x: i32| x * 2);
        assert_eq!(child.switch(21).unwrap(), 42);
        *slot.borrow_mut() = Some(child);
        let main = RawGreenlet::<i32>::current().parent().unwrap();
        // Main kills the dead child: its exit comes back here.
        let r = main.switch(1);
        l.borrow_mut().push(format!("parent got {r:?}"));
        5
    });
    assert_eq!(parent.switch(0).unwrap(), 1);
    let child = child_slot.borrow_mut().take().unwrap();
    assert!(child.is_dead());
    assert_eq!(child.kill().unwrap(), 5);
    assert_eq!(*log.borrow(), ["parent got Err(Exit)"]);
}

/// greenlet's `test_greenlet.py::test_parent_restored_on_kill`: a greenlet
/// killed by dropping its last handle has the dropper as its parent during
/// the kill, and gets its own parent back afterwards, here after it caught
/// the exit and lived on.
#[test]
fn greenlet_killed_on_drop_gets_its_parent_back() {
    let hub = RawGreenlet::new(|x: i32| x + 100);
    let main = RawGreenlet::<i32>::current();
    let seen: Rc<RefCell<Vec<RawGreenlet<i32>>>> = Rc::default();
    let (h, m, s) = (hub.clone(), main.clone(), seen.clone());
    let g = RawGreenlet::with_parent(&hub, move |x: i32| {
        // Wait to be killed by going back to the test.
        let caught = catch_unwind(AssertUnwindSafe(|| m.switch(x)));
        let payload = caught.expect_err("killed on drop");
        assert!(payload.is::<GreenletExit>());
        // Resurrect and switch elsewhere.
        let me = RawGreenlet::<i32>::current();
        s.borrow_mut().push(me.parent().unwrap());
        s.borrow_mut().push(me);
        h.switch(1).unwrap()
    });
    assert_eq!(g.switch(3).unwrap(), 3);
    assert_eq!(g.parent().unwrap(), hub);
    drop(g); // the hub greenlet's result (101) came back to the drop
    let seen = seen.take();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0], main, "the dropper is the parent during the kill");
    assert!(seen[1].is_active(), "it survived the kill");
    assert_eq!(
        seen[1].parent().unwrap(),
        hub,
        "its parent is restored after the kill"
    );
    assert!(hub.is_dead());
}

/// The parent comes back too when the kill ends the greenlet.
#[test]
fn greenlet_that_dies_of_the_drop_kill_has_its_parent_back() {
    let other = RawGreenlet::new(|x: i32| x);
    let me_slot: Rc<RefCell<Option<RawGreenlet<i32>>>> = Rc::default();
    let slot = me_slot.clone();
    let main = RawGreenlet::<i32>::current();
    let m = main.clone();
    let g = RawGreenlet::with_parent(&other, move |x: i32| {
        *slot.borrow_mut() = Some(RawGreenlet::<i32>::current());
        m.switch(x).unwrap()
    });
    assert_eq!(g.switch(2).unwrap(), 2);
    drop(g);
    let me = me_slot.borrow_mut().take().unwrap();
    assert!(me.is_dead());
    assert_eq!(me.parent().unwrap(), other);
}

// ---- a timeout cancellable from inside its block (point 7) ----

/// gevent's `Timeout.cancel()` inside `with Timeout(...) as t:`: after the
/// cancel, the block blocks past the deadline and returns its value.
#[test]
fn timeout_cancelled_inside_its_block_never_fires() {
    common::in_each_mode("timeout_cancel", |_mode| {
        let log = std::sync::Mutex::new(Vec::new());
        let r = greenhub::timeout_with(Duration::from_millis(20), |t| {
            log.lock().unwrap().push("start");
            greenhub::sleep(Duration::from_millis(1));
            t.cancel();
            assert_eq!(t.deadline(), None);
            greenhub::sleep(Duration::from_millis(60)); // past the 20 ms
            log.lock().unwrap().push("past the deadline");
            7
        });
        assert_eq!(r, Ok(7));
        assert_eq!(*log.lock().unwrap(), ["start", "past the deadline"]);
        // Not cancelled: the same block is cut at its sleep.
        let r = greenhub::timeout_with(Duration::from_millis(20), |_t| {
            greenhub::sleep(Duration::from_secs(60));
            7
        });
        assert_eq!(r, Err(greenhub::Elapsed::default()));
    });
}

/// A cancelled inner frame leaves the outer one in force; an outer frame
/// cancelled from inside an inner one stops firing, and the inner one still
/// fires for itself.
#[test]
fn cancel_affects_only_its_own_frame() {
    common::in_each_mode("timeout_cancel_nested", |_mode| {
        let ms = Duration::from_millis;
        // Inner cancelled, outer fires.
        let r = greenhub::timeout(ms(30), || {
            greenhub::timeout_with(ms(10), |inner| {
                inner.cancel();
                greenhub::sleep(Duration::from_secs(60));
            })
        });
        assert!(r.is_err(), "the outer frame fires: {r:?}");
        // Outer cancelled from the inner block: nothing fires.
        let r = greenhub::timeout_with(ms(10), |outer| {
            greenhub::timeout(Duration::from_secs(60), || {
                outer.cancel();
                greenhub::sleep(ms(40));
                "inner done"
            })
        });
        assert_eq!(r, Ok(Ok("inner done")));
        // Outer cancelled from the inner block, whose own deadline fires.
        let r = greenhub::timeout_with(ms(10), |outer| {
            let inner = greenhub::timeout(ms(30), || {
                outer.cancel();
                greenhub::sleep(Duration::from_secs(60));
            });
            assert!(inner.is_err());
            greenhub::sleep(ms(20)); // the outer 10 ms have passed: no effect
            "outer done"
        });
        assert_eq!(r, Ok("outer done"));
    });
}

/// `reset` moves the deadline later (an idle timeout) or sooner, also after
/// a cancel (gevent's `cancel()` then `start()`).
#[test]
fn reset_moves_the_deadline() {
    common::in_each_mode("timeout_reset", |_mode| {
        let ms = Duration::from_millis;
        let r = greenhub::timeout_with(ms(200), |t| {
            for _ in 0..6 {
                greenhub::sleep(ms(50));
                t.reset(ms(200)); // 300 ms in all, each step well within 200
            }
            "kept alive"
        });
        assert_eq!(r, Ok("kept alive"));
        let r = greenhub::timeout_with(Duration::from_secs(60), |t| {
            t.reset(ms(5));
            greenhub::sleep(Duration::from_secs(60));
        });
        assert!(r.is_err());
        let r = greenhub::timeout_with(ms(5), |t| {
            t.cancel();
            greenhub::sleep(ms(10));
            t.reset(ms(5)); // armed again
            greenhub::sleep(Duration::from_secs(60));
        });
        assert!(r.is_err());
        let at = std::time::Instant::now() + Duration::from_secs(60);
        let r = greenhub::timeout_at_with(at, |t| {
            assert_eq!(t.deadline(), Some(at));
            t.reset_at(std::time::Instant::now());
            greenhub::sleep(Duration::from_secs(60));
        });
        assert!(r.is_err());
    });
}

/// A deadline that passed while the block computed (no blocking call, so
/// nothing was cut) can still be cancelled, as in gevent, where the timer
/// cannot fire before the greenlet yields. A cancellation that was raised
/// and swallowed by the block is not raised again after a cancel.
#[test]
fn cancel_after_the_deadline_passed() {
    common::in_each_mode("timeout_cancel_late", |_mode| {
        let ms = Duration::from_millis;
        let r = greenhub::timeout_with(ms(1), |t| {
            std::thread::sleep(ms(10)); // not a greenhub blocking call
            t.cancel();
            greenhub::sleep(ms(5));
            "not cut"
        });
        assert_eq!(r, Ok("not cut"));
        let r = greenhub::timeout_with(ms(5), |t| {
            let cut = catch_unwind(AssertUnwindSafe(|| {
                greenhub::sleep(Duration::from_secs(60))
            }));
            assert!(cut.is_err(), "the sleep was cut");
            t.cancel();
            greenhub::sleep(ms(5));
            "recovered"
        });
        assert_eq!(r, Ok("recovered"));
    });
}

/// A cancellation that is unwinding cannot be taken back: a destructor that
/// cancels the frame during the unwind does not turn `Err` into `Ok`.
#[test]
fn cancel_during_the_unwind_keeps_elapsed() {
    struct CancelOnDrop<'a>(&'a greenhub::Timeout);
    impl Drop for CancelOnDrop<'_> {
        fn drop(&mut self) {
            self.0.cancel();
        }
    }
    common::in_each_mode("timeout_cancel_unwinding", |_mode| {
        let r = greenhub::timeout_with(Duration::from_millis(5), |t| {
            let _c = CancelOnDrop(t);
            greenhub::sleep(Duration::from_secs(60));
        });
        assert!(r.is_err());
    });
}

/// A raw generator resumed inside the block sees the frame's deadline as it
/// is at the resume: cancelled, or moved.
#[test]
fn timeout_with_bounds_generators_by_its_current_deadline() {
    common::in_each_mode("timeout_with_generator", |_mode| {
        use greenhub::raw::Generator;
        let ms = Duration::from_millis;
        let mut slow: Generator<u32, ()> = Generator::new(move |co| {
            greenhub::sleep(ms(30));
            co.yield_(1);
            greenhub::sleep(Duration::from_secs(60));
            co.yield_(2);
        });
        let r = greenhub::timeout_with(ms(5), |t| {
            t.cancel();
            slow.next()
        });
        assert_eq!(r, Ok(Some(1)));
        let r = greenhub::timeout_with(Duration::from_secs(60), |t| {
            t.reset(ms(5));
            slow.next()
        });
        assert!(r.is_err());
        assert!(slow.is_complete());
    });
}

// ---- StreamServer::stop_accepting / start_accepting (point 8) ----

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use greenhub::net::TcpStream;
use greenhub::server::StreamServer;

/// Parks until `cond` holds; panics after 10 s (a liveness bound only).
fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let t = std::time::Instant::now();
    while !cond() {
        assert!(t.elapsed() < Duration::from_secs(10), "timed out: {what}");
        greenhub::sleep(Duration::from_millis(2));
    }
}

fn accepted(server: &StreamServer) -> u64 {
    server.stats().accepted.iter().sum()
}

/// Reads the handler's whole reply, under a generous liveness bound.
fn reply(mut c: TcpStream) -> String {
    let r = greenhub::timeout(Duration::from_secs(10), move || {
        let mut s = String::new();
        c.read_to_string(&mut s).map(|_| s)
    });
    r.expect("no reply within 10 s").expect("read the reply")
}

/// A server whose handler answers `served` and counts its runs.
fn counting_server(per_hub: bool, limit: Option<usize>) -> (StreamServer, Arc<AtomicUsize>) {
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let mut b = StreamServer::bind("127.0.0.1:0").unwrap().per_hub(per_hub);
    if let Some(n) = limit {
        b = b.max_connections(n);
    }
    let server = b
        .serve(move |mut conn, _| {
            r.fetch_add(1, SeqCst);
            let _ = conn.write_all(b"served");
        })
        .unwrap();
    (server, runs)
}

/// While not accepting, connections queue in the kernel (connect succeeds,
/// no handler runs); after `start_accepting` each is served. The acceptors
/// are parked in `accept` when the pause comes (a first client was served).
fn pause_then_resume(per_hub: bool, limit: Option<usize>) {
    let (server, runs) = counting_server(per_hub, limit);
    let addr = server.local_addr();
    assert_eq!(reply(TcpStream::connect(addr).unwrap()), "served");
    assert!(server.is_accepting());

    server.stop_accepting();
    server.stop_accepting(); // idempotent
    assert!(!server.is_accepting());
    let queued: Vec<TcpStream> = (0..6).map(|_| TcpStream::connect(addr).unwrap()).collect();
    // Nothing is taken while paused (the pause is in force once
    // `stop_accepting` returned, on every hub); give the acceptors every
    // chance to (wrongly) take them.
    for _ in 0..10 {
        greenhub::sleep(Duration::from_millis(5));
    }
    assert_eq!(accepted(&server), 1, "accepted while paused");
    assert_eq!(runs.load(SeqCst), 1);

    server.start_accepting();
    server.start_accepting(); // idempotent
    assert!(server.is_accepting());
    for c in queued {
        assert_eq!(reply(c), "served");
    }
    assert_eq!(accepted(&server), 7);
    assert_eq!(runs.load(SeqCst), 7);
    // Pause and resume again: the server still serves.
    server.stop_accepting();
    server.start_accepting();
    assert_eq!(reply(TcpStream::connect(addr).unwrap()), "served");
    let report = server.stop(Duration::from_secs(5));
    assert_eq!(report.killed, 0);
}

#[test]
fn stop_accepting_queues_connections_until_start_accepting() {
    common::in_each_mode("stop_accepting", |_mode| pause_then_resume(false, None));
}

#[test]
fn stop_accepting_with_per_hub_acceptors() {
    common::in_each_mode("stop_accepting_per_hub", |_mode| {
        pause_then_resume(true, None);
        // With a limit and a socket per hub, the acceptors wait for a
        // pending connection first (another path of the accept loop).
        pause_then_resume(true, Some(3));
    });
}

#[test]
fn stop_accepting_with_a_connection_limit() {
    common::in_each_mode("stop_accepting_limit", |_mode| {
        pause_then_resume(false, Some(2));
    });
}

/// After `stop`, both are no-ops; `stop` of a paused server works, and
/// resets the connections that were queued.
#[test]
fn stop_accepting_and_stop() {
    common::in_each_mode("stop_accepting_and_stop", |_mode| {
        let (server, runs) = counting_server(false, None);
        let addr = server.local_addr();
        server.stop_accepting();
        let mut queued = TcpStream::connect(addr).unwrap();
        let report = server.stop(Duration::from_secs(5));
        assert_eq!((report.drained, report.killed), (0, 0));
        assert_eq!(runs.load(SeqCst), 0);
        // The queued client was never served: EOF or a reset, never data.
        let mut buf = Vec::new();
        match greenhub::timeout(Duration::from_secs(10), || queued.read_to_end(&mut buf)) {
            Ok(Ok(0)) | Ok(Err(_)) => {}
            other => panic!("the queued client got {other:?} {buf:?}"),
        }
        server.start_accepting();
        server.stop_accepting();
        server.start_accepting();
        assert!(!server.is_accepting());
        assert!(server.is_stopped());
        assert!(TcpStream::connect(addr).is_err());
    });
}

/// `stop_accepting` and `start_accepting` from a plain thread.
#[test]
fn stop_accepting_from_a_plain_thread() {
    common::in_each_mode("stop_accepting_thread", |_mode| {
        let (server, runs) = counting_server(false, None);
        let addr = server.local_addr();
        let s2 = server.clone();
        std::thread::spawn(move || s2.stop_accepting())
            .join()
            .unwrap();
        let queued = TcpStream::connect(addr).unwrap();
        for _ in 0..10 {
            greenhub::sleep(Duration::from_millis(5));
        }
        assert_eq!(runs.load(SeqCst), 0);
        let s2 = server.clone();
        std::thread::spawn(move || s2.start_accepting())
            .join()
            .unwrap();
        assert_eq!(reply(queued), "served");
        until("the handler ran", || runs.load(SeqCst) == 1);
        server.stop(Duration::from_secs(5));
    });
}
