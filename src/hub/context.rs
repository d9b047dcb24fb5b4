//! Which hub and greenlet the calling code runs on.
//!
//! One thread-local pointer per OS thread: set to the hub's context for the
//! life of a hub thread, null everywhere else. It is read only through the
//! `#[inline(never)]` accessors below, so the compiler cannot keep a stale
//! thread-local address in a register across a greenlet switch
//! (docs/ARCHITECTURE.md, 'Thread-locals across a switch';
//! llvm/llvm-project#98479). Code that has just resumed from a suspend uses
//! the hub pointer it was resumed with instead.

use std::cell::Cell;
use std::ptr::{self, NonNull};

use crate::greenlet::task::{Header, RawTask, TaskRef};
use crate::hub::HubContext;

thread_local! {
    static HUB: Cell<*const HubContext> = const { Cell::new(ptr::null()) };
}

/// Marks the calling thread as running `hub` until the guard drops.
pub(crate) fn enter(hub: &HubContext) -> EnterGuard {
    let prev = HUB.with(|h| h.replace(hub));
    EnterGuard { prev }
}

pub(crate) struct EnterGuard {
    prev: *const HubContext,
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        HUB.with(|h| h.set(self.prev));
    }
}

/// The hub the calling thread runs, if it is a hub thread.
///
/// The reference must not be kept across a greenlet suspend (use the
/// `HubRef` the suspend returns instead).
#[inline(never)]
pub(crate) fn hub<'a>() -> Option<&'a HubContext> {
    let p = HUB.with(|h| h.get());
    // SAFETY: the pointer is set by `enter` for the life of the hub's run
    // loop and reset before the context is dropped; greenlets and callbacks
    // that read it run inside that loop on the same thread.
    unsafe { p.as_ref() }
}

/// The greenlet the calling code runs on, if any.
#[inline(never)]
pub(crate) fn current_raw() -> Option<NonNull<dyn RawTask>> {
    hub().and_then(|h| h.current())
}

/// The greenlet the calling code runs on, as a new reference.
pub(crate) fn current_task() -> Option<TaskRef> {
    let p = current_raw()?;
    // SAFETY: `p` came from a `TaskRef` that the hub holds while it runs
    // this greenlet; we take one more count for the new reference.
    Some(unsafe { TaskRef::clone_from_raw(p) })
}

/// The address of the current greenlet (its identity), if any.
pub(crate) fn current_task_ptr() -> Option<usize> {
    current_raw().map(|p| p.as_ptr() as *const () as usize)
}

/// The header of the greenlet running on this thread, for the SIGSEGV
/// handler: one thread-local read and two pointer loads, no allocation.
fn current_header_for_signal<'a>() -> Option<&'a Header> {
    let hub = HUB.with(|h| h.get());
    // SAFETY: see `hub`; the handler runs on the faulting thread, whose hub
    // context and current greenlet are alive while the greenlet runs.
    let hub = unsafe { hub.as_ref() }?;
    let task = hub.current()?;
    // SAFETY: the hub holds an Arc to the running greenlet.
    Some(unsafe { task.as_ref() }.header())
}

/// The [`FaultCheck`](crate::stack::overflow::FaultCheck) the hubs install:
/// a fault at `addr` inside the running greenlet's guard region is its stack
/// overflow. Async-signal-safe (see [`current_header_for_signal`]).
pub(crate) fn check_stack_fault(addr: usize) {
    if let Some(header) = current_header_for_signal() {
        let info = header.stack_info();
        if addr >= info.guard_lo && addr < info.guard_hi {
            let name = header.name();
            crate::stack::overflow::report_and_abort(name, header.id.as_u64(), info.usable);
        }
    }
}

/// The id of the running greenlet, if the caller runs on one.
pub(crate) fn current_task_id() -> Option<crate::greenlet::GreenletId> {
    // SAFETY: the hub holds an `Arc` to the greenlet it is running, and the
    // caller is that greenlet (or the hub), so the task is alive.
    current_raw().map(|p| unsafe { p.as_ref() }.header().id)
}
