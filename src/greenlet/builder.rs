//! `greenlet::Builder`: spawning with a name, a stack size, or a `Result`.

use std::io;
use std::panic::Location;
use std::sync::Arc;

use crate::greenlet::GreenletId;
use crate::greenlet::JoinHandle;
use crate::greenlet::task::{Header, Task, TaskRef};
use crate::greenlet::trace::{Trace, coarse_now};
use crate::hub::{HubContext, context};
use crate::inspect::counters::{Outside, bump};
use crate::runtime::shared::Shared;
use crate::stack::{MIN_STACK_SIZE, class_for};

/// Configures a greenlet before spawning it, like `std::thread::Builder`.
///
/// ```
/// greenhub::run(|| {
///     let h = greenhub::greenlet::Builder::new()
///         .name("fetcher".to_string())
///         .stack_size(64 * 1024)
///         .spawn(|| greenhub::current().name().unwrap().to_string())
///         .expect("spawn failed");
///     assert_eq!(h.join().unwrap(), "fetcher");
/// });
/// ```
#[derive(Debug, Default)]
#[must_use = "a Builder does nothing until `spawn` is called"]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder with no name and the runtime's default stack size.
    ///
    /// ```
    /// let _b = greenhub::greenlet::Builder::new();
    /// ```
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the greenlet. The name shows in [`Greenlet::name`](crate::Greenlet::name),
    /// in debug output and in the stack-overflow report.
    ///
    /// ```
    /// let _b = greenhub::greenlet::Builder::new().name("conn-42".into());
    /// ```
    pub fn name(mut self, name: String) -> Builder {
        self.name = Some(name);
        self
    }

    /// Sets the usable stack size in bytes. It is rounded up to a power of
    /// two of at least 16 KiB; more than 64 MiB is refused by `spawn` with an
    /// `InvalidInput` error. Only touched pages cost memory.
    ///
    /// ```
    /// let _b = greenhub::greenlet::Builder::new().stack_size(1 << 20);
    /// ```
    pub fn stack_size(mut self, size: usize) -> Builder {
        self.stack_size = Some(size);
        self
    }

    /// Spawns the greenlet on the current runtime (see [`crate::spawn`]).
    ///
    /// # Errors
    ///
    /// Fails when called outside a greenhub runtime or with an invalid stack
    /// size. A greenlet that cannot get a stack when it first runs (a memory
    /// or mapping limit) is reported by its [`JoinHandle::join`] instead.
    ///
    /// ```
    /// // Outside a runtime, spawning is an error rather than a panic:
    /// assert!(greenhub::greenlet::Builder::new().spawn(|| ()).is_err());
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let hub = context::hub().ok_or_else(|| outside_runtime("spawn"))?;
        self.spawn_on_hub(hub, f, false)
    }

    /// Spawns a greenlet that stays on the current hub, from a closure that
    /// need not be `Send` (see [`crate::spawn_local`]).
    ///
    /// # Errors
    ///
    /// Fails off a hub thread, or with an invalid stack size.
    ///
    /// ```
    /// use std::rc::Rc;
    /// greenhub::run(|| {
    ///     let rc = Rc::new(5);
    ///     let h = greenhub::greenlet::Builder::new()
    ///         .spawn_local(move || *rc + 1)
    ///         .unwrap();
    ///     assert_eq!(h.join().unwrap(), 6);
    /// });
    /// ```
    #[track_caller]
    pub fn spawn_local<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let hub = context::hub().ok_or_else(|| outside_runtime("spawn_local"))?;
        self.spawn_on_hub(hub, f, true)
    }

    #[track_caller]
    fn spawn_on_hub<F, T>(self, hub: &HubContext, f: F, local: bool) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        // SAFETY: the hub holds an `Arc` to the greenlet it is running.
        let parent = hub.current().map(|t| unsafe { t.as_ref() }.header().id);
        let (task, handle) = self.build(hub.next_id(), parent, hub.coarse_now(), f)?;
        hub.spawn(task, local);
        Ok(handle)
    }

    /// Spawns onto `shared`'s runtime from anywhere.
    #[track_caller]
    pub(crate) fn spawn_on<F, T>(self, shared: &Arc<Shared>, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        if let Some(hub) = context::hub() {
            if Arc::ptr_eq(&hub.shared, shared) {
                return self.spawn_on_hub(hub, f, false);
            }
        }
        let (task, handle) = self.build(
            GreenletId::next(),
            context::current_task_id(),
            coarse_now(),
            f,
        )?;
        Outside::count(&shared.outside.spawned);
        shared.inject(task);
        Ok(handle)
    }

    /// Spawns onto hub `index` of `shared`'s runtime, from anywhere: the
    /// greenlet starts on that hub and, like every started greenlet, stays
    /// there. It goes through the hub's inbox into its `ready` queue, which
    /// no other hub steals from (single and pinned mode put every new
    /// greenlet there too). After shutdown it never runs and its handle
    /// reports it killed. For `server`'s one-acceptor-per-hub.
    #[cfg(not(loom))]
    #[track_caller]
    pub(crate) fn spawn_to_hub<F, T>(
        self,
        shared: &Arc<Shared>,
        index: usize,
        f: F,
    ) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (task, handle) = self.build(
            GreenletId::next(),
            context::current_task_id(),
            coarse_now(),
            f,
        )?;
        match context::hub() {
            Some(hub) => bump(&hub.remote.stats.spawned),
            None => Outside::count(&shared.outside.spawned),
        }
        let refused = if shared.shutdown.load(crate::loom::Ordering::Acquire) {
            Err(task)
        } else {
            // A shutdown that begins after the check finds the greenlet in
            // the inbox or `ready` (the hub cancels unstarted greenlets from
            // both); `pending` counts it like any inbox item meanwhile.
            shared.hubs[index].try_push(task)
        };
        if let Err(task) = refused {
            // SAFETY: the greenlet was never queued (or was given back by
            // the closed inbox); we own it.
            unsafe { task.cancel(crate::error::JoinError::killed()) };
        }
        Ok(handle)
    }

    #[track_caller]
    fn build<F, T>(
        self,
        id: GreenletId,
        parent: Option<GreenletId>,
        born: u64,
        f: F,
    ) -> io::Result<(TaskRef, JoinHandle<T>)>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let stack_size = match self.stack_size {
            None => 0,
            Some(size) => {
                class_for(size)?;
                size.max(MIN_STACK_SIZE)
            }
        };
        let trace = Trace::new(Location::caller(), parent, born);
        let name = self.name.map(String::into_boxed_str);
        let header = Header::new(id, name, stack_size, true, trace);
        let task = Task::new(header, f);
        let handle = JoinHandle::new(task.clone());
        Ok((task, handle))
    }
}

fn outside_runtime(what: &str) -> io::Error {
    io::Error::other(format!(
        "greenhub::{what} called outside a greenhub runtime; start one with \
         greenhub::run or Runtime::block_on, or spawn through a runtime Handle"
    ))
}
