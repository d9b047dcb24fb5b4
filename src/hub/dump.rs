//! A hub's answer to a run-info dump (`inspect::dump`): its live greenlets
//! and what each waits for, read on the hub's own thread between two
//! greenlets, when no greenlet of the hub is running. Also the hub's mailbox
//! for dump requests and the entries of a dump (public through
//! `greenhub::inspect`), which the hub fills in.

use std::panic::Location;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::HubContext;
use crate::greenlet::GreenletId;
use crate::greenlet::runinfo::{WaitKind, coarse_now};
use crate::greenlet::task::Header;

/// A hub's mailbox for dump requests. It holds every request not answered
/// yet: dumps may overlap (a greenlet's `run_info`, the dump on a signal,
/// the deadlock report's probes), and none may lose its answer to another.
#[derive(Default)]
pub(crate) struct DumpSlot {
    pending: AtomicBool,
    requests: parking_lot::Mutex<Vec<Arc<Request>>>,
}

/// One dump in progress. The reply is how the hub hands its answer back:
/// `inspect::dump` sends it on a channel (a layer above the hub).
pub(crate) struct Request {
    pub(crate) reply: Box<dyn Fn(HubInfo) + Send + Sync>,
    /// The greenlet that asked, shown as running.
    pub(crate) requester: Option<GreenletId>,
    /// Tells this request apart when its caller withdraws it
    /// ([`Request::next_id`]).
    pub(crate) id: u64,
}

/// Ids of [`Request`]s.
static NEXT_REQUEST: AtomicU64 = AtomicU64::new(0);

impl Request {
    /// A fresh request id.
    pub(crate) fn next_id() -> u64 {
        NEXT_REQUEST.fetch_add(1, Ordering::Relaxed)
    }
}

impl DumpSlot {
    /// Whether a request waits. One relaxed load: the hub checks it often.
    #[inline]
    pub(crate) fn is_pending(&self) -> bool {
        self.pending.load(Ordering::Relaxed)
    }

    /// Takes every waiting request.
    pub(crate) fn take(&self) -> Vec<Arc<Request>> {
        let mut requests = self.requests.lock();
        self.pending.store(false, Ordering::Relaxed);
        std::mem::take(&mut *requests)
    }

    /// Posts a request for the hub to answer.
    pub(crate) fn post(&self, req: Arc<Request>) {
        self.requests.lock().push(req);
        self.pending.store(true, Ordering::Release);
    }

    /// Takes request `id` back, if the hub has not answered it.
    pub(crate) fn withdraw(&self, id: u64) {
        let mut requests = self.requests.lock();
        requests.retain(|r| r.id != id);
        self.pending.store(!requests.is_empty(), Ordering::Relaxed);
    }
}

/// A hub's answer beyond its greenlet list, for the deadlock report
/// (`runtime::deadlock`). All zero for a hub that did not answer.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct HubQuiet {
    /// Greenlet resumes since the hub started (its `switches` counter).
    pub(crate) runs: u64,
    /// Armed timers.
    pub(crate) timers: usize,
    /// Whether its inbox held anything (woken greenlets, or unstarted ones
    /// placed on the hub, which the list does not show).
    pub(crate) inbox: bool,
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
    /// counted, not listed. With the migration opt-in the count also
    /// includes the started migratable greenlets queued there, which hub 0's
    /// answer lists as well (a work-stealing deque cannot be walked).
    pub unlisted: usize,
    /// For the deadlock report.
    pub(crate) quiet: HubQuiet,
}

/// One greenlet in a [`RunInfo`](crate::inspect::RunInfo).
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

/// What a greenlet is doing, as a [`RunInfo`](crate::inspect::RunInfo) saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GreenletState {
    /// Spawned, waiting for its first run.
    NotStarted,
    /// Ready to run, waiting for its turn (a migratable greenlet may also
    /// be running on another hub).
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
        for req in self.remote.dump.take() {
            self.answer(&req);
        }
    }

    fn answer(&self, req: &Request) {
        let now = coarse_now();
        let mut greenlets = Vec::new();
        for task in self.live.borrow().snapshot() {
            greenlets.push(info(task.header(), live_state(task.header(), req), now));
        }
        if self.index == 0 {
            // The migratable greenlets of every hub (`Shared::migrants`).
            // Under the set's lock their run blocks stay put (`run.rs`), and
            // what they parked on is atomics (`greenlet::runinfo`): one that
            // runs elsewhere meanwhile shows as queued, or with a stale wait.
            let migrants = self.shared.migrants.lock();
            for task in migrants.iter() {
                greenlets.push(info(task.header(), live_state(task.header(), req), now));
            }
        }
        for task in self
            .ready
            .borrow()
            .iter()
            .chain(self.newborn.borrow().iter())
        {
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
            unlisted: self.fresh.len() + self.remote.incoming.len(),
            quiet: HubQuiet {
                runs: crate::hub::stats::read(&self.remote.stats.switches),
                timers: self.timers.borrow().len(),
                inbox: !self.remote.inbox.is_empty(),
            },
        };
        (req.reply)(answer);
    }
}

/// What the started greenlet of `header`, in a live set, is doing, as the
/// answer to `req` shows it.
fn live_state(header: &Header, req: &Request) -> GreenletState {
    if Some(header.id) == req.requester {
        GreenletState::Running
    } else if header.state.load().is_parked() {
        match header.wait_record().wait() {
            (Some(on), until) => GreenletState::Parked {
                on: on.kind,
                object: on.obj,
                until,
            },
            (None, _) => GreenletState::Queued,
        }
    } else {
        GreenletState::Queued
    }
}

/// A dump entry for `header`.
pub(crate) fn info(header: &Header, state: GreenletState, now: u64) -> GreenletInfo {
    let t = &header.record;
    GreenletInfo {
        id: header.id,
        name: header.name().map(String::from),
        state,
        spawned_at: t.site,
        parent: t.parent,
        age: Duration::from_nanos(now.saturating_sub(t.born)),
    }
}
