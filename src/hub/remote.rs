//! The part of a hub that other threads may touch.
//!
//! A hub's run loop state (`HubContext`) belongs to its thread. What other
//! threads need (its inbox for wake-ups of its greenlets, its park token and
//! poller waker, the stealer of its deque of unstarted greenlets) lives here,
//! behind an `Arc` that every greenlet started on this hub holds as its owner.

use std::sync::Arc;

use crate::greenlet::task::TaskRef;
use crate::hub::inbox::Inbox;
use crate::hub::park::ParkState;
use crate::hub::queue::Stealer;
use crate::loom::{AtomicUsize, Ordering::*};

pub(crate) struct HubRemote {
    pub(crate) inbox: Inbox<TaskRef>,
    pub(crate) park: ParkState,
    waker: mio::Waker,
    /// The hub's deque of unstarted greenlets, in M:N mode.
    pub(crate) stealer: Option<Stealer<TaskRef>>,
    /// The runtime's shutdown counter: active hubs plus queued inbox items
    /// (see `hub/shutdown.rs`).
    pending: Arc<AtomicUsize>,
}

impl HubRemote {
    pub(crate) fn new(
        waker: mio::Waker,
        stealer: Option<Stealer<TaskRef>>,
        pending: Arc<AtomicUsize>,
    ) -> HubRemote {
        HubRemote {
            inbox: Inbox::new(),
            park: ParkState::default(),
            waker,
            stealer,
            pending,
        }
    }

    /// Hands a woken greenlet to this hub from another thread.
    pub(crate) fn push(&self, task: TaskRef) {
        self.pending.fetch_add(1, SeqCst);
        if let Err(task) = self.inbox.push(task) {
            // The hub has exited: its greenlets were unwound or leaked, so
            // there is nothing left to resume.
            self.pending.fetch_sub(1, SeqCst);
            drop(task);
            return;
        }
        self.unpark();
    }

    /// Ends the hub's park, if it is parked (see `park.rs`).
    pub(crate) fn unpark(&self) {
        if self.park.unpark() {
            // An error means the eventfd counter is saturated, i.e. a wake-up
            // is already pending.
            let _ = self.waker.wake();
        }
    }

    /// The hub took `n` items out of its inbox.
    pub(crate) fn drained(&self, n: usize) {
        if n > 0 {
            self.pending.fetch_sub(n, SeqCst);
        }
    }
}
