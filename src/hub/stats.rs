//! The always-on counters of one hub.
//!
//! Every counter of a hub is written only by that hub's thread (the hub
//! itself, or a greenlet it is running), so an increment is a relaxed load and
//! a relaxed store: no locked instruction, no shared cache line with other
//! hubs (each hub's `HubStats` is its own allocation, inside its
//! `HubRemote`). Any thread may read them, relaxed, for a snapshot: a reader
//! may see one counter a little ahead of another, never a torn value.
//!
//! Events that happen off the hubs (spawns and joins from plain threads) go
//! to [`Outside`], shared by all threads of a runtime, with `fetch_add`.
//!
//! Built with `--cfg greenhub_no_metrics`, [`bump`] does nothing: that build
//! exists only so `scripts/metrics_cost.sh` can measure what the counters
//! cost on the spawn and switch benchmarks.

use std::sync::atomic::{
    AtomicU64,
    Ordering::{Relaxed, Release},
};

/// Adds one to a counter that only the calling thread writes.
#[inline(always)]
pub(crate) fn bump(c: &AtomicU64) {
    add(c, 1)
}

/// Adds `n` to a counter that only the calling thread writes.
#[inline(always)]
pub(crate) fn add(c: &AtomicU64, n: u64) {
    #[cfg(not(greenhub_no_metrics))]
    c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
    #[cfg(greenhub_no_metrics)]
    let _ = (c, n);
}

/// Sets a gauge that only the calling thread writes.
#[inline(always)]
pub(crate) fn set(c: &AtomicU64, v: u64) {
    c.store(v, Relaxed)
}

/// A hub's counters. See the module docs; the public view is
/// `inspect::HubMetrics`, which documents each one.
///
/// Aligned to 128 bytes (two cache lines, the unit of the adjacent-line
/// prefetcher) so that no field of `HubRemote` that other threads write
/// (inbox, doorbell) shares a line with them: a counter bump must not
/// invalidate another core's line (false sharing here showed up directly in
/// spawn+join in M:N mode; `scripts/metrics_cost.sh` measures the counters'
/// cost).
#[derive(Default)]
#[repr(align(128))]
pub(crate) struct HubStats {
    pub(crate) spawned: AtomicU64,
    pub(crate) started: AtomicU64,
    pub(crate) finished: AtomicU64,
    pub(crate) panicked: AtomicU64,
    pub(crate) killed: AtomicU64,
    pub(crate) cancelled: AtomicU64,
    pub(crate) joins: AtomicU64,
    pub(crate) switches: AtomicU64,
    pub(crate) parks: AtomicU64,
    pub(crate) wakes_local: AtomicU64,
    pub(crate) wakes_sent: AtomicU64,
    pub(crate) wakes_adopted: AtomicU64,
    pub(crate) wakes_inbox: AtomicU64,
    pub(crate) steals: AtomicU64,
    pub(crate) stolen: AtomicU64,
    pub(crate) stolen_from: Box<[AtomicU64]>,
    pub(crate) migrated: AtomicU64,
    pub(crate) polls: AtomicU64,
    pub(crate) events: AtomicU64,
    pub(crate) timers_armed: AtomicU64,
    pub(crate) timers_fired: AtomicU64,
    pub(crate) idles: AtomicU64,
    /// Written by the blocking monitor's thread, its only writer.
    pub(crate) blocked_reports: AtomicU64,
    /// Gauge: stacks in the hub's cache, refreshed when the hub goes idle
    /// and every fairness tick.
    pub(crate) stacks_cached: AtomicU64,
    /// Greenlets created by code on this hub ([`note_created`]). Not a
    /// metric: never compiled out, `Handle::wait_idle` depends on it.
    pub(crate) created: AtomicU64,
    /// Greenlets completed (finished or cancelled) on this hub
    /// ([`note_ended`]). Not a metric either.
    pub(crate) ended: AtomicU64,
}

impl HubStats {
    pub(crate) fn new(hubs: usize) -> HubStats {
        HubStats {
            stolen_from: (0..hubs).map(|_| AtomicU64::new(0)).collect(),
            ..HubStats::default()
        }
    }
}

/// Events of a runtime that happen off its hubs, from any thread.
#[derive(Default)]
pub(crate) struct Outside {
    pub(crate) spawned: AtomicU64,
    /// Greenlets created off this runtime's hubs (never compiled out, see
    /// [`HubStats::created`]).
    pub(crate) created: AtomicU64,
    /// Greenlets completed off this runtime's hubs (see
    /// [`HubStats::ended`]).
    pub(crate) ended: AtomicU64,
}

/// Counts a greenlet created by the calling hub thread in its hub's
/// `created` (only that thread writes it).
///
/// The live count of `Handle::wait_idle` (`Shared::alive`) reads every
/// `ended` with `Acquire` *before* any `created`. A greenlet's creation is
/// counted before it is queued, so it happens before the greenlet is run or
/// cancelled and therefore before its `ended` store (`Release`, see
/// [`note_ended`]); a reader whose `Acquire` load sees that store (or a
/// later one of the same thread) synchronizes with it, so its later loads of
/// `created` see the creation (write-read coherence). Every greenlet counted
/// as ended is thus counted as created too: the difference never
/// undercounts the greenlets alive between the two sets of loads.
#[inline(always)]
pub(crate) fn note_created(c: &AtomicU64) {
    count(c)
}

/// Adds one to a counter that only the calling thread writes, also in a
/// `greenhub_no_metrics` build (for counters the runtime itself reads).
#[inline(always)]
pub(crate) fn count(c: &AtomicU64) {
    c.store(c.load(Relaxed).wrapping_add(1), Relaxed);
}

/// Counts a greenlet completed by the calling hub thread in its hub's
/// `ended` (only that thread writes it): a `Release` store, see
/// [`note_created`].
#[inline(always)]
pub(crate) fn note_ended(c: &AtomicU64) {
    c.store(c.load(Relaxed).wrapping_add(1), Release);
}

impl Outside {
    pub(crate) fn count(c: &AtomicU64) {
        #[cfg(not(greenhub_no_metrics))]
        c.fetch_add(1, Relaxed);
        #[cfg(greenhub_no_metrics)]
        let _ = c;
    }
}

/// Reads a counter for a snapshot.
#[inline]
pub(crate) fn read(c: &AtomicU64) -> u64 {
    c.load(Relaxed)
}

/// Counts how a greenlet's closure ended, on the hub that ran it.
pub(crate) fn count_outcome<T>(outcome: &Result<T, crate::JoinError>) {
    if let Some(hub) = crate::hub::context::hub() {
        let s = &hub.remote.stats;
        let what = match outcome {
            Ok(_) => {
                bump(&s.finished);
                "finished"
            }
            Err(e) if e.is_killed() => {
                bump(&s.killed);
                "killed"
            }
            Err(_) => {
                bump(&s.panicked);
                "panicked"
            }
        };
        #[cfg(feature = "tracing")]
        crate::greenlet::tracing::exit(what);
        #[cfg(not(feature = "tracing"))]
        let _ = what;
    }
}
