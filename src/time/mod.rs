//! Time: the per-hub timer structure behind `sleep`, `park_timeout` and
//! (later) timeouts. The public calls are in `greenlet` (`sleep`,
//! `park_timeout`), mirroring `std::thread`.

pub(crate) mod heap;
