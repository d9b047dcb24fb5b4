//! `Barrier`: n parties meet, then all go on; reusable across generations.
//!
//! The count of arrived parties, a generation number and the wait list live
//! behind one internal (loom-shim) mutex. The n-th arrival starts the next
//! generation (count back to 0) and drains the whole list, so a fast party
//! that calls `wait` again at once joins the next generation, never the one
//! being released.

use std::fmt;
use std::time::{Duration, Instant};

use crate::greenlet::runinfo::WaitKind;
use crate::loom::SpinLock;
use crate::sync::waitlist::{WaitList, Waited, wait, wake_all};

/// A meeting point for `n` greenlets or threads: std's `Barrier`.
///
/// Each [`wait`](Self::wait) blocks until `n` parties have called it, then
/// all return together and the barrier is ready for the next round. Exactly
/// one of them per round is the *leader*
/// ([`BarrierWaitResult::is_leader`]): the one whose arrival completed it.
///
/// Unlike std's, a waiting party can give up: one that is killed, whose
/// [`greenhub::timeout`](crate::timeout) expires, or whose
/// [`wait_timeout`](Self::wait_timeout) times out withdraws its arrival, so
/// the round then needs another party to arrive and the others wait on,
/// neither released early nor stuck for good.
///
/// ```
/// use std::sync::Arc;
/// greenhub::run(|| {
///     let barrier = Arc::new(greenhub::sync::Barrier::new(3));
///     let hs: Vec<_> = (0..3)
///         .map(|_| {
///             let b = barrier.clone();
///             greenhub::spawn(move || b.wait().is_leader())
///         })
///         .collect();
///     let leaders = hs.into_iter().map(|h| h.join().unwrap());
///     assert_eq!(leaders.filter(|&l| l).count(), 1);
/// });
/// ```
pub struct Barrier {
    n: usize,
    state: SpinLock<State>,
}

struct State {
    arrived: usize,
    generation: u64,
    waiters: WaitList<()>,
}

/// What [`Barrier::wait`] returns: whether this party was the leader.
///
/// ```
/// let b = greenhub::sync::Barrier::new(1);
/// assert!(b.wait().is_leader());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarrierWaitResult(bool);

impl BarrierWaitResult {
    /// Whether this party's arrival released the round (one per round).
    ///
    /// ```
    /// let b = greenhub::sync::Barrier::new(1);
    /// assert!(b.wait().is_leader());
    /// assert!(b.wait().is_leader());
    /// ```
    pub fn is_leader(&self) -> bool {
        self.0
    }
}

impl Barrier {
    /// A barrier for `n` parties. As std's, `n == 0` behaves like `n == 1`:
    /// every `wait` returns at once, as leader.
    ///
    /// ```
    /// let b = greenhub::sync::Barrier::new(0);
    /// assert!(b.wait().is_leader());
    /// ```
    pub fn new(n: usize) -> Barrier {
        Barrier {
            n: n.max(1),
            state: SpinLock::new(State {
                arrived: 0,
                generation: 0,
                waiters: WaitList::new(),
            }),
        }
    }

    /// Blocks until `n` parties (this one included) are waiting, then
    /// releases them all. A cancellation point: a party that is killed or
    /// times out withdraws (see the type docs).
    ///
    /// ```
    /// use std::sync::Arc;
    /// let b = Arc::new(greenhub::sync::Barrier::new(2));
    /// let b2 = b.clone();
    /// let t = std::thread::spawn(move || b2.wait().is_leader());
    /// let me = b.wait().is_leader();
    /// assert!(me ^ t.join().unwrap());
    /// ```
    pub fn wait(&self) -> BarrierWaitResult {
        self.wait_until(None)
            .expect("greenhub: barrier wait without deadline timed out")
    }

    /// [`wait`](Self::wait), but for at most `dur`; `None` if the round did
    /// not complete in time (this party's arrival is then withdrawn).
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = greenhub::sync::Barrier::new(2);
    /// assert!(b.wait_timeout(Duration::from_millis(2)).is_none());
    /// ```
    pub fn wait_timeout(&self, dur: Duration) -> Option<BarrierWaitResult> {
        self.wait_until(Instant::now().checked_add(dur))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Option<BarrierWaitResult> {
        let mut st = self.state.lock();
        st.arrived += 1;
        if st.arrived == self.n {
            st.arrived = 0;
            st.generation = st.generation.wrapping_add(1);
            let woken = st.waiters.drain(|_| {});
            drop(st);
            wake_all(woken);
            return Some(BarrierWaitResult(true));
        }
        let (mut st, waited) = wait(
            &self.state,
            st,
            |s| &mut s.waiters,
            (),
            deadline,
            WaitKind::Barrier,
        );
        let interrupt = match waited {
            // Released by the leader of our round.
            Waited::Done(()) => return Some(BarrierWaitResult(false)),
            Waited::TimedOut(()) => None,
            Waited::Interrupted((), i) => Some(i),
        };
        // Still linked when we gave up, so our round has not completed and
        // our arrival still counts in it: withdraw it.
        st.arrived -= 1;
        drop(st);
        match interrupt {
            Some(i) => i.raise(),
            None => None,
        }
    }
}

// No user code runs under the internal lock, so a panic never leaves the
// state half-updated: sharing a `&Barrier` across `catch_unwind` is fine.
impl std::panic::RefUnwindSafe for Barrier {}
impl std::panic::UnwindSafe for Barrier {}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.state.lock();
        f.debug_struct("Barrier")
            .field("n", &self.n)
            .field("arrived", &st.arrived)
            .field("generation", &st.generation)
            .finish()
    }
}
