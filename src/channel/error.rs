//! The errors of channel operations, shaped like `std::sync::mpsc`'s.

use std::error::Error;
use std::fmt;

/// A send on a closed channel (every receiver dropped, or
/// [`close`](super::Sender::close) called). The value comes back.
///
/// ```
/// let (tx, rx) = greenhub::channel::unbounded();
/// drop(rx);
/// assert_eq!(tx.send(5), Err(greenhub::channel::SendError(5)));
/// ```
#[derive(PartialEq, Eq, Clone, Copy)]
pub struct SendError<T>(pub T);

/// Why a [`try_send`](super::Sender::try_send) failed. The value comes back.
///
/// ```
/// use greenhub::channel::TrySendError;
/// let (tx, _rx) = greenhub::channel::bounded(1);
/// tx.try_send(1).unwrap();
/// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
/// ```
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum TrySendError<T> {
    /// The channel is full (or, for a rendezvous channel, no receiver waits).
    Full(T),
    /// The channel is closed.
    Disconnected(T),
}

/// Why a [`send_timeout`](super::Sender::send_timeout) failed. The value
/// comes back.
///
/// ```
/// use std::time::Duration;
/// use greenhub::channel::SendTimeoutError;
/// let (tx, _rx) = greenhub::channel::bounded(0);
/// let r = tx.send_timeout(1, Duration::from_millis(1));
/// assert_eq!(r, Err(SendTimeoutError::Timeout(1)));
/// ```
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum SendTimeoutError<T> {
    /// No room (or no receiver) before the deadline.
    Timeout(T),
    /// The channel is closed.
    Disconnected(T),
}

/// A receive on a channel that is closed and drained.
///
/// ```
/// let (tx, rx) = greenhub::channel::unbounded::<u8>();
/// drop(tx);
/// assert_eq!(rx.recv(), Err(greenhub::channel::RecvError));
/// ```
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub struct RecvError;

/// Why a [`try_recv`](super::Receiver::try_recv) failed.
///
/// ```
/// use greenhub::channel::TryRecvError;
/// let (_tx, rx) = greenhub::channel::unbounded::<u8>();
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
/// ```
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub enum TryRecvError {
    /// Nothing to receive now.
    Empty,
    /// The channel is closed and drained.
    Disconnected,
}

/// Why a [`recv_timeout`](super::Receiver::recv_timeout) failed.
///
/// ```
/// use std::time::Duration;
/// use greenhub::channel::RecvTimeoutError;
/// let (_tx, rx) = greenhub::channel::unbounded::<u8>();
/// assert_eq!(rx.recv_timeout(Duration::from_millis(1)), Err(RecvTimeoutError::Timeout));
/// ```
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub enum RecvTimeoutError {
    /// Nothing arrived before the deadline.
    Timeout,
    /// The channel is closed and drained.
    Disconnected,
}

impl<T> SendError<T> {
    /// The value that could not be sent.
    ///
    /// ```
    /// let (tx, rx) = greenhub::channel::unbounded();
    /// drop(rx);
    /// assert_eq!(tx.send("x").unwrap_err().into_inner(), "x");
    /// ```
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> TrySendError<T> {
    /// The value that could not be sent.
    ///
    /// ```
    /// let (tx, _rx) = greenhub::channel::bounded(0);
    /// assert_eq!(tx.try_send(3).unwrap_err().into_inner(), 3);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(v) | TrySendError::Disconnected(v) => v,
        }
    }
}

impl<T> SendTimeoutError<T> {
    /// The value that could not be sent.
    ///
    /// ```
    /// use std::time::Duration;
    /// let (tx, _rx) = greenhub::channel::bounded(0);
    /// let e = tx.send_timeout(9, Duration::ZERO).unwrap_err();
    /// assert_eq!(e.into_inner(), 9);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            SendTimeoutError::Timeout(v) | SendTimeoutError::Disconnected(v) => v,
        }
    }
}

macro_rules! show {
    ($ty:ident<T>, $($pat:pat => $msg:expr),+) => {
        impl<T> fmt::Debug for $ty<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self { $($pat => f.write_str(concat!(stringify!($ty), "(", $msg, ")"))),+ }
            }
        }
        impl<T> fmt::Display for $ty<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self { $($pat => f.write_str($msg)),+ }
            }
        }
        impl<T> Error for $ty<T> {}
    };
    ($ty:ident, $($pat:pat => $msg:expr),+) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self { $($pat => f.write_str($msg)),+ }
            }
        }
        impl Error for $ty {}
    };
}

show!(SendError<T>, SendError(_) => "sending on a closed channel");
show!(TrySendError<T>,
    TrySendError::Full(_) => "sending on a full channel",
    TrySendError::Disconnected(_) => "sending on a closed channel");
show!(SendTimeoutError<T>,
    SendTimeoutError::Timeout(_) => "timed out waiting on send operation",
    SendTimeoutError::Disconnected(_) => "sending on a closed channel");
show!(RecvError, RecvError => "receiving on a closed channel");
show!(TryRecvError,
    TryRecvError::Empty => "receiving on an empty channel",
    TryRecvError::Disconnected => "receiving on a closed channel");
show!(RecvTimeoutError,
    RecvTimeoutError::Timeout => "timed out waiting on receive operation",
    RecvTimeoutError::Disconnected => "receiving on a closed channel");

impl<T> From<SendError<T>> for TrySendError<T> {
    fn from(e: SendError<T>) -> Self {
        TrySendError::Disconnected(e.0)
    }
}

impl<T> From<SendError<T>> for SendTimeoutError<T> {
    fn from(e: SendError<T>) -> Self {
        SendTimeoutError::Disconnected(e.0)
    }
}

impl From<RecvError> for TryRecvError {
    fn from(_: RecvError) -> Self {
        TryRecvError::Disconnected
    }
}

impl From<RecvError> for RecvTimeoutError {
    fn from(_: RecvError) -> Self {
        RecvTimeoutError::Disconnected
    }
}
