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

use std::cell::UnsafeCell;
use std::time::Instant;

use super::chan::{RecvReq, Selector, SendReq};
use super::{Receiver, RecvError, SendError, Sender};
use crate::greenlet::trace::{WaitKind, WaitOn};
use crate::greenlet::wait::{Interrupt, Wake, park_until};
use crate::sync::waitlist::Node;

/// One arm of a `select!` (an implementation detail of the macro).
#[doc(hidden)]
pub trait SelectCase {
    /// Completes the operation now if it can (step 1).
    fn try_now(&mut self) -> bool;
    /// Links a node unless the channel is ready (step 2); `false` if ready.
    fn link(&mut self, sel: &Selector, case: usize) -> bool;
    /// Unlinks the node, keeping an outcome a claimer left in it (step 4).
    fn unlink(&mut self);
}

/// A `recv(rx)` arm.
#[doc(hidden)]
pub struct RecvCase<'a, T> {
    rx: &'a Receiver<T>,
    /// Addressed by raw pointer while linked: in an `UnsafeCell`, and `Node`
    /// is `!Unpin`, so `&mut self` never asserts unique access to it.
    node: UnsafeCell<Node<RecvReq<T>>>,
    outcome: Option<Result<T, RecvError>>,
}

/// A `send(tx, value)` arm.
#[doc(hidden)]
pub struct SendCase<'a, T> {
    tx: &'a Sender<T>,
    node: UnsafeCell<Node<SendReq<T>>>,
    value: Option<T>,
    outcome: Option<Result<(), SendError<T>>>,
}

impl<'a, T> RecvCase<'a, T> {
    /// A case receiving from `rx`.
    pub fn new(rx: &'a Receiver<T>) -> Self {
        RecvCase {
            rx,
            node: UnsafeCell::new(Node::new(RecvReq::plain())),
            outcome: None,
        }
    }

    /// Whether this arm won.
    pub fn is_won(&self) -> bool {
        self.outcome.is_some()
    }

    /// The outcome of the winning arm.
    pub fn take(&mut self) -> Result<T, RecvError> {
        self.outcome
            .take()
            .expect("greenhub: select arm did not win")
    }
}

impl<'a, T> SendCase<'a, T> {
    /// A case sending `value` on `tx`.
    pub fn new(tx: &'a Sender<T>, value: T) -> Self {
        SendCase {
            tx,
            node: UnsafeCell::new(Node::new(SendReq::plain_empty())),
            value: Some(value),
            outcome: None,
        }
    }

    /// Whether this arm won.
    pub fn is_won(&self) -> bool {
        self.outcome.is_some()
    }

    /// The outcome of the winning arm.
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

impl<T> SelectCase for RecvCase<'_, T> {
    fn try_now(&mut self) -> bool {
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
            Err(super::TryRecvError::Empty) => return false,
        };
        self.outcome = Some(outcome);
        true
    }

    fn link(&mut self, sel: &Selector, case: usize) -> bool {
        let mut st = self.rx.chan.state.lock();
        if st.recv_ready(sel) {
            return false;
        }
        let node = self.node.get();
        // SAFETY: the node is ours and unlinked; it stays in `self`, which the
        // select keeps borrowed (unmoved) until `unlink` below ran. The
        // selector outlives the link for the same reason.
        unsafe {
            let req = (*node).data_mut();
            req.sel = sel;
            req.case = case;
            req.slot = None;
            st.recvs.push_back(node);
        }
        true
    }

    fn unlink(&mut self) {
        let mut st = self.rx.chan.state.lock();
        let node = self.node.get();
        // SAFETY: our node, linked in this channel's list or unlinked; lock
        // held. A claimer wrote its outcome under this lock.
        unsafe {
            st.recvs.remove(node);
            if let Some(outcome) = (*node).data_mut().slot.take() {
                self.outcome = Some(outcome);
            }
        }
    }
}

impl<T> SelectCase for SendCase<'_, T> {
    fn try_now(&mut self) -> bool {
        let value = self
            .value
            .take()
            .expect("greenhub: select send value missing");
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
                self.value = Some(v);
                return false;
            }
        };
        self.outcome = Some(outcome);
        true
    }

    fn link(&mut self, sel: &Selector, case: usize) -> bool {
        let mut st = self.tx.chan.state.lock();
        if st.send_ready(self.tx.chan.cap, sel) {
            return false;
        }
        let node = self.node.get();
        // SAFETY: as in `RecvCase::link`.
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

    fn unlink(&mut self) {
        let mut st = self.tx.chan.state.lock();
        let node = self.node.get();
        // SAFETY: as in `RecvCase::unlink`.
        unsafe {
            st.sends.remove(node);
            let req = (*node).data_mut();
            self.value = req.value.take();
            match req.sent.take() {
                Some(true) => self.outcome = Some(Ok(())),
                Some(false) => {
                    let v = self.value.take().expect("greenhub: unsent value missing");
                    self.outcome = Some(Err(SendError(v)));
                }
                None => {}
            }
        }
    }
}

/// Runs a select over `cases` (in order). `deadline`: `None` waits without
/// limit, `Some(None)` does not wait at all, `Some(Some(t))` waits until
/// `t`. Returns the index of the winning case, or `None` on timeout.
#[doc(hidden)]
pub fn __select(
    cases: &mut [&mut dyn SelectCase],
    deadline: Option<Option<Instant>>,
) -> Option<usize> {
    loop {
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
        let sel = Selector::new();
        let mut linked = 0;
        while linked < cases.len() && cases[linked].link(&sel, linked) {
            linked += 1;
        }
        let mut timed_out = false;
        let mut interrupt: Option<Interrupt> = None;
        if linked < cases.len() {
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
        for case in cases[..linked].iter_mut() {
            case.unlink();
        }
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
