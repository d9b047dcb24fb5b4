//! Seeing inside a runtime: what every greenlet is doing, what the hubs
//! have done, and which greenlet blocks a hub.
//!
//! - **Run-info dump** ([`RunInfo`], from
//!   [`Handle::run_info`](crate::Handle::run_info)): every live greenlet
//!   with its id, name, state (not started, queued, running, or parked and
//!   on what: which channel, lock, fd or greenlet, and until when), hub,
//!   spawn site, parent and age. `Display` prints it for humans;
//!   [`Builder::run_info_on_signal`](crate::Builder::run_info_on_signal)
//!   prints it to stderr on a signal, like Go's `SIGQUIT` dump.
//! - **Metrics** ([`Metrics`], from
//!   [`Handle::metrics`](crate::Handle::metrics)): per hub and in total,
//!   greenlets spawned, started, finished, panicked, killed; switches,
//!   parks, wake-ups (local, to other hubs, through the inbox), steals and
//!   from whom, polls and IO events, timers, idles, stacks; the offload
//!   pool's threads and queue; stack memory mapped and resident. The
//!   counters are always on: each hub writes its own with plain stores
//!   (`scripts/metrics_cost.sh` measures the cost).
//! - **Blocking monitor** ([`BlockingReport`]): a hub that has run one
//!   greenlet for longer than
//!   [`Builder::max_blocking_time`](crate::Builder::max_blocking_time) (on
//!   by default in debug builds, 100 ms) is reported with the greenlet's
//!   name, spawn site and how long, to stderr or to
//!   [`Builder::on_blocking`](crate::Builder::on_blocking).
//! - **Tracing** (cargo feature `tracing`): a span per greenlet, entered
//!   while it runs, and events for spawn, park, wake and exit, for any
//!   `tracing` subscriber.
//!
//! ```
//! greenhub::run(|| {
//!     let (tx, rx) = greenhub::channel::unbounded::<u32>();
//!     let waiter = greenhub::spawn(move || rx.recv().unwrap());
//!     greenhub::yield_now(); // let it start and block
//!     let info = greenhub::Handle::current().run_info();
//!     let g = info.greenlet(waiter.id()).unwrap();
//!     assert!(matches!(
//!         g.state,
//!         greenhub::inspect::GreenletState::Parked {
//!             on: greenhub::inspect::WaitKind::ChannelRecv,
//!             ..
//!         }
//!     ));
//!     tx.send(7).unwrap();
//!     assert_eq!(waiter.join().unwrap(), 7);
//!     println!("{}", greenhub::Handle::current().metrics());
//! });
//! ```

#[cfg(not(loom))]
pub(crate) mod dump;
#[cfg(not(loom))]
mod metrics;
#[cfg(not(loom))]
pub(crate) mod monitor;
#[cfg(not(loom))]
pub(crate) mod on_signal;
#[cfg(not(loom))]
mod syscall;

pub use crate::greenlet::runinfo::WaitKind;
#[cfg(not(loom))]
pub use crate::hub::dump::{GreenletInfo, GreenletState, HubInfo};
#[cfg(not(loom))]
pub use dump::RunInfo;
#[cfg(not(loom))]
pub use metrics::{HubMetrics, Metrics, OffloadMetrics, StackMetrics};
#[cfg(not(loom))]
pub use monitor::BlockingReport;
