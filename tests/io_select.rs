//! Waits on raw fds: `wait_readable`, `wait_writable` and `select`, on
//! greenlets (parking) and plain threads, including gevent's select example.

mod common;

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::in_each_mode;

/// gevent's tutorial: two greenlets each blocked in a 2 s select while a third
/// sleeps 1 s all finish in about 2 s, not 5.
#[test]
fn selects_and_a_sleep_overlap() {
    in_each_mode("select overlap", |_| {
        let start = Instant::now();
        let pairs: Vec<_> = (0..2).map(|_| UnixStream::pair().unwrap()).collect();
        let mut handles = Vec::new();
        for (_, b) in &pairs {
            let fd = b.as_raw_fd();
            handles.push(greenhub::spawn(move || {
                let r = greenhub::io::select(&[fd], &[], Some(Duration::from_secs(2))).unwrap();
                assert!(r.is_empty(), "nothing was written");
            }));
        }
        handles.push(greenhub::spawn(|| greenhub::sleep(Duration::from_secs(1))));
        for h in handles {
            h.join().unwrap();
        }
        let took = start.elapsed();
        assert!(took >= Duration::from_secs(2), "{took:?}");
        assert!(
            took < Duration::from_millis(3500),
            "{took:?}: the waits did not overlap"
        );
        drop(pairs);
    });
}

#[test]
fn select_reports_what_is_ready() {
    in_each_mode("select ready", |_| {
        let (mut a, b) = UnixStream::pair().unwrap();
        let (c, d) = UnixStream::pair().unwrap();
        let (bf, df, cf) = (b.as_raw_fd(), d.as_raw_fd(), c.as_raw_fd());
        // Nothing readable; `c` is writable.
        let r = greenhub::io::select(&[bf, df], &[cf], Some(Duration::from_millis(50))).unwrap();
        assert!(r.readable.is_empty());
        assert_eq!(r.writable, [cf]);
        // A writer greenlet makes `b` readable while we wait.
        let w = greenhub::spawn(move || {
            greenhub::sleep(Duration::from_millis(20));
            a.write_all(b"x").unwrap();
            a
        });
        let r = greenhub::io::select(&[bf, df], &[], None).unwrap();
        assert_eq!(r.readable, [bf]);
        let _a = w.join().unwrap();
        drop((c, d, b));
    });
}

#[test]
fn wait_readable_times_out_and_wakes() {
    in_each_mode("wait_readable", |_| {
        let (mut a, b) = UnixStream::pair().unwrap();
        let fd = b.as_raw_fd();
        let t = Instant::now();
        let err = greenhub::io::wait_readable(fd, Some(Duration::from_millis(30))).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert!(t.elapsed() >= Duration::from_millis(30));
        let waiter = greenhub::spawn(move || greenhub::io::wait_readable(fd, None));
        greenhub::sleep(Duration::from_millis(10));
        assert!(!waiter.is_finished());
        a.write_all(b"!").unwrap();
        waiter.join().unwrap().unwrap();
        greenhub::io::wait_writable(a.as_raw_fd(), Some(Duration::from_secs(1))).unwrap();
        drop(b);
    });
}

#[test]
fn a_greenhub_socket_fd_can_be_waited_on_too() {
    // The fd is also registered by the socket itself: the wait must not
    // collide with that registration.
    in_each_mode("socket fd wait", |_| {
        use std::io::Read;
        let (mut a, mut b) = greenhub::net::unix::UnixStream::pair().unwrap();
        let bf = b.as_raw_fd();
        let reader = greenhub::spawn(move || {
            let mut buf = [0; 2];
            b.read_exact(&mut buf).unwrap(); // registers b with the hub
            greenhub::io::wait_readable(bf, Some(Duration::from_secs(5))).unwrap();
            b.read_exact(&mut buf).unwrap();
            buf
        });
        a.write_all(b"12").unwrap();
        greenhub::sleep(Duration::from_millis(20));
        a.write_all(b"34").unwrap();
        assert_eq!(&reader.join().unwrap(), b"34");
    });
}

#[test]
fn bad_fds_and_empty_sets_are_errors() {
    in_each_mode("select errors", |_| {
        let err = greenhub::io::wait_readable(-1, Some(Duration::from_millis(10))).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF));
        let err = greenhub::io::select(&[], &[], None).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        let t = Instant::now();
        assert!(
            greenhub::io::select(&[], &[], Some(Duration::from_millis(20)))
                .unwrap()
                .is_empty()
        );
        assert!(t.elapsed() >= Duration::from_millis(20));
    });
}

#[test]
fn kill_interrupts_a_select() {
    in_each_mode("kill select", |_| {
        let (_a, b) = UnixStream::pair().unwrap();
        let fd = b.as_raw_fd();
        let h = greenhub::spawn(move || greenhub::io::select(&[fd], &[], None));
        greenhub::sleep(Duration::from_millis(10));
        h.kill();
        assert!(h.join().unwrap_err().is_killed());
        // The fd is not left registered: a new wait works.
        let r = greenhub::io::select(&[fd], &[], Some(Duration::from_millis(10))).unwrap();
        assert!(r.is_empty());
        drop(b);
    });
}

#[test]
fn waits_work_on_plain_threads() {
    let (mut a, b) = UnixStream::pair().unwrap();
    let fd = b.as_raw_fd();
    let t =
        std::thread::spawn(move || greenhub::io::select(&[fd], &[], Some(Duration::from_secs(5))));
    std::thread::sleep(Duration::from_millis(20));
    a.write_all(b"z").unwrap();
    assert_eq!(t.join().unwrap().unwrap().readable, [fd]);
    let err =
        greenhub::io::wait_readable(a.as_raw_fd(), Some(Duration::from_millis(10))).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    drop(b);
}
