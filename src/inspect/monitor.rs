//! The blocking monitor: reports a hub that has run one greenlet for longer
//! than the runtime's `max_blocking_time` (gevent's `max_blocking_time`,
//! Go's sysmon), with that greenlet's name, spawn site and how long.
//!
//! One thread per process (`greenhub-monitor`) watches every runtime built
//! with a limit. It starts with the first such runtime and exits when the
//! last one is dropped. Every tick (a quarter of the smallest limit, between
//! 1 ms and 100 ms) it reads, for each hub, the switch counter and whether
//! the hub is inside a greenlet (`hub/watch.rs`). A hub inside a greenlet whose
//! switch counter has not moved since the monitor first saw that resume has
//! been held by one greenlet at least that long. Past the limit the monitor
//! names the greenlet (reading its header through the `RunningSlot`
//! protocol) and reports once per blocking episode. Durations are accurate
//! to one tick.
//!
//! The monitor is the only observer of the slots, and the run-info dump's
//! fallback ([`running_greenlet`]) takes the same lock, so observers never
//! overlap (`RunningSlot::observe`'s rule).

use std::fmt;
use std::panic::Location;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use crate::greenlet::GreenletId;
use crate::greenlet::runinfo::coarse_now;
use crate::greenlet::task::Header;
use crate::hub::shared::Shared;
use crate::hub::stats::{bump, read};
use crate::inspect::{GreenletInfo, GreenletState};

/// A hub held by one greenlet for longer than the runtime's
/// [`max_blocking_time`](crate::Builder::max_blocking_time).
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let s2 = seen.clone();
/// let rt = greenhub::Builder::new()
///     .single_threaded()
///     .max_blocking_time(Some(Duration::from_millis(20)))
///     .on_blocking(move |r| s2.lock().unwrap().push(r.clone()))
///     .build()
///     .unwrap();
/// rt.block_on(|| std::thread::sleep(Duration::from_millis(200))); // blocks the hub
/// let seen = seen.lock().unwrap();
/// assert_eq!(seen[0].name.as_deref(), Some("main"));
/// assert!(seen[0].blocked_for >= Duration::from_millis(20));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BlockingReport {
    /// The blocked hub's index.
    pub hub: usize,
    /// The greenlet that holds it.
    pub id: GreenletId,
    /// Its name, if it has one.
    pub name: Option<String>,
    /// Where it was spawned.
    pub spawned_at: &'static Location<'static>,
    /// How long the hub has been held so far (to within one monitor tick).
    pub blocked_for: Duration,
    /// The system call the hub's thread was blocked in when the report was
    /// made, named (with the file descriptor it waits on, and what that
    /// is), e.g. `futex (a std or parking_lot lock, condvar, channel or
    /// thread::park)`; `None` when it was running user code (a long
    /// computation) or the kernel did not say (Linux's
    /// `/proc/self/task/<tid>/syscall`).
    pub syscall: Option<String>,
}

impl fmt::Display for BlockingReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "greenhub: hub {} blocked for {:.1?} by greenlet {}",
            self.hub, self.blocked_for, self.id
        )?;
        if let Some(name) = &self.name {
            write!(f, " {name:?}")?;
        }
        write!(f, " (spawned at {})", self.spawned_at)?;
        match &self.syscall {
            Some(call) => write!(
                f,
                "; its thread is blocked in {call}: use greenhub's primitives \
                 or blocking::unblock for that call"
            ),
            None => write!(
                f,
                "; it runs without yielding (a long computation, or a call \
                 that blocks its thread): use yield_now, greenhub's \
                 primitives, or blocking::unblock"
            ),
        }
    }
}

/// A report callback, as the runtime `Builder` keeps it.
#[derive(Clone)]
pub(crate) struct ReportFn(pub(crate) Arc<dyn Fn(&BlockingReport) + Send + Sync>);

impl fmt::Debug for ReportFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReportFn")
    }
}

struct Watched {
    id: u64,
    shared: Weak<Shared>,
    limit: Duration,
    report: Option<ReportFn>,
    hubs: Vec<HubWatch>,
}

#[derive(Clone, Copy, Default)]
struct HubWatch {
    switches: u64,
    since: Option<Instant>,
    reported: bool,
}

#[derive(Default)]
struct State {
    runtimes: Vec<Watched>,
    next_id: u64,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Which monitor thread is the current one: a thread whose generation
    /// is not this one exits (the last runtime went away while it slept,
    /// and a new runtime may already have started its successor).
    generation: u64,
}

static STATE: Mutex<State> = Mutex::new(State {
    runtimes: Vec::new(),
    next_id: 0,
    thread: None,
    generation: 0,
});
static WAKE: Condvar = Condvar::new();

fn lock() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A runtime's place in the monitor; dropping it stops watching.
#[derive(Debug)]
pub(crate) struct Registration {
    id: u64,
}

/// Starts watching the hubs of `shared`.
pub(crate) fn watch(
    shared: &Arc<Shared>,
    limit: Duration,
    report: Option<ReportFn>,
) -> std::io::Result<Registration> {
    let mut st = lock();
    let id = st.next_id;
    st.next_id += 1;
    st.runtimes.push(Watched {
        id,
        shared: Arc::downgrade(shared),
        limit,
        report,
        hubs: vec![HubWatch::default(); shared.hubs.len()],
    });
    if st.thread.is_none() {
        st.generation += 1;
        let generation = st.generation;
        let spawned = std::thread::Builder::new()
            .name("greenhub-monitor".into())
            .spawn(move || run(generation));
        match spawned {
            Ok(t) => st.thread = Some(t),
            Err(e) => {
                st.runtimes.pop();
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("greenhub: cannot start the blocking monitor thread: {e}"),
                ));
            }
        }
    }
    WAKE.notify_all();
    Ok(Registration { id })
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut st = lock();
        st.runtimes.retain(|w| w.id != self.id);
        if !st.runtimes.is_empty() {
            return;
        }
        let thread = st.thread.take();
        st.generation += 1;
        drop(st);
        WAKE.notify_all();
        if let Some(t) = thread {
            // Wait for it, so no thread outlives the last runtime; unless we
            // are the monitor (a report callback that dropped a runtime).
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

fn run(generation: u64) {
    let mut st = lock();
    loop {
        if st.generation != generation {
            return;
        }
        let tick = st
            .runtimes
            .iter()
            .map(|w| w.limit / 4)
            .min()
            .unwrap_or(Duration::from_millis(100))
            .clamp(Duration::from_millis(1), Duration::from_millis(100));
        let mut reports = Vec::new();
        let now = Instant::now();
        for w in &mut st.runtimes {
            if let Some(shared) = w.shared.upgrade() {
                check(w, &shared, now, &mut reports);
            }
        }
        if !reports.is_empty() {
            drop(st);
            for (report, f) in reports {
                match f {
                    Some(f) => (f.0)(&report),
                    None => eprintln!("{report}"),
                }
            }
            st = lock();
            continue;
        }
        st = WAKE
            .wait_timeout(st, tick)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
}

fn check(
    w: &mut Watched,
    shared: &Shared,
    now: Instant,
    reports: &mut Vec<(BlockingReport, Option<ReportFn>)>,
) {
    for (index, (hw, remote)) in w.hubs.iter_mut().zip(shared.hubs.iter()).enumerate() {
        let switches = read(&remote.stats.switches);
        let running = remote.watch.is_running();
        if !running || switches != hw.switches || hw.since.is_none() {
            *hw = HubWatch {
                switches,
                since: running.then_some(now),
                reported: false,
            };
            continue;
        }
        let held = now.saturating_duration_since(hw.since.unwrap_or(now));
        if held < w.limit || hw.reported {
            continue;
        }
        // SAFETY: `observe` keeps the header alive while the closure runs
        // (`hub/watch.rs`), and we hold the monitor lock, so no other observer
        // overlaps.
        let named = remote
            .watch
            .observe(|p| unsafe { named(&*(p as *const Header)) });
        if let Some((id, name, spawned_at)) = named {
            hw.reported = true;
            bump(&remote.stats.blocked_reports);
            let tid = remote.tid.load(std::sync::atomic::Ordering::Relaxed);
            let report = BlockingReport {
                hub: index,
                id,
                name,
                spawned_at,
                blocked_for: held,
                syscall: crate::inspect::syscall::blocked_in(tid),
            };
            reports.push((report, w.report.clone()));
        }
    }
}

fn named(h: &Header) -> (GreenletId, Option<String>, &'static Location<'static>) {
    (h.id, h.name().map(String::from), h.record.site)
}

/// The greenlet hub `index` of `shared` is running, for a dump that got no
/// answer from that hub. Needs the monitor (`shared.watched`).
pub(crate) fn running_greenlet(shared: &Shared, index: usize) -> Option<GreenletInfo> {
    if !shared.watched {
        return None;
    }
    let _observers = lock();
    let now = coarse_now();
    shared.hubs[index].watch.observe(|p| {
        // SAFETY: as in `check`: the header is alive while the closure
        // runs, and the monitor lock keeps observers apart.
        let h = unsafe { &*(p as *const Header) };
        crate::hub::dump::info(h, GreenletState::Running, now)
    })
}
