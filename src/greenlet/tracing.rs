//! The `tracing` feature: a span per greenlet, entered by its hub each time
//! it resumes the greenlet (so events logged by the greenlet's own code
//! carry its id and name), and events under the `greenhub` target: `spawn`
//! and `exit` at debug level, `park` and `wake` at trace level.
//!
//! Without the feature none of this is compiled; with it, a disabled
//! subscriber costs one relaxed load per call site (tracing's callsite
//! cache).

use std::panic::Location;

use crate::greenlet::GreenletId;
use crate::greenlet::runinfo::WaitOn;

/// The span of a new greenlet.
pub(crate) fn greenlet_span(
    id: GreenletId,
    name: Option<&str>,
    site: &'static Location<'static>,
    parent: Option<GreenletId>,
) -> tracing::Span {
    let span = tracing::debug_span!(
        target: "greenhub",
        "greenlet",
        id = id.as_u64(),
        name = name.unwrap_or(""),
    );
    tracing::debug!(
        target: "greenhub",
        parent: &span,
        spawned_at = %site,
        parent = parent.map_or(0, |p| p.as_u64()),
        "spawn"
    );
    span
}

/// A greenlet is about to park.
pub(crate) fn park(on: WaitOn) {
    tracing::trace!(target: "greenhub", on = ?on.kind, object = on.obj, "park");
}

/// A parked greenlet was woken (by the caller).
pub(crate) fn wake(id: GreenletId) {
    tracing::trace!(target: "greenhub", greenlet = id.as_u64(), "wake");
}

/// A greenlet's closure ended (`outcome`: finished, panicked, killed).
pub(crate) fn exit(outcome: &'static str) {
    tracing::debug!(target: "greenhub", outcome, "exit");
}
