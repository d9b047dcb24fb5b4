//! `greenlet::Builder`: spawning with a name, a stack size, or a `Result`.

use std::io;
use std::panic::Location;
use std::sync::Arc;

use crate::greenlet::GreenletId;
use crate::greenlet::JoinHandle;
use crate::greenlet::runinfo::{RunRecord, coarse_now};
use crate::greenlet::task::{Header, Task, TaskRef};
use crate::hub::shared::{Mode, Shared};
use crate::hub::stats::{Outside, bump};
use crate::hub::{HubContext, context};
use crate::loom::Ordering::Relaxed;
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
    migratable: bool,
    /// A panic goes to `block_on` (`hub::escalate`).
    escalate: bool,
    /// Never migratable, whatever the runtime says (`block_on`'s greenlet).
    stay: bool,
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

    /// Lets the greenlet move to another hub after it has started (M:N
    /// runtimes only; pinned and single-threaded runtimes ignore it).
    ///
    /// By default a greenlet stays on the hub that first ran it
    /// (docs/ARCHITECTURE.md, 'The soundness rule'). That is what keeps the
    /// safe API sound, but a hub busy with CPU-bound work then holds on to its
    /// other greenlets while another hub idles: only greenlets that never ran
    /// can be stolen. A migratable greenlet that yields, or is woken while
    /// its hub has other greenlets ready, goes to the hub's stealable queue
    /// instead, and an idle hub may take it and resume it on its own thread.
    /// A hub that wakes it (a timer, a channel, its socket's event, which
    /// every hub's poller watches for it) runs it, whichever hub it last ran
    /// on.
    ///
    /// Not available to greenlets that call [`crate::spawn_local`] (it
    /// returns an error there, see [`Builder::spawn_local`]). A greenlet
    /// that is suspended while it unwinds (a destructor that blocks during a
    /// panic or kill) does not move until the unwinding is over.
    ///
    /// # Safety
    ///
    /// Resuming a greenlet on another OS thread moves everything on its
    /// stack to that thread. The caller promises that, at every point where
    /// the greenlet may block (any greenhub call that parks, sleeps, yields
    /// or does IO; with monkey patching, any hooked libc call), the greenlet
    /// holds nothing that is tied to the OS thread:
    ///
    /// - no `!Send` value that another thread could also reach (an `Rc`
    ///   shared with other code, a `RefCell` borrow of thread-local data),
    ///   and no guard of a lock that must be released by the thread that
    ///   took it (`std::sync::MutexGuard`, `RwLock` guards; greenhub's own
    ///   locks are fine);
    /// - no reference into a `thread_local!` (nor a `LocalKey::with` call in
    ///   progress), and no thread-local address the compiler may keep in a
    ///   register across the call: code that reads a thread-local both
    ///   before and after a blocking call in the same function must go
    ///   through an `#[inline(never)]` function for each read;
    /// - no C library state kept per thread (`errno` read after a blocking
    ///   call is fine; `strtok`-style buffers, OpenSSL's per-thread error
    ///   queue, a thread-bound database handle are not);
    /// - no assumption that `std::thread::current()` stays the same.
    ///
    /// `greenhub::local!` values travel with the greenlet, so they must be
    /// fine to use from another thread (in practice: `Send`).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = greenhub::Builder::new().hubs(2).build().unwrap();
    /// let total = rt.block_on(|| {
    ///     let hs: Vec<_> = (0..4u64)
    ///         .map(|k| {
    ///             // SAFETY: the closure keeps only integers across its
    ///             // sleeps: nothing tied to a thread.
    ///             unsafe { greenhub::greenlet::Builder::new().migratable() }
    ///                 .spawn(move || {
    ///                     let mut x = k;
    ///                     for _ in 0..3 {
    ///                         x = x.wrapping_mul(31).wrapping_add(7);
    ///                         greenhub::sleep(Duration::from_millis(1));
    ///                     }
    ///                     x
    ///                 })
    ///                 .unwrap()
    ///         })
    ///         .collect();
    ///     hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    /// });
    /// assert!(total > 0);
    /// ```
    pub unsafe fn migratable(mut self) -> Builder {
        self.migratable = true;
        self
    }

    /// Makes a panic of the greenlet stop the program: `escalate(true)` has
    /// the [`block_on`](crate::Runtime::block_on) (or [`run`](crate::run))
    /// running on its runtime kill its main greenlet and resume the panic,
    /// with its original payload, as gevent re-raises `SystemExit` from a
    /// greenlet in the main greenlet. To escalate a chosen error, panic with
    /// it (`std::panic::panic_any(MyFatal)`). A kill is not a failure and
    /// never escalates; nor does a failure to start (no stack), which `join`
    /// reports. Off by default.
    ///
    /// The greenlet's own [`JoinHandle`] then reports a panic whose payload
    /// is a copy of the original when that is a string (`&str` or `String`,
    /// what `panic!` makes), else a `&str` saying that the payload went to
    /// `block_on`. The first escalation wins: a second one, while the first
    /// has not been resumed yet, stays an ordinary panic of its greenlet.
    /// See [`Runtime::block_on`](crate::Runtime::block_on) for the rest.
    ///
    /// ```
    /// let caught = std::panic::catch_unwind(|| {
    ///     greenhub::run(|| {
    ///         let h = greenhub::greenlet::Builder::new()
    ///             .escalate(true)
    ///             .spawn(|| panic!("config missing"))
    ///             .unwrap();
    ///         // The main greenlet is killed out of this join.
    ///         let _ = h.join();
    ///         unreachable!("the main greenlet was killed");
    ///     })
    /// });
    /// let payload = caught.unwrap_err();
    /// assert_eq!(payload.downcast_ref::<&str>(), Some(&"config missing"));
    /// ```
    pub fn escalate(mut self, escalate: bool) -> Builder {
        self.escalate = escalate;
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
        let migratable = hub.current().is_some_and(|t| {
            // SAFETY: the hub holds an `Arc` to the greenlet it is running.
            unsafe { t.as_ref() }.header().migratable
        });
        if migratable {
            // Its `!Send` closure may share state (an `Rc`) with the caller,
            // which could move to another thread (docs/ARCHITECTURE.md,
            // 'The soundness rule', the migration opt-in).
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "greenhub::spawn_local called from a migratable greenlet: its !Send closure \
                 could share state with a greenlet that moves to another thread; spawn it \
                 from a greenlet that is not migratable, or use spawn",
            ));
        }
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
        let migratable = !local && self.wants_migration(&hub.shared);
        let (task, handle) = self.build(hub.next_id(), parent, hub.coarse_now(), migratable, f)?;
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
        let migratable = self.wants_migration(shared);
        let (task, handle) = self.build(
            GreenletId::next(),
            context::current_task_id(),
            coarse_now(),
            migratable,
            f,
        )?;
        Outside::count(&shared.outside.spawned);
        shared.note_created();
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
        // Placed on a hub on purpose (the server's per-hub acceptors): it
        // stays there even in a migrating runtime.
        let (task, handle) = self.build(
            GreenletId::next(),
            context::current_task_id(),
            coarse_now(),
            false,
            f,
        )?;
        match context::hub() {
            Some(hub) => bump(&hub.remote.stats.spawned),
            None => Outside::count(&shared.outside.spawned),
        }
        shared.note_created();
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
            shared.note_ended();
        }
        Ok(handle)
    }

    /// Whether the greenlet will be migratable: asked for (here or for the
    /// whole runtime) and meaningful (an M:N runtime).
    fn wants_migration(&self, shared: &Shared) -> bool {
        let yes = !self.stay && (self.migratable || shared.migrate_all) && shared.mode == Mode::MN;
        if yes && !shared.migrating.load(Relaxed) {
            shared.migrating.store(true, Relaxed);
        }
        yes
    }

    /// Keeps the greenlet on its first hub even in a runtime built with
    /// `Builder::migratable` (the main greenlet of `block_on`).
    pub(crate) fn stay_put(mut self) -> Builder {
        self.stay = true;
        self
    }

    #[track_caller]
    fn build<F, T>(
        self,
        id: GreenletId,
        parent: Option<GreenletId>,
        born: u64,
        migratable: bool,
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
                // At most `MAX_STACK_SIZE` (64 MiB), checked just above.
                size.max(MIN_STACK_SIZE) as u32
            }
        };
        let record = RunRecord::new(Location::caller(), parent, born);
        let name = self.name.map(String::into_boxed_str);
        let header = Header::new(
            id,
            name,
            stack_size,
            true,
            migratable,
            self.escalate,
            record,
        );
        let (task, join) = Task::new(header, f);
        Ok((task, JoinHandle::new(join)))
    }
}

fn outside_runtime(what: &str) -> io::Error {
    io::Error::other(format!(
        "greenhub::{what} called outside a greenhub runtime; start one with \
         greenhub::run or Runtime::block_on, or spawn through a runtime Handle"
    ))
}
