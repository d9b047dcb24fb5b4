//! Scoped greenlets: [`scope`], the greenlet twin of `std::thread::scope`.

use std::fmt;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::JoinError;
use crate::greenlet::{Greenlet, GreenletId, JoinHandle};
use crate::loom::SpinLock;
use crate::pool::Group;

/// Runs `f` with a [`Scope`] on which it can spawn greenlets that borrow
/// from the caller's stack, and returns `f`'s value once every greenlet
/// spawned in the scope has finished, like `std::thread::scope`.
///
/// - When `f` returns, `scope` waits for the greenlets still running.
/// - If a scoped greenlet panicked and was not [joined](ScopedJoinHandle::join),
///   `scope` panics after all have finished.
/// - If `f` unwinds (it panicked, or the caller was killed, or a
///   [`timeout`](crate::timeout) of the caller expired), or the caller is
///   killed (or times out) while `scope` waits, the scoped greenlets still
///   running are **killed**, and the unwinding goes on only after they all
///   finished: the scope is a unit of cancellation, and it never lets a
///   greenlet outlive the data it borrows.
///
/// Call it from a greenlet of a runtime (the greenlets are spawned on it);
/// it parks the caller while it waits, so it works in single-threaded mode
/// too. Off a runtime, [`Scope::spawn`] panics like [`crate::spawn`].
///
/// ```
/// use std::time::Duration;
///
/// greenhub::run(|| {
///     let words = vec!["green", "threads", "scale"];
///     let mut total = 0;
///     greenhub::scope(|s| {
///         let lens = s.spawn(|| words.iter().map(|w| w.len()).sum::<usize>());
///         s.spawn(|| {
///             greenhub::sleep(Duration::from_millis(5));
///             assert_eq!(words[0], "green"); // borrowed, not moved
///         });
///         total = lens.join().unwrap();
///     });
///     assert_eq!(total, 17);
///     assert_eq!(words.len(), 3);
/// });
/// ```
#[track_caller]
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    let scope = Scope {
        group: Group::new(),
        panics: Arc::new(AtomicUsize::new(0)),
        scope: PhantomData,
        env: PhantomData,
    };
    let guard = WaitOnUnwind(&scope.group);
    let value = f(&scope);
    // Wait as an ordinary blocking call: a kill or timeout raised here unwinds
    // into `guard`, which kills the rest and waits for them.
    if let Err(interrupt) = scope.group.wait_empty(None) {
        interrupt.raise();
    }
    drop(guard);
    if scope.panics.load(Ordering::Acquire) > 0 {
        panic!("greenhub::scope: a scoped greenlet panicked");
    }
    value
}

/// A scope to spawn greenlets in, given by [`scope`]. `'scope` is the
/// lifetime of the scope itself, `'env` that of the data its greenlets may
/// borrow (as in `std::thread::Scope`).
///
/// ```
/// greenhub::run(|| {
///     let mut counts = [0u32; 4];
///     greenhub::scope(|s| {
///         for (i, c) in counts.iter_mut().enumerate() {
///             s.spawn(move || *c = i as u32 * 10);
///         }
///     });
///     assert_eq!(counts, [0, 10, 20, 30]);
/// });
/// ```
pub struct Scope<'scope, 'env: 'scope> {
    group: Group,
    /// Panics of scoped greenlets that no `join` has reported yet.
    panics: Arc<AtomicUsize>,
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

/// Waits for the scope's greenlets when `scope` is left by unwinding.
struct WaitOnUnwind<'a>(&'a Group);

impl Drop for WaitOnUnwind<'_> {
    fn drop(&mut self) {
        // On the normal path the group is empty by now. With members left we
        // are unwinding (from `f`, or from the wait in `scope`): kill them,
        // and wait until they are gone. Blocking while unwinding is
        // supported, and kills or timeouts are not raised during it, so this
        // wait cannot be cut short.
        while !self.0.is_empty() {
            self.0.close();
            let _ = self.0.wait_empty(None);
        }
    }
}

/// The result slot shared by a scoped greenlet and its handle.
type Packet<T> = SpinLock<Option<Result<T, JoinError>>>;

/// What a scoped greenlet runs: `f`, its outcome stored in `packet`.
struct Child<F, T> {
    f: F,
    packet: Arc<Packet<T>>,
    panics: Arc<AtomicUsize>,
}

impl<F: FnOnce() -> T, T> Child<F, T> {
    fn run(self) {
        let Child { f, packet, panics } = self;
        let outcome = match panic::catch_unwind(AssertUnwindSafe(f)) {
            Ok(value) => Ok(value),
            Err(payload) if crate::greenlet::is_kill_payload(&*payload) => {
                // Killed: the greenlet ends here anyway.
                crate::error::drop_payload_safely(payload);
                Err(JoinError::killed())
            }
            Err(payload) => {
                panics.fetch_add(1, Ordering::AcqRel);
                Err(JoinError::panic(payload))
            }
        };
        *packet.lock() = Some(outcome);
    }
}

impl<'scope> Scope<'scope, '_> {
    /// Spawns a greenlet in the scope. It may borrow anything that outlives
    /// the scope; [`scope`] waits for it before returning.
    ///
    /// # Panics
    ///
    /// Outside a greenhub runtime, like [`crate::spawn`].
    ///
    /// ```
    /// greenhub::run(|| {
    ///     let data = [1, 2, 3];
    ///     let sum = greenhub::scope(|s| s.spawn(|| data.iter().sum::<i32>()).join().unwrap());
    ///     assert_eq!(sum, 6);
    /// });
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let packet = Arc::new(SpinLock::new(None));
        let child = Child {
            f,
            packet: packet.clone(),
            panics: self.panics.clone(),
        };
        let job: Box<dyn FnOnce() + Send + 'scope> = Box::new(move || child.run());
        // SAFETY: only the lifetime changes. `job` owns everything that borrows
        // for 'scope (`f` and `T`'s packet), and the group drops it (after
        // running it, or unrun if the greenlet is killed before it starts)
        // before the member's membership ends (`group::Member` field order and
        // `Child::run`, which drops all it owns before returning). `scope`
        // returns, and unwinds past its frame, only after the group is empty:
        // it waits on its normal path, and `WaitOnUnwind` waits on every
        // unwinding path (kills and timeouts are not raised while unwinding).
        // The one way the wait never ends is the owner blocked for good at
        // runtime shutdown, and then the hub leaks its stack: it is never
        // freed, nor is anything the borrowed data lives in (a greenlet's
        // closure is 'static, so non-'static data lives on its stack or is
        // owned from there). So no borrow is used after its data is gone.
        let job: Box<dyn FnOnce() + Send + 'static> = unsafe { std::mem::transmute(job) };
        let handle = self.group.spawn(job);
        ScopedJoinHandle {
            handle,
            packet,
            panics: self.panics.clone(),
            _scope: PhantomData,
        }
    }
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("running", &self.group.len())
            .finish_non_exhaustive()
    }
}

/// An owned permission to join a scoped greenlet, like
/// `std::thread::ScopedJoinHandle`. Dropping it does not detach anything:
/// the scope still waits for the greenlet.
///
/// ```
/// greenhub::run(|| {
///     greenhub::scope(|s| {
///         let h = s.spawn(|| 40 + 2);
///         assert_eq!(h.join().unwrap(), 42);
///     });
/// });
/// ```
pub struct ScopedJoinHandle<'scope, T> {
    handle: JoinHandle<()>,
    packet: Arc<Packet<T>>,
    panics: Arc<AtomicUsize>,
    _scope: PhantomData<&'scope ()>,
}

impl<T> ScopedJoinHandle<'_, T> {
    /// Waits for the greenlet and returns its value, or why there is none
    /// (see [`JoinHandle::join`]). A panic reported here no longer makes the
    /// scope panic.
    ///
    /// ```
    /// greenhub::run(|| {
    ///     greenhub::scope(|s| {
    ///         let bad = s.spawn(|| -> u8 { panic!("handled") });
    ///         assert!(bad.join().unwrap_err().is_panic());
    ///     }); // does not panic: the panic was joined
    /// });
    /// ```
    pub fn join(self) -> Result<T, JoinError> {
        let ScopedJoinHandle {
            handle,
            packet,
            panics,
            ..
        } = self;
        let joined = handle.join();
        let outcome = packet.lock().take();
        match outcome {
            Some(Err(e)) if e.is_panic() => {
                panics.fetch_sub(1, Ordering::AcqRel);
                Err(e)
            }
            Some(outcome) => outcome,
            // Never ran (killed before it started, or no stack for it).
            None => Err(joined.err().unwrap_or_else(JoinError::killed)),
        }
    }

    /// Whether the greenlet has finished.
    ///
    /// ```
    /// greenhub::run(|| {
    ///     greenhub::scope(|s| {
    ///         let h = s.spawn(|| ());
    ///         while !h.is_finished() {
    ///             greenhub::yield_now();
    ///         }
    ///     });
    /// });
    /// ```
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Kills the greenlet (see [`JoinHandle::kill`]).
    ///
    /// ```
    /// greenhub::run(|| {
    ///     greenhub::scope(|s| {
    ///         let h = s.spawn(|| greenhub::sleep(std::time::Duration::from_secs(3600)));
    ///         h.kill();
    ///         assert!(h.join().unwrap_err().is_killed());
    ///     });
    /// });
    /// ```
    pub fn kill(&self) {
        self.handle.kill()
    }

    /// A handle to the greenlet.
    ///
    /// ```
    /// greenhub::run(|| {
    ///     greenhub::scope(|s| {
    ///         let h = s.spawn(|| greenhub::current().id());
    ///         let id = h.greenlet().id();
    ///         assert_eq!(h.join().unwrap(), id);
    ///     });
    /// });
    /// ```
    pub fn greenlet(&self) -> Greenlet {
        self.handle.greenlet()
    }

    /// The greenlet's id.
    ///
    /// ```
    /// greenhub::run(|| {
    ///     greenhub::scope(|s| {
    ///         let h = s.spawn(|| greenhub::current().id());
    ///         let id = h.id();
    ///         assert_eq!(h.join().unwrap(), id);
    ///     });
    /// });
    /// ```
    pub fn id(&self) -> GreenletId {
        self.handle.id()
    }
}

impl<T> fmt::Debug for ScopedJoinHandle<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedJoinHandle")
            .field("id", &self.id())
            .field("finished", &self.is_finished())
            .finish()
    }
}
