//! Escalation: a greenlet spawned with
//! [`Builder::escalate`](crate::greenlet::Builder::escalate) whose panic must
//! stop the program, as gevent re-raises `SystemExit` and `KeyboardInterrupt`
//! from a greenlet in the main greenlet.
//!
//! Each runtime keeps one [`Escalation`]: the payload of the escalated panic
//! that no `block_on` has resumed yet, and the main greenlets of the
//! `block_on` calls running now. The rules:
//!
//! - **first wins**: a panic escalates only if no escalated panic is waiting
//!   to be resumed; a second one, while the first waits, stays with its own
//!   `JoinHandle` as an ordinary panic;
//! - the escalated payload is **moved** here; the greenlet's `JoinHandle`
//!   reports a panic with a copy when the payload is a string (`&str` or
//!   `String`, what `panic!` makes), else with a `&str` saying where it went;
//! - every main greenlet running is **killed** (woken out of whatever it
//!   waits on), and the first `block_on` to see its main greenlet end
//!   resumes the payload, whatever that greenlet's own outcome (a value
//!   returned meanwhile, or its own panic, is dropped); any other `block_on`
//!   running then panics with a message saying so;
//! - with no `block_on` running, the payload waits: the next `block_on`
//!   resumes it at once, without running its closure.
//!
//! All of it happens under one lock, held briefly and never across a switch.

use std::any::Any;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::error::drop_payload_safely;
use crate::greenlet::{Greenlet, GreenletId};
use crate::hub::context;

type Payload = Box<dyn Any + Send + 'static>;

/// One runtime's escalation state.
#[derive(Default)]
pub(crate) struct Escalation {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The escalated panic no `block_on` has resumed yet.
    payload: Option<Payload>,
    /// The main greenlets of the `block_on` calls running now, and whether
    /// an escalation killed each.
    mains: Vec<(Greenlet, bool)>,
}

/// How a `block_on`'s main greenlet ended, as far as escalation goes.
pub(crate) enum Left {
    /// Nothing was escalated: its own outcome stands.
    Normal,
    /// Resume this escalated panic.
    Escalated(Payload),
    /// It was killed by an escalation that another `block_on` resumed.
    Stopped,
}

/// The escalating greenlet, on its own stack, as its closure panicked:
/// escalates `payload` to its runtime and returns what its `JoinHandle`
/// reports (see the module docs).
pub(crate) fn raise(payload: Payload) -> Payload {
    match context::hub() {
        Some(hub) => hub.shared.escalation.raise(payload),
        None => payload,
    }
}

impl Escalation {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Greenhub's own lock: a contended wait blocks the thread, never
        // parks the greenlet (see `loom::Internal`).
        let _internal = crate::loom::Internal::enter();
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn raise(&self, payload: Payload) -> Payload {
        let mut inner = self.lock();
        if inner.payload.is_some() {
            return payload;
        }
        let copy = copy_of(&*payload);
        inner.payload = Some(payload);
        for (main, hit) in &mut inner.mains {
            *hit = true;
            main.kill();
        }
        copy
    }

    /// `block_on`, before it spawns its main greenlet: the escalated panic
    /// that waits for a `block_on`, if any.
    pub(crate) fn take_waiting(&self) -> Option<Payload> {
        self.lock().payload.take()
    }

    /// `block_on`, once its main greenlet is spawned: registers it (killed
    /// at once if an escalation came in between).
    pub(crate) fn enter(&self, main: Greenlet) {
        let mut inner = self.lock();
        let hit = inner.payload.is_some();
        if hit {
            main.kill();
        }
        inner.mains.push((main, hit));
    }

    /// A `block_on` that took `payload` but cannot resume it (it is
    /// unwinding already) leaves it for the next.
    pub(crate) fn put_back(&self, payload: Payload) {
        let mut inner = self.lock();
        match inner.payload {
            None => inner.payload = Some(payload),
            Some(_) => {
                drop(inner);
                drop_payload_safely(payload);
            }
        }
    }

    /// `block_on`, after its main greenlet `id` ended.
    pub(crate) fn leave(&self, id: GreenletId) -> Left {
        let mut inner = self.lock();
        let hit = match inner.mains.iter().position(|(g, _)| g.id() == id) {
            Some(at) => inner.mains.swap_remove(at).1,
            None => false,
        };
        match inner.payload.take() {
            Some(payload) => Left::Escalated(payload),
            None if hit => Left::Stopped,
            None => Left::Normal,
        }
    }
}

impl Drop for Escalation {
    fn drop(&mut self) {
        // An escalated panic that no `block_on` resumed: its payload may
        // have a destructor that panics (see `drop_payload_safely`).
        let inner = self.inner.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Some(payload) = inner.payload.take() {
            drop_payload_safely(payload);
        }
    }
}

/// What the escalating greenlet's `JoinHandle` reports in place of the
/// payload that moved to `block_on`.
fn copy_of(payload: &(dyn Any + Send)) -> Payload {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        Box::new(*s)
    } else if let Some(s) = payload.downcast_ref::<String>() {
        Box::new(s.clone())
    } else {
        Box::new("greenhub: this panic was escalated; its payload went to block_on")
    }
}
