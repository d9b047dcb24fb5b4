//! The run-info dump: every live greenlet of a runtime, what it is doing,
//! where it came from ([`Handle::run_info`](crate::Handle::run_info)).
//!
//! A hub's greenlet lists belong to its thread, so the dump asks each hub
//! to describe itself: the caller posts a request in every hub's
//! `DumpSlot` and rings its doorbell; a hub answers between two greenlets (when it
//! looks for work, and every fairness tick while busy: `hub/dump.rs`, which
//! also defines the entries) by passing its [`HubInfo`] to the request's
//! reply, which sends it on a greenhub channel. The caller waits on that
//! channel, so it may itself be a greenlet, even on a single hub.
//!
//! A hub that does not answer in time is blocked by a greenlet (or gone).
//! Its entry then says so, and, when the runtime's blocking monitor is on,
//! names the greenlet that holds it (read through `hub/watch.rs`).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::channel;
use crate::greenlet::GreenletId;
use crate::greenlet::runinfo::WaitKind;
use crate::hub::context;
use crate::hub::dump::{GreenletInfo, GreenletState, HubInfo, HubQuiet, Request};
use crate::hub::shared::Shared;
use crate::inspect::monitor;

/// Every live greenlet of a runtime: [`Handle::run_info`](crate::Handle::run_info).
///
/// `Display` prints one line per greenlet, grouped by hub, like Go's
/// `SIGQUIT` goroutine dump or gevent's `print_run_info`.
///
/// ```
/// use std::time::Duration;
///
/// greenhub::run(|| {
///     let sleeper = greenhub::greenlet::Builder::new()
///         .name("sleeper".into())
///         .spawn(|| greenhub::sleep(Duration::from_millis(200)))
///         .unwrap();
///     greenhub::sleep(Duration::from_millis(10));
///     let info = greenhub::Handle::current().run_info();
///     let g = info.greenlet(sleeper.id()).unwrap();
///     assert_eq!(g.name.as_deref(), Some("sleeper"));
///     assert!(matches!(
///         g.state,
///         greenhub::inspect::GreenletState::Parked { on: greenhub::inspect::WaitKind::Sleep, .. }
///     ));
///     eprintln!("{info}");
///     sleeper.join().unwrap();
/// });
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RunInfo {
    /// One entry per hub, by index.
    pub hubs: Vec<HubInfo>,
    /// Unstarted greenlets in the runtime's global queue (spawned from
    /// outside the hubs), counted, not listed.
    pub injected: usize,
}

impl RunInfo {
    /// The entry of greenlet `id`, if it is live.
    ///
    /// ```
    /// greenhub::run(|| {
    ///     let me = greenhub::current().id();
    ///     let info = greenhub::Handle::current().run_info();
    ///     assert_eq!(info.greenlet(me).unwrap().state, greenhub::inspect::GreenletState::Running);
    /// });
    /// ```
    pub fn greenlet(&self, id: GreenletId) -> Option<&GreenletInfo> {
        self.greenlets().find(|g| g.id == id)
    }

    /// Every listed greenlet, hub by hub.
    ///
    /// ```
    /// greenhub::run(|| {
    ///     let info = greenhub::Handle::current().run_info();
    ///     assert!(info.greenlets().any(|g| g.name.as_deref() == Some("main")));
    /// });
    /// ```
    pub fn greenlets(&self) -> impl Iterator<Item = &GreenletInfo> {
        self.hubs.iter().flat_map(|h| h.greenlets.iter())
    }
}

/// Asks every hub of `shared` for its [`HubInfo`], waiting up to `timeout`.
pub(crate) fn collect(shared: &Shared, timeout: Duration) -> RunInfo {
    let n = shared.hubs.len();
    // A hub that has exited never answers; do not wait for it.
    let expected = shared.hubs.iter().filter(|h| !h.has_exited()).count();
    let (tx, rx) = channel::unbounded();
    let id = Request::next_id();
    let req = Arc::new(Request {
        // The caller may have given up (and dropped the receiver).
        reply: Box::new(move |info| drop(tx.send(info))),
        requester: context::current_task_id(),
        id,
    });
    for hub in shared.hubs.iter() {
        hub.dump.post(req.clone());
        hub.ring();
    }
    // The hubs hold the only senders now: a hub that exits drops its copy.
    drop(req);
    let mut hubs: Vec<Option<HubInfo>> = vec![None; n];
    let deadline = Instant::now() + timeout;
    let mut answered = 0;
    while answered < expected {
        match rx.recv_deadline(Some(deadline)) {
            Ok(info) => {
                let i = info.index;
                if hubs[i].is_none() {
                    answered += 1;
                }
                hubs[i] = Some(info);
            }
            Err(_) => break,
        }
    }
    let hubs = hubs
        .into_iter()
        .enumerate()
        .map(|(index, info)| {
            info.unwrap_or_else(|| {
                // Withdraw the request, so a late answer goes nowhere.
                shared.hubs[index].dump.withdraw(id);
                HubInfo {
                    index,
                    answered: false,
                    greenlets: monitor::running_greenlet(shared, index)
                        .into_iter()
                        .collect(),
                    unlisted: 0,
                    quiet: HubQuiet::default(),
                }
            })
        })
        .collect();
    RunInfo {
        hubs,
        injected: shared.injector.len(),
    }
}

impl fmt::Display for RunInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.greenlets().count();
        writeln!(
            f,
            "greenhub run info: {} hub(s), {count} greenlet(s) listed",
            self.hubs.len()
        )?;
        if self.injected > 0 {
            writeln!(f, "{} unstarted in the global queue", self.injected)?;
        }
        let now = Instant::now();
        for hub in &self.hubs {
            write!(f, "hub {}: ", hub.index)?;
            if hub.answered {
                write!(f, "{} greenlet(s)", hub.greenlets.len())?;
            } else {
                write!(f, "did not answer (blocked by a greenlet, or exited)")?;
            }
            if hub.unlisted > 0 {
                write!(f, ", {} unstarted in its stealable queue", hub.unlisted)?;
            }
            writeln!(f)?;
            for g in &hub.greenlets {
                write!(f, "  greenlet {}", g.id)?;
                if let Some(name) = &g.name {
                    write!(f, " {name:?}")?;
                }
                write!(f, ": ")?;
                match g.state {
                    GreenletState::NotStarted => write!(f, "not started")?,
                    GreenletState::Queued => write!(f, "queued")?,
                    GreenletState::Running => write!(f, "running")?,
                    GreenletState::Parked { on, object, until } => {
                        write!(f, "parked on {}", describe(on, object))?;
                        if let Some(at) = until {
                            let left = at.saturating_duration_since(now);
                            write!(f, " until +{left:.1?}")?;
                        }
                    }
                }
                write!(f, ", spawned at {}", g.spawned_at)?;
                if let Some(p) = g.parent {
                    write!(f, " by greenlet {p}")?;
                }
                writeln!(f, ", age {:.1?}", g.age)?;
            }
        }
        Ok(())
    }
}

/// "channel recv (0x7f..)", "fd 7 readable", "join of greenlet 5"...
fn describe(on: WaitKind, object: u64) -> String {
    match on {
        WaitKind::Park => "park".into(),
        WaitKind::Sleep => "sleep".into(),
        WaitKind::Join => format!("join of greenlet {object}"),
        WaitKind::Readable => format!("fd {object} readable"),
        WaitKind::Writable => format!("fd {object} writable"),
        WaitKind::FdWait => format!("io::select/wait (first fd {object})"),
        WaitKind::ChannelSelect => "channel select".into(),
        WaitKind::Future => "future::block_on".into(),
        WaitKind::Futex => format!("futex at {object:#x}"),
        other => format!("{other:?} at {object:#x}"),
    }
}
