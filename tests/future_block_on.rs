//! `future::block_on` and `JoinHandle` as a future, without tokio: a greenlet
//! parks (only itself) on a pending future and is woken from any thread;
//! kill and `timeout` drop the future on its own greenlet; a panic in the
//! future reaches `join`; a waker kept past the greenlet's end is harmless;
//! async code awaits greenlets through their handles.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::ThreadId;
use std::time::Duration;

use common::{in_each_mode, with_deadline};
use greenhub::GreenletId;
use greenhub::future::block_on;

/// A one-shot future completed from another thread: `Shot::fire` sets the
/// value and calls the waker the future last registered.
#[derive(Default)]
struct Shot {
    value: Mutex<(Option<u64>, Option<Waker>)>,
}

impl Shot {
    fn fire(&self, v: u64) {
        let waker = {
            let mut g = self.value.lock().unwrap();
            g.0 = Some(v);
            g.1.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

struct ShotFuture(Arc<Shot>);

impl Future for ShotFuture {
    type Output = u64;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u64> {
        let mut g = self.0.value.lock().unwrap();
        match g.0 {
            Some(v) => Poll::Ready(v),
            None => {
                g.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// A future that completes once a plain thread has slept for `dur`.
fn thread_timer(dur: Duration, v: u64) -> ShotFuture {
    let shot = Arc::new(Shot::default());
    let s = shot.clone();
    std::thread::spawn(move || {
        std::thread::sleep(dur);
        s.fire(v);
    });
    ShotFuture(shot)
}

/// Where a value was dropped: on which greenlet (if any) and thread.
type DropSite = Arc<Mutex<Option<(Option<GreenletId>, ThreadId)>>>;

/// Records its drop site.
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

/// Off a greenlet, `block_on` blocks the thread until the waker (called
/// from another thread) lets the future finish.
#[test]
fn blocks_a_plain_thread() {
    with_deadline("plain", 30, || {
        assert_eq!(block_on(async { 5 }), 5);
        assert_eq!(block_on(thread_timer(Duration::from_millis(20), 7)), 7);
        let shot = Arc::new(Shot::default());
        let s = shot.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            s.fire(9);
        });
        assert_eq!(block_on(ShotFuture(shot)), 9);
        t.join().unwrap();
    });
}

/// 100 greenlets of one hub wait for futures woken by plain threads, while
/// another greenlet of the hub keeps running: only the greenlets park.
#[test]
fn parks_only_the_greenlet() {
    in_each_mode("parks_only", |_mode| {
        let ticks = std::rc::Rc::new(std::cell::Cell::new(0u32));
        let done = std::rc::Rc::new(std::cell::Cell::new(false));
        let ticker = {
            let (ticks, done) = (ticks.clone(), done.clone());
            greenhub::spawn_local(move || {
                while !done.get() {
                    greenhub::sleep(Duration::from_millis(2));
                    ticks.set(ticks.get() + 1);
                }
            })
        };
        let waiters: Vec<_> = (0..100u64)
            .map(|i| {
                greenhub::spawn_local(move || block_on(thread_timer(Duration::from_millis(50), i)))
            })
            .collect();
        let sum: u64 = waiters.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(sum, (0..100).sum::<u64>());
        done.set(true);
        ticker.join().unwrap();
        // The ticker ran while all of them were parked (liveness only).
        assert!(ticks.get() >= 2, "ticker starved: {} ticks", ticks.get());
    });
}

/// A greenlet killed while parked in `block_on` unwinds from it, and the
/// future is dropped on that greenlet, on its hub's thread.
#[test]
fn kill_drops_the_future_on_its_greenlet() {
    in_each_mode("kill", |_mode| {
        let site: DropSite = Arc::default();
        let parked = Arc::new(AtomicBool::new(false));
        let h = {
            let (site, parked) = (site.clone(), parked.clone());
            greenhub::spawn(move || {
                let probe = DropProbe(site);
                block_on(async move {
                    let _probe = probe;
                    parked.store(true, SeqCst);
                    std::future::pending::<()>().await
                })
            })
        };
        let id = h.id();
        while !parked.load(SeqCst) {
            greenhub::sleep(Duration::from_millis(1));
        }
        h.kill();
        let err = h.join().unwrap_err();
        assert!(err.is_killed());
        let (gid, _thread) = site.lock().unwrap().expect("the future was dropped");
        assert_eq!(gid, Some(id), "dropped on another greenlet");
    });
}

/// Same for the thread: the drop runs on the thread that polled.
#[test]
fn kill_drops_the_future_on_its_thread() {
    in_each_mode("kill_thread", |_mode| {
        let site: DropSite = Arc::default();
        let polled_on: Arc<Mutex<Option<ThreadId>>> = Arc::default();
        let h = {
            let (site, polled_on) = (site.clone(), polled_on.clone());
            greenhub::spawn(move || {
                let probe = DropProbe(site);
                block_on(async move {
                    let _probe = probe;
                    *polled_on.lock().unwrap() = Some(std::thread::current().id());
                    std::future::pending::<()>().await
                })
            })
        };
        while polled_on.lock().unwrap().is_none() {
            greenhub::sleep(Duration::from_millis(1));
        }
        h.kill();
        assert!(h.join().unwrap_err().is_killed());
        let (_, thread) = site.lock().unwrap().expect("dropped");
        assert_eq!(Some(thread), *polled_on.lock().unwrap());
    });
}

/// `timeout` around `block_on` ends the wait with `Err(Elapsed)`, the
/// future dropped on the greenlet inside the frame.
#[test]
fn timeout_drops_the_future_on_its_greenlet() {
    in_each_mode("timeout", |_mode| {
        let site: DropSite = Arc::default();
        let me = greenhub::current().id();
        let probe = DropProbe(site.clone());
        let r = greenhub::timeout(Duration::from_millis(10), move || {
            block_on(async move {
                let _probe = probe;
                std::future::pending::<()>().await
            })
        });
        assert!(r.is_err());
        let (gid, thread) = site.lock().unwrap().expect("dropped");
        assert_eq!(gid, Some(me));
        assert_eq!(thread, std::thread::current().id());
        // A future that finishes first wins.
        let r = greenhub::timeout(Duration::from_secs(10), || {
            block_on(thread_timer(Duration::from_millis(5), 3))
        });
        assert_eq!(r.unwrap(), 3);
    });
}

/// `timeout` around `block_on` on a plain thread.
#[test]
fn timeout_on_a_plain_thread() {
    with_deadline("timeout_thread", 30, || {
        let site: DropSite = Arc::default();
        let probe = DropProbe(site.clone());
        let r = greenhub::timeout(Duration::from_millis(10), move || {
            block_on(async move {
                let _probe = probe;
                std::future::pending::<()>().await
            })
        });
        assert!(r.is_err());
        let (gid, thread) = site.lock().unwrap().expect("dropped");
        assert_eq!(gid, None);
        assert_eq!(thread, std::thread::current().id());
    });
}

/// A panic inside the future is the greenlet's panic, reported by `join`.
#[test]
fn panic_in_the_future_reaches_join() {
    in_each_mode("panic", |_mode| {
        let h = greenhub::spawn(|| {
            block_on(async {
                thread_timer(Duration::from_millis(1), 0).await;
                panic!("boom in a future");
            })
        });
        let err = h.join().unwrap_err();
        assert!(err.is_panic());
        let payload = err.into_panic();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom in a future"));
        // The hub is fine.
        assert_eq!(greenhub::spawn(|| block_on(async { 1 })).join().unwrap(), 1);
    });
}

/// A future that blocks the greenlet inside `poll` gets a clear panic
/// instead of switching with tokio's context entered.
#[test]
fn blocking_inside_poll_panics_clearly() {
    in_each_mode("no_switch", |_mode| {
        let h = greenhub::spawn(|| block_on(async { greenhub::sleep(Duration::from_millis(5)) }));
        let err = h.join().unwrap_err();
        let payload = err.into_panic();
        let msg = payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(msg.contains("no_switch"), "{msg}");
    });
}

/// A waker kept past `block_on` and past the greenlet's end may be called
/// from anywhere, any number of times: a spurious wake-up for a greenlet
/// parked elsewhere, nothing for a finished one or a dropped runtime.
#[test]
fn waker_after_the_greenlet_finished_is_harmless() {
    with_deadline("late_waker", 60, || {
        let kept: Arc<Mutex<Vec<Waker>>> = Arc::default();
        for (_, builder) in common::mode_builders() {
            let rt = builder.build().unwrap();
            let k = kept.clone();
            rt.block_on(move || {
                let hs: Vec<_> = (0..50)
                    .map(|i| {
                        let k = k.clone();
                        greenhub::spawn(move || {
                            let v = block_on(std::future::poll_fn(|cx| {
                                k.lock().unwrap().push(cx.waker().clone());
                                Poll::Ready(i)
                            }));
                            // Now parked in something else: the stale waker
                            // is a spurious wake-up that `sleep` absorbs.
                            let t = std::time::Instant::now();
                            greenhub::sleep(Duration::from_millis(20));
                            assert!(t.elapsed() >= Duration::from_millis(20));
                            v
                        })
                    })
                    .collect();
                // Fire every kept waker from other threads while the
                // greenlets sleep, then after they finished.
                let fire = |k: Arc<Mutex<Vec<Waker>>>| {
                    std::thread::spawn(move || {
                        for w in k.lock().unwrap().iter() {
                            w.wake_by_ref();
                        }
                    })
                };
                while k.lock().unwrap().len() < 50 {
                    greenhub::sleep(Duration::from_millis(1));
                }
                fire(k.clone()).join().unwrap();
                let sum: i32 = hs.into_iter().map(|h| h.join().unwrap()).sum();
                assert_eq!(sum, (0..50).sum());
                fire(k.clone()).join().unwrap();
            });
            drop(rt);
        }
        // The runtimes are gone; the greenlets are freed only when these
        // wakers go: waking them is still fine.
        let wakers = std::mem::take(&mut *kept.lock().unwrap());
        assert_eq!(wakers.len(), 50 * common::mode_builders().len());
        for w in wakers {
            w.wake_by_ref();
            w.wake();
        }
    });
}

/// A waker that counts its wake-ups.
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// `JoinHandle` as a future, polled by hand: pending until the greenlet
/// ends, then the latest registered waker is woken and the outcome is
/// ready; an earlier waker is not the one woken after a re-registration.
#[test]
fn join_handle_future_wakes_the_latest_waker() {
    with_deadline("join_future", 30, || {
        let rt = greenhub::Runtime::new().unwrap();
        let gate = Arc::new(greenhub::sync::Event::new());
        let g = gate.clone();
        let mut h = rt.handle().spawn(move || {
            g.wait();
            "out"
        });
        let (a, b) = (
            Arc::new(CountingWaker(AtomicUsize::new(0))),
            Arc::new(CountingWaker(AtomicUsize::new(0))),
        );
        let (wa, wb) = (Waker::from(a.clone()), Waker::from(b.clone()));
        assert!(
            Pin::new(&mut h)
                .poll(&mut Context::from_waker(&wa))
                .is_pending()
        );
        assert!(
            Pin::new(&mut h)
                .poll(&mut Context::from_waker(&wa))
                .is_pending()
        );
        assert!(
            Pin::new(&mut h)
                .poll(&mut Context::from_waker(&wb))
                .is_pending()
        );
        gate.set();
        assert!(until(10, || b.0.load(SeqCst) == 1));
        assert_eq!(a.0.load(SeqCst), 0);
        match Pin::new(&mut h).poll(&mut Context::from_waker(&wb)) {
            Poll::Ready(r) => assert_eq!(r.unwrap(), "out"),
            Poll::Pending => panic!("woken but not ready"),
        }
        // Polled again after it resolved: an error, as joining twice is.
        match Pin::new(&mut h).poll(&mut Context::from_waker(&wb)) {
            Poll::Ready(r) => assert!(r.is_err()),
            Poll::Pending => panic!("pending after it resolved"),
        }
    });
}

/// Dropping a pending `JoinHandle` future detaches the greenlet: it keeps
/// running and its output is dropped by the hub.
#[test]
fn dropping_the_join_future_detaches() {
    in_each_mode("detach", |_mode| {
        let drops = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(greenhub::sync::Event::new());
        let (d, g) = (drops.clone(), gate.clone());
        let mut h = greenhub::spawn(move || {
            g.wait();
            common::DropCounter(d)
        });
        let w = Waker::from(Arc::new(CountingWaker(AtomicUsize::new(0))));
        assert!(
            Pin::new(&mut h)
                .poll(&mut Context::from_waker(&w))
                .is_pending()
        );
        drop(h);
        gate.set();
        assert!(until(10, || drops.load(SeqCst) == 1));
    });
}

/// Async code awaits greenlets, on greenhub's own `block_on` from a plain
/// thread, and from inside a greenlet.
#[test]
fn async_code_awaits_greenlets() {
    with_deadline("await_greenlets", 60, || {
        for rt in common::runtimes() {
            let hs: Vec<_> = (0..1000u64)
                .map(|i| {
                    rt.handle().spawn(move || {
                        greenhub::sleep(Duration::from_millis(i % 20));
                        i
                    })
                })
                .collect();
            let sum = block_on(async move {
                let mut sum = 0;
                for h in hs {
                    sum += h.await.unwrap();
                }
                sum
            });
            assert_eq!(sum, (0..1000).sum::<u64>());
            rt.block_on(|| {
                let h = greenhub::spawn(|| 2);
                assert_eq!(block_on(h).unwrap(), 2);
                let bad = greenhub::spawn(|| -> u8 { panic!("x") });
                assert!(block_on(bad).unwrap_err().is_panic());
            });
        }
    });
}

/// A greenlet that awaits its own handle gets an error, not a hang.
#[test]
fn awaiting_its_own_handle_is_an_error() {
    in_each_mode("self_join", |_mode| {
        let (tx, rx) = greenhub::channel::bounded::<greenhub::JoinHandle<()>>(1);
        let (res_tx, res_rx) = greenhub::channel::bounded(1);
        let h = greenhub::spawn(move || {
            let me = rx.recv().unwrap();
            let err = block_on(me).unwrap_err();
            res_tx.send(err.io_error().map(|e| e.kind())).unwrap();
        });
        tx.send(h).unwrap();
        assert_eq!(res_rx.recv().unwrap(), Some(std::io::ErrorKind::Deadlock));
    });
}

/// Waits (parking only the greenlet, or the thread) until `cond` holds, at
/// most `secs` seconds.
fn until(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while !cond() {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        greenhub::sleep(Duration::from_millis(2));
    }
    true
}
