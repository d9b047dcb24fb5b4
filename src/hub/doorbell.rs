//! A hub's doorbell: the token between an idle hub and whoever has work for
//! it.
//!
//! Vocabulary: greenlets *park* (`greenlet::wait`) and the `greenhub::sleep`
//! call *sleeps*; a hub with nothing to run *goes idle* (`hub/idle.rs`) and
//! blocks in its poller, and whoever has work for it *rings* its doorbell.
//! The `idles` metric counts the times a hub went idle.
//!
//! A hub with nothing to run blocks in its `mio::Poll` (with the next timer as
//! timeout). Anyone who publishes work for it (a wake-up of one of its
//! greenlets, or a notification from the idle protocol) must be able to end
//! that block, but should not pay a syscall when the hub is awake anyway.
//!
//! # States
//!
//! - `EMPTY`: the hub is running (or about to check its queues).
//! - `IDLE`: the hub is blocked, or about to block, in its poller.
//! - `NOTIFIED`: somebody published work since the hub last looked.
//!
//! # Steps
//!
//! Hub: `prepare_idle` (CAS `EMPTY -> IDLE`; if it finds `NOTIFIED` it
//! consumes it and does not block), block in the poller, `finish_idle` (swap
//! to `EMPTY`, consuming any notification), then check its queues.
//!
//! Ringer: publish the work, then `ring` (swap to `NOTIFIED`). Only if it
//! found `IDLE` does it write the poller's `mio::Waker` (an eventfd, which is
//! sticky: a wake written before the hub enters `epoll_wait` still ends it).
//!
//! The swap by the ringer is ordered after its push; the hub's CAS or swap
//! is ordered before its queue check. Either the hub sees `NOTIFIED` and does
//! not block, or the ringer sees `IDLE` and writes the waker: no lost
//! wake-up. A waker written after the hub already returned only causes one
//! spurious poll wake-up later. Model-checked in `tests/loom_idle.rs`, and
//! in `tests/loom_park.rs`, `tests/loom_kill.rs` and `tests/loom_migrate.rs`,
//! whose hubs wait for their inbox with [`Doorbell::idle_with`] and whose
//! wakers hand greenlets over with `Inbox::push_and_ring`.

use crate::loom::{AtomicUsize, Ordering::*};

const EMPTY: usize = 0;
const IDLE: usize = 1;
const NOTIFIED: usize = 2;

/// See the module docs.
pub struct Doorbell(AtomicUsize);

impl Default for Doorbell {
    fn default() -> Self {
        Doorbell(AtomicUsize::new(EMPTY))
    }
}

impl Doorbell {
    /// The hub, before blocking. Returns `false` if a notification was
    /// pending (consumed): the hub must not block.
    #[inline]
    pub fn prepare_idle(&self) -> bool {
        match self.0.compare_exchange(EMPTY, IDLE, AcqRel, Acquire) {
            Ok(_) => true,
            Err(found) => {
                // Only the hub itself moves the token to `IDLE`, and its
                // `finish_idle` always moved it back.
                debug_assert_eq!(
                    found, NOTIFIED,
                    "Doorbell: the hub found its token IDLE before going idle (finish_idle skipped?)"
                );
                let prev = self.0.swap(EMPTY, AcqRel);
                debug_assert_eq!(
                    prev, NOTIFIED,
                    "Doorbell: a NOTIFIED token changed under the hub to something else"
                );
                false
            }
        }
    }

    /// The hub, after blocking (or deciding not to).
    #[inline]
    pub fn finish_idle(&self) {
        self.0.swap(EMPTY, AcqRel);
    }

    /// Anyone, after publishing work for the hub. Returns `true` if the hub
    /// is (about to be) blocked and the caller must wake its poller.
    #[inline]
    pub fn ring(&self) -> bool {
        self.0.swap(NOTIFIED, AcqRel) == IDLE
    }

    /// The hub's whole idle wait: `block` (its poller: `epoll_wait` with the next
    /// timer as timeout) runs only if no notification is pending, and any
    /// notification is consumed afterwards. The hub checks its queues after
    /// this returns.
    #[inline]
    pub fn idle_with(&self, block: impl FnOnce()) {
        if self.prepare_idle() {
            block();
        }
        self.finish_idle();
    }

    /// The ringer's whole step, after it published the work: `wake` (the
    /// write to the poller's eventfd `mio::Waker`) runs only if the hub is,
    /// or is about to be, blocked.
    #[inline]
    pub fn ring_with(&self, wake: impl FnOnce()) {
        if self.ring() {
            wake();
        }
    }
}
