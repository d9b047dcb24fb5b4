//! The set of started, unfinished greenlets of one hub (a `RefCell` of the
//! hub's), or of every hub's migratable ones (`Shared::migrants`, behind a
//! lock: `hub::migrate`).
//!
//! A slab of `TaskRef`s: O(1) insert when a greenlet starts and O(1) remove
//! when it finishes (its slot index is kept in its header). The set is what
//! keeps a parked greenlet alive when nothing else refers to it, what a
//! shutdown kills and unwinds, and what the run-info dump lists. Because the
//! hub holds an `Arc` here until the greenlet's coroutine is gone, the last
//! `Arc` of a started greenlet can never drop on another thread while its
//! stack is still suspended.

use crate::greenlet::task::{LIVE_ORDER, TaskRef};

#[derive(Default)]
pub(crate) struct LiveSet {
    slots: Vec<Option<TaskRef>>,
    free: Vec<usize>,
    len: usize,
}

impl LiveSet {
    pub(crate) fn insert(&mut self, task: TaskRef) {
        let i = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        task.header().live_slot.store(i, LIVE_ORDER);
        self.slots[i] = Some(task);
        self.len += 1;
    }

    pub(crate) fn remove(&mut self, task: &TaskRef) -> Option<TaskRef> {
        let i = task.header().live_slot.load(LIVE_ORDER);
        let t = self.slots.get_mut(i)?.take()?;
        self.free.push(i);
        self.len -= 1;
        Some(t)
    }

    /// Every live greenlet.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &TaskRef> {
        self.slots.iter().flatten()
    }

    /// Clones of every live greenlet.
    pub(crate) fn snapshot(&self) -> Vec<TaskRef> {
        self.slots.iter().flatten().cloned().collect()
    }

    /// Empties the set.
    pub(crate) fn take_all(&mut self) -> Vec<TaskRef> {
        self.free.clear();
        self.len = 0;
        std::mem::take(&mut self.slots)
            .into_iter()
            .flatten()
            .collect()
    }
}
