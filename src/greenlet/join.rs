//! `JoinHandle`: waiting for a greenlet's outcome, and killing it (with or
//! without a reason); `joinall` and `JoinAll`: waiting for several.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::error::JoinError;
use crate::greenlet::runinfo::{WaitKind, WaitOn};
use crate::greenlet::task::{Header, JoinTarget, RawTask, TaskArc, TaskRef};
use crate::greenlet::wait::{Wake, park_until};
use crate::greenlet::waiter::{Waiter, WaiterKey};
use crate::greenlet::{Greenlet, GreenletId};
use crate::hub::context;

/// An owned permission to join a greenlet (wait for its outcome).
///
/// The twin of `std::thread::JoinHandle`. Dropping it detaches the greenlet,
/// which keeps running. [`join`](Self::join) works from greenlets (it parks
/// only the caller) and from plain threads (it blocks the thread).
///
/// ```
/// greenhub::run(|| {
///     let h = greenhub::spawn(|| "done");
///     assert_eq!(h.join().unwrap(), "done");
/// });
/// ```
///
/// It is also a [`Future`] of the same outcome, which async code on any
/// executor can `.await` (see [`crate::future`]); dropping the future
/// detaches the greenlet, as dropping the handle does:
///
/// ```
/// let rt = greenhub::Runtime::new().unwrap();
/// let h = rt.handle().spawn(|| 6 * 7);
/// // Any executor; here greenhub's own `block_on`, on a plain thread.
/// assert_eq!(greenhub::future::block_on(async { h.await.unwrap() }), 42);
/// ```
pub struct JoinHandle<T> {
    task: TaskArc<dyn JoinTarget<T>>,
    outcome: Outcome,
    /// `T` may be `!Send` (from `spawn_local`): the handle is `Send` only when
    /// `T` is (see the impls below).
    _marker: PhantomData<*const T>,
}

/// Where a handle stands with its greenlet's outcome. One enum rather than
/// a key and a flag: the handle is 40 bytes, not 48 (a program that keeps a
/// million handles keeps them all).
enum Outcome {
    /// Not taken yet; the waiter this handle registered in the join slot,
    /// if any (so a repeated wait does not register again).
    Pending(Option<WaiterKey>),
    /// `join` (or the future) returned it.
    Taken,
}

// SAFETY: the handle gives access to `T` only through `join`, which moves it
// to the caller; sending the handle sends the right to receive a `T`, which is
// fine exactly when `T: Send`. The task itself is `Send + Sync`.
unsafe impl<T: Send> Send for JoinHandle<T> {}
// SAFETY: `&JoinHandle` methods never touch `T` (id, name, state, kill).
unsafe impl<T: Send> Sync for JoinHandle<T> {}

impl<T> JoinHandle<T> {
    pub(crate) fn new(task: TaskArc<dyn JoinTarget<T>>) -> JoinHandle<T> {
        JoinHandle {
            task,
            outcome: Outcome::Pending(None),
            _marker: PhantomData,
        }
    }

    /// Waits for the greenlet to finish and returns its value, or why it
    /// did not produce one: it panicked (the payload is in the error), it
    /// was killed, or it could not be started.
    ///
    /// If the caller is itself killed while waiting, it unwinds out of
    /// `join` (and the handle is dropped).
    ///
    /// ```
    /// greenhub::run(|| {
    ///     let ok = greenhub::spawn(|| 1);
    ///     let bad = greenhub::spawn(|| -> i32 { panic!("no") });
    ///     assert_eq!(ok.join().unwrap(), 1);
    ///     assert!(bad.join().unwrap_err().is_panic());
    /// });
    /// ```
    pub fn join(mut self) -> Result<T, JoinError> {
        self.join_until(None)
            .expect("greenhub: join without deadline timed out")
    }

    /// Waits at most `timeout` for the greenlet to finish: `Some(outcome)` if
    /// it did (as [`join`](Self::join) returns it), `None` if it is still
    /// running. After `Some`, the handle is spent: joining it again returns
    /// an error.
    ///
    /// ```
    /// use std::time::Duration;
    /// greenhub::run(|| {
    ///     let mut h = greenhub::spawn(|| {
    ///         greenhub::sleep(Duration::from_millis(30));
    ///         "late"
    ///     });
    ///     assert!(h.join_timeout(Duration::from_millis(1)).is_none());
    ///     let outcome = h.join_timeout(Duration::from_secs(10)).unwrap();
    ///     assert_eq!(outcome.unwrap(), "late");
    /// });
    /// ```
    pub fn join_timeout(&mut self, timeout: Duration) -> Option<Result<T, JoinError>> {
        self.join_until(Instant::now().checked_add(timeout))
    }

    fn join_until(&mut self, deadline: Option<Instant>) -> Option<Result<T, JoinError>> {
        let joins_itself = context::current_task_ptr() == Some(self.addr());
        let on = WaitOn::new(WaitKind::Join, self.id().as_u64());
        let Outcome::Pending(registered) = &mut self.outcome else {
            return Some(Err(JoinError::io(io::Error::other(
                "greenhub: this greenlet was already joined",
            ))));
        };
        if joins_itself {
            return Some(Err(JoinError::io(io::Error::new(
                io::ErrorKind::Deadlock,
                "greenhub: a greenlet cannot join itself",
            ))));
        }
        loop {
            // SAFETY: we are the single handle and have not taken the outcome.
            if let Some(outcome) = unsafe { self.task.poll_join(registered) } {
                self.outcome = Outcome::Taken;
                count_join(self.header());
                return Some(outcome);
            }
            // A registration left behind by a timeout only costs the
            // completer a spurious wake-up of this waiter.
            match park_until(deadline, on) {
                Wake::Woken => {}
                Wake::TimedOut => return None,
                Wake::Interrupted(i) => i.raise(),
            }
        }
    }

    /// Whether the greenlet has finished (returned, panicked or been killed).
    ///
    /// ```
    /// greenhub::run(|| {
    ///     let h = greenhub::spawn(|| ());
    ///     while !h.is_finished() {
    ///         greenhub::yield_now();
    ///     }
    /// });
    /// ```
    pub fn is_finished(&self) -> bool {
        self.header().state.load().is_complete()
    }

    /// Kills the greenlet: if it is blocked (in `sleep`, `park`, `join`, ...)
    /// it unwinds from there with its destructors run; if it is running it
    /// unwinds at its next blocking point; if it has not started it never
    /// runs. [`join`](Self::join) then reports [`JoinError::is_killed`] (unless
    /// the greenlet finished first). Does not wait; may be called from any
    /// thread, any number of times.
    ///
    /// A `catch_unwind` in the greenlet cannot keep it alive: the kill is
    /// raised again at every blocking point.
    ///
    /// ```
    /// use std::time::Duration;
    /// greenhub::run(|| {
    ///     let h = greenhub::spawn(|| greenhub::sleep(Duration::from_secs(3600)));
    ///     h.kill();
    ///     assert!(h.join().unwrap_err().is_killed());
    /// });
    /// ```
    pub fn kill(&self) {
        self.header().kill_reason.claim();
        self.kill_now();
    }

    /// Kills the greenlet as [`kill`](Self::kill) does, with a reason that
    /// its [`join`](Self::join) reports: the error then says
    /// [`is_killed`](JoinError::is_killed), and
    /// [`kill_reason`](JoinError::kill_reason) /
    /// [`try_into_kill_reason`](JoinError::try_into_kill_reason) give the
    /// reason back (an `io::Error` reason is also what the error converts
    /// into with `?`). This is gevent's `kill(exception=E)`, whose `get()`
    /// raises `E`: a Rust greenlet has no exception to raise, so the reason
    /// travels to whoever joins it. (A value in place of the greenlet's own,
    /// `kill(value)` style, is `join().or_else(..)` away; greenhub keeps the
    /// kill an error.)
    ///
    /// The first kill through the handle decides: a reason given after an
    /// earlier `kill`/`kill_with` is dropped. A greenlet that finished first
    /// keeps its real outcome (value or panic) and the reason is dropped. A
    /// greenlet killed with a reason before it started, or before a runtime
    /// shutdown unwound it, still reports the reason. Does not wait; may be
    /// called from any thread, as `kill`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// #[derive(Debug, PartialEq)]
    /// enum Why {
    ///     Superseded,
    /// }
    ///
    /// greenhub::run(|| {
    ///     let h = greenhub::spawn(|| greenhub::sleep(Duration::from_secs(3600)));
    ///     h.kill_with(Why::Superseded);
    ///     let err = h.join().unwrap_err();
    ///     assert!(err.is_killed());
    ///     assert_eq!(err.kill_reason().unwrap().downcast_ref(), Some(&Why::Superseded));
    ///
    ///     // A greenlet that already finished keeps its value.
    ///     let done = greenhub::spawn(|| 7);
    ///     while !done.is_finished() {
    ///         greenhub::yield_now();
    ///     }
    ///     done.kill_with(Why::Superseded);
    ///     assert_eq!(done.join().unwrap(), 7);
    /// });
    /// ```
    pub fn kill_with(&self, reason: impl Any + Send) {
        let header = self.header();
        if header.state.load().is_complete() {
            return;
        }
        // Offered before `KILLED` is set (`greenlet::reason`). A reason
        // refused (an earlier kill decided, or the greenlet ended) is the
        // caller's value, dropped here after the kill.
        let refused = header.kill_reason.offer(Box::new(reason)).err();
        self.kill_now();
        drop(refused);
    }

    fn kill_now(&self) {
        if self.header().state.kill() {
            let task: TaskRef = self.task.to_task_ref();
            crate::hub::schedule(task);
        }
    }

    /// A handle to the greenlet, like `std::thread::JoinHandle::thread`.
    ///
    /// ```
    /// greenhub::run(|| {
    ///     let h = greenhub::spawn(|| ());
    ///     let g = h.greenlet();
    ///     assert_eq!(g.id(), h.id());
    /// # h.join().unwrap();
    /// });
    /// ```
    pub fn greenlet(&self) -> Greenlet {
        Greenlet::from_task(self.task.to_task_ref())
    }

    /// The greenlet's id.
    ///
    /// ```
    /// greenhub::run(|| {
    ///     let h = greenhub::spawn(|| greenhub::current().id());
    ///     let id = h.id();
    ///     assert_eq!(h.join().unwrap(), id);
    /// });
    /// ```
    pub fn id(&self) -> GreenletId {
        self.header().id
    }

    /// The greenlet's name, if it has one.
    ///
    /// ```
    /// greenhub::run(|| {
    ///     let h = greenhub::greenlet::Builder::new().name("n".into()).spawn(|| ()).unwrap();
    ///     assert_eq!(h.name(), Some("n"));
    /// # h.join().unwrap();
    /// });
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.header().name()
    }

    fn header(&self) -> &Header {
        let task: &dyn RawTask = &*self.task;
        task.header()
    }

    fn addr(&self) -> usize {
        TaskArc::as_ptr(&self.task) as *const () as usize
    }
}

/// Awaiting a handle is [`JoinHandle::join`] for async code: it resolves to
/// the greenlet's outcome and wakes the awaiting task (on whatever executor
/// runs it) when the greenlet finishes. Polling it again after it resolved
/// gives an error, as joining twice does.
impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let joins_itself = context::current_task_ptr() == Some(this.addr());
        let Outcome::Pending(registered) = &mut this.outcome else {
            return Poll::Ready(Err(JoinError::io(io::Error::other(
                "greenhub: this greenlet was already joined",
            ))));
        };
        if joins_itself {
            // Polled on the greenlet itself (inside `future::block_on`): it
            // would wait for its own end.
            return Poll::Ready(Err(JoinError::io(io::Error::new(
                io::ErrorKind::Deadlock,
                "greenhub: a greenlet cannot join itself",
            ))));
        }
        // SAFETY: we are the single handle and have not taken the outcome.
        match unsafe { this.task.poll_join_waker(registered, cx.waker()) } {
            Some(outcome) => {
                this.outcome = Outcome::Taken;
                count_join(this.header());
                Poll::Ready(outcome)
            }
            None => Poll::Pending,
        }
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if matches!(self.outcome, Outcome::Pending(_)) {
            // SAFETY: we are the single handle, dropped once, outcome not taken.
            unsafe { self.task.drop_handle() };
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id())
            .field("name", &self.name())
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Waits for several greenlets, at most `timeout` in all (`None`: no limit),
/// like gevent's `joinall`. Returns the outcomes of those that finished, in
/// the order given, and the handles of those still running at the deadline
/// (none without a timeout). [`JoinAll`] adds gevent's other options (stop at
/// the first error, or after `count` greenlets) and says which outcome is
/// whose.
///
/// ```
/// use std::time::Duration;
/// greenhub::run(|| {
///     let quick: Vec<_> = (0..3).map(|i| greenhub::spawn(move || i)).collect();
///     let (done, pending) = greenhub::joinall(quick, None);
///     assert_eq!(done.into_iter().map(|r| r.unwrap()).collect::<Vec<_>>(), [0, 1, 2]);
///     assert!(pending.is_empty());
///
///     let slow = greenhub::spawn(|| greenhub::sleep(Duration::from_secs(60)));
///     let (done, pending) = greenhub::joinall(vec![slow], Some(Duration::from_millis(5)));
///     assert!(done.is_empty());
///     pending[0].kill();
/// });
/// ```
pub fn joinall<T>(
    handles: impl IntoIterator<Item = JoinHandle<T>>,
    timeout: Option<Duration>,
) -> (Vec<Result<T, JoinError>>, Vec<JoinHandle<T>>) {
    let mut all = JoinAll::new(handles);
    all.timeout = timeout;
    let Joined { mut done, pending } = all.join();
    done.sort_by_key(|&(i, _)| i);
    (
        done.into_iter().map(|(_, outcome)| outcome).collect(),
        pending.into_iter().map(|(_, h)| h).collect(),
    )
}

/// Waits for several greenlets, with gevent's `joinall` options: a
/// [`timeout`](Self::timeout), stop at the first error
/// ([`fail_fast`](Self::fail_fast), gevent's `raise_error=True`), or after
/// [`count`](Self::count) greenlets finished. [`join`](Self::join) does the
/// waiting; like [`JoinHandle::join`], it parks only the calling greenlet,
/// and blocks the thread off a greenlet.
///
/// Nothing is lost when it stops early: the greenlets that had not finished
/// keep running and their handles come back in [`Joined::pending`], to join
/// (or kill) later.
///
/// ```
/// use greenhub::greenlet::JoinAll;
/// use std::time::Duration;
///
/// greenhub::run(|| {
///     let hs = vec![
///         greenhub::spawn(|| greenhub::sleep(Duration::from_secs(3600))),
///         greenhub::spawn(|| panic!("bad input")),
///         greenhub::spawn(|| greenhub::sleep(Duration::from_secs(3600))),
///     ];
///     let joined = JoinAll::new(hs).fail_fast().join();
///     // Stopped at the panic of greenlet 1; 0 and 2 still run.
///     let (i, outcome) = joined.done.last().unwrap();
///     assert_eq!(*i, 1);
///     assert!(outcome.as_ref().unwrap_err().is_panic());
///     assert_eq!(joined.pending.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [0, 2]);
///     for (_, h) in joined.pending {
///         h.kill();
///         assert!(h.join().unwrap_err().is_killed());
///     }
/// });
/// ```
#[must_use = "a JoinAll does nothing until `join` is called"]
pub struct JoinAll<T> {
    handles: Vec<JoinHandle<T>>,
    timeout: Option<Duration>,
    count: Option<usize>,
    fail_fast: bool,
}

/// What [`JoinAll::join`] returns: the greenlets that finished and those
/// that had not. Each comes with its index in the handles given to
/// [`JoinAll::new`].
///
/// ```
/// use greenhub::greenlet::{JoinAll, Joined};
/// greenhub::run(|| {
///     let hs: Vec<_> = (0..2).map(|i| greenhub::spawn(move || i * 10)).collect();
///     let Joined { done, pending } = JoinAll::new(hs).join();
///     assert_eq!(done.len(), 2);
///     assert!(pending.is_empty());
///     for (i, outcome) in done {
///         assert_eq!(outcome.unwrap(), i * 10);
///     }
/// });
/// ```
#[derive(Debug)]
pub struct Joined<T> {
    /// `(index, outcome)` of each greenlet that finished, in the order they
    /// finished as the joiner saw it: the order of their completions, except
    /// that the greenlets already finished when `join` began come first, in
    /// the order given. With [`JoinAll::fail_fast`], an error is last.
    pub done: Vec<(usize, Result<T, JoinError>)>,
    /// `(index, handle)` of each greenlet that had not finished (or had
    /// finished unseen, after the wait ended), in the order given.
    pub pending: Vec<(usize, JoinHandle<T>)>,
}

impl<T> JoinAll<T> {
    /// Waits for `handles` (no timeout, every one of them, errors included:
    /// [`joinall`] with the index of each outcome).
    ///
    /// ```
    /// use greenhub::greenlet::JoinAll;
    /// greenhub::run(|| {
    ///     let joined = JoinAll::new(vec![greenhub::spawn(|| "a")]).join();
    ///     assert_eq!(joined.done[0].1.as_ref().unwrap(), &"a");
    /// });
    /// ```
    pub fn new(handles: impl IntoIterator<Item = JoinHandle<T>>) -> JoinAll<T> {
        JoinAll {
            handles: handles.into_iter().collect(),
            timeout: None,
            count: None,
            fail_fast: false,
        }
    }

    /// Returns when `timeout` has passed, at the latest (gevent's
    /// `timeout`).
    ///
    /// ```
    /// use greenhub::greenlet::JoinAll;
    /// use std::time::Duration;
    /// greenhub::run(|| {
    ///     let slow = greenhub::spawn(|| greenhub::sleep(Duration::from_secs(3600)));
    ///     let joined = JoinAll::new(vec![slow]).timeout(Duration::from_millis(5)).join();
    ///     assert!(joined.done.is_empty());
    ///     joined.pending[0].1.kill();
    /// });
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> JoinAll<T> {
        self.timeout = Some(timeout);
        self
    }

    /// Returns as soon as `count` greenlets have finished (gevent's
    /// `count`). More than the number of handles means all of them; zero
    /// returns at once with nothing done.
    ///
    /// ```
    /// use greenhub::greenlet::JoinAll;
    /// use std::time::Duration;
    /// greenhub::run(|| {
    ///     let hs = vec![
    ///         greenhub::spawn(|| {
    ///             greenhub::sleep(Duration::from_secs(3600));
    ///             "late"
    ///         }),
    ///         greenhub::spawn(|| "first"),
    ///     ];
    ///     let joined = JoinAll::new(hs).count(1).join();
    ///     assert_eq!(joined.done.len(), 1);
    ///     assert_eq!(joined.done[0].0, 1);
    ///     joined.pending[0].1.kill();
    /// });
    /// ```
    pub fn count(mut self, count: usize) -> JoinAll<T> {
        self.count = Some(count);
        self
    }

    /// Returns at the first greenlet that finishes with an error (a panic, a
    /// kill or a start failure), in the order they finish (gevent's
    /// `raise_error=True`; gevent counts a plain kill as a success, greenhub
    /// as an error, as `join` does). That outcome is the last of
    /// [`Joined::done`].
    ///
    /// ```
    /// use greenhub::greenlet::JoinAll;
    /// greenhub::run(|| {
    ///     let hs = vec![greenhub::spawn(|| Ok(1)), greenhub::spawn(|| panic!("no"))];
    ///     let joined: greenhub::greenlet::Joined<Result<i32, ()>> =
    ///         JoinAll::new(hs).fail_fast().join();
    ///     assert!(joined.done.last().unwrap().1.is_err());
    /// });
    /// ```
    pub fn fail_fast(mut self) -> JoinAll<T> {
        self.fail_fast = true;
        self
    }

    /// Waits as configured. If the caller is killed while waiting, it
    /// unwinds out of `join`, and the handles are dropped (their greenlets
    /// keep running, detached).
    ///
    /// ```
    /// use greenhub::greenlet::JoinAll;
    /// greenhub::run(|| {
    ///     let hs: Vec<_> = (0..3).map(|i| greenhub::spawn(move || i)).collect();
    ///     let mut done = JoinAll::new(hs).join().done;
    ///     done.sort_by_key(|(i, _)| *i);
    ///     let values: Vec<_> = done.into_iter().map(|(_, r)| r.unwrap()).collect();
    ///     assert_eq!(values, [0, 1, 2]);
    /// });
    /// ```
    pub fn join(self) -> Joined<T> {
        let JoinAll {
            handles,
            timeout,
            count,
            fail_fast,
        } = self;
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let want = count.map_or(handles.len(), |c| c.min(handles.len()));
        let mut waiting = Waiting::new(handles);
        let mut done = Vec::new();
        let stop = |done: &Vec<(usize, Result<T, JoinError>)>| {
            done.len() >= want || (fail_fast && done.last().is_some_and(|(_, r)| r.is_err()))
        };
        // First pass, in the order given: take what has finished, and
        // register a waker with each of the others.
        if want > 0 {
            for i in 0..waiting.slots.len() {
                if let Some(outcome) = waiting.poll(i) {
                    done.push((i, outcome));
                    if stop(&done) {
                        return waiting.into_joined(done);
                    }
                }
            }
        }
        let mut timed_out = false;
        while !timed_out && !stop(&done) {
            let mut finished = waiting.take_finished();
            if finished.is_empty() {
                let on = WaitOn::new(WaitKind::Join, waiting.first_pending_id());
                match park_until(deadline, on) {
                    Wake::Woken => continue,
                    // Still take what finished up to now.
                    Wake::TimedOut => {
                        timed_out = true;
                        finished = waiting.take_finished();
                    }
                    Wake::Interrupted(i) => {
                        drop(waiting);
                        i.raise();
                    }
                }
            }
            for i in finished {
                if let Some(outcome) = waiting.poll(i) {
                    done.push((i, outcome));
                    if stop(&done) {
                        break;
                    }
                }
            }
        }
        waiting.into_joined(done)
    }
}

impl<T> fmt::Debug for JoinAll<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinAll")
            .field("handles", &self.handles)
            .field("timeout", &self.timeout)
            .field("count", &self.count)
            .field("fail_fast", &self.fail_fast)
            .finish()
    }
}

/// The handles a [`JoinAll`] waits on, each with its own waker: when its
/// greenlet completes, the waker records the index (so completions are seen
/// in the order they happen, each once) and wakes the joiner.
struct Waiting<T> {
    slots: Vec<Option<(JoinHandle<T>, Option<Waker>)>>,
    finished: Arc<Finished>,
}

/// Indices of the greenlets that completed since the joiner last looked.
struct Finished {
    indices: Mutex<Vec<usize>>,
    joiner: Waiter,
}

/// The waker registered in greenlet `index`'s join slot.
struct SlotWaker {
    index: usize,
    finished: Arc<Finished>,
}

impl std::task::Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Called once, by the hub that completes the greenlet (or never, if
        // the handle registers another waiter first). After the joiner
        // returned it records into a list nobody reads, and the wake-up is
        // spurious: harmless.
        lock(&self.finished.indices).push(self.index);
        self.finished.joiner.clone_waiter().wake();
    }
}

fn lock<V>(m: &Mutex<V>) -> std::sync::MutexGuard<'_, V> {
    // Greenhub's own lock: a contended wait blocks the thread, never parks
    // the greenlet (see `loom::Internal`).
    let _internal = crate::loom::Internal::enter();
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<T> Waiting<T> {
    fn new(handles: Vec<JoinHandle<T>>) -> Waiting<T> {
        Waiting {
            slots: handles.into_iter().map(|h| Some((h, None))).collect(),
            finished: Arc::new(Finished {
                indices: Mutex::new(Vec::new()),
                joiner: Waiter::current(),
            }),
        }
    }

    /// Polls handle `i` (registering its waker): its outcome if finished.
    fn poll(&mut self, i: usize) -> Option<Result<T, JoinError>> {
        let (handle, waker) = self.slots[i].as_mut()?;
        let waker = waker.get_or_insert_with(|| {
            Waker::from(Arc::new(SlotWaker {
                index: i,
                finished: self.finished.clone(),
            }))
        });
        match Pin::new(&mut *handle).poll(&mut Context::from_waker(waker)) {
            Poll::Ready(outcome) => {
                self.slots[i] = None;
                Some(outcome)
            }
            Poll::Pending => None,
        }
    }

    fn take_finished(&self) -> Vec<usize> {
        std::mem::take(&mut *lock(&self.finished.indices))
    }

    fn first_pending_id(&self) -> u64 {
        self.slots
            .iter()
            .flatten()
            .next()
            .map_or(0, |(h, _)| h.id().as_u64())
    }

    fn into_joined(self, done: Vec<(usize, Result<T, JoinError>)>) -> Joined<T> {
        let pending = self
            .slots
            .into_iter()
            .enumerate()
            .filter_map(|(i, slot)| slot.map(|(h, _)| (i, h)))
            .collect();
        Joined { done, pending }
    }
}

/// Counts a join for `inspect::Metrics`: on the caller's hub when it runs on
/// one, else on the joined greenlet's hub (if it ever started).
fn count_join(header: &crate::greenlet::task::Header) {
    use crate::hub::stats::{Outside, bump};
    match context::hub() {
        Some(hub) => bump(&hub.remote.stats.joins),
        None => {
            if let Some(owner) = header.owner() {
                Outside::count(&owner.outside_joins);
            }
        }
    }
}
