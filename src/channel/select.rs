//! `select!`: wait on several channel operations and a timeout, like Go.
//!
//! The macro turns each arm into a case object on the caller's stack and
//! calls [`__select`], which runs the protocol described in `chan.rs`:
//!
//! 1. *Try*: each case, in order, attempts its operation without waiting
//!    (as the active party it claims the partner node it completes). The
//!    first that succeeds wins. Nothing of ours is linked anywhere yet, so
//!    nobody can complete one of our cases meanwhile.
//! 2. *Link*: each case, under its channel's lock, checks the channel is
//!    still not ready and links a node pointing at the shared `Selector`.
//!    If one is ready after all, the select aborts (`Selector::abort`),
//!    unlinks everything and goes back to 1, unless a case was completed by
//!    someone else meanwhile (the abort fails), which then wins.
//! 3. *Park* until the selector names a winner, the deadline passes
//!    (abort; if the abort fails, a case won just then, and it is kept) or
//!    the caller is interrupted (same, then the interrupt is raised).
//! 4. *Unlink* every node; the winner's outcome is in its node.
//!
//! Arms are tried in the order written, so in single-threaded mode a select
//! is deterministic; Go picks a random ready case instead.
//!
//! # Soundness: what safe code can reach
//!
//! The macro expands in the user's crate, so what it calls is public:
//! [`RecvCase`], [`SendCase`], [`SelectCase`] and [`__select`] (hidden from
//! the docs). The expansion holds no `unsafe` block, so it works in crates
//! with `#![forbid(unsafe_code)]`. A case's node is linked into a channel's
//! intrusive wait list by raw pointer, and other threads write through that
//! pointer (and through the pointer to the `Selector`) until it is
//! unlinked, so safe code must never get a node linked that is not sure to
//! be unlinked before it moves or dies. That holds because:
//!
//! - The protocol (`try_now`, `link`, `unlink`) is a trait in a private
//!   module (`sealed::Case`), a supertrait of [`SelectCase`]. Outside
//!   greenhub nobody can name it, so nobody can implement it, hence nobody
//!   can implement `SelectCase`: every `dyn SelectCase` is a [`RecvCase`]
//!   or a [`SendCase`], whose protocol is written here.
//! - `RecvCase` and `SendCase` have no `link` method of their own, and
//!   since the trait cannot be imported, `case.link(..)` does not resolve.
//!   Rust does let a `dyn SelectCase` (or a generic `C: SelectCase`) call
//!   its supertrait's methods, so `link` and `unlink` are `unsafe fn`:
//!   safe code cannot call them. `link` also wants a `&Selector`, a type
//!   that is not exported and that nothing public hands out. (`try_now` is
//!   safe: a non-blocking send or receive, and it touches the node only
//!   as its owner, which it is whenever the node is not linked, that is,
//!   whenever `__select` does not hold the case.)
//! - Only [`__select`] calls `link`, and it unlinks every node it linked
//!   before it returns, on every path: a guard (`Linked`) unlinks them when
//!   it is dropped, on return or while unwinding. `unlink` never runs user
//!   code (it moves values, it drops none) and cannot panic, so the guard
//!   always finishes. The cases are borrowed (`&mut`) for the whole call,
//!   so none can move or be forgotten while linked, and the `Selector`,
//!   declared before the guard, outlives it.
//! - Kills and `timeout` frames arrive as `Wake::Interrupted` from
//!   `park_until`, which never unwinds; the interrupt is raised after the
//!   guard unlinked everything (and anything that did unwind would drop the
//!   guard first). A greenlet that is never resumed leaks its stack with
//!   the nodes on it; that memory is never reused.
//! - A node gets its waiter (`Node::arm`) before each time it is linked, so
//!   a case made on another greenlet, or used for a second select after a
//!   win (whose grant took the waiter), still wakes the greenlet selecting
//!   now. `try_now` does it, when it fails, with nothing linked: dropping
//!   the old waiter may run a finished greenlet's destructors. Likewise an
//!   outcome left from an earlier select is dropped there, so `link` and
//!   `unlink` drop nothing: no user code runs while nodes are linked.
//!
//! These uses do not compile; each block pins one rule. A user type cannot
//! implement the case trait (it is sealed):
//!
//! ```compile_fail
//! struct MyCase;
//! impl greenhub::channel::SelectCase for MyCase {}
//! ```
//!
//! A user cannot call `link` on a `RecvCase` (or a `SendCase`): the method
//! belongs to the sealed trait, not to `SelectCase`, so importing
//! `SelectCase` does not bring it into scope...
//!
//! ```compile_fail
//! use greenhub::channel::{RecvCase, SelectCase};
//! let (_tx, rx) = greenhub::channel::unbounded::<u8>();
//! let mut case = RecvCase::new(&rx);
//! case.link(&(), 0);
//! ```
//!
//! ...and the sealed trait itself cannot be imported (its module is
//! private):
//!
//! ```compile_fail
//! use greenhub::channel::select::sealed::Case;
//! ```
//!
//! Through a `dyn SelectCase` the sealed methods resolve, but `link` and
//! `unlink` are `unsafe fn`, so safe code cannot call them:
//!
//! ```compile_fail
//! let (tx, _rx) = greenhub::channel::unbounded::<u8>();
//! let mut case = greenhub::channel::SendCase::new(&tx, 1);
//! let case: &mut dyn greenhub::channel::SelectCase = &mut case;
//! case.unlink();
//! ```
//!
//! A user cannot construct a `Selector` (so cannot produce the `&Selector`
//! that `link` wants): the type is not exported, not even by name:
//!
//! ```compile_fail
//! let sel = greenhub::channel::Selector::new();
//! ```
//!
//! ```compile_fail
//! fn takes(_: &greenhub::channel::Selector) {}
//! ```
//!
//! What the macro itself does stays available: making cases and running
//! them through `__select`, which leaves nothing linked when it returns.
//!
//! ```
//! use greenhub::channel::{self, __select, RecvCase, SelectCase};
//! let (tx, rx) = channel::unbounded::<u8>();
//! let mut case = RecvCase::new(&rx);
//! let no_wait = Some(None);
//! assert_eq!(__select(&mut [&mut case as &mut dyn SelectCase], no_wait), None);
//! tx.send(1).unwrap(); // nothing of the select is linked any more
//! assert_eq!(rx.recv(), Ok(1));
//! ```

use std::cell::UnsafeCell;
use std::time::Instant;

use super::chan::{RecvReq, Selector, SendReq};
use super::{Receiver, RecvError, SendError, Sender};
use crate::greenlet::runinfo::{WaitKind, WaitOn};
use crate::greenlet::wait::{Interrupt, Wake, park_until};
use crate::sync::waitlist::Node;

mod sealed {
    use super::Selector;

    /// The protocol of one select arm (steps 1, 2 and 4 of the module
    /// docs). Public in a private module: nameable, hence implementable and
    /// importable, only inside greenhub (see the module docs).
    pub trait Case {
        /// Completes the operation now if it can (step 1). If it cannot, it
        /// readies the node for `link`: gives it the caller as its waiter
        /// (`Node::arm`). Drops an outcome left from an earlier select. Safe:
        /// the node is never linked when anyone holds `&mut self` but
        /// `__select` between `link` and `unlink`, and that calls nothing
        /// else.
        fn try_now(&mut self) -> bool;

        /// Links the node unless the channel is ready (step 2); `false`
        /// (nothing linked) if it is ready. Runs no user code.
        ///
        /// # Safety
        ///
        /// The node is not linked; `try_now` ran and returned `false` since
        /// it was last linked (so no outcome is held and the node has the
        /// caller as its waiter). If this returns `true`, `unlink` must
        /// run before `self` is moved, dropped or used otherwise, and
        /// before `sel` dies.
        unsafe fn link(&mut self, sel: &Selector, case: usize) -> bool;

        /// Unlinks the node if it is linked, keeping an outcome a claimer
        /// left in it (step 4). Never panics and runs no user code (moves
        /// values, drops none), so it can run while unwinding.
        ///
        /// # Safety
        ///
        /// `link` returned `true` for this node (it may have been popped
        /// since) and `unlink` has not run since.
        unsafe fn unlink(&mut self);
    }
}

/// One arm of a `select!` (an implementation detail of the macro). Sealed:
/// only [`RecvCase`] and [`SendCase`] implement it.
///
/// ```
/// use greenhub::channel::{self, RecvCase, SelectCase};
/// let (_tx, rx) = channel::unbounded::<u8>();
/// let mut case = RecvCase::new(&rx);
/// let _arm: &mut dyn SelectCase = &mut case;
/// ```
#[doc(hidden)]
pub trait SelectCase: sealed::Case {}

/// A `recv(rx)` arm.
///
/// ```
/// let (_tx, rx) = greenhub::channel::unbounded::<u8>();
/// let case = greenhub::channel::RecvCase::new(&rx);
/// assert!(!case.is_won());
/// ```
#[doc(hidden)]
pub struct RecvCase<'a, T> {
    rx: &'a Receiver<T>,
    /// Addressed by raw pointer while linked: in an `UnsafeCell`, and `Node`
    /// is `!Unpin`, so `&mut self` never asserts unique access to it.
    node: UnsafeCell<Node<RecvReq<T>>>,
    outcome: Option<Result<T, RecvError>>,
}

/// A `send(tx, value)` arm.
///
/// ```
/// let (tx, _rx) = greenhub::channel::unbounded::<u8>();
/// let case = greenhub::channel::SendCase::new(&tx, 1);
/// assert!(!case.is_won());
/// ```
#[doc(hidden)]
pub struct SendCase<'a, T> {
    tx: &'a Sender<T>,
    node: UnsafeCell<Node<SendReq<T>>>,
    value: Option<T>,
    outcome: Option<Result<(), SendError<T>>>,
}

impl<'a, T> RecvCase<'a, T> {
    /// A case receiving from `rx`.
    ///
    /// ```
    /// let (_tx, rx) = greenhub::channel::unbounded::<u8>();
    /// let _case = greenhub::channel::RecvCase::new(&rx);
    /// ```
    pub fn new(rx: &'a Receiver<T>) -> Self {
        RecvCase {
            rx,
            node: UnsafeCell::new(Node::unarmed(RecvReq::plain())),
            outcome: None,
        }
    }

    /// Whether this arm won.
    ///
    /// ```
    /// let (_tx, rx) = greenhub::channel::unbounded::<u8>();
    /// assert!(!greenhub::channel::RecvCase::new(&rx).is_won());
    /// ```
    pub fn is_won(&self) -> bool {
        self.outcome.is_some()
    }

    /// The outcome of the winning arm.
    ///
    /// ```
    /// use greenhub::channel::{self, __select, RecvCase, SelectCase};
    /// let (tx, rx) = channel::unbounded::<u8>();
    /// tx.send(7).unwrap();
    /// let mut case = RecvCase::new(&rx);
    /// assert_eq!(__select(&mut [&mut case as &mut dyn SelectCase], None), Some(0));
    /// assert_eq!(case.take(), Ok(7));
    /// ```
    pub fn take(&mut self) -> Result<T, RecvError> {
        self.outcome
            .take()
            .expect("greenhub: select arm did not win")
    }
}

impl<'a, T> SendCase<'a, T> {
    /// A case sending `value` on `tx`.
    ///
    /// ```
    /// let (tx, _rx) = greenhub::channel::unbounded::<u8>();
    /// let _case = greenhub::channel::SendCase::new(&tx, 1);
    /// ```
    pub fn new(tx: &'a Sender<T>, value: T) -> Self {
        SendCase {
            tx,
            node: UnsafeCell::new(Node::unarmed(SendReq::plain_empty())),
            value: Some(value),
            outcome: None,
        }
    }

    /// Whether this arm won.
    ///
    /// ```
    /// let (tx, _rx) = greenhub::channel::unbounded::<u8>();
    /// assert!(!greenhub::channel::SendCase::new(&tx, 1).is_won());
    /// ```
    pub fn is_won(&self) -> bool {
        self.outcome.is_some()
    }

    /// The outcome of the winning arm.
    ///
    /// ```
    /// use greenhub::channel::{self, __select, SelectCase, SendCase};
    /// let (tx, rx) = channel::unbounded::<u8>();
    /// let mut case = SendCase::new(&tx, 7);
    /// assert_eq!(__select(&mut [&mut case as &mut dyn SelectCase], None), Some(0));
    /// assert_eq!(case.take(), Ok(()));
    /// assert_eq!(rx.recv(), Ok(7));
    /// ```
    pub fn take(&mut self) -> Result<(), SendError<T>> {
        self.outcome
            .take()
            .expect("greenhub: select arm did not win")
    }
}

impl<T> std::fmt::Debug for RecvCase<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvCase").finish_non_exhaustive()
    }
}

impl<T> std::fmt::Debug for SendCase<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendCase").finish_non_exhaustive()
    }
}

impl<T> SelectCase for RecvCase<'_, T> {}

impl<T> sealed::Case for RecvCase<'_, T> {
    fn try_now(&mut self) -> bool {
        // An outcome left from an earlier select (not taken) goes now, while
        // nothing is linked, so that `unlink` never has one to drop.
        self.outcome = None;
        let mut st = self.rx.chan.state.lock();
        let outcome = match st.try_recv() {
            Ok((v, woken)) => {
                drop(st);
                if let Some(w) = woken {
                    w.wake();
                }
                Ok(v)
            }
            Err(super::TryRecvError::Disconnected) => Err(RecvError),
            Err(super::TryRecvError::Empty) => {
                drop(st);
                // Not linked (see `Case::try_now`), so `&mut` to the node is
                // unique. Done here, with nothing linked, because the old
                // waiter's drop may run a greenlet's destructors.
                self.node.get_mut().arm();
                return false;
            }
        };
        self.outcome = Some(outcome);
        true
    }

    unsafe fn link(&mut self, sel: &Selector, case: usize) -> bool {
        let mut st = self.rx.chan.state.lock();
        if st.recv_ready(sel) {
            return false;
        }
        let node = self.node.get();
        // SAFETY: the node is ours and unlinked (caller's contract), so we
        // may write it; `slot` is empty (the last `unlink` took it), so the
        // write drops nothing; `try_now` armed it, so a claimer finds a
        // waiter. Once pushed it stays in `self`, which the caller keeps in
        // place until `unlink`, and `sel` outlives that (caller's contract
        // again): the pointers the list and the claimers use stay valid
        // while the node is linked. The lock is held.
        unsafe {
            let req = (*node).data_mut();
            req.sel = sel;
            req.case = case;
            req.slot = None;
            st.recvs.push_back(node);
        }
        true
    }

    unsafe fn unlink(&mut self) {
        let mut st = self.rx.chan.state.lock();
        let node = self.node.get();
        // SAFETY: our node, linked in this channel's list or popped from it
        // (caller's contract), and we hold that channel's lock, which every
        // claimer held while it touched the node: it is ours alone again
        // after `remove`. A claimer wrote its outcome under this lock.
        // `self.outcome` is empty (`try_now` emptied it before `link`, and
        // only an unlink fills it), so the assignment drops nothing.
        unsafe {
            st.recvs.remove(node);
            if let Some(outcome) = (*node).data_mut().slot.take() {
                self.outcome = Some(outcome);
            }
        }
    }
}

impl<T> SelectCase for SendCase<'_, T> {}

impl<T> sealed::Case for SendCase<'_, T> {
    fn try_now(&mut self) -> bool {
        self.outcome = None;
        let value = self
            .value
            .take()
            .expect("greenhub: a select send arm was used again after it completed");
        let mut st = self.tx.chan.state.lock();
        let outcome = match st.try_send(self.tx.chan.cap, value) {
            Ok(woken) => {
                drop(st);
                if let Some(w) = woken {
                    w.wake();
                }
                Ok(())
            }
            Err(super::TrySendError::Disconnected(v)) => Err(SendError(v)),
            Err(super::TrySendError::Full(v)) => {
                drop(st);
                self.value = Some(v);
                // As in `RecvCase::try_now`.
                self.node.get_mut().arm();
                return false;
            }
        };
        self.outcome = Some(outcome);
        true
    }

    unsafe fn link(&mut self, sel: &Selector, case: usize) -> bool {
        let mut st = self.tx.chan.state.lock();
        if st.send_ready(self.tx.chan.cap, sel) {
            return false;
        }
        let node = self.node.get();
        // SAFETY: as in `RecvCase::link`; `value` and `sent` in the node are
        // empty (the last `unlink` took them), so these writes drop nothing.
        unsafe {
            let req = (*node).data_mut();
            req.sel = sel;
            req.case = case;
            req.sent = None;
            req.value = self.value.take();
            st.sends.push_back(node);
        }
        true
    }

    unsafe fn unlink(&mut self) {
        let mut st = self.tx.chan.state.lock();
        let node = self.node.get();
        // SAFETY: as in `RecvCase::unlink`. `self.value` is empty (`link`
        // moved it into the node) and `self.outcome` too, so nothing is
        // dropped. The value is in the node unless a receiver took it
        // (`sent == Some(true)`), so the `Some(false)` arm finds it there.
        unsafe {
            st.sends.remove(node);
            let req = (*node).data_mut();
            self.value = req.value.take();
            match req.sent.take() {
                Some(true) => self.outcome = Some(Ok(())),
                Some(false) => {
                    if let Some(v) = self.value.take() {
                        self.outcome = Some(Err(SendError(v)));
                    }
                }
                None => {}
            }
        }
    }
}

/// The cases of one select round whose nodes are linked: `cases[..n]`.
/// Dropping it unlinks them, on return and while unwinding alike.
struct Linked<'s, 'c> {
    cases: &'s mut [&'c mut dyn SelectCase],
    n: usize,
}

impl Drop for Linked<'_, '_> {
    fn drop(&mut self) {
        for case in self.cases[..self.n].iter_mut() {
            // SAFETY: `link` returned `true` for each of `cases[..n]` and
            // none was unlinked since (`n` only grows, and this runs once).
            // `unlink` does not panic, so every one of them is unlinked.
            unsafe { case.unlink() };
        }
    }
}

/// Runs a select over `cases` (in order). `deadline`: `None` waits without
/// limit, `Some(None)` does not wait at all, `Some(Some(t))` waits until
/// `t`. Returns the index of the winning case, or `None` on timeout. Every
/// node it links is unlinked before it returns or unwinds.
///
/// ```
/// use greenhub::channel::{self, __select, RecvCase, SelectCase};
/// let (_tx1, rx1) = channel::unbounded::<u8>();
/// let (tx2, rx2) = channel::unbounded::<u8>();
/// tx2.send(2).unwrap();
/// let (mut a, mut b) = (RecvCase::new(&rx1), RecvCase::new(&rx2));
/// let won = __select(&mut [&mut a as &mut dyn SelectCase, &mut b], Some(None));
/// assert_eq!(won, Some(1));
/// assert_eq!(b.take(), Ok(2));
/// ```
#[doc(hidden)]
pub fn __select(
    cases: &mut [&mut dyn SelectCase],
    deadline: Option<Option<Instant>>,
) -> Option<usize> {
    loop {
        // Nothing is linked here (the last round's guard unlinked all).
        for (i, case) in cases.iter_mut().enumerate() {
            if case.try_now() {
                return Some(i);
            }
        }
        let deadline = match deadline {
            Some(None) => return None,
            Some(Some(d)) if Instant::now() >= d => return None,
            Some(Some(d)) => Some(d),
            None => None,
        };
        // Declared before the guard, so it is dropped after it: it outlives
        // every link.
        let sel = Selector::new();
        let mut linked = Linked {
            cases: &mut *cases,
            n: 0,
        };
        while linked.n < linked.cases.len() {
            let k = linked.n;
            // SAFETY: case `k` is not linked (cases are distinct `&mut`s, and
            // `linked` covers `..k` only) and `try_now` ran on it this round.
            // If it links, `n` covers it at once and the guard's drop
            // unlinks it before `cases` (borrowed for this whole call, so
            // unmoved) or `sel` (dropped after the guard) can go.
            if !unsafe { linked.cases[k].link(&sel, k) } {
                break;
            }
            linked.n += 1;
        }
        let mut timed_out = false;
        let mut interrupt: Option<Interrupt> = None;
        if linked.n < linked.cases.len() {
            // A channel became ready: retry unless a case already won.
            sel.abort();
        } else {
            while sel.winner().is_none() {
                match park_until(deadline, WaitOn::new(WaitKind::ChannelSelect, 0)) {
                    Wake::Woken => {}
                    Wake::TimedOut => {
                        timed_out = sel.abort();
                        break;
                    }
                    Wake::Interrupted(i) => {
                        if sel.abort() {
                            interrupt = Some(i);
                        }
                        break;
                    }
                }
            }
        }
        // Unlinks every node; the winner's outcome moves into its case.
        drop(linked);
        if let Some(k) = sel.winner() {
            return Some(k);
        }
        if let Some(i) = interrupt {
            i.raise();
        }
        if timed_out {
            return None;
        }
    }
}

/// Waits on several channel operations at once and runs the arm of the
/// first that completes, like Go's `select` (and crossbeam's `select!`).
///
/// Arms, separated by commas:
///
/// - `recv(rx) -> res => body`: `res` is `Result<T, RecvError>` (an error
///   once the channel is closed and drained);
/// - `send(tx, value) -> res => body`: `res` is `Result<(), SendError<T>>`;
///   if another arm wins, `value` is dropped unsent;
/// - at most one last `default => body` (run if no operation can complete
///   now: the select does not wait) or `default(duration) => body` (run if
///   none completed within `duration`).
///
/// Exactly one operation completes. Arms are tried in the order written, so
/// a select in single-threaded mode is deterministic. The wait parks the
/// greenlet (or blocks a plain thread) and is a cancellation point for
/// kills and [`timeout`](crate::timeout); an operation that completed just
/// as the deadline passed or the kill arrived is kept, not lost.
///
/// ```
/// use std::time::Duration;
/// use greenhub::channel;
///
/// greenhub::run(|| {
///     let (tx1, rx1) = channel::unbounded::<u32>();
///     let (tx2, rx2) = channel::unbounded::<&str>();
///     greenhub::spawn(move || {
///         greenhub::sleep(Duration::from_millis(5));
///         tx2.send("hello").unwrap();
///     });
///     let got = greenhub::select! {
///         recv(rx1) -> n => format!("number {n:?}"),
///         recv(rx2) -> s => format!("string {}", s.unwrap()),
///         default(Duration::from_secs(5)) => "timeout".to_string(),
///     };
///     assert_eq!(got, "string hello");
///     drop(tx1);
/// });
/// ```
#[macro_export]
macro_rules! select {
    (@parse [$($done:tt)*] recv($rx:expr) -> $p:pat => $b:expr $(, $($rest:tt)*)?) => {{
        let mut __case = $crate::channel::RecvCase::new(&$rx);
        $crate::select!(@parse [$($done)* (__case, $p, $b)] $($($rest)*)?)
    }};
    (@parse [$($done:tt)*] send($tx:expr, $v:expr) -> $p:pat => $b:expr $(, $($rest:tt)*)?) => {{
        let mut __case = $crate::channel::SendCase::new(&$tx, $v);
        $crate::select!(@parse [$($done)* (__case, $p, $b)] $($($rest)*)?)
    }};
    (@parse [$($done:tt)*] default => $b:expr $(,)?) => {
        $crate::select!(@run [$($done)*] ::std::option::Option::Some(::std::option::Option::None), $b)
    };
    (@parse [$($done:tt)*] default($d:expr) => $b:expr $(,)?) => {
        $crate::select!(@run [$($done)*]
            ::std::option::Option::Some(::std::time::Instant::now().checked_add($d)), $b)
    };
    (@parse [$($done:tt)*]) => {
        $crate::select!(@run [$($done)*] ::std::option::Option::None, ::std::unreachable!())
    };
    (@run [$(($case:ident, $p:pat, $b:expr))*] $deadline:expr, $timeout:expr) => {{
        $crate::channel::__select(
            &mut [$(&mut $case as &mut dyn $crate::channel::SelectCase),*],
            $deadline,
        );
        // Exactly the winning case holds an outcome (none on timeout).
        $(
            if $case.is_won() {
                let $p = $case.take();
                $b
            } else
        )* {
            $timeout
        }
    }};
    ($($arms:tt)+) => {
        $crate::select!(@parse [] $($arms)+)
    };
}
