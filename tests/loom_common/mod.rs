//! What the loom models of hub hand-offs share (`loom_park`, `loom_kill`,
//! `loom_migrate`): a loom thread standing in for a hub that waits for its
//! inbox.

use std::collections::VecDeque;

use greenhub::__private::Inbox;
use loom::thread;

/// The hub (a loom thread, whose park stands in for the hub's poller, sticky
/// like the eventfd-backed `mio::Waker`) blocks until its inbox has
/// something, then drains it; returns how many items it held.
pub fn wait_inbox(inbox: &Inbox<usize>) -> usize {
    let mut ready = VecDeque::new();
    loop {
        let n = inbox.drain_into(&mut ready);
        if n > 0 {
            return n;
        }
        thread::park();
    }
}
