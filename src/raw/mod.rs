//! Python greenlet's raw switching API: explicit, symmetric switching between
//! coroutines on one thread, with values, parents and `throw`, and no
//! scheduler at all. Generators ([`Generator`]), producer/consumer pipelines
//! and state machines are built on it.
//!
//! ```
//! use greenhub::raw::RawGreenlet;
//!
//! // A child that doubles what it is sent, until it is sent 0.
//! let child = RawGreenlet::new(|mut x: i64| {
//!     let main = RawGreenlet::<i64>::current().parent().unwrap();
//!     while x != 0 {
//!         x = main.switch(x * 2).unwrap();
//!     }
//!     -1 // returned to the parent's pending `switch`
//! });
//! assert_eq!(child.switch(1).unwrap(), 2);
//! assert_eq!(child.switch(21).unwrap(), 42);
//! assert_eq!(child.switch(0).unwrap(), -1);
//! assert!(child.is_dead());
//! ```
//!
//! # Semantics (those of `greenlet`)
//!
//! - Every thread (and every greenhub greenlet) has an implicit *main*
//!   greenlet: the code that runs while no raw greenlet does.
//! - [`RawGreenlet::new`] creates an unstarted greenlet whose parent is the
//!   current greenlet. The first [`switch`](RawGreenlet::switch) into it
//!   passes its value to the closure.
//! - `switch(v)` suspends the caller, resumes the target with `v` as the
//!   result of *its* pending `switch`, and returns whatever is passed back by
//!   whoever switches to the caller later.
//! - When a closure returns, its value goes to its parent's pending `switch`
//!   (walking up past dead parents, starting an unstarted one with it). A
//!   panic in a closure is raised in the parent's `switch`, the same way.
//! - [`throw`](RawGreenlet::throw) resumes a greenlet by raising a panic
//!   payload inside it (destructors run as it unwinds); [`GreenletExit`] ends
//!   it quietly, its parent's `switch` then returns [`SwitchError::Exit`].
//!   A throw into an unstarted greenlet kills it without running it.
//! - Switching to a dead greenlet switches to its nearest live ancestor.
//!   Throwing [`GreenletExit`] into a dead greenlet (killing it again) is
//!   a no-op in it: it answers as if it had just ended with it, so its
//!   nearest live ancestor (the caller, usually) gets
//!   [`SwitchError::Exit`], as from the first kill. Any other error thrown
//!   into a dead greenlet is raised in that ancestor.
//! - Dropping the last handle to a suspended greenlet throws
//!   [`GreenletExit`] into it (its destructors run), as greenlet's
//!   garbage collection does. During that kill its parent is the code that
//!   dropped the handle, so the outcome comes back there; afterwards its own
//!   parent is restored (it matters if it caught the exit and lives on).
//!
//! # The value type
//!
//! A `RawGreenlet<V>` sends and receives values of one type `V`, fixed per
//! *family*: all raw greenlets of one `V` in one context form one tree with
//! one main. `switch` then takes and returns `V` with no boxing and no
//! downcast, so a switch costs a context switch and a few moves. Use an enum
//! for protocols with several kinds of messages. Families of different
//! types are independent trees and nest like function calls (a greenlet of
//! one family can drive a [`Generator`], which is a family of its own).
//! We chose this over `Box<dyn Any>` at the boundary because a box per
//! switch would cost more than the switch itself, and a wrong type would
//! only show up at run time.
//!
//! # Threads and hubs
//!
//! `RawGreenlet` is `!Send` and `!Sync`: using one from another thread does
//! not compile. Raw greenlets created inside a greenhub greenlet belong to
//! that greenlet (its stack is their main); they may call blocking greenhub
//! functions (`sleep`, `join`, ...), which park the whole greenhub greenlet.
//! A raw greenlet smuggled to another greenhub greenlet of the same hub
//! (through `spawn_local`) refuses to switch there with
//! [`SwitchError::WrongContext`].
//!
//! # Timeouts and greenlet-locals
//!
//! Each raw greenlet (and generator) is a stack of its own, and what belongs
//! to a stack stays with it across switches (`greenlet::stack_state`):
//!
//! - [`local!`](crate::local!) values are per raw greenlet, as gevent's
//!   `local` is per greenlet: a raw greenlet starts with fresh values, and
//!   they are dropped when its closure ends.
//! - A [`timeout`](crate::timeout) frame entered on a raw greenlet bounds the
//!   blocking calls made on that raw greenlet only. A raw greenlet also
//!   honours the deadline in force in its family's main greenlet, the code
//!   whose `switch` (or `resume`) runs the family: when that deadline passes
//!   while the raw greenlet is blocked, the raw greenlet unwinds and its
//!   parent's `switch` raises the timeout, which reaches the frame that set
//!   it. A switch from one child of a family to another goes through that
//!   main, so it is main's deadline that a child sees, not that of the
//!   sibling that switched to it. Generators with the same item and return
//!   types are one family too: a generator resumed from inside another one
//!   sees the deadline of the code running the outer one; a `timeout` frame
//!   inside the outer generator around `inner.next()` does not bound the
//!   inner one (enter it inside the inner generator instead).
//!
//! ```
//! use std::time::Duration;
//! use greenhub::raw::Generator;
//!
//! greenhub::run(|| {
//!     let mut slow: Generator<u32, ()> = Generator::new(|co| {
//!         co.yield_(1);
//!         greenhub::sleep(Duration::from_secs(60));
//!         co.yield_(2);
//!     });
//!     assert_eq!(slow.next(), Some(1));
//!     let r = greenhub::timeout(Duration::from_millis(10), || slow.next());
//!     assert!(r.is_err()); // the generator's sleep was cut, and it ended
//!     assert!(slow.is_complete());
//! });
//! ```
//!
//! Stacks come from the same guarded, pooled stacks as greenhub's greenlets
//! (default [`DEFAULT_STACK_SIZE`](crate::DEFAULT_STACK_SIZE)). Unlike those,
//! a raw greenlet that overflows its stack dies by a plain `SIGSEGV`
//! without naming itself.

mod generator;
mod tree;

use std::any::Any;
use std::fmt;
use std::io;
use std::rc::Rc;

pub use generator::{Co, Generator, GeneratorState};

use tree::{Node, Status, Tree};

/// A raw greenlet: a coroutine that other raw greenlets of its family switch
/// to explicitly. A cheap handle (`Clone` shares the greenlet); see the
/// [module docs](self) for the semantics.
///
/// ```
/// use greenhub::raw::RawGreenlet;
///
/// let g = RawGreenlet::new(|s: String| s + " world");
/// assert!(!g.is_started());
/// assert_eq!(g.switch("hello".to_string()).unwrap(), "hello world");
/// assert!(g.is_dead());
/// ```
pub struct RawGreenlet<V: 'static> {
    node: Rc<Node<V>>,
    /// Whether this handle keeps the greenlet from being killed on drop
    /// (`Node::handles`): all do except those from [`RawGreenlet::current`].
    counted: bool,
}

/// Thrown into a greenlet to end it quietly, like Python's `GreenletExit`:
/// it unwinds (destructors run) and its parent's pending `switch` returns
/// [`SwitchError::Exit`] instead of raising.
///
/// ```
/// use greenhub::raw::{GreenletExit, RawGreenlet, SwitchError};
///
/// let g = RawGreenlet::new(|x: u32| {
///     let main = RawGreenlet::<u32>::current().parent().unwrap();
///     main.switch(x).unwrap() // suspended here when killed
/// });
/// g.switch(1).unwrap();
/// assert_eq!(g.throw(GreenletExit), Err(SwitchError::Exit));
/// assert!(g.is_dead());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GreenletExit;

/// Why a [`RawGreenlet::switch`] (or `throw`) returned no value.
///
/// ```
/// use greenhub::raw::{RawGreenlet, SwitchError};
///
/// let g = RawGreenlet::new(|_: ()| ());
/// assert_eq!(g.kill(), Err(SwitchError::Exit));
/// assert!(SwitchError::Exit.to_string().contains("GreenletExit"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SwitchError {
    /// The greenlet that returned control here ended with [`GreenletExit`].
    Exit,
    /// The call was made outside the greenlet's context: from another
    /// greenhub greenlet than the one that created it, or from a greenlet
    /// of another family nested inside the one that is current.
    WrongContext,
}

impl fmt::Display for SwitchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SwitchError::Exit => f.write_str("the greenlet ended with GreenletExit"),
            SwitchError::WrongContext => f.write_str(
                "raw greenlet used outside the context (thread or greenhub greenlet) that runs its family",
            ),
        }
    }
}

impl std::error::Error for SwitchError {}

/// Why [`RawGreenlet::set_parent`] refused a parent.
///
/// ```
/// use greenhub::raw::{ParentError, RawGreenlet};
///
/// let a = RawGreenlet::new(|x: i32| x);
/// let b = RawGreenlet::with_parent(&a, |x: i32| x);
/// assert_eq!(a.set_parent(&b), Err(ParentError::Cycle));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParentError {
    /// The new parent is the greenlet itself or one of its descendants.
    Cycle,
    /// Main greenlets have no parent.
    Main,
    /// The new parent belongs to another context (tree).
    WrongContext,
}

impl fmt::Display for ParentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParentError::Cycle => "cyclic parent chain",
            ParentError::Main => "a main greenlet cannot have a parent",
            ParentError::WrongContext => {
                "the parent belongs to another thread or greenhub greenlet"
            }
        })
    }
}

impl std::error::Error for ParentError {}

impl<V: 'static> RawGreenlet<V> {
    /// A new, unstarted greenlet running `f`, whose parent is the current
    /// greenlet of this family. Its stack is allocated now.
    ///
    /// # Panics
    ///
    /// If no stack can be allocated (see [`RawGreenlet::try_new`]).
    ///
    /// ```
    /// use greenhub::raw::RawGreenlet;
    ///
    /// let g = RawGreenlet::new(|x: u8| x + 1);
    /// assert_eq!(g.parent().unwrap(), RawGreenlet::current());
    /// assert_eq!(g.switch(1).unwrap(), 2);
    /// ```
    pub fn new<F>(f: F) -> RawGreenlet<V>
    where
        F: FnOnce(V) -> V + 'static,
    {
        Self::try_new(crate::DEFAULT_STACK_SIZE, f).expect("greenhub: cannot create a raw greenlet")
    }

    /// Like [`RawGreenlet::new`] with the stack size given, returning the
    /// error when the size is invalid or no stack can be mapped.
    ///
    /// ```
    /// use greenhub::raw::RawGreenlet;
    ///
    /// let g = RawGreenlet::try_new(64 << 10, |x: u8| x).unwrap();
    /// assert_eq!(g.switch(7).unwrap(), 7);
    /// assert!(RawGreenlet::try_new(1 << 40, |x: u8| x).is_err());
    /// ```
    pub fn try_new<F>(stack_size: usize, f: F) -> io::Result<RawGreenlet<V>>
    where
        F: FnOnce(V) -> V + 'static,
    {
        let parent = Tree::<V>::for_current().current();
        Ok(RawGreenlet::counted(Node::new(parent, stack_size, f)?))
    }

    /// A new, unstarted greenlet whose parent is `parent`.
    ///
    /// ```
    /// use greenhub::raw::RawGreenlet;
    ///
    /// let p = RawGreenlet::new(|x: i32| x);
    /// let c = RawGreenlet::with_parent(&p, |x: i32| x);
    /// assert_eq!(c.parent().unwrap(), p);
    /// ```
    pub fn with_parent<F>(parent: &RawGreenlet<V>, f: F) -> RawGreenlet<V>
    where
        F: FnOnce(V) -> V + 'static,
    {
        let node = Node::new(parent.node.clone(), crate::DEFAULT_STACK_SIZE, f)
            .expect("greenhub: cannot create a raw greenlet");
        RawGreenlet::counted(node)
    }

    /// The running greenlet of family `V` (the main greenlet when none of
    /// the family runs).
    ///
    /// ```
    /// use greenhub::raw::RawGreenlet;
    ///
    /// let main = RawGreenlet::<u32>::current();
    /// assert!(main.is_main());
    /// let g = RawGreenlet::new(|_: u32| RawGreenlet::<u32>::current().is_main() as u32);
    /// assert_eq!(g.switch(0).unwrap(), 0);
    /// ```
    ///
    /// The handle does not keep the greenlet from being killed when the
    /// other handles are dropped (it is typically held on the greenlet's
    /// own stack, which would otherwise keep a suspended greenlet alive
    /// forever).
    pub fn current() -> RawGreenlet<V> {
        RawGreenlet {
            node: Tree::<V>::for_current().current(),
            counted: false,
        }
    }

    fn counted(node: Rc<Node<V>>) -> RawGreenlet<V> {
        node.handles.set(node.handles.get() + 1);
        RawGreenlet {
            node,
            counted: true,
        }
    }

    /// Transfers control and `value` to this greenlet; returns the value
    /// passed by whoever switches back to the caller.
    ///
    /// The first switch into a greenlet passes `value` to its closure; a
    /// switch to a dead greenlet goes to its nearest live ancestor; a switch
    /// to the caller itself returns `value` at once. A panic that ends a
    /// child is raised here when the child's parent is the caller.
    ///
    /// # Errors
    ///
    /// [`SwitchError::Exit`] when the greenlet returning control here ended
    /// with [`GreenletExit`]; [`SwitchError::WrongContext`] (without
    /// switching) when called outside the family's context.
    ///
    /// ```
    /// use greenhub::raw::RawGreenlet;
    ///
    /// let echo = RawGreenlet::new(|mut x: i32| {
    ///     let main = RawGreenlet::<i32>::current().parent().unwrap();
    ///     loop {
    ///         x = main.switch(x).unwrap();
    ///     }
    /// });
    /// assert_eq!(echo.switch(5).unwrap(), 5);
    /// assert_eq!(echo.switch(6).unwrap(), 6);
    /// ```
    #[inline]
    pub fn switch(&self, value: V) -> Result<V, SwitchError> {
        self.node.tree.switch(&self.node, value)
    }

    /// Resumes this greenlet by raising `error` (a panic payload) at its
    /// pending `switch`: it unwinds, running destructors, unless it catches
    /// the panic. Its parent then gets the outcome as from a `switch` (the
    /// caller receives it here if it is the parent). Throwing into an
    /// unstarted greenlet kills it without running it. Throwing
    /// [`GreenletExit`] into a dead greenlet does nothing to it and returns
    /// `Err(SwitchError::Exit)` to its nearest live ancestor; any other
    /// `error` thrown into a dead greenlet is raised in that ancestor.
    ///
    /// # Errors
    ///
    /// As for [`RawGreenlet::switch`]; throwing [`GreenletExit`] into a
    /// child of the caller returns `Err(SwitchError::Exit)` once it died.
    ///
    /// ```
    /// use greenhub::raw::RawGreenlet;
    /// use std::panic::{AssertUnwindSafe, catch_unwind};
    ///
    /// let g = RawGreenlet::new(|x: i32| {
    ///     RawGreenlet::<i32>::current().parent().unwrap().switch(x).unwrap()
    /// });
    /// g.switch(1).unwrap();
    /// let err = catch_unwind(AssertUnwindSafe(|| g.throw("boom"))).unwrap_err();
    /// assert_eq!(err.downcast_ref::<&str>(), Some(&"boom"));
    /// assert!(g.is_dead());
    /// ```
    pub fn throw<E: Any + Send>(&self, error: E) -> Result<V, SwitchError> {
        self.node.tree.throw(&self.node, Box::new(error))
    }

    /// Throws [`GreenletExit`] into this greenlet (see [`RawGreenlet::throw`]).
    ///
    /// Killing a dead greenlet is a no-op that answers as the first kill
    /// did: `Err(SwitchError::Exit)`, delivered to its nearest live ancestor
    /// (the caller when that is the caller), as greenlet's `throw()` into a
    /// dead greenlet returns `GreenletExit`.
    ///
    /// ```
    /// use greenhub::raw::{RawGreenlet, SwitchError};
    ///
    /// let g = RawGreenlet::new(|x: i32| x);
    /// assert_eq!(g.kill(), Err(SwitchError::Exit));
    /// assert!(g.is_dead());
    /// assert_eq!(g.kill(), Err(SwitchError::Exit)); // already dead: no-op
    /// ```
    pub fn kill(&self) -> Result<V, SwitchError> {
        self.throw(GreenletExit)
    }

    /// The parent (where the return value goes); `None` for main.
    ///
    /// ```
    /// use greenhub::raw::RawGreenlet;
    ///
    /// assert!(RawGreenlet::<()>::current().parent().is_none());
    /// ```
    pub fn parent(&self) -> Option<RawGreenlet<V>> {
        let parent = self.node.parent.borrow().clone()?;
        Some(RawGreenlet::counted(parent))
    }

    /// Changes the parent.
    ///
    /// # Errors
    ///
    /// Refused for a cycle, for a main greenlet, and for a parent of
    /// another context.
    ///
    /// ```
    /// use greenhub::raw::RawGreenlet;
    ///
    /// let a = RawGreenlet::new(|x: i32| x + 1);
    /// let b = RawGreenlet::new(|x: i32| x * 10);
    /// b.set_parent(&a).unwrap();
    /// // b's result starts a, whose result reaches main.
    /// assert_eq!(b.switch(4).unwrap(), 41);
    /// ```
    pub fn set_parent(&self, parent: &RawGreenlet<V>) -> Result<(), ParentError> {
        if self.node.is_main() {
            return Err(ParentError::Main);
        }
        if !Rc::ptr_eq(&self.node.tree, &parent.node.tree) {
            return Err(ParentError::WrongContext);
        }
        let mut p = Some(parent.node.clone());
        while let Some(n) = p {
            if Rc::ptr_eq(&n, &self.node) {
                return Err(ParentError::Cycle);
            }
            p = n.parent.borrow().clone();
        }
        *self.node.parent.borrow_mut() = Some(parent.node.clone());
        Ok(())
    }

    /// Whether it has been switched into (main always has).
    ///
    /// ```
    /// let g = greenhub::raw::RawGreenlet::new(|x: i32| x);
    /// assert!(!g.is_started());
    /// ```
    pub fn is_started(&self) -> bool {
        self.node.is_main() || self.node.status.get() != Status::Unstarted
    }

    /// Whether its closure has ended (returned, panicked, or was killed).
    ///
    /// ```
    /// let g = greenhub::raw::RawGreenlet::new(|x: i32| x);
    /// g.switch(0).unwrap();
    /// assert!(g.is_dead());
    /// ```
    pub fn is_dead(&self) -> bool {
        !self.node.is_main() && self.node.status.get() == Status::Dead
    }

    /// Started and not dead: it runs or is suspended (Python's `bool(g)`).
    ///
    /// ```
    /// assert!(greenhub::raw::RawGreenlet::<i32>::current().is_active());
    /// ```
    pub fn is_active(&self) -> bool {
        self.node.is_main() || matches!(self.node.status.get(), Status::Running | Status::Suspended)
    }

    /// Whether this is its family's main greenlet.
    ///
    /// ```
    /// assert!(greenhub::raw::RawGreenlet::<i32>::current().is_main());
    /// ```
    pub fn is_main(&self) -> bool {
        self.node.is_main()
    }
}

impl<V: 'static> Clone for RawGreenlet<V> {
    fn clone(&self) -> Self {
        if self.counted {
            RawGreenlet::counted(self.node.clone())
        } else {
            RawGreenlet {
                node: self.node.clone(),
                counted: false,
            }
        }
    }
}

impl<V: 'static> PartialEq for RawGreenlet<V> {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.node, &other.node)
    }
}

impl<V: 'static> Eq for RawGreenlet<V> {}

impl<V: 'static> fmt::Debug for RawGreenlet<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawGreenlet")
            .field("main", &self.is_main())
            .field(
                "status",
                &if !self.node.is_main() {
                    self.node.status.get()
                } else if self.node.tree.main_runs() {
                    Status::Running
                } else {
                    Status::Suspended
                },
            )
            .finish()
    }
}

impl<V: 'static> Drop for RawGreenlet<V> {
    fn drop(&mut self) {
        // The last counted handle to a suspended greenlet: kill it with a
        // regular throw, a switch from the current greenlet that comes back
        // here (greenlet's dealloc does the same); its parent becomes the
        // caller so that the outcome returns here. Handles from `current()`
        // do not count: they usually live on the greenlet's own stack.
        if !self.counted {
            return;
        }
        let left = self.node.handles.get() - 1;
        self.node.handles.set(left);
        if left != 0 || self.node.status.get() != Status::Suspended {
            return;
        }
        if crate::greenlet::stack_state::switch_forbidden() {
            // Killing it is a switch; the node's own drop leaks it instead.
            return;
        }
        let me = RawGreenlet {
            node: self.node.tree.current(),
            counted: false,
        };
        let own_parent = self.node.parent.borrow().clone();
        if self.set_parent(&me).is_err() {
            // Only if the caller descends from it: then it is not
            // unreachable. Leave it.
            return;
        }
        let killed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.kill()));
        // Its own parent is back once the kill returned here, whether it
        // died or caught the exit and lived on (greenlet's
        // `ParentIsCurrentGuard`). Checked like any `set_parent`: should the
        // old parent have become its descendant meanwhile, it keeps the
        // current one rather than form a cycle.
        if let Some(node) = own_parent {
            let _ = self.set_parent(&RawGreenlet {
                node,
                counted: false,
            });
        }
        match killed {
            Ok(Ok(value)) => drop(value),
            // Exit: the normal end. WrongContext: the node's own drop
            // unwinds it in place once its memory goes.
            Ok(Err(_)) => {}
            Err(payload) => {
                eprintln!("greenhub: a raw greenlet panicked while being killed on drop");
                drop(payload);
            }
        }
    }
}
