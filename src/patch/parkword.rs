//! The steps of the shared std thread parker protocol (`parker.rs`, whose
//! module docs give the protocol and the table of who moves the word) that
//! touch the parker word and the futex table: pure functions over an
//! `AtomicU32` and a [`Table`], so that they run under `--cfg loom` too
//! (`tests/loom_futex.rs`). `parker.rs` calls them with std's parker word of
//! the hub thread and the hook's table; what stays there is what cannot run
//! under loom (finding the word, the greenlet's park, deadlines, the tick's
//! timing).

use std::ptr::NonNull;

use super::table::{Lot, Node, Table, WakeUp};
use crate::loom::{AtomicU32, Ordering};

/// std's parker states.
pub const EMPTY: u32 = 0;
/// The token.
pub const NOTIFIED: u32 = 1;
/// A thread (here: a greenlet, or its hub) sleeps on the word.
pub const PARKED: u32 = u32::MAX;

/// The hook's link of a parker wait: std checked for `PARKED` just before
/// its system call; since then only an `unpark` can have changed it, to
/// `NOTIFIED`, which std's loop takes when the hook returns. `None`: not
/// linked (return at once); `Some(leader)`: linked, as its lot's leader or
/// not.
///
/// # Safety
///
/// As [`Table::link`].
pub unsafe fn link<W>(table: &Table<W>, node: NonNull<Node<W>>, w: &AtomicU32) -> Option<bool> {
    // SAFETY: the caller's promise.
    unsafe { table.link(node, || w.load(Ordering::SeqCst) == PARKED) }
}

/// A woken parker wait is about to return to std's loop, which leaves
/// `park` when it can swap `NOTIFIED` for `EMPTY`: store the token. One
/// already there may be another greenlet's: wake them all for it.
pub fn woken<W: WakeUp>(table: &Table<W>, addr: usize, w: &AtomicU32) {
    if w.swap(NOTIFIED, Ordering::SeqCst) == NOTIFIED {
        sweep(table, addr);
    }
}

/// A parker wait unlinked itself ([`Table::after_park`]'s
/// `Parked::Unlinked`): std's `park_timeout` swaps in `EMPTY` next, eating
/// a token meant for another wait; a leader leaving makes another one
/// leader. Either way the others are woken. Returns whether they were.
pub fn left<W: WakeUp>(
    table: &Table<W>,
    addr: usize,
    w: &AtomicU32,
    leader: bool,
    others: bool,
) -> bool {
    let sweep_them = others && (leader || w.load(Ordering::SeqCst) == NOTIFIED);
    if sweep_them {
        sweep(table, addr);
    }
    sweep_them
}

/// Wakes every parker wait on `addr`.
pub fn sweep<W: WakeUp>(table: &Table<W>, addr: usize) {
    table.wake(addr, 0, u32::MAX);
}

/// The guard's `after` and `settle`: the word back to `EMPTY` if a
/// greenlet's `park` or the hub's `idle` left it `PARKED`; a token that came
/// without a wake-up wakes every wait. Returns the lot's wait count.
pub fn settle<W: WakeUp>(table: &Table<W>, addr: usize, w: &AtomicU32, lot: &Lot) -> usize {
    let count = lot.count();
    match w.load(Ordering::SeqCst) {
        // Fails only on an `unpark`'s `NOTIFIED`, which wakes them all.
        PARKED => {
            let _ = w.compare_exchange(PARKED, EMPTY, Ordering::SeqCst, Ordering::SeqCst);
        }
        NOTIFIED if count > 0 => sweep(table, addr),
        _ => {}
    }
    count
}

/// The guard's `idle`: `PARKED` while the hub blocks with waits linked, so
/// that an `unpark` futex-wakes them (and so rings the hub). `false`: a
/// token is there (it came without a wake-up): every wait was woken
/// instead, and the hub must not block.
pub fn idle<W: WakeUp>(table: &Table<W>, addr: usize, w: &AtomicU32, lot: &Lot) -> bool {
    if lot.count() == 0 {
        return true;
    }
    match w.compare_exchange(EMPTY, PARKED, Ordering::SeqCst, Ordering::SeqCst) {
        Ok(_) | Err(PARKED) => true,
        Err(_) => {
            sweep(table, addr);
            false
        }
    }
}
