//! Monkey patching (feature `patch`): std's thread parker, shared by the
//! greenlets of a hub (`src/patch/parker.rs`). `thread::park` and
//! `park_timeout`, and what waits through them (`std::sync::mpsc`,
//! `reqwest::blocking`), park only the greenlet: a ticker greenlet on the
//! same hub keeps ticking, every value reaches its greenlet (no wake-up is
//! lost when many greenlets of one hub wait at once and tokens come from
//! several threads), and timeouts are honoured. Each also in M:N mode.

mod common;
mod patch_common;

use patch_common::{enable, one_hub, ticker};

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// Runs `f` on a runtime of two hubs (M:N), with the hooks enabled.
fn two_hubs<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    enable();
    greenhub::Builder::new()
        .hubs(2)
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn two_greenlets_in_mpsc_recv_leave_a_ticker_on_the_same_hub_running() {
    let (got, ticks) = common::with_deadline("mpsc_ticker", 60, || {
        one_hub(|| {
            let stop = Arc::new(AtomicBool::new(false));
            let t = ticker(stop.clone());
            let (tx1, rx1) = mpsc::channel();
            let (tx2, rx2) = mpsc::channel();
            let a = greenhub::spawn(move || rx1.recv().unwrap());
            let b = greenhub::spawn(move || rx2.recv().unwrap());
            // The second receiver's value first: the wake-up must reach
            // the right greenlet whichever parked first.
            let sender = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                tx2.send(2u32).unwrap();
                std::thread::sleep(Duration::from_millis(200));
                tx1.send(1u32).unwrap();
            });
            let got = (a.join().unwrap(), b.join().unwrap());
            stop.store(true, SeqCst);
            sender.join().unwrap();
            (got, t.join().unwrap())
        })
    });
    assert_eq!(got, (1, 2));
    eprintln!("ticker: {ticks} ticks of 10 ms during a 400 ms wait in mpsc recv");
    // Unpatched (the thread blocked in `recv`), the ticker gets 0-2.
    assert!(ticks >= 10, "the hub was blocked: {ticks} ticks");
}

/// `greenlets` receivers on one runtime, each with its own channel, fed
/// `per` values each by `senders` plain threads in an interleaved order.
/// Every value must arrive, in order per channel.
fn many_receivers(greenlets: usize, per: usize, senders: usize, timeout: bool) -> usize {
    let mut txs = Vec::new();
    let mut handles = Vec::new();
    for _ in 0..greenlets {
        let (tx, rx) = mpsc::channel::<usize>();
        txs.push(tx);
        handles.push(greenhub::spawn(move || {
            let mut sum = 0;
            let mut last = None;
            for _ in 0..per {
                let v = if timeout {
                    loop {
                        match rx.recv_timeout(Duration::from_millis(7)) {
                            Ok(v) => break v,
                            Err(mpsc::RecvTimeoutError::Timeout) => continue,
                            Err(e) => panic!("{e}"),
                        }
                    }
                } else {
                    rx.recv().unwrap()
                };
                assert!(
                    last.is_none_or(|l| v > l),
                    "out of order: {v} after {last:?}"
                );
                last = Some(v);
                sum += v;
            }
            sum
        }));
    }
    let txs = Arc::new(txs);
    let threads: Vec<_> = (0..senders)
        .map(|s| {
            let txs = txs.clone();
            std::thread::spawn(move || {
                for round in 0..per {
                    for (i, tx) in txs.iter().enumerate() {
                        if i % senders == s {
                            tx.send(round).unwrap();
                        }
                    }
                    if round % 4 == s % 4 {
                        std::thread::sleep(Duration::from_micros(300));
                    }
                }
            })
        })
        .collect();
    let total: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    for t in threads {
        t.join().unwrap();
    }
    total
}

#[test]
fn a_hundred_greenlets_in_mpsc_recv_get_every_value() {
    let (greenlets, per) = (100, 50);
    let want = greenlets * per * (per - 1) / 2;
    let total = common::with_deadline("mpsc_many", 120, move || {
        one_hub(move || many_receivers(greenlets, per, 3, false))
    });
    assert_eq!(total, want);
    let total = common::with_deadline("mpsc_many_mn", 120, move || {
        two_hubs(move || many_receivers(greenlets, per, 3, false))
    });
    assert_eq!(total, want);
}

#[test]
fn a_hundred_greenlets_in_mpsc_recv_timeout_get_every_value() {
    let (greenlets, per) = (100, 30);
    let want = greenlets * per * (per - 1) / 2;
    let total = common::with_deadline("mpsc_many_timeout", 120, move || {
        one_hub(move || many_receivers(greenlets, per, 2, true))
    });
    assert_eq!(total, want);
    let total = common::with_deadline("mpsc_many_timeout_mn", 120, move || {
        two_hubs(move || many_receivers(greenlets, per, 2, true))
    });
    assert_eq!(total, want);
}

#[test]
fn park_timeout_on_many_greenlets_waits_its_time() {
    let (waited, ticks) = common::with_deadline("park_timeout", 60, || {
        one_hub(|| {
            let stop = Arc::new(AtomicBool::new(false));
            let t = ticker(stop.clone());
            let hs: Vec<_> = (0..50)
                .map(|_| {
                    greenhub::spawn(|| {
                        let start = Instant::now();
                        let want = Duration::from_millis(200);
                        // `park_timeout` may return early (spuriously):
                        // loop until the time is up, as its docs say.
                        while start.elapsed() < want {
                            std::thread::park_timeout(want - start.elapsed());
                        }
                        start.elapsed()
                    })
                })
                .collect();
            let waited: Vec<Duration> = hs.into_iter().map(|h| h.join().unwrap()).collect();
            stop.store(true, SeqCst);
            (waited, t.join().unwrap())
        })
    });
    assert!(waited.iter().all(|w| *w >= Duration::from_millis(200)));
    assert!(ticks >= 8, "the hub was blocked: {ticks} ticks");
}

#[test]
fn park_unpark_from_threads_reaches_each_greenlet() {
    // Each greenlet waits for its own flag with `thread::park`; threads set
    // the flags in a shuffled order and unpark the hub thread's `Thread`,
    // which every greenlet of the hub shares.
    let done = common::with_deadline("park_unpark", 60, || {
        one_hub(|| {
            let n = 40;
            let flags: Arc<Vec<AtomicBool>> =
                Arc::new((0..n).map(|_| AtomicBool::new(false)).collect());
            let me = std::thread::current();
            let hs: Vec<_> = (0..n)
                .map(|i| {
                    let flags = flags.clone();
                    greenhub::spawn(move || {
                        while !flags[i].load(SeqCst) {
                            std::thread::park();
                        }
                        i
                    })
                })
                .collect();
            let setters: Vec<_> = (0..2)
                .map(|s| {
                    let (flags, me) = (flags.clone(), me.clone());
                    std::thread::spawn(move || {
                        for k in 0..n {
                            let i = (k * 7 + s * 3) % n;
                            if i % 2 == s {
                                std::thread::sleep(Duration::from_millis(2));
                                flags[i].store(true, SeqCst);
                                me.unpark();
                            }
                        }
                    })
                })
                .collect();
            let done: usize = hs.into_iter().map(|h| h.join().unwrap()).sum();
            for s in setters {
                s.join().unwrap();
            }
            done
        })
    });
    assert_eq!(done, (0..40).sum::<usize>());
}

/// A local HTTP/1.1 server on plain threads: answers every request after
/// `delay` with the request's path as the body.
fn slow_server(delay: Duration) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        if h == "\r\n" {
                            break;
                        }
                    }
                    std::thread::sleep(delay);
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{}",
                        path.len(),
                        path
                    );
                    if conn.write_all(resp.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// `n` greenlets, each one `reqwest::blocking` GET of its own path on a
/// shared client; returns the bodies' check and the elapsed time.
fn reqwest_fan_out(addr: std::net::SocketAddr, n: usize) -> (usize, Duration) {
    let client = reqwest::blocking::Client::builder()
        .pool_max_idle_per_host(n)
        .build()
        .unwrap();
    let start = Instant::now();
    let hs: Vec<_> = (0..n)
        .map(|i| {
            let client = client.clone();
            greenhub::spawn(move || {
                let body = client
                    .get(format!("http://{addr}/r{i}"))
                    .send()
                    .unwrap()
                    .text()
                    .unwrap();
                assert_eq!(body, format!("/r{i}"));
            })
        })
        .collect();
    let ok = hs.into_iter().filter_map(|h| h.join().ok()).count();
    let took = start.elapsed();
    drop(client);
    (ok, took)
}

#[test]
fn reqwest_blocking_from_200_greenlets_on_one_hub() {
    let addr = slow_server(Duration::from_millis(100));
    let (ok, took) = common::with_deadline("reqwest", 120, move || {
        one_hub(move || reqwest_fan_out(addr, 200))
    });
    eprintln!("reqwest::blocking, 200 greenlets on one hub, 100 ms server delay: {took:?}");
    assert_eq!(ok, 200);
    // Serially this takes 20 s: a generous bound that still proves overlap.
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let (ok, took) = common::with_deadline("reqwest_mn", 120, move || {
        two_hubs(move || reqwest_fan_out(addr, 200))
    });
    eprintln!("reqwest::blocking, 200 greenlets on two hubs (M:N): {took:?}");
    assert_eq!(ok, 200);
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn std_tcp_client_on_a_plain_thread_is_untouched() {
    // The hub thread's parker is shared only by greenlets: a plain thread
    // parking meanwhile (its own parker) is not affected.
    let addr = slow_server(Duration::from_millis(10));
    let got = common::with_deadline("plain_thread", 60, move || {
        one_hub(move || {
            let (tx, rx) = mpsc::channel();
            let g = greenhub::spawn(move || rx.recv().unwrap());
            let t = std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.write_all(b"GET /plain HTTP/1.1\r\nhost: x\r\n\r\n")
                    .unwrap();
                let mut r = BufReader::new(s);
                let mut status = String::new();
                r.read_line(&mut status).unwrap();
                tx.send(status).unwrap();
            });
            t.join().unwrap();
            g.join().unwrap()
        })
    });
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
}

#[test]
fn kill_of_a_greenlet_parked_in_mpsc_recv_completes() {
    let r = common::with_deadline("kill_parked", 60, || {
        one_hub(|| {
            let (tx, rx) = mpsc::channel::<u8>();
            let parked = Arc::new(AtomicUsize::new(0));
            let p2 = parked.clone();
            let h = greenhub::spawn(move || {
                p2.fetch_add(1, SeqCst);
                rx.recv()
            });
            while parked.load(SeqCst) == 0 {
                greenhub::sleep(Duration::from_millis(5));
            }
            greenhub::sleep(Duration::from_millis(20));
            h.kill();
            let r = h.join();
            drop(tx);
            r.map(|_| ()).map_err(|e| e.is_killed())
        })
    });
    assert_eq!(r, Err(true));
}

#[test]
fn a_wake_up_taken_by_another_greenlets_park_is_delivered_by_the_sweep() {
    // The one case no check sees (module docs of src/patch/parker.rs): a
    // token for greenlet A arrives while greenlet R runs, and R's own
    // `park` takes it on std's fast path. Staged deterministically here;
    // A must still wake (at the leader's next tick).
    let woke = common::with_deadline("taken_token", 60, || {
        one_hub(|| {
            let flag = Arc::new(AtomicBool::new(false));
            let stage = Arc::new(AtomicUsize::new(0));
            let me = std::thread::current();
            let f = flag.clone();
            let a = greenhub::spawn(move || {
                let start = Instant::now();
                while !f.load(SeqCst) {
                    std::thread::park();
                }
                start.elapsed()
            });
            // Let A park first.
            greenhub::sleep(Duration::from_millis(20));
            let (f, s) = (flag.clone(), stage.clone());
            let setter = std::thread::spawn(move || {
                while s.load(SeqCst) != 1 {
                    std::hint::spin_loop();
                }
                f.store(true, SeqCst);
                me.unpark();
                s.store(2, SeqCst);
            });
            let s = stage.clone();
            let r = greenhub::spawn(move || {
                // Running, without yielding, while the token arrives...
                s.store(1, SeqCst);
                while s.load(SeqCst) != 2 {
                    std::hint::spin_loop();
                }
                // ...then parking: the fast path takes A's token.
                std::thread::park_timeout(Duration::from_millis(1));
                // Keep running briefly so that A is not woken by our exit.
                for _ in 0..5 {
                    std::thread::park_timeout(Duration::from_millis(1));
                }
            });
            r.join().unwrap();
            setter.join().unwrap();
            a.join().unwrap()
        })
    });
    eprintln!("a wake-up taken by another greenlet's park arrived after {woke:?}");
    assert!(woke >= Duration::from_millis(20));
}

const UREQ_CHILD: &str = "ureq_resolve_timeout_child";

/// `ureq` with a timeout resolves on a helper thread and waits for it in
/// `mpsc::recv_timeout`. With a lookup that never answers in time (glibc
/// reading `HOSTALIASES` from a FIFO that nobody writes: no network needed),
/// the request fails with ureq's timeout, and a 10 ms ticker greenlet on the
/// same hub keeps ticking meanwhile. In a child process: the environment
/// variable must not be set in the multi-threaded test process.
#[test]
fn ureq_with_a_timeout_and_a_lookup_that_hangs_leaves_the_hub_running() {
    let (dir, fifo) = patch_common::hostaliases_fifo("ureq");
    let out = common::run_child(UREQ_CHILD, &[("HOSTALIASES", &fifo)], 60);
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!(
        "child stdout:\n{stdout}\nchild stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child failed: {}", out.status);
    assert!(stdout.contains("ureq: ok"), "{stdout}");
}

#[test]
#[ignore = "helper run as a child process by ureq_with_a_timeout_and_a_lookup_that_hangs_leaves_the_hub_running"]
fn ureq_resolve_timeout_child() {
    if !common::is_child(UREQ_CHILD) {
        return;
    }
    let fifo = std::env::var("HOSTALIASES").expect("HOSTALIASES");
    let release = Arc::new(AtomicBool::new(false));
    let r2 = release.clone();
    // Lets the blocked lookups finish once the test is over.
    let writer = std::thread::spawn(move || {
        let c = std::ffi::CString::new(fifo).unwrap();
        while !r2.load(SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        for _ in 0..200 {
            // SAFETY: a valid path; the fd is closed at once.
            let fd = unsafe { libc::open(c.as_ptr(), libc::O_WRONLY | libc::O_NONBLOCK) };
            if fd >= 0 {
                // SAFETY: an fd just opened.
                unsafe { libc::close(fd) };
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    let (result, took, ticks) = one_hub(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let t = ticker(stop.clone());
        let h = greenhub::spawn(|| {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_millis(500)))
                .build()
                .into();
            let start = Instant::now();
            // No dot in the name: glibc's DNS backend reads HOSTALIASES.
            let r = agent.get("http://zzgreenhubureq:1/").call();
            (r.map(|_| ()).map_err(|e| e.to_string()), start.elapsed())
        });
        let (result, took) = h.join().unwrap();
        stop.store(true, SeqCst);
        (result, took, t.join().unwrap())
    });
    release.store(true, SeqCst);
    writer.join().unwrap();
    println!("ureq GET with a 500 ms timeout: {result:?} after {took:?}; ticker: {ticks} ticks");
    if took < Duration::from_millis(400) {
        // This resolver does not read HOSTALIASES: nothing blocked.
        println!("ureq: ok (SKIPPED: the resolver did not block on HOSTALIASES)");
        return;
    }
    let e = result.expect_err("the lookup never answered");
    assert!(e.to_lowercase().contains("timeout"), "{e}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    // Unpatched, the hub is blocked in recv_timeout: 0-1 ticks.
    assert!(ticks >= 25, "the hub was blocked: {ticks} ticks");
    println!("ureq: ok");
}
