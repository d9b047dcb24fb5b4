//! The shared state of one channel and the operations on it, under its lock.
//!
//! A channel is a buffer (`VecDeque`, capacity `cap`, `None` for unbounded,
//! `Some(0)` for rendezvous) and two FIFO wait lists: receivers waiting for a
//! value (only while the buffer is empty) and senders waiting for room (only
//! while it is full; for a rendezvous channel, always). A value goes straight
//! into a waiting receiver's node when there is one, so a woken receiver
//! never has to race for it.
//!
//! # Select and claims
//!
//! A `select!` waits on several channels at once: it links one node into each,
//! all pointing at one [`Selector`] on its stack. Any party that wants to
//! complete a waiting node must first *claim* it: a plain node (no selector)
//! always can; a select node only by moving its selector from `WAITING` to
//! "case k won" with a compare-and-swap. Exactly one node of a select can
//! thus complete; the others are *stale*, and whoever meets a stale node
//! drops it from the list and moves on. The select owner aborts with the same
//! CAS (`WAITING -> ABORTED`) when it times out; if that fails, a case won
//! and its outcome is already in its node. All claims happen under the lock
//! of the node's channel, so the outcome written with a claim is visible to
//! the owner once it takes that lock to unlink its nodes.

use std::collections::VecDeque;
use std::ptr;

use crate::channel::error::{RecvError, TryRecvError, TrySendError};
use crate::greenlet::waiter::Waiter;
use crate::loom::{AtomicUsize, Ordering::*, SpinLock};
use crate::sync::waitlist::WaitList;

/// The shared part of a channel.
pub(crate) struct Chan<T> {
    pub(crate) state: SpinLock<State<T>>,
    pub(crate) cap: Option<usize>,
}

pub(crate) struct State<T> {
    pub(crate) buf: VecDeque<T>,
    pub(crate) recvs: WaitList<RecvReq<T>>,
    pub(crate) sends: WaitList<SendReq<T>>,
    pub(crate) senders: usize,
    pub(crate) receivers: usize,
    /// `close()` was called.
    pub(crate) closed: bool,
}

/// A waiting receiver: where to put the value (or the news of closing).
pub(crate) struct RecvReq<T> {
    pub(crate) sel: *const Selector,
    pub(crate) case: usize,
    pub(crate) slot: Option<Result<T, RecvError>>,
}

/// A waiting sender: its value until a receiver takes it, and the outcome.
pub(crate) struct SendReq<T> {
    pub(crate) sel: *const Selector,
    pub(crate) case: usize,
    pub(crate) value: Option<T>,
    /// `Some(true)`: taken; `Some(false)`: the channel closed.
    pub(crate) sent: Option<bool>,
}

// SAFETY: the selector pointer is only dereferenced under the channel's lock
// while the node is linked, when its owner is blocked in `select` with the
// selector alive on its stack; the selector is an atomic. The rest is `T`.
unsafe impl<T: Send> Send for RecvReq<T> {}
// SAFETY: as for `RecvReq`.
unsafe impl<T: Send> Send for SendReq<T> {}

impl<T> RecvReq<T> {
    pub(crate) fn plain() -> RecvReq<T> {
        RecvReq {
            sel: ptr::null(),
            case: 0,
            slot: None,
        }
    }
}

impl<T> SendReq<T> {
    pub(crate) fn plain(value: T) -> SendReq<T> {
        SendReq {
            value: Some(value),
            ..SendReq::plain_empty()
        }
    }

    pub(crate) fn plain_empty() -> SendReq<T> {
        SendReq {
            sel: ptr::null(),
            case: 0,
            value: None,
            sent: None,
        }
    }
}

/// The decision word shared by the nodes of one `select!` (an
/// implementation detail of the macro).
#[doc(hidden)]
#[derive(Debug)]
pub struct Selector {
    state: AtomicUsize,
}

const WAITING: usize = 0;
const ABORTED: usize = usize::MAX;

impl Selector {
    pub(crate) fn new() -> Selector {
        Selector {
            state: AtomicUsize::new(WAITING),
        }
    }

    /// The case that won, if one did.
    pub(crate) fn winner(&self) -> Option<usize> {
        match self.state.load(Acquire) {
            WAITING | ABORTED => None,
            k => Some(k - 1),
        }
    }

    /// The owner gives up; `false` if a case won first.
    pub(crate) fn abort(&self) -> bool {
        self.state
            .compare_exchange(WAITING, ABORTED, AcqRel, Acquire)
            .is_ok()
    }
}

/// Claims a waiting node for completion (see the module docs).
fn claim(sel: *const Selector, case: usize) -> bool {
    if sel.is_null() {
        return true;
    }
    // SAFETY: called under the channel lock on a linked node, whose owner is
    // blocked in `select` with the selector alive (see `RecvReq`'s Send).
    let sel = unsafe { &*sel };
    sel.state
        .compare_exchange(WAITING, case + 1, AcqRel, Acquire)
        .is_ok()
}

/// Whether a waiting node could still be completed by someone other than
/// the select `own` (a heuristic for "the channel is ready", used before
/// linking a select's node; the real decision is the claim).
fn live(sel: *const Selector, own: *const Selector) -> bool {
    if sel.is_null() {
        return true;
    }
    // SAFETY: as in `claim`.
    sel != own && unsafe { &*sel }.state.load(Acquire) == WAITING
}

impl<T> Chan<T> {
    pub(crate) fn new(cap: Option<usize>) -> Chan<T> {
        Chan {
            state: SpinLock::new(State {
                buf: VecDeque::with_capacity(cap.unwrap_or(0).min(1024)),
                recvs: WaitList::new(),
                sends: WaitList::new(),
                senders: 1,
                receivers: 1,
                closed: false,
            }),
            cap,
        }
    }
}

impl<T> State<T> {
    /// No more sends can succeed.
    pub(crate) fn send_closed(&self) -> bool {
        self.closed || self.receivers == 0
    }

    /// Nothing more will arrive once the buffer is drained.
    pub(crate) fn recv_closed(&self) -> bool {
        self.closed || self.senders == 0
    }

    /// Sends `v` now if possible: into a waiting receiver (returned, to be
    /// woken after the lock is released) or the buffer.
    pub(crate) fn try_send(
        &mut self,
        cap: Option<usize>,
        v: T,
    ) -> Result<Option<Waiter>, TrySendError<T>> {
        if self.send_closed() {
            return Err(TrySendError::Disconnected(v));
        }
        while let Some(mut p) = self.recvs.pop() {
            let req = p.data();
            if claim(req.sel, req.case) {
                req.slot = Some(Ok(v));
                return Ok(Some(p.grant()));
            }
        }
        if cap.is_none_or(|c| self.buf.len() < c) {
            self.buf.push_back(v);
            return Ok(None);
        }
        Err(TrySendError::Full(v))
    }

    /// Receives now if possible: from the buffer (then moving a waiting
    /// sender's value in) or straight from a waiting sender. Returns the
    /// sender to wake.
    pub(crate) fn try_recv(&mut self) -> Result<(T, Option<Waiter>), TryRecvError> {
        if let Some(v) = self.buf.pop_front() {
            let mut woken = None;
            while let Some(mut p) = self.sends.pop() {
                let req = p.data();
                if claim(req.sel, req.case) {
                    let moved = req.value.take().expect("greenhub: sender without value");
                    req.sent = Some(true);
                    woken = Some(p.grant());
                    self.buf.push_back(moved);
                    break;
                }
            }
            return Ok((v, woken));
        }
        while let Some(mut p) = self.sends.pop() {
            let req = p.data();
            if claim(req.sel, req.case) {
                let v = req.value.take().expect("greenhub: sender without value");
                req.sent = Some(true);
                return Ok((v, Some(p.grant())));
            }
        }
        if self.recv_closed() {
            Err(TryRecvError::Disconnected)
        } else {
            Err(TryRecvError::Empty)
        }
    }

    /// Whether a send by the select `own` could proceed now.
    pub(crate) fn send_ready(&mut self, cap: Option<usize>, own: *const Selector) -> bool {
        self.send_closed()
            || self.recvs.any(|r| live(r.sel, own))
            || cap.is_none_or(|c| self.buf.len() < c)
    }

    /// Whether a receive by the select `own` could proceed now.
    pub(crate) fn recv_ready(&mut self, own: *const Selector) -> bool {
        !self.buf.is_empty() || self.sends.any(|s| live(s.sel, own)) || self.recv_closed()
    }

    /// Fails every waiting receiver with "closed" (no value will come).
    pub(crate) fn fail_receivers(&mut self) -> Vec<Waiter> {
        let mut woken = Vec::new();
        while let Some(mut p) = self.recvs.pop() {
            let req = p.data();
            if claim(req.sel, req.case) {
                req.slot = Some(Err(RecvError));
                woken.push(p.grant());
            }
        }
        woken
    }

    /// Fails every waiting sender with "closed" (its value stays in its node
    /// and goes back to it).
    pub(crate) fn fail_senders(&mut self) -> Vec<Waiter> {
        let mut woken = Vec::new();
        while let Some(mut p) = self.sends.pop() {
            let req = p.data();
            if claim(req.sel, req.case) {
                req.sent = Some(false);
                woken.push(p.grant());
            }
        }
        woken
    }
}
