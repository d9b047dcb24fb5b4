//! Monkey patching (feature `patch`): a kill or a `greenhub::timeout` that
//! reaches a greenlet blocked in a hooked call becomes an error return (the
//! process does not abort), and is not lost: the greenlet's next greenhub
//! blocking point raises it. Also the `fcntl`/`dup`/`close` bookkeeping.

mod patch_common;

use patch_common::one_hub;

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::{Duration, Instant};

#[test]
fn kill_ends_a_std_sleep_and_is_raised_at_the_next_greenhub_point() {
    let after = Arc::new(AtomicBool::new(false));
    let seen = after.clone();
    let start = Instant::now();
    let outcome = one_hub(move || {
        let h = greenhub::spawn(move || {
            std::thread::sleep(Duration::from_secs(60)); // ends early
            greenhub::sleep(Duration::from_millis(1)); // raises the kill
            seen.store(true, SeqCst);
        });
        greenhub::sleep(Duration::from_millis(50));
        h.kill();
        h.join()
    });
    assert!(outcome.unwrap_err().is_killed());
    assert!(!after.load(SeqCst));
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn kill_during_a_std_read_is_an_error_return() {
    let outcome = one_hub(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let h = greenhub::spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            let err = s.read(&mut [0u8; 4]).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::ECANCELED));
            greenhub::yield_now(); // raises the kill
            unreachable!("the kill was lost");
        });
        let (_peer, _) = listener.accept().unwrap();
        greenhub::sleep(Duration::from_millis(50));
        h.kill();
        h.join()
    });
    assert!(outcome.unwrap_err().is_killed());
}

#[test]
fn greenhub_timeout_around_a_std_read_gives_etimedout() {
    one_hub(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut s = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_peer, _) = listener.accept().unwrap();
        let start = Instant::now();
        let r = greenhub::timeout(Duration::from_millis(100), || {
            let e = s.read(&mut [0u8; 4]).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ETIMEDOUT));
            assert_eq!(e.kind(), ErrorKind::TimedOut);
            greenhub::sleep(Duration::from_secs(60)); // raises the timeout
        });
        assert!(r.is_err());
        assert!(start.elapsed() < Duration::from_secs(5));
    });
}

#[test]
fn dup_fcntl_and_close_keep_the_programs_view() {
    one_hub(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let s = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_peer, _) = listener.accept().unwrap();
        assert!(greenhub::patch::is_tracked(s.as_raw_fd()));
        let copy = s.try_clone().unwrap(); // F_DUPFD_CLOEXEC
        let fd = copy.as_raw_fd();
        assert!(greenhub::patch::is_tracked(fd));
        let getfl = |fd| {
            // SAFETY: F_GETFL takes no argument.
            unsafe { libc::fcntl(fd, libc::F_GETFL) }
        };
        assert_eq!(getfl(copy.as_raw_fd()) & libc::O_NONBLOCK, 0);
        // O_NONBLOCK is per description: the dup sees it too.
        s.set_nonblocking(true).unwrap();
        assert_ne!(getfl(copy.as_raw_fd()) & libc::O_NONBLOCK, 0);
        assert_eq!(
            (&copy).read(&mut [0u8; 1]).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        drop(copy);
        // Closed: untracked (unless another test's socket took the number).
        assert!(!greenhub::patch::is_tracked(fd) || fd_is_open(fd));
    });
}

fn fd_is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD takes no argument.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

#[test]
fn write_timeout_ends_a_blocked_write_with_std_error_kind() {
    one_hub(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut s = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_peer, _) = listener.accept().unwrap(); // never reads
        s.set_write_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let chunk = vec![7u8; 64 * 1024];
        let start = Instant::now();
        let err = loop {
            if let Err(e) = s.write(&chunk) {
                break e;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the buffers never filled"
            );
        };
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
        assert!(start.elapsed() >= Duration::from_millis(190));
    });
}

#[test]
fn shutdown_with_greenlets_blocked_in_hooked_calls_does_not_hang_or_abort() {
    let start = Instant::now();
    one_hub(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        // Still blocked when the main greenlet returns: the shutdown kills
        // them, and each sees an error return.
        greenhub::spawn(move || {
            let err = listener.accept().unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::ECANCELED));
        });
        greenhub::spawn(|| std::thread::sleep(Duration::from_secs(60)));
        greenhub::sleep(Duration::from_millis(20));
    });
    assert!(start.elapsed() < Duration::from_secs(5));
}

/// Issue 17, point 6: a killed greenlet running the usual worker loop (a
/// blocking read; on error `thread::sleep(1 s)` and reconnect), which never
/// reaches a greenhub blocking point, is abandoned after its grace: `join`
/// returns `Killed` (with the kill's reason) within seconds, the loop does
/// not spin on, and the hub keeps serving its other greenlets meanwhile.
#[test]
fn killed_retry_loop_in_unmodified_code_is_abandoned_and_join_returns() {
    let iterations = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let its = iterations.clone();
    let start = Instant::now();
    let (outcome, ticks) = one_hub(move || {
        // A server that accepts and never answers: every read blocks.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = greenhub::spawn(move || {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept() {
                held.push(s);
            }
        });
        let worker = greenhub::greenlet::Builder::new()
            .name("worker".into())
            .spawn(move || {
                loop {
                    its.fetch_add(1, SeqCst);
                    match TcpStream::connect(addr) {
                        Ok(mut s) => {
                            if s.read(&mut [0u8; 16]).is_err() {
                                std::thread::sleep(Duration::from_secs(1));
                            }
                        }
                        Err(_) => std::thread::sleep(Duration::from_secs(1)),
                    }
                }
            })
            .unwrap();
        let ticks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let t2 = ticks.clone();
        let ticker = greenhub::spawn(move || {
            for _ in 0..50 {
                greenhub::sleep(Duration::from_millis(10));
                t2.fetch_add(1, SeqCst);
            }
        });
        greenhub::sleep(Duration::from_millis(100));
        worker.kill_with("shutting down");
        let outcome = worker.join();
        ticker.join().unwrap();
        acceptor.kill();
        let _ = acceptor.join();
        (outcome, ticks.load(SeqCst))
    });
    let err = outcome.unwrap_err();
    assert!(err.is_killed(), "{err}");
    assert_eq!(
        err.kill_reason().and_then(|r| r.downcast_ref::<&str>()),
        Some(&"shutting down")
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    // The hub was never frozen: the ticker ran all its 50 ticks.
    assert_eq!(ticks, 50);
    // Abandoned, not spinning: the loop does not run on after `join`, and
    // it ran a bounded number of times (the grace is 64 failing calls; each
    // iteration fails at least one).
    let n = iterations.load(SeqCst);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(iterations.load(SeqCst), n, "the abandoned loop still runs");
    assert!(n <= 2 + 64, "{n} iterations");
}

/// The grace lets code that handles the error unwind normally: a killed
/// greenlet whose loop reaches a greenhub blocking point after a failed
/// hooked call unwinds there, destructors and all, and is not abandoned.
#[test]
fn killed_loop_that_reaches_a_greenhub_point_unwinds_normally() {
    struct Flag(Arc<AtomicBool>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.store(true, SeqCst);
        }
    }
    let dropped = Arc::new(AtomicBool::new(false));
    let d2 = dropped.clone();
    let outcome = one_hub(move || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let h = greenhub::spawn(move || {
            let _flag = Flag(d2);
            loop {
                let mut s = TcpStream::connect(addr).unwrap();
                let _ = s.read(&mut [0u8; 4]); // ECANCELED once killed
                greenhub::sleep(Duration::from_millis(1)); // raises the kill
            }
        });
        let (_peer, _) = listener.accept().unwrap();
        greenhub::sleep(Duration::from_millis(50));
        h.kill();
        h.join()
    });
    assert!(outcome.unwrap_err().is_killed());
    assert!(
        dropped.load(SeqCst),
        "the destructor ran: unwound, not abandoned"
    );
}
