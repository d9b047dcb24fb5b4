//! The tokio bridge (cargo feature `tokio`): greenlets await tokio timers
//! and an async HTTP client (`reqwest`) through `future::block_on`, parking
//! only themselves; tokio tasks await greenlets through their `JoinHandle`s;
//! kill and `timeout` drop a pending tokio future on its own greenlet.
//!
//! Every test runs in single-threaded and M:N mode. Wall-time bounds are
//! generous liveness checks only.

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use common::{in_each_mode, with_deadline};
use greenhub::GreenletId;
use greenhub::future::block_on;

/// 1,000 greenlets on one hub each await a 100 ms `tokio::time::sleep`: they
/// wait concurrently (well under a second in all), and a 10 ms ticker
/// greenlet on the same hub keeps ticking meanwhile.
#[test]
fn thousand_tokio_sleeps_on_one_hub() {
    in_each_mode("sleeps", |mode| {
        let ticks = Rc::new(Cell::new(0u32));
        let done = Rc::new(Cell::new(false));
        let ticker = {
            let (ticks, done) = (ticks.clone(), done.clone());
            greenhub::spawn_local(move || {
                while !done.get() {
                    greenhub::sleep(Duration::from_millis(10));
                    ticks.set(ticks.get() + 1);
                }
            })
        };
        // Warm up: start the tokio runtime outside the measured part.
        block_on(async { tokio::time::sleep(Duration::from_millis(1)).await });
        let start = Instant::now();
        // `spawn_local`: all of them stay on this hub, in M:N mode too.
        let idlers: Vec<_> = (0..1000u64)
            .map(|i| {
                greenhub::spawn_local(move || {
                    block_on(async move {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        i
                    })
                })
            })
            .collect();
        let ticks_before = ticks.get();
        let results: Vec<u64> = idlers.into_iter().map(|h| h.join().unwrap()).collect();
        let took = start.elapsed();
        let ticks_during = ticks.get() - ticks_before;
        done.set(true);
        ticker.join().unwrap();
        eprintln!("{mode}: 1,000 sleeps of 100 ms took {took:?}, {ticks_during} ticks");
        assert_eq!(results, (0..1000).collect::<Vec<_>>());
        assert!(took >= Duration::from_millis(100));
        // Liveness only: 1,000 sequential sleeps would take 100 s.
        assert!(took < Duration::from_millis(800), "{mode}: took {took:?}");
        // The ticker kept running on the same hub (about 10 ticks in 100 ms).
        assert!(
            ticks_during >= 3,
            "{mode}: ticker starved: {ticks_during} ticks in {took:?}"
        );
    });
}

/// A tiny HTTP/1.1 server on its own tokio runtime: answers `GET /N` with
/// body `hello N` after `delay`, then closes the connection.
fn start_server(delay: Duration) -> (std::net::SocketAddr, tokio::runtime::Runtime) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // A deep accept queue: the clients connect all at once.
    let listener = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind("127.0.0.1:0".parse().unwrap()).expect("bind");
        socket.listen(4096).expect("listen")
    });
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf);
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                tokio::time::sleep(delay).await;
                let body = format!("hello {}", &path[1..]);
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    (addr, rt)
}

/// `reqwest` from 200 greenlets of one hub against a server that answers
/// after 100 ms: every body is right, and they run concurrently.
#[test]
fn reqwest_from_200_greenlets() {
    in_each_mode("reqwest", |mode| {
        let (addr, server) = start_server(Duration::from_millis(100));
        let client = reqwest::Client::new();
        let start = Instant::now();
        let hs: Vec<_> = (0..200u32)
            .map(|i| {
                let client = client.clone();
                greenhub::spawn_local(move || {
                    block_on(async move {
                        let resp = client
                            .get(format!("http://{addr}/{i}"))
                            .send()
                            .await
                            .expect("request");
                        assert_eq!(resp.status(), 200);
                        resp.text().await.expect("body")
                    })
                })
            })
            .collect();
        for (i, h) in hs.into_iter().enumerate() {
            assert_eq!(h.join().unwrap(), format!("hello {i}"));
        }
        // Liveness only: 200 sequential requests would take 20 s.
        let took = start.elapsed();
        assert!(took < Duration::from_secs(10), "{mode}: took {took:?}");
        // A plain thread, outside greenhub, uses the same client.
        let body = std::thread::spawn(move || {
            block_on(async move {
                client
                    .get(format!("http://{addr}/x"))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap()
            })
        })
        .join()
        .unwrap();
        assert_eq!(body, "hello x");
        server.shutdown_background();
    });
}

/// A tokio task awaits the `JoinHandle`s of 10,000 greenlets that sleep,
/// spawned onto the greenhub runtime with one call each.
#[test]
fn tokio_task_awaits_10k_greenlets() {
    with_deadline("tokio_awaits", 120, || {
        for rt in common::runtimes() {
            let tokio_rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let gh = rt.handle().clone();
            let sum = tokio_rt.block_on(async move {
                let task = tokio::spawn(async move {
                    let hs: Vec<_> = (0..10_000u64)
                        .map(|i| {
                            gh.spawn(move || {
                                greenhub::sleep(Duration::from_millis(1 + i % 10));
                                i
                            })
                        })
                        .collect();
                    let mut sum = 0;
                    for h in hs {
                        sum += h.await.unwrap();
                    }
                    sum
                });
                task.await.unwrap()
            });
            assert_eq!(sum, (0..10_000).sum::<u64>());
            // Concurrently, each awaited by its own tokio task (M:N tokio).
            let tokio_mt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let gh = rt.handle().clone();
            let n = tokio_mt.block_on(async move {
                let tasks: Vec<_> = (0..1000u64)
                    .map(|i| {
                        let h = gh.spawn(move || {
                            greenhub::sleep(Duration::from_millis(i % 5));
                            i
                        });
                        tokio::spawn(h)
                    })
                    .collect();
                let mut n = 0;
                for (i, t) in tasks.into_iter().enumerate() {
                    assert_eq!(t.await.unwrap().unwrap(), i as u64);
                    n += 1;
                }
                n
            });
            assert_eq!(n, 1000);
        }
    });
}

/// Where a value was dropped: on which greenlet and thread.
type DropSite = Arc<Mutex<Option<(Option<GreenletId>, ThreadId)>>>;

struct DropProbe(DropSite);

impl Drop for DropProbe {
    fn drop(&mut self) {
        let here = (
            greenhub::greenlet::try_current().map(|g| g.id()),
            std::thread::current().id(),
        );
        *self.0.lock().unwrap() = Some(here);
    }
}

/// A greenlet killed while it awaits a tokio sleep drops the future (and
/// the tokio timer) on itself; so does an expired `timeout`.
#[test]
fn kill_and_timeout_drop_the_tokio_future_on_its_greenlet() {
    in_each_mode("kill_timeout", |_mode| {
        let site: DropSite = Arc::default();
        let parked = Arc::new(AtomicBool::new(false));
        let h = {
            let (site, parked) = (site.clone(), parked.clone());
            greenhub::spawn(move || {
                let probe = DropProbe(site);
                let polled_on = std::thread::current().id();
                block_on(async move {
                    let _probe = probe;
                    parked.store(true, SeqCst);
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                });
                polled_on
            })
        };
        let id = h.id();
        while !parked.load(SeqCst) {
            greenhub::sleep(Duration::from_millis(1));
        }
        h.kill();
        assert!(h.join().unwrap_err().is_killed());
        let (gid, _) = site.lock().unwrap().expect("dropped");
        assert_eq!(gid, Some(id));

        let site: DropSite = Arc::default();
        let probe = DropProbe(site.clone());
        let r = greenhub::timeout(Duration::from_millis(20), move || {
            block_on(async move {
                let _probe = probe;
                tokio::time::sleep(Duration::from_secs(3600)).await;
            })
        });
        assert!(r.is_err());
        let (gid, thread) = site.lock().unwrap().expect("dropped");
        assert_eq!(gid, Some(greenhub::current().id()));
        assert_eq!(thread, std::thread::current().id());
        // tokio's own timeout inside the future works as well.
        let r = block_on(async {
            tokio::time::timeout(Duration::from_millis(5), std::future::pending::<()>()).await
        });
        assert!(r.is_err());
    });
}

/// A panic in a tokio future is reported through `join`.
#[test]
fn panic_in_a_tokio_future_reaches_join() {
    in_each_mode("panic", |_mode| {
        let h = greenhub::spawn(|| {
            block_on(async {
                tokio::time::sleep(Duration::from_millis(2)).await;
                panic!("tokio boom");
            })
        });
        let err = h.join().unwrap_err();
        assert_eq!(err.into_panic().downcast_ref::<&str>(), Some(&"tokio boom"));
    });
}

/// The tokio context is entered only around polls: between them, and
/// outside `block_on`, the greenlet is not in a tokio runtime.
#[test]
fn tokio_context_only_inside_polls() {
    in_each_mode("context", |_mode| {
        assert!(tokio::runtime::Handle::try_current().is_err());
        let inside = block_on(async {
            tokio::task::yield_now().await;
            tokio::runtime::Handle::try_current().is_ok()
        });
        assert!(inside);
        assert!(tokio::runtime::Handle::try_current().is_err());
        // Spawning on greenhub's tokio runtime and awaiting the task.
        let t = greenhub::future::tokio_handle().spawn(async { 5 });
        assert_eq!(block_on(t).unwrap(), 5);
    });
}
