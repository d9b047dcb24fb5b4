//! `Queue`: gevent's `Queue`/`JoinableQueue`, `LifoQueue` and
//! `PriorityQueue` in one type.
//!
//! Items live in a store (FIFO, LIFO or a min-heap) behind one lock, with
//! three FIFO wait lists: getters (only while the store is empty), putters
//! (only while it is full) and joiners (waiting for `unfinished == 0`). As
//! in the channels, an item goes straight to a waiting getter, and a waiting
//! putter's item moves into the store as soon as a get makes room.
//!
//! # The priority heap
//!
//! The lock is a spin lock (`SpinLock`), and no user code may run under it:
//! a user `Ord` that blocks would leave the queue's other users spinning. So
//! a priority queue keeps its heap outside it, behind greenhub's parking
//! [`Mutex`](crate::sync::Mutex) (the *heap lock*), and every priority put
//! and get takes the heap lock first, then the spin lock for the wait lists
//! and counters, and compares items only after releasing the spin lock. The
//! heap lock thus orders all priority puts and gets (a comparison that
//! blocks makes the others park, never spin); the spin lock's state keeps a
//! count of the heap's items for `len`. A caller that must wait releases the
//! heap lock only once it holds the spin lock, so whoever comes next (and
//! takes the heap lock, then the spin lock) finds it in its wait list. So
//! `try_put`/`try_get` on a priority queue may wait (park) for another
//! caller's comparisons to finish. FIFO and LIFO queues have no heap lock
//! and run as before.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use crate::greenlet::runinfo::WaitKind;
use crate::loom::{SpinLock, SpinLockGuard};
use crate::sync::Mutex as ParkingMutex;
use crate::sync::waitlist::{Granted, WaitList, Waited, wait, wait_granted, wake_all};

/// The order items come out in.
enum Store<T> {
    Fifo(VecDeque<T>),
    Lifo(Vec<T>),
    /// The items live in the heap behind [`Queue::heap`]; this counts them.
    Priority(usize),
}

/// A priority queue's items: a min-heap under the item type's `Ord`, kept as
/// a function pointer so that `Queue<T>` itself needs no `T: Ord` bound.
struct Heap<T> {
    items: BinaryHeap<Prio<T>>,
    cmp: fn(&T, &T) -> Ordering,
}

impl<T> Heap<T> {
    fn push(&mut self, item: T) {
        let cmp = self.cmp;
        self.items.push(Prio { item, cmp });
    }

    fn pop(&mut self) -> Option<T> {
        self.items.pop().map(|p| p.item)
    }
}

struct Prio<T> {
    item: T,
    cmp: fn(&T, &T) -> Ordering,
}

impl<T> PartialEq for Prio<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<T> Eq for Prio<T> {}

impl<T> PartialOrd for Prio<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Prio<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: `BinaryHeap` is a max-heap, we hand out the minimum.
        (self.cmp)(&other.item, &self.item)
    }
}

impl<T> Store<T> {
    /// FIFO and LIFO only: priority items go through [`Queue::heap`].
    fn push(&mut self, item: T) {
        match self {
            Store::Fifo(q) => q.push_back(item),
            Store::Lifo(v) => v.push(item),
            Store::Priority(_) => unreachable!("greenhub: priority items live in the heap"),
        }
    }

    /// FIFO and LIFO only, as `push`.
    fn pop(&mut self) -> Option<T> {
        match self {
            Store::Fifo(q) => q.pop_front(),
            Store::Lifo(v) => v.pop(),
            Store::Priority(_) => unreachable!("greenhub: priority items live in the heap"),
        }
    }

    fn len(&self) -> usize {
        match self {
            Store::Fifo(q) => q.len(),
            Store::Lifo(v) => v.len(),
            Store::Priority(n) => *n,
        }
    }
}

struct State<T> {
    items: Store<T>,
    getters: WaitList<Option<T>>,
    putters: WaitList<Option<T>>,
    joiners: WaitList<()>,
    unfinished: usize,
}

/// A queue of work items between greenlets (and threads): gevent's
/// `JoinableQueue`, with FIFO, LIFO or priority order.
///
/// [`put`](Self::put) waits while a bounded queue is full, [`get`](Self::get)
/// while it is empty; waiters are served in arrival order. Every `put` counts
/// an unfinished task; a consumer calls [`task_done`](Self::task_done) when
/// it finished one, and [`join`](Self::join) waits until none is left.
/// Unlike a channel, a queue has no closed state (as gevent's).
///
/// ```
/// use std::sync::Arc;
///
/// greenhub::run(|| {
///     let q = Arc::new(greenhub::channel::Queue::new());
///     let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
///     for _ in 0..3 {
///         let (q, done) = (q.clone(), done.clone());
///         greenhub::spawn(move || loop {
///             let job: u32 = q.get();
///             done.fetch_add(job as usize, std::sync::atomic::Ordering::SeqCst);
///             q.task_done().unwrap();
///         });
///     }
///     for job in 1..=10 {
///         q.put(job);
///     }
///     q.join(); // every job processed
///     assert_eq!(done.load(std::sync::atomic::Ordering::SeqCst), 55);
/// });
/// ```
pub struct Queue<T> {
    state: SpinLock<State<T>>,
    cap: Option<usize>,
    /// A priority queue's heap, behind the parking heap lock (see the
    /// module docs); `None` for FIFO and LIFO queues.
    heap: Option<Box<ParkingMutex<Heap<T>>>>,
}

/// A put on a full queue that could not wait (or timed out); the item comes
/// back.
///
/// ```
/// let q = greenhub::channel::Queue::bounded(1);
/// q.put(1);
/// assert_eq!(q.try_put(2).unwrap_err().into_inner(), 2);
/// ```
#[derive(PartialEq, Eq)]
pub struct QueueFull<T>(pub T);

impl<T> QueueFull<T> {
    /// The item that was not put.
    ///
    /// ```
    /// let q = greenhub::channel::Queue::bounded(0);
    /// assert_eq!(q.try_put("x").unwrap_err().into_inner(), "x");
    /// ```
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for QueueFull<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("QueueFull(..)")
    }
}

impl<T> fmt::Display for QueueFull<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("queue is full")
    }
}

impl<T> std::error::Error for QueueFull<T> {}

/// `task_done` called more times than items were put.
///
/// ```
/// let q = greenhub::channel::Queue::<u8>::new();
/// assert!(q.task_done().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDoneError;

impl fmt::Display for TaskDoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task_done() called more times than there were items")
    }
}

impl std::error::Error for TaskDoneError {}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue::new()
    }
}

impl<T> Queue<T> {
    fn with_store(store: Store<T>, cap: Option<usize>) -> Queue<T> {
        Queue {
            state: SpinLock::new(State {
                items: store,
                getters: WaitList::new(),
                putters: WaitList::new(),
                joiners: WaitList::new(),
                unfinished: 0,
            }),
            cap,
            heap: None,
        }
    }

    /// An unbounded FIFO queue.
    ///
    /// ```
    /// let q = greenhub::channel::Queue::new();
    /// q.put(1);
    /// q.put(2);
    /// assert_eq!(q.get(), 1);
    /// ```
    pub fn new() -> Queue<T> {
        Queue::with_store(Store::Fifo(VecDeque::new()), None)
    }

    /// A FIFO queue holding at most `maxsize` items; `bounded(0)` makes
    /// every put wait for a getter.
    ///
    /// ```
    /// let q = greenhub::channel::Queue::bounded(2);
    /// q.put('a');
    /// q.put('b');
    /// assert!(q.is_full());
    /// ```
    pub fn bounded(maxsize: usize) -> Queue<T> {
        Queue::with_store(Store::Fifo(VecDeque::new()), Some(maxsize))
    }

    /// A LIFO queue (a stack; gevent's `LifoQueue`), optionally bounded.
    ///
    /// ```
    /// let q = greenhub::channel::Queue::lifo(None);
    /// q.put(1);
    /// q.put(2);
    /// assert_eq!(q.get(), 2);
    /// ```
    pub fn lifo(maxsize: Option<usize>) -> Queue<T> {
        Queue::with_store(Store::Lifo(Vec::new()), maxsize)
    }

    /// A priority queue that hands out the *smallest* item first (as
    /// gevent's and Python's `PriorityQueue`; wrap items in
    /// `std::cmp::Reverse` for largest first), optionally bounded.
    ///
    /// ```
    /// let q = greenhub::channel::Queue::priority(None);
    /// q.put((3, "low"));
    /// q.put((1, "urgent"));
    /// assert_eq!(q.get(), (1, "urgent"));
    /// ```
    pub fn priority(maxsize: Option<usize>) -> Queue<T>
    where
        T: Ord,
    {
        let heap = Heap {
            items: BinaryHeap::new(),
            cmp: T::cmp,
        };
        Queue {
            heap: Some(Box::new(ParkingMutex::new(heap))),
            ..Queue::with_store(Store::Priority(0), maxsize)
        }
    }

    /// Puts an item, waiting while the queue is full.
    ///
    /// ```
    /// let q = greenhub::channel::Queue::new();
    /// q.put("job");
    /// assert_eq!(q.len(), 1);
    /// ```
    pub fn put(&self, item: T) {
        if self.put_until(item, None).is_err() {
            unreachable!("greenhub: put without deadline timed out");
        }
    }

    /// Puts an item if there is room now.
    ///
    /// ```
    /// let q = greenhub::channel::Queue::bounded(1);
    /// assert!(q.try_put(1).is_ok());
    /// assert!(q.try_put(2).is_err());
    /// ```
    pub fn try_put(&self, item: T) -> Result<(), QueueFull<T>> {
        self.put_until(item, Some(Instant::now()))
    }

    /// Puts an item, waiting at most `dur` for room.
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = greenhub::channel::Queue::bounded(0);
    /// assert!(q.put_timeout(1, Duration::from_millis(2)).is_err());
    /// ```
    pub fn put_timeout(&self, item: T, dur: Duration) -> Result<(), QueueFull<T>> {
        self.put_until(item, Instant::now().checked_add(dur))
    }

    fn put_until(&self, item: T, deadline: Option<Instant>) -> Result<(), QueueFull<T>> {
        if let Some(heap) = &self.heap {
            return self.put_priority(heap, item, deadline);
        }
        let mut st = self.state.lock();
        if let Some(mut p) = st.getters.pop() {
            *p.data() = Some(item);
            let waiter = p.grant();
            st.unfinished += 1;
            drop(st);
            waiter.wake();
            return Ok(());
        }
        if self.cap.is_none_or(|c| st.items.len() < c) {
            st.items.push(item);
            st.unfinished += 1;
            return Ok(());
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(QueueFull(item));
        }
        self.wait_as_putter(st, item, deadline)
    }

    /// Takes an item, waiting while the queue is empty.
    ///
    /// ```
    /// let q = greenhub::channel::Queue::new();
    /// q.put(7);
    /// assert_eq!(q.get(), 7);
    /// ```
    pub fn get(&self) -> T {
        self.get_until(None)
            .expect("greenhub: get without deadline timed out")
    }

    /// Takes an item if one is there now.
    ///
    /// ```
    /// let q = greenhub::channel::Queue::<u8>::new();
    /// assert_eq!(q.try_get(), None);
    /// ```
    pub fn try_get(&self) -> Option<T> {
        self.get_until(Some(Instant::now()))
    }

    /// Takes an item, waiting at most `dur`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = greenhub::channel::Queue::<u8>::new();
    /// assert_eq!(q.get_timeout(Duration::from_millis(2)), None);
    /// ```
    pub fn get_timeout(&self, dur: Duration) -> Option<T> {
        self.get_until(Instant::now().checked_add(dur))
    }

    fn get_until(&self, deadline: Option<Instant>) -> Option<T> {
        if let Some(heap) = &self.heap {
            return self.get_priority(heap, deadline);
        }
        let mut st = self.state.lock();
        if let Some(item) = st.items.pop() {
            // Room freed: move the first waiting putter's item in.
            if let Some(mut p) = st.putters.pop() {
                let moved = p.data().take().expect("greenhub: putter without item");
                let waiter = p.grant();
                st.items.push(moved);
                st.unfinished += 1;
                drop(st);
                waiter.wake();
            }
            return Some(item);
        }
        if let Some(mut p) = st.putters.pop() {
            // A zero-capacity queue: take the putter's item directly.
            let item = p.data().take().expect("greenhub: putter without item");
            let waiter = p.grant();
            st.unfinished += 1;
            drop(st);
            waiter.wake();
            return Some(item);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        self.wait_as_getter(st, deadline)
    }

    /// `put_until` for a priority queue: the heap lock, then the spin lock;
    /// comparisons only after the spin lock is released (module docs).
    fn put_priority(
        &self,
        heap: &ParkingMutex<Heap<T>>,
        item: T,
        deadline: Option<Instant>,
    ) -> Result<(), QueueFull<T>> {
        let mut h = heap.lock();
        let mut st = self.state.lock();
        if let Some(mut p) = st.getters.pop() {
            // Only while the heap is empty: no comparison needed.
            *p.data() = Some(item);
            let waiter = p.grant();
            st.unfinished += 1;
            drop(st);
            drop(h);
            waiter.wake();
            return Ok(());
        }
        let len = h.items.len();
        if self.cap.is_none_or(|c| len < c) {
            st.items = Store::Priority(len + 1);
            st.unfinished += 1;
            drop(st);
            h.push(item);
            return Ok(());
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            drop(st);
            drop(h);
            return Err(QueueFull(item));
        }
        // Let the next put or get in only once we hold the spin lock: a get
        // that makes room then finds us among the putters.
        drop(h);
        self.wait_as_putter(st, item, deadline)
    }

    /// Waits among the putters (the lock `st` held) until a getter moves
    /// `item` in, `deadline` passes (the item comes back) or an interrupt.
    /// The lock is released before the item is dropped or returned.
    fn wait_as_putter(
        &self,
        st: SpinLockGuard<'_, State<T>>,
        item: T,
        deadline: Option<Instant>,
    ) -> Result<(), QueueFull<T>> {
        match wait_granted(
            &self.state,
            st,
            |s| &mut s.putters,
            Some(item),
            deadline,
            WaitKind::QueuePut,
        ) {
            // The getter moved our item in and counted it.
            Granted::Done(_) => Ok(()),
            Granted::TimedOut(st, item) => {
                drop(st);
                Err(QueueFull(item.expect("greenhub: item missing")))
            }
            Granted::Interrupted(st, item, interrupt) => {
                drop(st);
                drop(item);
                interrupt.raise()
            }
        }
    }

    /// Waits among the getters (the lock `st` held) until a putter hands an
    /// item over, `deadline` passes or an interrupt.
    fn wait_as_getter(
        &self,
        st: SpinLockGuard<'_, State<T>>,
        deadline: Option<Instant>,
    ) -> Option<T> {
        match wait_granted(
            &self.state,
            st,
            |s| &mut s.getters,
            None,
            deadline,
            WaitKind::QueueGet,
        ) {
            Granted::Done(item) => Some(item.expect("greenhub: getter woken without item")),
            Granted::TimedOut(..) => None,
            Granted::Interrupted(st, _, interrupt) => {
                drop(st);
                interrupt.raise()
            }
        }
    }

    /// `get_until` for a priority queue (see `put_priority`).
    fn get_priority(&self, heap: &ParkingMutex<Heap<T>>, deadline: Option<Instant>) -> Option<T> {
        let mut h = heap.lock();
        let mut st = self.state.lock();
        let len = h.items.len();
        if len > 0 {
            // Room freed: the first waiting putter's item moves in, after
            // ours is out (so we get the smallest of those already in).
            let moved = st.putters.pop().map(|mut p| {
                let item = p.data().take().expect("greenhub: putter without item");
                (item, p.grant())
            });
            let refill = match moved {
                Some((item, waiter)) => {
                    st.unfinished += 1;
                    st.items = Store::Priority(len);
                    drop(st);
                    // Its put is complete: wake it before comparing, so a
                    // comparison that panics cannot leave it parked.
                    waiter.wake();
                    Some(item)
                }
                None => {
                    st.items = Store::Priority(len - 1);
                    drop(st);
                    None
                }
            };
            let item = h.pop().expect("greenhub: counted item missing");
            if let Some(moved) = refill {
                h.push(moved);
            }
            return Some(item);
        }
        if let Some(mut p) = st.putters.pop() {
            // A zero-capacity queue: take the putter's item directly.
            let item = p.data().take().expect("greenhub: putter without item");
            let waiter = p.grant();
            st.unfinished += 1;
            drop(st);
            drop(h);
            waiter.wake();
            return Some(item);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        // As in `put_priority`: a put that follows finds us among the getters.
        drop(h);
        self.wait_as_getter(st, deadline)
    }

    /// Marks one item taken with `get` as processed. When every item put so
    /// far is processed, [`join`](Self::join) returns.
    ///
    /// ```
    /// let q = greenhub::channel::Queue::new();
    /// q.put(1);
    /// q.get();
    /// q.task_done().unwrap();
    /// q.join(); // returns at once
    /// ```
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        let mut st = self.state.lock();
        if st.unfinished == 0 {
            return Err(TaskDoneError);
        }
        st.unfinished -= 1;
        if st.unfinished == 0 {
            let woken = st.joiners.drain(|_| {});
            drop(st);
            wake_all(woken);
        }
        Ok(())
    }

    /// Waits until every item put has been marked done.
    ///
    /// ```
    /// let q = greenhub::channel::Queue::<u8>::new();
    /// q.join(); // nothing was put
    /// ```
    pub fn join(&self) {
        self.join_until(None);
    }

    /// Waits at most `dur` for every item to be marked done; returns whether
    /// they were.
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = greenhub::channel::Queue::new();
    /// q.put(1);
    /// assert!(!q.join_timeout(Duration::from_millis(2)));
    /// ```
    pub fn join_timeout(&self, dur: Duration) -> bool {
        self.join_until(Instant::now().checked_add(dur))
    }

    fn join_until(&self, deadline: Option<Instant>) -> bool {
        let st = self.state.lock();
        if st.unfinished == 0 {
            return true;
        }
        let (st, waited) = wait(
            &self.state,
            st,
            |s| &mut s.joiners,
            (),
            deadline,
            WaitKind::QueueJoin,
        );
        match waited {
            Waited::Done(()) => true,
            Waited::TimedOut(()) => st.unfinished == 0,
            Waited::Interrupted((), interrupt) => {
                drop(st);
                interrupt.raise()
            }
        }
    }

    /// The number of items in the queue.
    ///
    /// ```
    /// let q = greenhub::channel::Queue::new();
    /// q.put(());
    /// assert_eq!(q.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.state.lock().items.len()
    }

    /// Whether the queue holds no item.
    ///
    /// ```
    /// assert!(greenhub::channel::Queue::<u8>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a put would wait now.
    ///
    /// ```
    /// assert!(greenhub::channel::Queue::<u8>::bounded(0).is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        self.cap.is_some_and(|c| self.len() >= c)
    }

    /// Items put but not yet marked done.
    ///
    /// ```
    /// let q = greenhub::channel::Queue::new();
    /// q.put(1);
    /// assert_eq!(q.unfinished_tasks(), 1);
    /// ```
    pub fn unfinished_tasks(&self) -> usize {
        self.state.lock().unfinished
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.state.lock();
        f.debug_struct("Queue")
            .field("len", &st.items.len())
            .field("maxsize", &self.cap)
            .field("unfinished", &st.unfinished)
            .finish()
    }
}
