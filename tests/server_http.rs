//! The HTTP server example (`examples/http_server.rs`, included here as a
//! module) driven by raw TCP clients: exact responses for concurrent
//! keep-alive and pipelined clients, requests split across reads, bodies,
//! HTTP/1.0; 400 and 431 followed by a clean close; a client trickling its
//! head one byte per 100 ms cut off by a 500 ms header timeout (with a 408);
//! the connection limit; graceful shutdown (called directly in both modes,
//! and by a real SIGTERM in a child process). Single-threaded and M:N mode.
//!
//! Clients are greenhub `TcpStream`s on greenlets of the same runtime as the
//! server (they park like the server's), except in the SIGTERM child, where
//! they are std sockets on a plain thread.

mod common;

#[allow(dead_code)]
#[path = "../examples/http_server.rs"]
mod http_server;

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use greenhub::net::{TcpListener, TcpStream};
use greenhub::server::StreamServer;
use http_server::http_common::{End, Status};
use http_server::{Config, Server, ShutdownReport};

const PLAIN: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
const JSON: &str = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 27\r\n\r\n{\"message\":\"Hello, World!\"}";
const NOT_FOUND: &str =
    "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nNot Found";
const PLAIN_CLOSE: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nConnection: close\r\n\r\nHello, World!";
const JSON_CLOSE: &str = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 27\r\nConnection: close\r\n\r\n{\"message\":\"Hello, World!\"}";

/// The error response for `status` (`Connection: close`, reason as body).
fn error(status: Status) -> String {
    let reason = status.reason();
    format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reason}",
        status.code(),
        reason.len()
    )
}

/// Starts a server on a free port of the current runtime, accepting on
/// every hub (`per_hub`, as `run_main` does in M:N mode).
fn start(cfg: Config) -> (Server, SocketAddr) {
    let builder = StreamServer::bind("127.0.0.1:0").expect("resolve");
    let server = Server::start(builder.per_hub(true), cfg).expect("start");
    let addr = server.local_addr();
    (server, addr)
}

/// Connects with a 10 s read timeout, so that a missing response fails the
/// test instead of hanging it.
fn connect(addr: SocketAddr) -> TcpStream {
    let c = TcpStream::connect(addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c
}

/// Reads exactly `want.len()` bytes and checks them.
fn expect(c: &mut TcpStream, want: &str, ctx: &str) {
    let mut got = vec![0; want.len()];
    c.read_exact(&mut got)
        .unwrap_or_else(|e| panic!("{ctx}: reading {} bytes: {e}", want.len()));
    assert_eq!(String::from_utf8_lossy(&got), want, "{ctx}");
}

/// Reads to EOF (a reset after some bytes counts as EOF, since the server
/// may close while the client is still sending).
fn read_to_close(c: &mut TcpStream) -> String {
    let mut all = Vec::new();
    let mut buf = [0; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset && !all.is_empty() => break,
            Err(e) => panic!("reading to the close: {e} (after {all:?})"),
        }
    }
    String::from_utf8_lossy(&all).into_owned()
}

fn stop(server: Server) -> ShutdownReport {
    server.shutdown(Duration::from_secs(5))
}

#[test]
fn concurrent_keep_alive_and_pipelined_clients_get_exact_responses() {
    common::in_each_mode("http: concurrent pipelined", |mode| {
        let (server, addr) = start(Config::default());
        const CLIENTS: usize = 64;
        const ROUNDS: usize = 20;
        let clients: Vec<_> = (0..CLIENTS)
            .map(|i| {
                greenhub::spawn(move || {
                    let mut c = connect(addr);
                    for r in 0..ROUNDS {
                        let ctx = format!("{mode}: client {i} round {r}");
                        // One request, then three pipelined in one write.
                        c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
                        expect(&mut c, PLAIN, &ctx);
                        c.write_all(
                            b"GET /json HTTP/1.1\r\nHost: t\r\n\r\n\
                              GET /nope?x=1 HTTP/1.1\r\nHost: t\r\n\r\n\
                              GET /plaintext HTTP/1.1\r\nHost: t\r\nAccept: */*\r\n\r\n",
                        )
                        .unwrap();
                        expect(&mut c, &format!("{JSON}{NOT_FOUND}{PLAIN}"), &ctx);
                    }
                    ROUNDS * 4
                })
            })
            .collect();
        let total: usize = clients.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, CLIENTS * ROUNDS * 4);
        let report = stop(server);
        assert!(report.drained, "{mode}: {report:?}");
        assert_eq!(report.totals.requests, total as u64, "{mode}: {report:?}");
        assert_eq!(report.totals.connections, CLIENTS as u64);
        assert_eq!(report.totals.rejected, 0);
    });
}

#[test]
fn split_requests_bodies_head_and_http10() {
    common::in_each_mode("http: split, bodies, 1.0", |mode| {
        let (server, addr) = start(Config::default());
        let mut c = connect(addr);
        // A request split across many writes (and so reads) is assembled.
        let req = b"GET /json HTTP/1.1\r\nHost: example\r\nUser-Agent: test\r\n\r\n";
        for part in req.chunks(7) {
            c.write_all(part).unwrap();
            greenhub::sleep(Duration::from_millis(10));
        }
        expect(&mut c, JSON, mode);
        // A body is read and discarded, sent in pieces, with a pipelined
        // request after it in the same write as its tail; POST on a known
        // path is 405.
        c.write_all(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n0123")
            .unwrap();
        greenhub::sleep(Duration::from_millis(20));
        c.write_all(b"456789GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let not_allowed = "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain\r\nContent-Length: 18\r\nAllow: GET, HEAD\r\n\r\nMethod Not Allowed";
        expect(&mut c, &format!("{not_allowed}{PLAIN}"), mode);
        // Expect: 100-continue gets a 100 before the body is sent.
        c.write_all(
            b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
        )
        .unwrap();
        expect(&mut c, "HTTP/1.1 100 Continue\r\n\r\n", mode);
        c.write_all(b"hello").unwrap();
        expect(&mut c, NOT_FOUND, mode);
        // HEAD: the headers of GET, no body.
        c.write_all(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        expect(
            &mut c,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n",
            mode,
        );
        // Connection: close is honoured: the response says so, then EOF.
        c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        assert_eq!(read_to_close(&mut c), PLAIN_CLOSE, "{mode}");

        // HTTP/1.0 closes by default...
        let mut c = connect(addr);
        c.write_all(b"GET /json HTTP/1.0\r\n\r\n").unwrap();
        assert_eq!(read_to_close(&mut c), JSON_CLOSE, "{mode}");
        // ...and keeps the connection with `Connection: keep-alive`.
        let mut c = connect(addr);
        let keep = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nConnection: keep-alive\r\n\r\nHello, World!";
        for _ in 0..3 {
            c.write_all(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
                .unwrap();
            expect(&mut c, keep, mode);
        }
        drop(c);
        // Chunked bodies are not supported: 501, then close.
        let mut c = connect(addr);
        c.write_all(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
            .unwrap();
        assert_eq!(read_to_close(&mut c), error(Status::NotImplemented));
        stop(server);
    });
}

#[test]
fn malformed_and_oversized_requests_are_refused_and_closed() {
    common::in_each_mode("http: 400 and 431", |mode| {
        let (server, addr) = start(Config::default());
        let bad: [&[u8]; 5] = [
            b"GARBAGE\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n", // HTTP/1.1 without Host
            b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: x1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        ];
        for req in bad {
            let mut c = connect(addr);
            c.write_all(req).unwrap();
            let ctx = format!("{mode}: {:?}", String::from_utf8_lossy(req));
            assert_eq!(read_to_close(&mut c), error(Status::BadRequest), "{ctx}");
        }
        // A good request, then a malformed one pipelined behind it: the
        // first is answered, then 400 and close.
        let mut c = connect(addr);
        c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n\x01\x02 nonsense\r\n\r\n")
            .unwrap();
        assert_eq!(
            read_to_close(&mut c),
            format!("{PLAIN}{}", error(Status::BadRequest))
        );
        // A head over 8 KiB (one long header) and one with 65 headers.
        let mut big = b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', 9000));
        big.extend_from_slice(b"\r\n\r\n");
        let mut many = b"GET / HTTP/1.1\r\nHost: t\r\n".to_vec();
        for i in 0..64 {
            many.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        for req in [big, many] {
            let mut c = connect(addr);
            c.write_all(&req).unwrap();
            assert_eq!(
                read_to_close(&mut c),
                error(Status::HeadersTooLarge),
                "{mode}"
            );
        }
        // 64 headers (Host + 63) are fine.
        let mut ok = b"GET / HTTP/1.1\r\nHost: t\r\n".to_vec();
        for i in 0..63 {
            ok.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
        }
        ok.extend_from_slice(b"\r\n");
        let mut c = connect(addr);
        c.write_all(&ok).unwrap();
        expect(&mut c, PLAIN, mode);
        drop(c);
        let report = stop(server);
        assert_eq!(report.totals.rejected, 8, "{mode}: {report:?}");
    });
}

#[test]
fn serve_connection_reports_how_it_ended() {
    common::in_each_mode("http: serve_connection", |mode| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = greenhub::spawn(move || {
            let mut c = connect(addr);
            c.write_all(
                b"GET / HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\nBROKEN\r\n\r\n",
            )
            .unwrap();
            read_to_close(&mut c)
        });
        let (stream, _) = listener.accept().unwrap();
        let stats = http_server::serve_connection(stream, &Config::default()).unwrap();
        assert_eq!(stats.requests, 2, "{mode}");
        assert_eq!(stats.end, End::Rejected(Status::BadRequest), "{mode}");
        assert_eq!(
            client.join().unwrap(),
            format!("{PLAIN}{PLAIN}{}", error(Status::BadRequest))
        );
    });
}

#[test]
fn a_client_trickling_its_head_is_cut_off_by_the_header_timeout() {
    common::in_each_mode("http: slow client", |mode| {
        let cfg = Config {
            header_timeout: Duration::from_millis(500),
            ..Config::default()
        };
        let (server, addr) = start(cfg);
        let c = connect(addr);
        let writer = c.try_clone().unwrap();
        // One byte per 100 ms: the whole head would take 6 s.
        let trickle = greenhub::spawn(move || {
            let head = b"GET / HTTP/1.1\r\nHost: t\r\nX-Padding: 0123456789012345678901\r\n\r\n";
            let mut w = writer;
            let mut sent = 0;
            for b in head {
                if w.write_all(&[*b]).is_err() {
                    break; // the server closed
                }
                sent += 1;
                greenhub::sleep(Duration::from_millis(100));
            }
            sent
        });
        let t = Instant::now();
        let mut r = c;
        let got = read_to_close(&mut r);
        let took = t.elapsed();
        trickle.kill();
        let _ = trickle.join();
        // Cut off with a 408 at about 500 ms; generous bounds.
        assert_eq!(got, error(Status::RequestTimeout), "{mode}");
        assert!(took >= Duration::from_millis(400), "{mode}: {took:?}");
        assert!(took < Duration::from_secs(4), "{mode}: {took:?}");

        // A client that connects and sends nothing is closed silently.
        let mut silent = connect(addr);
        let t = Instant::now();
        assert_eq!(read_to_close(&mut silent), "", "{mode}");
        assert!(t.elapsed() < Duration::from_secs(4), "{mode}");

        // The keep-alive idle timeout closes an idle connection silently.
        stop(server);
        let cfg = Config {
            idle_timeout: Duration::from_millis(200),
            ..Config::default()
        };
        let (server, addr) = start(cfg);
        let mut c = connect(addr);
        c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        expect(&mut c, PLAIN, mode);
        let t = Instant::now();
        assert_eq!(read_to_close(&mut c), "", "{mode}");
        assert!(t.elapsed() < Duration::from_secs(4), "{mode}");
        stop(server);
    });
}

#[test]
fn the_connection_limit_holds() {
    common::in_each_mode("http: connection limit", |mode| {
        let cfg = Config {
            max_conns: 2,
            ..Config::default()
        };
        let (server, addr) = start(cfg);
        let mut a = connect(addr);
        let mut b = connect(addr);
        for c in [&mut a, &mut b] {
            c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
            expect(c, PLAIN, mode);
        }
        assert_eq!(server.open_connections(), 2);
        // The third connects (the kernel's backlog) but is not served.
        let mut third = connect(addr);
        third
            .write_all(b"GET /json HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        third
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let err = third.read(&mut [0; 64]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock, "{mode}: not served yet");
        // Not even accepted: a full server waits for a slot before accept.
        assert_eq!(server.totals().connections, 2, "{mode}");
        // A slot frees: the third is served.
        drop(a);
        third
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        expect(&mut third, JSON, mode);
        // b still works; the limit is still 2 (b and third).
        b.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        expect(&mut b, PLAIN, mode);
        // (a's greenlet may still be finishing on another hub for a moment.)
        let t = Instant::now();
        while server.open_connections() != 2 && t.elapsed() < Duration::from_secs(5) {
            greenhub::sleep(Duration::from_millis(5));
        }
        assert_eq!(server.open_connections(), 2, "{mode}");
        drop((b, third));
        stop(server);
    });
}

#[test]
fn graceful_shutdown_drains_the_request_in_flight() {
    common::in_each_mode("http: graceful shutdown", |mode| {
        let (server, addr) = start(Config::default());
        // An idle keep-alive connection.
        let mut idle = connect(addr);
        idle.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        expect(&mut idle, PLAIN, mode);
        // A connection with half a request head sent.
        let mut busy = connect(addr);
        busy.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        expect(&mut busy, PLAIN, mode);
        busy.write_all(b"GET /json HTTP/1.1\r\nHo").unwrap();
        greenhub::sleep(Duration::from_millis(200)); // the server reads it
        let stopper = greenhub::spawn(move || stop(server));
        greenhub::sleep(Duration::from_millis(200));
        // The idle one was closed at once, with no response.
        assert_eq!(read_to_close(&mut idle), "", "{mode}");
        // New connections are refused once the listener is closed.
        let refused = TcpStream::connect(addr);
        assert!(refused.is_err(), "{mode}: connected after shutdown");
        // The one in flight finishes its request and gets its response,
        // marked `Connection: close`, then EOF.
        busy.write_all(b"st: t\r\n\r\n").unwrap();
        assert_eq!(read_to_close(&mut busy), JSON_CLOSE, "{mode}");
        let report = stopper.join().unwrap();
        assert_eq!(report.open, 2, "{mode}: {report:?}");
        assert_eq!(report.idle_closed, 1, "{mode}: {report:?}");
        assert!(report.drained, "{mode}: {report:?}");
        assert_eq!(report.totals.requests, 3, "{mode}: {report:?}");
    });
}

#[test]
fn shutdown_kills_what_outlives_the_grace_period() {
    common::in_each_mode("http: grace period", |mode| {
        let (server, addr) = start(Config::default());
        let mut slow = connect(addr);
        slow.write_all(b"GET / HTTP/1.1\r\n").unwrap(); // and never more
        greenhub::sleep(Duration::from_millis(100));
        let report = server.shutdown(Duration::from_millis(200));
        assert!(!report.drained, "{mode}: {report:?}");
        assert_eq!(report.open, 1, "{mode}");
        assert_eq!(read_to_close(&mut slow), "", "{mode}");
    });
}

/// The options the SIGTERM child runs with.
fn child_opts(mode: http_server::Mode) -> http_server::Options {
    http_server::Options {
        port: 0,
        mode,
        hubs: Some(2),
        ..http_server::Options::default()
    }
}

/// The client side of the SIGTERM test (std sockets, a plain thread): an
/// idle keep-alive connection and one with a request in flight when the
/// signal arrives.
fn sigterm_client(addr: SocketAddr) {
    use std::net::TcpStream;
    let connect = || {
        let c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c
    };
    let read_exact = |c: &mut TcpStream, want: &str| {
        let mut got = vec![0; want.len()];
        c.read_exact(&mut got).unwrap();
        assert_eq!(String::from_utf8_lossy(&got), want);
    };
    let mut idle = connect();
    idle.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    read_exact(&mut idle, PLAIN);
    let mut busy = connect();
    busy.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    read_exact(&mut busy, PLAIN);
    busy.write_all(b"GET /json HTTP/1.1\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) on our own pid; run_main handles SIGTERM from before
    // it reports the address until it returns.
    assert_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGTERM) }, 0);
    let mut rest = Vec::new();
    assert_eq!(idle.read_to_end(&mut rest).unwrap(), 0, "idle closed");
    busy.write_all(b"Host: t\r\n\r\n").unwrap();
    busy.read_to_end(&mut rest).unwrap();
    assert_eq!(String::from_utf8_lossy(&rest), JSON_CLOSE);
}

/// Child process body: `run_main` (the example's whole program) stopped by
/// a real SIGTERM while a request is in flight, in each mode.
#[test]
#[ignore = "run as a child process by sigterm_shuts_down_gracefully"]
fn sigterm_child() {
    if !common::is_child("sigterm_child") {
        return;
    }
    use http_server::Mode;
    for mode in [Mode::Single, Mode::Mn, Mode::Pinned] {
        let mut client = None;
        let summary = http_server::run_main(&child_opts(mode), |addr| {
            client = Some(std::thread::spawn(move || sigterm_client(addr)));
        })
        .expect("run_main");
        client.unwrap().join().expect("the client's checks");
        assert_eq!(summary.signal, libc::SIGTERM);
        let r = summary.report;
        assert_eq!(
            (r.open, r.idle_closed, r.drained),
            (2, 1, true),
            "{mode:?}: {r:?}"
        );
        assert_eq!(r.totals.requests, 3, "{mode:?}: {r:?}");
        println!("sigterm child: {mode:?} ok");
    }
}

#[test]
fn sigterm_shuts_down_gracefully() {
    let out = common::run_child("sigterm_child", &[], 120);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    for mode in ["Single", "Mn", "Pinned"] {
        assert!(
            stdout.contains(&format!("sigterm child: {mode} ok")),
            "{stdout}"
        );
    }
}

#[test]
fn options_parse_flags_and_environment() {
    use http_server::{Mode, Options};
    let args = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
    let env = |k: &str| match k {
        "HTTP_PORT" => Some("9000".to_string()),
        "HTTP_MODE" => Some("pinned".to_string()),
        _ => None,
    };
    let o = Options::parse(
        &args("--port 0 --hubs 3 --max-conns 7 --header-timeout-ms 250"),
        env,
    )
    .unwrap();
    assert_eq!(o.port, 0); // the flag wins
    assert_eq!(o.mode, Mode::Pinned); // from the environment
    assert_eq!(o.hubs, Some(3));
    assert_eq!(o.config.max_conns, 7);
    assert_eq!(o.config.header_timeout, Duration::from_millis(250));
    let o = Options::parse(&args("--mode=single"), |_| None).unwrap();
    assert_eq!((o.port, o.mode), (8080, Mode::Single));
    assert!(Options::parse(&args("--mode fast"), |_| None).is_err());
    assert!(Options::parse(&args("--port"), |_| None).is_err());
    assert!(Options::parse(&args("--max-conns 0"), |_| None).is_err());
    assert!(Options::parse(&args("--bogus 1"), |_| None).is_err());
}
