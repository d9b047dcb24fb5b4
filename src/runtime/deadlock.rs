//! The deadlock report of `Builder::deadlock_timeout` (gevent's
//! `LoopExit`, Go's "all goroutines are asleep"): `block_on` panics with the
//! run-info dump instead of hanging when its main greenlet waits for
//! something that nothing in the runtime can bring any more.
//!
//! # What counts as stuck
//!
//! The runtime is *quiet* when, in one run-info dump:
//!
//! - every hub answered, and none has a greenlet queued to run or start
//!   (ready queue, stealable queue, inbox, global queue), or a timer armed;
//! - every live greenlet, the main one included, is parked, without a
//!   deadline, on a wait that only another greenlet can end: a join, a
//!   channel, queue, lock, semaphore, condition variable, event,
//!   `AsyncResult`, barrier, wait group or pool/group wait
//!   ([`internal`]). A `sleep`, a deadline or timeout, an fd or
//!   `io::select` wait, a pending future, or a bare `park` (whose `unpark`
//!   any thread may hold) makes the runtime not quiet;
//! - no blocking-pool job is queued or running;
//! - no signal has a subscriber anywhere in the process (a handler or a
//!   `Signals` could still wake a greenlet).
//!
//! `block_on`'s thread, which otherwise only waits for the main greenlet,
//! looks every quarter of the timeout (between 5 ms and 250 ms), first
//! cheaply (is every hub asleep?), then with a dump. It reports when two
//! quiet dumps at least the timeout apart show the same number of greenlet
//! runs on every hub.
//!
//! Why two dumps and the run counts: the hubs answer one after another, so
//! one dump is not a snapshot. Take the moment `t` when the first dump's
//! last answer came. A greenlet running at `t` was resumed after its hub's
//! first answer (a hub answers only between greenlets) and before its
//! second one, so that hub's run count would differ. A greenlet runnable at
//! `t` is still runnable at its hub's second answer (shown as queued) or
//! was resumed in between (the count again). So at `t` every greenlet was
//! parked on an internal wait with no timer anywhere, and nothing ran on
//! any hub for about the timeout after. Only code outside the runtime can
//! still wake one of them.
//!
//! # What it cannot see
//!
//! An OS thread outside the runtime (or a greenlet of another runtime, or a
//! C library's thread) that holds an `Event`, a channel end, a
//! `JoinHandle` or a `Handle` and would use it *later than the timeout*:
//! the report then fires on a correct program. That is why it is off by
//! default, and why the timeout must be longer than the longest time such a
//! thread may take. An outside thread that wakes a greenlet within the
//! timeout resets the clock (the greenlet runs). Conversely it stays silent
//! on deadlocks that involve a timer, an fd, a future, a `park`, a pool job
//! or a signal subscription, and on greenlets stuck while the main greenlet
//! still makes progress.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::JoinError;
use crate::greenlet::JoinHandle;
use crate::greenlet::runinfo::WaitKind;
use crate::hub::shared::Shared;
use crate::inspect::dump;
use crate::inspect::{GreenletState, RunInfo};

/// Joins `block_on`'s main greenlet, watching for a deadlock as the module
/// docs say. `Err` is the report to panic with, once the main greenlet has
/// been killed (and, within a second, unwound).
pub(crate) fn join_main<T>(
    shared: &Arc<Shared>,
    mut main: JoinHandle<T>,
    after: Duration,
) -> Result<Result<T, JoinError>, String> {
    let every = (after / 4).clamp(Duration::from_millis(5), Duration::from_millis(250));
    // The first quiet dump of the current quiet spell: when, and its runs.
    let mut quiet_since: Option<(Instant, u64)> = None;
    loop {
        if let Some(outcome) = main.join_timeout(every) {
            return Ok(outcome);
        }
        if shared.idle.idlers() < shared.hubs.len() {
            // A hub is awake: something runs (or is about to).
            quiet_since = None;
            continue;
        }
        let info = dump::collect(shared, Duration::from_secs(1));
        let Some(runs) = quiet(shared, &info, &main) else {
            quiet_since = None;
            continue;
        };
        let now = Instant::now();
        match quiet_since {
            Some((since, r)) if r == runs => {
                if now.duration_since(since) >= after && !main.is_finished() {
                    return Err(report(main, &info, after));
                }
            }
            _ => quiet_since = Some((now, runs)),
        }
    }
}

/// The total of the hubs' run counts if `info` shows a quiet runtime (see
/// the module docs) in which `main` is parked.
fn quiet<T>(shared: &Shared, info: &RunInfo, main: &JoinHandle<T>) -> Option<u64> {
    if info.injected > 0 || !shared.blocking.is_idle() || crate::signal::has_subscribers() {
        return None;
    }
    let mut runs = 0u64;
    for hub in &info.hubs {
        let q = &hub.quiet;
        if !hub.answered || hub.unlisted > 0 || q.timers > 0 || q.inbox {
            return None;
        }
        for g in &hub.greenlets {
            match g.state {
                GreenletState::Parked {
                    on, until: None, ..
                } if internal(on) => {}
                _ => return None,
            }
        }
        runs = runs.wrapping_add(q.runs);
    }
    // The main greenlet is live and listed (so parked, by the loop above).
    info.greenlet(main.id())?;
    Some(runs)
}

/// Waits that only a greenlet (or an outside thread holding the same
/// primitive) can end. Anything else, including kinds added later, keeps
/// the report silent.
fn internal(on: WaitKind) -> bool {
    use WaitKind::*;
    matches!(
        on,
        Join | ChannelSend
            | ChannelRecv
            | ChannelSelect
            | QueuePut
            | QueueGet
            | QueueJoin
            | Mutex
            | RwLock
            | Semaphore
            | Condvar
            | Event
            | AsyncResult
            | Barrier
            | WaitGroup
            | Group
    )
}

/// Kills the main greenlet (so its destructors run) and writes the report.
fn report<T>(mut main: JoinHandle<T>, info: &RunInfo, after: Duration) -> String {
    main.kill();
    // Its unwinding may block in a destructor; do not wait for ever.
    let _ = main.join_timeout(Duration::from_secs(1));
    format!(
        "greenhub: deadlock: the main greenlet waits for something that nothing in the \
         runtime can bring any more: every greenlet has been parked on a greenhub primitive, \
         with no deadline, no timer, fd, signal or blocking-pool work pending, for {after:?} \
         (Builder::deadlock_timeout / GREENHUB_DEADLOCK_REPORT; an OS thread outside the \
         runtime that would have woken it later cannot be seen). The main greenlet was \
         killed. Who waits on what:\n{info}"
    )
}
