//! The offload pool: a bounded set of OS threads that run blocking closures
//! for greenlets (gevent's threadpool, tokio's blocking pool).
//!
//! One pool per runtime, shared by its hubs. Threads are started on demand,
//! up to `max_threads`; a thread that finds no job for `keep_alive` exits.
//! Jobs queue in FIFO order while every thread is busy.
//!
//! # Thread states (all under `state`'s lock)
//!
//! A pool thread is *busy* (running a job) or *idle* (counted in `idle`
//! while it waits on `cond`; only the thread itself changes its count).
//! `submit` pushes the job, then wakes an idle thread not already woken
//! (`idle > notified`), or starts a new thread if fewer than `max_threads`
//! exist, or leaves the job for the next thread that comes back from one.
//! Every thread re-checks the queue after every wait, whoever took the job,
//! and retires only when its wait timed out *and* the queue is empty, under
//! the lock, so a queued job is never left without a thread to see it.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send + 'static>;

pub(crate) struct BlockingPool {
    state: Mutex<State>,
    cond: Condvar,
    max_threads: usize,
    keep_alive: Duration,
    name: String,
}

struct State {
    queue: VecDeque<Job>,
    threads: usize,
    idle: usize,
    /// Wake-ups sent to idle threads and not yet consumed.
    notified: usize,
    shutdown: bool,
}

impl BlockingPool {
    pub(crate) fn new(max_threads: usize, keep_alive: Duration, name: String) -> BlockingPool {
        BlockingPool {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                threads: 0,
                idle: 0,
                notified: 0,
                shutdown: false,
            }),
            cond: Condvar::new(),
            max_threads,
            keep_alive,
            name,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Jobs run outside the lock (and inside `catch_unwind`), so a poisoned
        // lock only means a panic in our own few lines: the state is intact.
        // Greenhub's own lock: a contended wait blocks the thread, never
        // parks a greenlet that submits a job (see `loom::Internal`).
        let _internal = crate::loom::Internal::enter();
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Threads (all, idle), queued jobs and the thread bound, for
    /// `inspect::Metrics`.
    pub(crate) fn stats(&self) -> (usize, usize, usize, usize) {
        let st = self.lock();
        (st.threads, st.idle, st.queue.len(), self.max_threads)
    }

    /// Whether no job is queued or running. A thread counts as running a
    /// job from its start until it waits for one (so a thread that is
    /// starting, or is between two jobs, reads as busy: the safe side for
    /// `Handle::wait_idle` and the deadlock report).
    pub(crate) fn is_idle(&self) -> bool {
        let st = self.lock();
        st.queue.is_empty() && st.threads == st.idle
    }

    /// Queues `job`; starts a thread for it if none is idle and the bound
    /// allows. Fails if the pool is shut down or no thread can be started
    /// and none exists to run the job later.
    pub(crate) fn submit(self: &Arc<Self>, job: Job) -> io::Result<()> {
        let mut st = self.lock();
        if st.shutdown {
            return Err(io::Error::other(
                "greenhub: the runtime is shutting down; its blocking pool takes no more work",
            ));
        }
        st.queue.push_back(job);
        if st.idle > st.notified {
            st.notified += 1;
            drop(st);
            self.cond.notify_one();
            return Ok(());
        }
        if st.threads >= self.max_threads {
            return Ok(()); // a busy thread takes it when it is done
        }
        st.threads += 1;
        let index = st.threads;
        drop(st);
        let pool = self.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("{}-{index}", self.name))
            .spawn(move || pool.worker());
        if let Err(e) = spawned {
            let mut st = self.lock();
            st.threads -= 1;
            if st.threads == 0 {
                // Nobody will ever run it: take the job back out.
                st.queue.pop_back();
                return Err(io::Error::new(
                    e.kind(),
                    format!("greenhub: cannot start a blocking-pool thread: {e}"),
                ));
            }
        }
        Ok(())
    }

    fn worker(&self) {
        let mut st = self.lock();
        loop {
            if let Some(job) = st.queue.pop_front() {
                drop(st);
                job();
                st = self.lock();
                continue;
            }
            if st.shutdown {
                break;
            }
            st.idle += 1;
            let (next, timeout) = self
                .cond
                .wait_timeout(st, self.keep_alive)
                .unwrap_or_else(PoisonError::into_inner);
            st = next;
            st.idle -= 1;
            st.notified = st.notified.saturating_sub(1);
            if timeout.timed_out() && st.queue.is_empty() {
                break; // idle for `keep_alive`: retire
            }
        }
        st.threads -= 1;
    }

    /// Stops accepting jobs; idle threads exit at once, busy ones after the
    /// queue is drained. Does not wait for them (a job may block forever).
    pub(crate) fn shutdown(&self) {
        self.lock().shutdown = true;
        self.cond.notify_all();
    }
}
