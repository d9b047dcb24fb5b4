//! [`Metrics`]: a snapshot of a runtime's counters, per hub and in total.
//!
//! The counters themselves live in each hub (`hub/stats.rs`) and are always
//! on; a snapshot reads them (relaxed, so counters of a running runtime may
//! be a few events apart from each other) and adds the gauges that are not
//! counters: the offload pool's threads and queue, and the stack memory.

use std::fmt;

use crate::hub::shared::Shared;
use crate::hub::stats::{HubStats, read};
use crate::stack::slab::ALLOCATOR;

/// A snapshot of a runtime's counters: [`Handle::metrics`](crate::Handle::metrics).
///
/// `Display` prints a table with one column per hub and a total.
///
/// ```
/// greenhub::run(|| {
///     let hs: Vec<_> = (0..10).map(|i| greenhub::spawn(move || i)).collect();
///     for h in hs {
///         h.join().unwrap();
///     }
///     let m = greenhub::Handle::current().metrics();
///     let total = m.total();
///     assert!(total.spawned >= 10);
///     assert!(total.joins >= 10);
///     println!("{m}");
/// });
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Metrics {
    /// One entry per hub, by index.
    pub hubs: Vec<HubMetrics>,
    /// Greenlets spawned from threads off the hubs (through a
    /// [`Handle`](crate::Handle) or `block_on`).
    pub spawned_outside: u64,
    /// The blocking-work pool ([`blocking::unblock`](crate::blocking::unblock),
    /// DNS).
    pub offload: OffloadMetrics,
    /// Greenlet stacks, process-wide (all runtimes share one allocator).
    pub stacks: StackMetrics,
}

/// One hub's counters. Counts are since the runtime started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HubMetrics {
    /// Greenlets spawned by code running on this hub.
    pub spawned: u64,
    /// Greenlets this hub started (gave a stack and ran for the first time),
    /// including ones it stole.
    pub started: u64,
    /// Started greenlets whose closure returned.
    pub finished: u64,
    /// Started greenlets whose closure panicked.
    pub panicked: u64,
    /// Started greenlets that were killed (unwound by a kill).
    pub killed: u64,
    /// Greenlets killed (or refused at shutdown) before they started.
    pub cancelled: u64,
    /// `JoinHandle` joins that returned an outcome: by greenlets of this hub,
    /// plus joins of this hub's greenlets from plain threads.
    pub joins: u64,
    /// Times the hub resumed a greenlet.
    pub switches: u64,
    /// Times a greenlet of this hub parked (blocked).
    pub parks: u64,
    /// Wake-ups of this hub's greenlets by code on this hub.
    pub wakes_local: u64,
    /// Wake-ups this hub sent to greenlets of other hubs.
    pub wakes_sent: u64,
    /// Migratable greenlets of other hubs that this hub woke and queued on
    /// itself, to run them here (adopt on wake: `Builder::migratable`).
    pub wakes_adopted: u64,
    /// Greenlets that arrived through this hub's inbox: woken by other hubs
    /// or by plain threads (and greenlets placed on this hub).
    pub wakes_inbox: u64,
    /// Successful steals (each moves a batch of unstarted greenlets).
    pub steals: u64,
    /// Unstarted greenlets this hub stole.
    pub stolen: u64,
    /// `stolen`, by victim hub index.
    pub stolen_from: Vec<u64>,
    /// Started, migratable greenlets this hub took over from another hub
    /// (`greenlet::Builder::migratable`). A migrated greenlet counts as
    /// started where it started and as ended where it ended, so `alive` is
    /// exact only in the total.
    pub migrated: u64,
    /// Calls to the poller (`epoll_wait`), blocking or not.
    pub polls: u64,
    /// IO events the poller returned.
    pub events: u64,
    /// Timers armed (idles, timeouts, deadlines).
    pub timers_armed: u64,
    /// Timers that fired (the rest were cancelled).
    pub timers_fired: u64,
    /// Times the hub went idle (blocked in its poller).
    pub idles: u64,
    /// Times the blocking monitor reported this hub as blocked.
    pub blocked_reports: u64,
    /// Stacks in the hub's cache when it last went idle.
    pub stacks_cached: u64,
}

impl HubMetrics {
    /// Started greenlets that have not ended: running, queued or parked.
    ///
    /// ```
    /// let m = greenhub::inspect::HubMetrics::default();
    /// assert_eq!(m.alive(), 0);
    /// ```
    pub fn alive(&self) -> u64 {
        self.started
            .saturating_sub(self.finished + self.panicked + self.killed)
    }

    fn read(s: &HubStats, outside_joins: u64) -> HubMetrics {
        HubMetrics {
            spawned: read(&s.spawned),
            started: read(&s.started),
            finished: read(&s.finished),
            panicked: read(&s.panicked),
            killed: read(&s.killed),
            cancelled: read(&s.cancelled),
            joins: read(&s.joins) + outside_joins,
            switches: read(&s.switches),
            parks: read(&s.parks),
            wakes_local: read(&s.wakes_local),
            wakes_sent: read(&s.wakes_sent),
            wakes_adopted: read(&s.wakes_adopted),
            wakes_inbox: read(&s.wakes_inbox),
            steals: read(&s.steals),
            stolen: read(&s.stolen),
            stolen_from: s.stolen_from.iter().map(read).collect(),
            migrated: read(&s.migrated),
            polls: read(&s.polls),
            events: read(&s.events),
            timers_armed: read(&s.timers_armed),
            timers_fired: read(&s.timers_fired),
            idles: read(&s.idles),
            blocked_reports: read(&s.blocked_reports),
            stacks_cached: read(&s.stacks_cached),
        }
    }

    fn add(&mut self, o: &HubMetrics) {
        macro_rules! sum {
            ($($f:ident),*) => { $( self.$f += o.$f; )* };
        }
        sum!(
            spawned,
            started,
            finished,
            panicked,
            killed,
            cancelled,
            joins,
            switches,
            parks,
            wakes_local,
            wakes_sent,
            wakes_adopted,
            wakes_inbox,
            steals,
            stolen,
            migrated,
            polls,
            events,
            timers_armed,
            timers_fired,
            idles,
            blocked_reports,
            stacks_cached
        );
        if self.stolen_from.len() < o.stolen_from.len() {
            self.stolen_from.resize(o.stolen_from.len(), 0);
        }
        for (a, b) in self.stolen_from.iter_mut().zip(&o.stolen_from) {
            *a += b;
        }
    }
}

/// The blocking-work pool's state at the snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OffloadMetrics {
    /// Threads alive in the pool.
    pub threads: usize,
    /// Of those, threads waiting for work.
    pub idle: usize,
    /// Jobs queued and not yet taken by a thread.
    pub queued: usize,
    /// The pool's thread bound ([`Builder::max_blocking_threads`](crate::Builder::max_blocking_threads)).
    pub max_threads: usize,
}

/// Greenlet stack memory, process-wide.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StackMetrics {
    /// Address space mapped for stacks, in bytes (reserved, mostly not
    /// resident).
    pub mapped_bytes: usize,
    /// Of that, bytes resident in memory (`mincore`).
    pub resident_bytes: usize,
}

impl Metrics {
    pub(crate) fn read(shared: &Shared) -> Metrics {
        let hubs = shared
            .hubs
            .iter()
            .map(|h| HubMetrics::read(&h.stats, read(&h.outside_joins)))
            .collect();
        let (threads, idle, queued, max_threads) = shared.blocking.stats();
        let (mapped_bytes, resident_bytes) = ALLOCATOR.memory();
        Metrics {
            hubs,
            spawned_outside: read(&shared.outside.spawned),
            offload: OffloadMetrics {
                threads,
                idle,
                queued,
                max_threads,
            },
            stacks: StackMetrics {
                mapped_bytes,
                resident_bytes,
            },
        }
    }

    /// The sum over all hubs.
    ///
    /// ```
    /// let rt = greenhub::Builder::new().hubs(2).build().unwrap();
    /// rt.block_on(|| greenhub::spawn(|| ()).join().unwrap());
    /// let m = rt.handle().metrics();
    /// assert_eq!(m.total().started, m.hubs[0].started + m.hubs[1].started);
    /// ```
    pub fn total(&self) -> HubMetrics {
        let mut t = HubMetrics::default();
        for h in &self.hubs {
            t.add(h);
        }
        t
    }

    /// Greenlets spawned and not yet ended, started or not.
    ///
    /// ```
    /// let rt = greenhub::Builder::new().single_threaded().build().unwrap();
    /// rt.block_on(|| {
    ///     let h = greenhub::spawn(|| greenhub::sleep(std::time::Duration::from_millis(20)));
    ///     let m = greenhub::Handle::current().metrics();
    ///     assert_eq!(m.alive(), 2); // main and the sleeper
    ///     h.join().unwrap();
    /// });
    /// ```
    pub fn alive(&self) -> u64 {
        let t = self.total();
        (t.spawned + self.spawned_outside)
            .saturating_sub(t.finished + t.panicked + t.killed + t.cancelled)
    }
}

/// A row of the metrics table: its label and how to read it.
type Row = (&'static str, fn(&HubMetrics) -> u64);

impl fmt::Display for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.total();
        let cols: Vec<&HubMetrics> = self.hubs.iter().chain(Some(&total)).collect();
        write!(f, "{:<16}", "")?;
        for i in 0..self.hubs.len() {
            write!(f, "{:>12}", format!("hub {i}"))?;
        }
        writeln!(f, "{:>12}", "total")?;
        let rows: [Row; 24] = [
            ("alive", HubMetrics::alive),
            ("spawned", |m| m.spawned),
            ("started", |m| m.started),
            ("finished", |m| m.finished),
            ("panicked", |m| m.panicked),
            ("killed", |m| m.killed),
            ("cancelled", |m| m.cancelled),
            ("joins", |m| m.joins),
            ("switches", |m| m.switches),
            ("parks", |m| m.parks),
            ("wakes local", |m| m.wakes_local),
            ("wakes sent", |m| m.wakes_sent),
            ("wakes adopted", |m| m.wakes_adopted),
            ("wakes inbox", |m| m.wakes_inbox),
            ("steals", |m| m.steals),
            ("stolen", |m| m.stolen),
            ("migrated", |m| m.migrated),
            ("polls", |m| m.polls),
            ("io events", |m| m.events),
            ("timers armed", |m| m.timers_armed),
            ("timers fired", |m| m.timers_fired),
            ("idles", |m| m.idles),
            ("blocked reports", |m| m.blocked_reports),
            ("stacks cached", |m| m.stacks_cached),
        ];
        for (name, get) in rows {
            write!(f, "{name:<16}")?;
            for c in &cols {
                write!(f, "{:>12}", get(c))?;
            }
            writeln!(f)?;
        }
        writeln!(f, "spawned outside {:>12}", self.spawned_outside)?;
        let o = &self.offload;
        writeln!(
            f,
            "offload pool    {} threads ({} idle, max {}), {} queued",
            o.threads, o.idle, o.max_threads, o.queued
        )?;
        write!(
            f,
            "stacks          {} KiB mapped, {} KiB resident",
            self.stacks.mapped_bytes >> 10,
            self.stacks.resident_bytes >> 10
        )
    }
}
