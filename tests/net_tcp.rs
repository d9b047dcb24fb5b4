//! TCP over real loopback sockets, in single-threaded and M:N mode: an echo
//! server with 1,000 concurrent clients (every byte checked), timeouts with
//! std's error kinds, resets and closed listeners, shutdown waking a blocked
//! peer half, and plain-thread use.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::in_each_mode;
use greenhub::net::{TcpListener, TcpStream};

/// A payload unique to client `i`, long enough to need several reads.
fn payload(i: usize) -> Vec<u8> {
    (0..(1000 + i % 7 * 1000))
        .map(|k| (k * 31 + i * 7) as u8)
        .collect()
}

fn echo_server(listener: TcpListener, conns: usize) -> greenhub::JoinHandle<usize> {
    greenhub::spawn(move || {
        let mut handlers = Vec::new();
        for _ in 0..conns {
            let (mut s, _) = listener.accept().unwrap();
            handlers.push(greenhub::spawn(move || {
                let mut buf = [0u8; 1500];
                let mut total = 0;
                loop {
                    let n = s.read(&mut buf).unwrap();
                    if n == 0 {
                        return total;
                    }
                    s.write_all(&buf[..n]).unwrap();
                    total += n;
                }
            }));
        }
        handlers.into_iter().map(|h| h.join().unwrap()).sum()
    })
}

#[test]
fn echo_1000_concurrent_clients() {
    in_each_mode("echo 1000", |_| {
        const N: usize = 1000;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = echo_server(listener, N);
        let clients: Vec<_> = (0..N)
            .map(|i| {
                greenhub::spawn(move || {
                    let mut s = TcpStream::connect(addr).unwrap();
                    let data = payload(i);
                    let reader = s.try_clone().unwrap();
                    // Write from one greenlet, read from another.
                    let len = data.len();
                    let rd = greenhub::spawn(move || {
                        let mut back = vec![0u8; len];
                        (&reader).read_exact(&mut back).unwrap();
                        back
                    });
                    s.write_all(&data).unwrap();
                    let back = rd.join().unwrap();
                    assert_eq!(back, data, "client {i} got other bytes back");
                    s.shutdown(Shutdown::Write).unwrap();
                    let mut rest = Vec::new();
                    s.read_to_end(&mut rest).unwrap();
                    assert!(rest.is_empty());
                    len
                })
            })
            .collect();
        let sent: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
        let echoed = server.join().unwrap();
        assert_eq!(sent, echoed);
        assert_eq!(sent, (0..N).map(|i| payload(i).len()).sum::<usize>());
    });
}

#[test]
fn read_timeout_gives_would_block_and_write_timeout_too() {
    in_each_mode("timeouts", |_| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (s, _) = listener.accept().unwrap();
        c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let t = Instant::now();
        let err = c.read(&mut [0; 16]).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
        assert!(t.elapsed() >= Duration::from_millis(50));
        assert_eq!(
            c.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(),
            std::io::ErrorKind::InvalidInput
        );
        // The peer never reads: writes fill both buffers, then time out.
        c.set_write_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let chunk = vec![7u8; 64 * 1024];
        let mut written = 0usize;
        let err = loop {
            match c.write(&chunk) {
                Ok(n) => written += n,
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
        assert!(written > 0);
        drop(s);
    });
}

/// A listener with a zero backlog that never accepts: after it queues one
/// connection, the kernel drops further SYNs, so connects hang.
fn full_listener() -> (std::os::fd::OwnedFd, SocketAddr, Vec<TcpStream>) {
    use std::os::fd::{AsRawFd, OwnedFd};
    let std = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = std.local_addr().unwrap();
    // SAFETY: listen takes no pointers; the fd is our own open socket.
    let rc = unsafe { libc::listen(std.as_raw_fd(), 0) };
    assert_eq!(rc, 0);
    let fd = OwnedFd::from(std);
    let mut fillers = Vec::new();
    for _ in 0..4 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => fillers.push(s),
            Err(_) => break,
        }
    }
    (fd, addr, fillers)
}

#[test]
fn connect_timeout_times_out() {
    in_each_mode("connect_timeout", |_| {
        let (_fd, addr, _fillers) = full_listener();
        let t = Instant::now();
        let err = TcpStream::connect_timeout(&addr, Duration::from_millis(100)).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
        assert!(t.elapsed() >= Duration::from_millis(100));
        assert!(t.elapsed() < Duration::from_secs(5));
    });
}

#[test]
fn closed_listener_refuses_and_reset_is_an_error() {
    in_each_mode("reset", |_| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = TcpStream::connect(addr).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);

        // A peer that closes with unread data sends a reset: the blocked
        // reader gets an error (or EOF), never a hang.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut c = TcpStream::connect(addr).unwrap();
        let (s, _) = listener.accept().unwrap();
        let reader = greenhub::spawn(move || {
            let mut buf = [0; 8];
            c.write_all(b"unread").unwrap();
            c.read(&mut buf)
        });
        greenhub::sleep(Duration::from_millis(20));
        // SO_LINGER 0 closes with RST.
        let lin = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: a valid socket and a valid linger struct.
        unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&s),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&raw const lin).cast(),
                std::mem::size_of::<libc::linger>() as u32,
            )
        };
        drop(s);
        match reader.join().unwrap() {
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
            Ok(n) => assert_eq!(n, 0),
        }
    });
}

#[test]
fn shutdown_wakes_a_reader_blocked_on_a_clone() {
    in_each_mode("shutdown wakes", |_| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_s, _) = listener.accept().unwrap();
        let mut r = c.try_clone().unwrap();
        let reader = greenhub::spawn(move || r.read(&mut [0; 8]).unwrap());
        greenhub::sleep(Duration::from_millis(20));
        assert!(!reader.is_finished());
        c.shutdown(Shutdown::Both).unwrap();
        assert_eq!(reader.join().unwrap(), 0);
    });
}

#[test]
fn kill_and_timeout_interrupt_a_blocked_read() {
    in_each_mode("kill read", |_| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (s, _) = listener.accept().unwrap();
        let s2 = s.try_clone().unwrap();
        let h = greenhub::spawn(move || {
            let mut s = s2;
            let r = s.read(&mut [0; 8]);
            unreachable!("killed while reading: {r:?}");
        });
        greenhub::sleep(Duration::from_millis(10));
        h.kill();
        assert!(h.join().unwrap_err().is_killed());
        let r = greenhub::timeout(Duration::from_millis(30), || c.read(&mut [0; 8]));
        assert!(r.is_err(), "the timeout frame interrupts the read: {r:?}");
        // The socket is still usable afterwards.
        c.set_nonblocking(true).unwrap();
        assert_eq!(
            c.read(&mut [0; 8]).unwrap_err().kind(),
            std::io::ErrorKind::WouldBlock
        );
        drop(s);
    });
}

#[test]
fn accepting_from_several_greenlets_and_hubs() {
    in_each_mode("shared listener", |_| {
        let listener = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let acceptors: Vec<_> = (0..4)
            .map(|_| {
                let l = listener.clone();
                let n = accepted.clone();
                greenhub::spawn(move || {
                    for _ in 0..25 {
                        let (mut s, _) = l.accept().unwrap();
                        s.write_all(b"k").unwrap();
                        n.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        let clients: Vec<_> = (0..100)
            .map(|_| {
                greenhub::spawn(move || {
                    let mut s = TcpStream::connect(addr).unwrap();
                    let mut b = [0; 1];
                    s.read_exact(&mut b).unwrap();
                    b[0]
                })
            })
            .collect();
        for c in clients {
            assert_eq!(c.join().unwrap(), b'k');
        }
        for a in acceptors {
            a.join().unwrap();
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 100);
    });
}

#[test]
fn works_on_plain_threads() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0; 4];
        s.read_exact(&mut buf).unwrap();
        s.write_all(&buf).unwrap();
    });
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(b"abcd").unwrap();
    let mut back = [0; 4];
    c.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"abcd");
    t.join().unwrap();
    c.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let mut rest = Vec::new();
    // The peer closed: EOF, not a timeout.
    c.read_to_end(&mut rest).unwrap();
}

#[test]
fn a_socket_from_plain_code_moves_into_a_greenlet() {
    // Created off the runtime, used on it; then the runtime ends and a
    // second one uses it again (its registration moves).
    let listener = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
    let addr = listener.local_addr().unwrap();
    for round in 0..2 {
        let l = listener.clone();
        let rt = greenhub::Builder::new().single_threaded().build().unwrap();
        rt.block_on(move || {
            let acc = greenhub::spawn(move || l.accept().map(|_| ()));
            greenhub::sleep(Duration::from_millis(10));
            let _c = TcpStream::connect(addr).unwrap();
            acc.join().unwrap().unwrap();
        });
        drop(rt);
        let _ = round;
    }
}

#[test]
fn from_std_and_raw_fd_round_trips() {
    use std::os::fd::{FromRawFd, IntoRawFd};
    in_each_mode("conversions", |_| {
        let std_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = std_l.local_addr().unwrap();
        let l = TcpListener::from(std_l);
        let c = TcpStream::connect(addr).unwrap();
        let (s, _) = l.accept().unwrap();
        let fd = s.into_raw_fd();
        // SAFETY: we own `fd`.
        let mut s = unsafe { TcpStream::from_raw_fd(fd) };
        (&c).write_all(b"z").unwrap();
        let mut b = [0; 1];
        s.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"z");
    });
}
