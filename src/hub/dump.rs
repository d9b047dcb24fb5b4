//! A hub's answer to a run-info dump (`inspect::dump`): its live greenlets
//! and what each waits for, read on the hub's own thread between two
//! greenlets, when no greenlet of the hub is running.

use std::time::Duration;

use super::HubContext;
use crate::greenlet::task::Header;
use crate::greenlet::trace::coarse_now;
use crate::inspect::dump::{HubQuiet, Request};
use crate::inspect::{GreenletInfo, GreenletState, HubInfo};

impl HubContext {
    /// Answers a pending dump request, if any. Cheap when there is none.
    #[inline]
    pub(super) fn check_dump(&self) {
        if self.remote.dump.is_pending() {
            self.answer_dump();
        }
    }

    #[cold]
    fn answer_dump(&self) {
        for req in self.remote.dump.take() {
            self.answer(&req);
        }
    }

    fn answer(&self, req: &Request) {
        let now = coarse_now();
        let mut greenlets = Vec::new();
        for task in self.live.borrow().snapshot() {
            let header = task.header();
            let state = if Some(header.id) == req.requester {
                GreenletState::Running
            } else if header.state.load().is_parked() {
                match header.trace.wait() {
                    (Some(on), until) => GreenletState::Parked {
                        on: on.kind,
                        object: on.obj,
                        until,
                    },
                    (None, _) => GreenletState::Queued,
                }
            } else {
                GreenletState::Queued
            };
            greenlets.push(info(header, state, now));
        }
        for task in self.ready.borrow().iter() {
            let header = task.header();
            if !header.is_started() {
                greenlets.push(info(header, GreenletState::NotStarted, now));
            }
        }
        greenlets.sort_by_key(|g| g.id);
        self.take_timer_cancels();
        let answer = HubInfo {
            index: self.index,
            answered: true,
            greenlets,
            unlisted: self.fresh.len(),
            quiet: HubQuiet {
                runs: self.runs.get(),
                timers: self.timers.borrow().len(),
                inbox: !self.remote.inbox.is_empty(),
            },
        };
        // The caller may have given up (and dropped the receiver).
        let _ = req.tx.send(answer);
    }
}

/// A dump entry for `header`.
pub(crate) fn info(header: &Header, state: GreenletState, now: u64) -> GreenletInfo {
    let t = &header.trace;
    GreenletInfo {
        id: header.id,
        name: header.name.as_deref().map(String::from),
        state,
        spawned_at: t.site,
        parent: t.parent,
        age: Duration::from_nanos(now.saturating_sub(t.born)),
    }
}
