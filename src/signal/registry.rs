//! The subscriber registry and the dispatcher thread.
//!
//! The registry maps each watched signal number to its subscribers (handler
//! closures with the runtime to spawn them on, and [`Signals`] channels) and
//! to the disposition it had before greenhub took it over. One lock guards
//! all of it; the dispatcher delivers under that lock, so a subscriber that
//! has been removed gets nothing more.
//!
//! # States (per signal number, under the registry lock)
//!
//! - **Unwatched**: no slot. The signal keeps whatever disposition the
//!   process gave it (default, ignored, another library's handler), and
//!   greenhub's handler is not installed for it.
//! - **Watched**: a slot with at least one subscriber and the disposition
//!   saved when the first one came; greenhub's handler is installed.
//!
//! Transitions:
//!
//! - *First subscribe* (Unwatched to Watched): start the dispatcher if this
//!   is the first subscription of the process, clear the signal's pending
//!   flag (an arrival from an earlier Watched period is stale), install the
//!   handler while saving the old disposition, then add the subscriber. If
//!   the install fails, nothing changed.
//! - *Subscribe / unsubscribe* within Watched: add or remove an entry; no
//!   system call.
//! - *Last unsubscribe* (Watched to Unwatched): remove the slot and restore
//!   the saved disposition.
//!
//! # One arrival
//!
//! handler (any thread, any moment) -> pending flag + one byte in the pipe ->
//! dispatcher thread wakes, locks the registry, takes each pending flag ->
//! for each subscriber of that signal *at this moment*: spawn the handler
//! greenlet on its runtime, or put the number in the [`Signals`] channel
//! unless one is already queued there.
//!
//! The handler sets the flag *before* writing the byte, and the dispatcher
//! reads bytes *before* taking flags. So every flag set is seen: either its
//! byte (or, when the pipe is full and the byte is dropped, an older unread
//! byte) wakes a later round, or the flag was set before this round's read
//! and this round's take sees it.
//!
//! # Races
//!
//! - *Two subscribes at once*: serialised by the lock. The first installs
//!   and saves; the second finds the slot and only appends, so the saved
//!   disposition is always the process's, never greenhub's own.
//! - *An arrival during the first subscribe* (after the install, before the
//!   subscriber is added): the dispatcher waits for the lock and then
//!   delivers it to the new subscriber.
//! - *An arrival while the last subscriber is removed*: if the dispatcher
//!   took the flag first, the subscriber got it (it was still subscribed);
//!   otherwise the dispatcher finds no slot and drops it (nobody is
//!   subscribed any more). An arrival after the restore goes to the old
//!   disposition. A handler invocation still running on another thread
//!   across the restore may set the flag late: the next round drops it (no
//!   slot) or the next first subscribe clears it.
//! - *Removal vs. delivery*: removal takes the lock, so once `cancel` (or a
//!   drop) returns no new handler greenlet is spawned for it; one spawned
//!   before may still be queued or running.
//! - *Removed entries are dropped after the lock is released*: a handler
//!   closure may own another `SignalHandler`, whose drop takes the lock.
//!
//! [`Signals`]: super::Signals

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};

use parking_lot::Mutex;

use super::os;
use crate::Handle;
use crate::channel::Sender;

/// A handler closure, shared by every greenlet it is spawned as.
pub(crate) type HandlerFn = Arc<dyn Fn() + Send + Sync + 'static>;

/// Where one subscriber's deliveries go.
pub(crate) enum Sink {
    /// Spawn `f` as a new greenlet on `handle`'s runtime.
    Handler { handle: Handle, f: HandlerFn },
    /// Send the number to a [`Signals`](super::Signals) channel, at most one
    /// queued per signal.
    Stream {
        tx: Sender<i32>,
        queued: Arc<Queued>,
    },
}

/// Which signal numbers are in a `Signals` channel and not yet received:
/// pending deliveries of one signal coalesce into that one entry, so the
/// channel holds at most one entry per signal.
pub(crate) struct Queued([AtomicBool; os::SLOTS]);

impl Queued {
    pub(crate) fn new() -> Queued {
        Queued([const { AtomicBool::new(false) }; os::SLOTS])
    }

    /// Marks `sig` queued; false if it already was.
    fn mark(&self, sig: i32) -> bool {
        !self.0[sig as usize].swap(true, SeqCst)
    }

    /// Called by the receiver once it has taken `sig` out of the channel:
    /// an arrival from now on queues a new entry. (An arrival between the
    /// take and this call is covered by the `sig` being returned.)
    pub(crate) fn unmark(&self, sig: i32) {
        self.0[sig as usize].store(false, SeqCst);
    }
}

impl Sink {
    fn deliver(&self, sig: i32) {
        match self {
            Sink::Handler { handle, f } => {
                let f = f.clone();
                // `Handle::spawn` only panics on an invalid greenlet
                // configuration, which a default one is not; keep the
                // dispatcher alive whatever happens.
                let spawned = panic::catch_unwind(AssertUnwindSafe(|| {
                    drop(handle.spawn(move || f()));
                }));
                if spawned.is_err() {
                    eprintln!(
                        "greenhub::signal: cannot spawn the handler of {}",
                        os::describe(sig)
                    );
                }
            }
            Sink::Stream { tx, queued } => {
                if queued.mark(sig) && tx.send(sig).is_err() {
                    queued.unmark(sig); // closed: nobody will receive it
                }
            }
        }
    }
}

struct Subscriber {
    id: u64,
    sink: Sink,
}

struct Slot {
    subscribers: Vec<Subscriber>,
    saved: os::Disposition,
}

struct Registry {
    dispatcher: bool,
    slots: BTreeMap<i32, Slot>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    dispatcher: false,
    slots: BTreeMap::new(),
});

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh subscriber id.
pub(crate) fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, SeqCst)
}

/// Whether any signal has a subscriber in this process (a handler or a
/// `Signals`): then a signal may still wake a greenlet, and the deadlock
/// report stays silent (`runtime::deadlock`).
pub(crate) fn has_subscribers() -> bool {
    !REGISTRY.lock().slots.is_empty()
}

/// Adds subscriber `id` to `sig`, taking the signal over if it is the
/// first.
pub(crate) fn subscribe(sig: i32, id: u64, sink: Sink) -> io::Result<()> {
    os::check(sig)?;
    let mut reg = REGISTRY.lock();
    reg.start_dispatcher()?;
    match reg.slots.entry(sig) {
        Entry::Occupied(mut slot) => slot.get_mut().subscribers.push(Subscriber { id, sink }),
        Entry::Vacant(vacant) => {
            os::clear_pending(sig);
            let saved = os::install(sig)?;
            vacant.insert(Slot {
                subscribers: vec![Subscriber { id, sink }],
                saved,
            });
        }
    }
    Ok(())
}

/// Removes subscriber `id` from `sig`, restoring the signal's old
/// disposition if it was the last. Returns the removed sink, for the caller
/// to drop now that the lock is released.
pub(crate) fn unsubscribe(sig: i32, id: u64) -> Option<Sink> {
    let mut reg = REGISTRY.lock();
    let Entry::Occupied(mut slot) = reg.slots.entry(sig) else {
        return None;
    };
    let subs = &mut slot.get_mut().subscribers;
    let at = subs.iter().position(|s| s.id == id)?;
    let removed = subs.remove(at);
    if subs.is_empty() {
        let slot = slot.remove();
        if let Err(e) = os::restore(sig, &slot.saved) {
            // Only an invalid signal number makes sigaction fail, and this
            // one was installed with the same number.
            eprintln!("{e}");
        }
    }
    Some(removed.sink)
}

impl Registry {
    /// Starts the dispatcher thread, once per process.
    fn start_dispatcher(&mut self) -> io::Result<()> {
        if self.dispatcher {
            return Ok(());
        }
        let (reader, writer) = os::wake_pipe().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("greenhub::signal: cannot create the wake-up pipe: {e}"),
            )
        })?;
        std::thread::Builder::new()
            .name("greenhub-signal".into())
            .spawn(move || dispatch(reader))
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("greenhub::signal: cannot start the dispatcher thread: {e}"),
                )
            })?;
        // Only now can a handler write: no handler is installed before a
        // subscribe gets past this point.
        os::publish_wake_fd(writer);
        self.dispatcher = true;
        Ok(())
    }
}

/// The dispatcher thread: waits for the handler's bytes, then delivers
/// every pending signal. It lives as long as the process.
fn dispatch(mut reader: os::WakeReader) {
    loop {
        if let Err(e) = reader.wait() {
            eprintln!(
                "greenhub::signal: the dispatcher cannot read its wake-up pipe ({e}); \
                 signals are no longer delivered"
            );
            return;
        }
        let reg = REGISTRY.lock();
        for sig in 1..=os::MAX_SIGNAL {
            if !os::take_pending(sig) {
                continue;
            }
            // No slot: it arrived as the last subscriber left; nobody to tell.
            if let Some(slot) = reg.slots.get(&sig) {
                for sub in &slot.subscribers {
                    sub.sink.deliver(sig);
                }
            }
        }
    }
}
