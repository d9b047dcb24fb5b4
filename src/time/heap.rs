//! A hub's timers: a binary heap of deadlines with O(1) cancellation.
//!
//! Each timer lives in a slab slot; the heap orders `(deadline, seq, slot)`.
//! Cancelling frees the slot at once and leaves the heap entry behind, stale
//! (its `seq` no longer matches the slot); stale entries are skipped when they
//! reach the top and the heap is rebuilt when they outnumber the live timers,
//! so timeouts that are almost always cancelled (read deadlines) cost no more
//! memory than the live ones. `seq` is unique per timer, which also orders
//! equal deadlines by insertion (FIFO), keeping single-threaded runs
//! deterministic.
//!
//! Pure data structure: no clock, no threads (the hub passes `now`).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// Identifies one inserted timer, for [`TimerHeap::cancel`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct TimerKey {
    slot: u32,
    seq: u64,
}

struct Slot<T> {
    seq: u64,
    deadline: Instant,
    value: Option<T>,
}

pub(crate) struct TimerHeap<T> {
    heap: BinaryHeap<Reverse<(Instant, u64, u32)>>,
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    next_seq: u64,
    live: usize,
}

impl<T> Default for TimerHeap<T> {
    fn default() -> Self {
        TimerHeap {
            heap: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            next_seq: 0,
            live: 0,
        }
    }
}

impl<T> TimerHeap<T> {
    pub(crate) fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// How many timers are armed.
    #[cfg(not(loom))]
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    pub(crate) fn insert(&mut self, deadline: Instant, value: T) -> TimerKey {
        let seq = self.next_seq;
        self.next_seq += 1;
        let slot = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Slot {
                    seq,
                    deadline,
                    value: Some(value),
                };
                i
            }
            None => {
                self.slots.push(Slot {
                    seq,
                    deadline,
                    value: Some(value),
                });
                (self.slots.len() - 1) as u32
            }
        };
        self.heap.push(Reverse((deadline, seq, slot)));
        self.live += 1;
        TimerKey { slot, seq }
    }

    /// Removes the timer if it has not fired; returns its value.
    pub(crate) fn cancel(&mut self, key: TimerKey) -> Option<T> {
        let slot = self.slots.get_mut(key.slot as usize)?;
        if slot.seq != key.seq || slot.value.is_none() {
            return None;
        }
        let value = slot.value.take();
        self.free.push(key.slot);
        self.live -= 1;
        if self.heap.len() > 64 && self.heap.len() > 2 * self.live {
            self.compact();
        }
        value
    }

    /// The earliest live deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        self.skip_stale();
        self.heap.peek().map(|Reverse((d, _, _))| *d)
    }

    /// Removes and returns the earliest timer whose deadline is `<= now`.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<T> {
        self.skip_stale();
        let &Reverse((deadline, _, slot)) = self.heap.peek()?;
        if deadline > now {
            return None;
        }
        self.heap.pop();
        let value = self.slots[slot as usize].value.take();
        self.free.push(slot);
        self.live -= 1;
        value
    }

    fn is_live(&self, seq: u64, slot: u32) -> bool {
        let s = &self.slots[slot as usize];
        s.seq == seq && s.value.is_some()
    }

    fn skip_stale(&mut self) {
        while let Some(&Reverse((_, seq, slot))) = self.heap.peek() {
            if self.is_live(seq, slot) {
                break;
            }
            self.heap.pop();
        }
    }

    /// Rebuilds the heap from the live slots.
    fn compact(&mut self) {
        let entries: Vec<_> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.value.is_some())
            .map(|(i, s)| Reverse((s.deadline, s.seq, i as u32)))
            .collect();
        self.heap = BinaryHeap::from(entries);
    }
}
