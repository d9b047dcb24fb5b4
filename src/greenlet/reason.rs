//! The kill-reason slot of a greenlet: the reason that
//! [`JoinHandle::kill_with`](crate::JoinHandle::kill_with) hands to the
//! greenlet's `join`, and the rule that decides it: the first kill through
//! the handle (`kill` or `kill_with`) wins, and nothing is attached once the
//! greenlet has ended.
//!
//! The slot is one word, separate from the state word (it is not part of the
//! park/wake protocol): `EMPTY`, `CLAIMED`, or the address of a boxed reason.
//! A killer offers its reason *before* it sets `KILLED` (`State::kill`), so
//! the greenlet, which takes the reason only after it observed `KILLED`
//! (acquire), sees it: the reason's write happens-before that of `KILLED`.

use std::any::Any;
use std::sync::atomic::{AtomicUsize, Ordering::*};

use crate::error::drop_payload_safely;

/// A kill reason, as `JoinError` carries it.
pub(crate) type Reason = Box<dyn Any + Send + 'static>;

/// No kill through the handle yet.
const EMPTY: usize = 0;
/// Decided without a reason: a plain kill came first, or the greenlet ended.
/// A boxed reason's address is never 1 (a `Box` is aligned and non-null).
const CLAIMED: usize = 1;

/// One greenlet's kill-reason slot.
pub(crate) struct KillReason(AtomicUsize);

impl KillReason {
    pub(crate) const fn new() -> KillReason {
        KillReason(AtomicUsize::new(EMPTY))
    }

    /// A plain kill through the handle: decides "no reason" unless a reason
    /// was offered first.
    pub(crate) fn claim(&self) {
        let _ = self.0.compare_exchange(EMPTY, CLAIMED, AcqRel, Acquire);
    }

    /// A kill with `reason`: keeps it if no kill came first and the greenlet
    /// has not ended; otherwise gives it back.
    pub(crate) fn offer(&self, reason: Reason) -> Result<(), Reason> {
        if self.0.load(Acquire) != EMPTY {
            return Err(reason);
        }
        let p = Box::into_raw(Box::new(reason));
        match self.0.compare_exchange(EMPTY, p as usize, AcqRel, Acquire) {
            Ok(_) => Ok(()),
            // SAFETY: `p` came from `Box::into_raw` above and was not
            // published (the exchange failed), so it is still ours.
            Err(_) => Err(*unsafe { Box::from_raw(p) }),
        }
    }

    /// The greenlet ended killed: takes the reason, if one was offered, and
    /// closes the slot (later offers are given back).
    pub(crate) fn take(&self) -> Option<Reason> {
        let p = self.0.swap(CLAIMED, AcqRel);
        // SAFETY: a value above `CLAIMED` is a pointer from `Box::into_raw`
        // in `offer`, published once; the swap took it out of the slot, so
        // exactly one caller (us) owns it now.
        (p > CLAIMED).then(|| *unsafe { Box::from_raw(p as *mut Reason) })
    }
}

impl Drop for KillReason {
    fn drop(&mut self) {
        // A reason offered while the greenlet was ending normally (it
        // finished before the kill could count): nobody will read it.
        if let Some(reason) = self.take() {
            drop_payload_safely(reason);
        }
    }
}
