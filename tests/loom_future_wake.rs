//! Loom models of the async bridges (`src/future/`): a future's wake-up vs
//! `block_on` parking, and a `JoinHandle` awaited as a future (its task's
//! `Waker` registered in the join slot) vs the greenlet's completion.
//!
//! The real code runs: `greenhub::future::block_on` (off a hub, so it parks
//! the loom thread through `park_until`), its waker (a `Waiter` behind an
//! `Arc`, never a stack pointer), and the join protocol of
//! `src/greenlet/completion.rs` (`poll_join_waker`, `after_complete`,
//! `drop_handle`) on the real `State` word.
//!
//! Invariants asserted:
//!
//! - **no lost wake-up**: a wake-up that races with the poll or the park
//!   always lets `block_on` finish (else the thread parks forever and loom
//!   reports a deadlock);
//! - the async joiner gets the outcome **exactly once and intact**, and the
//!   output is dropped exactly once, whether the future is awaited to the
//!   end, re-registered with another waker, or dropped while pending;
//! - a registered waker is **woken at most once and always dropped**
//!   (counted), including one left behind by a dropped future;
//! - **the slots never race** (loom `UnsafeCell`s).

#![cfg(loom)]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Wake, Waker};

use greenhub::__private::{Completion, State, WaiterKey};
use greenhub::JoinError;
use greenhub::future::block_on;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use loom::sync::{Arc, Mutex};
use loom::thread;

/// A one-shot future: `fire` sets the flag, then calls the waker the future
/// registered last (if any).
struct Shot {
    done: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Shot {
    fn new() -> Arc<Shot> {
        Arc::new(Shot {
            done: AtomicBool::new(false),
            waker: Mutex::new(None),
        })
    }

    fn fire(&self) {
        self.done.store(true, SeqCst);
        let w = self.waker.lock().unwrap().take();
        if let Some(w) = w {
            w.wake();
        }
    }
}

struct ShotFuture(Arc<Shot>);

impl Future for ShotFuture {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        *self.0.waker.lock().unwrap() = Some(cx.waker().clone());
        // Checked after registering, as every correct future does.
        if self.0.done.load(SeqCst) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// A future's wake-up, from another thread, races with `block_on`'s poll
/// and park: `block_on` always returns, and the waker can still be called
/// (by the firing thread) after it did.
#[test]
fn wake_vs_block_on() {
    loom::model(|| {
        let shot = Shot::new();
        let firer = {
            let shot = shot.clone();
            thread::spawn(move || shot.fire())
        };
        let waiter = {
            let shot = shot.clone();
            thread::spawn(move || block_on(ShotFuture(shot)))
        };
        waiter.join().unwrap();
        firer.join().unwrap();
        assert!(shot.done.load(SeqCst));
    });
}

const VALUE: u32 = 42;

/// A greenlet's output that counts its drops.
struct Output {
    value: u32,
    drops: Arc<AtomicUsize>,
}

impl Drop for Output {
    fn drop(&mut self) {
        self.drops.fetch_add(1, SeqCst);
    }
}

/// What `Task<F, T>` holds for the join protocol.
struct Task {
    state: State,
    completion: Completion<Output>,
}

// SAFETY: as `Task`'s own impls in `src/greenlet/task.rs` (and
// `tests/loom_join.rs`): the slots are touched only as the state word
// allows, which these models check; the output and the registered waker
// (`Send + Sync`) may move between threads.
unsafe impl Sync for Task {}
// SAFETY: see `Sync`.
unsafe impl Send for Task {}

fn setup() -> (Arc<Task>, Arc<AtomicUsize>) {
    let task = Arc::new(Task {
        state: State::new(true),
        completion: Completion::new(),
    });
    (task, Arc::new(AtomicUsize::new(0)))
}

/// The hub finishing the greenlet (as `Task::start`'s root and
/// `Task::finish` do); `after_complete` wakes a registered async waker.
fn spawn_completer(task: &Arc<Task>, drops: &Arc<AtomicUsize>) -> thread::JoinHandle<()> {
    let (task, drops) = (task.clone(), drops.clone());
    thread::spawn(move || {
        let out = Output {
            value: VALUE,
            drops,
        };
        // SAFETY: the single store, before `State::complete`.
        unsafe { task.completion.store(Ok(out)) };
        let prev = task.state.complete();
        // SAFETY: `prev` is from the completing transition, used once.
        unsafe { task.completion.after_complete(prev) };
    })
}

/// `JoinHandle`'s `Future::poll`, on the protocol objects: the handle's
/// `registered` record and `taken` flag live in the future.
struct JoinFuture {
    task: Arc<Task>,
    registered: Option<WaiterKey>,
    taken: bool,
}

impl Future for JoinFuture {
    type Output = Result<Output, JoinError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        assert!(!this.taken, "polled after the outcome was taken");
        let task = this.task.clone();
        // SAFETY: the single handle, outcome not taken.
        match unsafe {
            task.completion
                .poll_join_waker(&task.state, &mut this.registered, cx.waker())
        } {
            Some(out) => {
                this.taken = true;
                Poll::Ready(out)
            }
            None => Poll::Pending,
        }
    }
}

impl Drop for JoinFuture {
    fn drop(&mut self) {
        if !self.taken {
            // SAFETY: the single handle, dropped once, outcome not taken.
            unsafe { self.task.completion.drop_handle(&self.task.state) };
        }
    }
}

fn check_joined(outcome: Result<Output, JoinError>, drops: &AtomicUsize) {
    let out = outcome.expect("the greenlet returned a value");
    assert_eq!(out.value, VALUE);
    assert_eq!(drops.load(SeqCst), 0, "dropped before the joiner got it");
    drop(out);
    assert_eq!(drops.load(SeqCst), 1);
}

/// Async code awaits the greenlet (the join future driven by `block_on` on
/// a thread, so its waker is `block_on`'s) while the hub completes it.
#[test]
fn await_join_vs_completion() {
    loom::model(|| {
        let (task, drops) = setup();
        let c = spawn_completer(&task, &drops);
        let joiner = {
            let (task, drops) = (task.clone(), drops.clone());
            thread::spawn(move || {
                let fut = JoinFuture {
                    task,
                    registered: None,
                    taken: false,
                };
                check_joined(block_on(fut), &drops);
            })
        };
        joiner.join().unwrap();
        c.join().unwrap();
        assert_eq!(drops.load(SeqCst), 1);
    });
}

/// A waker that counts its wake-ups and its drops (its clones included).
struct CountingWaker {
    wakes: Arc<AtomicUsize>,
    drops: Arc<AtomicUsize>,
}

impl Wake for CountingWaker {
    fn wake(self: std::sync::Arc<Self>) {
        self.wakes.fetch_add(1, SeqCst);
    }
}

impl Drop for CountingWaker {
    fn drop(&mut self) {
        self.drops.fetch_add(1, SeqCst);
    }
}

/// The join future is first polled by one task (a counting waker), then
/// moves to another (`block_on`'s waker): the handle takes the slot back
/// and re-registers, racing with completion. The first waker is dropped
/// exactly once (by the handle or the completer) and woken at most once;
/// the second joiner always gets the outcome.
#[test]
fn await_join_changes_waker_vs_completion() {
    loom::model(|| {
        let (task, drops) = setup();
        let c = spawn_completer(&task, &drops);
        let (wakes, waker_drops) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let joiner = {
            let (task, drops) = (task.clone(), drops.clone());
            let (wakes, waker_drops) = (wakes.clone(), waker_drops.clone());
            thread::spawn(move || {
                let mut fut = JoinFuture {
                    task,
                    registered: None,
                    taken: false,
                };
                let first = Waker::from(std::sync::Arc::new(CountingWaker {
                    wakes,
                    drops: waker_drops,
                }));
                match Pin::new(&mut fut).poll(&mut Context::from_waker(&first)) {
                    Poll::Ready(out) => check_joined(out, &drops),
                    Poll::Pending => {
                        drop(first);
                        check_joined(block_on(fut), &drops);
                    }
                }
            })
        };
        joiner.join().unwrap();
        c.join().unwrap();
        assert_eq!(drops.load(SeqCst), 1);
        assert!(wakes.load(SeqCst) <= 1);
        // A registration that lost to completion stays in the slot until
        // the task goes.
        drop(task);
        assert_eq!(waker_drops.load(SeqCst), 1, "the first waker leaked");
    });
}

/// The join future registers a waker, then is dropped while pending (the
/// async task gave up: the greenlet is detached), racing with completion:
/// the output is dropped exactly once, the stale waker woken at most once
/// and dropped.
#[test]
fn drop_join_future_vs_completion() {
    loom::model(|| {
        let (task, drops) = setup();
        let c = spawn_completer(&task, &drops);
        let (wakes, waker_drops) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        {
            let mut fut = JoinFuture {
                task: task.clone(),
                registered: None,
                taken: false,
            };
            let w = Waker::from(std::sync::Arc::new(CountingWaker {
                wakes: wakes.clone(),
                drops: waker_drops.clone(),
            }));
            if let Poll::Ready(out) = Pin::new(&mut fut).poll(&mut Context::from_waker(&w)) {
                check_joined(out, &drops);
            }
        }
        c.join().unwrap();
        assert_eq!(drops.load(SeqCst), 1, "output not dropped exactly once");
        assert!(wakes.load(SeqCst) <= 1);
        // The stale waker stays in the slot of a never-completed task only;
        // here the completer took it, or the handle never registered it.
        drop(task);
        assert_eq!(waker_drops.load(SeqCst), 1, "the waker leaked");
    });
}
