//! `JoinHandle`: waiting for a greenlet's outcome, and killing it.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::error::JoinError;
use crate::greenlet::task::{Header, JoinTarget, RawTask, TaskRef};
use crate::greenlet::waiter::WaiterKey;
use crate::greenlet::{Greenlet, GreenletId, park};
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
        if context::current_task_ptr() == Some(self.addr()) {
            return Err(JoinError::io(io::Error::new(
                io::ErrorKind::Deadlock,
                "greenhub: a greenlet cannot join itself",
            )));
        }
        loop {
            // SAFETY: we are the single handle and have not taken the outcome.
            if let Some(outcome) = unsafe { self.task.poll_join(&mut self.registered) } {
                self.taken = true;
                return outcome;
            }
            park();
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
