//! Channels: Go's channels with `std::sync::mpsc`'s surface, for greenlets
//! and threads.
//!
//! [`bounded`], [`unbounded`] and [`rendezvous`] return a ([`Sender`],
//! [`Receiver`]) pair; both halves clone (multi-producer, multi-consumer).
//! A blocked `send` or `recv` parks only the calling greenlet (or blocks a
//! plain thread); waiters are served in FIFO order and a value goes straight
//! to a waiting receiver. Every blocking call has `try_` and `_timeout`
//! forms, and [`select!`](crate::select) waits on several operations at
//! once, like Go's `select`.
//!
//! Closing: when every `Sender` is dropped or [`Sender::close`] (or
//! [`Receiver::close`]) is called, receivers first drain what is buffered,
//! then get [`RecvError`]; sends get their value back in a [`SendError`].
//! When every `Receiver` is dropped, sends fail the same way and buffered
//! values are dropped.
//!
//! [`Queue`] is gevent's `JoinableQueue` (with `task_done`/`join`), in FIFO,
//! LIFO and priority order.
//!
//! ```
//! greenhub::run(|| {
//!     let (tx, rx) = greenhub::channel::bounded(2);
//!     let producer = greenhub::spawn(move || {
//!         for i in 0..5 {
//!             tx.send(i).unwrap();
//!         }
//!     }); // `tx` dropped here: the channel closes once drained
//!     let got: Vec<i32> = rx.iter().collect();
//!     assert_eq!(got, [0, 1, 2, 3, 4]);
//!     producer.join().unwrap();
//! });
//! ```

mod chan;
mod error;
mod queue;
mod select;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chan::{Chan, RecvReq, SendReq};
pub use error::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
pub use queue::{Queue, QueueFull, TaskDoneError};
#[doc(hidden)]
pub use select::{__select, RecvCase, SelectCase, SendCase};

use crate::greenlet::runinfo::WaitKind;
use crate::sync::waitlist::{Granted, wait_granted, wake_all};

/// A channel that holds up to `cap` values; a send waits while it is full.
/// `bounded(0)` is a [`rendezvous`] channel.
///
/// ```
/// let (tx, rx) = greenhub::channel::bounded(1);
/// tx.send("a").unwrap();
/// assert!(tx.try_send("b").is_err()); // full
/// assert_eq!(rx.recv().unwrap(), "a");
/// ```
pub fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    pair(Some(cap))
}

/// A channel without a capacity limit: sends never wait.
///
/// ```
/// let (tx, rx) = greenhub::channel::unbounded();
/// for i in 0..1000 {
///     tx.send(i).unwrap();
/// }
/// assert_eq!(rx.len(), 1000);
/// ```
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    pair(None)
}

/// A channel without a buffer: each send waits until a receiver takes its
/// value (Go's unbuffered channel, gevent's `Channel`).
///
/// ```
/// greenhub::run(|| {
///     let (tx, rx) = greenhub::channel::rendezvous();
///     let h = greenhub::spawn(move || tx.send(1).unwrap()); // waits for recv
///     assert_eq!(rx.recv().unwrap(), 1);
///     h.join().unwrap();
/// });
/// ```
///
/// A send to a receiver that already waits, on the same hub, switches to
/// it at once: the receiver runs next and the sender continues after it,
/// as in gevent (a plain wake-up across hubs or threads, and inside
/// [`no_switch`](crate::no_switch)).
///
/// ```
/// use std::sync::{Arc, Mutex};
///
/// let rt = greenhub::Builder::new().single_threaded().build().unwrap();
/// rt.block_on(|| {
///     let (tx, rx) = greenhub::channel::rendezvous();
///     let log = Arc::new(Mutex::new(Vec::new()));
///     let log2 = log.clone();
///     let receiver = greenhub::spawn(move || {
///         for v in rx.iter() {
///             log2.lock().unwrap().push(v);
///         }
///     });
///     greenhub::yield_now(); // the receiver waits in `recv`
///     for v in ["hello", "world"] {
///         tx.send(v).unwrap();
///         log.lock().unwrap().push("sent");
///     }
///     drop(tx);
///     receiver.join().unwrap();
///     assert_eq!(*log.lock().unwrap(), ["hello", "sent", "world", "sent"]);
/// });
/// ```
pub fn rendezvous<T>() -> (Sender<T>, Receiver<T>) {
    pair(Some(0))
}

fn pair<T>(cap: Option<usize>) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan::new(cap));
    (Sender { chan: chan.clone() }, Receiver { chan })
}

fn deadline_after(dur: Duration) -> Option<Instant> {
    Instant::now().checked_add(dur)
}

/// The sending half of a channel. Clone it for more producers.
///
/// ```
/// let (tx, rx) = greenhub::channel::unbounded();
/// let tx2 = tx.clone();
/// tx.send(1).unwrap();
/// tx2.send(2).unwrap();
/// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2]);
/// ```
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

/// The receiving half of a channel. Clone it for more consumers (each value
/// goes to one of them).
///
/// ```
/// let (tx, rx) = greenhub::channel::unbounded();
/// let rx2 = rx.clone();
/// tx.send(1).unwrap();
/// assert_eq!(rx2.recv().unwrap(), 1);
/// assert!(rx.try_recv().is_err());
/// ```
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Sender<T> {
    /// Sends a value, waiting while the channel is full (for a rendezvous
    /// channel: until a receiver takes it). Fails, giving the value back, if
    /// the channel is closed.
    ///
    /// ```
    /// let (tx, rx) = greenhub::channel::unbounded();
    /// tx.send(3).unwrap();
    /// drop(rx);
    /// assert!(tx.send(4).is_err());
    /// ```
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.send_until(value, None)
            .map_err(|e| SendError(e.into_inner()))
    }

    /// Sends a value if that needs no waiting.
    ///
    /// ```
    /// let (tx, _rx) = greenhub::channel::bounded(1);
    /// assert!(tx.try_send(1).is_ok());
    /// assert!(tx.try_send(2).is_err());
    /// ```
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let mut st = self.chan.state.lock();
        let woken = st.try_send(self.chan.cap, value)?;
        drop(st);
        if let Some(w) = woken {
            w.wake();
        }
        Ok(())
    }

    /// Sends a value, waiting at most `dur` for room.
    ///
    /// ```
    /// use std::time::Duration;
    /// let (tx, _rx) = greenhub::channel::bounded(1);
    /// tx.send(1).unwrap();
    /// assert!(tx.send_timeout(2, Duration::from_millis(5)).is_err());
    /// ```
    pub fn send_timeout(&self, value: T, dur: Duration) -> Result<(), SendTimeoutError<T>> {
        self.send_until(value, deadline_after(dur))
    }

    /// Sends a value, waiting until `deadline` at the latest (`None`: no
    /// deadline).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let (tx, rx) = greenhub::channel::bounded(1);
    /// let soon = Instant::now() + Duration::from_millis(5);
    /// assert!(tx.send_deadline(1, Some(soon)).is_ok());
    /// assert!(tx.send_deadline(2, Some(soon)).is_err());
    /// # drop(rx);
    /// ```
    pub fn send_deadline(
        &self,
        value: T,
        deadline: Option<Instant>,
    ) -> Result<(), SendTimeoutError<T>> {
        self.send_until(value, deadline)
    }

    fn send_until(&self, value: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        let mut st = self.chan.state.lock();
        let value = match st.try_send(self.chan.cap, value) {
            Ok(woken) => {
                drop(st);
                match woken {
                    // Rendezvous: the receiver runs now, the sender after it
                    // (gevent's `Channel`).
                    Some(w) if self.chan.cap == Some(0) => crate::greenlet::wake_and_yield_to(w),
                    Some(w) => w.wake(),
                    None => {}
                }
                return Ok(());
            }
            Err(TrySendError::Disconnected(v)) => return Err(SendTimeoutError::Disconnected(v)),
            Err(TrySendError::Full(v)) => v,
        };
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(SendTimeoutError::Timeout(value));
        }
        let req = SendReq::plain(value);
        match wait_granted(
            &self.chan.state,
            st,
            |s| &mut s.sends,
            req,
            deadline,
            WaitKind::ChannelSend,
        ) {
            Granted::Done(req) if req.sent == Some(true) => Ok(()),
            Granted::Done(mut req) => Err(SendTimeoutError::Disconnected(take_value(&mut req))),
            Granted::TimedOut(st, mut req) => {
                drop(st);
                Err(SendTimeoutError::Timeout(take_value(&mut req)))
            }
            Granted::Interrupted(st, req, interrupt) => {
                drop(st);
                drop(req);
                interrupt.raise()
            }
        }
    }

    /// Closes the channel for everyone: later sends fail, waiting senders get
    /// their values back, receivers drain the buffer and then see
    /// [`RecvError`] (Go's `close(ch)`).
    ///
    /// ```
    /// let (tx, rx) = greenhub::channel::unbounded();
    /// tx.send(1).unwrap();
    /// tx.close();
    /// assert!(tx.send(2).is_err());
    /// assert_eq!(rx.recv(), Ok(1));
    /// assert!(rx.recv().is_err());
    /// ```
    pub fn close(&self) {
        close(&self.chan);
    }

    /// Whether sends can no longer succeed (closed, or no receiver left).
    ///
    /// ```
    /// let (tx, rx) = greenhub::channel::unbounded::<u8>();
    /// assert!(!tx.is_closed());
    /// drop(rx);
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.chan.state.lock().send_closed()
    }

    /// The number of buffered values.
    ///
    /// ```
    /// let (tx, _rx) = greenhub::channel::unbounded();
    /// tx.send(()).unwrap();
    /// assert_eq!(tx.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.chan.state.lock().buf.len()
    }

    /// Whether no value is buffered.
    ///
    /// ```
    /// let (tx, _rx) = greenhub::channel::unbounded::<u8>();
    /// assert!(tx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The capacity: `None` for an unbounded channel.
    ///
    /// ```
    /// let (tx, _rx) = greenhub::channel::bounded::<u8>(8);
    /// assert_eq!(tx.capacity(), Some(8));
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        self.chan.cap
    }
}

fn take_value<T>(req: &mut SendReq<T>) -> T {
    req.value.take().expect("greenhub: unsent value missing")
}

fn close<T>(chan: &Chan<T>) {
    let mut st = chan.state.lock();
    st.closed = true;
    let mut woken = st.fail_receivers();
    woken.extend(st.fail_senders());
    drop(st);
    wake_all(woken);
}

impl<T> Receiver<T> {
    /// Receives a value, waiting while the channel is empty. Fails once the
    /// channel is closed and drained.
    ///
    /// ```
    /// let (tx, rx) = greenhub::channel::unbounded();
    /// tx.send(1).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.recv(), Ok(1));
    /// assert!(rx.recv().is_err());
    /// ```
    pub fn recv(&self) -> Result<T, RecvError> {
        self.recv_until(None).map_err(|_| RecvError)
    }

    /// Receives a value if one is there now.
    ///
    /// ```
    /// let (tx, rx) = greenhub::channel::unbounded();
    /// assert!(rx.try_recv().is_err());
    /// tx.send(2).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(2));
    /// ```
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut st = self.chan.state.lock();
        let (v, woken) = st.try_recv()?;
        drop(st);
        if let Some(w) = woken {
            w.wake();
        }
        Ok(v)
    }

    /// Receives a value, waiting at most `dur`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let (_tx, rx) = greenhub::channel::unbounded::<u8>();
    /// assert!(rx.recv_timeout(Duration::from_millis(2)).is_err());
    /// ```
    pub fn recv_timeout(&self, dur: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_until(deadline_after(dur))
    }

    /// Receives a value, waiting until `deadline` at the latest (`None`: no
    /// deadline).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let (_tx, rx) = greenhub::channel::unbounded::<u8>();
    /// let soon = Instant::now() + Duration::from_millis(2);
    /// assert!(rx.recv_deadline(Some(soon)).is_err());
    /// ```
    pub fn recv_deadline(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        self.recv_until(deadline)
    }

    fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let mut st = self.chan.state.lock();
        match st.try_recv() {
            Ok((v, woken)) => {
                drop(st);
                if let Some(w) = woken {
                    w.wake();
                }
                return Ok(v);
            }
            Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
            Err(TryRecvError::Empty) => {}
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(RecvTimeoutError::Timeout);
        }
        let req = RecvReq::plain();
        match wait_granted(
            &self.chan.state,
            st,
            |s| &mut s.recvs,
            req,
            deadline,
            WaitKind::ChannelRecv,
        ) {
            Granted::Done(req) => match req.slot {
                Some(Ok(v)) => Ok(v),
                _ => Err(RecvTimeoutError::Disconnected),
            },
            Granted::TimedOut(..) => Err(RecvTimeoutError::Timeout),
            Granted::Interrupted(st, _, interrupt) => {
                drop(st);
                interrupt.raise()
            }
        }
    }

    /// An iterator that receives until the channel is closed and drained.
    ///
    /// ```
    /// let (tx, rx) = greenhub::channel::unbounded();
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.iter().sum::<i32>(), 3);
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// An iterator over the values available now, without waiting.
    ///
    /// ```
    /// let (tx, rx) = greenhub::channel::unbounded();
    /// tx.send(1).unwrap();
    /// assert_eq!(rx.try_iter().count(), 1);
    /// ```
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }

    /// Closes the channel (see [`Sender::close`]); buffered values can still
    /// be received.
    ///
    /// ```
    /// let (tx, rx) = greenhub::channel::unbounded();
    /// tx.send(1).unwrap();
    /// rx.close();
    /// assert!(tx.send(2).is_err());
    /// assert_eq!(rx.recv(), Ok(1));
    /// ```
    pub fn close(&self) {
        close(&self.chan);
    }

    /// Whether the channel is closed (or every sender is gone); values may
    /// still be buffered.
    ///
    /// ```
    /// let (tx, rx) = greenhub::channel::unbounded::<u8>();
    /// drop(tx);
    /// assert!(rx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.chan.state.lock().recv_closed()
    }

    /// The number of buffered values.
    ///
    /// ```
    /// let (tx, rx) = greenhub::channel::unbounded();
    /// tx.send(()).unwrap();
    /// assert_eq!(rx.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.chan.state.lock().buf.len()
    }

    /// Whether no value is buffered.
    ///
    /// ```
    /// let (_tx, rx) = greenhub::channel::unbounded::<u8>();
    /// assert!(rx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.state.lock().senders += 1;
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.chan.state.lock().receivers += 1;
        Receiver {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut st = self.chan.state.lock();
        st.senders -= 1;
        if st.senders == 0 {
            let woken = st.fail_receivers();
            drop(st);
            wake_all(woken);
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut st = self.chan.state.lock();
        st.receivers -= 1;
        if st.receivers == 0 {
            let woken = st.fail_senders();
            let buffered = std::mem::take(&mut st.buf);
            drop(st);
            wake_all(woken);
            drop(buffered);
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}

/// A blocking iterator over received values; see [`Receiver::iter`].
///
/// ```
/// let (tx, rx) = greenhub::channel::unbounded();
/// tx.send(5).unwrap();
/// drop(tx);
/// let mut it = rx.iter();
/// assert_eq!(it.next(), Some(5));
/// assert_eq!(it.next(), None);
/// ```
#[derive(Debug)]
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

/// A non-blocking iterator over buffered values; see [`Receiver::try_iter`].
///
/// ```
/// let (tx, rx) = greenhub::channel::unbounded::<u8>();
/// assert_eq!(rx.try_iter().next(), None);
/// # drop(tx);
/// ```
#[derive(Debug)]
pub struct TryIter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

/// An owning blocking iterator; see `Receiver`'s `IntoIterator`.
///
/// ```
/// let (tx, rx) = greenhub::channel::unbounded();
/// tx.send('a').unwrap();
/// drop(tx);
/// assert_eq!(rx.into_iter().collect::<String>(), "a");
/// ```
#[derive(Debug)]
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}
