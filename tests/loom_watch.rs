//! Loom model of the running-greenlet slot (src/hub/watch.rs): a hub
//! that publishes the greenlet it resumes and later frees it, against an
//! observer (the blocking monitor) that reads the published greenlet's
//! header.
//!
//! A loom `UnsafeCell` stands in for each header: the observer reads it, the
//! hub writes it when it "frees" the greenlet. Loom reports any read that is
//! not ordered before that write as a data race, so the model checks the
//! invariant **a header is never read after (or while) it is freed**, for
//! every interleaving: the observer starting before, during or after the
//! resume, and the hub publishing a second greenlet in between.
//!
//! I checked that the model bites: with the fence in `retire` removed, loom
//! reports the race.

#![cfg(loom)]

use greenhub::__private::RunningSlot;
use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;

struct Header {
    /// 0 while alive, 1 once freed.
    freed: UnsafeCell<u32>,
}

fn model(greenlets: usize) {
    loom::model(move || {
        let slot = Arc::new(RunningSlot::default());
        let headers: Arc<Vec<Header>> = Arc::new(
            (0..greenlets)
                .map(|_| Header {
                    freed: UnsafeCell::new(0),
                })
                .collect(),
        );
        let hub = {
            let slot = slot.clone();
            let headers = headers.clone();
            thread::spawn(move || {
                for h in headers.iter() {
                    // Resume, then the greenlet finishes: retire, free.
                    slot.enter(h as *const Header as usize);
                    slot.leave();
                    slot.retire();
                    // SAFETY: loom checks this write against the reads.
                    h.freed.with_mut(|f| unsafe { *f = 1 });
                }
            })
        };
        let seen = slot.observe(|p| {
            // SAFETY: `p` is the address of one of `headers`, which outlive
            // the model; the cell access itself is what loom checks.
            let h = unsafe { &*(p as *const Header) };
            // SAFETY: loom checks this read against the write.
            h.freed.with(|f| unsafe { *f })
        });
        // A header observed as running was not freed yet.
        assert_ne!(seen, Some(1));
        hub.join().unwrap();
    });
}

#[test]
fn observed_header_is_not_freed_meanwhile() {
    model(1);
}

#[test]
fn second_greenlet_published_in_between() {
    model(2);
}
