//! A typed generator on top of [`RawGreenlet`]: a closure that yields values
//! of type `Y` and finally returns an `R`, driven by `resume` or as an
//! `Iterator`. Each resume switches into the generator's greenlet (making the
//! resumer its parent), each yield switches back to that parent.

use std::fmt;
use std::rc::Rc;

use super::{RawGreenlet, SwitchError};

/// The messages of a generator's family.
enum Msg<Y, R> {
    Resume,
    Yielded(Y),
    Returned(R),
}

/// What [`Generator::resume`] produced.
///
/// ```
/// use greenhub::raw::{Generator, GeneratorState};
///
/// let mut g = Generator::new(|co| {
///     co.yield_(1);
///     "done"
/// });
/// assert_eq!(g.resume(), Some(GeneratorState::Yielded(1)));
/// assert_eq!(g.resume(), Some(GeneratorState::Complete("done")));
/// assert_eq!(g.resume(), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GeneratorState<Y, R> {
    /// The generator yielded this value and is suspended.
    Yielded(Y),
    /// The generator's closure returned this value.
    Complete(R),
}

/// The generator's side: passed to its closure to yield values.
///
/// ```
/// use greenhub::raw::Generator;
///
/// let squares = Generator::new(|co| {
///     for i in 1..=3u32 {
///         co.yield_(i * i);
///     }
/// });
/// assert_eq!(squares.collect::<Vec<_>>(), [1, 4, 9]);
/// ```
pub struct Co<Y: 'static, R: 'static> {
    me: RawGreenlet<Msg<Y, R>>,
}

impl<Y: 'static, R: 'static> Co<Y, R> {
    /// Hands `value` to the resumer and suspends until the next resume.
    ///
    /// If the generator is dropped while suspended here, this unwinds the
    /// generator's closure (with [`GreenletExit`](super::GreenletExit)), so
    /// its destructors run.
    pub fn yield_(&self, value: Y) {
        let node = &self.me.node;
        let parent = node
            .parent
            .borrow()
            .clone()
            .expect("greenhub: a generator has a parent");
        match node.tree.switch(&parent, Msg::Yielded(value)) {
            Ok(_) => {}
            Err(SwitchError::Exit) => std::panic::resume_unwind(Box::new(super::GreenletExit)),
            Err(e) => panic!("greenhub: generator yield failed: {e}"),
        }
    }
}

impl<Y: 'static, R: 'static> fmt::Debug for Co<Y, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Co").finish_non_exhaustive()
    }
}

/// A generator: runs its closure on a raw greenlet, one step per resume.
///
/// `!Send`, like every raw greenlet. A panic in the closure is raised in the
/// caller of `resume` (or `next`). Dropping a suspended generator unwinds
/// its closure.
///
/// ```
/// use greenhub::raw::Generator;
///
/// let fib = Generator::new(|co| {
///     let (mut a, mut b) = (0u64, 1u64);
///     loop {
///         co.yield_(a);
///         (a, b) = (b, a + b);
///     }
/// });
/// let first: Vec<u64> = fib.take(10).collect();
/// assert_eq!(first, [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]);
/// ```
pub struct Generator<Y: 'static, R: 'static = ()> {
    gr: RawGreenlet<Msg<Y, R>>,
    done: bool,
}

impl<Y: 'static, R: 'static> Generator<Y, R> {
    /// A generator running `f` (not started until the first resume).
    ///
    /// # Panics
    ///
    /// If no stack can be allocated for it.
    pub fn new<F>(f: F) -> Generator<Y, R>
    where
        F: FnOnce(&Co<Y, R>) -> R + 'static,
    {
        let gr = RawGreenlet::new(move |_first: Msg<Y, R>| {
            let co = Co {
                me: RawGreenlet::current(),
            };
            Msg::Returned(f(&co))
        });
        Generator { gr, done: false }
    }

    /// Runs the generator to its next yield or its end; `None` once it has
    /// completed.
    ///
    /// # Panics
    ///
    /// Raises the closure's panic, if it panics; panics if called outside
    /// the context (thread or greenhub greenlet) that created it.
    pub fn resume(&mut self) -> Option<GeneratorState<Y, R>> {
        if self.done || self.gr.is_dead() {
            self.done = true;
            return None;
        }
        // The resumer becomes the parent: yields and the return value come
        // back here, whoever resumes.
        let node = &self.gr.node;
        let me = node.tree.current();
        let is_parent = node
            .parent
            .borrow()
            .as_ref()
            .is_some_and(|p| Rc::ptr_eq(p, &me));
        if !is_parent {
            let me = RawGreenlet {
                node: me,
                counted: false,
            };
            self.gr
                .set_parent(&me)
                .expect("greenhub: cannot resume a generator from inside itself");
        }
        let step = match self.gr.switch(Msg::Resume) {
            Ok(msg) => msg,
            Err(e) => {
                self.done = true;
                panic!("greenhub: generator failed: {e}");
            }
        };
        match step {
            Msg::Yielded(y) => Some(GeneratorState::Yielded(y)),
            Msg::Returned(r) => {
                self.done = true;
                Some(GeneratorState::Complete(r))
            }
            Msg::Resume => unreachable!("greenhub: generator got a resume message"),
        }
    }

    /// Whether the closure has returned (or panicked).
    ///
    /// ```
    /// let mut g = greenhub::raw::Generator::<(), ()>::new(|_| ());
    /// assert!(!g.is_complete());
    /// g.resume();
    /// assert!(g.is_complete());
    /// ```
    pub fn is_complete(&self) -> bool {
        self.done || self.gr.is_dead()
    }
}

impl<Y: 'static, R: 'static> Iterator for Generator<Y, R> {
    type Item = Y;

    /// The next yielded value; the return value is dropped.
    fn next(&mut self) -> Option<Y> {
        match self.resume()? {
            GeneratorState::Yielded(y) => Some(y),
            GeneratorState::Complete(_) => None,
        }
    }
}

impl<Y: 'static, R: 'static> fmt::Debug for Generator<Y, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Generator")
            .field("complete", &self.is_complete())
            .finish()
    }
}
