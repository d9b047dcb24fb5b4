//! Time: the per-hub timer structure behind every deadline, and
//! [`timeout`](crate::timeout), which bounds a whole block of blocking code.
//! The sleeping calls themselves are in `greenlet` (`sleep`, `park_timeout`),
//! mirroring `std::thread`.

pub(crate) mod heap;
mod timeout;

pub use timeout::{Elapsed, Timeout, timeout, timeout_at, timeout_at_with, timeout_with};
