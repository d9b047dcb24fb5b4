//! The iterators of [`Pool::imap`] and [`Pool::imap_unordered`].

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use crate::JoinError;
use crate::greenlet::JoinHandle;
use crate::greenlet::runinfo::WaitKind;
use crate::loom::SpinLock;
use crate::pool::Pool;
use crate::sync::waitlist::{WaitList, Waited, wait, wake_all};

/// One item with the function to apply to it.
pub(crate) type Job<T> = Box<dyn FnOnce() -> T + Send>;

/// The iterator of [`Pool::imap`]: results in input order.
///
/// Keeps at most the pool's size of jobs in flight; `next` starts jobs for
/// the following items before it waits for the one due. Dropping it kills the
/// jobs still in flight.
///
/// ```
/// greenhub::run(|| {
///     let pool = greenhub::pool::Pool::new(3);
///     let squares: Vec<u64> = pool.imap(0..10u64, |x| x * x).collect();
///     assert_eq!(squares[9], 81);
/// });
/// ```
pub struct Imap<'a, T> {
    pool: &'a Pool,
    jobs: Box<dyn Iterator<Item = Job<T>> + 'a>,
    pending: VecDeque<JoinHandle<T>>,
}

impl<'a, T: Send + 'static> Imap<'a, T> {
    pub(crate) fn new(pool: &'a Pool, jobs: Box<dyn Iterator<Item = Job<T>> + 'a>) -> Self {
        Imap {
            pool,
            jobs,
            pending: VecDeque::new(),
        }
    }
}

impl<T: Send + 'static> Iterator for Imap<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        while self.pending.len() < self.pool.size() {
            match self.jobs.next() {
                Some(job) => self.pending.push_back(self.pool.spawn(job)),
                None => break,
            }
        }
        let due = self.pending.pop_front()?;
        Some(unwrap_job(due.join()))
    }
}

impl<T> Drop for Imap<'_, T> {
    fn drop(&mut self) {
        self.pending.iter().for_each(JoinHandle::kill);
    }
}

impl<T> fmt::Debug for Imap<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Imap")
            .field("in_flight", &self.pending.len())
            .finish_non_exhaustive()
    }
}

/// The iterator of [`Pool::imap_unordered`]: results in completion order.
///
/// Like [`Imap`], at most the pool's size of jobs are in flight, and dropping
/// it kills them.
///
/// ```
/// greenhub::run(|| {
///     let pool = greenhub::pool::Pool::new(3);
///     let mut v: Vec<u32> = pool.imap_unordered(1..=4u32, |x| x + 1).collect();
///     v.sort();
///     assert_eq!(v, [2, 3, 4, 5]);
/// });
/// ```
pub struct ImapUnordered<'a, T> {
    pool: &'a Pool,
    jobs: Box<dyn Iterator<Item = Job<T>> + 'a>,
    pending: HashMap<u64, JoinHandle<T>>,
    next_key: u64,
    done: Arc<Finished>,
}

/// The keys of the jobs that finished, in the order they did.
struct Finished {
    state: SpinLock<FinishedState>,
}

struct FinishedState {
    keys: VecDeque<u64>,
    waiters: WaitList<()>,
}

/// Travels with a job's closure; reports the job finished when dropped
/// (after it returned, panicked or was killed, or unrun).
struct Report {
    done: Arc<Finished>,
    key: u64,
}

impl Drop for Report {
    fn drop(&mut self) {
        let mut st = self.done.state.lock();
        st.keys.push_back(self.key);
        let woken = st.waiters.drain(|_| {});
        drop(st);
        wake_all(woken);
    }
}

impl<'a, T: Send + 'static> ImapUnordered<'a, T> {
    pub(crate) fn new(pool: &'a Pool, jobs: Box<dyn Iterator<Item = Job<T>> + 'a>) -> Self {
        ImapUnordered {
            pool,
            jobs,
            pending: HashMap::new(),
            next_key: 0,
            done: Arc::new(Finished {
                state: SpinLock::new(FinishedState {
                    keys: VecDeque::new(),
                    waiters: WaitList::new(),
                }),
            }),
        }
    }

    /// The key of the next job to finish (waits for it).
    fn next_finished(&self) -> u64 {
        let mut st = self.done.state.lock();
        loop {
            if let Some(key) = st.keys.pop_front() {
                return key;
            }
            let (guard, waited) = wait(
                &self.done.state,
                st,
                |s| &mut s.waiters,
                (),
                None,
                WaitKind::Group,
            );
            st = guard;
            if let Waited::Interrupted((), interrupt) = waited {
                drop(st);
                interrupt.raise();
            }
        }
    }
}

impl<T: Send + 'static> Iterator for ImapUnordered<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        while self.pending.len() < self.pool.size() {
            let Some(job) = self.jobs.next() else { break };
            let key = self.next_key;
            self.next_key += 1;
            let report = Report {
                done: self.done.clone(),
                key,
            };
            let handle = self.pool.spawn(move || {
                let _report = report;
                job()
            });
            self.pending.insert(key, handle);
        }
        if self.pending.is_empty() {
            return None;
        }
        loop {
            // A key without a handle is a job whose spawn failed (and
            // panicked in an earlier `next`): skip it.
            if let Some(handle) = self.pending.remove(&self.next_finished()) {
                return Some(unwrap_job(handle.join()));
            }
        }
    }
}

impl<T> Drop for ImapUnordered<'_, T> {
    fn drop(&mut self) {
        self.pending.values().for_each(JoinHandle::kill);
    }
}

impl<T> fmt::Debug for ImapUnordered<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapUnordered")
            .field("in_flight", &self.pending.len())
            .finish_non_exhaustive()
    }
}

/// Turns items and a shared function into jobs, lazily.
pub(crate) fn jobs<'a, I, F, T>(items: I, f: F) -> Box<dyn Iterator<Item = Job<T>> + 'a>
where
    I: IntoIterator,
    I::IntoIter: 'a,
    I::Item: Send + 'static,
    F: Fn(I::Item) -> T + Send + Sync + 'static,
    T: Send + 'static,
{
    let f = Arc::new(f);
    Box::new(items.into_iter().map(move |item| {
        let f = f.clone();
        Box::new(move || f(item)) as Job<T>
    }))
}

/// A job's value, or the job's failure resumed in the consumer.
fn unwrap_job<T>(outcome: Result<T, JoinError>) -> T {
    match outcome {
        Ok(value) => value,
        Err(e) => match e.try_into_panic() {
            Ok(payload) => std::panic::resume_unwind(payload),
            Err(e) => panic!("greenhub::pool: a job did not finish: {e}"),
        },
    }
}
