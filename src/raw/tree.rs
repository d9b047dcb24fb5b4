//! The switching engine behind [`RawGreenlet`](super::RawGreenlet): nodes,
//! the per-context tree they belong to, and the root loop that moves control
//! between them.
//!
//! # Shape
//!
//! corosensei coroutines are asymmetric (resume/suspend), greenlet switching
//! is symmetric (any greenlet to any other). The bridge is a *root loop*:
//! only the tree's main greenlet ever resumes a coroutine. A greenlet that
//! switches suspends with a [`Transfer`] naming its target and what to
//! deliver; the root loop, running inside the main greenlet's pending
//! `switch`, resumes that target next. A switch between main and a child is
//! therefore exactly one resume/suspend pair, and one between two children is
//! two (child to root, root to child).
//!
//! # Trees and contexts
//!
//! A tree is all raw greenlets of one value type `V` created in one
//! *context*: a plain OS thread, or one hub greenlet (hub greenlets share an
//! OS thread, and a hub greenlet can park in the middle of a raw switch, so
//! each needs a tree of its own). Its main greenlet is whatever code of that
//! context runs while no child of the tree does. Trees are found through a
//! thread-local registry of weak references keyed by (context, `TypeId` of
//! `V`), so they go away with their last greenlet.
//!
//! Trees of different value types in one context nest: a child of tree A can
//! resume a generator (tree B) whose main is then that child's stack. What
//! cannot work is switching tree A from a stack that tree A does not think
//! is running (a tree-B child nested inside an A child trying to suspend the
//! A child); every switch checks its stack pointer against the current
//! child's stack and refuses that with [`SwitchError::WrongContext`].
//!
//! # Node states
//!
//! `Unstarted -> Running <-> Suspended -> Dead`, all moved by the owning
//! context only (everything here is `!Send`). Main is always `Running` or
//! `Suspended` and never dies. A delivery to a dead node goes to its nearest
//! live ancestor; one to an unstarted node starts it with the value, or, for
//! a throw, kills it without running its closure.

use std::any::{Any, TypeId};
use std::cell::{Cell, RefCell, UnsafeCell};
use std::panic::{self, AssertUnwindSafe};
use std::rc::{Rc, Weak};

use corosensei::{Coroutine, CoroutineResult, Yielder};

use super::{GreenletExit, SwitchError};
use crate::greenlet::stack_state::{self, Entered, StackState};
use crate::hub::context;
use crate::stack::{Stack, StackPool};

/// What a resumed greenlet finds at its pending `switch`. One byte, and
/// the suspend side yields only the target's `Rc`: corosensei passes values
/// of up to a word in a register, bigger ones through memory (measurably
/// slower), so payloads wait in the tree instead.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Delivery {
    /// A value, waiting in the tree's `slot`.
    Value,
    /// A child ended with [`GreenletExit`].
    Exit,
    /// Raise the payload waiting in the tree's `raise` (from `throw`, or a
    /// child that panicked).
    Raise,
}

/// How a greenlet's closure ended.
pub(crate) enum Outcome {
    /// Returned; the value is in the tree's slot.
    Value,
    Exit,
    Panic(Box<dyn Any + Send>),
}

/// Resumed with what to deliver; suspends with the target to switch to (a
/// pointer: the suspending greenlet's borrowed handle keeps the target alive
/// until the root loop takes its own `Rc`, if it needs one).
type Coro<V> = Coroutine<Delivery, *const Node<V>, Outcome, Stack>;
type RawYielder<V> = Yielder<Delivery, *const Node<V>>;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Status {
    Unstarted,
    Running,
    Suspended,
    Dead,
}

/// One greenlet of a tree.
pub(crate) struct Node<V: 'static> {
    pub(crate) tree: Rc<Tree<V>>,
    /// `None` only for main.
    pub(crate) parent: RefCell<Option<Rc<Node<V>>>>,
    pub(crate) status: Cell<Status>,
    /// Live `RawGreenlet` handles that count for kill-on-drop (all but those
    /// from `current()`, see `RawGreenlet`'s drop).
    pub(crate) handles: Cell<usize>,
    /// `None` for main and for dead nodes. Only the root loop (resume) and
    /// the node's drop touch it, never while it is running.
    coro: UnsafeCell<Option<Coro<V>>>,
    /// Set by the coroutine when it starts; valid while it is not dead.
    yielder: Cell<*const RawYielder<V>>,
    /// Usable stack range `[lo, hi)`, for the stack-pointer check.
    stack_lo: usize,
    stack_hi: usize,
    /// The greenlet's per-stack state (its `timeout` deadline and `local!`
    /// values) while it is not running; exchanged with its context's active
    /// state around every resume (`greenlet::stack_state`). Unused for main,
    /// whose state is the context's own.
    state: StackState,
}

/// The greenlets of one value type in one context.
pub(crate) struct Tree<V: 'static> {
    /// The context key (`context_key`); 0 for a plain thread.
    ctx: u64,
    /// The running child; null while main runs. The root loop holds an `Rc`
    /// of it for as long as it is set.
    current: Cell<*const Node<V>>,
    /// Main's node, created on demand, and its address (null when there is
    /// none) for the root loop's cheap "back to main?" test.
    main: RefCell<Weak<Node<V>>>,
    main_ptr: Cell<*const Node<V>>,
    /// The value in flight.
    slot: Cell<Option<V>>,
    /// The panic payload in flight (`Delivery::Raise`).
    raise: Cell<Option<Box<dyn Any + Send>>>,
    /// What a suspending child delivers to its target.
    delivery: Cell<Delivery>,
    /// Stack range of a greenlet being unwound by its drop: code on it may
    /// not switch (its coroutine is being torn down).
    dropping: Cell<(usize, usize)>,
}

/// A registry entry: (context, `TypeId` of the value type, the tree).
type TreeEntry = (u64, TypeId, Weak<dyn Any>);

thread_local! {
    static TREES: RefCell<Vec<TreeEntry>> = const { RefCell::new(Vec::new()) };
    static STACKS: RefCell<StackPool> = RefCell::new(StackPool::new());
}

/// The context the caller runs in: its hub greenlet's id, or 0 on a plain
/// thread (the registry is thread-local, so that is enough). A plain thread
/// never becomes a hub thread, so trees of context 0 need no check.
fn context_key() -> u64 {
    context_key_of(context::current_raw())
}

/// [`context_key`] for a caller that has already looked up its greenlet.
fn context_key_of(task: Option<std::ptr::NonNull<dyn crate::greenlet::task::RawTask>>) -> u64 {
    match task {
        // SAFETY: the hub holds the running greenlet alive while it runs.
        Some(task) => unsafe { task.as_ref() }.header().id.as_u64(),
        None => 0,
    }
}

/// An address on the caller's stack.
#[inline(always)]
fn stack_pointer() -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        let sp: usize;
        // SAFETY: reads the stack pointer register; no memory access, no
        // other effect.
        unsafe {
            std::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags))
        };
        sp
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let marker = 0u8;
        std::hint::black_box(std::ptr::addr_of!(marker)) as usize
    }
}

impl<V: 'static> Tree<V> {
    /// The caller's tree for `V`, created if needed.
    pub(crate) fn for_current() -> Rc<Tree<V>> {
        let ctx = context_key();
        let ty = TypeId::of::<V>();
        TREES.with(|trees| {
            let mut trees = trees.borrow_mut();
            trees.retain(|(_, _, w)| w.strong_count() > 0);
            for (c, t, w) in trees.iter() {
                if *c == ctx && *t == ty {
                    if let Some(tree) = w.upgrade() {
                        return tree.downcast::<Tree<V>>().expect("greenhub: raw tree type");
                    }
                }
            }
            let tree = Rc::new(Tree {
                ctx,
                current: Cell::new(std::ptr::null()),
                main: RefCell::new(Weak::new()),
                main_ptr: Cell::new(std::ptr::null()),
                slot: Cell::new(None),
                raise: Cell::new(None),
                delivery: Cell::new(Delivery::Value),
                dropping: Cell::new((0, 0)),
            });
            let any: Rc<dyn Any> = tree.clone();
            trees.push((ctx, ty, Rc::downgrade(&any)));
            tree
        })
    }

    /// Main's node.
    pub(crate) fn main(self: &Rc<Self>) -> Rc<Node<V>> {
        if let Some(main) = self.main.borrow().upgrade() {
            return main;
        }
        let main = Rc::new(Node {
            tree: self.clone(),
            parent: RefCell::new(None),
            status: Cell::new(Status::Running),
            handles: Cell::new(0),
            coro: UnsafeCell::new(None),
            yielder: Cell::new(std::ptr::null()),
            stack_lo: 0,
            stack_hi: 0,
            state: StackState::new(),
        });
        *self.main.borrow_mut() = Rc::downgrade(&main);
        self.main_ptr.set(Rc::as_ptr(&main));
        main
    }

    /// Whether main is running (no child of this tree is).
    pub(crate) fn main_runs(&self) -> bool {
        self.current.get().is_null()
    }

    /// The running greenlet of this tree.
    pub(crate) fn current(self: &Rc<Self>) -> Rc<Node<V>> {
        let cur = self.current.get();
        if cur.is_null() {
            return self.main();
        }
        // SAFETY: `cur` is set only while the root loop holds an `Rc` of
        // that node, so it is alive; we add one strong count for our `Rc`.
        unsafe {
            Rc::increment_strong_count(cur);
            Rc::from_raw(cur)
        }
    }

    /// Whether the caller may switch in this tree now.
    ///
    /// # Panics
    ///
    /// Inside a `greenhub::no_switch` scope (before anything changed).
    #[inline]
    fn check_context(&self) -> Result<(), SwitchError> {
        // One lookup of the running greenlet for both checks.
        let task = context::current_raw();
        if stack_state::switch_forbidden_for(task) {
            panic!("{}", stack_state::NO_SWITCH_MSG);
        }
        if self.ctx != 0 && self.ctx != context_key_of(task) {
            return Err(SwitchError::WrongContext);
        }
        let sp = stack_pointer();
        let cur = self.current.get();
        if !cur.is_null() {
            // A child runs: we must be on its stack (then we are not on a
            // stack being dropped, which is never the current one).
            // SAFETY: see `current`.
            let cur = unsafe { &*cur };
            if sp < cur.stack_lo || sp >= cur.stack_hi {
                return Err(SwitchError::WrongContext);
            }
            return Ok(());
        }
        let (lo, hi) = self.dropping.get();
        if lo <= sp && sp < hi {
            return Err(SwitchError::Exit);
        }
        Ok(())
    }

    /// Switches from the running greenlet of this tree to `target`,
    /// delivering `value`.
    #[inline]
    pub(crate) fn switch(&self, target: &Rc<Node<V>>, value: V) -> Result<V, SwitchError> {
        self.check_context()?;
        self.slot.set(Some(value));
        self.transfer(target, Delivery::Value)
    }

    /// Switches to `target`, raising `payload` there.
    pub(crate) fn throw(
        &self,
        target: &Rc<Node<V>>,
        payload: Box<dyn Any + Send>,
    ) -> Result<V, SwitchError> {
        self.check_context()?;
        if target.status.get() == Status::Dead && payload.is::<GreenletExit>() {
            // greenlet's `throw` into a dead greenlet: the exit is eaten by
            // it, which answers as if it had just ended with it. The switch
            // then goes on as one to a dead greenlet: its nearest live
            // ancestor gets the exit.
            drop(payload);
            return self.transfer(target, Delivery::Exit);
        }
        self.raise.set(Some(payload));
        self.transfer(target, Delivery::Raise)
    }

    /// The common part of `switch` and `throw`, after the checks.
    #[inline]
    fn transfer(&self, target: &Rc<Node<V>>, delivery: Delivery) -> Result<V, SwitchError> {
        let cur = self.current.get();
        let delivery = if cur.is_null() {
            self.root_loop(target.clone(), delivery)
        } else {
            // SAFETY: see `current`: the running child is alive, and it is
            // us (the stack check above found our stack pointer on its
            // stack), so the yielder it stored lives below us on this stack.
            let yielder = unsafe {
                let me = &*cur;
                me.status.set(Status::Suspended);
                &*me.yielder.get()
            };
            self.delivery.set(delivery);
            yielder.suspend(Rc::as_ptr(target))
        };
        self.receive(delivery)
    }

    /// Turns what a resumed greenlet finds into `switch`'s result.
    #[inline]
    fn receive(&self, delivery: Delivery) -> Result<V, SwitchError> {
        match delivery {
            Delivery::Value => Ok(self
                .slot
                .take()
                .expect("greenhub: raw switch delivered no value")),
            Delivery::Exit => Err(SwitchError::Exit),
            Delivery::Raise => panic::resume_unwind(
                self.raise
                    .take()
                    .expect("greenhub: raw throw delivered no payload"),
            ),
        }
    }

    /// Main's side: run children until one transfers back to main.
    fn root_loop(&self, mut next: Rc<Node<V>>, mut delivery: Delivery) -> Delivery {
        /// Puts main back in charge however the loop ends.
        struct Reset<'a, V: 'static>(&'a Tree<V>);
        impl<V: 'static> Drop for Reset<'_, V> {
            fn drop(&mut self) {
                self.0.current.set(std::ptr::null());
            }
        }
        let _reset = Reset(self);
        loop {
            // Deliveries to dead greenlets go up the parent chain.
            while next.status.get() == Status::Dead {
                next = next.parent_or_main();
            }
            if Rc::as_ptr(&next) == self.main_ptr.get() {
                return delivery;
            }
            if next.status.get() == Status::Unstarted && delivery == Delivery::Raise {
                // A throw into a greenlet that never ran: it dies without
                // running, and the error goes to its parent. Take the payload
                // first: dropping the closure runs user destructors, which
                // may switch (dropping handles kills greenlets) and use
                // `raise` themselves.
                let payload = self
                    .raise
                    .take()
                    .expect("greenhub: raw throw delivered no payload");
                next.kill_unstarted();
                if payload.is::<GreenletExit>() {
                    drop(payload);
                    delivery = Delivery::Exit;
                } else {
                    self.raise.set(Some(payload));
                }
                continue;
            }
            next.status.set(Status::Running);
            self.current.set(Rc::as_ptr(&next));
            // SAFETY: only the root loop resumes coroutines, and it resumes
            // one at a time; `next` is alive (we hold an `Rc`), not running
            // and not dead, so its coroutine is there and nobody else
            // borrows it.
            let coro = unsafe { &mut *next.coro.get() }
                .as_mut()
                .expect("greenhub: live raw greenlet without a coroutine");
            let result = {
                // The child runs with its own per-stack state, and sees our
                // deadline as its outer one; ours is back when it returns
                // control here, however that happens.
                let _entered = Entered::new(&next.state, true);
                coro.resume(delivery)
            };
            self.current.set(std::ptr::null());
            match result {
                CoroutineResult::Yield(target) => {
                    delivery = self.delivery.get();
                    if target == self.main_ptr.get() {
                        return delivery;
                    }
                    // SAFETY: the greenlet that just suspended holds a
                    // handle to `target` in its pending `switch` frame, and
                    // nothing has run since, so `target` is alive; we take
                    // one strong count for our own `Rc`.
                    next = unsafe {
                        Rc::increment_strong_count(target);
                        Rc::from_raw(target)
                    };
                }
                CoroutineResult::Return(outcome) => {
                    next.finish();
                    delivery = match outcome {
                        Outcome::Value => Delivery::Value,
                        Outcome::Exit => Delivery::Exit,
                        Outcome::Panic(p) => {
                            self.raise.set(Some(p));
                            Delivery::Raise
                        }
                    };
                    next = next.parent_or_main();
                }
            }
        }
    }
}

impl<V: 'static> Node<V> {
    /// A new, unstarted child of `parent` (same tree) running `f`.
    pub(crate) fn new<F>(
        parent: Rc<Node<V>>,
        stack_size: usize,
        f: F,
    ) -> std::io::Result<Rc<Node<V>>>
    where
        F: FnOnce(V) -> V + 'static,
    {
        let stack = STACKS.with(|s| s.borrow_mut().alloc(stack_size))?;
        let (lo, hi) = (stack.bottom(), stack.top());
        let tree = parent.tree.clone();
        let node = Rc::new_cyclic(|weak: &Weak<Node<V>>| {
            let me = weak.clone();
            let coro = Coro::with_stack(stack, move |yielder: &RawYielder<V>, first: Delivery| {
                let node = me
                    .upgrade()
                    .expect("greenhub: raw greenlet started after drop");
                node.yielder.set(yielder as *const RawYielder<V>);
                let tree = node.tree.clone();
                drop(node);
                let run = AssertUnwindSafe(|| {
                    let arg = tree.receive(first)?;
                    Ok::<V, SwitchError>(f(arg))
                });
                let outcome = match panic::catch_unwind(run) {
                    Ok(Ok(v)) => {
                        tree.slot.set(Some(v));
                        Outcome::Value
                    }
                    Ok(Err(_)) => Outcome::Exit,
                    Err(p) if p.is::<GreenletExit>() => Outcome::Exit,
                    Err(p) => Outcome::Panic(p),
                };
                // The greenlet's `local!` values die here, on its own stack,
                // after its closure's frames (which may have borrowed them)
                // are gone; the active state is this greenlet's own.
                stack_state::with_current(|s| s.locals.destroy());
                outcome
            });
            Node {
                tree,
                parent: RefCell::new(Some(parent)),
                status: Cell::new(Status::Unstarted),
                handles: Cell::new(0),
                coro: UnsafeCell::new(Some(coro)),
                yielder: Cell::new(std::ptr::null()),
                stack_lo: lo,
                stack_hi: hi,
                state: StackState::new(),
            }
        });
        Ok(node)
    }

    /// The parent of a child (only main has none, and main never dies).
    fn parent_or_main(&self) -> Rc<Node<V>> {
        self.parent
            .borrow()
            .clone()
            .expect("greenhub: main has no parent and never dies")
    }

    pub(crate) fn is_main(&self) -> bool {
        self.stack_hi == 0
    }

    /// The closure returned: recycle the stack.
    fn finish(&self) {
        self.status.set(Status::Dead);
        // SAFETY: called by the root loop right after the coroutine returned;
        // nothing else borrows the slot.
        if let Some(coro) = unsafe { &mut *self.coro.get() }.take() {
            recycle(coro.into_stack());
        }
    }

    /// Dies without running (a throw into an unstarted greenlet).
    fn kill_unstarted(&self) {
        self.status.set(Status::Dead);
        // SAFETY: unstarted, so not running; only the owning context gets
        // here (root loop).
        let coro = unsafe { &mut *self.coro.get() }.take();
        drop(coro);
    }
}

fn recycle(stack: Stack) {
    // At thread exit the pool may be gone: the stack then unmaps itself.
    let _ = STACKS.try_with(|s| s.borrow_mut().free(stack));
}

impl<V: 'static> Drop for Node<V> {
    fn drop(&mut self) {
        if self.is_main() {
            self.tree.main_ptr.set(std::ptr::null());
            return;
        }
        // A suspended greenlet nobody can switch to any more. Handles kill it
        // with a regular throw first (see `RawGreenlet`'s drop); this is the
        // fallback, also for drops in another context: corosensei unwinds it
        // in place (destructors run), with its switches refused.
        if let Some(mut coro) = self.coro.get_mut().take() {
            if coro.started() && !coro.done() && stack_state::switch_forbidden() {
                // Unwinding it would run its code, on its stack, inside a
                // `no_switch` scope of the caller: a switch. Leaking it (its
                // stack and whatever its frames own) is the sound way out.
                eprintln!(
                    "greenhub: a suspended raw greenlet dropped inside `no_switch` is leaked, not unwound"
                );
                std::mem::forget(coro);
                return;
            }
            let outer = self.tree.dropping.replace((self.stack_lo, self.stack_hi));
            // Unstarted: drops the closure; done: nothing to do. Its code
            // runs with its own per-stack state, without the caller's
            // deadline (nothing may interrupt an unwind).
            let unwound = {
                let _entered = Entered::new(&self.state, false);
                panic::catch_unwind(AssertUnwindSafe(|| coro.force_unwind()))
            };
            self.tree.dropping.set(outer);
            match unwound {
                Ok(()) => recycle(coro.into_stack()),
                // A destructor panicked while unwinding: pass it on (the
                // coroutine still owns its stack and frees it).
                Err(p) => panic::resume_unwind(p),
            }
        }
    }
}
