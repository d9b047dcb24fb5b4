//! Which greenlet a hub is running, readable from other threads: how the
//! blocking monitor (and the run-info dump, for a hub that does not answer)
//! names the greenlet that holds a hub.
//!
//! # The protocol
//!
//! A [`RunningSlot`] has two words: `running`, the address of the header of
//! the greenlet the hub is resuming (0 between resumes), and `reading`, set
//! while an observer looks at that header.
//!
//! - The hub stores `running` (release) before each resume and clears it
//!   after, when its runtime has an observer (`Shared::watched`). Those are
//!   plain stores: a few cycles per switch, nothing else.
//! - An observer sets `reading`, issues a SeqCst fence, loads `running`
//!   (acquire) and, if it is not 0, reads the header (id, name, spawn site;
//!   all immutable), then clears `reading` (release).
//! - The hub lets go of a greenlet's header only through [`RunningSlot::retire`]:
//!   after its last resume cleared `running`, and before the greenlet leaves
//!   the hub's live set (whose `Arc` may be the last one), it issues a SeqCst
//!   fence and waits while `reading` is set.
//!
//! Why that suffices: hub and observer each store one word, fence, and load
//! the other's word (Dekker's pattern). The SeqCst fences forbid both loads
//! from missing the other side's store. So either the observer loads 0 (or a
//! later greenlet, which the same argument protects), or the hub sees
//! `reading` set and waits until the observer's release store, which orders
//! every read of the header before the hub's free. A header is never read
//! after it is freed. `tests/loom_watch.rs` checks this with loom.
//!
//! The fence in `retire` costs about as much as an uncontended lock, once per
//! finished greenlet, so hubs pay it (and the stores) only when a runtime has
//! an observer (the blocking monitor is on); otherwise nothing reads the slot.

use crate::loom::{AtomicBool, AtomicUsize, Ordering::*, fence};

/// See the module docs. Aligned like `HubStats`, for the same reason: the
/// hub stores to it twice per switch.
#[derive(Default)]
#[repr(align(128))]
pub struct RunningSlot {
    running: AtomicUsize,
    reading: AtomicBool,
}

impl RunningSlot {
    /// Hub: about to resume the greenlet whose header is at `header`.
    #[inline(always)]
    pub fn enter(&self, header: usize) {
        self.running.store(header, Release);
    }

    /// Hub: the resume returned.
    #[inline(always)]
    pub fn leave(&self) {
        self.running.store(0, Release);
    }

    /// Whether the hub is inside a greenlet (a hint: it may change at once).
    #[inline]
    pub fn is_running(&self) -> bool {
        self.running.load(Relaxed) != 0
    }

    /// Hub: about to let go of a greenlet that may have been published by
    /// `enter` (after `leave`). Returns once no observer can still read it.
    pub fn retire(&self) {
        fence(SeqCst);
        while self.reading.load(Acquire) {
            crate::loom::thread::yield_now();
        }
    }

    /// Observer: runs `f` on the address of the running greenlet's header,
    /// which stays alive while `f` runs. `None` if the hub is between
    /// resumes. Observers must not overlap (there is one per slot: the
    /// monitor thread, or a dump under the monitor's lock).
    pub fn observe<R>(&self, f: impl FnOnce(usize) -> R) -> Option<R> {
        self.reading.store(true, Relaxed);
        fence(SeqCst);
        let p = self.running.load(Acquire);
        let r = (p != 0).then(|| f(p));
        self.reading.store(false, Release);
        r
    }
}
