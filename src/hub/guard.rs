//! Switch guards: a pair of functions a layer above the hub (today only
//! `patch::parker`) may ask one hub to call around every resume of a
//! greenlet, and once when the hub stops.
//!
//! A guard lives on one hub (a `Cell` of its `HubContext`), is installed and
//! removed from that hub's own thread, and costs a hub without one nothing
//! per run: the hub tests one flag after each run anyway (`after_run`). The hub calls `after` as soon as a
//! greenlet is back (it yielded, parked, returned or was abandoned); `idle`
//! just before it blocks in its poller with nothing to run, where `false`
//! means "do not block" (the guard scheduled greenlets of this hub, which on
//! the hub's own thread rings no doorbell); and `settle` after each idle
//! wait and when its loop ends. Nothing runs *before* a resume, and `after`
//! hangs off the hub's existing after-run flag: a check of its own around
//! each resume cost 5 to 10 instructions per switch (figures in
//! `benches/compare/PROFILE.md`).

use super::HubContext;

/// The functions of a switch guard. `'static`: a guard is a fixed pair of
/// functions; its state lives with whoever installs it.
pub(crate) struct SwitchGuard {
    /// Called on the hub's thread just after a greenlet came back.
    pub after: fn(),
    /// Called on the hub's thread after an idle wait, and when the hub's
    /// loop ends.
    pub settle: fn(),
    /// Called on the hub's thread before it blocks in its poller; `false`:
    /// poll without blocking.
    pub idle: fn() -> bool,
}

impl HubContext {
    /// Installs `guard` on this hub, or removes it (`None`). Called on the
    /// hub's thread (from one of its greenlets, or from the guard itself).
    #[cfg_attr(not(feature = "patch"), allow(dead_code))]
    pub(crate) fn set_switch_guard(&self, guard: Option<&'static SwitchGuard>) {
        self.switch_guard.set(guard);
        self.note_after_run();
    }

    /// The guard's `settle`, if one is installed.
    #[inline]
    pub(super) fn guard_settle(&self) {
        if let Some(g) = self.switch_guard.get() {
            (g.settle)();
        }
    }

    /// The guard's `idle`; `true` without a guard.
    #[inline]
    pub(super) fn guard_idle(&self) -> bool {
        self.switch_guard.get().is_none_or(|g| (g.idle)())
    }

    /// The guard's `after`, if one is installed.
    pub(super) fn guard_after(&self) {
        if let Some(g) = self.switch_guard.get() {
            (g.after)();
        }
    }
}
