//! `Group`: greenlets joined or killed together (gevent.pool.Group).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::greenlet::runinfo::WaitKind;
use crate::greenlet::{self, Greenlet, GreenletId, JoinHandle};
use crate::loom::SpinLock;
use crate::sync::waitlist::{WaitList, Waited, wait, wake_all};

/// A set of greenlets that can be waited for, or killed, together: gevent's
/// `Group`.
///
/// [`spawn`](Self::spawn) starts a member and returns its [`JoinHandle`] as
/// [`crate::spawn`] does; the group keeps only a [`Greenlet`] handle to it,
/// and forgets it by itself when it finishes (returns, panics, is killed, or
/// never starts). So members may return different types, their outcomes
/// belong to whoever holds the handles, and [`join`](Self::join) just waits
/// until the group is empty.
///
/// A member that joins its own group waits for itself: it never returns
/// (until it is killed).
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
/// use std::time::Duration;
///
/// greenhub::run(|| {
///     let group = greenhub::pool::Group::new();
///     let done = Arc::new(AtomicUsize::new(0));
///     for i in 0..5 {
///         let done = done.clone();
///         group.spawn(move || {
///             greenhub::sleep(Duration::from_millis(i));
///             done.fetch_add(1, SeqCst);
///         });
///     }
///     group.join();
///     assert_eq!(done.load(SeqCst), 5);
///     assert!(group.is_empty());
/// });
/// ```
pub struct Group {
    inner: Arc<Inner>,
}

struct Inner {
    state: SpinLock<State>,
}

struct State {
    /// Members by key; `None` while the member is being spawned.
    members: HashMap<u64, Option<Greenlet>>,
    next_key: u64,
    /// Bumped by every `kill`, so a member spawned during a kill is killed too.
    kills: u64,
    /// Set by `close`: every member spawned from now on is killed at once.
    closed: bool,
    /// Callers of `join`, woken when the group becomes empty.
    waiters: WaitList<()>,
}

/// A member's ticket: dropped when the member's closure ends or is dropped
/// unrun, it removes the member and wakes the joiners if it was the last.
pub(crate) struct Membership {
    inner: Arc<Inner>,
    key: u64,
}

impl Drop for Membership {
    fn drop(&mut self) {
        let mut st = self.inner.state.lock();
        // Dropped after the lock: no destructor runs under a `SpinLock`
        // (this handle is never the greenlet's last reference today, but the
        // last one would drop the greenlet's closure or result: user code).
        let handle = st.members.remove(&self.key);
        if st.members.is_empty() {
            let woken = st.waiters.drain(|_| {});
            drop(st);
            wake_all(woken);
        } else {
            drop(st);
        }
        drop(handle);
    }
}

/// A closure and its membership, in this field order: the closure (and all
/// it captured) is dropped before the membership ends, whether it runs or is
/// dropped unrun. `scope` relies on that.
struct Member<F> {
    f: F,
    membership: Membership,
}

impl<F> Member<F> {
    fn run<T>(self) -> T
    where
        F: FnOnce() -> T,
    {
        let Member { f, membership } = self;
        let _membership = membership;
        f()
    }
}

impl Default for Group {
    fn default() -> Self {
        Group::new()
    }
}

impl Group {
    /// An empty group.
    ///
    /// ```
    /// assert_eq!(greenhub::pool::Group::new().len(), 0);
    /// ```
    pub fn new() -> Group {
        Group {
            inner: Arc::new(Inner {
                state: SpinLock::new(State {
                    members: HashMap::new(),
                    next_key: 0,
                    kills: 0,
                    closed: false,
                    waiters: WaitList::new(),
                }),
            }),
        }
    }

    /// Spawns `f` as a member of the group (see [`crate::spawn`]).
    ///
    /// # Panics
    ///
    /// Outside a greenhub runtime, like [`crate::spawn`].
    ///
    /// ```
    /// greenhub::run(|| {
    ///     let group = greenhub::pool::Group::new();
    ///     let h = group.spawn(|| 2 + 2);
    ///     assert_eq!(h.join().unwrap(), 4);
    /// });
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (membership, generation) = self.enter();
        let key = membership.key;
        let member = Member { f, membership };
        let handle = greenlet::Builder::new()
            .spawn(move || member.run())
            .unwrap_or_else(|e| panic!("greenhub::pool::Group::spawn: {e}"));
        self.register(key, generation, handle.greenlet());
        handle
    }

    /// Adds a member entry before its greenlet exists.
    fn enter(&self) -> (Membership, u64) {
        let mut st = self.inner.state.lock();
        let key = st.next_key;
        st.next_key += 1;
        st.members.insert(key, None);
        let membership = Membership {
            inner: self.inner.clone(),
            key,
        };
        (membership, st.kills)
    }

    /// Records the spawned greenlet of entry `key`, unless it already ended;
    /// kills it if the group was killed since the entry was made.
    fn register(&self, key: u64, generation: u64, greenlet: Greenlet) {
        let mut st = self.inner.state.lock();
        let killed = st.kills != generation || st.closed;
        if let Some(slot) = st.members.get_mut(&key) {
            *slot = Some(greenlet.clone());
            drop(st);
            if killed {
                greenlet.kill();
            }
        }
    }

    /// The number of members that have not finished.
    ///
    /// ```
    /// use std::time::Duration;
    /// greenhub::run(|| {
    ///     let group = greenhub::pool::Group::new();
    ///     group.spawn(|| greenhub::sleep(Duration::from_millis(20)));
    ///     assert_eq!(group.len(), 1);
    ///     group.join();
    ///     assert_eq!(group.len(), 0);
    /// });
    /// ```
    pub fn len(&self) -> usize {
        self.inner.state.lock().members.len()
    }

    /// Whether every member has finished.
    ///
    /// ```
    /// assert!(greenhub::pool::Group::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the greenlet `id` is a member that has not finished.
    ///
    /// ```
    /// greenhub::run(|| {
    ///     let group = greenhub::pool::Group::new();
    ///     let h = group.spawn(greenhub::park);
    ///     assert!(group.contains(h.id()));
    ///     h.kill();
    ///     let id = h.id();
    ///     assert!(h.join().unwrap_err().is_killed());
    ///     assert!(!group.contains(id));
    /// });
    /// ```
    pub fn contains(&self, id: GreenletId) -> bool {
        let st = self.inner.state.lock();
        st.members.values().flatten().any(|g| g.id() == id)
    }

    /// Waits until every member has finished (returns at once when the group
    /// is empty). Members spawned meanwhile are waited for too. Works from a
    /// greenlet (parks it) and from a plain thread (blocks it).
    ///
    /// A kill of the caller, or an expired [`timeout`](crate::timeout),
    /// unwinds out of `join` as out of any blocking call.
    ///
    /// ```
    /// use std::time::Duration;
    /// greenhub::run(|| {
    ///     let group = greenhub::pool::Group::new();
    ///     for _ in 0..3 {
    ///         group.spawn(|| greenhub::sleep(Duration::from_millis(5)));
    ///     }
    ///     group.join();
    ///     assert!(group.is_empty());
    /// });
    /// ```
    pub fn join(&self) {
        let joined = self.join_until(None);
        debug_assert!(joined);
    }

    /// Like [`join`](Self::join), giving up after `dur`. Returns whether the
    /// group became empty.
    ///
    /// ```
    /// use std::time::Duration;
    /// greenhub::run(|| {
    ///     let group = greenhub::pool::Group::new();
    ///     group.spawn(|| greenhub::sleep(Duration::from_secs(60)));
    ///     assert!(!group.join_timeout(Duration::from_millis(10)));
    ///     group.kill();
    ///     assert!(group.join_timeout(Duration::from_secs(10)));
    /// });
    /// ```
    pub fn join_timeout(&self, dur: Duration) -> bool {
        self.join_until(Instant::now().checked_add(dur))
    }

    fn join_until(&self, deadline: Option<Instant>) -> bool {
        match self.wait_empty(deadline) {
            Ok(joined) => joined,
            Err(interrupt) => interrupt.raise(),
        }
    }

    /// Waits until the group is empty or `deadline` passes; reports an
    /// interrupt (kill, expired `timeout`) instead of raising it.
    pub(crate) fn wait_empty(
        &self,
        deadline: Option<Instant>,
    ) -> Result<bool, crate::greenlet::wait::Interrupt> {
        let st = self.inner.state.lock();
        if st.members.is_empty() {
            return Ok(true);
        }
        let (_st, waited) = wait(
            &self.inner.state,
            st,
            |s| &mut s.waiters,
            (),
            deadline,
            WaitKind::Group,
        );
        match waited {
            Waited::Done(()) => Ok(true),
            Waited::TimedOut(()) => Ok(false),
            Waited::Interrupted((), interrupt) => Err(interrupt),
        }
    }

    /// Kills every member, and from now on every member as soon as it is
    /// spawned (used by `scope` when it unwinds).
    pub(crate) fn close(&self) {
        self.inner.state.lock().closed = true;
        self.kill();
    }

    /// Kills every member (see [`JoinHandle::kill`]), including one being
    /// spawned concurrently. Does not wait: [`join`](Self::join) does.
    ///
    /// ```
    /// use std::time::Duration;
    /// greenhub::run(|| {
    ///     let group = greenhub::pool::Group::new();
    ///     let h = group.spawn(|| greenhub::sleep(Duration::from_secs(3600)));
    ///     group.kill();
    ///     group.join();
    ///     assert!(h.join().unwrap_err().is_killed());
    /// });
    /// ```
    pub fn kill(&self) {
        let victims: Vec<Greenlet> = {
            let mut st = self.inner.state.lock();
            st.kills += 1;
            st.members.values().flatten().cloned().collect()
        };
        victims.iter().for_each(Greenlet::kill);
    }
}

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group").field("len", &self.len()).finish()
    }
}
