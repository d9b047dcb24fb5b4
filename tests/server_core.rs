//! `greenhub::server`: StreamServer and DatagramServer in single-threaded,
//! M:N and pinned mode: many clients on a line protocol, the connection
//! limit, draining and killing on stop, contained panics, accepting on
//! every hub, recovery from EMFILE, UDP echo, serving from a plain thread.

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{is_child, run_child, with_deadline};
use greenhub::Builder;
use greenhub::net::{TcpListener, TcpStream, UdpSocket};
use greenhub::server::{DatagramServer, StreamServer};

/// Runs `body(mode)` as the main greenlet of a runtime of each mode.
fn each_mode(what: &'static str, body: fn(&'static str)) {
    with_deadline(what, 120, move || {
        for (mode, builder) in common::mode_builders() {
            builder.build().unwrap().block_on(move || body(mode));
        }
    });
}

/// Waits (parking) until `cond` holds; panics after 10 s.
fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < Duration::from_secs(10), "timed out: {what}");
        greenhub::sleep(Duration::from_millis(2));
    }
}

/// The line protocol: each line `body\n` is answered by `len:BODY\n`.
fn line_handler(conn: TcpStream, _peer: SocketAddr) {
    let mut lines = BufReader::new(&conn);
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let body = line.trim_end_matches('\n');
        let reply = format!("{}:{}\n", body.len(), body.to_uppercase());
        if (&conn).write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

fn line_client(addr: SocketAddr, i: usize) {
    let conn = TcpStream::connect(addr).unwrap();
    let mut lines = BufReader::new(&conn);
    for k in 0..3 {
        let body = format!("client {i} says hello {k}");
        (&conn).write_all(format!("{body}\n").as_bytes()).unwrap();
        let mut reply = String::new();
        lines.read_line(&mut reply).unwrap();
        let want = format!("{}:{}\n", body.len(), body.to_uppercase());
        assert_eq!(reply.as_bytes(), want.as_bytes());
    }
}

#[test]
fn two_hundred_clients_line_protocol() {
    each_mode("two_hundred_clients_line_protocol", |mode| {
        for per_hub in [false, true] {
            let server = StreamServer::bind("127.0.0.1:0")
                .unwrap()
                .per_hub(per_hub)
                .serve(line_handler)
                .unwrap();
            let addr = server.local_addr();
            let clients: Vec<_> = (0..200)
                .map(|i| greenhub::spawn(move || line_client(addr, i)))
                .collect();
            for c in clients {
                c.join().unwrap();
            }
            until("handlers finish", || server.connections() == 0);
            let stats = server.stats();
            assert_eq!(stats.accepted.iter().sum::<u64>(), 200, "{mode} {stats:?}");
            assert_eq!(stats.returned, 200, "{mode} {stats:?}");
            let expect_acceptors = if per_hub && mode != "single" { 2 } else { 1 };
            assert_eq!(stats.accepted.len(), expect_acceptors, "{mode}");
            let report = server.stop(Duration::from_secs(5));
            assert_eq!((report.drained, report.killed), (0, 0), "{mode}");
        }
    });
}

#[test]
fn connection_limit_stops_accepting() {
    each_mode("connection_limit_stops_accepting", |mode| {
        for per_hub in [false, true] {
            let running = Arc::new(AtomicUsize::new(0));
            let peak = Arc::new(AtomicUsize::new(0));
            let (r, p) = (running.clone(), peak.clone());
            let server = StreamServer::bind("127.0.0.1:0")
                .unwrap()
                .max_connections(2)
                .per_hub(per_hub)
                .serve(move |mut conn, _| {
                    let now = r.fetch_add(1, SeqCst) + 1;
                    p.fetch_max(now, SeqCst);
                    let _ = conn.write_all(b"hi");
                    let mut buf = [0; 16];
                    while let Ok(1..) = conn.read(&mut buf) {}
                    r.fetch_sub(1, SeqCst);
                })
                .unwrap();
            let addr = server.local_addr();
            let served = |c: &mut TcpStream| {
                let mut hi = [0; 2];
                c.read_exact(&mut hi).map(|()| hi)
            };
            let mut c1 = TcpStream::connect(addr).unwrap();
            let mut c2 = TcpStream::connect(addr).unwrap();
            assert_eq!(&served(&mut c1).unwrap(), b"hi");
            assert_eq!(&served(&mut c2).unwrap(), b"hi");
            // The third connects (kernel backlog) but is not served.
            let mut c3 = TcpStream::connect(addr).unwrap();
            c3.set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            let err = served(&mut c3).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock, "{mode}");
            assert_eq!(server.connections(), 2, "{mode}");
            assert_eq!(
                server.stats().accepted.iter().sum::<u64>(),
                2,
                "{mode}: accepted a third"
            );
            // One of the first two leaves: the third is served.
            drop(c1);
            c3.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            assert_eq!(&served(&mut c3).unwrap(), b"hi", "{mode} per_hub={per_hub}");
            drop((c2, c3));
            until("handlers finish", || server.connections() == 0);
            assert!(peak.load(SeqCst) <= 2, "{mode}: peak {}", peak.load(SeqCst));
            assert_eq!(peak.load(SeqCst), 2);
            server.stop(Duration::from_secs(5));
        }
    });
}

#[test]
fn stop_drains_then_kills_then_refuses() {
    each_mode("stop_drains_then_kills_then_refuses", |mode| {
        let server = StreamServer::bind("127.0.0.1:0")
            .unwrap()
            .per_hub(true)
            .serve(|conn, _| {
                let mut line = String::new();
                if BufReader::new(&conn).read_line(&mut line).is_err() {
                    return;
                }
                let ms: u64 = line.trim().parse().unwrap();
                greenhub::sleep(Duration::from_millis(ms));
                let _ = (&conn).write_all(b"done\n");
            })
            .unwrap();
        let addr = server.local_addr();
        let client = |ms: u64| {
            greenhub::spawn(move || {
                let mut c = TcpStream::connect(addr).unwrap();
                c.write_all(format!("{ms}\n").as_bytes()).unwrap();
                let mut reply = Vec::new();
                let _ = c.read_to_end(&mut reply); // EOF or a reset
                reply
            })
        };
        let quick: Vec<_> = (0..3).map(|_| client(100)).collect();
        let stuck: Vec<_> = (0..2).map(|_| client(60_000)).collect();
        until("5 handlers run", || server.connections() == 5);
        let t = Instant::now();
        let report = server.stop(Duration::from_secs(3));
        assert!(t.elapsed() < Duration::from_secs(30));
        assert_eq!((report.drained, report.killed), (3, 2), "{mode}");
        assert_eq!(server.connections(), 0);
        assert!(server.is_stopped());
        for q in quick {
            assert_eq!(q.join().unwrap(), b"done\n", "{mode}");
        }
        for s in stuck {
            assert_eq!(s.join().unwrap(), b"", "{mode}");
        }
        assert!(TcpStream::connect(addr).is_err(), "{mode}: still accepting");
        // Later calls return the same report; wait returns at once.
        assert_eq!(server.stop(Duration::ZERO), report);
        server.wait();
        let stats = server.stats();
        assert_eq!((stats.returned, stats.killed), (3, 2), "{mode}");
    });
}

#[test]
fn stop_from_another_greenlet_ends_wait() {
    each_mode("stop_from_another_greenlet_ends_wait", |_mode| {
        let server = StreamServer::bind("127.0.0.1:0")
            .unwrap()
            .serve(line_handler)
            .unwrap();
        let stopper = server.clone();
        let waiter = {
            let s = server.clone();
            greenhub::spawn(move || {
                s.wait();
                s.is_stopped()
            })
        };
        greenhub::spawn(move || {
            greenhub::sleep(Duration::from_millis(20));
            stopper.stop(Duration::from_secs(1))
        });
        assert!(waiter.join().unwrap());
        server.wait();
    });
}

#[test]
fn panicking_handler_does_not_stop_server() {
    each_mode("panicking_handler_does_not_stop_server", |mode| {
        let server = StreamServer::bind("127.0.0.1:0")
            .unwrap()
            .serve(|mut conn, _| {
                let mut b = [0; 1];
                conn.read_exact(&mut b).unwrap();
                if b[0] == b'!' {
                    panic!("a handler panics (expected by the test)");
                }
                conn.write_all(&[b[0] + 1]).unwrap();
            })
            .unwrap();
        let addr = server.local_addr();
        for _ in 0..3 {
            let mut c = TcpStream::connect(addr).unwrap();
            c.write_all(b"!").unwrap();
            let mut rest = Vec::new();
            let _ = c.read_to_end(&mut rest);
            assert!(rest.is_empty());
        }
        until("panics counted", || server.stats().panicked == 3);
        for i in 0..5u8 {
            let mut c = TcpStream::connect(addr).unwrap();
            c.write_all(&[i]).unwrap();
            let mut b = [0; 1];
            c.read_exact(&mut b).unwrap();
            assert_eq!(b[0], i + 1, "{mode}");
        }
        assert_eq!(server.stop(Duration::from_secs(5)).killed, 0);
        assert_eq!(server.stats().panicked, 3);
    });
}

#[test]
fn per_hub_accepts_on_both_hubs() {
    with_deadline("per_hub_accepts_on_both_hubs", 120, || {
        for (mode, builder) in common::mode_builders()
            .into_iter()
            .filter(|(m, _)| *m != "single")
        {
            builder.build().unwrap().block_on(move || {
                let threads = Arc::new(Mutex::new(HashSet::new()));
                let t2 = threads.clone();
                let server = StreamServer::bind("127.0.0.1:0")
                    .unwrap()
                    .per_hub(true)
                    .serve(move |mut conn, _| {
                        t2.lock().unwrap().insert(std::thread::current().id());
                        let mut b = [0; 1];
                        if conn.read_exact(&mut b).is_ok() {
                            let _ = conn.write_all(&b);
                        }
                    })
                    .unwrap();
                let addr = server.local_addr();
                assert_eq!(
                    listening_sockets(addr.port()),
                    2,
                    "{mode}: not one socket per hub"
                );
                let clients: Vec<_> = (0..200u32)
                    .map(|i| {
                        greenhub::spawn(move || {
                            let mut c = TcpStream::connect(addr).unwrap();
                            c.write_all(&[i as u8]).unwrap();
                            let mut b = [0; 1];
                            c.read_exact(&mut b).unwrap();
                            assert_eq!(b[0], i as u8);
                        })
                    })
                    .collect();
                for c in clients {
                    c.join().unwrap();
                }
                let stats = server.stats();
                assert_eq!(stats.accepted.len(), 2, "{mode}");
                assert_eq!(stats.accepted.iter().sum::<u64>(), 200, "{mode}");
                assert!(
                    stats.accepted.iter().all(|&n| n > 0),
                    "{mode}: an acceptor took nothing: {:?}",
                    stats.accepted
                );
                if mode == "pinned" {
                    // Handlers run on the hub of their acceptor: both hubs.
                    assert_eq!(threads.lock().unwrap().len(), 2, "{mode}");
                }
                server.stop(Duration::from_secs(5));
            });
        }
    });
}

/// How many TCP sockets listen on `port` (IPv4), from `/proc/net/tcp`.
fn listening_sockets(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let local = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let cols: Vec<_> = l.split_whitespace().collect();
            cols[1].ends_with(&local) && cols[3] == "0A"
        })
        .count()
}

#[test]
fn given_listener_is_shared_by_acceptors() {
    each_mode("given_listener_is_shared_by_acceptors", |mode| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = StreamServer::from_listener(listener)
            .per_hub(true)
            .max_connections(4)
            .serve(line_handler)
            .unwrap();
        assert_eq!(server.local_addr(), addr);
        assert_eq!(listening_sockets(addr.port()), 1);
        let clients: Vec<_> = (0..50)
            .map(|i| greenhub::spawn(move || line_client(addr, i)))
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        let stats = server.stats();
        assert_eq!(stats.accepted.len(), if mode == "single" { 1 } else { 2 });
        assert_eq!(stats.accepted.iter().sum::<u64>(), 50);
        server.stop(Duration::from_secs(5));
        assert!(
            TcpStream::connect(addr).is_err(),
            "{mode}: listener still open"
        );
    });
}

#[test]
fn serve_and_stop_from_plain_threads() {
    with_deadline("serve_and_stop_from_plain_threads", 120, || {
        let rt = Builder::new().hubs(2).build().unwrap();
        let server = StreamServer::bind("127.0.0.1:0")
            .unwrap()
            .handle(rt.handle().clone())
            .per_hub(true)
            .serve(line_handler)
            .unwrap();
        let addr = server.local_addr();
        // Plain std clients on OS threads.
        let threads: Vec<_> = (0..8)
            .map(|i| {
                std::thread::spawn(move || {
                    let mut c = std::net::TcpStream::connect(addr).unwrap();
                    c.write_all(format!("thread {i}\n").as_bytes()).unwrap();
                    let mut line = String::new();
                    BufReader::new(&c).read_line(&mut line).unwrap();
                    assert_eq!(line, format!("8:THREAD {i}\n"));
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let waiter = {
            let s = server.clone();
            std::thread::spawn(move || s.wait())
        };
        let report = server.stop(Duration::from_secs(5));
        assert_eq!(report.killed, 0);
        waiter.join().unwrap();
        assert!(std::net::TcpStream::connect(addr).is_err());
        // Without a runtime, serve is an error, not a panic.
        let err = StreamServer::bind("127.0.0.1:0")
            .unwrap()
            .serve(line_handler)
            .unwrap_err();
        assert!(
            err.to_string().contains("outside a greenhub runtime"),
            "{err}"
        );
    });
}

#[test]
fn datagram_echo_then_stop() {
    each_mode("datagram_echo_then_stop", |mode| {
        let server = DatagramServer::bind("127.0.0.1:0")
            .unwrap()
            .per_hub(mode != "single")
            .max_in_flight(16)
            .serve(|data, peer, socket| {
                if data == b"hang" {
                    greenhub::sleep(Duration::from_secs(60));
                }
                let mut reply = data.to_vec();
                reply.reverse();
                socket.send_to(&reply, peer).unwrap();
            })
            .unwrap();
        let addr = server.local_addr();
        let clients: Vec<_> = (0..10)
            .map(|i| {
                greenhub::spawn(move || {
                    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    let mut buf = [0; 64];
                    for k in 0..50 {
                        let msg = format!("datagram {i}/{k}");
                        s.send_to(msg.as_bytes(), addr).unwrap();
                        let (n, from) = s.recv_from(&mut buf).unwrap();
                        let want: Vec<u8> = msg.bytes().rev().collect();
                        assert_eq!((&buf[..n], from), (&want[..], addr));
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        until("the echo handlers finish", || server.in_flight() == 0);
        let hanger = UdpSocket::bind("127.0.0.1:0").unwrap();
        hanger.send_to(b"hang", addr).unwrap();
        until("the hanging handler runs", || server.in_flight() == 1);
        let report = server.stop(Duration::from_millis(50));
        assert_eq!((report.drained, report.killed), (0, 1), "{mode}");
        let stats = server.stats();
        assert_eq!(stats.accepted.iter().sum::<u64>(), 501, "{mode}");
        assert_eq!((stats.returned, stats.killed), (500, 1), "{mode}");
    });
}

#[test]
fn keeps_serving_through_emfile() {
    let out = run_child("child_server_emfile", &[], 60);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {stdout}\n{stderr}");
    assert!(stdout.contains("SERVER-EMFILE-OK"), "{stdout}\n{stderr}");
}

#[test]
#[ignore = "run as a child process by keeps_serving_through_emfile"]
fn child_server_emfile() {
    if !is_child("child_server_emfile") {
        return;
    }
    let rt = Builder::new().single_threaded().build().unwrap();
    rt.block_on(|| {
        let server = StreamServer::bind("127.0.0.1:0")
            .unwrap()
            .serve(|mut conn, _| {
                let mut b = [0; 1];
                conn.read_exact(&mut b).unwrap();
                conn.write_all(&[b[0] + 1]).unwrap();
            })
            .unwrap();
        let addr = server.local_addr();
        // Clients wait in the backlog, their requests sent.
        let mut clients: Vec<_> = (0..3u8)
            .map(|i| {
                let mut c = TcpStream::connect(addr).unwrap();
                c.write_all(&[i]).unwrap();
                c
            })
            .collect();
        // Use up every fd, now that the clients hold theirs.
        let fillers = common::use_up_fds();
        greenhub::sleep(Duration::from_millis(300));
        let errors = server.stats().errors;
        assert!(errors >= 1, "no accept error while out of fds");
        assert!(errors < 100, "the acceptor spun: {errors} errors in 300 ms");
        assert!(!server.is_stopped());
        // Fds come back: the same acceptor serves the waiting clients.
        drop(fillers);
        for (i, c) in clients.iter_mut().enumerate() {
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut b = [0; 1];
            c.read_exact(&mut b).unwrap();
            assert_eq!(b[0], i as u8 + 1);
        }
        let report = server.stop(Duration::from_secs(5));
        assert_eq!(report.killed, 0);
        println!("SERVER-EMFILE-OK errors={errors}");
    });
}

#[test]
fn runtime_shutdown_ends_the_server() {
    with_deadline("runtime_shutdown_ends_the_server", 60, || {
        let rt = Builder::new().pinned().hubs(2).build().unwrap();
        let handle = rt.handle().clone();
        let server = StreamServer::bind("127.0.0.1:0")
            .unwrap()
            .handle(handle.clone())
            .per_hub(true)
            .serve(|_conn, _| greenhub::sleep(Duration::from_secs(600)))
            .unwrap();
        let _c = std::net::TcpStream::connect(server.local_addr()).unwrap();
        assert!(common::eventually(10, || server.connections() == 1));
        drop(rt); // kills the acceptors and the handler
        assert_eq!(server.connections(), 0);
        let report = server.stop(Duration::from_secs(1));
        assert_eq!((report.drained, report.killed), (0, 0));
        // Acceptors spawned onto the hubs of a shut-down runtime never run.
        let late = StreamServer::bind("127.0.0.1:0")
            .unwrap()
            .handle(handle)
            .per_hub(true)
            .serve(|_, _| ())
            .unwrap();
        let addr = late.local_addr();
        late.stop(Duration::ZERO);
        assert!(std::net::TcpStream::connect(addr).is_err());
    });
}

/// A second per-hub server on a port that is already served fails with
/// `AddrInUse` (as std's `bind` would) instead of silently joining the first
/// server's `SO_REUSEPORT` group and taking a share of its connections.
#[test]
fn per_hub_server_on_a_taken_port_is_refused() {
    with_deadline("taken port", 60, || {
        let rt = Builder::new().hubs(2).build().unwrap();
        rt.block_on(|| {
            let first = StreamServer::bind("127.0.0.1:0")
                .unwrap()
                .per_hub(true)
                .serve(line_handler)
                .unwrap();
            let addr = first.local_addr();
            assert_eq!(listening_sockets(addr.port()), 2);
            let second = StreamServer::bind(addr)
                .unwrap()
                .per_hub(true)
                .serve(line_handler);
            let Err(err) = second else {
                panic!("the second server must not bind");
            };
            assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
            assert_eq!(listening_sockets(addr.port()), 2);
            // A plain listener is refused too.
            assert!(TcpListener::bind(addr).is_err());
            first.stop(Duration::ZERO);
            // Once stopped, the port can be served again, as a group.
            let again = StreamServer::bind(addr)
                .unwrap()
                .per_hub(true)
                .serve(line_handler);
            let again = again.expect("the port is free again");
            again.stop(Duration::ZERO);
        });
    });
}
