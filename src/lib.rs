//! # greenhub: green threads for Rust
//!
//! gevent's programming model, Go's multi-core scheduler, Rust's safety.
//!
//! A *greenlet* is a stackful coroutine with the API of a `std::thread`:
//! [`spawn`] it, [`join`](JoinHandle::join) it, let it [`sleep`],
//! [`yield_now`] or [`park`]. Its blocking calls suspend only the greenlet; the
//! *hub* (one OS thread per core) runs other greenlets meanwhile, so
//! straight-line blocking code scales to many thousands of concurrent tasks.
//!
//! ```
//! use std::time::Duration;
//!
//! let total = greenhub::run(|| {
//!     let workers: Vec<_> = (0..10u64)
//!         .map(|i| {
//!             greenhub::spawn(move || {
//!                 greenhub::sleep(Duration::from_millis(10)); // parks only this greenlet
//!                 i * i
//!             })
//!         })
//!         .collect();
//!     workers.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
//! });
//! assert_eq!(total, 285);
//! ```
//!
//! ## Modes
//!
//! - **M:N** (default): one hub per CPU; idle hubs steal greenlets that have
//!   not started yet from busy ones.
//! - **single-threaded** ([`Builder::single_threaded`]): one hub, FIFO;
//!   greenlets never run in parallel and runs are deterministic (gevent).
//! - **pinned** ([`Builder::pinned`]): N hubs without stealing; each hub is a
//!   single-threaded world of its own.
//!
//! ## The soundness rule
//!
//! No safe API of greenhub lets safe code cause undefined behaviour. A
//! greenlet moves between OS threads only *before it first runs* (unless it
//! was spawned with the `unsafe` migration opt-in,
//! [`greenlet::Builder::migratable`]); once started it stays on one thread
//! until it ends, so an `Rc` or a `!Send` value on its stack never crosses
//! threads. (Moving a suspended stack to another thread is unsound in safe
//! Rust: the compiler may cache thread-local addresses across the switch.)
//! What belongs to a stack (the deadline of a [`timeout`] frame, [`local!`]
//! values) is saved and restored on every switch, raw switches included.
//!
//! What differs from a plain thread: while a greenlet is inside a call that
//! may switch (any greenhub call that waits, a raw switch, a patched std
//! call), other greenlets of its hub run on the same OS thread. Everything
//! keyed by the thread is therefore shared by the hub's greenlets:
//! `thread_local!` values (use [`local!`] instead), `RefCell` borrows of
//! them, std lock guards (another greenlet of the hub deadlocks on it: use
//! [`sync::Mutex`]), reentrant locks (another greenlet enters too). None of
//! that is undefined behaviour. The one hazard that is: `unsafe` code in
//! other crates that stores a pointer to the current stack frame in a
//! thread-local and restores the previous one in LIFO order (the
//! `scoped-tls` crate's `ScopedKey::set` and what is built on it, e.g.
//! `warp`'s route, futures 0.1's current task). Two greenlets interleaving
//! such scopes leave the pointer dangling into another stack. Every stackful
//! runtime shares this; wrap such scopes in [`no_switch`], inside which a
//! switch panics with a clear message instead.
//!
//! ## Coordinating greenlets
//!
//! gevent's toolbox, usable from greenlets and plain threads alike:
//! [`timeout`] bounds a block of blocking code ([`timeout_with`] lets the
//! block cancel or move its deadline), [`JoinHandle::kill`] stops a greenlet
//! wherever it is blocked ([`JoinHandle::kill_with`] hands `join` a reason),
//! [`joinall`] and [`greenlet::JoinAll`] wait for many, [`wait_idle`] for
//! all, [`sync`] has events, one-shot results and locks, [`channel`] has
//! Go-style channels, [`select!`] and work queues. Every blocking call parks
//! only the caller, serves waiters in FIFO order and has a timeout form.
//!
//! ## Cooperative IO
//!
//! [`net`] has std's socket types ([`net::TcpListener`], [`net::TcpStream`],
//! [`net::UdpSocket`], [`net::unix`]) whose blocking calls park only the
//! calling greenlet, so a thread-per-connection program moves over by
//! swapping its imports. [`io`] waits on raw fds ([`io::wait_readable`],
//! [`io::select`]); [`blocking::unblock`] runs what cannot be made
//! cooperative on a bounded pool of OS threads; names resolve there too.
//!
//! What still blocks a hub (and every greenlet on it): std's own sockets and
//! `std::thread::sleep`, file IO (use [`blocking::unblock`]),
//! `std::net::ToSocketAddrs` (use [`net::lookup_host`] or pass the name to
//! greenhub's constructors), a std or `parking_lot` lock held across a
//! blocking call (use [`sync::Mutex`]), `std::process::Child::wait` (use
//! [`process`]), C libraries doing their own blocking syscalls, and long
//! CPU-bound loops without [`yield_now`]. With the cargo feature `patch`,
//! `greenhub::patch::enable()` makes std's sockets and sleeps (and the
//! unmodified crates built on them) park only their greenlet, as gevent's
//! monkey patching does; see that module for what it covers.
//!
//! [`signal`] runs a handler greenlet when a Unix signal arrives (gevent's
//! `signal_handler`, e.g. `SIGTERM` for a clean shutdown), or lets a
//! greenlet or a thread wait for signals, however busy the hubs are.
//! [`process`] spawns child processes whose waits and pipes park only the
//! calling greenlet (gevent's `subprocess`). [`server`] has gevent's
//! `StreamServer` and `DatagramServer`: a greenlet per connection or
//! datagram, a connection limit, accepting on every hub, a draining stop.
//!
//! [`future`] bridges to async Rust both ways: a greenlet awaits a future
//! ([`future::block_on`]), async code awaits a [`JoinHandle`].
//!
//! ## Raw greenlets
//!
//! [`raw`] is Python greenlet's explicit switching API (`switch` with
//! values, parents, `throw`) and a typed [`raw::Generator`], for code that
//! wants coroutines without a scheduler.
//!
//! ## Off a greenlet
//!
//! Every blocking call also works on a plain OS thread, where it blocks the
//! thread like its std twin: [`sleep`] is `std::thread::sleep`,
//! [`JoinHandle::join`] blocks, [`park`] is `std::thread::park`.
//!
//! ## Stacks
//!
//! Stacks are allocated when a greenlet first runs, from per-hub caches over
//! slabs of guarded stacks (256 KiB by default, see [`Builder::stack_size`]).
//! On Linux 6.13+ the guard pages cost no memory mapping, so the default
//! `vm.max_map_count` does not cap the number of greenlets. A greenlet that
//! overflows its stack is reported by name and id, then the process aborts,
//! as std does for threads.
//!
//! ## Known limits
//!
//! Linux only. The full list (unwinding and `std::thread::panicking()`,
//! `panic = "abort"`, the run-info dump, migratable greenlets, `patch`,
//! `no_switch`) is in the README's *Known limits* section; the one that most
//! often surprises: while a greenlet is suspended inside a destructor during
//! unwinding, `std::thread::panicking()` is `true` for the other greenlets of
//! its hub (std counts panics per OS thread).

#![warn(missing_debug_implementations, rust_2018_idioms)]
#![cfg_attr(
    loom,
    allow(dead_code, unused_imports, missing_docs, missing_debug_implementations)
)]
#![cfg_attr(loom, allow(clippy::new_without_default))]

#[cfg(fuzzing)]
#[doc(hidden)]
#[path = "fuzz.rs"]
pub mod __fuzz;
pub mod blocking;
pub mod channel;
mod error;
pub mod future;
pub mod greenlet;
mod hub;
pub mod inspect;
pub mod io;
mod loom;
#[cfg(not(loom))]
pub mod net;
mod offload;
#[cfg(all(feature = "patch", not(loom), target_os = "linux", target_env = "gnu"))]
pub mod patch;
// Under loom, only the futex table's protocol of `patch`, without the libc
// hooks (a test binary defining `syscall` would intercept loom's own calls):
// for tests/loom_futex.rs.
#[cfg(loom)]
mod patch {
    pub mod parkword;
    pub mod table;
}
#[cfg(not(loom))]
pub mod pool;
#[cfg(not(loom))]
pub mod process;
#[cfg(not(loom))]
pub mod raw;
mod runtime;
#[cfg(not(loom))]
pub mod server;
#[cfg(not(loom))]
pub mod signal;
mod stack;
pub mod sync;
mod time;

#[cfg(all(feature = "patch", not(all(target_os = "linux", target_env = "gnu"))))]
compile_error!("the `patch` feature interposes glibc: it needs a Linux glibc target");

pub use error::JoinError;
pub use greenlet::timeout::{Elapsed, Timeout, timeout, timeout_at, timeout_at_with, timeout_with};
pub use greenlet::{
    Greenlet, GreenletId, JoinHandle, current, joinall, no_switch, park, sleep, spawn, spawn_local,
    yield_now,
};
#[cfg(not(loom))]
pub use pool::scope;
pub use runtime::{Builder, Handle, Runtime, run, wait_idle};
pub use stack::{DEFAULT_STACK_SIZE, MAX_STACK_SIZE, MIN_STACK_SIZE};

// The Markdown documentation outside src/ (README.md, CONTRIBUTING.md, docs/**/*.md), included so
// that `cargo test` compiles (and, unless marked `no_run`, runs) every Rust code block in it. One
// hidden module per file; a new Markdown file with code gets its own line here.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme_doctests {}
#[cfg(doctest)]
#[doc = include_str!("../CONTRIBUTING.md")]
mod contributing_doctests {}
#[cfg(doctest)]
#[doc = include_str!("../docs/ARCHITECTURE.md")]
mod architecture_doctests {}
#[cfg(doctest)]
#[doc = include_str!("../docs/benchmarks.md")]
mod benchmarks_doctests {}
#[cfg(doctest)]
#[doc = include_str!("../docs/guide/coordinating.md")]
mod guide_coordinating_doctests {}
#[cfg(doctest)]
#[doc = include_str!("../docs/guide/from-threads.md")]
mod guide_from_threads_doctests {}
// Its example calls `patch::enable`, which exists only with the feature:
// `cargo test --features patch --doc guide_patching` compiles it.
#[cfg(all(doctest, feature = "patch"))]
#[doc = include_str!("../docs/guide/patching.md")]
mod guide_patching_doctests {}
#[cfg(doctest)]
#[doc = include_str!("../docs/guide/servers.md")]
mod guide_servers_doctests {}
#[cfg(doctest)]
#[doc = include_str!("../docs/guide/inspect.md")]
mod guide_inspect_doctests {}
#[cfg(doctest)]
#[doc = include_str!("../docs/guide/async.md")]
mod guide_async_doctests {}
#[cfg(doctest)]
#[doc = include_str!("../docs/guide/raw.md")]
mod guide_raw_doctests {}
#[cfg(doctest)]
#[doc = include_str!("../docs/guide/stacks.md")]
mod guide_stacks_doctests {}
#[cfg(doctest)]
#[doc = include_str!("../docs/guide/shutdown.md")]
mod guide_shutdown_doctests {}

/// The scheduler's protocol types, exposed for the loom models in
/// `tests/loom_*.rs` only. Not part of the API.
#[cfg(loom)]
#[doc(hidden)]
#[allow(missing_docs, missing_debug_implementations)]
pub mod __private {
    pub use crate::greenlet::alloc::{BATCH, CHUNK, Cache, GRANULE, Pool};
    pub use crate::greenlet::completion::Completion;
    pub use crate::greenlet::state::{Snapshot, State};
    pub use crate::greenlet::waiter::WaiterKey;
    pub use crate::hub::doorbell::Doorbell;
    pub use crate::hub::idle::{Idle, IdleRuntime};
    pub use crate::hub::inbox::Inbox;
    pub use crate::hub::migrate::{Migrant, adopt_by, release_to};
    pub use crate::hub::queue::{Injector, StealQueue, Stealer};
    pub use crate::hub::readiness::{Direction, ScheduledIo};
    pub use crate::hub::run::{Ran, Resumed, run_until_suspended};
    pub use crate::hub::search::SearchHub;
    pub use crate::hub::watch::RunningSlot;
    pub use crate::patch::parkword;
    pub use crate::patch::table::{Lot, Node, Parked, Table, WakeUp};
}
