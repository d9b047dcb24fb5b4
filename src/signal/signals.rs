//! [`Signals`]: waiting for signals from a greenlet or a plain thread.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::registry::{self, Queued, Sink};
use crate::channel::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};

/// A subscription to some signals, received one at a time (signal-hook's
/// `Signals`, usable from greenlets).
///
/// Every arrival of a subscribed signal is delivered as its number: a
/// [`recv`](Self::recv) parks only the calling greenlet (other greenlets of
/// its hub keep running), or blocks the calling thread off a runtime.
/// Arrivals of one signal that are not received yet coalesce into one
/// pending delivery, but none is lost: after each arrival, some `recv`
/// returns that signal. Waits honour [`kill`](crate::JoinHandle::kill) and
/// [`timeout`](crate::timeout).
///
/// While a `Signals` exists, its signals no longer have their previous
/// disposition (for `SIGINT`: the process no longer dies on Ctrl-C).
/// Dropping it (or [`close`](Self::close)) unsubscribes, and the last
/// subscriber of a signal gives it back its previous disposition.
///
/// `Signals` is `Send + Sync`: share it in an `Arc` to
/// [`close`](Self::close) it from elsewhere, which ends a `recv` blocked on
/// it with an error.
///
/// ```
/// use greenhub::signal::{SIGUSR1, Signals};
///
/// let signals = Signals::new(&[SIGUSR1]).unwrap();
/// // SAFETY: sends a signal to this process, which has subscribed to it.
/// unsafe { libc::kill(libc::getpid(), SIGUSR1) };
/// assert_eq!(signals.recv().unwrap(), SIGUSR1);
/// ```
#[must_use = "dropping a Signals unsubscribes it"]
pub struct Signals {
    id: u64,
    rx: Receiver<i32>,
    tx: Sender<i32>,
    queued: Arc<Queued>,
    /// The subscribed signals; `None` once closed.
    subscribed: Mutex<Option<Vec<i32>>>,
}

impl Signals {
    /// Subscribes to `signals` (duplicates are ignored; an empty list is
    /// fine, see [`add`](Self::add)). Works on and off a runtime.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a number that is not a signal or a signal that
    /// cannot be handled: `SIGKILL`, `SIGSTOP` and the fault signals
    /// `SIGSEGV`, `SIGBUS`, `SIGILL`, `SIGFPE` (the message names it); an OS
    /// error if the handler or the dispatcher thread cannot be set up. On
    /// error nothing stays subscribed.
    ///
    /// ```
    /// use greenhub::signal::{SIGHUP, SIGTERM, Signals};
    ///
    /// let signals = Signals::new(&[SIGTERM, SIGHUP]).unwrap();
    /// assert_eq!(signals.signals(), [SIGTERM, SIGHUP]);
    /// let refused = Signals::new(&[libc::SIGKILL]).unwrap_err();
    /// assert_eq!(refused.kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn new(signals: &[i32]) -> io::Result<Signals> {
        let (tx, rx) = channel::unbounded();
        let this = Signals {
            id: registry::next_id(),
            rx,
            tx,
            queued: Arc::new(Queued::new()),
            subscribed: Mutex::new(Some(Vec::new())),
        };
        for &sig in signals {
            this.add(sig)?; // on error, dropping `this` unsubscribes the rest
        }
        Ok(this)
    }

    /// Subscribes to one more signal; does nothing if already subscribed.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new), and an error of kind `NotConnected` once
    /// closed.
    ///
    /// ```
    /// use greenhub::signal::{SIGUSR2, Signals};
    ///
    /// let signals = Signals::new(&[]).unwrap();
    /// signals.add(SIGUSR2).unwrap();
    /// assert_eq!(signals.signals(), [SIGUSR2]);
    /// ```
    pub fn add(&self, signum: i32) -> io::Result<()> {
        let mut subscribed = self.subscribed.lock();
        let Some(list) = subscribed.as_mut() else {
            return Err(closed());
        };
        if list.contains(&signum) {
            return Ok(());
        }
        let sink = Sink::Stream {
            tx: self.tx.clone(),
            queued: self.queued.clone(),
        };
        registry::subscribe(signum, self.id, sink)?;
        list.push(signum);
        Ok(())
    }

    /// The subscribed signals, in the order they were added (empty once
    /// closed).
    ///
    /// ```
    /// let signals = greenhub::signal::Signals::new(&[libc::SIGWINCH]).unwrap();
    /// assert_eq!(signals.signals(), [libc::SIGWINCH]);
    /// ```
    pub fn signals(&self) -> Vec<i32> {
        self.subscribed.lock().clone().unwrap_or_default()
    }

    /// Waits for the next signal and returns its number. Parks only the
    /// calling greenlet; blocks a plain thread.
    ///
    /// # Errors
    ///
    /// `NotConnected` once [`close`](Self::close)d and every delivery made
    /// before the close has been received.
    ///
    /// ```
    /// use greenhub::signal::{SIGUSR1, Signals};
    ///
    /// greenhub::run(|| {
    ///     let signals = Signals::new(&[SIGUSR1]).unwrap();
    ///     let waiter = greenhub::spawn(move || signals.recv().unwrap());
    ///     greenhub::sleep(std::time::Duration::from_millis(10));
    ///     // SAFETY: sends a signal to this process, which has subscribed to it.
    ///     unsafe { libc::kill(libc::getpid(), SIGUSR1) };
    ///     assert_eq!(waiter.join().unwrap(), SIGUSR1);
    /// });
    /// ```
    pub fn recv(&self) -> io::Result<i32> {
        match self.rx.recv() {
            Ok(sig) => Ok(self.took(sig)),
            Err(_) => Err(closed()),
        }
    }

    /// Waits at most `dur` for the next signal; `Ok(None)` if none came.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let signals = greenhub::signal::Signals::new(&[libc::SIGWINCH]).unwrap();
    /// assert_eq!(signals.recv_timeout(Duration::from_millis(5)).unwrap(), None);
    /// ```
    pub fn recv_timeout(&self, dur: Duration) -> io::Result<Option<i32>> {
        match self.rx.recv_timeout(dur) {
            Ok(sig) => Ok(Some(self.took(sig))),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(closed()),
        }
    }

    /// The next signal if one has arrived, without waiting.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv).
    ///
    /// ```
    /// let signals = greenhub::signal::Signals::new(&[libc::SIGWINCH]).unwrap();
    /// assert_eq!(signals.try_recv().unwrap(), None);
    /// ```
    pub fn try_recv(&self) -> io::Result<Option<i32>> {
        match self.rx.try_recv() {
            Ok(sig) => Ok(Some(self.took(sig))),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(closed()),
        }
    }

    /// An iterator that [`recv`](Self::recv)s until the `Signals` is closed.
    ///
    /// ```
    /// use greenhub::signal::{SIGUSR2, Signals};
    ///
    /// let signals = Signals::new(&[SIGUSR2]).unwrap();
    /// // SAFETY: sends a signal to this process, which has subscribed to it.
    /// unsafe { libc::kill(libc::getpid(), SIGUSR2) };
    /// for sig in &signals {
    ///     assert_eq!(sig, SIGUSR2);
    ///     break;
    /// }
    /// ```
    pub fn iter(&self) -> Iter<'_> {
        Iter { signals: self }
    }

    /// Unsubscribes from every signal (the last subscriber of a signal
    /// restores its previous disposition) and ends waits: receivers first
    /// get the deliveries made before the close, then an error. Idempotent;
    /// dropping does the same.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use greenhub::signal::Signals;
    ///
    /// let signals = Arc::new(Signals::new(&[libc::SIGWINCH]).unwrap());
    /// let s = signals.clone();
    /// let waiter = std::thread::spawn(move || s.recv());
    /// std::thread::sleep(std::time::Duration::from_millis(10));
    /// signals.close();
    /// assert!(waiter.join().unwrap().is_err());
    /// assert!(signals.signals().is_empty());
    /// ```
    pub fn close(&self) {
        let list = self.subscribed.lock().take().unwrap_or_default();
        let removed: Vec<_> = list
            .iter()
            .filter_map(|&sig| registry::unsubscribe(sig, self.id))
            .collect();
        drop(removed);
        self.rx.close();
    }

    /// Whether [`close`](Self::close) has been called.
    ///
    /// ```
    /// let signals = greenhub::signal::Signals::new(&[]).unwrap();
    /// signals.close();
    /// assert!(signals.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.subscribed.lock().is_none()
    }

    fn took(&self, sig: i32) -> i32 {
        self.queued.unmark(sig);
        sig
    }
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "greenhub::signal: this Signals is closed",
    )
}

impl Drop for Signals {
    fn drop(&mut self) {
        self.close();
    }
}

impl fmt::Debug for Signals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signals")
            .field("signals", &self.signals())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// A blocking iterator over received signals; see [`Signals::iter`].
///
/// ```
/// let signals = greenhub::signal::Signals::new(&[]).unwrap();
/// signals.close();
/// assert_eq!(signals.iter().next(), None);
/// ```
#[derive(Debug)]
pub struct Iter<'a> {
    signals: &'a Signals,
}

impl Iterator for Iter<'_> {
    type Item = i32;
    fn next(&mut self) -> Option<i32> {
        self.signals.recv().ok()
    }
}

impl<'a> IntoIterator for &'a Signals {
    type Item = i32;
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}
