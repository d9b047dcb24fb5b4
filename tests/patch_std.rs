//! Monkey patching (feature `patch`): std's blocking calls, unmodified, on
//! greenlets of one hub — `thread::sleep`, `std::net::TcpStream` echo,
//! read timeouts, `connect_timeout`, `println!` — and unchanged behaviour
//! off greenlets and for fds the hooks did not create.

mod patch_common;

use patch_common::{enable, one_hub};

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

fn fl_getfl(fd: i32) -> i32 {
    // SAFETY: F_GETFL takes no argument.
    unsafe { libc::fcntl(fd, libc::F_GETFL) }
}

#[test]
fn thousand_std_sleeps_overlap_on_one_hub() {
    let start = Instant::now();
    one_hub(|| {
        let idlers: Vec<_> = (0..1000)
            .map(|_| greenhub::spawn(|| std::thread::sleep(Duration::from_millis(100))))
            .collect();
        for h in idlers {
            h.join().unwrap();
        }
    });
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(100), "{took:?}");
    assert!(
        took < Duration::from_secs(5),
        "the sleeps did not overlap: {took:?}"
    );
}

#[test]
fn std_tcp_echo_with_a_thousand_greenlets_on_one_hub() {
    const CLIENTS: usize = 1000;
    let total = one_hub(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = greenhub::spawn(move || {
            let mut echoes = Vec::with_capacity(CLIENTS);
            for _ in 0..CLIENTS {
                let (mut s, _) = listener.accept().unwrap();
                echoes.push(greenhub::spawn(move || {
                    let mut buf = [0u8; 64];
                    loop {
                        match s.read(&mut buf).unwrap() {
                            0 => return,
                            n => s.write_all(&buf[..n]).unwrap(),
                        }
                    }
                }));
            }
            // Every echo greenlet ends on its client's close, before the
            // runtime shuts down (which would kill one still waiting).
            for e in echoes {
                e.join().unwrap();
            }
        });
        let clients: Vec<_> = (0..CLIENTS)
            .map(|i| {
                greenhub::spawn(move || {
                    let mut s = TcpStream::connect(addr).unwrap();
                    let msg = format!("hello {i}");
                    s.write_all(msg.as_bytes()).unwrap();
                    let mut back = vec![0u8; msg.len()];
                    s.read_exact(&mut back).unwrap();
                    assert_eq!(back, msg.as_bytes());
                    back.len()
                })
            })
            .collect();
        let total: usize = clients.into_iter().map(|h| h.join().unwrap()).sum();
        server.join().unwrap();
        total
    });
    assert!(total > CLIENTS * 6);
}

#[test]
fn read_timeout_gives_std_error_kind_and_others_keep_running() {
    one_hub(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let ticker = greenhub::spawn(|| {
            for _ in 0..10 {
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        let mut s = TcpStream::connect(addr).unwrap();
        let (_peer, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        assert_eq!(s.read_timeout().unwrap(), Some(Duration::from_millis(300)));
        let start = Instant::now();
        let err = s.read(&mut [0u8; 8]).unwrap_err();
        // A blocking socket's SO_RCVTIMEO: EAGAIN, std's WouldBlock.
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
        assert!(start.elapsed() >= Duration::from_millis(290));
        assert!(ticker.is_finished(), "the hub was blocked during the read");
        // The program still sees a blocking socket.
        assert_eq!(fl_getfl(s.as_raw_fd()) & libc::O_NONBLOCK, 0);
        s.set_nonblocking(true).unwrap();
        assert_eq!(
            s.read(&mut [0u8; 8]).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        assert_ne!(fl_getfl(s.as_raw_fd()) & libc::O_NONBLOCK, 0);
    });
}

#[test]
fn connect_timeout_works_and_refusal_is_reported() {
    one_hub(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        s.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        peer.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
        drop(listener);
        let err = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    });
}

#[test]
fn println_from_many_greenlets_leaves_stdin_alone() {
    let stdin_before = fl_getfl(0);
    let stdout_before = fl_getfl(1);
    one_hub(|| {
        let hs: Vec<_> = (0..200)
            .map(|i| {
                greenhub::spawn(move || {
                    println!("greenlet {i} says hello");
                    std::thread::sleep(Duration::from_millis(1));
                    eprintln!("greenlet {i} says goodbye");
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
    assert_eq!(fl_getfl(0), stdin_before);
    assert_eq!(fl_getfl(1), stdout_before);
}

#[test]
fn off_greenlets_behaviour_is_unchanged() {
    enable();
    // A plain thread: real sleeps, real blocking sockets (not tracked).
    let start = Instant::now();
    std::thread::sleep(Duration::from_millis(50));
    assert!(start.elapsed() >= Duration::from_millis(50));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.write_all(b"plain").unwrap();
    });
    let mut c = TcpStream::connect(addr).unwrap();
    let mut buf = [0u8; 5];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"plain");
    t.join().unwrap();
    assert_eq!(fl_getfl(c.as_raw_fd()) & libc::O_NONBLOCK, 0);
    assert!(!greenhub::patch::is_tracked(c.as_raw_fd()));
    // A socket made on a greenlet, then used by a plain thread, still blocks
    // that thread as a blocking socket would (up to its timeout).
    let rt = greenhub::Builder::new().single_threaded().build().unwrap();
    let (s, _peer) = rt.block_on(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let peer = l.accept().unwrap();
        (s, peer)
    });
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let start = Instant::now();
    let err = (&s).read(&mut [0u8; 4]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    assert!(start.elapsed() >= Duration::from_millis(90));
}

#[test]
fn greenhub_sockets_fd_waits_and_child_processes_still_work() {
    one_hub(|| {
        let listener = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = greenhub::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf).unwrap();
        });
        let mut c = greenhub::net::TcpStream::connect(addr).unwrap();
        c.write_all(b"ping").unwrap();
        let ready =
            greenhub::io::select(&[c.as_raw_fd()], &[], Some(Duration::from_secs(5))).unwrap();
        assert_eq!(ready.readable, [c.as_raw_fd()]);
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
        server.join().unwrap();
        // std's Command from a greenlet (dup2/close in the child).
        let out = std::process::Command::new("echo")
            .arg("hi")
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"hi\n");
        let out = greenhub::process::Command::new("echo")
            .arg("ho")
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"ho\n");
    });
}

#[test]
fn c_level_sleeps_poll_and_select_park_only_the_greenlet() {
    const EACH: usize = 20;
    let start = Instant::now();
    one_hub(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut hs = Vec::new();
        for _ in 0..EACH {
            hs.push(greenhub::spawn(|| {
                // SAFETY: usleep takes no pointer.
                let r = unsafe { libc::usleep(200_000) };
                assert_eq!(r, 0)
            }));
            hs.push(greenhub::spawn(|| {
                // SAFETY: no pollfds: a null array of length 0.
                let r = unsafe { libc::poll(std::ptr::null_mut(), 0, 200) };
                assert_eq!(r, 0)
            }));
            hs.push(greenhub::spawn(|| {
                let ts = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 200_000_000,
                };
                // SAFETY: a valid timespec; no remainder wanted (null).
                let r = unsafe {
                    libc::clock_nanosleep(libc::CLOCK_MONOTONIC, 0, &ts, std::ptr::null_mut())
                };
                assert_eq!(r, 0);
            }));
            hs.push(greenhub::spawn(move || {
                let s = TcpStream::connect(addr).unwrap();
                let fd = s.as_raw_fd();
                let mut set = std::mem::MaybeUninit::<libc::fd_set>::zeroed();
                let mut tv = libc::timeval {
                    tv_sec: 0,
                    tv_usec: 200_000,
                };
                // SAFETY: `set` is a zeroed (empty) fd_set, `fd` is below
                // FD_SETSIZE, `tv` is a valid timeval.
                let n = unsafe {
                    libc::FD_SET(fd, set.as_mut_ptr());
                    libc::select(
                        fd + 1,
                        set.as_mut_ptr(),
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                        &mut tv,
                    )
                };
                assert_eq!(n, 0, "nothing to read: a timeout");
                // SAFETY: as above.
                let isset = unsafe { libc::FD_ISSET(fd, set.as_ptr()) };
                assert!(!isset);
            }));
        }
        for h in hs {
            h.join().unwrap();
        }
    });
    // One after another: 4 × EACH × 200 ms = 16 s.
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn std_sleeps_and_echo_in_multi_hub_mode() {
    enable();
    let start = Instant::now();
    let total = greenhub::Builder::new()
        .hubs(2)
        .build()
        .unwrap()
        .block_on(|| {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let server = greenhub::spawn(move || {
                for _ in 0..200 {
                    let (mut s, _) = listener.accept().unwrap();
                    greenhub::spawn(move || {
                        let mut buf = [0u8; 16];
                        let n = s.read(&mut buf).unwrap();
                        std::thread::sleep(Duration::from_millis(100));
                        s.write_all(&buf[..n]).unwrap();
                    });
                }
            });
            let clients: Vec<_> = (0..200)
                .map(|_| {
                    greenhub::spawn(move || {
                        let mut s = TcpStream::connect(addr).unwrap();
                        s.write_all(b"hi").unwrap();
                        let mut back = [0u8; 2];
                        s.read_exact(&mut back).unwrap();
                        back.len()
                    })
                })
                .collect();
            let total: usize = clients.into_iter().map(|h| h.join().unwrap()).sum();
            server.join().unwrap();
            total
        });
    assert_eq!(total, 400);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}

/// `Builder::monkey_patch`: the self-check runs when the runtime starts,
/// and the hooks are in effect for its greenlets.
#[test]
fn builder_switch_enables_and_checks_at_start() {
    // SAFETY: these greenlets hold no thread-affine state across a sleep.
    let rt = unsafe { greenhub::Builder::new().single_threaded().monkey_patch() }
        .build()
        .expect("self-check passes");
    assert!(greenhub::patch::is_enabled());
    let start = Instant::now();
    rt.block_on(|| {
        let idlers: Vec<_> = (0..100)
            .map(|_| greenhub::spawn(|| std::thread::sleep(Duration::from_millis(100))))
            .collect();
        for h in idlers {
            h.join().unwrap();
        }
    });
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}
