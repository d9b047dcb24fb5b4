//! Parking a hub: the token between an idle hub and whoever has work for it.
//!
//! A hub with nothing to run blocks in its `mio::Poll` (with the next timer as
//! timeout). Anyone who publishes work for it (a wake-up of one of its
//! greenlets, or a notification from the idle protocol) must be able to end
//! that block, but should not pay a syscall when the hub is awake anyway.
//!
//! # States
//!
//! - `EMPTY`: the hub is running (or about to check its queues).
//! - `PARKED`: the hub is blocked, or about to block, in its poller.
//! - `NOTIFIED`: somebody published work since the hub last looked.
//!
//! # Steps
//!
//! Hub: `prepare_park` (CAS `EMPTY -> PARKED`; if it finds `NOTIFIED` it
//! consumes it and does not block), block in the poller, `finish_park` (swap
//! to `EMPTY`, consuming any notification), then check its queues.
//!
//! Unparker: publish the work, then `unpark` (swap to `NOTIFIED`). Only if it
//! found `PARKED` does it write the poller's `mio::Waker` (an eventfd, which is
//! sticky: a wake written before the hub enters `epoll_wait` still ends it).
//!
//! The swap by the unparker is ordered after its push; the hub's CAS or swap
//! is ordered before its queue check. Either the hub sees `NOTIFIED` and does
//! not block, or the unparker sees `PARKED` and writes the waker: no lost
//! wake-up. A waker written after the hub already returned only causes one
//! spurious poll wake-up later. Model-checked in `tests/loom_idle.rs`.

use crate::loom::{AtomicUsize, Ordering::*};

const EMPTY: usize = 0;
const PARKED: usize = 1;
const NOTIFIED: usize = 2;

/// See the module docs.
pub struct ParkState(AtomicUsize);

impl Default for ParkState {
    fn default() -> Self {
        ParkState(AtomicUsize::new(EMPTY))
    }
}

impl ParkState {
    /// The hub, before blocking. Returns `false` if a notification was
    /// pending (consumed): the hub must not block.
    pub fn prepare_park(&self) -> bool {
        match self.0.compare_exchange(EMPTY, PARKED, AcqRel, Acquire) {
            Ok(_) => true,
            Err(_) => {
                self.0.swap(EMPTY, AcqRel);
                false
            }
        }
    }

    /// The hub, after blocking (or deciding not to).
    pub fn finish_park(&self) {
        self.0.swap(EMPTY, AcqRel);
    }

    /// Anyone, after publishing work for the hub. Returns `true` if the hub
    /// is (about to be) blocked and the caller must wake its poller.
    pub fn unpark(&self) -> bool {
        self.0.swap(NOTIFIED, AcqRel) == PARKED
    }
}
