//! `JoinHandle`: waiting for a greenlet's outcome, and killing it.

use std::fmt;
use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::error::JoinError;
use crate::greenlet::runinfo::{WaitKind, WaitOn};
use crate::greenlet::task::{Header, JoinTarget, RawTask, TaskRef};
use crate::greenlet::wait::{Wake, park_until};
use crate::greenlet::waiter::WaiterKey;
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
    task: Arc<dyn JoinTarget<T>>,
    registered: Option<WaiterKey>,
    taken: bool,
    /// `T` may be `!Send` (from `spawn_local`): the handle is `Send` only when
    /// `T` is (see the impls below).
    _marker: PhantomData<*const T>,
}

// SAFETY: the handle gives access to `T` only through `join`, which moves it
// to the caller; sending the handle sends the right to receive a `T`, which is
// fine exactly when `T: Send`. The task itself is `Send + Sync`.
unsafe impl<T: Send> Send for JoinHandle<T> {}
// SAFETY: `&JoinHandle` methods never touch `T` (id, name, state, kill).
unsafe impl<T: Send> Sync for JoinHandle<T> {}

impl<T> JoinHandle<T> {
    pub(crate) fn new(task: Arc<dyn JoinTarget<T>>) -> JoinHandle<T> {
        JoinHandle {
            task,
            registered: None,
            taken: false,
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
        if self.taken {
            return Some(Err(JoinError::io(io::Error::other(
                "greenhub: this greenlet was already joined",
            ))));
        }
        if context::current_task_ptr() == Some(self.addr()) {
            return Some(Err(JoinError::io(io::Error::new(
                io::ErrorKind::Deadlock,
                "greenhub: a greenlet cannot join itself",
            ))));
        }
        loop {
            // SAFETY: we are the single handle and have not taken the outcome.
            if let Some(outcome) = unsafe { self.task.poll_join(&mut self.registered) } {
                self.taken = true;
                count_join(self.header());
                return Some(outcome);
            }
            // A registration left behind by a timeout only costs the
            // completer a spurious wake-up of this waiter.
            let on = WaitOn::new(WaitKind::Join, self.id().as_u64());
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
        if self.header().state.kill() {
            let task: TaskRef = self.task.clone();
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
        Greenlet::from_task(self.task.clone())
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
        self.header().name.as_deref()
    }

    fn header(&self) -> &Header {
        let task: &dyn RawTask = &*self.task;
        task.header()
    }

    fn addr(&self) -> usize {
        Arc::as_ptr(&self.task) as *const () as usize
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
        if this.taken {
            return Poll::Ready(Err(JoinError::io(io::Error::other(
                "greenhub: this greenlet was already joined",
            ))));
        }
        if context::current_task_ptr() == Some(this.addr()) {
            // Polled on the greenlet itself (inside `future::block_on`): it
            // would wait for its own end.
            return Poll::Ready(Err(JoinError::io(io::Error::new(
                io::ErrorKind::Deadlock,
                "greenhub: a greenlet cannot join itself",
            ))));
        }
        // SAFETY: we are the single handle and have not taken the outcome.
        match unsafe { this.task.poll_join_waker(&mut this.registered, cx.waker()) } {
            Some(outcome) => {
                this.taken = true;
                count_join(this.header());
                Poll::Ready(outcome)
            }
            None => Poll::Pending,
        }
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if !self.taken {
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
/// (none without a timeout).
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
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let mut done = Vec::new();
    let mut pending = Vec::new();
    for mut h in handles {
        match h.join_until(deadline) {
            Some(outcome) => done.push(outcome),
            None => pending.push(h),
        }
    }
    (done, pending)
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
