//! What the loom models of hub hand-offs share (`loom_park`, `loom_kill`,
//! `loom_migrate`): a hub's remote half (inbox and doorbell), the hub
//! waiting for its inbox, and a waker handing it a greenlet.
//!
//! The protocol steps are greenhub's own (`Inbox`, `Doorbell::idle_with`,
//! `Inbox::push_and_ring`); the glue here is only what stands in for the
//! hub's poller: loom's thread park, which, like the eventfd-backed
//! `mio::Waker`, is sticky (an unpark before the park still ends it).

#![allow(dead_code)]

use std::collections::VecDeque;

use greenhub::__private::{Doorbell, Inbox};
use loom::thread;

/// What other threads may touch of a hub (`HubRemote`, less the shutdown
/// counter and the poller's registry).
pub struct Remote {
    pub inbox: Inbox<usize>,
    pub doorbell: Doorbell,
}

impl Remote {
    pub fn new() -> Remote {
        Remote {
            inbox: Inbox::new(),
            doorbell: Doorbell::default(),
        }
    }

    /// The hub (a loom thread) blocks until its inbox has something, then
    /// drains it; returns how many items it held. Its park is the real
    /// [`Doorbell::idle_with`], blocking in loom's thread park.
    pub fn wait_inbox(&self) -> usize {
        let mut ready = VecDeque::new();
        loop {
            let n = self.inbox.drain_into(&mut ready);
            if n > 0 {
                return n;
            }
            self.doorbell.idle_with(thread::park);
        }
    }

    /// A thread other than the hub hands it a greenlet (`HubRemote::push`,
    /// as `hub::schedule` does for a greenlet it moved out of `PARKED`):
    /// the real [`Inbox::push_and_ring`], whose poller wake-up is loom's
    /// `Thread::unpark` of `hub`.
    pub fn push(&self, item: usize, hub: &thread::Thread) {
        self.inbox
            .push_and_ring(item, &self.doorbell, || hub.unpark())
            .expect("inbox closed");
    }
}
