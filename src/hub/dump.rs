//! A hub's answer to a run-info dump (`inspect::dump`): its live greenlets
//! and what each waits for, read on the hub's own thread between two
//! greenlets, when no greenlet of the hub is running. Also the hub's mailbox
//! for dump requests and the entries of a dump (public through
//! `greenhub::inspect`), which the hub fills in.

use std::panic::Location;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::HubContext;
use crate::greenlet::GreenletId;
use crate::greenlet::runinfo::{WaitKind, coarse_now};
use crate::greenlet::task::Header;

/// A hub's mailbox for dump requests.
#[derive(Default)]
pub(crate) struct DumpSlot {
    pending: AtomicBool,
    request: parking_lot::Mutex<Option<Arc<Request>>>,
}

/// One dump in progress. The reply is how the hub hands its answer back:
/// `inspect::dump` sends it on a channel (a layer above the hub).
pub(crate) struct Request {
    pub(crate) reply: Box<dyn Fn(HubInfo) + Send + Sync>,
    /// The greenlet that asked, shown as running.
    pub(crate) requester: Option<GreenletId>,
}

impl DumpSlot {
    /// Whether a request waits. One relaxed load: the hub checks it often.
    #[inline]
    pub(crate) fn is_pending(&self) -> bool {
        self.pending.load(Ordering::Relaxed)
    }

    /// Takes the waiting request, if any.
    pub(crate) fn take(&self) -> Option<Arc<Request>> {
        let mut slot = self.request.lock();
        self.pending.store(false, Ordering::Relaxed);
        slot.take()
    }

    pub(crate) fn post(&self, req: Arc<Request>) {
        *self.request.lock() = Some(req);
        self.pending.store(true, Ordering::Release);
    }
}

/// What one hub reported.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HubInfo {
    /// The hub's index.
    pub index: usize,
    /// Whether the hub answered. A hub that does not answer within the
    /// dump's timeout is held by a greenlet that does not yield (or has
    /// exited); then `greenlets` holds at most that greenlet, if the
    /// blocking monitor could name it.
    pub answered: bool,
    /// The hub's live greenlets, and the unstarted ones queued where they
    /// cannot be stolen.
    pub greenlets: Vec<GreenletInfo>,
    /// Unstarted greenlets in the hub's stealable queue (M:N mode),
    /// counted, not listed.
    pub unlisted: usize,
}

/// One greenlet in a [`RunInfo`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct GreenletInfo {
    /// Its id.
    pub id: GreenletId,
    /// Its name, if it was given one.
    pub name: Option<String>,
    /// What it is doing.
    pub state: GreenletState,
    /// Where it was spawned (the caller of `spawn`, `Builder::spawn`,
    /// `Handle::spawn`, `Group::spawn`...).
    pub spawned_at: &'static Location<'static>,
    /// The greenlet that spawned it, if it was spawned by one.
    pub parent: Option<GreenletId>,
    /// Time since it was spawned (to a scheduler tick).
    pub age: Duration,
}

/// What a greenlet is doing, as a [`RunInfo`] saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GreenletState {
    /// Spawned, waiting for its first run.
    NotStarted,
    /// Ready to run, waiting for its turn.
    Queued,
    /// Running: the greenlet that asked for the dump, or the one holding a
    /// hub that did not answer.
    Running,
    /// Blocked.
    Parked {
        /// On what kind of wait.
        on: WaitKind,
        /// Which object: the primitive's address, the fd, or the joined
        /// greenlet's id (see [`WaitKind`]); 0 when there is none.
        object: u64,
        /// When the wait times out, if it does (its own deadline or an
        /// enclosing [`timeout`](crate::timeout)'s).
        until: Option<Instant>,
    },
}

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
        let Some(req) = self.remote.dump.take() else {
            return;
        };
        let now = coarse_now();
        let mut greenlets = Vec::new();
        for task in self.live.borrow().snapshot() {
            let header = task.header();
            let state = if Some(header.id) == req.requester {
                GreenletState::Running
            } else if header.state.load().is_parked() {
                match header.record.wait() {
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
        let answer = HubInfo {
            index: self.index,
            answered: true,
            greenlets,
            unlisted: self.fresh.len(),
        };
        (req.reply)(answer);
    }
}

/// A dump entry for `header`.
pub(crate) fn info(header: &Header, state: GreenletState, now: u64) -> GreenletInfo {
    let t = &header.record;
    GreenletInfo {
        id: header.id,
        name: header.name.as_deref().map(String::from),
        state,
        spawned_at: t.site,
        parent: t.parent,
        age: Duration::from_nanos(now.saturating_sub(t.born)),
    }
}
