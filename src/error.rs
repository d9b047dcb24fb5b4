//! Typed errors of the greenlet API.
//!
//! [`JoinError`] is what [`JoinHandle::join`](crate::JoinHandle::join) returns
//! when a greenlet did not produce its value: it panicked (the payload is kept,
//! as `std::thread::JoinHandle::join` keeps it), it was killed (or cancelled by
//! a runtime shutdown before it could finish; a kill with
//! [`JoinHandle::kill_with`](crate::JoinHandle::kill_with) keeps the killer's
//! reason), or it could not be started at all (no stack could be allocated,
//! with the `io::Error` that says which limit was hit).

use std::any::Any;
use std::fmt;
use std::io;

/// Why a greenlet did not return a value.
///
/// # Examples
///
/// ```
/// greenhub::run(|| {
///     let handle = greenhub::spawn(|| panic!("boom"));
///     let err = handle.join().unwrap_err();
///     assert!(err.is_panic());
///     let payload = err.into_panic();
///     assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
/// });
/// ```
pub struct JoinError {
    repr: Repr,
}

enum Repr {
    Panic(Box<dyn Any + Send + 'static>),
    /// Killed; with the reason given to `JoinHandle::kill_with`, if any.
    Killed(Option<Box<dyn Any + Send + 'static>>),
    Io(io::Error),
}

impl JoinError {
    pub(crate) fn panic(payload: Box<dyn Any + Send + 'static>) -> JoinError {
        JoinError {
            repr: Repr::Panic(payload),
        }
    }

    pub(crate) fn killed() -> JoinError {
        JoinError::killed_with(None)
    }

    /// Killed, with the reason given to `JoinHandle::kill_with`, if any.
    pub(crate) fn killed_with(reason: Option<Box<dyn Any + Send + 'static>>) -> JoinError {
        JoinError {
            repr: Repr::Killed(reason),
        }
    }

    pub(crate) fn io(err: io::Error) -> JoinError {
        JoinError {
            repr: Repr::Io(err),
        }
    }

    /// Whether the greenlet panicked.
    ///
    /// ```
    /// greenhub::run(|| {
    ///     assert!(greenhub::spawn(|| panic!("x")).join().unwrap_err().is_panic());
    /// });
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic(_))
    }

    /// Whether the greenlet was killed (by [`JoinHandle::kill`](crate::JoinHandle::kill),
    /// [`JoinHandle::kill_with`](crate::JoinHandle::kill_with) or the shutdown
    /// of its runtime) before it returned.
    ///
    /// ```
    /// greenhub::run(|| {
    ///     let h = greenhub::spawn(|| greenhub::sleep(std::time::Duration::from_secs(60)));
    ///     h.kill();
    ///     assert!(h.join().unwrap_err().is_killed());
    /// });
    /// ```
    pub fn is_killed(&self) -> bool {
        matches!(self.repr, Repr::Killed(_))
    }

    /// The reason the greenlet was killed with, if it was killed by
    /// [`JoinHandle::kill_with`](crate::JoinHandle::kill_with) (gevent's
    /// `kill(exception=...)`). `None` for a plain kill, a shutdown, a panic
    /// or a start failure.
    ///
    /// ```
    /// greenhub::run(|| {
    ///     let h = greenhub::spawn(|| greenhub::sleep(std::time::Duration::from_secs(60)));
    ///     h.kill_with("superseded");
    ///     let err = h.join().unwrap_err();
    ///     assert!(err.is_killed());
    ///     assert_eq!(err.kill_reason().unwrap().downcast_ref(), Some(&"superseded"));
    /// });
    /// ```
    pub fn kill_reason(&self) -> Option<&(dyn Any + Send + 'static)> {
        match &self.repr {
            Repr::Killed(Some(reason)) => Some(&**reason),
            _ => None,
        }
    }

    /// The kill reason (see [`kill_reason`](Self::kill_reason)) by value, or
    /// the error itself if it carries none.
    ///
    /// ```
    /// #[derive(Debug, PartialEq)]
    /// struct Superseded(u32);
    ///
    /// greenhub::run(|| {
    ///     let h = greenhub::spawn(|| greenhub::sleep(std::time::Duration::from_secs(60)));
    ///     h.kill_with(Superseded(2));
    ///     let reason = h.join().unwrap_err().try_into_kill_reason().unwrap();
    ///     assert_eq!(*reason.downcast::<Superseded>().unwrap(), Superseded(2));
    /// });
    /// ```
    pub fn try_into_kill_reason(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.repr {
            Repr::Killed(Some(reason)) => Ok(reason),
            repr => Err(JoinError { repr }),
        }
    }

    /// The error that kept the greenlet from starting (for example no stack
    /// could be allocated), if that is what happened.
    ///
    /// ```
    /// greenhub::run(|| {
    ///     assert!(greenhub::spawn(|| 1).join().is_ok());
    /// });
    /// // A greenlet that could not get a stack reports the io::Error here:
    /// // `err.io_error().map(|e| e.to_string())` names the limit that was hit.
    /// ```
    pub fn io_error(&self) -> Option<&io::Error> {
        match &self.repr {
            Repr::Io(e) => Some(e),
            _ => None,
        }
    }

    /// The panic payload. Panics if the error is not a panic; check with
    /// [`is_panic`](Self::is_panic) or use [`try_into_panic`](Self::try_into_panic).
    ///
    /// ```
    /// greenhub::run(|| {
    ///     let err = greenhub::spawn(|| panic!("boom")).join().unwrap_err();
    ///     assert_eq!(*err.into_panic().downcast::<&str>().unwrap(), "boom");
    /// });
    /// ```
    #[track_caller]
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        match self.try_into_panic() {
            Ok(payload) => payload,
            Err(e) => panic!("JoinError::into_panic called on a non-panic error: {e}"),
        }
    }

    /// The panic payload, or the error itself if it was not a panic.
    ///
    /// ```
    /// greenhub::run(|| {
    ///     let err = greenhub::spawn(|| panic!("boom")).join().unwrap_err();
    ///     assert!(err.try_into_panic().is_ok());
    /// });
    /// ```
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.repr {
            Repr::Panic(payload) => Ok(payload),
            repr => Err(JoinError { repr }),
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

/// A kill reason in words: a string, or an `io::Error`'s message.
fn describe_reason(reason: &(dyn Any + Send)) -> Option<String> {
    panic_message(reason)
        .map(String::from)
        .or_else(|| reason.downcast_ref::<io::Error>().map(|e| e.to_string()))
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Panic(p) => match panic_message(p.as_ref()) {
                Some(msg) => write!(f, "greenlet panicked: {msg}"),
                None => f.write_str("greenlet panicked"),
            },
            Repr::Killed(reason) => match reason.as_deref().map(describe_reason) {
                Some(Some(why)) => write!(f, "greenlet was killed: {why}"),
                _ => f.write_str("greenlet was killed"),
            },
            Repr::Io(e) => write!(f, "greenlet could not be started: {e}"),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Panic(p) => f
                .debug_tuple("JoinError::Panic")
                .field(&panic_message(p.as_ref()).unwrap_or("..."))
                .finish(),
            Repr::Killed(None) => f.write_str("JoinError::Killed"),
            Repr::Killed(Some(reason)) => f
                .debug_tuple("JoinError::Killed")
                .field(&describe_reason(&**reason).unwrap_or_else(|| "...".into()))
                .finish(),
            Repr::Io(e) => f.debug_tuple("JoinError::Io").field(e).finish(),
        }
    }
}

impl std::error::Error for JoinError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.repr {
            Repr::Io(e) => Some(e),
            Repr::Killed(Some(reason)) => reason
                .downcast_ref::<io::Error>()
                .map(|e| e as &(dyn std::error::Error + 'static)),
            _ => None,
        }
    }
}

/// A start failure converts into its `io::Error`, and so does a kill whose
/// reason ([`JoinHandle::kill_with`](crate::JoinHandle::kill_with)) is an
/// `io::Error`; anything else into an `io::Error` of kind `Other` with the
/// error's message.
///
/// ```
/// use std::io;
/// greenhub::run(|| {
///     let h = greenhub::spawn(|| greenhub::sleep(std::time::Duration::from_secs(60)));
///     h.kill_with(io::Error::new(io::ErrorKind::TimedOut, "no reply"));
///     let err: io::Error = h.join().unwrap_err().into();
///     assert_eq!(err.kind(), io::ErrorKind::TimedOut);
/// });
/// ```
impl From<JoinError> for io::Error {
    fn from(err: JoinError) -> io::Error {
        match err.repr {
            Repr::Io(e) => e,
            Repr::Killed(Some(reason)) if reason.is::<io::Error>() => *reason
                .downcast::<io::Error>()
                .expect("greenhub: the kill reason is an io::Error"),
            repr => io::Error::other(JoinError { repr }.to_string()),
        }
    }
}

/// Drops a panic payload without letting a panicking `Drop` escape: such a
/// payload would otherwise take down whichever hub happens to drop it
/// (rust-lang/rust#86027). A payload whose drop panics is leaked.
pub(crate) fn drop_payload_safely(payload: Box<dyn Any + Send + 'static>) {
    if let Err(second) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(payload))) {
        std::mem::forget(second);
    }
}

/// Drops a join output the same way: the value may hold a panic payload.
pub(crate) fn drop_output_safely<T>(output: Option<Result<T, JoinError>>) {
    match output {
        Some(Err(JoinError {
            repr: Repr::Panic(payload) | Repr::Killed(Some(payload)),
        })) => drop_payload_safely(payload),
        other => {
            if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(other))) {
                std::mem::forget(p);
            }
        }
    }
}
