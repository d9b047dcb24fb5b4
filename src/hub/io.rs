//! The hub's side of cooperative IO: one `epoll_wait` on its poller, and
//! turning each event into wake-ups of the greenlets waiting on that fd
//! (`hub/readiness.rs` has the protocol).
//!
//! A hub polls when it goes idle (blocking until the next timer, an
//! event or a ring of its doorbell, see `search.rs`) and, while it has registered fds,
//! without blocking every `FAIRNESS_INTERVAL` ticks of a busy loop, so IO
//! never starves behind runnable greenlets.

use crate::hub::stats::{add, bump};
use std::time::Duration;

use super::HubContext;

impl HubContext {
    /// One `epoll_wait` with `timeout`, then dispatch of its events.
    pub(super) fn poll(&self, timeout: Option<Duration>) {
        // Safe point to free released readiness states: the previous batch
        // has been dispatched and this one is not fetched yet.
        self.remote.drop_released();
        let mut events = self.events.borrow_mut();
        // Round sub-millisecond timeouts up so a near timer does not spin.
        let timeout = timeout.map(|t| {
            if t.is_zero() || t >= Duration::from_millis(1) {
                t
            } else {
                Duration::from_millis(1)
            }
        });
        match self.poll.borrow_mut().poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return,
            Err(e) => panic!("greenhub: hub {} cannot poll: {e}", self.index),
        }
        bump(&self.remote.stats.polls);
        add(&self.remote.stats.events, events.iter().count() as u64);
        for event in events.iter() {
            let token = event.token();
            if token == Self::waker_token() {
                // Only ends the poll; the doorbell says who woke us.
                continue;
            }
            // SAFETY: every other token is the address of a live
            // `ScheduledIo`: it is registered by `io::Registration` (or an
            // fd wait's private dup), and its `Arc` is released to this hub
            // only after a DEL that took the registration off (one that
            // cannot be shown off leaks the state instead), and released
            // `Arc`s are dropped only at the top of this function, before
            // the next `epoll_wait` (hub/readiness.rs, io/registration.rs).
            let io = unsafe { &*(token.0 as *const crate::hub::readiness::ScheduledIo) };
            io.dispatch(event);
        }
    }
}
