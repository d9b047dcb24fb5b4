//! Pools, groups and scopes: running many greenlets as one unit (gevent's
//! `gevent.pool`, and `std::thread::scope`).
//!
//! - [`Group`]: a set of greenlets to [`join`](Group::join) or
//!   [`kill`](Group::kill) together; finished members leave by themselves.
//! - [`Pool`]: a group that runs at most `size` greenlets at once, with
//!   [`map`](Pool::map), [`imap`](Pool::imap) and
//!   [`imap_unordered`](Pool::imap_unordered): the replacement for a thread
//!   pool, where each job is a greenlet and `spawn` waits for a free slot.
//! - [`scope`]: greenlets that may borrow from the caller's stack, all
//!   finished (or killed, if the scope unwinds) before `scope` returns.
//!
//! ```
//! use std::time::Duration;
//!
//! greenhub::run(|| {
//!     let pool = greenhub::pool::Pool::new(4);
//!     let pages: Vec<String> = pool.map(0..8, |i| {
//!         greenhub::sleep(Duration::from_millis(5)); // a "download"
//!         format!("page {i}")
//!     });
//!     assert_eq!(pages[7], "page 7");
//! });
//! ```

mod group;
mod imap;
mod limited;
mod scope;

pub use group::Group;
pub use imap::{Imap, ImapUnordered};
pub use limited::Pool;
pub use scope::{Scope, ScopedJoinHandle, scope};
