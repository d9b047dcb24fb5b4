//! std's thread parker shared by the greenlets of a hub: what makes
//! `thread::park`/`park_timeout`, and with them `std::sync::mpsc`,
//! `crossbeam-channel`, `futures::executor::block_on` and the crates that
//! wait on a helper thread that way (`reqwest::blocking`, `ureq`'s resolver
//! with a timeout), park only their greenlet.
//!
//! # The problem
//!
//! std keeps one parker per OS thread: a word `P` with three states, `EMPTY`
//! (0), `NOTIFIED` (1, the token) and `PARKED` (`u32::MAX`). `park` does
//! `fetch_sub(1)`: from `NOTIFIED` it returns at once (the fast path, no
//! system call); from `EMPTY` it makes `PARKED` and futex-waits while the
//! word is `PARKED`, looping until it can swap `NOTIFIED` back to `EMPTY`.
//! `unpark` swaps in `NOTIFIED` and futex-wakes only if it took `PARKED`.
//! Every greenlet of a hub shares that word, and that breaks the protocol
//! twice over: a second greenlet parking while the first waits finds
//! `PARKED`, makes it `PARKED - 1` and spins (std checks the word before
//! each wait); and a token carries no name, so an `unpark` meant for one
//! greenlet may be taken by another.
//!
//! # The protocol
//!
//! A greenlet's wait on its own thread's parker word is linked in the futex
//! table like any other (`futex.rs`), marked as a parker wait, and every
//! wake of the word wakes *all* of them: each returns from `park` (a
//! spurious wake-up, which `park`'s contract allows) and re-checks its own
//! condition. Around them, the hub keeps the word where both halves of
//! std's code work, through a switch guard (`hub::guard`) installed while
//! parker waits exist on that hub. The states of `P` and who moves it:
//!
//! | who (thread) | when | `P` |
//! |---|---|---|
//! | a greenlet's `park` (hub) | it runs | `EMPTY` -> `PARKED`, then the hook links it |
//! | guard `after` (hub) | that greenlet is back | `PARKED` -> `EMPTY`: the next `park` reaches the hook too, never `PARKED - 1` |
//! | guard `idle` (hub) | it blocks in its poller | `EMPTY` -> `PARKED`: an `unpark` now futex-wakes the waits (and rings the hub) |
//! | guard `settle` (hub) | the idle wait ended | `PARKED` -> `EMPTY` |
//! | hook, woken wait (hub) | its greenlet resumes | `EMPTY` -> `NOTIFIED`, which std's loop swaps back to `EMPTY` |
//! | `unpark` (any thread) | any time | -> `NOTIFIED`; futex wake (all waits) only from `PARKED` |
//!
//! The steps that move `P` and the table are in `parkword.rs` (checked by
//! the loom models of `tests/loom_futex.rs`); this module finds the word
//! and runs them from the hook and the switch guard.
//!
//! So `P` is `PARKED` only inside a greenlet's `park` and while its hub
//! blocks with waits outstanding; hub code between greenlets never finds it
//! there (a `thread::park` of its own would spin on `PARKED - 1`). A token
//! that arrives while `P` is `EMPTY` (a greenlet or the hub runs) comes with
//! no wake-up; the guard's next call (after each greenlet, before and after
//! blocking) sees `NOTIFIED` and wakes every wait, as does a woken wait
//! that finds one when it stores its own, and a timed-out wait whose
//! `park_timeout` would swap it away. What escapes every check is the
//! running greenlet taking, in std's own code, a token that arrived while
//! it ran, after the hook's last look at the word: on `park`'s fast path
//! (never entering the hook); in std's loop after its woken wait stored
//! its own token (one word, two tokens, taken as one); in
//! `park_timeout`'s swap after its wait timed out. (The loom models of
//! `tests/loom_futex.rs` found the last two.) So the wake-up of another
//! greenlet may be consumed. The **sweep** closes those holes: one of the
//! waits (the *leader*) parks with a deadline, a *tick*, and when it fires
//! after other greenlets ran with waits outstanding (the only way a token
//! can be taken so), it wakes them all. A wake-up is thus never lost; one
//! consumed that way is delivered at the next wake of the word or the next
//! tick: 10 ms at first, doubling while sweeps find every greenlet
//! parked again or nothing ran, up to [`MAX_TICK`].
//!
//! # Costs and limits
//!
//! - Each `unpark` of a hub's thread wakes every greenlet of that hub parked
//!   in `park`: the cost of a wake-up grows with the number of greenlets of
//!   one hub waiting on std parkers at once (tens or hundreds are cheap).
//! - While such waits exist, a hub pays a few atomic loads per switch, and
//!   one leader wake-up per tick. Without them, one `Cell` load and branch.
//! - A migratable greenlet (`unsafe` opt-in) keeps the old behaviour: its
//!   `park` blocks the thread. It could resume on another hub while std's
//!   loop still holds the first hub's word.
//! - The parker word is found, once per hub thread, by a probe: on the
//!   first wait for `PARKED` from a greenlet, the hook `unpark`s its thread
//!   and looks whether the word it was given became `NOTIFIED`. The probe
//!   is a spurious wake-up for that `park`, and a stray token (a later
//!   spurious wake-up) if the word was another futex; at most
//!   [`PROBES`] per thread.

use std::cell::Cell;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use libc::c_int;

use super::futex::{self, TABLE};
use super::parkword::{self, NOTIFIED};
use super::table::{Lot, Node, Parked};
use crate::greenlet::runinfo::{WaitKind, WaitOn};
use crate::greenlet::task::RawTask;
use crate::greenlet::wait::{Wake, park_uninterruptible};
use crate::greenlet::waiter::Waiter;
use crate::hub::context;
use crate::hub::guard::SwitchGuard;

/// The first sweep tick.
const MIN_TICK: Duration = Duration::from_millis(10);
/// The longest sweep tick (reached while sweeps keep finding nothing).
pub(super) const MAX_TICK: Duration = Duration::from_millis(160);
/// Probes for the parker word per thread.
pub(super) const PROBES: u8 = 4;

/// What the hub thread knows of its parker.
struct Local {
    /// The parker word's address; 0 until found.
    addr: Cell<usize>,
    probes: Cell<u8>,
    lot: Cell<Option<&'static Lot>>,
    /// Greenlets resumed while parker waits existed.
    runs: Cell<u64>,
    /// The sweep tick.
    tick: Cell<Duration>,
    /// Waits linked right after the last sweep (to adapt the tick).
    after_sweep: Cell<usize>,
}

thread_local! {
    static LOCAL: Local = const {
        Local {
            addr: Cell::new(0),
            probes: Cell::new(0),
            lot: Cell::new(None),
            runs: Cell::new(0),
            tick: Cell::new(MIN_TICK),
            after_sweep: Cell::new(0),
        }
    };
}

static GUARD: SwitchGuard = SwitchGuard {
    after: guard_after,
    settle: guard_settle,
    idle: guard_idle,
};

/// The parker word at `addr`, an address the kernel accepted or std's own.
fn word(addr: usize) -> &'static AtomicU32 {
    // SAFETY: only called with this thread's parker address, found by the
    // probe: the state word of the thread's `Thread`, which lives as long
    // as the thread (std keeps the `Thread` of every running thread), an
    // aligned u32 that other threads change atomically.
    unsafe { &*(addr as *const AtomicU32) }
}

/// A futex wait for `PARKED` at `addr` on a greenlet (`cooperative` held).
/// `None`: not this thread's parker (or a migratable greenlet): the caller
/// goes on as before. `Some(Ok(()))`: woken, or spuriously. `Some(Err)`:
/// `ETIMEDOUT`.
pub(super) fn wait(addr: usize, deadline: Option<Instant>) -> Option<Result<(), c_int>> {
    let task = context::current_raw()?;
    // SAFETY: the hub holds an `Arc` to the running greenlet, alive while
    // it runs and while it is parked (in its hub's live set).
    let task: &dyn RawTask = unsafe { task.as_ref() };
    if task.header().migratable {
        return None;
    }
    LOCAL.with(|local| {
        if local.addr.get() != addr {
            return probe(local, addr);
        }
        let lot = match local.lot.get() {
            Some(l) => l,
            None => {
                // Leaked: one per hub thread that ever had such a wait (a
                // few words), shared with wakers on any thread.
                let l: &'static Lot = Box::leak(Box::new(Lot::new()));
                local.lot.set(Some(l));
                l
            }
        };
        Some(park(task, local, lot, addr, deadline))
    })
}

/// Finds out whether `addr` is this thread's parker word (see the module
/// docs); `Some(Ok(()))` if it is (a spurious wake-up for the caller).
#[cold]
fn probe(local: &Local, addr: usize) -> Option<Result<(), c_int>> {
    if local.addr.get() != 0 || local.probes.get() >= PROBES {
        return None;
    }
    local.probes.set(local.probes.get() + 1);
    std::thread::current().unpark();
    // SAFETY: the kernel accepted `addr` as a futex word of this process
    // (the caller's probe), an aligned u32.
    let now = unsafe { (*(addr as *const AtomicU32)).load(Ordering::SeqCst) };
    if now != NOTIFIED {
        return None;
    }
    local.addr.set(addr);
    Some(Ok(()))
}

/// Parks the running greenlet on its thread's parker word.
fn park(
    task: &dyn RawTask,
    local: &Local,
    lot: &'static Lot,
    addr: usize,
    deadline: Option<Instant>,
) -> Result<(), c_int> {
    let w = word(addr);
    let mut node = Node::parker(addr, Waiter::current(), lot);
    let raw = NonNull::from(&mut node);
    // SAFETY: `node` stays on this stack, unmoved, until `after_park` says
    // it is woken or unlinked (the loop below returns, or abandons the
    // greenlet and so never frees this stack, only then).
    let Some(mut leader) = (unsafe { parkword::link(&TABLE, raw, w) }) else {
        return Ok(());
    };
    if let Some(hub) = context::hub() {
        hub.set_switch_guard(Some(&GUARD));
    }
    let on = WaitOn::new(WaitKind::Futex, addr as u64);
    let mut grace: Option<Instant> = None;
    let mut tick_at: Option<Instant> = None;
    loop {
        if task.header().state.load().is_killed() && grace.is_none() {
            grace = Instant::now().checked_add(futex::KILL_GRACE);
        }
        if leader && tick_at.is_none() {
            tick_at = Instant::now().checked_add(local.tick.get());
        }
        let until = [deadline, grace, tick_at].into_iter().flatten().min();
        let runs = local.runs.get();
        let wake = park_uninterruptible(task, until, on);
        let mut now = None;
        let mut timed_out = false;
        let give_up = || {
            let t = Instant::now();
            now = Some(t);
            timed_out = matches!(wake, Wake::TimedOut) && deadline.is_some_and(|d| t >= d);
            timed_out || grace.is_some_and(|g| t >= g)
        };
        // SAFETY: linked above, not yet reported woken or unlinked.
        match unsafe { TABLE.after_park(raw, give_up) } {
            Parked::Woken => {
                parkword::woken(&TABLE, addr, w);
                return Ok(());
            }
            Parked::Linked { leader: l } => {
                leader = l;
                if leader && matches!((tick_at, now), (Some(t), Some(n)) if n >= t) {
                    tick_at = None;
                    // Our own run before this park counts one.
                    let others_ran = local.runs.get().wrapping_sub(runs) > 1;
                    tick(local, lot, addr, others_ran);
                }
                continue;
            }
            Parked::Unlinked { leader, others } => {
                parkword::left(&TABLE, addr, w, leader, others);
            }
        }
        if timed_out {
            return Err(libc::ETIMEDOUT);
        }
        node.forget_waiter();
        crate::greenlet::abandon_current();
    }
}

/// The leader's tick: sweep if greenlets ran since the last one, and adapt
/// the tick (see the module docs).
fn tick(local: &Local, lot: &Lot, addr: usize, others_ran: bool) {
    if !others_ran {
        // Nothing ran that could take a token: tick less often.
        local.tick.set((local.tick.get() * 2).min(MAX_TICK));
        return;
    }
    let count = lot.count();
    // Every greenlet of the last sweep parked again, and no more: nothing
    // was waiting for that sweep. Otherwise keep sweeping often.
    let t = if count >= local.after_sweep.get() && count > 0 {
        (local.tick.get() * 2).min(MAX_TICK)
    } else {
        MIN_TICK
    };
    local.tick.set(t);
    local.after_sweep.set(count);
    sweep(addr);
}

/// Wakes every parker wait on `addr`.
fn sweep(addr: usize) {
    parkword::sweep(&TABLE, addr);
}

/// [`parkword::settle`] on this thread's word, if found; the lot's wait
/// count.
fn settle(local: &Local) -> usize {
    let addr = local.addr.get();
    let Some(lot) = local.lot.get() else { return 0 };
    if addr == 0 {
        return 0;
    }
    parkword::settle(&TABLE, addr, word(addr), lot)
}

/// The switch guard's `after` (see the module docs' table): a greenlet
/// came back.
fn guard_after() {
    LOCAL.with(|local| {
        if settle(local) > 0 {
            local.runs.set(local.runs.get().wrapping_add(1));
        } else if let Some(hub) = context::hub() {
            // No waits left: std's protocol alone again. A greenlet woken
            // but not resumed yet stores its own token.
            hub.set_switch_guard(None);
        }
    });
}

/// The switch guard's `settle`: after an idle wait, and when the hub stops.
fn guard_settle() {
    LOCAL.with(|local| {
        settle(local);
    });
}

/// The switch guard's `idle` (see the module docs' table): `PARKED` while
/// the hub blocks, so that an `unpark` wakes the waits.
fn guard_idle() -> bool {
    LOCAL.with(|local| {
        let addr = local.addr.get();
        let Some(lot) = local.lot.get() else {
            return true;
        };
        if addr == 0 {
            return true;
        }
        parkword::idle(&TABLE, addr, word(addr), lot)
    })
}
