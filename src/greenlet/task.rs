//! The greenlet control block: one allocation per greenlet, and one more
//! while it is started.
//!
//! A greenlet is a `Task<F, T>`: a non-generic [`Header`] (reference count,
//! state word, id, name, owning hub, spawn record) followed by the closure
//! `F` (until it starts) and the [`Completion`] slots for its output `T`, in
//! one block from greenhub's task-block allocator (`greenlet::alloc`). Hubs
//! and wakers hold it type-erased as a [`TaskRef`] (`TaskArc<dyn RawTask>`);
//! its `JoinHandle` as `TaskArc<dyn JoinTarget<T>>`. [`TaskArc`] is `Arc`
//! with the count in the header and the block from that allocator.
//!
//! An unstarted greenlet is only its header and boxed closure: no stack, no
//! coroutine. The hub that first runs it (possibly one that stole it) takes
//! a pooled stack, makes its run block ([`Running`]: coroutine, yielder,
//! stack bounds, per-stack state, wait record), builds the coroutine there
//! and becomes its owner for good (docs/ARCHITECTURE.md, 'The soundness
//! rule': a started greenlet never changes thread), unless the greenlet was
//! spawned with the `unsafe` migration opt-in (`hub::migrate`). When the
//! greenlet finishes, its hub frees the run block with the stack, so a
//! greenlet waiting for its joiner holds only the first block.

use std::alloc::Layout;
use std::cell::UnsafeCell as StdUnsafeCell;
use std::marker::PhantomData;
use std::ops::Deref;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{
    AtomicBool as StdAtomicBool, AtomicPtr as StdAtomicPtr, AtomicUsize as StdAtomicUsize, Ordering,
};

use corosensei::{Coroutine, Yielder};

use crate::error::JoinError;
use crate::greenlet::GreenletId;
use crate::greenlet::completion::Completion;
use crate::greenlet::reason::KillReason;
use crate::greenlet::runinfo::{RunRecord, WaitRecord};
use crate::greenlet::stack_state::StackState;
use crate::greenlet::state::State;
use crate::greenlet::waiter::WaiterKey;
use crate::hub::HubContext;
use crate::hub::remote::HubRemote;
use crate::stack::Stack;

/// A type-erased greenlet, as hubs, queues and wakers hold it.
pub(crate) type TaskRef = TaskArc<dyn RawTask>;

/// A counted reference to a greenlet's task block: `Arc<P>` where `P` is a
/// `Task<F, T>` seen through one of its traits, with the count in the
/// [`Header`] (no second, weak count) and the block from
/// `greenlet::alloc`. The last reference drops the task and frees the block,
/// on whatever thread it is.
pub(crate) struct TaskArc<P: ?Sized> {
    /// Points at a live `Task<F, T>` (so at its `Header`: `#[repr(C)]`,
    /// header first) allocated by `Task::new`, of which we own one count.
    ptr: NonNull<P>,
    _owns: PhantomData<P>,
}

// SAFETY: as `Arc<P>`: the task is shared, so it must be `Send + Sync` (both
// `dyn RawTask` and `dyn JoinTarget<T>` are, by the traits' bounds).
unsafe impl<P: ?Sized + Send + Sync> Send for TaskArc<P> {}
// SAFETY: as above.
unsafe impl<P: ?Sized + Send + Sync> Sync for TaskArc<P> {}
// The task is never moved through the reference (as `Arc`).
impl<P: ?Sized> Unpin for TaskArc<P> {}

impl<P: ?Sized> TaskArc<P> {
    #[inline(always)]
    fn count(&self) -> &StdAtomicUsize {
        // SAFETY: `ptr` points at a live task whose first field is its header
        // (`TaskArc`'s invariant), kept alive by our count.
        unsafe { &(*self.ptr.as_ptr().cast::<Header>()).refs }
    }

    /// The task's address (its identity, as `Arc::as_ptr`).
    #[inline]
    pub(crate) fn as_ptr(this: &Self) -> *const P {
        this.ptr.as_ptr()
    }

    /// A new reference to the task at `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` is the pointer of a live `TaskArc<P>` (kept alive by someone
    /// for the duration of this call).
    #[inline]
    pub(crate) unsafe fn clone_from_raw(ptr: NonNull<P>) -> TaskArc<P> {
        let borrowed = std::mem::ManuallyDrop::new(TaskArc {
            ptr,
            _owns: PhantomData,
        });
        TaskArc::clone(&borrowed)
    }
}

impl<T> TaskArc<dyn JoinTarget<T>> {
    /// A new reference to the same greenlet, as hubs hold it.
    pub(crate) fn to_task_ref(&self) -> TaskRef {
        let new = std::mem::ManuallyDrop::new(self.clone());
        let ptr: NonNull<dyn RawTask> = new.ptr;
        // The count taken by `clone` moves to the new reference.
        TaskArc {
            ptr,
            _owns: PhantomData,
        }
    }
}

impl<P: ?Sized> Clone for TaskArc<P> {
    #[inline]
    fn clone(&self) -> TaskArc<P> {
        // Relaxed as in `Arc::clone`: a new reference is made from an
        // existing one, which already orders access to the task.
        let old = self.count().fetch_add(1, Ordering::Relaxed);
        if old > isize::MAX as usize {
            std::process::abort();
        }
        TaskArc {
            ptr: self.ptr,
            _owns: PhantomData,
        }
    }
}

impl<P: ?Sized> Deref for TaskArc<P> {
    type Target = P;

    #[inline(always)]
    fn deref(&self) -> &P {
        // SAFETY: the task is alive while we hold a count; it is shared
        // (only `&` access through it).
        unsafe { self.ptr.as_ref() }
    }
}

impl<P: ?Sized> Drop for TaskArc<P> {
    #[inline]
    fn drop(&mut self) {
        // Release/acquire as in `Arc::drop`: every use of the task through
        // another reference happens before the drop below.
        if self.count().fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        std::sync::atomic::fence(Ordering::Acquire);
        // SAFETY: the task is alive (our count) and of the concrete type the
        // vtable describes, so its layout is that of the allocation.
        let layout = Layout::for_value(unsafe { self.ptr.as_ref() });
        // SAFETY: ours was the last count: nobody else references the task.
        // It was written by `Task::new`, and is dropped once, here.
        unsafe { std::ptr::drop_in_place(self.ptr.as_ptr()) };
        // SAFETY: the block came from `alloc::alloc(layout)` in `Task::new`
        // (same concrete type, so same layout); its contents are dropped and
        // no reference to it remains.
        unsafe { crate::greenlet::alloc::free(self.ptr.cast(), layout) };
    }
}

/// Why a greenlet handed control back to its hub.
pub(crate) enum Suspend {
    /// Put me at the back of the run queue.
    Yield,
    /// Park me, unless a wake-up arrived since I checked (the hub's final CAS).
    Park,
    /// Never resume me: forget my stack (leaked, never reused) and complete
    /// me as killed (`greenlet::abandon_current`: the `patch` hooks' way to
    /// end a killed greenlet that cannot unwind).
    #[cfg_attr(not(all(feature = "patch", not(loom))), allow(dead_code))]
    Abandon,
}

/// What a hub passes to a greenlet each time it resumes it: the hub itself
/// (docs/ARCHITECTURE.md, 'Thread-locals across a switch': the runtime does
/// not rely on thread-locals across a switch; code after a suspend uses this
/// pointer, not a cached TLS read).
#[derive(Clone, Copy)]
pub(crate) struct HubRef(NonNull<HubContext>);

impl HubRef {
    pub(crate) fn new(hub: &HubContext) -> HubRef {
        HubRef(NonNull::from(hub))
    }

    /// The hub that resumed the greenlet.
    pub(crate) fn get<'a>(self) -> &'a HubContext {
        // SAFETY: a hub only resumes greenlets from inside its run loop, and
        // its context outlives every greenlet it runs (it unwinds or leaks
        // them before returning), so the pointer is valid while the greenlet
        // runs; the greenlet does not keep it past its next suspend.
        unsafe { self.0.as_ref() }
    }
}

pub(crate) type Coro = Coroutine<HubRef, Suspend, (), Stack>;
pub(crate) type GreenletYielder = Yielder<HubRef, Suspend>;

/// The non-generic part of every greenlet.
pub(crate) struct Header {
    /// The number of `TaskArc`s (see [`TaskArc`]).
    refs: StdAtomicUsize,
    pub(crate) state: State,
    pub(crate) id: GreenletId,
    /// Boxed twice so that the header holds one word for it (most
    /// greenlets have no name): see [`Header::name`].
    name: Option<Box<Box<str>>>,
    /// Requested stack size in bytes, 0 for the runtime's default (at most
    /// `MAX_STACK_SIZE`, checked at spawn, so 32 bits hold it).
    pub(crate) stack_size: u32,
    /// The hub that runs the greenlet: null until a hub starts it, then
    /// that hub; for a migratable greenlet, the hub that last adopted it.
    /// Holds one strong count of that hub's `Arc` (released on change and in
    /// `Drop`). See [`Header::owner`] for who may read and write it.
    owner: StdAtomicPtr<HubRemote>,
    /// Spawned with the `unsafe` migration opt-in: once started, it may be
    /// resumed by another hub of its runtime (`hub::migrate`). Immutable.
    pub(crate) migratable: bool,
    /// Spawned with `Builder::escalate(true)`: a panic of the greenlet is
    /// resumed by `block_on` (`hub::escalate`). Immutable.
    pub(crate) escalate: bool,
    /// The reason of `JoinHandle::kill_with`, for `join` (`greenlet::reason`).
    pub(crate) kill_reason: KillReason,
    /// Set by the owning hub each time the greenlet suspends: whether the
    /// hub's thread was panicking then, i.e. the greenlet (or another one of
    /// that hub) is suspended mid-unwind. std counts panics per OS thread, so
    /// such a greenlet must not move (`hub::migrate`).
    pub(crate) suspended_unwinding: StdAtomicBool,
    /// What only a started greenlet has ([`Running`]): null until a hub
    /// starts it, and again once its coroutine is gone. Hub-owned, as the
    /// coroutine inside it: see `Header`'s `Sync` argument.
    run: StdUnsafeCell<*mut Running>,
    /// Index in its live set: its hub's, or for a migratable greenlet the
    /// runtime's shared one (`Shared::migrants`).
    pub(crate) live_slot: StdAtomicUsize,
    /// Spawn site, parent and age, for the run-info dump (what it waits on
    /// is in [`Running`]).
    pub(crate) record: RunRecord,
    /// The greenlet's `tracing` span, entered while it runs.
    #[cfg(feature = "tracing")]
    pub(crate) span: tracing::Span,
}

/// The part of a greenlet that exists only while it is started: its
/// coroutine (which owns its stack), its yielder, where its stack and guard
/// are, its per-stack state and what it last parked on.
///
/// It is a block of its own, from the task-block allocator, made by the hub
/// that starts the greenlet and freed by the hub that finishes it, so that a
/// greenlet that is spawned but not started yet, or finished but not joined
/// yet, costs only its header, closure and output slot (136 bytes moved out
/// of the header for one pointer to this block; the figures are in
/// benches/compare/PROFILE.md, "The run state apart"). A hub starts
/// and finishes greenlets one after another, so these blocks cycle through
/// its allocator cache and stay warm.
///
/// Who touches it: the hub that owns the greenlet and the greenlet itself,
/// on that hub's thread (`Header`'s `Sync` argument); a migratable
/// greenlet's new hub after the hand-over (`hub::migrate`).
pub(crate) struct Running {
    /// The coroutine; `None` only before `RawTask::start` stores it and
    /// after the hub took it out to finish or leak the greenlet.
    coroutine: Option<Coro>,
    /// The greenlet's yielder, set by the greenlet when it starts. Only the
    /// greenlet itself reads it.
    yielder: *const GreenletYielder,
    /// Guard range and usable size of the stack, for the overflow report.
    stack_info: StackInfo,
    /// The per-stack state of whatever stack of this greenlet runs: its
    /// `greenhub::timeout` deadline, its `greenhub::local!` values, its
    /// `no_switch` depth (`greenlet::stack_state`). Only the greenlet itself
    /// touches it; raw greenlets running inside it exchange their own state
    /// with it around each switch. Its locals are emptied at the end of the
    /// closure in `Task::start`.
    stack: StackState,
    /// What the greenlet last parked on, for the run-info dump: written by
    /// the greenlet, read by its hub while it is suspended, on one thread
    /// (see `greenlet::runinfo`).
    wait: WaitRecord,
}

// The header's budget (see `Running`): every spawned greenlet carries it
// until it is joined, so growing it shows in the page faults of a million
// spawns. The `tracing` feature adds the span; loom's atomics are larger.
#[cfg(not(any(feature = "tracing", loom)))]
const _: () = assert!(std::mem::size_of::<Header>() <= 96);

/// Where a running greenlet's stack and guard are.
#[derive(Clone, Copy, Default)]
pub(crate) struct StackInfo {
    pub(crate) guard_lo: usize,
    pub(crate) guard_hi: usize,
    pub(crate) usable: usize,
}

// SAFETY: `Header` is shared between threads through `Arc`. Its atomic and
// immutable fields are Sync. The `run` cell, and the run block it points at,
// are reached only as follows. The block's `stack` state is only touched by
// the greenlet itself, which runs on one thread once started (the block does
// not exist before it starts). Its `locals` hold `!Send` values, but they are
// created by the greenlet on its (fixed) thread, dropped by it on that thread
// at the end of `Task::start`'s closure; a leaked greenlet's values are
// forgotten, never dropped elsewhere (`LocalMap`'s `Drop`; a leaked
// greenlet's run block is never freed). The block's `wait` record is written
// by the greenlet before it parks and read by its own hub while it is
// parked, on the greenlet's one thread. The `run` cell and the block's
// `coroutine`, `yielder` and `stack_info` are only touched by the hub that
// owns the greenlet, on that hub's thread, while the greenlet is dequeued or
// running there (the state protocol gives that hub exclusive use), and by
// the greenlet itself, which runs on that same thread. The coroutine is
// created on the owner hub and never leaves it (started greenlets do not
// migrate), and it is removed (completed, unwound or leaked) by that hub
// before the last `Arc` can drop elsewhere (the hub's live set holds an
// `Arc` until then). The one exception is a greenlet spawned with the
// `unsafe` migration opt-in: its spawner promised that nothing on its stack
// is tied to a thread, and it moves (with its run block) only while
// suspended, with the park's final CAS and the waker's `PARKED ->
// SCHEDULED` (release/acquire on the state word), then a queue's
// release/acquire, between the old hub's last touch and the new hub's first
// (`hub::migrate`); a queue or the shared live set holds an `Arc`
// throughout, so the rule above holds for whichever hub owns it last. A hub
// answering a dump also reads such a greenlet's `run` cell and `wait` record
// from another thread, under the shared live set's lock, which orders it
// with `begin_run` and `end_run` (`Header::wait_record`); the record's
// fields are atomics.
unsafe impl Sync for Header {}
// SAFETY: as above; the `!Send` coroutine never moves between threads because
// only its owning hub creates, resumes and removes it.
unsafe impl Send for Header {}

impl Header {
    /// Inlined into the spawn path: out of line, the header was built on
    /// the stack and copied (36 instructions per spawn).
    #[inline]
    pub(crate) fn new(
        id: GreenletId,
        name: Option<Box<str>>,
        stack_size: u32,
        join_interest: bool,
        migratable: bool,
        escalate: bool,
        record: RunRecord,
    ) -> Header {
        #[cfg(feature = "tracing")]
        let span = crate::greenlet::tracing::greenlet_span(
            id,
            name.as_deref(),
            record.site,
            record.parent,
        );
        Header {
            refs: StdAtomicUsize::new(0),
            state: State::new(join_interest),
            id,
            name: name.map(Box::new),
            stack_size,
            owner: StdAtomicPtr::new(std::ptr::null_mut()),
            migratable,
            escalate,
            kill_reason: KillReason::new(),
            suspended_unwinding: StdAtomicBool::new(false),
            run: StdUnsafeCell::new(std::ptr::null_mut()),
            live_slot: StdAtomicUsize::new(usize::MAX),
            #[cfg(feature = "tracing")]
            span,
            record,
        }
    }

    /// The hub that owns this greenlet, once it has started.
    ///
    /// The owner is written only by a hub that has the greenlet dequeued
    /// (it starts it, or adopts a migratable one it took from a stealable
    /// queue: `set_owner`/`migrate_to`), and read by that hub, by a waker
    /// that has just moved the greenlet `PARKED -> SCHEDULED` (nobody has it
    /// dequeued then, and the waker takes its own `Arc` before queueing it,
    /// see `hub::schedule`), or after `COMPLETE`. So no read overlaps a
    /// change, and the reference stays valid while `self` does.
    #[inline]
    pub(crate) fn owner(&self) -> Option<&HubRemote> {
        // SAFETY: a non-null pointer came from `Arc::into_raw` and the header
        // holds that strong count until it replaces or drops it, which only
        // happens when no reader can overlap (above).
        unsafe { self.owner.load(Ordering::Acquire).as_ref() }
    }

    /// [`owner`](Self::owner) as a new `Arc`.
    pub(crate) fn owner_arc(&self) -> Option<Arc<HubRemote>> {
        let p = self.owner.load(Ordering::Acquire);
        if p.is_null() {
            return None;
        }
        // SAFETY: as in `owner`; we add one strong count for the new Arc.
        unsafe {
            Arc::increment_strong_count(p);
            Some(Arc::from_raw(p))
        }
    }

    /// The greenlet's name, if it was given one.
    #[inline]
    pub(crate) fn name(&self) -> Option<&str> {
        self.name.as_deref().map(|n| &**n)
    }

    /// Whether a hub has started this greenlet.
    #[inline]
    pub(crate) fn is_started(&self) -> bool {
        !self.owner.load(Ordering::Acquire).is_null()
    }

    /// Claims the greenlet for `hub`. Called once, by the hub that starts it.
    pub(crate) fn set_owner(&self, hub: Arc<HubRemote>) {
        let prev = self
            .owner
            .swap(Arc::into_raw(hub).cast_mut(), Ordering::AcqRel);
        assert!(prev.is_null(), "greenhub: greenlet started twice");
    }

    /// Moves a started, migratable greenlet to `hub`.
    ///
    /// # Safety
    ///
    /// Only a hub that has the greenlet dequeued (see [`owner`](Self::owner)).
    pub(crate) unsafe fn migrate_to(&self, hub: Arc<HubRemote>) {
        let prev = self
            .owner
            .swap(Arc::into_raw(hub).cast_mut(), Ordering::AcqRel);
        if !prev.is_null() {
            // SAFETY: the strong count the header held for the old owner;
            // no reader can hold a reference derived from it (see `owner`).
            drop(unsafe { Arc::from_raw(prev) });
        }
    }

    /// Makes the run block of a greenlet about to start, its stack at
    /// `info`; [`RawTask::start`] then stores the coroutine in it.
    ///
    /// # Safety
    ///
    /// Only the owning hub, once, before the first resume.
    pub(crate) unsafe fn begin_run(&self, info: StackInfo) {
        let block = crate::greenlet::alloc::alloc(Layout::new::<Running>()).cast::<Running>();
        // SAFETY: a fresh block with the size and alignment of `Running`,
        // owned by us; the caller has exclusive use of the cell, which is
        // still null (a greenlet starts once).
        unsafe {
            block.as_ptr().write(Running {
                coroutine: None,
                yielder: std::ptr::null(),
                stack_info: info,
                stack: StackState::new(),
                wait: WaitRecord::new(),
            });
            debug_assert!(
                (*self.run.get()).is_null(),
                "greenhub: greenlet started twice"
            );
            *self.run.get() = block.as_ptr();
        }
    }

    /// The run block. Only while the greenlet is started (between
    /// `begin_run` and `end_run`/`leak_run`), by the owning hub or the
    /// greenlet, on their thread.
    #[inline(always)]
    fn running(&self) -> *mut Running {
        // SAFETY: the cell is written only by the owning hub, on this
        // thread, while the greenlet is not running (see the callers; a
        // dump's read from another hub is ordered by a lock, see
        // `wait_record`).
        let run = unsafe { *self.run.get() };
        debug_assert!(
            !run.is_null(),
            "greenhub: run state of a greenlet that is not started"
        );
        run
    }

    /// Frees the run block of a greenlet that finished, once its coroutine
    /// has been taken out (its stack is back in the pool).
    ///
    /// # Safety
    ///
    /// Only the owning hub, once the greenlet will never run again, with no
    /// reference into the block left.
    pub(crate) unsafe fn end_run(&self) {
        let run = self.running();
        // SAFETY: exclusive by the caller's contract; the block came from
        // `alloc` in `begin_run` with this layout. Dropping it drops the
        // per-stack state, whose locals the closure already destroyed.
        unsafe {
            *self.run.get() = std::ptr::null_mut();
            debug_assert!(
                (*run).coroutine.is_none(),
                "greenhub: run state freed with its coroutine"
            );
            std::ptr::drop_in_place(run);
            crate::greenlet::alloc::free(
                NonNull::new_unchecked(run).cast(),
                Layout::new::<Running>(),
            );
        }
    }

    /// Forgets the run block of a greenlet whose stack is leaked (never
    /// resumed, never freed): frames on that stack may still point into the
    /// block, and its locals must not be dropped elsewhere.
    ///
    /// # Safety
    ///
    /// As for [`end_run`](Self::end_run).
    pub(crate) unsafe fn leak_run(&self) {
        // SAFETY: exclusive by the caller's contract.
        unsafe { *self.run.get() = std::ptr::null_mut() };
    }

    /// The coroutine slot.
    ///
    /// # Safety
    ///
    /// Only the owning hub of a started greenlet, while it has the greenlet
    /// dequeued or running, and without another live reference into the slot.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn coroutine(&self) -> &mut Option<Coro> {
        // SAFETY: exclusive by the caller's contract; the block is alive
        // while the greenlet is started.
        unsafe { &mut (*self.running()).coroutine }
    }

    /// The greenlet's yielder.
    ///
    /// # Safety
    ///
    /// Only the greenlet itself, while it runs.
    #[inline]
    pub(crate) unsafe fn yielder(&self) -> &GreenletYielder {
        // SAFETY: the yielder lives at a fixed place on the greenlet's own
        // stack for as long as the greenlet runs, and was stored before any
        // code of the greenlet could call this.
        unsafe { &*(*self.running()).yielder }
    }

    /// The stack the greenlet runs on. Used by the overflow handler, for
    /// the running greenlet of the faulting thread.
    pub(crate) fn stack_info(&self) -> StackInfo {
        // SAFETY: written once before the first resume, by the thread that
        // also calls this (the owning hub, or the greenlet on it); a plain
        // copy.
        unsafe { (*self.running()).stack_info }
    }

    /// The per-stack state ([`Running`]'s `stack`). Only the greenlet itself,
    /// while it runs.
    #[inline(always)]
    pub(crate) fn stack(&self) -> &StackState {
        // SAFETY: the block is alive while the greenlet runs, and only the
        // greenlet touches this field (see `Running`).
        unsafe { &(*self.running()).stack }
    }

    /// What the started greenlet last parked on. The greenlet writes it;
    /// its hub reads it while it is suspended, on the same thread, or, for a
    /// migratable greenlet, a hub answering a dump under the shared live
    /// set's lock (its fields are atomics: `greenlet::runinfo`).
    #[inline(always)]
    pub(crate) fn wait_record(&self) -> &WaitRecord {
        // SAFETY: alive while started. The `run` pointer changes only in
        // `begin_run` and `end_run`/`leak_run`, which the owning hub calls
        // before the greenlet enters its live set and after it leaves it; a
        // dump reads a migratable greenlet's only while it holds the shared
        // set's lock (`hub/dump.rs`), so it never overlaps them.
        unsafe { &(*self.running()).wait }
    }
}

impl Drop for Header {
    fn drop(&mut self) {
        // A run block (and coroutine) not removed by its hub would be
        // dropped here, possibly on another thread. That cannot happen (see
        // the Sync argument above); if it ever did, leaking is the sound
        // choice.
        // (A non-null `run` is simply not freed.)
        let owner = *self.owner.get_mut();
        if !owner.is_null() {
            // SAFETY: the header's strong count of its owner (see `owner`).
            drop(unsafe { Arc::from_raw(owner) });
        }
    }
}

/// What a hub needs from a greenlet, whatever its closure and output types.
///
/// # Safety
///
/// Implementors are `#[repr(C)]` structs whose first field is the [`Header`]:
/// [`RawTask::header`] reads it through the data pointer of the trait
/// object, without a virtual call (the header is read several times per
/// switch).
pub(crate) unsafe trait RawTask: Send + Sync {
    /// Builds the coroutine that runs the closure on `stack`, and stores it in
    /// the header.
    ///
    /// # Safety
    ///
    /// Only the owning hub, once, after `Header::set_owner`.
    unsafe fn start(&self, stack: Stack);

    /// Completes a greenlet that never started with `err`, dropping its
    /// closure on the calling thread. Returns with the greenlet `COMPLETE`.
    ///
    /// # Safety
    ///
    /// Only the hub (or, for greenlets sent through the global injector, the
    /// thread) that dequeued the unstarted greenlet, once.
    unsafe fn cancel(&self, err: JoinError);

    /// Publishes completion after the coroutine returned: `COMPLETE`, then the
    /// join wake-up and output clean-up.
    ///
    /// # Safety
    ///
    /// Only the owning hub, once, after the closure stored its outcome and the
    /// coroutine has been removed from the header.
    unsafe fn finish(&self);
}

impl dyn RawTask + '_ {
    /// The greenlet's header.
    #[inline(always)]
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: every implementor is `#[repr(C)]` with the header first
        // (the trait's contract), so the object's data pointer points at it.
        unsafe { &*(self as *const dyn RawTask as *const Header) }
    }
}

/// What a `JoinHandle<T>` needs.
pub(crate) trait JoinTarget<T>: RawTask {
    /// See [`Completion::poll_join`].
    ///
    /// # Safety
    ///
    /// Only the single `JoinHandle`, before it has taken the outcome.
    unsafe fn poll_join(&self, registered: &mut Option<WaiterKey>) -> Option<Result<T, JoinError>>;

    /// See [`Completion::poll_join_waker`].
    ///
    /// # Safety
    ///
    /// Only the single `JoinHandle`, before it has taken the outcome.
    unsafe fn poll_join_waker(
        &self,
        registered: &mut Option<WaiterKey>,
        waker: &std::task::Waker,
    ) -> Option<Result<T, JoinError>>;

    /// See [`Completion::drop_handle`].
    ///
    /// # Safety
    ///
    /// Only the single `JoinHandle`, once, if it has not taken the outcome.
    unsafe fn drop_handle(&self);
}

/// A greenlet running closure `F` that returns `T`. `#[repr(C)]` with the
/// header first: see [`RawTask`]'s contract.
#[repr(C)]
pub(crate) struct Task<F, T> {
    header: Header,
    /// The closure, until the greenlet starts or is cancelled.
    func: StdUnsafeCell<Option<F>>,
    completion: Completion<T>,
}

// SAFETY: `func` is taken exactly once, by the hub that starts or cancels the
// greenlet, so it is accessed by one thread. For `spawn`, `F: Send` makes that
// move across threads fine. For `spawn_local` (`F: !Send`) the greenlet is
// only ever queued on the hub that created it (never on a stealable deque or
// the injector) and that hub also cancels it at shutdown, so `F` never leaves
// its thread. `T` is produced on the owning hub and taken by the `JoinHandle`,
// which is `Send` only when `T: Send`; when the handle is gone, the hub drops
// the output itself. The header is Sync on its own (see above).
unsafe impl<F, T> Sync for Task<F, T> {}
// SAFETY: see the `Sync` argument.
unsafe impl<F, T> Send for Task<F, T> {}

impl<F, T> Task<F, T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    /// Allocates the greenlet: its reference for the hubs and the one for
    /// its `JoinHandle`.
    #[allow(clippy::new_ret_no_self)] // the task's two references, not the task
    pub(crate) fn new(mut header: Header, func: F) -> (TaskRef, TaskArc<dyn JoinTarget<T>>) {
        header.refs = StdAtomicUsize::new(2);
        let block = crate::greenlet::alloc::alloc(Layout::new::<Task<F, T>>()).cast::<Self>();
        // SAFETY: a fresh block with the size and alignment of `Task<F, T>`,
        // owned by us.
        unsafe {
            block.as_ptr().write(Task {
                header,
                func: StdUnsafeCell::new(Some(func)),
                completion: Completion::new(),
            })
        };
        let raw: NonNull<dyn RawTask> = block;
        let join: NonNull<dyn JoinTarget<T>> = block;
        (
            TaskArc {
                ptr: raw,
                _owns: PhantomData,
            },
            TaskArc {
                ptr: join,
                _owns: PhantomData,
            },
        )
    }
}

// SAFETY: `Task` is `#[repr(C)]` and its first field is the `Header`.
unsafe impl<F, T> RawTask for Task<F, T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    unsafe fn start(&self, stack: Stack) {
        // SAFETY: the caller is the owning hub, starting the greenlet once;
        // nothing else touches the slot meanwhile.
        let unstarted = unsafe { (*self.func.get()).is_some() };
        assert!(unstarted, "greenhub: greenlet started twice");
        let this = self as *const Self;
        // The coroutine's closure captures only `this`: corosensei moves its
        // closure onto the new stack by value and refuses one over 1 KiB
        // (a panic in the hub). The user's closure, of any size, is taken
        // from the task on the greenlet's own stack, at its first resume,
        // which the hub makes right after this call (`hub::run`), on this
        // thread: a `!Send` closure never leaves it.
        let coro = Coro::with_stack(stack, move |yielder, _hub| {
            // SAFETY: the coroutine is stored in this task's header and the
            // owning hub holds an `Arc` to the task while it resumes it, so
            // the task outlives every run of this closure.
            let task = unsafe { &*this };
            // SAFETY: we are the greenlet, at its first resume; the hub
            // started it once (checked above) and nothing else touches the
            // slot of a started greenlet.
            let func = unsafe { (*task.func.get()).take() }.expect("checked at start");
            // SAFETY: we are the greenlet, started (so the run block exists);
            // the yielder lives on our stack.
            unsafe { (*task.header.running()).yielder = yielder as *const GreenletYielder };
            let outcome = match panic::catch_unwind(AssertUnwindSafe(func)) {
                Ok(value) => Ok(value),
                Err(payload) if crate::greenlet::is_kill_payload(&*payload) => {
                    crate::error::drop_payload_safely(payload);
                    Err(JoinError::killed_with(task.header.kill_reason.take()))
                }
                Err(payload) if task.header.escalate => {
                    Err(JoinError::panic(crate::hub::escalate::raise(payload)))
                }
                Err(payload) => Err(JoinError::panic(payload)),
            };
            crate::hub::stats::count_outcome(&outcome);
            // Greenlet-local values die here, on the greenlet's own stack and
            // thread, after the closure returned or unwound and before joiners
            // can see the outcome. Panics of their destructors are caught.
            task.header.stack().locals.destroy();
            // SAFETY: the closure has finished; this is the single store,
            // before the hub publishes COMPLETE.
            unsafe { task.completion.store(outcome) };
        });
        // SAFETY: the caller is the owning hub; nothing else references the
        // slot yet.
        unsafe { *self.header.coroutine() = Some(coro) };
    }

    unsafe fn cancel(&self, err: JoinError) {
        // SAFETY: the caller dequeued the unstarted greenlet; nobody else
        // touches the closure.
        let func = unsafe { (*self.func.get()).take() };
        if let Err(p) = panic::catch_unwind(AssertUnwindSafe(|| drop(func))) {
            crate::error::drop_payload_safely(p);
        }
        let err = if err.is_killed() {
            JoinError::killed_with(self.header.kill_reason.take())
        } else {
            err
        };
        // SAFETY: single store before COMPLETE.
        unsafe { self.completion.store(Err(err)) };
        // SAFETY: completes the greenlet we own.
        unsafe { self.finish() };
    }

    unsafe fn finish(&self) {
        let prev = self.header.state.complete();
        // SAFETY: `prev` is from the completing transition, used once.
        unsafe { self.completion.after_complete(prev) };
    }
}

impl<F, T> JoinTarget<T> for Task<F, T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    unsafe fn poll_join(&self, registered: &mut Option<WaiterKey>) -> Option<Result<T, JoinError>> {
        // SAFETY: forwarded contract.
        unsafe { self.completion.poll_join(&self.header.state, registered) }
    }

    unsafe fn poll_join_waker(
        &self,
        registered: &mut Option<WaiterKey>,
        waker: &std::task::Waker,
    ) -> Option<Result<T, JoinError>> {
        // SAFETY: forwarded contract.
        unsafe {
            self.completion
                .poll_join_waker(&self.header.state, registered, waker)
        }
    }

    unsafe fn drop_handle(&self) {
        // SAFETY: forwarded contract.
        unsafe { self.completion.drop_handle(&self.header.state) }
    }
}

/// Relaxed is enough for the live-set index: only the owning hub reads and
/// writes it, or, for a migratable greenlet, whichever hub holds the shared
/// set's lock (`Shared::migrants`), which orders it.
pub(crate) const LIVE_ORDER: Ordering = Ordering::Relaxed;
