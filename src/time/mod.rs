//! Time: the per-hub timer structure behind every deadline. It sits below
//! the greenlet and hub core and depends on nothing of greenhub's: the hub
//! keeps one [`heap::TimerHeap`] and fires its entries. The calls that wait
//! on it are greenlet calls (`sleep`, `park_timeout` in `greenlet/mod.rs`,
//! [`timeout`](crate::timeout) in `greenlet/timeout.rs`), mirroring
//! `std::thread`.

pub(crate) mod heap;
