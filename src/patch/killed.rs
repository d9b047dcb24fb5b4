//! What a kill does to unmodified code that never reaches a greenhub
//! blocking point.
//!
//! A hook cannot unwind (its caller is behind an `extern "C"` frame), so a
//! kill shows up in hooked calls as an error return (`ECANCELED`, or `EINTR`
//! for a sleep) and stays pending until the greenlet reaches a greenhub
//! blocking point, where it unwinds. Code that ignores those errors and
//! retries (the usual worker loop: on error, sleep and reconnect) would
//! then spin through failing hooked calls forever, and `join` on it would
//! never return.
//!
//! So a kill gets a grace: the killed greenlet's hooked calls keep failing
//! for up to [`GRACE`] after the first one failed because of it, or for
//! [`GRACE_CALLS`] such failures, whichever comes first, time enough for
//! code that handles the error to reach a greenhub blocking point and
//! unwind normally (destructors run). After that, the next hooked call that
//! fails because of the kill **abandons** the greenlet
//! (`greenlet::abandon_current`): it is never resumed, its stack is leaked,
//! and its joiners get `Killed` (with the kill's reason). Abandoned
//! greenlets are counted in the `killed` metric and reported on stderr
//! with their id and name.
//!
//! State: one entry per killed greenlet that failed a hooked call, keyed by
//! id, in a process-wide map; the entry goes when the greenlet is abandoned.
//! A greenlet that unwound normally leaves its small entry behind; entries
//! older than a minute are swept when the map grows.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::greenlet::GreenletId;
use crate::hub::context;

/// How long a killed greenlet's hooked calls may keep failing before it is
/// abandoned.
pub(crate) const GRACE: Duration = Duration::from_secs(1);
/// How many hooked calls may fail because of a kill before it is abandoned.
pub(crate) const GRACE_CALLS: u32 = 64;

/// Killed greenlets seen failing hooked calls: when first, and how often.
static SEEN: Mutex<Option<HashMap<GreenletId, (Instant, u32)>>> = Mutex::new(None);

/// Called by a hook, on a greenlet, whose call ends with an error because
/// the greenlet was killed: counts it, and abandons the greenlet (does not
/// return) once its grace is over.
pub(crate) fn kill_seen() {
    let Some(id) = context::current_task_id() else {
        return;
    };
    let now = Instant::now();
    let over = {
        let mut seen = SEEN.lock();
        let map = seen.get_or_insert_with(HashMap::new);
        if map.len() > 4096 {
            map.retain(|_, (first, _)| now.duration_since(*first) < Duration::from_secs(60));
        }
        let (first, calls) = map.entry(id).or_insert((now, 0));
        *calls += 1;
        let over = now.duration_since(*first) >= GRACE || *calls > GRACE_CALLS;
        if over {
            map.remove(&id);
        }
        over
    };
    if over {
        let me = crate::greenlet::current();
        eprintln!(
            "greenhub: greenlet {}{} was killed and kept calling patched functions that fail \
             for it (for {GRACE:?} or {GRACE_CALLS} calls) without reaching a greenhub \
             blocking point: abandoned (never resumed, its stack leaked, joiners see Killed)",
            me.id(),
            me.name().map(|n| format!(" {n:?}")).unwrap_or_default(),
        );
        crate::greenlet::abandon_current();
    }
}
